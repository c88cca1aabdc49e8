#!/usr/bin/env python3
"""Held-out bits per base of the default model, with one protocol for PyTorch and for genomamba.

Protocol (both modes): the sequence (held-out region NC_008253.1:4390913-4938920, or the whole lambda
genome) is cut into windows of W bases starting at the region start (W = 65536 by default; the region
start 4390912 is 67 * 65536, so windows also start at multiples of W on the chromosome); every window
starts from an empty state; position 0 of each window has no context and is skipped; every other
position whose reference base is A, C, G or T is counted; bits/base = mean(-ln p(ref)) / ln 2.

Modes:
  python eval.py parquet FILE.parquet [--chrom NAME --start S --end E]
      mean of -logp_ref/ln2 over rows with non-null logp_ref and ref in ACGT (only pyarrow + numpy);
      e.g. on the output of
        genomamba predict ecoli536.fa -r 'gi|110640213|ref|NC_008253.1|:4390913-4938920' \
            --window 65536 --overlap 0 -o heldout.parquet
      (ecoli536.fa = the decompressed, indexed data/genomes/ecoli536.fna.gz).
  python eval.py model [--model DIR] [--window W] [--impl hf|fast] [--write-expected]
      runs the saved model (transformers MambaForCausalLM for --impl hf, the numba re-implementation of
      train.py for --impl fast) on the held-out E. coli region and on lambda.
  python eval.py compare [--model DIR] [--length N] [--which ecoli|lambda]
      max |difference| of log-probabilities between hf and fast on one window of the first N bases of the
      held-out region (or of lambda), and the bits/base of each.
"""
import argparse
import gzip
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ECOLI = os.path.join(HERE, "..", "..", "genomes", "ecoli536.fna.gz")
LAMBDA = os.path.join(HERE, "..", "..", "genomes", "lambda_virus.fa")
ECOLI_NAME = "gi|110640213|ref|NC_008253.1|"
LAMBDA_NAME = "gi|9626243|ref|NC_001416.1|"
GENOME_LEN = 4938920
HOLDOUT_START = 4390912          # 0-based, = 67 * 65536
HOLDOUT_END = GENOME_LEN         # 0-based exclusive
VAL_START = HOLDOUT_START - 65536
TRAIN_END = VAL_START
REGION = f"NC_008253.1:{HOLDOUT_START + 1}-{HOLDOUT_END}"   # 1-based inclusive (samtools)
REGION_FASTA = f"{ECOLI_NAME}:{HOLDOUT_START + 1}-{HOLDOUT_END}"  # the same with the FASTA record name
WINDOW = 65536
LN2 = math.log(2.0)


def _lut():
    lut = np.full(256, 255, dtype=np.uint8)
    for i, b in enumerate(b"ACGT"):
        lut[b] = 7 + i
        lut[b + 32] = 7 + i
    for b in b"NRYSWKMBDHV":
        lut[b] = 11
        lut[b + 32] = 11
    return lut


def read_fasta_ids(path):
    """{record name (header up to first whitespace): uint8 token ids (DESIGN §3)}"""
    op = gzip.open if path.endswith(".gz") else open
    recs, name, chunks = {}, None, []
    with op(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if line.startswith(b">"):
                if name is not None:
                    recs[name] = b"".join(chunks)
                name, chunks = line[1:].split()[0].decode(), []
            else:
                chunks.append(line)
    if name is not None:
        recs[name] = b"".join(chunks)
    lut = _lut()
    out = {}
    for k, v in recs.items():
        ids = lut[np.frombuffer(v, dtype=np.uint8)]
        assert not (ids == 255).any(), k
        out[k] = ids
    return out


def revcomp(ids):
    comp = np.arange(256, dtype=np.uint8)
    comp[7], comp[8], comp[9], comp[10] = 10, 9, 8, 7
    return comp[ids[::-1]].copy()


def heldout_ids():
    eco = read_fasta_ids(ECOLI)[ECOLI_NAME]
    assert len(eco) == GENOME_LEN
    return eco[HOLDOUT_START:HOLDOUT_END]


def lambda_ids():
    return read_fasta_ids(LAMBDA)[LAMBDA_NAME]


# ------------------------------------------------------------------------------- Parquet mode

def bits_from_parquet(path, chrom=None, start=None, end=None):
    """(bits/base, n) from a `genomamba predict` Parquet file: mean of -logp_ref/ln2 over rows with
    non-null logp_ref and ref in ACGT (optionally restricted to chrom / [start, end) 0-based)."""
    import pyarrow.parquet as pq
    cols = ["chrom", "start", "ref", "logp_ref"]
    t = pq.read_table(path, columns=cols)
    ref = np.array([str(r).upper() if r is not None else "" for r in t.column("ref").to_pylist()])
    lp_col = t.column("logp_ref")
    valid = ~np.asarray(lp_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    lp = np.asarray(lp_col.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    keep = valid & np.isin(ref, ["A", "C", "G", "T"])
    if chrom is not None:
        ch = np.asarray(t.column("chrom").to_pylist())
        keep &= (ch == chrom)
    if start is not None or end is not None:
        st = np.asarray(t.column("start").to_numpy(zero_copy_only=False), dtype=np.int64)
        if start is not None:
            keep &= st >= start
        if end is not None:
            keep &= st < end
    n = int(keep.sum())
    return float(-lp[keep].sum() / n / LN2), n


# ------------------------------------------------------------------------------- model mode

def load_hf(model_dir):
    import torch
    from transformers import MambaForCausalLM
    torch.set_num_threads(2)
    m = MambaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    m.eval()
    return m


def load_fast(model_dir):
    import torch
    from safetensors.torch import load_file
    sys.path.insert(0, HERE)
    import train
    torch.set_num_threads(2)
    m = train.FastMamba()
    sd = load_file(os.path.join(model_dir, "model.safetensors"))
    sd.pop("lm_head.weight", None)
    for k, v in sd.items():
        if k.endswith("A_log"):
            assert torch.allclose(v, torch.log(torch.arange(1, v.shape[1] + 1, dtype=torch.float32)).expand_as(v))
    m.load_state_dict(sd)
    m.eval()
    return m


def window_logprobs(model, ids, window, impl):
    """natural-log p(ref) for every counted position (position 0 of each window skipped,
    targets in ACGT); also returns the 0-based offsets of those positions and the full
    4-column probability table (rows = counted positions)."""
    import torch
    lps, offs, probs = [], [], []
    with torch.no_grad():
        for s in range(0, len(ids), window):
            w = torch.from_numpy(ids[s:s + window].astype(np.int64))[None]
            if w.shape[1] < 2:
                continue
            logits = model(input_ids=w).logits if impl == "hf" else model(w)
            logp = torch.log_softmax(logits[0, :-1].double(), -1)
            tgt = w[0, 1:]
            keep = ((tgt >= 7) & (tgt <= 10)).numpy()
            lp = logp.gather(1, tgt[:, None])[:, 0].numpy()
            lps.append(lp[keep])
            offs.append(s + 1 + np.nonzero(keep)[0])
            p = torch.softmax(logits[0, :-1, 7:11].double(), -1)  # ACGT renormalised (for the plot)
            probs.append(p.numpy()[keep])
    return np.concatenate(lps), np.concatenate(offs), np.concatenate(probs)


def bits_from_model(model, ids, window, impl):
    lp, _, _ = window_logprobs(model, ids, window, impl)
    return float(-lp.mean() / LN2), int(len(lp))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("parquet")
    a.add_argument("file")
    a.add_argument("--chrom")
    a.add_argument("--start", type=int)
    a.add_argument("--end", type=int)
    b = sub.add_parser("model")
    b.add_argument("--model", default=HERE)
    b.add_argument("--window", type=int, default=WINDOW)
    b.add_argument("--impl", choices=["hf", "fast"], default="hf")
    b.add_argument("--write-expected", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("--model", default=HERE)
    c.add_argument("--length", type=int, default=8192)
    c.add_argument("--which", choices=["ecoli", "lambda"], default="ecoli")
    args = ap.parse_args()

    if args.mode == "parquet":
        bits, n = bits_from_parquet(args.file, args.chrom, args.start, args.end)
        print(json.dumps({"bits_per_base": round(bits, 6), "n": n}))
        return
    if args.mode == "compare":
        ids = (heldout_ids() if args.which == "ecoli" else lambda_ids())[:args.length]
        lp_h, _, _ = window_logprobs(load_hf(args.model), ids, args.length, "hf")
        lp_f, _, _ = window_logprobs(load_fast(args.model), ids, args.length, "fast")
        d = np.abs(lp_h - lp_f)
        print(json.dumps({"which": args.which, "n": int(len(d)), "max_abs_dlogp": float(d.max()),
                          "bits_hf": float(-lp_h.mean() / LN2), "bits_fast": float(-lp_f.mean() / LN2)}))
        return
    model = load_hf(args.model) if args.impl == "hf" else load_fast(args.model)
    eb, en = bits_from_model(model, heldout_ids(), args.window, args.impl)
    lb, ln_ = bits_from_model(model, lambda_ids(), args.window, args.impl)
    res = {"window": args.window, "impl": args.impl,
           "ecoli_heldout": {"region": REGION, "region_fasta": REGION_FASTA, "chrom": ECOLI_NAME, "start0": HOLDOUT_START,
                             "end0": HOLDOUT_END, "bits_per_base": round(eb, 6), "n": en},
           "lambda": {"chrom": LAMBDA_NAME, "start0": 0, "end0": int(len(lambda_ids())),
                      "bits_per_base": round(lb, 6), "n": ln_},
           "protocol": "windows of `window` bases from the region start, state restarted per window, "
                       "position 0 of each window skipped, targets in ACGT, mean(-ln p(ref))/ln 2",
           "tolerance": 1e-3}
    print(json.dumps(res, indent=1))
    if args.write_expected:
        with open(os.path.join(HERE, "expected_eval.json"), "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
