#!/usr/bin/env python3
"""codon_periodicity.png for the card.

There is no annotation file, so "genes" are long open reading frames found on the held-out region
itself: ATG ... first in-frame stop (TAA, TAG, TGA), at least 900 nt, on either strand, keeping for each
stop codon the longest ORF (its most upstream ATG); in E. coli almost all ORFs this long are real
protein-coding genes.  "Outside ORFs" = bases not covered by any ORF >= 300 nt in any of the six frames
(mostly intergenic, but not guaranteed to be).  For each class we plot the mean bits of the true base
(-log2 p(ref), same protocol as eval.py, W = 65536) by codon position in the ORF's own frame, for the
model and for the best Markov baseline; and p(true base) along a stretch of the region.

Usage: python plot.py [--model DIR] [--impl fast|hf]
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval as ev  # noqa: E402
import baselines as bl  # noqa: E402

STOPS = {"TAA", "TAG", "TGA"}


def orfs(seq, min_len):
    """[(start, end)) 0-based on this strand, ATG..stop inclusive, longest per stop."""
    out = []
    n = len(seq)
    for f in range(3):
        start = None
        for i in range(f, n - 2, 3):
            c = seq[i:i + 3]
            if start is None and c == "ATG":
                start = i
            elif c in STOPS:
                if start is not None and i + 3 - start >= min_len:
                    out.append((start, i + 3))
                start = None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=HERE)
    ap.add_argument("--impl", default="fast", choices=["fast", "hf"])
    ap.add_argument("--out", default=os.path.join(HERE, "codon_periodicity.png"))
    args = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = ev.heldout_ids()
    seq = "".join("ACGT"[i - 7] for i in ids)
    n = len(seq)
    model = ev.load_fast(args.model) if args.impl == "fast" else ev.load_hf(args.model)
    lp, offs, _ = ev.window_logprobs(model, ids, ev.WINDOW, args.impl)
    bits_m = np.full(n, np.nan)
    bits_m[offs] = -lp / math.log(2)

    # best Markov baseline (from baselines.json), same positions
    bj = json.load(open(os.path.join(HERE, "baselines.json")))["best_markov_ecoli"]
    eco = ev.read_fasta_ids(ev.ECOLI)[ev.ECOLI_NAME]
    fwd = eco[:ev.TRAIN_END]
    cnts = [bl.counts([fwd, ev.revcomp(fwd)], kk) for kk in range(0, bj["k"] + 1)]
    c = bl.codes(ids)
    f = bl.logprobs_interp if bj["smoothing"] == "interpolated" else bl.logprobs_order
    lpm = f(c, bj["k"], cnts, bj.get("beta", bj.get("alpha")), ev.WINDOW)
    bits_k = np.full(n, np.nan)
    bits_k[np.nonzero(np.arange(n) % ev.WINDOW >= 1)[0]] = -lpm / math.log(2)

    rc = "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[b] for b in reversed(seq))
    phase = np.full(n, -1)      # codon position 0,1,2 (forward-strand ORFs)
    phase_r = np.full(n, -1)    # codon position in reverse-strand ORFs
    for s, e in orfs(seq, 900):
        phase[s:e] = np.arange(e - s) % 3
    for s, e in orfs(rc, 900):
        # rc[s:e] is forward positions [n-e, n-s), read backwards
        pos = n - 1 - np.arange(s, e)
        phase_r[pos] = np.arange(e - s) % 3
    covered = np.zeros(n, bool)
    for s, e in orfs(seq, 300):
        covered[s:e] = True
    for s, e in orfs(rc, 300):
        covered[n - e:n - s] = True
    nf, nr = len(orfs(seq, 900)), len(orfs(rc, 900))

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [1.15, 1]})
    ax = axes[0]
    groups, labels = [], []
    for name, ph in (("fwd-strand ORFs", phase), ("rev-strand ORFs", phase_r)):
        only = ph >= 0
        only &= ~((phase >= 0) & (phase_r >= 0))
        for k in range(3):
            sel = only & (ph == k) & ~np.isnan(bits_m)
            groups.append((np.mean(bits_m[sel]), np.mean(bits_k[sel]), int(sel.sum())))
            labels.append(f"{name.split()[0]}\npos {k + 1}")
    sel = ~covered & ~np.isnan(bits_m)
    groups.append((np.mean(bits_m[sel]), np.mean(bits_k[sel]), int(sel.sum())))
    labels.append("outside\nORFs")
    x = np.arange(len(groups))
    ax.bar(x - 0.2, [g[0] for g in groups], 0.4, label="Mamba (this model)", color="#3569a8")
    ax.bar(x + 0.2, [g[1] for g in groups], 0.4, label=f"Markov k={bj['k']} ({bj['smoothing']})",
           color="#bbbbbb")
    ax.axhline(2.0, color="k", lw=0.6, ls=":")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("mean bits of the true base")
    lo = min(min(g[0], g[1]) for g in groups)
    ax.set_ylim(lo - 0.08, 2.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Held-out {ev.REGION}: codon position\n({nf}+{nr} ORFs >= 900 nt, fwd+rev)", fontsize=8)

    ax = axes[1]
    a, b = 150000, 156000
    p = 2.0 ** (-bits_m[a:b])
    k = 99
    sm = np.convolve(np.nan_to_num(p, nan=0.25), np.ones(k) / k, mode="valid")
    ax.plot(np.arange(a, b)[k // 2:k // 2 + len(sm)] + ev.HOLDOUT_START + 1, sm, lw=0.8, color="#3569a8")
    for s, e in orfs(seq, 900):
        if e > a and s < b:
            ax.axvspan(max(s, a) + ev.HOLDOUT_START + 1, min(e, b) + ev.HOLDOUT_START + 1, color="#f2c14e",
                       alpha=0.35, lw=0)
    for s, e in orfs(rc, 900):
        if n - s > a and n - e < b:
            ax.axvspan(max(n - e, a) + ev.HOLDOUT_START + 1, min(n - s, b) + ev.HOLDOUT_START + 1,
                       color="#8fc98f", alpha=0.35, lw=0)
    ax.axhline(0.25, color="k", lw=0.6, ls=":")
    ax.set_xlabel("NC_008253.1 position (1-based)", fontsize=8)
    ax.set_ylabel("p(true base), 99-nt mean")
    ax.set_title("ORFs >= 900 nt shaded (yellow fwd, green rev)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    summary = {"labels": [l.replace("\n", " ") for l in labels],
               "model_bits": [round(g[0], 4) for g in groups], "markov_bits": [round(g[1], 4) for g in groups],
               "n": [g[2] for g in groups], "orfs_fwd": nf, "orfs_rev": nr}
    print(json.dumps(summary))
    with open(os.path.join(HERE, "codon_periodicity.json"), "w") as fh:
        json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
