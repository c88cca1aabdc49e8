"""How far the CPU engine and the CUDA engine (run on the CPU emulation of CUDA) are from transformers' Mamba.

`genomamba predict` over data/mixed.fa in 2,048-base windows (256 of burn-in) on the embedded default
model, with `--device cpu` and with `--device cuda` on the emulation; then transformers' MambaForCausalLM
(f32, its reference PyTorch path) over the first window of the `ecoli_tail` record (50 N, then E. coli).
Prints the largest and the 99th-percentile absolute difference of the four probabilities per engine.
`--batch 1` runs each window on its own; by default the CUDA engine runs the record windows of
mixed.fa side by side in one batch, which changes its scan's time blocks and so its rounding.

Run from the repository root after `bash tests/gpu/emu/build.sh`, with a python that has torch,
transformers and pyarrow:

    python tests/gpu/emu/vs_transformers.py [--genomamba target/debug/genomamba]
"""

import argparse
import os
import subprocess
import tempfile

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import MambaForCausalLM

RECORD = "ecoli_tail"
WINDOW = 2048
TOKENS = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
COLUMNS = ["p_a", "p_c", "p_g", "p_t"]


def record(path, name):
    seq, inside = [], False
    for line in open(path):
        if line.startswith(">"):
            inside = line[1:].split()[0] == name
        elif inside:
            seq.append(line.strip())
    return "".join(seq)


def genomamba(binary, device, batch, out, env):
    subprocess.run(
        [binary, "predict", "data/mixed.fa", "--window", str(WINDOW), "--overlap", "256",
         "--device", device, "--batch", str(batch), "-q", "--force", "-o", out],
        check=True, env=env)
    table = pq.read_table(out)
    rows = np.array(table["chrom"].to_pylist()) == RECORD
    probs = np.stack([table[c].to_numpy(zero_copy_only=False).astype(float) for c in COLUMNS], 1)
    return probs[rows][:WINDOW]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--genomamba", default="target/debug/genomamba")
    ap.add_argument("--emu", default="target/cuda-emu")
    ap.add_argument("--batch", type=int, default=0, help="genomamba --batch (1: each window on its own)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = MambaForCausalLM.from_pretrained(os.path.abspath("data/models/ecoli-mamba-small")).float().eval()
    ids = torch.tensor([[TOKENS[c.upper()] for c in record("data/mixed.fa", RECORD)[:WINDOW]]])
    with torch.no_grad():
        logits = model(ids).logits[0][:, [7, 8, 9, 10]].double()
    want = np.full((WINDOW, 4), np.nan)
    want[1:] = torch.softmax(logits, -1).numpy()[:-1]  # row t: the base at t given the bases before it
    emu = dict(os.environ, LD_LIBRARY_PATH=os.path.abspath(args.emu))
    with tempfile.TemporaryDirectory() as tmp:
        for device, env in [("cpu", os.environ), ("cuda", emu)]:
            got = genomamba(args.genomamba, device, args.batch, os.path.join(tmp, device + ".parquet"), env)
            diff = np.abs(got - want)
            print(f"{device:4} vs transformers on {RECORD}[:{WINDOW}]: max {np.nanmax(diff):.2e}, "
                  f"p99 {np.nanpercentile(diff, 99):.2e}")


if __name__ == "__main__":
    main()
