"""What `score` with a Caduceus model costs, against the peer in the same run.

A Caduceus-PS model of the published size (d_model 256, 16 layers, fused add-norm; random weights made by the
Caduceus code, as in tests/golden/caduceus/make_goldens.py) scores N random SNVs of E. coli 536 (seed 7), each at
its masked site with FLANK bases on each side:
  genomamba  `genomamba score --device cpu --overlap FLANK` (whole command, /usr/bin/time -v: wall, peak RSS);
  peer       the Caduceus modeling code itself on the same CPU threads (its mamba-ssm imports routed to mamba-ssm's
             reference maths, the only path mamba-ssm has without CUDA), the same masked windows in batches of
             BATCH, timed from the first window to the last (model building and reading not counted).
Prints both times, their ratio and the largest difference of the probabilities (exp of logp_ref and logp_alt).

Usage (from the repository root, after a release build and `bash data/make.sh`):

    git clone https://github.com/kuleshov-group/caduceus /tmp/caduceus-src   # tested at commit 0060a6d
    /path/to/venv-with-torch/bin/python tests/bench/masked.py /tmp/caduceus-src [--sites 100] [--flank 256]
        [--threads 2] [--batch 16]
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "golden", "caduceus"))
import make_goldens  # noqa: E402  (the stand-ins, the random weights and the tied keys)

GENOME = os.path.join(REPO, "data", "derived", "ecoli536.fa")
TOKENS = {"A": 7, "C": 8, "G": 9, "T": 10}


def read_genome():
    name, parts = None, []
    with open(GENOME) as f:
        for line in f:
            if line.startswith(">"):
                name = line[1:].split()[0]
            else:
                parts.append(line.strip())
    return name, "".join(parts).upper()


def make_model(CaduceusConfig, MaskedLM, out_dir):
    config = CaduceusConfig(vocab_size=12, pad_vocab_size_multiple=8, rms_norm=True, residual_in_fp32=False,
                            norm_epsilon=1e-5, bidirectional=True, complement_map=dict(make_goldens.COMPLEMENT),
                            d_model=256, n_layer=16, rcps=True, fused_add_norm=True, bidirectional_strategy="add",
                            bidirectional_weight_tie=True,
                            ssm_cfg=dict(d_state=16, d_conv=4, expand=2, dt_rank="auto"))
    model = MaskedLM(config).eval()
    model.tie_weights()
    make_goldens.randomise(model, torch.Generator().manual_seed(99))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        cfg = config.to_dict()
        cfg["complement_map"] = {str(k): v for k, v in cfg["complement_map"].items()}
        json.dump(cfg, f, indent=1)
    drop = make_goldens.tied_keys(model, config)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k not in drop},
              os.path.join(out_dir, "model.safetensors"))
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--flank", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "genomamba"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    CaduceusConfig, MaskedLM = make_goldens.import_caduceus(args.src)
    work = tempfile.mkdtemp(prefix="genomamba-masked-")
    model = make_model(CaduceusConfig, MaskedLM, os.path.join(work, "model"))

    name, seq = read_genome()
    random.seed(7)
    sites = sorted(random.sample(range(len(seq)), args.sites))
    calls = [(p, seq[p], random.choice([b for b in "ACGT" if b != seq[p]])) for p in sites if seq[p] in TOKENS]
    vcf = os.path.join(work, "calls.vcf")
    with open(vcf, "w") as f:
        f.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for p, r, a in calls:
            f.write(f"{name}\t{p + 1}\t.\t{r}\t{a}\t.\t.\t.\n")

    out = os.path.join(work, "scores.parquet")
    cmd = ["/usr/bin/time", "-v", args.bin, "score", "--device", "cpu", "-q", "-t", str(args.threads),
           "--overlap", str(args.flank), "--vcf", vcf, "--reference", GENOME, "--model",
           os.path.join(work, "model"), "-o", out]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run.stderr).group(1)
    ours = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    table = pq.read_table(out).to_pandas()

    # The peer: the same windows, masked, through the Caduceus code.
    ids = torch.tensor([TOKENS.get(b, 11) for b in seq], dtype=torch.long)
    windows = []
    for p, r, a in calls:
        lo, hi = max(0, p - args.flank), min(len(seq), p + args.flank + 1)
        w = ids[lo:hi].clone()
        w[p - lo] = 3
        windows.append((w, p - lo))
    peer_probs = []
    start = time.perf_counter()
    with torch.no_grad():
        # Windows of one length go together (the full ones); the rest one by one.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i][0]))
        results = {}
        i = 0
        while i < len(order):
            j = i
            while j < len(order) and j - i < args.batch and len(windows[order[j]][0]) == len(windows[order[i]][0]):
                j += 1
            batch = torch.stack([windows[k][0] for k in order[i:j]])
            logits = model(batch, return_dict=True).logits
            for row, k in enumerate(order[i:j]):
                results[k] = torch.softmax(logits[row, windows[k][1], 7:11].double(), dim=-1).numpy()
            i = j
    peer = time.perf_counter() - start
    peer_probs = [results[k] for k in range(len(windows))]

    worst = 0.0
    for (p, r, a), probs, (_, row) in zip(calls, peer_probs, table.iterrows()):
        assert row["pos"] == p + 1 and row["status"] == "ok", row
        worst = max(worst, abs(np.exp(row["logp_ref"]) - probs["ACGT".index(r)]),
                    abs(np.exp(row["logp_alt"]) - probs["ACGT".index(a)]))
    bases = sum(len(w) for w, _ in windows)
    print(f"Caduceus-PS 256 x 16, {len(calls)} SNVs of E. coli 536, flank {args.flank} ({bases} bases run), "
          f"{args.threads} CPU threads:")
    print(f"  genomamba score: {ours:.1f} s wall (whole command), {rss / 1024:.0f} MiB peak RSS")
    print(f"  Caduceus code (PyTorch {torch.__version__}, batches of {args.batch}): {peer:.1f} s")
    print(f"  peer / genomamba: {peer / ours:.2f}x; largest probability difference {worst:.2e}")
    subprocess.run(["rm", "-rf", work], check=True)


if __name__ == "__main__":
    main()
