"""Bases/s of genomamba's fast CPU engine vs HF transformers' Mamba CPU path, same model and input.

Run from the repository root after `cargo build --release -p genomamba-model --example stream`:
    /opt/torchenv/bin/python crates/genomamba-model/scripts/bench_peer.py [--threads 2] [--sizes small,caduceus,130m]

For each size it writes a random HF Mamba model (all parameters randomised) to a temporary directory, times
`MambaForCausalLM` on the first bases of data/genomes/ecoli536.fna.gz (torch threads = --threads; the HF path
materialises (E, L, N) tensors, so it gets fewer bases), then runs target/release/examples/stream on the same
model directory with chunk 65536 and prints both rates and their ratio.
"""

import argparse
import gzip
import os
import re
import subprocess
import tempfile
import time

import torch
from safetensors.torch import save_file
from transformers import MambaConfig, MambaForCausalLM

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SIZES = {  # name: (d_model, n_layer, bases for HF, bases for genomamba)
    "small": (128, 4, 8192, 1 << 17),
    "caduceus": (256, 16, 4096, 1 << 18),
    "130m": (768, 24, 1024, 65536),
}


def ecoli(n):
    seq = []
    with gzip.open(os.path.join(REPO, "data", "genomes", "ecoli536.fna.gz"), "rt") as f:
        for line in f:
            if line.startswith(">"):
                continue
            seq.extend(line.strip().upper())
            if len(seq) >= n:
                break
    table = {"A": 7, "C": 8, "G": 9, "T": 10}
    return torch.tensor([table.get(b, 11) for b in seq[:n]], dtype=torch.long)


def make_model(d, n_layer, out_dir):
    cfg = MambaConfig(vocab_size=16, hidden_size=d, num_hidden_layers=n_layer, state_size=16, conv_kernel=4,
                      expand=2, tie_word_embeddings=True)
    model = MambaForCausalLM(cfg).float().eval()
    gen = torch.Generator().manual_seed(d * 1000 + n_layer)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen) * 15 + 1))
            elif name.endswith("dt_proj.bias"):
                p.copy_(-3.5 + torch.randn(p.shape, generator=gen))
            elif name.endswith("norm.weight") or name.endswith("norm_f.weight") or name.endswith("mixer.D"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    os.makedirs(out_dir, exist_ok=True)
    cfg.save_pretrained(out_dir)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(out_dir, "model.safetensors"))
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="small,caduceus,130m")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exe = os.path.join(REPO, "target", "release", "examples", "stream")
    tmp = tempfile.mkdtemp(prefix="genomamba-bench-")
    for name in args.sizes.split(","):
        d, n_layer, n_hf, n_ours = SIZES[name]
        model = make_model(d, n_layer, os.path.join(tmp, name))
        ids = ecoli(n_hf)[None]
        with torch.no_grad():
            model(ids[:, :256])  # warm-up
            t = time.perf_counter()
            model(ids, use_cache=False)
            hf_rate = n_hf / (time.perf_counter() - t)
        res = subprocess.run([exe, "--model", os.path.join(tmp, name), "--bases", str(n_ours), "--chunk", "65536",
                              "--threads", str(args.threads)], check=True, capture_output=True, text=True)
        ours = float(re.search(r"= (\d+) bases/s", res.stdout).group(1))
        print(f"{name:9s} d_model {d:4d} x {n_layer:2d}: genomamba {ours:10.0f} bases/s ({n_ours} bases), "
              f"transformers {hf_rate:8.0f} bases/s ({n_hf} bases): {ours / hf_rate:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
