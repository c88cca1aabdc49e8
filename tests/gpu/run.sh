#!/usr/bin/env bash
# The GPU-machine script: one call does every device check of genomamba-cuda. Needs the folder
# target/gpu-carry built here by tests/gpu/build.sh (carried); no Rust on the GPU machine. Results go to
# $OUT (run.log, gpu-tests.log, bench.jsonl, peer.jsonl, ecoli.log). Each step has its own time limit; the
# whole script stays under ~9 minutes. Usage (run tool): bash tests/gpu/run.sh
set -u
OUT=${OUT:-/tmp/genomamba-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
cd "$(dirname "$0")/../.."
# The test binaries were built elsewhere: they find data/ and tests/golden/ here.
export GENOMAMBA_REPO=$PWD
C=target/gpu-carry
step() { echo; echo "=== $* ($(date -u +%T))"; }

step "device"
nvidia-smi || true
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm --format=csv || true
uname -a; (ldd --version | head -1) || true

step "libraries"
PY=$(command -v python3 || true)
TORCH_NV=$("$PY" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${TORCH_NV:+:$TORCH_NV}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
for l in libcuda.so.1 libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublas.so.13 libcublasLt.so.13; do
    printf '%-28s %s\n' "$l" "$( (ldconfig -p | grep -m1 " $l " | awk '{print $NF}') ; for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$l" ] && echo "$d/$l"; done | head -1)"
done
have_nvrtc=0
for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libnvrtc.so.13" ] && have_nvrtc=1; done
ldconfig -p | grep -q ' libnvrtc.so.13 ' && have_nvrtc=1
if [ "$have_nvrtc" = 0 ]; then
    echo "no libnvrtc.so.13 found: using the CUBINs prebuilt by NVRTC 13.0.88"
    export GENOMAMBA_CUBIN_DIR=$PWD/$C/cubin
fi
ls -la "$C" || { echo "missing $C: build it with tests/gpu/build.sh and carry it"; exit 1; }

step "GPU tests (parity, chunking, batch, pooling, golden)"
timeout 240 "$C/gpu" --ignored --test-threads=1 --nocapture 2>&1 | tee "$OUT/gpu-tests.log"
echo "gpu tests exit: ${PIPESTATUS[0]}"
if grep -q "FAILED\|panicked" "$OUT/gpu-tests.log" && [ -z "${GENOMAMBA_CUBIN_DIR:-}" ]; then
    step "GPU tests again with prebuilt CUBINs (isolates runtime-NVRTC problems)"
    GENOMAMBA_CUBIN_DIR=$PWD/$C/cubin timeout 120 "$C/gpu" --ignored --test-threads=1 gpu_parity_f32 2>&1 | tail -20
fi

step "Caduceus GPU tests (golden models vs CPU, chunked == one pass, bf16, 1 Mb PS window)"
timeout 150 "$C/gpu_caduceus" --ignored --test-threads=1 --nocapture 2>&1 | tee "$OUT/gpu-caduceus.log"
echo "caduceus gpu tests exit: ${PIPESTATUS[0]}"

step "end to end: --device cuda vs --device cpu through the CLI (Mamba genome windows and read batches; Caduceus)"
for t in "cli cuda_matches_cpu_end_to_end" "caduceus_cli caduceus_cuda_matches_cpu_end_to_end"; do
    set -- $t
    GENOMAMBA_TEST_BIN=$PWD/$C/genomamba timeout 90 "$C/$1" --ignored --exact --nocapture "$2" 2>&1 | tail -8
    echo "$2 exit: ${PIPESTATUS[0]}"
done

step "benchmark: 1,048,576-base window, 128x4 / 256x16 / 768x24, f32 and bf16"
GENOMAMBA_BENCH_OUT="$OUT/bench.jsonl" timeout 200 "$C/gpu_bench" --ignored --nocapture 2>&1 | tail -30

step "peer: transformers Mamba on this GPU"
PYTHONUNBUFFERED=1 timeout 150 "$PY" tests/gpu/peer_transformers.py --out "$OUT/peer.jsonl" --budget 130 2>&1 | tail -30

step "end to end: whole E. coli genome"
if [ -x "$C/genomamba" ] && [ -f "$C/ecoli536.fa" ]; then
    "$C/genomamba" --version
    /usr/bin/time -v timeout 120 "$C/genomamba" predict "$C/ecoli536.fa" -o /tmp/ecoli.parquet --device cuda --force \
        > "$OUT/ecoli.log" 2>&1
    echo "predict exit: $?"; tail -25 "$OUT/ecoli.log"; ls -la /tmp/ecoli.parquet 2>/dev/null
    /usr/bin/time -v timeout 60 "$C/genomamba" embed "$C/ecoli536.fa" -o /tmp/ecoli-emb.parquet --pool 1000 --device cuda --force \
        >> "$OUT/ecoli.log" 2>&1
    echo "embed exit: $?"; tail -25 "$OUT/ecoli.log"; ls -la /tmp/ecoli-emb.parquet 2>/dev/null
else
    echo "skipped: $C/genomamba or $C/ecoli536.fa missing"
fi
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu --format=csv || true
step "done"
