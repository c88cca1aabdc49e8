//! Random Caduceus models of any size, for benchmarks and long-window tests (no files needed).

use crate::caduceus::config::CaduceusConfig;
use crate::caduceus::model::{CaduceusLayer, CaduceusModel, Projections, Ssm};
use crate::engine::{Dims, ModelFormat, ModelInfo};

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

impl CaduceusModel {
    /// A model of config `c` with every parameter drawn from `seed` (projections scaled by `1/sqrt(fan_in)`,
    /// `A_log` around log 1..N, Δ bias around softplus⁻¹(0.01..0.1), norms around 1); tied as `c` says.
    pub fn random(c: CaduceusConfig, seed: u64) -> CaduceusModel {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (d, e, n, k, rk) = (c.d_model, c.d_inner, c.d_state, c.d_conv, c.dt_rank);
        let fan = |x: usize| 1.0 / (x as f32).sqrt();
        let proj = |r: &mut Rng| Projections {
            in_proj: r.vec(2 * e * d, 0.0, fan(d)),
            in_proj_bias: c.bias.then(|| r.vec(2 * e, 0.0, 0.1)),
            out_proj: r.vec(d * e, 0.0, fan(e)),
            out_proj_bias: c.bias.then(|| r.vec(d, 0.0, 0.1)),
        };
        let ssm = |r: &mut Rng| Ssm {
            conv_weight: r.vec(e * k, 0.0, 0.5),
            conv_bias: c.conv_bias.then(|| r.vec(e, 0.0, 0.1)),
            x_proj: r.vec((rk + 2 * n) * e, 0.0, fan(e)),
            dt_proj: r.vec(e * rk, 0.0, fan(rk)),
            dt_bias: r.vec(e, -3.5, 1.2),
            a_log: (0..e * n)
                .map(|i| (1.0 + (i % n) as f32 + 0.5 * r.next()).ln())
                .collect(),
            d: r.vec(e, 1.0, 0.5),
        };
        let layers = (0..c.n_layer)
            .map(|_| CaduceusLayer {
                norm: r.vec(d, 1.0, 0.3),
                fwd_proj: proj(&mut r),
                fwd: ssm(&mut r),
                rev: c.bidirectional.then(|| ssm(&mut r)),
                rev_proj: (c.bidirectional && !c.weight_tie).then(|| proj(&mut r)),
            })
            .collect();
        let mut m = CaduceusModel {
            info: ModelInfo {
                format: ModelFormat::Caduceus,
                name: format!("random-caduceus-{d}x{}", c.n_layer),
                sha256: String::new(),
                dtype: "f32".into(),
                dims: Dims {
                    d_model: d,
                    n_layer: c.n_layer,
                    d_inner: e,
                    d_state: n,
                    d_conv: k,
                    dt_rank: rk,
                    vocab_size: c.vocab_size,
                },
                norm_eps: c.norm_eps,
                n_params: 0,
                causal: false,
            },
            embedding: r.vec(c.vocab_size * d, 0.0, 1.0),
            lm_head: None,
            layers,
            norm_f: r.vec(d, 1.0, 0.3),
            config: c,
        };
        m.info.n_params = m.param_count();
        m
    }
}
