//! The f32 CPU engine of Caduceus: one call = one window, run layer by layer (reference/mamba.md §8).
//!
//! Ph: `s = E[ids]`, per layer `s += BiMamba(rms(s) w)`, `h = rms(s) w_f`.
//! PS: two `(L, D)` halves, `s1 = E[ids]`, `s2[t] = revC(E[c[ids[t]]])`. A half is updated as
//! `s1 += BiMamba(rms(s1) w)` and `s2 = rcL(rcL(s2) + BiMamba(rms(rcL(s2)) w))`, where `rcL` (reverse length
//! and channels) of a row-major `(L, D)` buffer is reversing the whole buffer. With `fused_add_norm` the halves
//! are swapped before each layer's update (the published checkpoints' semantics); the final norm never swaps:
//! `h1 = rms(s1) w_f`, `h2 = rms(s2) rev(w_f)`.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::caduceus::mixer::{BlockPre, MixerParams, MixerScratch, bimamba};
use crate::caduceus::model::CaduceusModel;
use crate::cpu::kernels::rms_norm_row;
use crate::cpu::lanes::{Lanes, one_at_a_time, side_by_side, sums_in_lane};
use crate::cpu::{Exec, Simd, check_tokens};
use crate::engine::{BASE_TOKENS, Engine, HIDDEN, ModelInfo, Output, Want, check_segment_lists};
use crate::heads::softmax4;
use crate::{Error, Result};

/// How a PS model's `2 x d_model` final state becomes [`Output::hidden`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hidden {
    /// PS: the strand-symmetric `(h1 + revC(h2)) / 2`, `d_model` wide; Ph: `h`.
    #[default]
    Symmetric,
    /// PS: `[h1 | h2]` as the model computes it, `2 d_model` wide; Ph: `h` (the same as `Symmetric`).
    Raw,
}

/// Runs a [`CaduceusModel`] on the CPU. Implements [`Engine`] (not causal: every call is a whole window).
pub struct CaduceusEngine {
    model: Arc<CaduceusModel>,
    /// Per block, the SSM weights rearranged for the tile kernels.
    pre: Vec<BlockPre>,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    simd: Simd,
    chunk: usize,
    hidden: Hidden,
    /// The buffers of a window run with every thread.
    bufs: WindowBufs,
    /// Buffers of the short windows a batch runs side by side, a thread each.
    lanes: Lanes<Lane>,
}

/// What one window needs while it runs: the residual stream halves `(L, D)` (`s2` empty for Ph), the mixer
/// output `(L, D)` and the mixers' tile buffers.
#[derive(Default)]
struct WindowBufs {
    s1: Vec<f32>,
    s2: Vec<f32>,
    acc: Vec<f32>,
    scratch: MixerScratch,
}

/// A short window of a batch, on a thread of its own: its buffers, and its hidden rows when only their sums
/// are wanted.
#[derive(Default)]
struct Lane {
    bufs: WindowBufs,
    rows: Output,
}

/// A boxed Caduceus engine; see [`CaduceusEngine::new`].
pub fn caduceus_engine(
    model: Arc<CaduceusModel>,
    threads: usize,
    chunk: usize,
    hidden: Hidden,
) -> Result<Box<dyn Engine>> {
    Ok(Box::new(CaduceusEngine::new(
        model, threads, chunk, hidden,
    )?))
}

impl CaduceusEngine {
    /// An engine with `threads` workers (0 = all cores) whose scans advance `chunk` tokens at a time (min 1;
    /// changes speed and memory, not results), giving `hidden` as the embedding.
    pub fn new(
        model: Arc<CaduceusModel>,
        threads: usize,
        chunk: usize,
        hidden: Hidden,
    ) -> Result<CaduceusEngine> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let threads = pool.current_num_threads();
        let pre = model
            .layers
            .iter()
            .map(|l| BlockPre::new(l, &model.info.dims))
            .collect();
        Ok(CaduceusEngine {
            model,
            pre,
            pool: Arc::new(pool),
            threads,
            simd: Simd::best(),
            chunk: chunk.max(1),
            hidden,
            bufs: WindowBufs::default(),
            lanes: Lanes::default(),
        })
    }

    /// Runs the conv and scan kernels at `simd` (default: the best this CPU has), e.g. to test or time a
    /// lower level; an error if this CPU lacks it. Outputs agree across levels to float rounding.
    pub fn set_simd(&mut self, simd: Simd) -> Result<()> {
        self.simd = simd.checked()?;
        Ok(())
    }

    /// The model this engine runs.
    pub fn model(&self) -> &Arc<CaduceusModel> {
        &self.model
    }

    /// Bytes a lane holds for a window of `len` tokens: the residual stream halves and the mixer output, and
    /// the hidden rows when `hidden` (their sums are wanted, not the rows).
    fn lane_bytes(&self, len: usize, hidden: bool) -> usize {
        let c = &self.model.config;
        let arrays = if c.rcps { 3 } else { 2 };
        let rows = if hidden { self.hidden_width() } else { 0 };
        len.saturating_mul(arrays * c.d_model + rows)
            .saturating_mul(4)
    }

    /// How this engine runs a window on `threads` threads.
    fn plan(&self, threads: usize) -> Plan<'_> {
        Plan {
            model: &self.model,
            pre: &self.pre,
            chunk: self.chunk,
            exec: Exec {
                threads,
                simd: self.simd,
            },
            hidden: self.hidden,
        }
    }
}

/// What running one window takes besides its buffers.
struct Plan<'a> {
    model: &'a CaduceusModel,
    pre: &'a [BlockPre],
    chunk: usize,
    exec: Exec,
    hidden: Hidden,
}

impl Plan<'_> {
    /// Runs `tokens` as one window (on the current rayon pool) into `out`, with `bufs` as work space.
    fn forward(
        &self,
        bufs: &mut WindowBufs,
        tokens: &[u8],
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        let m = self.model;
        let c = &m.config;
        let d = c.d_model;
        let l = tokens.len();
        let p = MixerParams {
            dims: &m.info.dims,
            eps: c.norm_eps as f32,
            chunk: self.chunk,
            exec: self.exec,
            strategy: c.strategy,
        };
        let WindowBufs {
            s1,
            s2,
            acc,
            scratch: sc,
        } = bufs;
        embed(m, tokens, s1, s2);
        acc.clear();
        acc.resize(l * d, 0.0);
        for (layer, pre) in m.layers.iter().zip(self.pre) {
            if c.rcps && c.fused_add_norm {
                std::mem::swap(s1, s2);
            }
            bimamba(&p, layer, pre, s1, acc, sc)?;
            add(s1, acc);
            if c.rcps {
                s2.reverse();
                bimamba(&p, layer, pre, s2, acc, sc)?;
                add(s2, acc);
                s2.reverse();
            }
        }
        if want.hidden {
            // The mixer output buffer is free now: it becomes the hidden rows (the caller's previous buffer
            // comes back as the next window's), so a window holds three `(L, D)` arrays at its peak, not four.
            std::mem::swap(acc, &mut out.hidden);
        }
        finish(m, self.hidden, s1, s2, want, out);
        Ok(())
    }

    /// [`Engine::run`] of a fresh window: checks, clears `out`, runs.
    fn run(
        &self,
        bufs: &mut WindowBufs,
        tokens: &[u8],
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        check_tokens(tokens, self.model.info.dims.vocab_size, want)?;
        out.clear();
        if tokens.is_empty() {
            return Ok(());
        }
        self.forward(bufs, tokens, want, out)
    }
}

/// `s1[t] = E[tok]`; for RCPS `s2[t] = revC(E[c[tok]])`.
fn embed(m: &CaduceusModel, tokens: &[u8], s1: &mut Vec<f32>, s2: &mut Vec<f32>) {
    let d = m.config.d_model;
    let row = |t: usize| &m.embedding[t * d..(t + 1) * d];
    s1.clear();
    s2.clear();
    for &t in tokens {
        s1.extend_from_slice(row(usize::from(t)));
    }
    if m.config.rcps {
        for &t in tokens {
            s2.extend(row(m.config.complement[usize::from(t)]).iter().rev());
        }
    }
}

fn add(s: &mut [f32], acc: &[f32]) {
    s.par_iter_mut()
        .zip(acc.par_iter())
        .with_min_len(4096)
        .for_each(|(s, &a)| *s += a);
}

/// Final norm, hidden rows and the masked-LM head's base probabilities at every position.
fn finish(m: &CaduceusModel, hidden: Hidden, s1: &[f32], s2: &[f32], want: Want, out: &mut Output) {
    let c = &m.config;
    let d = c.d_model;
    let l = s1.len() / d;
    let eps = c.norm_eps as f32;
    let head = m.lm_head();
    let dot = |a: &[f32], tok: usize| -> f64 {
        a.iter()
            .zip(&head[tok * d..(tok + 1) * d])
            .map(|(&x, &w)| f64::from(x) * f64::from(w))
            .sum()
    };
    // Row t: h1 = rms(s1[t]) w_f and, for RCPS, g = revC(h2) = rms(revC(s2[t])) w_f, into `h1`, `g`.
    let normed = |t: usize, h1: &mut [f32], g: &mut [f32], rev: &mut [f32]| {
        rms_norm_row(&s1[t * d..(t + 1) * d], &m.norm_f, eps, h1);
        if c.rcps {
            rev.iter_mut()
                .zip(s2[t * d..(t + 1) * d].iter().rev())
                .for_each(|(r, &v)| *r = v);
            rms_norm_row(rev, &m.norm_f, eps, g);
        }
    };
    let width = c.hidden_width(hidden);
    // One row: normalise once, then write what is wanted.
    let row_out = |t: usize,
                   (h1, g, rev): &mut (Vec<f32>, Vec<f32>, Vec<f32>),
                   row: Option<&mut [f32]>,
                   p: Option<&mut [f32; 4]>| {
        normed(t, h1, g, rev);
        if let Some(row) = row {
            match (c.rcps, hidden) {
                (false, _) => row.copy_from_slice(h1),
                (true, Hidden::Symmetric) => row
                    .iter_mut()
                    .zip(h1.iter().zip(g.iter()))
                    .for_each(|(o, (&a, &b))| *o = 0.5 * (a + b)),
                (true, Hidden::Raw) => {
                    row[..d].copy_from_slice(h1);
                    row[d..]
                        .iter_mut()
                        .zip(g.iter().rev())
                        .for_each(|(o, &v)| *o = v);
                }
            }
        }
        if let Some(p) = p {
            *p = if c.rcps {
                // RCPSLMHead: h1 · W^T + revC(h2) · W[c]^T.
                softmax4(BASE_TOKENS.map(|b| dot(h1, b) + dot(g, c.complement[b])))
            } else {
                softmax4(BASE_TOKENS.map(|b| dot(h1, b)))
            };
        }
    };
    let bufs = || (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
    if want.hidden {
        out.hidden.resize(l * width, 0.0);
    }
    if want.base_probs {
        out.base_probs.resize(l, [0.0; 4]);
    }
    match (want.hidden, want.base_probs) {
        (true, true) => out
            .hidden
            .par_chunks_mut(width)
            .zip(out.base_probs.par_iter_mut())
            .enumerate()
            .with_min_len(64)
            .for_each_init(bufs, |b, (t, (row, p))| row_out(t, b, Some(row), Some(p))),
        (true, false) => out
            .hidden
            .par_chunks_mut(width)
            .enumerate()
            .with_min_len(64)
            .for_each_init(bufs, |b, (t, row)| row_out(t, b, Some(row), None)),
        (false, true) => out
            .base_probs
            .par_iter_mut()
            .enumerate()
            .with_min_len(64)
            .for_each_init(bufs, |b, (t, p)| row_out(t, b, None, Some(p))),
        (false, false) => {}
    }
    out.rows = l;
}

impl Engine for CaduceusEngine {
    fn info(&self) -> &ModelInfo {
        &self.model.info
    }
    fn hidden_width(&self) -> usize {
        self.model.config.hidden_width(self.hidden)
    }
    fn is_causal(&self) -> bool {
        false
    }
    fn device(&self) -> String {
        format!("cpu ({} threads, {})", self.threads, self.simd.name())
    }
    fn strand_symmetric(&self) -> bool {
        self.model.config.strand_symmetric(self.hidden)
    }
    /// Runs one whole window: `fresh` must be true (a bidirectional model carries nothing between calls).
    /// `base_probs` holds the masked-LM head's distribution at each position itself (inputs not masked).
    fn run(&mut self, tokens: &[u8], fresh: bool, want: Want, out: &mut Output) -> Result<()> {
        if !fresh {
            check_tokens(tokens, self.model.info.dims.vocab_size, want)?;
            return Err(Error::Usage(
                "Caduceus is bidirectional: each call must be a whole window (fresh = true)".into(),
            ));
        }
        let mut bufs = std::mem::take(&mut self.bufs);
        let ran = self
            .pool
            .install(|| self.plan(self.threads).run(&mut bufs, tokens, want, out));
        self.bufs = bufs;
        ran
    }
    /// With more than one thread, a batch's windows run side by side, a thread each, as far as their buffers
    /// fit (`cpu/lanes.rs`).
    fn prefers_batches(&self) -> bool {
        self.threads > 1
    }
    fn run_batch(&mut self, seqs: &[&[u8]], want: Want, outs: &mut Vec<Output>) -> Result<()> {
        outs.resize_with(seqs.len(), Output::default);
        let side = side_by_side(seqs, self.threads, |len| self.lane_bytes(len, false));
        let plan = self.plan(1);
        let lanes = &self.lanes;
        self.pool.install(|| {
            lanes.run(&side, outs, Lane::default, |lane, i, out| {
                plan.run(&mut lane.bufs, seqs[i], want, out)
            })
        })?;
        for i in one_at_a_time(&side) {
            self.run(seqs[i], true, want, &mut outs[i])?;
        }
        Ok(())
    }
    fn run_batch_sums(
        &mut self,
        seqs: &[&[u8]],
        segments: &[&[Range<usize>]],
        sums: &mut Vec<Vec<f64>>,
    ) -> Result<()> {
        check_segment_lists(seqs, segments)?;
        sums.resize_with(seqs.len(), Vec::new);
        let side = side_by_side(seqs, self.threads, |len| self.lane_bytes(len, true));
        let plan = self.plan(1);
        let (lanes, width) = (&self.lanes, self.hidden_width());
        self.pool.install(|| {
            lanes.run(&side, sums, Lane::default, |lane, i, out| {
                let Lane { bufs, rows } = lane;
                let job = (seqs[i].len(), segments[i]);
                sums_in_lane(rows, width, job, out, |rows| {
                    plan.run(bufs, seqs[i], HIDDEN, rows)
                })
            })
        })?;
        for i in one_at_a_time(&side) {
            self.run_sums(seqs[i], true, segments[i], &mut sums[i])?;
        }
        Ok(())
    }
}
