#!/usr/bin/env bash
# Compiles every kernel under every specialisation for sm_90 through NVRTC 13.0 (no GPU needed) and fails on
# register spills. NVRTC comes from the PyPI wheel pinned to 13.0.88: it matches driver 580 / CUDA 13.0,
# and a newer NVRTC would emit PTX such a driver refuses. Called by .ci/run; run from anywhere.
#   VENV=...             where to create the virtual environment (default /tmp/nvrtc-venv)
#   GENOMAMBA_CUBIN_OUT  optional: also write the CUBINs there (usable as GENOMAMBA_CUBIN_DIR on a GPU box)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/tmp/nvrtc-venv}
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q nvidia-cuda-nvrtc==13.0.88
LIB=$("$VENV/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
[ -e "$LIB/libnvrtc.so.13" ] || { echo "libnvrtc.so.13 not found under $LIB" >&2; exit 1; }
LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" REQUIRE_NVRTC=1 \
    cargo test -p genomamba-cuda --features nvrtc-check --test nvrtc_check -- --nocapture
