#!/usr/bin/env bash
# Builds, HERE (the CPU machine), everything tests/gpu/run.sh needs on the GPU machine, into target/gpu-carry/
# (ignored by git, under the 64 MiB carry limit): the release CLI, the GPU test and benchmark binaries
# (stripped), CUBINs prebuilt by NVRTC 13.0 (fallback when the GPU machine has no libnvrtc), and a BUILD note
# (commit, tree state, toolchain). Then carry `target/gpu-carry` (see tests/gpu/README.md). The E. coli step
# reads the tracked data/genomes/ecoli536.fna.gz, which travels with the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=target/gpu-carry
rm -rf "$C" && mkdir -p "$C/cubin"
# GPU tests and benchmark of genomamba-cuda, optimised (`--release`: the benchmark times host code too), and
# the CLI tests that compare `--device cuda` with the CPU end to end (test profile: they only drive the carried
# release binary and compare its tables).
cargo test --release -p genomamba-cuda --lib --tests --no-run --message-format=json \
    | python3 -c '
import json, sys, shutil
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        shutil.copy(m["executable"], "'"$C"'/gpu_lib")
        print("copied the unit tests as gpu_lib")
    elif m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        name = m["target"]["name"]
        if name in ("gpu", "gpu_bench", "gpu_caduceus"):
            shutil.copy(m["executable"], "'"$C"'/" + name)
            print("copied", name)
'
cargo test --test cli --test caduceus_cli --no-run --message-format=json \
    | python3 -c '
import json, sys, shutil
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("cli", "caduceus_cli"):
        shutil.copy(m["executable"], "'"$C"'/" + m["target"]["name"])
        print("copied", m["target"]["name"])
'
# The CLI (release), for the end-to-end E. coli run; skipped with NO_CLI=1.
if [ "${NO_CLI:-0}" != 1 ]; then
    cargo build --release --bin genomamba
    cp target/release/genomamba "$C/genomamba"
fi
strip "$C/gpu" "$C/gpu_lib" "$C/gpu_bench" "$C/gpu_caduceus" "$C/cli" "$C/caduceus_cli"
[ -f "$C/genomamba" ] && strip "$C/genomamba" || true
# Prebuilt CUBINs (sm_90) from NVRTC 13.0.88, also checking every kernel compiles without spills.
GENOMAMBA_CUBIN_OUT="$PWD/$C/cubin" crates/genomamba-cuda/nvrtc-check.sh > "$C/nvrtc-check.log"
{
    echo "commit $(git rev-parse HEAD) built $(date -u +%FT%TZ)"
    git status --short | sed 's/^/  changed: /'
    rustc -V
    echo "CUBINs: $(ls "$C/cubin" | wc -l) files by nvidia-cuda-nvrtc $(grep -o 'nvrtc==[0-9.]*' crates/genomamba-cuda/nvrtc-check.sh | cut -d= -f3)"
} > "$C/BUILD"
cat "$C/BUILD"
du -sh "$C" && ls -la "$C"
