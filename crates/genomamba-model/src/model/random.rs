//! Random models of any size, for benchmarks and engine-vs-engine tests (no files needed).

use crate::engine::{Dims, ModelFormat, ModelInfo};
use crate::model::{LayerWeights, Model};

/// xorshift64* stream of uniform values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 random bits
        v as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, len: usize, centre: f32, scale: f32) -> Vec<f32> {
        (0..len).map(|_| centre + scale * self.next()).collect()
    }
}

impl Model {
    /// A model of sizes `dims` with every parameter drawn from `seed` (projections scaled by `1/sqrt(fan_in)`,
    /// `A_log` = log of 1..16, Δ bias around softplus⁻¹(0.01..0.1), norms around 1), tied head, no biases.
    pub fn random(dims: Dims, seed: u64) -> Model {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (d, e, n, k, rk) = (
            dims.d_model,
            dims.d_inner,
            dims.d_state,
            dims.d_conv,
            dims.dt_rank,
        );
        let fan = |x: usize| 1.0 / (x as f32).sqrt();
        let layers = (0..dims.n_layer)
            .map(|_| LayerWeights {
                norm: r.vec(d, 1.0, 0.3),
                in_proj: r.vec(2 * e * d, 0.0, fan(d)),
                in_proj_bias: None,
                conv_weight: r.vec(e * k, 0.0, 0.5),
                conv_bias: Some(r.vec(e, 0.0, 0.1)),
                x_proj: r.vec((rk + 2 * n) * e, 0.0, fan(e)),
                dt_proj: r.vec(e * rk, 0.0, fan(rk)),
                dt_bias: r.vec(e, -3.5, 1.2),
                a_log: (0..e * n)
                    .map(|i| (1.0 + (i % n) as f32 + 0.5 * r.next()).ln())
                    .collect(),
                d: r.vec(e, 1.0, 0.5),
                out_proj: r.vec(d * e, 0.0, fan(e)),
                out_proj_bias: None,
            })
            .collect();
        let mut m = Model {
            info: ModelInfo {
                format: ModelFormat::HfMamba,
                name: format!("random-{d}x{}", dims.n_layer),
                sha256: String::new(),
                dtype: "f32".into(),
                dims,
                norm_eps: 1e-5,
                n_params: 0,
                causal: true,
            },
            embedding: r.vec(dims.vocab_size * d, 0.0, 1.0),
            lm_head: None,
            layers,
            norm_f: r.vec(d, 1.0, 0.3),
            final_norm: true,
        };
        m.info.n_params = m.param_count();
        m
    }
}
