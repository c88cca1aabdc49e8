"""Make the golden files for genomamba-model's tests with HF transformers' Mamba (CPU, fp32 slow path).

Run from the repository root:  /opt/torchenv/bin/python tests/golden/mamba/make_goldens.py

For each small random model (every parameter randomised, including A_log, D, the dt bias and the norms) it
writes, under tests/golden/mamba/<name>/:
  hf/            config.json (model_type mamba) + model.safetensors (lm_head omitted when tied)
  ssm/           mamba-ssm config.json + pytorch_model.bin (backbone.embedding.weight naming)
  hf-bf16/, hf-f16/  (model "small" only) the same weights stored in bf16 / f16
  expected.safetensors: input_ids (L,) u8 = first L bases of data/genomes/lambda_virus.fa (A7 C8 G9 T10 N11),
      hidden_rows (M,) i64, last_hidden_state (M, D) f32 at those rows (every 8th, to stay small),
      base_probs (L, 4) f32: P(A,C,G,T) at p from the logits at p-1, renormalised; row 0 NaN
  expected-bf16.safetensors / expected-f16.safetensors: the same for the rounded weights (computed in fp32)
"""

import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import MambaConfig, MambaForCausalLM

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(ROOT, "..", "..", ".."))
L = 2000
ROW_STEP = 8
VOCAB = 16  # 12 character tokens padded to a multiple of 8

MODELS = {
    # the odd shape of the issue: d_model 48, d_state 8, conv 3, dt_rank 5; biases on; untied head
    "odd": dict(hidden_size=48, num_hidden_layers=2, state_size=8, conv_kernel=3, expand=2, time_step_rank=5,
                use_bias=True, use_conv_bias=True, layer_norm_epsilon=1e-5, tie_word_embeddings=False),
    # Mamba defaults (d_state 16, conv 4, dt_rank auto), tied head, no biases, eps from config
    "small": dict(hidden_size=32, num_hidden_layers=2, state_size=16, conv_kernel=4, expand=2,
                  time_step_rank="auto", use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-6,
                  tie_word_embeddings=True),
}


def lambda_tokens(n):
    seq = []
    with open(os.path.join(REPO, "data", "genomes", "lambda_virus.fa")) as f:
        for line in f:
            if line.startswith(">"):
                continue
            seq.extend(line.strip().upper())
            if len(seq) >= n:
                break
    table = {"A": 7, "C": 8, "G": 9, "T": 10}
    return torch.tensor([table.get(b, 11) for b in seq[:n]], dtype=torch.long)


def randomise(model, gen):
    d = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen) * 15.5 + 0.5))
            elif name.endswith("mixer.D"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith("dt_proj.bias"):
                p.copy_(-2.5 + 1.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("conv1d.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name or name.startswith("lm_head"):
                p.copy_(torch.randn(p.shape, generator=gen))
            else:  # projections (out, in)
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    return model


def expected(model, ids):
    with torch.no_grad():
        out = model(ids[None], output_hidden_states=True, use_cache=False)
    hidden = out.hidden_states[-1][0].float()  # after norm_f = backbone last_hidden_state
    logits = out.logits[0].double()[:, 7:11]
    probs = torch.full((len(ids), 4), float("nan"), dtype=torch.float32)
    probs[1:] = torch.softmax(logits[:-1], dim=-1).float()
    rows = torch.arange(0, len(ids), ROW_STEP)
    return {"input_ids": ids.to(torch.uint8), "hidden_rows": rows, "last_hidden_state": hidden[rows].contiguous(),
            "base_probs": probs}


def save_hf(model, path, dtype):
    os.makedirs(path, exist_ok=True)
    cfg = model.config.to_dict()
    keep = ["model_type", "vocab_size", "hidden_size", "state_size", "num_hidden_layers", "expand", "conv_kernel",
            "time_step_rank", "use_bias", "use_conv_bias", "layer_norm_epsilon", "residual_in_fp32",
            "tie_word_embeddings", "intermediate_size", "hidden_act"]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({k: cfg[k] for k in keep if k in cfg}, f, indent=1)
    sd = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(path, "model.safetensors"))


def save_ssm(model, path):
    os.makedirs(path, exist_ok=True)
    c = model.config
    cfg = {"d_model": c.hidden_size, "n_layer": c.num_hidden_layers, "vocab_size": 12,
           "ssm_cfg": {"d_state": c.state_size, "d_conv": c.conv_kernel, "expand": c.expand,
                       "dt_rank": c.time_step_rank, "conv_bias": c.use_conv_bias, "bias": c.use_bias},
           "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
           "tie_embeddings": c.tie_word_embeddings, "norm_epsilon": c.layer_norm_epsilon}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    sd = {k.replace("backbone.embeddings.", "backbone.embedding."): v.detach().contiguous().clone()
          for k, v in model.state_dict().items()}
    torch.save(sd, os.path.join(path, "pytorch_model.bin"))  # keeps lm_head.weight, as mamba-ssm does


def main():
    torch.manual_seed(0)
    ids = lambda_tokens(L)
    for i, (name, kw) in enumerate(MODELS.items()):
        out_dir = os.path.join(ROOT, name)
        shutil.rmtree(out_dir, ignore_errors=True)
        gen = torch.Generator().manual_seed(1234 + i)
        model = randomise(MambaForCausalLM(MambaConfig(vocab_size=VOCAB, **kw)), gen).float().eval()
        save_hf(model, os.path.join(out_dir, "hf"), torch.float32)
        save_ssm(model, os.path.join(out_dir, "ssm"))
        exp = expected(model, ids)
        save_file(exp, os.path.join(out_dir, "expected.safetensors"))
        # fp64 cross-check of the fp32 golden (printed, not stored)
        m64 = MambaForCausalLM(model.config).eval()
        m64.load_state_dict(model.state_dict())
        m64 = m64.double()
        e64 = expected(m64, ids)
        err = (e64["last_hidden_state"] - exp["last_hidden_state"]).norm(dim=1) / e64["last_hidden_state"].norm(dim=1)
        perr = (e64["base_probs"][1:] - exp["base_probs"][1:]).abs().max()
        print(f"{name}: fp32 vs fp64 hidden max rel {err.max():.2e}, probs max abs {perr:.2e}, "
              f"probs range {exp['base_probs'][1:].min():.3f}..{exp['base_probs'][1:].max():.3f}")
        if name == "small":
            for tag, dt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
                save_hf(model, os.path.join(out_dir, f"hf-{tag}"), dt)
                mr = MambaForCausalLM(model.config).eval()
                mr.load_state_dict({k: v.to(dt).float() for k, v in model.state_dict().items()})
                save_file(expected(mr, ids), os.path.join(out_dir, f"expected-{tag}.safetensors"))


if __name__ == "__main__":
    main()
