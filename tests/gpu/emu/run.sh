#!/usr/bin/env bash
# Runs the GPU tests of genomamba-cuda, and the CLI's `--device cuda` end-to-end test, on the CPU emulation of
# CUDA in this folder (see README.md): the engine's own host code, kernels and cuBLAS calls, checked against
# the CPU engine and the goldens without a GPU. Called by tests/run.sh (CI); about 9 minutes on 2 cores.
# Not run here: the 1 Mb Caduceus window. The benchmark runs on a 1,024-base window of the 128x4 model only:
# that checks its code path before a GPU run depends on it; its figures mean nothing on an emulation.
# Honours CARGO_TARGET_DIR: the emulation is built into $CARGO_TARGET_DIR/cuda-emu unless EMU_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/../../.."
target=${CARGO_TARGET_DIR:-$PWD/target}
export EMU_DIR=${EMU_DIR:-$target/cuda-emu}
emu=$(bash tests/gpu/emu/build.sh | tail -1)
# The scan's polynomial exp2 (SCAN_EX2_POLY) over every float it takes, against exp2 in double (~15 s).
"${CXX:-g++}" -std=c++17 -O2 -w -include tests/gpu/emu/cuda_on_cpu.h -o "$emu/exp2_fma_check" \
    tests/gpu/emu/exp2_fma_check.cpp
"$emu/exp2_fma_check"
cargo test -q -p genomamba-cuda --lib --test gpu --test gpu_caduceus --test gpu_bench --no-run
cargo test -q --test cli --test caduceus_cli --no-run
# Only the emulation on the loader path: the tests must not find a real driver, NVRTC or cuBLAS instead.
export LD_LIBRARY_PATH=$emu
cargo test -p genomamba-cuda --lib --test gpu --test gpu_caduceus -- --ignored --test-threads=1 --nocapture \
    --skip gpu_caduceus_ps_1mb_window
cargo test --test cli -- --ignored --exact --nocapture cuda_matches_cpu_end_to_end
cargo test --test cli -- --ignored --exact --nocapture version_finds_the_gpu_and_auto_takes_it
cargo test --test caduceus_cli -- --ignored --exact --nocapture caduceus_cuda_matches_cpu_end_to_end
GENOMAMBA_BENCH_WINDOW=1024 GENOMAMBA_BENCH_ONLY=128x4 GENOMAMBA_BENCH_OUT=$target/gpu-bench-emu.jsonl \
    cargo test -p genomamba-cuda --test gpu_bench -- --ignored --nocapture
