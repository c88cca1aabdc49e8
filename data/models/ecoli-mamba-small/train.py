#!/usr/bin/env python3
"""Train the default genomamba model: a small causal DNA Mamba on the E. coli 536 genome.

The network is exactly transformers' MambaForCausalLM (same weight names, same maths); for speed on a
2-core CPU it is trained with an own PyTorch re-implementation whose selective scan is a fused
numba kernel (forward + hand-written backward, recomputing states per channel so nothing of size
L x d_inner x d_state is ever materialised).  A_log is kept fixed at the S4D-real initialisation
log(1..d_state) (not trained), which lets the kernel form exp(dt*A_n) = q^n with q = exp(-dt) (one exp
per channel and step).  The result is saved with MambaForCausalLM.save_pretrained, and eval.py checks
that transformers' own forward gives the reported numbers.

Data (see README.md): E. coli 536 (NC_008253.1), both strands.  Held out, never trained on:
  - NC_008253.1:4390913-4938920 (1-based inclusive, 548,008 bases, 11.1 %) = evaluation region
  - NC_008253.1:4325377-4390912 (65,536 bases just before it) = validation slice used for monitoring only
  - the whole lambda phage genome (not even read here).
Both strands of the training part [0, 4325376) are used (reverse complement added).

Usage: python train.py --out DIR [--steps N] [--budget-min M] [--stop-step S] [--resume]
(the shipped model: see README.md for the exact command)
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import numba
from numba import njit, prange

HERE = os.path.dirname(os.path.abspath(__file__))
GENOME = os.path.join(HERE, "..", "..", "genomes", "ecoli536.fna.gz")

# DESIGN §3 vocabulary
VOCAB = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6,
         "A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
VOCAB_SIZE = 16

HOLDOUT_START = 4390912          # 0-based; = 67 * 65536
VAL_START = HOLDOUT_START - 65536
TRAIN_END = VAL_START

D_MODEL, N_LAYER, D_STATE, EXPAND, D_CONV, DT_RANK = 128, 5, 16, 2, 4, 8


def encode(seq_bytes):
    """bytes -> uint8 token ids (upper/lower ACGT -> 7..10, IUPAC codes -> N=11)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for i, b in enumerate(b"ACGT"):
        lut[b] = 7 + i
        lut[b + 32] = 7 + i
    for b in b"NRYSWKMBDHV":
        lut[b] = 11
        lut[b + 32] = 11
    ids = lut[np.frombuffer(seq_bytes, dtype=np.uint8)]
    if (ids == 255).any():
        raise ValueError("unexpected byte in sequence")
    return ids


def read_fasta(path):
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
    return {k: encode(v) for k, v in recs.items()}


def revcomp(ids):
    comp = np.arange(256, dtype=np.uint8)
    comp[7], comp[8], comp[9], comp[10] = 10, 9, 8, 7
    return comp[ids[::-1]].copy()


def load_ecoli():
    recs = read_fasta(GENOME)
    assert len(recs) == 1, recs.keys()
    (name, ids), = recs.items()
    assert len(ids) == 4938920, len(ids)
    return name, ids


# ----------------------------------------------------------------------------------------------
# fused selective scan (A_n = -(n+1), fixed), numba
# x, dt: (B, E, L) float32;  Bm, Cm: (B, L, N) float32;  y: (B, E, L)
# h_t[n] = exp(-(n+1) dt_t) h_{t-1}[n] + dt_t x_t Bm_t[n];   y_t = sum_n h_t[n] Cm_t[n]


@njit(parallel=True, fastmath=False, cache=True)
def _scan_fwd(x, dt, Bm, Cm, y):
    nb, ne, nl = x.shape
    nn_ = Bm.shape[2]
    for be in prange(nb * ne):
        b = be // ne
        e = be % ne
        h = np.zeros(nn_, dtype=np.float32)
        for t in range(nl):
            d = dt[b, e, t]
            dx = d * x[b, e, t]
            q = np.float32(math.exp(-d))
            p = np.float32(1.0)
            acc = np.float32(0.0)
            for n in range(nn_):
                p = p * q
                h[n] = p * h[n] + dx * Bm[b, t, n]
                acc += h[n] * Cm[b, t, n]
            y[b, e, t] = acc


@njit(parallel=True, fastmath=False, cache=True)
def _scan_bwd(x, dt, Bm, Cm, gy, gx, gdt, gB, gC, nth):
    nb, ne, nl = x.shape
    nn_ = Bm.shape[2]
    for tid in prange(nth):
        hb = np.zeros((nl + 1, nn_), dtype=np.float32)
        ab = np.zeros((nl, nn_), dtype=np.float32)
        gh = np.zeros(nn_, dtype=np.float32)
        for be in range(tid, nb * ne, nth):
            b = be // ne
            e = be % ne
            for n in range(nn_):
                hb[0, n] = 0.0
            for t in range(nl):
                d = dt[b, e, t]
                dx = d * x[b, e, t]
                q = np.float32(math.exp(-d))
                p = np.float32(1.0)
                for n in range(nn_):
                    p = p * q
                    ab[t, n] = p
                    hb[t + 1, n] = p * hb[t, n] + dx * Bm[b, t, n]
            for n in range(nn_):
                gh[n] = 0.0
            for t in range(nl - 1, -1, -1):
                g = gy[b, e, t]
                d = dt[b, e, t]
                xv = x[b, e, t]
                gd = np.float32(0.0)
                gxx = np.float32(0.0)
                for n in range(nn_):
                    gC[tid, b, t, n] += g * hb[t + 1, n]
                    ghn = gh[n] + g * Cm[b, t, n]
                    bb = Bm[b, t, n]
                    # dA_n = exp(-(n+1) d): d dA_n / d d = -(n+1) dA_n
                    gd += ghn * (xv * bb - (n + 1) * ab[t, n] * hb[t, n])
                    gxx += ghn * d * bb
                    gB[tid, b, t, n] += ghn * d * xv
                    gh[n] = ghn * ab[t, n]
                gdt[b, e, t] = gd
                gx[b, e, t] = gxx


class SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, Bm, Cm):
        x, dt, Bm, Cm = (t.detach().contiguous() for t in (x, dt, Bm, Cm))
        y = torch.empty_like(x)
        _scan_fwd(x.numpy(), dt.numpy(), Bm.numpy(), Cm.numpy(), y.numpy())
        ctx.save_for_backward(x, dt, Bm, Cm)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, dt, Bm, Cm = ctx.saved_tensors
        gy = gy.contiguous()
        nth = numba.get_num_threads()
        gx, gdt = torch.empty_like(x), torch.empty_like(dt)
        gB = torch.zeros((nth,) + tuple(Bm.shape))
        gC = torch.zeros((nth,) + tuple(Cm.shape))
        _scan_bwd(x.numpy(), dt.numpy(), Bm.numpy(), Cm.numpy(), gy.numpy(), gx.numpy(), gdt.numpy(),
                  gB.numpy(), gC.numpy(), nth)
        return gx, gdt, gB.sum(0), gC.sum(0)


# ----------------------------------------------------------------------------------------------
# the model: same parameter names and maths as transformers MambaForCausalLM


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Mixer(nn.Module):
    def __init__(self, d, e, n, r, k):
        super().__init__()
        self.in_proj = nn.Linear(d, 2 * e, bias=False)
        self.conv1d = nn.Conv1d(e, e, k, groups=e, padding=k - 1, bias=True)
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, e, bias=True)
        a_log = torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(e, 1)
        self.A_log = nn.Parameter(a_log, requires_grad=False)  # fixed (see module docstring)
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, d, bias=False)
        self.r, self.n = r, n

    def forward(self, x):  # x: (B, L, d)
        L = x.shape[1]
        xs, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)          # (B, E, L)
        xs = F.silu(self.conv1d(xs)[..., :L])
        dtr, Bm, Cm = torch.split(self.x_proj(xs.transpose(1, 2)), [self.r, self.n, self.n], dim=-1)
        dt = F.softplus(self.dt_proj(dtr)).transpose(1, 2)               # (B, E, L)
        y = SelectiveScan.apply(xs, dt, Bm, Cm) + xs * self.D[None, :, None]
        y = y * F.silu(z)
        return self.out_proj(y.transpose(1, 2))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RMSNorm(D_MODEL)
        self.mixer = Mixer(D_MODEL, EXPAND * D_MODEL, D_STATE, DT_RANK, D_CONV)


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(VOCAB_SIZE, D_MODEL)
        self.layers = nn.ModuleList([Block() for _ in range(N_LAYER)])
        self.norm_f = RMSNorm(D_MODEL)


class FastMamba(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()

    def forward(self, ids):
        h = self.backbone.embeddings(ids)
        for blk in self.backbone.layers:
            h = h + blk.mixer(blk.norm(h))
        h = self.backbone.norm_f(h)
        return h @ self.backbone.embeddings.weight.t()  # tied lm_head


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.backbone.embeddings.weight.normal_(0.0, 0.02, generator=g)
        for blk in model.backbone.layers:
            m = blk.mixer
            for lin in (m.in_proj, m.x_proj, m.out_proj):
                bound = 1.0 / math.sqrt(lin.in_features)
                lin.weight.uniform_(-bound, bound, generator=g)
            m.out_proj.weight.div_(math.sqrt(N_LAYER))
            cb = 1.0 / math.sqrt(D_CONV)
            m.conv1d.weight.uniform_(-cb, cb, generator=g)
            m.conv1d.bias.uniform_(-cb, cb, generator=g)
            std = DT_RANK ** -0.5
            m.dt_proj.weight.uniform_(-std, std, generator=g)
            # dt in [1e-3, 1e-1] log-uniform, bias = softplus^-1(dt)
            u = torch.rand(m.dt_proj.bias.shape, generator=g)
            dt = torch.exp(u * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
            m.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))


def hf_config():
    from transformers import MambaConfig
    return MambaConfig(vocab_size=VOCAB_SIZE, hidden_size=D_MODEL, state_size=D_STATE,
                       num_hidden_layers=N_LAYER, expand=EXPAND, conv_kernel=D_CONV, time_step_rank=DT_RANK,
                       use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5, residual_in_fp32=True,
                       pad_token_id=VOCAB["[PAD]"], bos_token_id=VOCAB["[BOS]"], eos_token_id=VOCAB["[SEP]"],
                       tie_word_embeddings=True)


def save_hf(model, out_dir):
    """Save in the transformers layout (config.json + model.safetensors) via MambaForCausalLM."""
    from transformers import MambaForCausalLM
    hf = MambaForCausalLM(hf_config())
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sd["lm_head.weight"] = sd["backbone.embeddings.weight"]
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and not [m for m in missing if m != "lm_head.weight"], (missing, unexpected)
    hf.tie_weights()
    os.makedirs(out_dir, exist_ok=True)
    hf.save_pretrained(out_dir, safe_serialization=True)


@torch.no_grad()
def bits_per_base(model, ids, window):
    """Windows of `window` bases from ids[0]; each restarts state; position 0 of each window skipped;
    only positions whose true base is ACGT are counted."""
    tot, cnt = 0.0, 0
    for s in range(0, len(ids), window):
        w = torch.from_numpy(ids[s:s + window].astype(np.int64))[None]
        if w.shape[1] < 2:
            continue
        logp = torch.log_softmax(model(w)[0, :-1].double(), -1)
        tgt = w[0, 1:]
        lp = logp.gather(1, tgt[:, None])[:, 0]
        keep = (tgt >= 7) & (tgt <= 10)
        tot += float(-lp[keep].sum())
        cnt += int(keep.sum())
    return tot / cnt / math.log(2), cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "run"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=536)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-min", type=float, default=110.0, help="wall-clock budget; stops and saves")
    ap.add_argument("--stop-step", type=int, default=0,
                    help="stop (and save) after this step; the LR schedule still assumes --steps. "
                         "Reproduces a run that the wall-clock budget stopped early.")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    name, ids = load_ecoli()
    fwd = ids[:TRAIN_END]
    train = np.concatenate([fwd, revcomp(fwd)])
    val = ids[VAL_START:HOLDOUT_START]
    # a sample may not straddle the strand junction
    n_fwd = len(fwd)
    L = args.seq_len

    model = FastMamba()
    init_weights(model, args.seed)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2
             and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and not (p.dim() >= 2
                and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    os.makedirs(args.out, exist_ok=True)
    ck_path = os.path.join(args.out, "checkpoint.pt")
    log_path = os.path.join(args.out, "train_log.jsonl")
    step = 0
    if args.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)

    def lr_at(s):
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        pr = min(1.0, (s - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * pr)))

    def checkpoint():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "step": step, "args": vars(args)}, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)
        save_hf(model, os.path.join(args.out, "hf"))

    logf = open(log_path, "a")
    ema, t_last = None, time.time()
    budget_s = args.budget_min * 60
    stopped = "steps"
    while step < args.steps:
        if time.time() - t_start > budget_s:
            stopped = "budget"
            break
        if args.stop_step and step >= args.stop_step:
            stopped = "stop-step"
            break
        # batch of random crops from either strand
        starts = []
        for _ in range(args.batch):
            while True:
                s = int(rng.integers(0, len(train) - L - 1))
                if s + L + 1 <= n_fwd or s >= n_fwd:
                    break
            starts.append(s)
        batch = torch.from_numpy(np.stack([train[s:s + L + 1] for s in starts]).astype(np.int64))
        for gparam in opt.param_groups:
            gparam["lr"] = lr_at(step)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lb = loss.item() / math.log(2)
        ema = lb if ema is None else 0.98 * ema + 0.02 * lb
        if step % 10 == 0 or args.bench:
            now = time.time()
            rec = {"step": step, "train_bits": round(lb, 4), "ema_bits": round(ema, 4), "lr": lr_at(step - 1),
                   "grad_norm": round(float(gn), 3), "elapsed_s": round(now - t_start, 1),
                   "tok_per_s": round((10 if not args.bench else 1) * args.batch * L / (now - t_last), 1)}
            t_last = now
            print(json.dumps(rec), flush=True)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
        if args.bench and step >= args.bench:
            return
        if step % args.eval_every == 0:
            model.eval()
            vb, _ = bits_per_base(model, val, 65536)
            model.train()
            rec = {"step": step, "val_bits": round(vb, 5), "elapsed_s": round(time.time() - t_start, 1)}
            print(json.dumps(rec), flush=True)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
        if step % args.ckpt_every == 0:
            checkpoint()
    checkpoint()
    model.eval()
    vb, _ = bits_per_base(model, val, 65536)
    rec = {"final_step": step, "stopped_by": stopped, "val_bits": round(vb, 5),
           "elapsed_s": round(time.time() - t_start, 1), "threads": args.threads}
    print(json.dumps(rec), flush=True)
    logf.write(json.dumps(rec) + "\n")
    logf.close()


if __name__ == "__main__":
    main()
