#!/usr/bin/env bash
# Builds the CPU emulation of the CUDA driver, NVRTC and cuBLAS (see README.md here) into $EMU_DIR
# (default target/cuda-emu): libcuda.so, libnvrtc.so, libcublas.so and the header the fake NVRTC force-includes.
# Needs a C++17 compiler (c++ or $CXX). x86-64 Linux only (the fiber switch is x86-64 assembly).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${EMU_DIR:-$root/${CARGO_TARGET_DIR_EMU:-target}/cuda-emu}
cxx=${CXX:-c++}
mkdir -p "$out"
flags=(-std=c++17 -O2 -fPIC -shared -Wall -Wextra -Werror)
"$cxx" "${flags[@]}" -o "$out/libcuda.so" "$here/cuda_emu.cpp" -ldl
"$cxx" "${flags[@]}" -o "$out/libcublas.so" "$here/cublas_emu.cpp" -ldl
"$cxx" "${flags[@]}" -o "$out/libnvrtc.so" "$here/nvrtc_emu.cpp" -ldl
cp "$here/cuda_on_cpu.h" "$out/"
# A compile of a trivial kernel through the header catches a broken header before any test runs.
printf '%s\n' 'extern "C" __global__ void k(float* x) { x[threadIdx.x] = 1.0f; }' 'GM_EMU_REGISTER(k)' \
    > "$out/selftest.cpp"
"$cxx" -std=c++17 -O2 -fPIC -shared -Wall -Wno-unknown-pragmas -include "$out/cuda_on_cpu.h" \
    -o "$out/selftest.so" "$out/selftest.cpp"
echo "$out"
