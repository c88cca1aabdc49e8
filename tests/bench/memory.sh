#!/usr/bin/env bash
# Peak memory of whole `genomamba predict` runs (/usr/bin/time -v), to show that it does not grow with the input:
# E. coli (4.9 Mb) and a 98.8 Mb single record (E. coli 536 twenty times over, one FASTA record), both with
# --window 0 (one window per record, streamed in --chunk pieces), plus lambda (48.5 kb) as the baseline.
#
# Model: a tiny random HF Mamba (d_model 16, 1 layer, made with transformers) so the 100 Mb run takes minutes,
# not hours: the engine's own memory is per chunk and measured by crates/genomamba-model's benchmarks; what this
# measures is the pipeline (reader, windower, heads, Parquet writer). Pass MODEL=embedded to use the default.
#
# Usage: bash tests/bench/memory.sh   (needs a release build: cargo build --release; python with transformers
# for the tiny model: PYTHON=/path/to/python, default python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

model_arg=()
if [ "${MODEL:-tiny}" = tiny ]; then
  "$py" - "$work/tiny" <<'PY'
import sys, torch
from transformers import MambaConfig, MambaForCausalLM
torch.manual_seed(0)
cfg = MambaConfig(vocab_size=16, hidden_size=16, state_size=4, num_hidden_layers=1, expand=2, conv_kernel=4,
                  pad_token_id=0, bos_token_id=0, eos_token_id=0)
MambaForCausalLM(cfg).save_pretrained(sys.argv[1], safe_serialization=True)
PY
  model_arg=(--model "$work/tiny")
fi

bash data/make.sh >/dev/null
{
  echo ">ecoli536x20 E. coli 536 (NC_008253.1) twenty times, one record"
  for _ in $(seq 20); do grep -v '^>' data/derived/ecoli536.fa; done
} > "$work/x20.fa"

printf '%-14s %12s %10s %12s %14s\n' input bases seconds bases/s max_rss_MiB
for input in data/genomes/lambda_virus.fa data/derived/ecoli536.fa "$work/x20.fa"; do
  /usr/bin/time -v "$bin" predict "$input" "${model_arg[@]}" --window 0 --chunk 65536 --device cpu -q --force \
    -o "$work/out.parquet" 2> "$work/time.txt"
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  bases=$(grep -v '^>' "$input" | tr -d '\n\r' | wc -c)
  printf '%-14s %12d %10.1f %12.0f %14.1f\n' "$(basename "$input")" "$bases" "$secs" "$(echo "$bases / $secs" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)"
done
