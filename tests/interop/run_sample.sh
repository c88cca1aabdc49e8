#!/usr/bin/env bash
# Writes the genomamba-parquet sample tables and checks each with pyarrow, Polars and DuckDB.
# Usage: tests/interop/run_sample.sh [PYTHON]   (default: $GENOMAMBA_TEST_PYTHON, else python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:-${GENOMAMBA_TEST_PYTHON:-python3}}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run -q -p genomamba-parquet --example write_sample -- "$out"
check="$py tests/interop/check_parquet.py"
$check "$out/embeddings_f32.parquet" --table embeddings --dim 16 --rows 23 --lengths "$out/lengths.json"
$check "$out/embeddings_f16.parquet" --table embeddings --dim 8 --dtype f16 --keys aligned --rows 40
$check "$out/predictions.parquet" --table predictions --rows 2176 --lengths "$out/lengths.json"
$check "$out/variants.parquet" --table variants --rows 25
