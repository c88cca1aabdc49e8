#!/usr/bin/env python3
"""Baselines for the card: uniform and order-k Markov models (k = 1..10) fitted on exactly the model's
training data (both strands of NC_008253.1 [0, 4325376)), evaluated with the model's protocol
(eval.py: windows of W bases from the region start, position 0 of each window skipped, only
ACGT targets counted).  Inside a window a position j < k uses the order-j model (no context is taken
from before the window start), so the Markov models see exactly the context the Mamba sees.

Two smoothings, both reported:
  additive (Lidstone): p(b|ctx) = (n(ctx,b)+alpha) / (n(ctx)+4 alpha);
  interpolated (recursive Dirichlet prior, PPM/Jelinek-Mercer-like):
      p_m(b|ctx_m) = (n(ctx_m,b) + beta p_{m-1}(b|ctx_{m-1})) / (n(ctx_m) + beta),  p_0 likewise from 1/4.
alpha resp. beta is chosen per k from a grid on the validation slice NC_008253.1:4325377-4390912 (also
never trained on, and disjoint from the evaluation region).

Needs numpy only.  Usage: python baselines.py [--window 65536] [--out baselines.json]
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from eval import (HOLDOUT_START, VAL_START, TRAIN_END, read_fasta_ids, ECOLI, LAMBDA,  # noqa: E402
                  revcomp)

ALPHAS = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
BETAS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]


def codes(ids):
    return (ids.astype(np.int64) - 7)  # A=0 C=1 G=2 T=3 (no N in these genomes; asserted)


def counts(train_strands, k):
    tot = np.zeros(4 ** (k + 1), dtype=np.int64)
    for s in train_strands:
        c = codes(s)
        if len(c) <= k:
            continue
        idx = np.zeros(len(c) - k, dtype=np.int64)
        for j in range(k + 1):
            idx = idx * 4 + c[j:len(c) - k + j]
        tot += np.bincount(idx, minlength=4 ** (k + 1))
    return tot.reshape(4 ** k, 4)


def logprobs_order(c, k, cnt, alpha, window):
    """natural-log probability of each target under order-min(k, j) model; returns (lp, pos) for the
    counted positions (j >= 1 within each window)."""
    n = len(c)
    lp = np.full(n, np.nan)
    j = np.arange(n) % window  # position within its window
    for o in range(1, k + 1):   # order used: min(k, j); j = 0 is never counted
        sel = np.nonzero(j >= k)[0] if o == k else np.nonzero(j == o)[0]
        tab = cnt[o]
        p = np.log((tab + alpha) / (tab.sum(1, keepdims=True) + 4 * alpha))
        ctx = np.zeros(len(sel), dtype=np.int64)
        for m in range(o, 0, -1):
            ctx = ctx * 4 + c[sel - m]
        lp[sel] = p[ctx, c[sel]]
    return lp[j >= 1]


def logprobs_interp(c, k, cnt, beta, window):
    n = len(c)
    j = np.arange(n) % window
    pos = np.nonzero(j >= 1)[0]
    order = np.minimum(j[pos], k)
    tab0 = cnt[0][0]
    p = (tab0[c[pos]] + beta * 0.25) / (tab0.sum() + beta)
    for m in range(1, k + 1):
        use = order >= m
        sel = pos[use]
        ctx = np.zeros(len(sel), dtype=np.int64)
        for q in range(m, 0, -1):
            ctx = ctx * 4 + c[sel - q]
        tab = cnt[m]
        p[use] = (tab[ctx, c[sel]] + beta * p[use]) / (tab[ctx].sum(1) + beta)
    return np.log(p)


def bits(c, k, cnt, alpha, window, kind="additive"):
    f = logprobs_order if kind == "additive" else logprobs_interp
    lp = f(c, k, cnt, alpha, window)
    assert not np.isnan(lp).any()
    return float(-lp.mean() / math.log(2)), int(len(lp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=65536)
    ap.add_argument("--out", default=os.path.join(HERE, "baselines.json"))
    args = ap.parse_args()
    name, eco = next(iter(read_fasta_ids(ECOLI).items()))
    lname, lam = next(iter(read_fasta_ids(LAMBDA).items()))
    assert ((eco >= 7) & (eco <= 10)).all() and ((lam >= 7) & (lam <= 10)).all()
    fwd = eco[:TRAIN_END]
    strands = [fwd, revcomp(fwd)]
    held = codes(eco[HOLDOUT_START:])
    val = codes(eco[VAL_START:HOLDOUT_START])
    lamc = codes(lam)
    cnts = [counts(strands, kk) for kk in range(0, 11)]
    res = {"protocol": {"window": args.window, "skip": "position 0 of each window", "targets": "ACGT",
                        "smoothing": "additive (Lidstone) and interpolated (recursive Dirichlet prior); alpha/beta per k chosen on the validation slice",
                        "context": "order min(k, j) at window position j"},
           "uniform": {"ecoli_heldout": 2.0, "lambda": 2.0}}
    for kind, grid in (("additive", ALPHAS), ("interpolated", BETAS)):
        res[kind] = {}
        for k in range(1, 11):
            best = min(grid, key=lambda a: bits(val, k, cnts, a, args.window, kind)[0])
            vb, _ = bits(val, k, cnts, best, args.window, kind)
            hb, hn = bits(held, k, cnts, best, args.window, kind)
            lb, ln_ = bits(lamc, k, cnts, best, args.window, kind)
            res[kind][str(k)] = {"alpha" if kind == "additive" else "beta": best, "val": round(vb, 5),
                                 "ecoli_heldout": round(hb, 5), "lambda": round(lb, 5), "n_ecoli": hn,
                                 "n_lambda": ln_}
            print(kind, k, res[kind][str(k)], flush=True)
    allm = [(kind, k, v) for kind in ("additive", "interpolated") for k, v in res[kind].items()]
    for key, tgt in (("best_markov_ecoli", "ecoli_heldout"), ("best_markov_lambda", "lambda"),
                     ("best_markov_by_val", "val")):
        kind, k, v = min(allm, key=lambda x: x[2][tgt])
        res[key] = {"smoothing": kind, "k": int(k), **v}
        print(key, json.dumps(res[key]))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
