//! The fast CPU engine: f32, chunked. Each chunk runs as tiles of `TILE` (1024) tokens through every block with
//! the state carried, so buffers stay cache-sized whatever the chunk. Per tile and block, the projections are
//! GEMMs over the tile (`gemm` crate, AVX-512 kernels where available), buffers are token-major `(T, width)`
//! and start on a cache line (`aligned.rs`), the conv runs per token over all channels and the selective scan
//! per block of 16 channels with the state in registers and dt_proj fused (`tile.rs`); rayon splits tokens or
//! fixed channel blocks, so outputs do not depend on the thread count.

pub(crate) mod aligned;
pub(crate) mod kernels;
pub(crate) mod lanes;
pub mod matmul;
pub(crate) mod pre;
pub(crate) mod scratch;
pub mod simd;
pub(crate) mod tile;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vmath512;

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::{
    BASE_TOKENS, Dims, Engine, HIDDEN, ModelInfo, Output, Want, check_segment_lists,
};
use crate::heads;
use crate::model::Model;
use crate::state::State;
use crate::{Error, Result};

pub use kernels::{exp as fast_exp, softplus as fast_softplus};
use lanes::{Lanes, one_at_a_time, side_by_side, sums_in_lane};
use matmul::{Layout, matmul};
use pre::{LayerPre, ProjPre, SsmRef};
use scratch::{MixerBufs, Scratch};
pub use simd::Simd;

/// Checks every token is inside the vocabulary (and the vocabulary has A, C, G, T when probabilities are
/// wanted); shared by every engine.
pub fn check_tokens(tokens: &[u8], vocab: usize, want: Want) -> Result<()> {
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
    /// Each block's weights rearranged for the kernels (SSM constants) and the GEMMs (projections).
    pre: Vec<(LayerPre, ProjPre)>,
    /// Tokens per tile (default `TILE`).
    tile: usize,
    pool: rayon::ThreadPool,
    threads: usize,
    simd: Simd,
    chunk: usize,
    scratch: Scratch,
    state: State,
    /// Buffers of the sequences a batch runs side by side.
    lanes: Lanes<Lane>,
}

/// What one short sequence of a batch needs while it runs on a thread of its own.
struct Lane {
    scratch: Scratch,
    state: State,
    /// Its hidden rows, when only their sums are wanted.
    rows: Output,
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
        let dims = model.info.dims;
        let pre = model
            .layers
            .iter()
            .map(|l| {
                let ssm = SsmRef {
                    a_log: &l.a_log,
                    dt_proj: &l.dt_proj,
                    conv_weight: &l.conv_weight,
                    conv_bias: l.conv_bias.as_deref(),
                    x_proj: &l.x_proj,
                };
                (
                    LayerPre::new(&ssm, dims.d_inner, dims.d_state, dims.d_conv, dims.dt_rank),
                    ProjPre::new(&l.in_proj, &l.out_proj, dims.d_model, dims.d_inner),
                )
            })
            .collect();
        let state = State::new(&model.info.dims);
        Ok(CpuEngine {
            model,
            pre,
            tile: TILE,
            pool,
            threads,
            simd: Simd::best(),
            chunk: chunk.max(1),
            scratch: Scratch::default(),
            state,
            lanes: Lanes::default(),
        })
    }

    /// Sets the tile length (tokens run through all blocks at a time; min 1). Outputs do not depend on it
    /// beyond rounding; the default suits the model's size.
    pub fn set_tile(&mut self, tile: usize) {
        self.tile = tile.max(1);
    }

    /// Runs the conv and scan kernels at `simd` (default: the best this CPU has), e.g. to test or time a
    /// lower level; an error if this CPU lacks it. Outputs agree across levels to float rounding.
    pub fn set_simd(&mut self, simd: Simd) -> Result<()> {
        self.simd = simd.checked()?;
        Ok(())
    }

    /// A fresh state for this engine's model.
    pub fn new_state(&self) -> State {
        State::new(&self.model.info.dims)
    }

    /// How a lane of a batch runs a sequence with this engine.
    fn lane_plan(&self) -> LanePlan<'_> {
        LanePlan {
            model: &self.model,
            pre: &self.pre,
            simd: self.simd,
            chunk: self.chunk,
            tile: self.tile,
        }
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
        let (model, pre, scratch) = (&self.model, &self.pre, &mut self.scratch);
        let exec = Exec {
            threads: self.threads,
            simd: self.simd,
        };
        let tile = self.tile;
        self.pool
            .install(|| forward(model, pre, scratch, exec, tile, tokens, state, want, out))
    }
}

/// What a lane needs of the engine to run a sequence on one thread.
struct LanePlan<'a> {
    model: &'a Model,
    pre: &'a [(LayerPre, ProjPre)],
    simd: Simd,
    chunk: usize,
    tile: usize,
}

impl LanePlan<'_> {
    /// Runs `tokens` as a fresh window on this thread alone, in chunks as [`Engine::run`] does, into `out`, with
    /// the lane's `scratch` and `state`.
    fn run(
        &self,
        (scratch, state): (&mut Scratch, &mut State),
        tokens: &[u8],
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        let m = self.model;
        check_tokens(tokens, m.info.dims.vocab_size, want)?;
        state.reset();
        out.clear();
        let exec = Exec {
            threads: 1,
            simd: self.simd,
        };
        for piece in tokens.chunks(self.chunk) {
            forward(
                m, self.pre, scratch, exec, self.tile, piece, state, want, out,
            )?;
        }
        Ok(())
    }
}

impl Lane {
    fn new(dims: &Dims) -> Lane {
        Lane {
            scratch: Scratch::default(),
            state: State::new(dims),
            rows: Output::default(),
        }
    }
}

/// How a tile runs: the threads the GEMMs split across (on the current rayon pool) and the SIMD level of the
/// conv and scan kernels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exec {
    pub threads: usize,
    pub simd: Simd,
}

/// Tokens per tile: the engine runs each chunk as consecutive tiles of this many tokens through all blocks
/// (state carried), so the working set stays in cache and memory does not grow with the chunk. 1024 keeps
/// the GEMMs long enough that packing the weights is cheap (measured best from 128x4 to 768x24 models).
pub(crate) const TILE: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn forward(
    m: &Model,
    pre: &[(LayerPre, ProjPre)],
    sc: &mut Scratch,
    exec: Exec,
    tile: usize,
    tokens: &[u8],
    state: &mut State,
    want: Want,
    out: &mut Output,
) -> Result<()> {
    for piece in tokens.chunks(tile) {
        forward_tile(m, pre, sc, exec, piece, state, want, out)?;
    }
    Ok(())
}

/// One tile of `l` tokens through every block, then the heads.
#[allow(clippy::too_many_arguments)]
fn forward_tile(
    m: &Model,
    pre: &[(LayerPre, ProjPre)],
    sc: &mut Scratch,
    exec: Exec,
    tokens: &[u8],
    state: &mut State,
    want: Want,
    out: &mut Output,
) -> Result<()> {
    let dims = m.info.dims;
    let (l, d) = (tokens.len(), dims.d_model);
    let eps = m.info.norm_eps as f32;
    sc.prepare(l, &dims);
    for (row, &t) in sc.s.chunks_exact_mut(d).zip(tokens) {
        let t = usize::from(t);
        row.copy_from_slice(&m.embedding[t * d..(t + 1) * d]);
    }
    for ((w, st), (p, pj)) in m.layers.iter().zip(&mut state.layers).zip(pre) {
        rms_norm_rows(&sc.s, &w.norm, eps, &mut sc.u, d);
        let mixer = MixerRef {
            proj: pj,
            in_bias: w.in_proj_bias.as_deref(),
            dt_bias: &w.dt_bias,
            d: &w.d,
            out_bias: w.out_proj_bias.as_deref(),
            pre: p,
        };
        let carry = Carry {
            conv: &mut st.conv,
            ssm: &mut st.ssm,
        };
        mixer_tile(
            &mixer,
            &dims,
            &sc.u,
            &mut sc.mix,
            carry,
            &mut sc.s,
            true,
            exec,
        )?;
    }
    finish(m, sc, l, state, want, out, eps);
    state.pos += l as u64;
    Ok(())
}

/// One Mamba's weights as the tile kernels read them, borrowed from a causal block or a Caduceus direction.
pub(crate) struct MixerRef<'a> {
    /// `in_proj` and `out_proj` as `(in, out)` right-hand sides.
    pub proj: &'a ProjPre,
    /// `in_proj.bias` `(2E,)`.
    pub in_bias: Option<&'a [f32]>,
    /// `dt_proj.bias` `(E,)` and the skip `D` `(E,)`.
    pub dt_bias: &'a [f32],
    pub d: &'a [f32],
    /// `out_proj.bias` `(D,)`.
    pub out_bias: Option<&'a [f32]>,
    /// The rearranged SSM weights (and `x_proj`).
    pub pre: &'a LayerPre,
}

/// The state one Mamba carries from tile to tile: conv history `(E, K-1)` and SSM state (`E x N`, in the
/// scan kernels' block layout).
pub(crate) struct Carry<'a> {
    pub conv: &'a mut [f32],
    pub ssm: &'a mut [f32],
}

/// One Mamba mixer over a tile of `l = u.len() / D` tokens: `out` `(l, D)` = (or += when `accumulate`)
/// Mamba(`u`) with `u` the normalised input `(l, D)`, carrying `carry` across calls.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mixer_tile(
    w: &MixerRef<'_>,
    dims: &Dims,
    u: &[f32],
    sc: &mut MixerBufs,
    carry: Carry<'_>,
    out: &mut [f32],
    accumulate: bool,
    exec: Exec,
) -> Result<()> {
    let threads = exec.threads;
    let (d, e, n, k, r) = (
        dims.d_model,
        dims.d_inner,
        dims.d_state,
        dims.d_conv,
        dims.dt_rank,
    );
    let l = u.len() / d;
    let (w_dbl, hist, e2) = (r + 2 * n, k - 1, 2 * e);
    let block = exec.simd.width();
    sc.prepare(l, dims);
    // History rows: the previous K-1 tokens' x, from the (E, K-1) state.
    for (c, hc) in carry.conv.chunks_exact(hist).enumerate() {
        for (j, &v) in hc.iter().enumerate() {
            sc.xz[j * e2 + c] = v;
        }
    }
    // xz (T, 2E) = u (T, D) · W_in^T (D, 2E), below the history rows.
    matmul(
        &mut sc.xz[hist * e2..],
        Layout::row_major(l, e2),
        u,
        Layout::row_major(l, d),
        &w.proj.in_t,
        Layout::row_major(d, e2),
        false,
        threads,
    )?;
    if let Some(b) = w.in_bias {
        sc.xz[hist * e2..]
            .par_chunks_mut(e2)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b));
    }
    let conv = tile::ConvTile {
        x: &sc.xz,
        ld: e2,
        w_t: &w.pre.conv_t,
        bias: &w.pre.conv_b,
        simd: exec.simd,
    };
    sc.xc
        .par_chunks_mut(e * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, out)| tile::conv_tile(&conv, i * ROWS_PER_TASK, out));
    for (c, hc) in carry.conv.chunks_exact_mut(hist).enumerate() {
        for (j, v) in hc.iter_mut().enumerate() {
            *v = sc.xz[(l + j) * e2 + c];
        }
    }
    // dbl (T, R+2N) = xc (T, E) · W_x^T (E, R+2N).
    matmul(
        &mut sc.dbl,
        Layout::row_major(l, w_dbl),
        &sc.xc,
        Layout::row_major(l, e),
        &w.pre.x_t,
        Layout::row_major(e, w_dbl),
        false,
        threads,
    )?;
    let scan = tile::ScanTile {
        dbl: &sc.dbl,
        r,
        n,
        a2_t: &w.pre.a2_t,
        dt_t: &w.pre.dt_t,
        dt_bias: w.dt_bias,
        d: w.d,
        z: &sc.xz[hist * e2 + e..],
        z_ld: e2,
        simd: exec.simd,
    };
    let cols = tile::Columns::new(&mut sc.xc, l, e);
    let task = block * BLOCKS_PER_SCAN_TASK;
    carry
        .ssm
        .par_chunks_mut(task * n)
        .enumerate()
        .for_each(|(i, h)| tile::scan_tile(&scan, i * task, cols, h));
    // out (T, D) (+)= y (T, E) · W_out^T (E, D).
    matmul(
        out,
        Layout::row_major(l, d),
        &sc.xc,
        Layout::row_major(l, e),
        &w.proj.out_t,
        Layout::row_major(e, d),
        accumulate,
        threads,
    )?;
    if let Some(b) = w.out_bias {
        out.par_chunks_mut(d)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b));
    }
    Ok(())
}

/// Channel blocks per scan task: 4 x 16 channels with AVX-512, so a task reads 256 contiguous bytes of
/// each row, and the 256..1536 channels of the usual models still make 4..24 tasks to balance.
const BLOCKS_PER_SCAN_TASK: usize = 4;

/// Tokens per conv task.
const ROWS_PER_TASK: usize = 32;

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
    if m.final_norm {
        rms_norm_rows(
            &sc.s[rows.start * d..l * d],
            &m.norm_f,
            eps,
            &mut hid[rows.start * d..],
            d,
        );
    } else {
        hid[rows.start * d..].copy_from_slice(&sc.s[rows.start * d..l * d]);
    }
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
        .for_each(|(y, x)| kernels::rms_norm_row(x, w, eps, y));
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
        format!("cpu ({} threads, {})", self.threads, self.simd.name())
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
    fn save_state(&mut self, into: &mut State) -> Result<()> {
        into.clone_from(&self.state);
        Ok(())
    }
    /// With more than one thread, a batch's sequences run side by side, a thread each (`cpu/lanes.rs`).
    fn prefers_batches(&self) -> bool {
        self.threads > 1
    }
    fn run_batch(&mut self, seqs: &[&[u8]], want: Want, outs: &mut Vec<Output>) -> Result<()> {
        outs.resize_with(seqs.len(), Output::default);
        // A lane's buffers are a tile's, whatever the length.
        let side = side_by_side(seqs, self.threads, |_| 0);
        let (plan, lanes, dims) = (self.lane_plan(), &self.lanes, self.model.info.dims);
        self.pool.install(|| {
            lanes.run(
                &side,
                outs,
                || Lane::new(&dims),
                |lane, i, out| plan.run((&mut lane.scratch, &mut lane.state), seqs[i], want, out),
            )
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
        let (plan, lanes, dims) = (self.lane_plan(), &self.lanes, self.model.info.dims);
        // A lane holds its sequence's hidden rows until they are summed.
        let side = side_by_side(seqs, self.threads, |len| len * dims.d_model * 4);
        self.pool.install(|| {
            lanes.run(
                &side,
                sums,
                || Lane::new(&dims),
                |lane, i, out| {
                    let Lane {
                        scratch,
                        state,
                        rows,
                    } = lane;
                    let job = (seqs[i].len(), segments[i]);
                    sums_in_lane(rows, dims.d_model, job, out, |rows| {
                        plan.run((scratch, state), seqs[i], HIDDEN, rows)
                    })
                },
            )
        })?;
        for i in one_at_a_time(&side) {
            self.run_sums(seqs[i], true, segments[i], &mut sums[i])?;
        }
        Ok(())
    }
    fn restore_state(&mut self, from: &State) -> Result<()> {
        from.check_fits(&self.model.info.dims)?;
        self.state.clone_from(from);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReferenceEngine;
    use crate::engine::Dims;

    fn dims(d: usize, n: usize, k: usize) -> Dims {
        Dims {
            d_model: d,
            n_layer: 2,
            d_inner: 2 * d,
            d_state: n,
            d_conv: k,
            dt_rank: 3,
            vocab_size: 16,
        }
    }

    fn tokens(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| 7 + ((i * 2_654_435_761usize) >> 13 & 3) as u8)
            .collect()
    }

    fn run(m: &Arc<Model>, threads: usize, tile: usize, toks: &[u8]) -> Result<Output> {
        run_at(m, threads, tile, toks, Simd::best())
    }

    fn run_at(
        m: &Arc<Model>,
        threads: usize,
        tile: usize,
        toks: &[u8],
        simd: Simd,
    ) -> Result<Output> {
        let mut e = CpuEngine::new(Arc::clone(m), threads, 700)?;
        e.set_tile(tile);
        e.set_simd(simd)?;
        assert_eq!(
            e.device(),
            format!("cpu ({threads} threads, {})", simd.name())
        );
        let mut out = Output::default();
        e.run(toks, true, Want::ALL, &mut out)?;
        Ok(out)
    }

    /// Max over rows of |a - b| / |a| (row norms).
    fn rel(a: &[f32], b: &[f32], d: usize) -> f32 {
        a.chunks(d)
            .zip(b.chunks(d))
            .map(|(x, y)| {
                let num: f32 = x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum();
                let den: f32 = x.iter().map(|p| p * p).sum();
                (num / den).sqrt()
            })
            .fold(0.0, f32::max)
    }

    #[test]
    fn calls_of_any_length_give_the_bits_of_one_call() -> Result<()> {
        // The walk of `score --indel-flank` splits a window's calls at every indel, down to one token between
        // neighbours: each row must keep the bits a single call gives it.
        let m = Arc::new(Model::random(dims(64, 16, 4), 5));
        let toks = tokens(5000);
        let mut e = CpuEngine::new(Arc::clone(&m), 2, 65_536)?;
        let mut whole = Output::default();
        e.run(&toks, true, Want::ALL, &mut whole)?;
        let (mut at, mut out) = (0, Output::default());
        let (mut hidden, mut probs) = (Vec::new(), Vec::new());
        for len in [1, 1, 2, 7, 1, 1024, 1, 3, 1500, 1] {
            e.run(&toks[at..at + len], at == 0, Want::ALL, &mut out)?;
            hidden.extend_from_slice(&out.hidden);
            probs.extend_from_slice(&out.base_probs);
            at += len;
        }
        e.run(&toks[at..], false, Want::ALL, &mut out)?;
        hidden.extend_from_slice(&out.hidden);
        probs.extend_from_slice(&out.base_probs);
        assert!(hidden == whole.hidden, "hidden rows differ");
        // NaN (the first row's) compares unequal: compare the bits.
        let bits =
            |p: &[[f32; 4]]| -> Vec<u32> { p.iter().flatten().map(|x| x.to_bits()).collect() };
        assert_eq!(bits(&probs), bits(&whole.base_probs));
        Ok(())
    }

    #[test]
    fn saved_state_continues_like_one_pass() -> Result<()> {
        let m = Arc::new(Model::random(dims(44, 8, 4), 3));
        let toks = tokens(600);
        let (prefix, a, b) = (&toks[..250], &toks[250..330], &toks[330..600]);
        let mut e = CpuEngine::new(Arc::clone(&m), 2, 64)?;
        let (mut out, mut saved) = (Output::default(), State::new(&m.info.dims));
        e.run(prefix, true, Want::ALL, &mut out)?;
        e.save_state(&mut saved)?;
        assert_eq!(saved.pos, 250);
        e.run(a, false, Want::ALL, &mut out)?;
        let first_a = out.clone();
        e.restore_state(&saved)?;
        e.run(b, false, Want::ALL, &mut out)?;
        let from_saved = out.clone();
        let mut whole = Output::default();
        e.run(&[prefix, b].concat(), true, Want::ALL, &mut whole)?;
        let d = 44;
        assert!(rel(&whole.hidden[250 * d..], &from_saved.hidden, d) < 1e-6);
        for (p, q) in whole.base_probs[250..].iter().zip(&from_saved.base_probs) {
            assert!(
                p.iter().zip(q).all(|(x, y)| (x - y).abs() < 1e-6),
                "{p:?} {q:?}"
            );
        }
        // The same continuation again, bit for bit.
        e.restore_state(&saved)?;
        e.run(a, false, Want::ALL, &mut out)?;
        assert_eq!(out.hidden, first_a.hidden);
        assert!(out.base_probs[0].iter().all(|p| p.is_finite()));
        // A state of another model's shape is refused.
        let other = State::new(&dims(44, 16, 4));
        assert!(e.restore_state(&other).is_err());
        Ok(())
    }

    #[test]
    fn test_tiles_threads_and_odd_widths() -> Result<()> {
        // E = 88 is 5 blocks of 16 plus 8 channels; N = 16 and 8 take the fixed-size scans, 5 the general one.
        let toks = tokens(1500);
        for (n, k) in [(16, 4), (8, 3), (5, 4)] {
            let m = Arc::new(Model::random(dims(44, n, k), 3));
            let one = run(&m, 1, 1024, &toks)?;
            let two = run(&m, 2, 1024, &toks)?;
            assert_eq!(
                one.hidden, two.hidden,
                "N {n}: thread count changed the output"
            );
            let tiny = run(&m, 2, 37, &toks)?;
            let single = run(&m, 1, 1, &toks[..200])?;
            let mut reference = ReferenceEngine::new(Arc::clone(&m));
            let mut want = Output::default();
            reference.run(&toks, true, Want::ALL, &mut want)?;
            assert!(
                rel(&want.hidden, &one.hidden, 44) < 1e-5,
                "N {n}: vs reference"
            );
            assert!(rel(&one.hidden, &tiny.hidden, 44) < 1e-5, "N {n}: tile 37");
            assert!(
                rel(&one.hidden[..200 * 44], &single.hidden, 44) < 1e-5,
                "N {n}: tile 1"
            );
            for simd in Simd::available() {
                let at = run_at(&m, 2, 1024, &toks, simd)?;
                let err = rel(&want.hidden, &at.hidden, 44);
                assert!(err < 1e-5, "N {n}: {simd} vs reference: {err:e}");
            }
        }
        Ok(())
    }
}
