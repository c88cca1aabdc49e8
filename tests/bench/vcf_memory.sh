#!/usr/bin/env bash
# What a VCF costs `score` to hold: peak RSS (/usr/bin/time) of `genomamba score` over 500,000 random SNVs with IDs
# (seed 1) on a contig the reference lacks, so no model runs and the peak is what the run keeps per allele (its
# site, kind and outcome; the rows' text is read again as the table is written), against a one-record VCF.
# (peak - one) / 500,000 is the cost of an allele. GENOMAMBA_BIN=<another build> compares.
#
# Usage: bash tests/bench/vcf_memory.sh   (needs a release build and data/derived from data/make.sh; python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import random, sys
random.seed(1)
header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
with open(f"{sys.argv[1]}/many.vcf", "w") as out, open(f"{sys.argv[1]}/one.vcf", "w") as one:
    out.write(header)
    one.write(header + "chrX\t2\trs1\tA\tC\t50\tPASS\tDP=10\n")
    for p in sorted(random.sample(range(1, 1_000_000), 500_000)):
        r = random.choice("ACGT")
        out.write(f"chrX\t{p + 1}\trs{p}\t{r}\t{random.choice([b for b in 'ACGT' if b != r])}\t50\tPASS\tDP=10\n")
PY
for vcf in one many; do
  echo "$vcf.vcf:" >&2
  /usr/bin/time -f "  %e s wall, %M KB peak RSS" "$bin" score --vcf "$work/$vcf.vcf" \
    --reference data/derived/ecoli536.fa --device cpu -q --force -o "$work/scores.parquet" 2>&1 | grep -v warning >&2
done
