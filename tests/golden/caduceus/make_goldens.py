"""Make the Caduceus golden files for genomamba-model's tests with the Caduceus modeling code itself (CPU, fp32).

Usage (from the repository root):

    git clone https://github.com/kuleshov-group/caduceus /tmp/caduceus-src   # tested at commit 0060a6d
    /opt/torchenv/bin/python tests/golden/caduceus/make_goldens.py /tmp/caduceus-src [--masked-only]

The argument is a directory holding the `caduceus/` package (configuration_caduceus.py, modeling_caduceus.py,
modeling_rcps.py); nothing of it is copied here. Caduceus imports `Mamba`, `Block`, `RMSNorm`, `rms_norm_fn` and
`layer_norm_fn` from mamba-ssm, which needs CUDA to build. This script injects pure-PyTorch stand-ins through
`sys.modules` before importing Caduceus:
  Mamba     the mamba-ssm 1.2 `Mamba` module's non-fused path (nn.Conv1d conv + `selective_scan_ref` maths:
            softplus(dt + dt_bias), dA = exp(dt A), dBu = dt B u, y = C h + D u, y * silu(z)); same parameter names
  Block     mamba-ssm 1.2 `Block` (Add -> Norm -> Mixer, fused and unfused branches)
  RMSNorm, rms_norm_fn, layer_norm_fn
            the maths of mamba-ssm's `rms_norm_ref` / `layer_norm_ref` with the Triton kernels' `prenorm` and
            `residual_in_fp32` interface, so `fused_add_norm: true` runs on the CPU and keeps the fused path's
            semantics (for RCPS models the fused block swaps the two halves of the residual stream every layer).

For each small random model (every parameter randomised, including A_log, D, the dt bias and the norms) it
writes tests/golden/caduceus/<name>/:
  config.json          model_type caduceus, as saved by CaduceusConfig (complement_map keyed by integer strings)
  model.safetensors    CaduceusForMaskedLM state dict with the tied tensors dropped, as in the published
                       checkpoints (mamba_rev in_proj/out_proj when weight-tied, the LM head)
  expected.safetensors input_ids (L,) u8: the first L bases of data/genomes/lambda_virus.fa (A7 C8 G9 T10) with
                       positions 100..105 set to N (11); hidden_rows (M,) i64 (every 8th row);
                       last_hidden_state (M, W) f32 at those rows (W = d_model, or 2 d_model for RCPS);
                       base_probs (L, 4) f32: softmax of the masked-LM logits of tokens A, C, G, T at each position
                       (inputs not masked).
  masked.safetensors   (from the model.safetensors on disk, so that --masked-only, which writes nothing else, adds it
                       to committed models without touching them) the masked-site scores `genomamba score` gives with `--overlap MASK_FLANK`:
                       sites (K,) i64, 0-based positions in the whole lambda genome; input_ids of each site is the
                       genome's [site - MASK_FLANK, site + MASK_FLANK + 1) cut at its ends, with the site set to
                       [MASK] (3); probs (K, 4) f32: softmax of the masked-LM logits of A, C, G, T at the site;
                       probs_rc (K, 4) f32: the same on the reverse strand (what `--strand both` adds, as GPN's
                       run_vep takes it): the window reverse-complemented, [MASK] at the site's mirrored place, and
                       the softmax of A, C, G, T there (bases of the reverse strand).
The fp32 goldens are checked against an fp64 run of the same model (printed, not stored).
"""

import json
import math
import os
import shutil
import sys
import types

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(ROOT, "..", "..", ".."))
L = 1000
ROW_STEP = 8
# Masked-site scores: sites at both ends of the genome, next to each other, and inside it.
MASK_FLANK = 40
MASK_SITES = [0, 1, 39, 40, 41, 1000, 1001, 25000, 48460, 48500, 48501]
COMPLEMENT = {str(i): i for i in range(12)} | {"7": 10, "8": 9, "9": 8, "10": 7}

MODELS = {
    # Caduceus-PS as published (fused add-norm, weight tie, `add`), small.
    "ps-fused": dict(d_model=16, n_layer=3, rcps=True, fused_add_norm=True, bidirectional_strategy="add",
                     bidirectional_weight_tie=True, ssm_cfg=dict(d_state=8, d_conv=4, expand=2, dt_rank="auto")),
    # The same architecture through the unfused wrappers (a different function for RCPS; `norm.submodule` names).
    "ps-unfused": dict(d_model=16, n_layer=3, rcps=True, fused_add_norm=False, bidirectional_strategy="add",
                       bidirectional_weight_tie=True,
                       ssm_cfg=dict(d_state=8, d_conv=4, expand=2, dt_rank="auto")),
    # Caduceus-Ph, fused, with `ew_multiply` and biases on the projections.
    "ph-fused": dict(d_model=24, n_layer=2, rcps=False, fused_add_norm=True, bidirectional_strategy="ew_multiply",
                     bidirectional_weight_tie=True,
                     ssm_cfg=dict(d_state=16, d_conv=4, expand=2, dt_rank="auto", bias=True)),
    # Caduceus-Ph, unfused, untied reverse projections (stored), conv width 3, explicit dt_rank.
    "ph-unfused": dict(d_model=16, n_layer=2, rcps=False, fused_add_norm=False, bidirectional_strategy="add",
                       bidirectional_weight_tie=False,
                       ssm_cfg=dict(d_state=4, d_conv=3, expand=2, dt_rank=3)),
}


# ---------------------------------------------------------------------------------------------------------------
# Pure-PyTorch stand-ins for the parts of mamba-ssm that Caduceus imports.

def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True):
    """u, delta, z: (b, e, l); A: (e, n); B, C: (b, n, l); D, delta_bias: (e,). Returns y (b, e, l)."""
    dtype_in = u.dtype
    u, delta = u.float() if dtype_in != torch.float64 else u, delta.float() if dtype_in != torch.float64 else delta
    delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, e, l = u.shape
    x = A.new_zeros((b, e, A.shape[1]))
    d_a = torch.exp(torch.einsum("bel,en->beln", delta, A))
    d_bu = torch.einsum("bel,bnl,bel->beln", delta, B, u)
    ys = []
    for i in range(l):
        x = d_a[:, :, i] * x + d_bu[:, :, i]
        ys.append(torch.einsum("ben,bn->be", x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    out = out * F.silu(z)
    return out.to(dtype_in)


class Mamba(nn.Module):
    """mamba-ssm 1.2 `Mamba` (same parameters and names), forward through its non-fused reference path."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001, dt_max=0.1,
                 dt_init="random", dt_scale=1.0, dt_init_floor=1e-4, conv_bias=True, bias=False, use_fast_path=True,
                 layer_idx=None, device=None, dtype=None):
        super().__init__()
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.d_state = d_state
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, bias=conv_bias, kernel_size=d_conv,
                                groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + d_state * 2, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden_states, inference_params=None):
        _, seqlen, _ = hidden_states.shape
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (b, 2e, l)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :seqlen])
        x_dbl = self.x_proj(x.transpose(1, 2))  # (b, l, r + 2n)
        dt, b, c = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # bias added inside the scan
        a = -torch.exp(self.A_log.to(x.dtype))
        y = selective_scan_ref(x, dt, a, b.transpose(1, 2), c.transpose(1, 2), self.D.to(x.dtype), z,
                               self.dt_proj.bias.to(x.dtype), delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))


class RMSNorm(nn.Module):
    """mamba-ssm's Triton `RMSNorm` module (weight, no bias, eps)."""

    def __init__(self, hidden_size, eps=1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.register_parameter("bias", None)

    def forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        return rms_norm_fn(x, self.weight, self.bias, residual=residual, eps=self.eps, prenorm=prenorm,
                           residual_in_fp32=residual_in_fp32)


def _add_norm(x, weight, bias, residual, eps, prenorm, residual_in_fp32, rms):
    """mamba-ssm's `rms_norm_ref` / `layer_norm_ref` maths with the fused kernels' interface."""
    dtype = x.dtype
    if residual is not None:
        x = x + residual
    residual_out = x.float() if residual_in_fp32 else x
    if rms:
        out = x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + eps) * weight
    else:
        out = F.layer_norm(x, x.shape[-1:], weight, None, eps)
    if bias is not None:
        out = out + bias
    out = out.to(dtype)
    return (out, residual_out) if prenorm else out


def rms_norm_fn(x, weight, bias, residual=None, prenorm=False, residual_in_fp32=False, eps=1e-6, **_):
    return _add_norm(x, weight, bias, residual, eps, prenorm, residual_in_fp32, True)


def layer_norm_fn(x, weight, bias, residual=None, prenorm=False, residual_in_fp32=False, eps=1e-6, **_):
    return _add_norm(x, weight, bias, residual, eps, prenorm, residual_in_fp32, False)


class Block(nn.Module):
    """mamba-ssm 1.2 `Block`: Add -> Norm -> Mixer, returning (mixer output, residual)."""

    def __init__(self, dim, mixer_cls, norm_cls=nn.LayerNorm, fused_add_norm=False, residual_in_fp32=False):
        super().__init__()
        self.residual_in_fp32 = residual_in_fp32
        self.fused_add_norm = fused_add_norm
        self.mixer = mixer_cls(dim)
        self.norm = norm_cls(dim)

    def forward(self, hidden_states, residual=None, inference_params=None):
        if not self.fused_add_norm:
            residual = (hidden_states + residual) if residual is not None else hidden_states
            hidden_states = self.norm(residual.to(dtype=self.norm.weight.dtype))
            if self.residual_in_fp32:
                residual = residual.to(torch.float32)
        else:
            fn = rms_norm_fn if isinstance(self.norm, RMSNorm) else layer_norm_fn
            hidden_states, residual = fn(hidden_states, self.norm.weight, self.norm.bias, residual=residual,
                                         prenorm=True, residual_in_fp32=self.residual_in_fp32, eps=self.norm.eps)
        return self.mixer(hidden_states, inference_params=inference_params), residual


def install_mamba_ssm_stand_ins():
    names = ["mamba_ssm", "mamba_ssm.modules", "mamba_ssm.modules.mamba_simple", "mamba_ssm.ops",
             "mamba_ssm.ops.triton", "mamba_ssm.ops.triton.layernorm"]
    mods = {n: types.ModuleType(n) for n in names}
    for n in names[:-1]:
        mods[n].__path__ = []
    mods["mamba_ssm.modules.mamba_simple"].Mamba = Mamba
    mods["mamba_ssm.modules.mamba_simple"].Block = Block
    ln = mods["mamba_ssm.ops.triton.layernorm"]
    ln.RMSNorm, ln.rms_norm_fn, ln.layer_norm_fn = RMSNorm, rms_norm_fn, layer_norm_fn
    sys.modules.update(mods)


def import_caduceus(src):
    pkg_dir = os.path.join(src, "caduceus")
    if not os.path.isfile(os.path.join(pkg_dir, "modeling_caduceus.py")):
        sys.exit(f"{pkg_dir}/modeling_caduceus.py not found: pass the root of a kuleshov-group/caduceus checkout")
    install_mamba_ssm_stand_ins()
    # A bare package object, so the package __init__ (which also imports the tokenizer) is not run.
    pkg = types.ModuleType("caduceus")
    pkg.__path__ = [pkg_dir]
    sys.modules["caduceus"] = pkg
    from caduceus.configuration_caduceus import CaduceusConfig
    from caduceus.modeling_caduceus import CaduceusForMaskedLM

    class MaskedLM(CaduceusForMaskedLM):
        """Accepts the keyword arguments newer transformers pass to `tie_weights`, and ties the head explicitly
        (transformers 5 no longer ties a model that declares no `_tied_weights_keys`)."""

        def tie_weights(self, *args, **kwargs):
            emb = self.get_input_embeddings()
            if self.config.rcps:
                self.lm_head.set_weight(emb.weight)
            else:
                self.lm_head.weight = emb.weight

    return CaduceusConfig, MaskedLM


# ---------------------------------------------------------------------------------------------------------------

def lambda_tokens(n=None):
    """The first `n` bases of lambda as ids with 100..105 set to N, or (`n` None) the whole genome as is."""
    seq = []
    with open(os.path.join(REPO, "data", "genomes", "lambda_virus.fa")) as f:
        for line in f:
            if line.startswith(">"):
                continue
            seq.extend(line.strip().upper())
            if n is not None and len(seq) >= n:
                break
    table = {"A": 7, "C": 8, "G": 9, "T": 10}
    ids = torch.tensor([table.get(b, 11) for b in seq[:n]], dtype=torch.long)
    if n is not None:
        ids[100:105] = 11
    return ids


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen) * 15.5 + 0.5))
            elif name.endswith(".D"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith("dt_proj.bias"):
                p.copy_(-2.5 + 1.5 * torch.randn(p.shape, generator=gen))
            elif "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("conv1d.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name or "lm_head" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:  # projections (out, in)
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    return model


def expected(model, ids):
    with torch.no_grad():
        hidden = model.caduceus(ids[None], return_dict=True).last_hidden_state[0]
        logits = model(ids[None], return_dict=True).logits[0].double()
    probs = torch.softmax(logits[:, 7:11], dim=-1).float()
    rows = torch.arange(0, len(ids), ROW_STEP)
    return {"input_ids": ids.to(torch.uint8), "hidden_rows": rows,
            "last_hidden_state": hidden[rows].float().contiguous(), "base_probs": probs.contiguous()}


def masked(model, genome):
    """Per site of MASK_SITES: its window of the genome with the site masked, and the softmax of the masked-LM
    logits of A, C, G, T there; the same for the window's reverse complement at the site's mirrored place."""
    complement = torch.tensor([COMPLEMENT[str(i)] for i in range(12)])
    probs, probs_rc = [], []
    for site in MASK_SITES:
        lo, hi = max(0, site - MASK_FLANK), min(len(genome), site + MASK_FLANK + 1)
        for strand, out in ((False, probs), (True, probs_rc)):
            ids = genome[lo:hi].clone()
            at = site - lo
            if strand:
                ids, at = complement[ids].flip(0), hi - 1 - site
            ids[at] = 3
            with torch.no_grad():
                logits = model(ids[None], return_dict=True).logits[0, at].double()
            out.append(torch.softmax(logits[7:11], dim=-1))
    return {"sites": torch.tensor(MASK_SITES, dtype=torch.long), "probs": torch.stack(probs).float().contiguous(),
            "probs_rc": torch.stack(probs_rc).float().contiguous()}


def tied_keys(model, config):
    """The state-dict keys the published checkpoints omit because they alias another tensor."""
    sd = model.state_dict()
    drop = set()
    if config.bidirectional and config.bidirectional_weight_tie:
        drop |= {k for k in sd if ".mamba_rev.in_proj." in k or ".mamba_rev.out_proj." in k}
    drop |= {k for k in sd if k.startswith("lm_head.") and k.endswith("weight")}
    return drop


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--masked-only"]):
        sys.exit(__doc__)
    masked_only = sys.argv[2:] == ["--masked-only"]
    CaduceusConfig, CaduceusForMaskedLM = import_caduceus(sys.argv[1])
    torch.manual_seed(0)
    ids = lambda_tokens(L)
    genome = lambda_tokens()
    for i, (name, kw) in enumerate(MODELS.items()):
        out_dir = os.path.join(ROOT, name)
        config = CaduceusConfig(vocab_size=12, pad_vocab_size_multiple=8, rms_norm=True, residual_in_fp32=False,
                                norm_epsilon=1e-5, bidirectional=True, complement_map=dict(COMPLEMENT), **kw)
        model = CaduceusForMaskedLM(config).eval()
        model.tie_weights()
        randomise(model, torch.Generator().manual_seed(4321 + i))
        # The ties must survive randomisation (they are the same Parameter objects).
        emb = model.caduceus.backbone.embeddings.word_embeddings
        assert model.lm_head.weight.data_ptr() == emb.weight.data_ptr(), "LM head not tied"
        drop = tied_keys(model, config)
        if not masked_only:
            write_model(model, config, out_dir, drop, ids, name)
        # The committed weights (the tied tensors alias the ones loaded).
        missing, unexpected = model.load_state_dict(load_file(os.path.join(out_dir, "model.safetensors")),
                                                    strict=False)
        assert set(missing) == drop and not unexpected, (missing, unexpected)
        m32 = masked(model.float(), genome)
        save_file(m32, os.path.join(out_dir, "masked.safetensors"))
        m64 = masked(model.double(), genome)
        merr = max((m32[k].double() - m64[k].double()).abs().max() for k in ("probs", "probs_rc"))
        print(f"{name}: masked sites fp32 vs fp64 probs max abs {merr:.2e}, range {m32['probs'].min():.3f}.."
              f"{m32['probs'].max():.3f}")


def write_model(model, config, out_dir, drop, ids, name):
    """Writes config.json, model.safetensors and expected.safetensors of one model into a fresh `out_dir`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        cfg = config.to_dict()
        # Caduceus extends the map with integer keys for the padded ids; JSON keys are strings.
        cfg["complement_map"] = {str(k): v for k, v in cfg["complement_map"].items()}
        json.dump(cfg, f, indent=1)
    sd = model.state_dict()
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items() if k not in drop},
              os.path.join(out_dir, "model.safetensors"))
    exp = expected(model, ids)
    save_file(exp, os.path.join(out_dir, "expected.safetensors"))
    # fp64 cross-check of the fp32 golden (printed, not stored).
    e64 = expected(model.double(), ids)
    h32, h64 = exp["last_hidden_state"].double(), e64["last_hidden_state"].double()
    err = ((h32 - h64).norm(dim=1) / h64.norm(dim=1)).max()
    perr = (exp["base_probs"].double() - e64["base_probs"].double()).abs().max()
    print(f"{name}: {len(sd) - len(drop)} tensors saved ({len(drop)} tied dropped); fp32 vs fp64 hidden max rel "
          f"{err:.2e}, probs max abs {perr:.2e}, probs range {exp['base_probs'].min():.3f}.."
          f"{exp['base_probs'].max():.3f}")


if __name__ == "__main__":
    main()
