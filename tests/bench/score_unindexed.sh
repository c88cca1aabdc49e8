#!/usr/bin/env bash
# What `score` costs on a reference with no index: whole `genomamba score` runs (/usr/bin/time) of ten random SNVs
# in the first 50 kb of E. coli 536 (seed 3; a gene panel's shape) against its plain-gzip FASTA, which has no
# .fai and cannot be read by region, and against the bgzipped, indexed one. Without the index the records holding
# sites are read whole, but only their windows holding sites run, as with it.
#
# Usage: bash tests/bench/score_unindexed.sh   (needs a release build and data/derived from data/make.sh;
# python3). GENOMAMBA_BIN picks the binary (to compare builds).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - data/derived/ecoli536.plain.fa.gz "$work/panel.vcf" <<'PY'
import gzip, random, sys
random.seed(3)
name, parts = None, []
for line in gzip.open(sys.argv[1], "rt"):
    if line.startswith(">"):
        if name:
            break
        name = line[1:].split()[0]
    else:
        parts.append(line.strip())
seq = "".join(parts).upper()
with open(sys.argv[2], "w") as out:
    out.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for p in sorted(random.sample(range(10_000, 50_000), 10)):
        out.write(f"{name}\t{p + 1}\t.\t{seq[p]}\t{'A' if seq[p] != 'A' else 'C'}\t.\t.\t.\n")
PY
for reference in data/derived/ecoli536.plain.fa.gz data/derived/ecoli536.fa.gz; do
  echo "score against $reference:" >&2
  /usr/bin/time -f "  %e s wall, %M KB peak RSS" "$bin" score --vcf "$work/panel.vcf" --reference "$reference" \
    --device cpu -q --force -o "$work/scores.parquet"
done
