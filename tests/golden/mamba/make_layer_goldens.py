"""Make the per-layer golden files (`embed --layer K`) with HF transformers' Mamba (CPU, fp32 slow path).

Run from the repository root, after make_goldens.py:
  <python with torch and transformers>/bin/python tests/golden/mamba/make_layer_goldens.py

For each model under tests/golden/mamba/<name>/ it loads hf/ (the weights make_goldens.py wrote) and the tokens of
expected.safetensors, runs them with output_hidden_states=True, and writes expected-layers.safetensors:
  hidden_rows (M,) i64 (the rows of expected.safetensors),
  layer_hidden (n_layer, M, D) f32: transformers' hidden_states[K - 1] at those rows, the residual stream after
      block K (1-based; no norm_f), which `--layer K` gives.
It also checks that hidden_states[-1] is expected.safetensors' last_hidden_state (after norm_f).
"""

import os

import torch
from safetensors.torch import load_file, save_file
from transformers import MambaForCausalLM

ROOT = os.path.dirname(os.path.abspath(__file__))


def main():
    for name in ("odd", "small"):
        out_dir = os.path.join(ROOT, name)
        model = MambaForCausalLM.from_pretrained(os.path.join(out_dir, "hf"), torch_dtype=torch.float32).eval()
        exp = load_file(os.path.join(out_dir, "expected.safetensors"))
        ids = exp["input_ids"].to(torch.long)
        rows = exp["hidden_rows"]
        with torch.no_grad():
            out = model(ids[None], output_hidden_states=True, use_cache=False)
        states = out.hidden_states
        n_layer = model.config.num_hidden_layers
        assert len(states) == n_layer + 1, len(states)
        final = states[-1][0].float()[rows]
        err = ((final - exp["last_hidden_state"]).norm(dim=1) / exp["last_hidden_state"].norm(dim=1)).max()
        assert err < 1e-5, f"{name}: hidden_states[-1] differs from last_hidden_state by {err:.2e}"
        layers = torch.stack([states[k][0].float()[rows] for k in range(n_layer)]).contiguous()
        save_file({"hidden_rows": rows, "layer_hidden": layers},
                  os.path.join(out_dir, "expected-layers.safetensors"))
        norms = layers.norm(dim=2).mean(dim=1)
        print(f"{name}: {n_layer} layers, {len(rows)} rows, mean row norm per layer {norms.tolist()}; "
              f"final vs stored golden {err:.1e}")


if __name__ == "__main__":
    main()
