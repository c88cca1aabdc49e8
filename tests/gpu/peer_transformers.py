#!/usr/bin/env python3
"""Peer benchmark on the GPU machine: Hugging Face transformers' Mamba (random weights, the same shapes as
genomamba's benchmark: d_model x layers 128x4, 256x16, 768x24, d_state 16, d_conv 4, expand 2, vocab 16)
over one window of 1,048,576 tokens, f32 and bf16, forward only (no cache), timed with CUDA sync.

Without the mamba-ssm / causal-conv1d CUDA extensions transformers runs its PyTorch path, which materialises
(batch, d_inner, length, d_state) tensors; when the full window does not fit, the length is halved until it
does and the rate is reported for that length. Writes one JSON object per line to --out.
"""
import argparse
import json
import time

import torch


def run(d_model, layers, dtype, length, reps):
    from transformers import MambaConfig, MambaModel

    cfg = MambaConfig(vocab_size=16, hidden_size=d_model, state_size=16, num_hidden_layers=layers,
                      conv_kernel=4, expand=2, use_cache=False)
    model = MambaModel(cfg).to("cuda", dtype=dtype).eval()
    ids = torch.randint(7, 11, (1, length), device="cuda")
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(input_ids=ids, use_cache=False)
        torch.cuda.synchronize()
    secs = (time.perf_counter() - t0) / reps
    del model
    return secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=1 << 20)
    ap.add_argument("--budget", type=float, default=130.0, help="seconds for the whole script")
    a = ap.parse_args()
    start = time.time()
    import transformers
    info = {"kind": "peer-env", "torch": torch.__version__, "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name(0)}
    try:
        import mamba_ssm  # noqa: F401
        info["mamba_ssm"] = True
    except ImportError:
        info["mamba_ssm"] = False
    with open(a.out, "a") as f:
        print(json.dumps(info), flush=True)
        f.write(json.dumps(info) + "\n")
        for d_model, layers in [(128, 4), (256, 16), (768, 24)]:
            for name, dtype in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
                if time.time() - start > a.budget:
                    rec = {"kind": "peer", "model": f"{d_model}x{layers}", "dtype": name, "skipped": "time budget"}
                else:
                    length, rec = a.window, None
                    while length >= 4096 and rec is None:
                        try:
                            secs = run(d_model, layers, dtype, length, 1)
                            rec = {"kind": "peer", "model": f"{d_model}x{layers}", "dtype": name,
                                   "length": length, "seconds": secs, "bases_per_s": length / secs}
                        except torch.cuda.OutOfMemoryError:
                            length //= 2
                        finally:
                            torch.cuda.empty_cache()
                    if rec is None:
                        rec = {"kind": "peer", "model": f"{d_model}x{layers}", "dtype": name, "error": "OOM"}
                print(json.dumps(rec), flush=True)
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
