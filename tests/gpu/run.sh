#!/usr/bin/env bash
# The GPU-machine script: one call does every device check of genomamba-cuda. Needs the folder
# target/gpu-carry built here by tests/gpu/build.sh (carried); no Rust on the GPU machine. Results go to
# $OUT (run.log, gpu-tests.log, gpu-caduceus.log, e2e.log, bench.jsonl, ecoli.log, peer.jsonl). The whole
# script keeps to a deadline ($GPU_RUN_BUDGET seconds, default 420, so that a 600 s call still has room); each
# step gets its own limit, cut to what is left, and the steps run in order of value: parity first, the peer
# last. A failing step does not stop the next one. Usage (run tool): bash tests/gpu/run.sh
set -u
OUT=${OUT:-/tmp/genomamba-gpu-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
# The test binaries were built elsewhere: they find data/ and tests/golden/ here.
export GENOMAMBA_REPO=$PWD
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
C=target/gpu-carry
END=$((SECONDS + ${GPU_RUN_BUDGET:-420}))
step() { echo; echo "=== $* ($(date -u +%T), $((END - SECONDS)) s left)"; }
# limit SECONDS: the step's own limit, cut to what is left of the deadline (at least 5 s).
limit() { local left=$((END - SECONDS - 10)); [ "$left" -lt "$1" ] && echo $((left > 5 ? left : 5)) || echo "$1"; }
# Runs a command under `timeout`, with -v resource figures when /usr/bin/time exists, else wall seconds.
timed() {
    local lim=$1; shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v timeout -k 5 "$lim" "$@"
    else
        local t0=$SECONDS rc
        timeout -k 5 "$lim" "$@"; rc=$?
        echo "Elapsed (wall clock) seconds: $((SECONDS - t0)) (no /usr/bin/time here)"
        return $rc
    fi
}

main() {
step "build"
cat "$C/BUILD" 2>/dev/null || echo "no $C/BUILD"
chmod +x "$C"/gpu* "$C"/cli "$C"/caduceus_cli "$C"/genomamba 2>/dev/null

step "device"
nvidia-smi || true
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm --format=csv || true
uname -a; (ldd --version | head -1) || true

step "libraries"
PY=$(command -v python3 || true)
TORCH_NV=$("$PY" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${TORCH_NV:+:$TORCH_NV}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
# found LIB: where the loader would find LIB (the loader cache, then LD_LIBRARY_PATH), or nothing.
found() {
    ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l { print $NF; exit }'
    for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$1" ] && echo "$d/$1"; done
}
for l in libcuda.so.1 libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublas.so.13 libcublasLt.so.13; do
    printf '%-28s %s\n' "$l" "$(found "$l" | head -1)"
done
if [ -z "$(found libnvrtc.so.13)" ]; then
    echo "no libnvrtc.so.13 found: using the CUBINs prebuilt by NVRTC 13.0.88"
    export GENOMAMBA_CUBIN_DIR=$PWD/$C/cubin
fi
ls -la "$C" || { echo "missing $C: build it with tests/gpu/build.sh and carry it"; return 1; }

step "GPU tests (parity, chunking, batch, pooling, golden)"
timeout -k 5 "$(limit 180)" "$C/gpu" --ignored --test-threads=1 --nocapture 2>&1 | tee "$OUT/gpu-tests.log"
echo "gpu tests exit: ${PIPESTATUS[0]}"
if grep -q "FAILED\|panicked" "$OUT/gpu-tests.log" && [ -z "${GENOMAMBA_CUBIN_DIR:-}" ]; then
    step "GPU tests again with prebuilt CUBINs (isolates runtime-NVRTC problems)"
    GENOMAMBA_CUBIN_DIR=$PWD/$C/cubin timeout -k 5 "$(limit 90)" "$C/gpu" --ignored --test-threads=1 \
        gpu_parity_f32 2>&1 | tee "$OUT/gpu-tests-cubin.log" | tail -20
    if [ "${PIPESTATUS[0]}" = 0 ]; then
        echo "the prebuilt CUBINs pass where the runtime NVRTC failed: the later steps use the CUBINs"
        export GENOMAMBA_CUBIN_DIR=$PWD/$C/cubin
    fi
fi

step "GPU unit tests of genomamba-cuda (cuBLAS projections split in row blocks == one call)"
timeout -k 5 "$(limit 30)" "$C/gpu_lib" --ignored --test-threads=1 2>&1 | tee "$OUT/gpu-lib.log" | tail -5
echo "gpu unit tests exit: ${PIPESTATUS[0]}"

step "Caduceus GPU tests (golden models vs CPU, chunked == one pass, bf16, 1 Mb PS window)"
timeout -k 5 "$(limit 120)" "$C/gpu_caduceus" --ignored --test-threads=1 --nocapture 2>&1 | tee "$OUT/gpu-caduceus.log"
echo "caduceus gpu tests exit: ${PIPESTATUS[0]}"

step "end to end: --device cuda vs --device cpu through the CLI (Mamba genome windows and read batches; Caduceus)"
for t in "cli version_finds_the_gpu_and_auto_takes_it" "cli cuda_matches_cpu_end_to_end" \
    "caduceus_cli caduceus_cuda_matches_cpu_end_to_end"; do
    set -- $t
    GENOMAMBA_TEST_BIN=$PWD/$C/genomamba timeout -k 5 "$(limit 90)" "$C/$1" --ignored --exact --nocapture "$2" \
        >> "$OUT/e2e.log" 2>&1
    echo "$2 exit: $?"
done
tail -30 "$OUT/e2e.log"

step "benchmark: 1,048,576-base window, 128x4 / 256x16 / 768x24, f32 and bf16"
GENOMAMBA_BENCH_OUT="$OUT/bench.jsonl" timeout -k 5 "$(limit 150)" "$C/gpu_bench" --ignored --nocapture 2>&1 | tail -30

step "end to end: whole E. coli genome (read, compute, write Parquet)"
ecoli=data/genomes/ecoli536.fna.gz
if [ -x "$C/genomamba" ] && [ -f "$ecoli" ]; then
    "$C/genomamba" version
    timed "$(limit 90)" "$C/genomamba" predict "$ecoli" -o /tmp/ecoli.parquet --device cuda --force \
        > "$OUT/ecoli.log" 2>&1
    echo "predict exit: $?"; tail -25 "$OUT/ecoli.log"; ls -la /tmp/ecoli.parquet 2>/dev/null
    timed "$(limit 60)" "$C/genomamba" embed "$ecoli" -o /tmp/ecoli-emb.parquet --pool 1000 --device cuda --force \
        >> "$OUT/ecoli.log" 2>&1
    echo "embed exit: $?"; tail -25 "$OUT/ecoli.log"; ls -la /tmp/ecoli-emb.parquet 2>/dev/null
else
    echo "skipped: $C/genomamba or $ecoli missing"
fi

step "peer: transformers Mamba on this GPU (last: it only fills what time is left)"
left=$((END - SECONDS - 15))
if [ "$left" -gt 20 ]; then
    PYTHONUNBUFFERED=1 timeout -k 5 "$left" "$PY" tests/gpu/peer_transformers.py --out "$OUT/peer.jsonl" \
        --budget $((left - 10)) 2>&1 | tail -30
else
    echo "skipped: no time left"
fi
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu --format=csv || true
step "done"
}

# A pipe rather than `exec > >(tee)`: the last lines reach run.log even when the call ends the script's processes.
main 2>&1 | tee "$OUT/run.log"
