//! The fast CPU engine: f32, chunked. Per chunk of `L` tokens and per block, the projections are GEMMs over
//! the whole chunk (`gemm` crate), and the conv and selective scan run per channel in parallel (rayon) with
//! the state loop vectorised. Buffers live in a scratch arena and are reused across chunks.

mod kernels;
pub mod matmul;
mod scratch;

use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::{BASE_TOKENS, Engine, ModelInfo, Output, Want};
use crate::heads;
use crate::model::Model;
use crate::state::State;
use crate::{Error, Result};

pub use kernels::{exp as fast_exp, softplus as fast_softplus};
use matmul::{Layout, matmul};
use scratch::Scratch;

/// Checks every token is inside the vocabulary (and the vocabulary has A, C, G, T when probabilities are wanted).
pub(crate) fn check_tokens(tokens: &[u8], vocab: usize, want: Want) -> Result<()> {
    if want.base_probs && vocab <= BASE_TOKENS[3] {
        return Err(Error::Usage(format!(
            "base probabilities need tokens 7..=10 but the vocabulary has {vocab}"
        )));
    }
    match tokens.iter().position(|&t| usize::from(t) >= vocab) {
        Some(offset) => Err(Error::Token {
            token: tokens[offset],
            offset,
            vocab,
        }),
        None => Ok(()),
    }
}

/// The fast f32 CPU engine. Implements [`Engine`]; [`CpuEngine::forward_chunk`] is the lower-level entry.
pub struct CpuEngine {
    model: Arc<Model>,
    /// `A = -exp(A_log)` per block, `(E, N)`.
    a: Vec<Vec<f32>>,
    pool: rayon::ThreadPool,
    threads: usize,
    chunk: usize,
    scratch: Scratch,
    state: State,
}

/// A boxed fast CPU engine with `threads` worker threads (0 = all cores) and chunks of `chunk` tokens.
pub fn cpu_engine(model: Arc<Model>, threads: usize, chunk: usize) -> Result<Box<dyn Engine>> {
    Ok(Box::new(CpuEngine::new(model, threads, chunk)?))
}

impl CpuEngine {
    /// A fast engine with `threads` workers (0 = all cores) processing `chunk` tokens at a time (min 1).
    pub fn new(model: Arc<Model>, threads: usize, chunk: usize) -> Result<CpuEngine> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let threads = pool.current_num_threads();
        let a = model
            .layers
            .iter()
            .map(|l| l.a_log.iter().map(|&v| -v.exp()).collect())
            .collect();
        let state = State::new(&model.info.dims);
        Ok(CpuEngine {
            model,
            a,
            pool,
            threads,
            chunk: chunk.max(1),
            scratch: Scratch::default(),
            state,
        })
    }

    /// A fresh state for this engine's model.
    pub fn new_state(&self) -> State {
        State::new(&self.model.info.dims)
    }

    /// Runs one chunk of `tokens` from `state` (updated in place) and appends one row per token to `out`
    /// (`out.hidden` `(rows, D)` if wanted, `out.base_probs` if wanted, `out.rows`). Any length works; buffers
    /// grow to the longest chunk seen and are then reused.
    pub fn forward_chunk(
        &mut self,
        tokens: &[u8],
        state: &mut State,
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        let m = &*self.model;
        check_tokens(tokens, m.info.dims.vocab_size, want)?;
        if state.layers.len() != m.layers.len() {
            return Err(Error::Usage("state does not belong to this model".into()));
        }
        if tokens.is_empty() {
            return Ok(());
        }
        let (model, a, scratch, threads) = (&self.model, &self.a, &mut self.scratch, self.threads);
        self.pool
            .install(|| forward(model, a, scratch, threads, tokens, state, want, out))
    }
}

#[allow(clippy::too_many_arguments)]
fn forward(
    m: &Model,
    a_all: &[Vec<f32>],
    sc: &mut Scratch,
    threads: usize,
    tokens: &[u8],
    state: &mut State,
    want: Want,
    out: &mut Output,
) -> Result<()> {
    let dims = m.info.dims;
    let (l, d, e, n, k, r) = (
        tokens.len(),
        dims.d_model,
        dims.d_inner,
        dims.d_state,
        dims.d_conv,
        dims.dt_rank,
    );
    let w_dbl = r + 2 * n;
    let eps = m.info.norm_eps as f32;
    sc.prepare(l, &dims);
    for (row, &t) in sc.s.chunks_exact_mut(d).zip(tokens) {
        let t = usize::from(t);
        row.copy_from_slice(&m.embedding[t * d..(t + 1) * d]);
    }
    for ((w, st), a) in m.layers.iter().zip(&mut state.layers).zip(a_all) {
        rms_norm_rows(&sc.s, &w.norm, eps, &mut sc.u, d);
        // xz^T (2E, L) = W_in (2E, D) · u^T (D, L): channel-major so each channel's time series is contiguous.
        matmul(
            &mut sc.xz,
            Layout::row_major(2 * e, l),
            &w.in_proj,
            Layout::row_major(2 * e, d),
            &sc.u,
            Layout::transposed(d, l, d),
            false,
            threads,
        )?;
        if let Some(b) = &w.in_proj_bias {
            sc.xz
                .par_chunks_mut(l)
                .zip(b.par_iter())
                .for_each(|(row, &b)| row.iter_mut().for_each(|v| *v += b));
        }
        let (x, z) = sc.xz.split_at_mut(e * l);
        let hist_len = k - 1;
        sc.xc
            .par_chunks_mut(l)
            .zip(x.par_chunks(l))
            .zip(st.conv.par_chunks_mut(hist_len))
            .enumerate()
            .for_each(|(c, ((xc, x), hist))| {
                let p = kernels::ConvRow {
                    x,
                    w: &w.conv_weight[c * k..(c + 1) * k],
                    bias: w.conv_bias.as_ref().map_or(0.0, |b| b[c]),
                };
                kernels::conv_row(&p, hist, xc);
            });
        // dbl (L, R+2N) = xc^T (L, E) · W_x^T (E, R+2N).
        matmul(
            &mut sc.dbl,
            Layout::row_major(l, w_dbl),
            &sc.xc,
            Layout::transposed(l, e, l),
            &w.x_proj,
            Layout::transposed(e, w_dbl, e),
            false,
            threads,
        )?;
        // dt^T (E, L) = W_dt (E, R) · dt_low^T (R, L).
        matmul(
            &mut sc.dt,
            Layout::row_major(e, l),
            &w.dt_proj,
            Layout::row_major(e, r),
            &sc.dbl,
            Layout::transposed(r, l, w_dbl),
            false,
            threads,
        )?;
        let dbl = &sc.dbl[..l * w_dbl];
        // y (E, L) is written over z.
        z.par_chunks_mut(l)
            .zip(sc.dt.par_chunks_mut(l))
            .zip(sc.xc.par_chunks(l))
            .zip(st.ssm.par_chunks_mut(n))
            .enumerate()
            .for_each(|(c, (((gate, delta), u), h))| {
                let p = kernels::ScanRow {
                    u,
                    a: &a[c * n..(c + 1) * n],
                    dbl,
                    b_off: r,
                    dt_bias: w.dt_bias[c],
                    d: w.d[c],
                };
                kernels::scan_row(&p, h, delta, gate);
            });
        // s (L, D) += y^T (L, E) · W_out^T (E, D).
        matmul(
            &mut sc.s,
            Layout::row_major(l, d),
            &z[..e * l],
            Layout::transposed(l, e, l),
            &w.out_proj,
            Layout::transposed(e, d, e),
            true,
            threads,
        )?;
        if let Some(b) = &w.out_proj_bias {
            sc.s.par_chunks_mut(d)
                .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b));
        }
    }
    finish(m, sc, l, state, want, out, eps);
    state.pos += l as u64;
    Ok(())
}

/// Final norm, hidden rows and base probabilities; keeps the last row's prediction in the state.
fn finish(
    m: &Model,
    sc: &mut Scratch,
    l: usize,
    state: &mut State,
    want: Want,
    out: &mut Output,
    eps: f32,
) {
    let d = m.info.dims.d_model;
    let head = m.lm_head();
    let rows = if want.hidden || want.base_probs {
        0..l
    } else {
        l - 1..l
    };
    let hid = &mut sc.u[..l * d];
    rms_norm_rows(
        &sc.s[rows.start * d..l * d],
        &m.norm_f,
        eps,
        &mut hid[rows.start * d..],
        d,
    );
    if want.hidden {
        out.hidden.extend_from_slice(hid);
    }
    if want.base_probs {
        out.base_probs
            .push(state.next_base_probs.unwrap_or([f32::NAN; 4]));
        let start = out.base_probs.len();
        out.base_probs.resize(start + l - 1, [0.0; 4]);
        out.base_probs[start..]
            .par_iter_mut()
            .zip(hid.par_chunks(d))
            .for_each(|(p, h)| *p = heads::base_probs(h, head));
    }
    state.next_base_probs = Some(heads::base_probs(&hid[(l - 1) * d..], head));
    out.rows += l;
}

/// RMSNorm of each `d`-wide row of `x` into `y`: `x / sqrt(mean(x²) + eps) * w`.
fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, y: &mut [f32], d: usize) {
    y.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .with_min_len(64)
        .for_each(|(y, x)| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / d as f32;
            let inv = 1.0 / (ms + eps).sqrt();
            y.iter_mut()
                .zip(x)
                .zip(w)
                .for_each(|((y, &x), &w)| *y = x * inv * w);
        });
}

impl Engine for CpuEngine {
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
        format!("cpu ({} threads)", self.threads)
    }
    fn run(&mut self, tokens: &[u8], fresh: bool, want: Want, out: &mut Output) -> Result<()> {
        check_tokens(tokens, self.model.info.dims.vocab_size, want)?;
        let mut state = std::mem::replace(
            &mut self.state,
            State {
                layers: Vec::new(),
                next_base_probs: None,
                pos: 0,
            },
        );
        if fresh {
            state.reset();
        }
        out.clear();
        let mut res = Ok(());
        for piece in tokens.chunks(self.chunk) {
            res = self.forward_chunk(piece, &mut state, want, out);
            if res.is_err() {
                break;
            }
        }
        self.state = state;
        res
    }
}
