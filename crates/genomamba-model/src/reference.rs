//! The reference engine: token-by-token recurrence in plain f64 loops, written to be obviously correct
//! (reference/mamba.md §1.2–1.4, §8). It is the yardstick of the fast engines, not fast itself.

use std::sync::Arc;

use crate::Result;
use crate::engine::{BASE_TOKENS, Engine, ModelInfo, Output, Want};
use crate::heads::softmax4;
use crate::model::{LayerWeights, Model};

/// Per block: `conv` `(E, K-1)` last pre-conv inputs (oldest first), `ssm` `(E, N)`.
#[derive(Clone, Debug)]
struct RefLayerState {
    conv: Vec<f64>,
    ssm: Vec<f64>,
}

/// Runs a [`Model`] one token at a time in f64. Implements [`Engine`].
pub struct ReferenceEngine {
    model: Arc<Model>,
    layers: Vec<RefLayerState>,
    next: Option<[f32; 4]>,
}

/// `v / (1 + exp(-v))`.
pub fn silu(v: f64) -> f64 {
    v / (1.0 + (-v).exp())
}

/// PyTorch softplus with β = 1 and threshold 20: identity above 20.
pub fn softplus(v: f64) -> f64 {
    if v > 20.0 { v } else { v.exp().ln_1p() }
}

/// `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(x: &[f64], w: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter()
        .zip(w)
        .map(|(v, &w)| v * inv * f64::from(w))
        .collect()
}

/// `W x (+ b)` for `W` `(out, in)` row-major.
fn matvec(w: &[f32], b: Option<&[f32]>, x: &[f64]) -> Vec<f64> {
    let n_in = x.len();
    let out = w.len() / n_in;
    (0..out)
        .map(|o| {
            let row = &w[o * n_in..(o + 1) * n_in];
            let s: f64 = row.iter().zip(x).map(|(&w, &x)| f64::from(w) * x).sum();
            s + b.map_or(0.0, |b| f64::from(b[o]))
        })
        .collect()
}

impl ReferenceEngine {
    /// A reference engine with a fresh state.
    pub fn new(model: Arc<Model>) -> ReferenceEngine {
        let dims = model.info.dims;
        let layer = RefLayerState {
            conv: vec![0.0; dims.d_inner * (dims.d_conv - 1)],
            ssm: vec![0.0; dims.d_inner * dims.d_state],
        };
        ReferenceEngine {
            layers: vec![layer; dims.n_layer],
            model,
            next: None,
        }
    }

    fn reset(&mut self) {
        for l in &mut self.layers {
            l.conv.fill(0.0);
            l.ssm.fill(0.0);
        }
        self.next = None;
    }

    /// One mixer step (§1.3) on the normalised input `u` `(D,)`, updating `st`; returns `(D,)`.
    fn mixer(
        w: &LayerWeights,
        st: &mut RefLayerState,
        u: &[f64],
        dims: &crate::engine::Dims,
    ) -> Vec<f64> {
        let (e, n, k, r) = (dims.d_inner, dims.d_state, dims.d_conv, dims.dt_rank);
        let xz = matvec(&w.in_proj, w.in_proj_bias.as_deref(), u);
        let (x, z) = xz.split_at(e);
        // Causal depthwise conv over [state (K-1 oldest first), current x], then SiLU.
        let mut xc = vec![0.0; e];
        for c in 0..e {
            let hist = &mut st.conv[c * (k - 1)..(c + 1) * (k - 1)];
            let taps = &w.conv_weight[c * k..(c + 1) * k];
            let mut acc = w.conv_bias.as_ref().map_or(0.0, |b| f64::from(b[c]));
            for j in 0..k - 1 {
                acc += f64::from(taps[j]) * hist[j];
            }
            acc += f64::from(taps[k - 1]) * x[c];
            xc[c] = silu(acc);
            if k > 1 {
                hist.rotate_left(1);
                hist[k - 2] = x[c];
            }
        }
        let dbl = matvec(&w.x_proj, None, &xc);
        let (dt_low, bc) = dbl.split_at(r);
        let (b, cm) = bc.split_at(n);
        let dt = matvec(&w.dt_proj, None, dt_low);
        let mut y = vec![0.0; e];
        for c in 0..e {
            let delta = softplus(dt[c] + f64::from(w.dt_bias[c]));
            let h = &mut st.ssm[c * n..(c + 1) * n];
            let mut acc = 0.0;
            for s in 0..n {
                let a = -f64::from(w.a_log[c * n + s]).exp();
                h[s] = (delta * a).exp() * h[s] + delta * b[s] * xc[c];
                acc += h[s] * cm[s];
            }
            y[c] = (acc + f64::from(w.d[c]) * xc[c]) * silu(z[c]);
        }
        matvec(&w.out_proj, w.out_proj_bias.as_deref(), &y)
    }

    /// Runs one token through all blocks; returns the final hidden state after `norm_f` (the residual stream when
    /// the model is truncated), `(D,)`.
    pub fn step(&mut self, token: u8) -> Vec<f64> {
        let m = &*self.model;
        let dims = m.info.dims;
        let d = dims.d_model;
        let t = usize::from(token);
        let mut s: Vec<f64> = m.embedding[t * d..(t + 1) * d]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        for (w, st) in m.layers.iter().zip(&mut self.layers) {
            let u = rms_norm(&s, &w.norm, m.info.norm_eps);
            let o = Self::mixer(w, st, &u, &dims);
            s.iter_mut().zip(o).for_each(|(s, o)| *s += o);
        }
        if m.final_norm {
            rms_norm(&s, &m.norm_f, m.info.norm_eps)
        } else {
            s
        }
    }
}

impl Engine for ReferenceEngine {
    fn info(&self) -> &ModelInfo {
        &self.model.info
    }
    fn hidden_width(&self) -> usize {
        self.model.info.dims.d_model
    }
    fn is_causal(&self) -> bool {
        true
    }
    fn device(&self) -> String {
        "cpu (reference, f64)".to_owned()
    }
    fn run(&mut self, tokens: &[u8], fresh: bool, want: Want, out: &mut Output) -> Result<()> {
        let dims = self.model.info.dims;
        crate::cpu::check_tokens(tokens, dims.vocab_size, want)?;
        if fresh {
            self.reset();
        }
        out.clear();
        let head = Arc::clone(&self.model);
        let head = head.lm_head();
        let d = dims.d_model;
        for &tok in tokens {
            let h = self.step(tok);
            if want.hidden {
                out.hidden.extend(h.iter().map(|&v| v as f32));
            }
            if want.base_probs {
                out.base_probs.push(self.next.unwrap_or([f32::NAN; 4]));
            }
            // Always kept, so a later call that wants probabilities continues correctly.
            let logits = BASE_TOKENS.map(|b| {
                head[b * d..(b + 1) * d]
                    .iter()
                    .zip(&h)
                    .map(|(&w, &x)| f64::from(w) * x)
                    .sum::<f64>()
            });
            self.next = Some(softmax4(logits));
        }
        out.rows = tokens.len();
        Ok(())
    }
}
