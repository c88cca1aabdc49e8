#!/usr/bin/env bash
# Runs every test of genomamba on a fresh Debian machine with a Rust toolchain: installs what the tests need
# (samtools, tabix, bcftools and a C++ compiler from Debian, a Python venv with pyarrow, Polars, DuckDB and Snakemake,
# the NVRTC wheel for the kernel compile check), derives the indexed data files, then runs the checks in the
# order CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# Each step names the free disk space: a CI machine's disk once filled during the benchmarks build.
step() { printf '\n=== %s (%s free)\n' "$*" "$(df -h --output=avail . 2>/dev/null | tail -1 | tr -d ' ')"; }
# A fresh clone gains nothing from incremental caches, which would take most of a gigabyte.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

step "system packages"
need=()
command -v samtools >/dev/null || need+=(samtools)
command -v bgzip >/dev/null || need+=(tabix)
command -v bcftools >/dev/null || need+=(bcftools)
command -v "${CXX:-c++}" >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing: ${need[*]} (install them with apt-get, or run as root)" >&2
    exit 1
  fi
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "python venv for the interop and workflow tests"
venv=${GENOMAMBA_TEST_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
export GENOMAMBA_TEST_PYTHON=$venv/bin/python

step "derived data (bgzip, indexes)"
bash data/make.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "no network client is linked (nothing is fetched at run time)"
linked=$(cargo tree --workspace -e normal --prefix none --format '{p}' | cut -d' ' -f1 | sort -u)
if grep -xE 'reqwest|ureq|hyper|curl|curl-sys|isahc|attohttpc|surf|native-tls|rustls' <<<"$linked"; then
  echo "a network client is among the dependencies above: genomamba fetches nothing at run time" >&2
  exit 1
fi

step "cargo test (GPU tests show as ignored)"
cargo test --workspace --no-fail-fast

step "workflows: Snakemake run for real, Nextflow module templates run with the binary"
workflow_out=$(mktemp -d)
trap 'rm -rf "$workflow_out"' EXIT
GENOMAMBA_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/genomamba "$venv/bin/python" tests/workflows/check_snakemake.py --keep "$workflow_out/snakemake"
GENOMAMBA_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/genomamba GENOMAMBA_SNAKEMAKE_RESULTS=$workflow_out/snakemake \
  "$venv/bin/python" tests/workflows/check_nextflow.py

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "CUDA kernels compile through NVRTC (no GPU needed)"
if [ -f crates/genomamba-cuda/nvrtc-check.sh ]; then
  bash crates/genomamba-cuda/nvrtc-check.sh
fi

step "CUDA engine on the CPU emulation of CUDA (tests/gpu/emu: host code, kernels, cuBLAS calls; no GPU)"
bash tests/gpu/emu/run.sh

step "benchmarks build"
cargo bench --workspace --no-run -q

echo
echo "all checks passed"
