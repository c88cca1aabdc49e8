#!/usr/bin/env bash
# How big a per-base predictions table is: `genomamba predict` over E. coli 536 (4,938,920 bases) with every column,
# with `--columns logp_ref,entropy` and with `--columns logp_ref`; prints each file's size, bytes a base, and the
# compressed bytes of each column over all row groups (from the Parquet footer).
#
# Usage: bash tests/bench/predict_size.sh   (needs a release build, data/derived from data/make.sh, and python3
# with pyarrow: PYTHON=.venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
python=${PYTHON:-python3}
genome=data/derived/ecoli536.fa
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for columns in "" logp_ref,entropy logp_ref; do
    out="$work/predict${columns:+-$columns}.parquet"
    "$bin" predict "$genome" -q -o "$out" ${columns:+--columns "$columns"}
    "$python" - "$out" "${columns:-all columns}" <<'PY'
import os, sys
import pyarrow.parquet as pq
path, label = sys.argv[1], sys.argv[2]
meta = pq.ParquetFile(path).metadata
size = os.path.getsize(path)
print(f"{label}: {size:,} bytes, {size / meta.num_rows:.1f} bytes a base ({meta.num_rows:,} rows)")
for j in range(meta.num_columns):
    column = meta.row_group(0).column(j)
    total = sum(meta.row_group(i).column(j).total_compressed_size for i in range(meta.num_row_groups))
    print(f"  {column.path_in_schema:<9} {total:>12,} bytes  {'/'.join(column.encodings)}")
PY
done
