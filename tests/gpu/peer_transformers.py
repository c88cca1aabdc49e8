#!/usr/bin/env python3
"""Peer benchmark on the GPU machine: Hugging Face transformers' Mamba (random weights, the same shapes as
genomamba's benchmark: d_model x layers 128x4, 256x16, 768x24, d_state 16, d_conv 4, expand 2, vocab 16),
f32 and bf16, forward only (no cache), timed with CUDA sync. Writes one JSON object per line to --out.

Without the mamba-ssm / causal-conv1d CUDA extensions (the GPU machine has neither, and nothing is fetched),
transformers runs its PyTorch path: the selective scan is a Python loop over positions, a few kernel launches
per position and layer, so its cost per base does not depend on the length. A 1,048,576-base window would take
minutes per model; the rate is measured on --length bases instead (default 8,192, after a --warmup run of 512)
and reported with that length. With mamba-ssm present the whole --window is timed. When a length does not fit
in memory it is halved until it does.
"""
import argparse
import json
import time

import torch


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def forward_seconds(model, length, device):
    ids = torch.randint(7, 11, (1, length), device=device)
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    sync(device)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=1 << 20)
    ap.add_argument("--length", type=int, default=8192, help="bases timed on the PyTorch path")
    ap.add_argument("--budget", type=float, default=130.0, help="seconds for the whole script")
    ap.add_argument("--device", default="cuda", help="cpu: a quick check of this script off the GPU machine")
    ap.add_argument("--warmup", type=int, default=512)
    a = ap.parse_args()
    start = time.time()
    import transformers
    from transformers import MambaConfig, MambaModel

    info = {"kind": "peer-env", "torch": torch.__version__, "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else a.device}
    for ext in ("mamba_ssm", "causal_conv1d"):
        try:
            __import__(ext)
            info[ext] = True
        except ImportError:
            info[ext] = False
    fast = info["mamba_ssm"] and info["causal_conv1d"]
    info["path"] = "mamba-ssm kernels" if fast else "PyTorch (sequential scan loop)"
    with open(a.out, "a") as f:
        def emit(rec):
            print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")
            f.flush()

        emit(info)
        for d_model, layers in [(128, 4), (256, 16), (768, 24)]:
            for name, dtype in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
                rec = {"kind": "peer", "model": f"{d_model}x{layers}", "dtype": name}
                if time.time() - start > a.budget:
                    emit({**rec, "skipped": "time budget"})
                    continue
                cfg = MambaConfig(vocab_size=16, hidden_size=d_model, state_size=16, num_hidden_layers=layers,
                                  conv_kernel=4, expand=2, use_cache=False)
                model = MambaModel(cfg).to(a.device, dtype=dtype).eval()
                length = a.window if fast else a.length
                try:
                    forward_seconds(model, a.warmup, a.device)  # warm-up
                    while True:
                        try:
                            secs = forward_seconds(model, length, a.device)
                            break
                        except torch.cuda.OutOfMemoryError:
                            torch.cuda.empty_cache()
                            if length <= 1024:
                                raise
                            length //= 2
                    emit({**rec, "length": length, "seconds": secs, "bases_per_s": length / secs,
                          "window_s_at_this_rate": a.window * secs / length})
                except Exception as e:  # one failing case must not hide the others
                    emit({**rec, "error": f"{type(e).__name__}: {e}"[:300]})
                del model
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
