#!/usr/bin/env bash
# What running a batch's pieces side by side (a CPU thread each, crates/genomamba-model/src/cpu/lanes.rs) gains
# over one piece at a time with every thread on it (`--batch 1`, the CPU engines' only way before): whole
# commands (/usr/bin/time), best of 3, both ways back to back, on the embedded model and the CPU engine, with
# THREADS threads (default 2):
#   embed   the bundled paired reads (1,000 reads of ~109 bases) and long reads (50 of ~320 bases);
#   predict E. coli 536 cut into records of 1 Ki and of 64 Ki bases (about 600 kb either way);
#   and, given a Caduceus model directory as $1 (tests/bench/masked.py makes one), `score` of 100 SNVs of E. coli
#   at their masked sites with 256 bases on each side.
# Prints each time and the ratio, and checks that both ways wrote the same table (with $PYTHON, when it has
# pyarrow).
#
# Usage: [PYTHON=.venv/bin/python] [THREADS=8] bash tests/bench/side_by_side.sh [CADUCEUS_DIR]
#        (needs a release build and data/derived from data/make.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
threads=${THREADS:-2}
caduceus=${1:-}
genome=data/derived/ecoli536.fa
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$genome" "$work" <<'PY'
import random, sys
name, parts = None, []
for line in open(sys.argv[1]):
    if line.startswith(">"):
        name = line[1:].split()[0]
    else:
        parts.append(line.strip())
seq = "".join(parts).upper()
for size in (1024, 65536):
    with open(f"{sys.argv[2]}/records{size}.fa", "w") as f:
        for i in range(600_000 // size):
            f.write(f">r{i}\n{seq[i * size:(i + 1) * size]}\n")
random.seed(7)
with open(f"{sys.argv[2]}/calls.vcf", "w") as f:
    f.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for p in sorted(random.sample(range(len(seq)), 100)):
        if seq[p] in "ACGT":
            f.write(f"{name}\t{p + 1}\t.\t{seq[p]}\t{random.choice([b for b in 'ACGT' if b != seq[p]])}\t.\t.\t.\n")
PY

# best_of_3 OUT ARGS...: the least wall time in seconds of three runs of `genomamba ARGS -o OUT`.
best_of_3() {
  local out=$1 best=
  shift
  for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o "$work/time" "$bin" "$@" -q --force -t "$threads" -o "$out"
    best=$(python3 -c "import sys; print(min(float(x) for x in sys.argv[1:] if x))" "$(cat "$work/time")" $best)
  done
  echo "$best"
}

same() {
  "${PYTHON:-python3}" - "$1" "$2" <<'PY' 2>/dev/null || echo "(not compared: no pyarrow)"
import sys
import pyarrow.parquet as pq
a, b = (pq.read_table(p) for p in sys.argv[1:])
print("same table" if a.equals(b) else "TABLES DIFFER")
PY
}

row() {
  local what=$1
  shift
  local one side
  one=$(best_of_3 "$work/one.parquet" "$@" --batch 1)
  side=$(best_of_3 "$work/side.parquet" "$@")
  printf '%-44s %8.2f s %8.2f s %6.2fx  %s\n' "$what" "$one" "$side" \
    "$(python3 -c "print($one / $side)")" "$(same "$work/one.parquet" "$work/side.parquet")"
}

echo "$threads threads, best of 3; one at a time (--batch 1) vs side by side (default)"
row "embed, 1,000 paired reads" embed data/reads/lambda_pairs_1.fq.gz
row "embed, 50 long reads" embed data/reads/lambda_long.fq.gz
row "predict, 586 records of 1 Ki bases" predict "$work/records1024.fa"
row "predict, 9 records of 64 Ki bases" predict "$work/records65536.fa"
if [[ -n $caduceus ]]; then
  row "score, Caduceus, 100 masked SNVs, flank 256" score --device cpu --model "$caduceus" --overlap 256 \
    --vcf "$work/calls.vcf" --reference "$genome"
fi
