//! Seeded random Mamba-1 models with PyTorch-like initialisation, for GPU parity tests and benchmarks.

use genomamba_model::engine::{Dims, ModelFormat, ModelInfo};
use genomamba_model::model::{LayerWeights, Model};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn uniform(rng: &mut StdRng, len: usize, bound: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-bound..bound)).collect()
}

/// A model with `d_model`, `n_layer`, `d_state` 16, `d_conv` 4, expand 2, vocab 16 (tied head).
pub fn random_model(d_model: usize, n_layer: usize, seed: u64) -> Model {
    let (d, e, n, k, r, v) = (d_model, 2 * d_model, 16, 4, d_model.div_ceil(16), 16);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut layers = Vec::with_capacity(n_layer);
    for _ in 0..n_layer {
        let dt_bias = (0..e)
            .map(|_| {
                let dt: f32 = (rng.random_range(0.001f32.ln()..0.1f32.ln())).exp();
                dt + (-(-dt).exp_m1()).ln() // inverse softplus
            })
            .collect();
        layers.push(LayerWeights {
            norm: (0..d).map(|_| 1.0 + rng.random_range(-0.1..0.1)).collect(),
            in_proj: uniform(&mut rng, 2 * e * d, (d as f32).powf(-0.5)),
            in_proj_bias: None,
            conv_weight: uniform(&mut rng, e * k, 0.5),
            conv_bias: Some(uniform(&mut rng, e, 0.5)),
            x_proj: uniform(&mut rng, (r + 2 * n) * e, (e as f32).powf(-0.5)),
            dt_proj: uniform(&mut rng, e * r, (r as f32).powf(-0.5)),
            dt_bias,
            a_log: (0..e * n).map(|i| ((i % n) as f32 + 1.0).ln()).collect(),
            d: vec![1.0; e],
            out_proj: uniform(&mut rng, d * e, (e as f32).powf(-0.5)),
            out_proj_bias: None,
        });
    }
    let dims = Dims {
        d_model: d,
        n_layer,
        d_inner: e,
        d_state: n,
        d_conv: k,
        dt_rank: r,
        vocab_size: v,
    };
    let mut model = Model {
        info: ModelInfo {
            format: ModelFormat::HfMamba,
            name: format!("random-{d}x{n_layer}"),
            sha256: String::new(),
            dtype: "f32".into(),
            dims,
            norm_eps: 1e-5,
            n_params: 0,
            causal: true,
        },
        embedding: uniform(&mut rng, v * d, 1.0),
        lm_head: None,
        layers,
        norm_f: (0..d).map(|_| 1.0 + rng.random_range(-0.1..0.1)).collect(),
        final_norm: true,
    };
    model.info.n_params = model.param_count();
    model
}

/// `len` random A/C/G/T token ids (7..=10), occasionally N (11).
pub fn random_tokens(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            if rng.random_range(0..1000) == 0 {
                11
            } else {
                rng.random_range(7..=10)
            }
        })
        .collect()
}
