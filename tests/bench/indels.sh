#!/usr/bin/env bash
# What `score --indel-flank` costs: whole `genomamba score` runs (/usr/bin/time) on E. coli 536 with 2,000 random
# SNVs and 2,000 random indels (1 to 10 bases, half insertions, half deletions; seed 7), without and with
# --indel-flank 64, on the embedded model and the CPU engine. With the option one walk scores every site: it walks
# each window holding a site once, reads the SNVs' rows as it passes them and runs two short haplotypes per indel
# from the state saved at its site; re-running each indel's prefix (1 Mb windows) would cost about 2,000 x 2 x
# 0.5 Mb instead. GENOMAMBA_BIN picks the binary (to compare builds).
#
# Usage: bash tests/bench/indels.sh   (needs a release build and data/derived from data/make.sh; python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
genome=data/derived/ecoli536.fa
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$genome" "$work/calls.vcf" <<'PY'
import random, sys
random.seed(7)
name, parts = None, []
for line in open(sys.argv[1]):
    if line.startswith(">"):
        name = line[1:].split()[0]
    else:
        parts.append(line.strip())
seq = "".join(parts).upper()
calls = []
for _ in range(2000):
    p = random.randrange(1, len(seq) - 100)
    calls.append((p, seq[p], random.choice([b for b in "ACGT" if b != seq[p]])))
for i in range(2000):
    p = random.randrange(1, len(seq) - 100)
    if i % 2:
        calls.append((p, seq[p:p + 1 + random.randint(1, 10)], seq[p]))
    else:
        calls.append((p, seq[p], seq[p] + "".join(random.choice("ACGT") for _ in range(random.randint(1, 10)))))
with open(sys.argv[2], "w") as out:
    out.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for p, r, a in sorted(calls):
        out.write(f"{name}\t{p + 1}\t.\t{r}\t{a}\t.\t.\t.\n")
PY
for flank in "" "--indel-flank 64"; do
  echo "score ${flank:-(SNVs only)}:" >&2
  /usr/bin/time -f "  %e s wall, %M KB peak RSS" "$bin" score --vcf "$work/calls.vcf" --reference "$genome" \
    --device cpu -q --force -o "$work/scores.parquet" $flank
done
