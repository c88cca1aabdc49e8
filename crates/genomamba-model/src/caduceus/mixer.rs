//! The BiMamba mixer over one window, chunked (DESIGN §5, reference/mamba.md §3.2): the forward Mamba runs
//! over chunks left to right and the reverse Mamba right to left, each carrying its conv history `(E, K-1)` and
//! SSM state `(E, N)` from chunk to chunk. Only chunk-sized `(E, chunk)` buffers exist besides the window's
//! `(L, D)` input and output, so memory is O(L x D + chunk x E), never O(L x E x N); the result does not
//! depend on the chunk size beyond float rounding.
//!
//! The reverse Mamba sees the flipped sequence: its chunk's `in_proj` output is flipped in time per channel,
//! run through the same causal conv and scan kernels as the forward one, and flipped back before `out_proj`.

use rayon::prelude::*;

use crate::Result;
use crate::caduceus::config::Strategy;
use crate::caduceus::model::{CaduceusLayer, Projections, Ssm};
use crate::cpu::kernels;
use crate::cpu::matmul::{Layout, matmul};
use crate::engine::Dims;

/// Chunk-sized work buffers, reused across layers, directions and windows.
#[derive(Debug, Default)]
pub(crate) struct MixerScratch {
    /// Normalised input rows of the chunk, `(c, D)`.
    u: Vec<f32>,
    /// `in_proj` output channel-major `(2E, c)`: x rows then z rows; z is overwritten with the gated y.
    xz: Vec<f32>,
    /// Post-conv `xc`, `(E, c)`.
    xc: Vec<f32>,
    /// `x_proj` output `(c, R + 2N)`.
    dbl: Vec<f32>,
    /// Δ pre-activations, then Δ, `(E, c)`.
    dt: Vec<f32>,
    /// Conv history `(E, K-1)` of the direction being run.
    hist: Vec<f32>,
    /// SSM state `(E, N)` of the direction being run.
    h: Vec<f32>,
    /// The reverse direction's output for `ew_multiply`, `(L, D)`.
    other: Vec<f32>,
}

fn fit(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

/// One direction's weights: projections, SSM and `A = -exp(A_log)` `(E, N)`.
pub(crate) struct Direction<'a> {
    pub proj: &'a Projections,
    pub ssm: &'a Ssm,
    pub a: &'a [f32],
}

/// What every mixer call shares.
pub(crate) struct MixerParams<'a> {
    pub dims: &'a Dims,
    pub eps: f32,
    pub chunk: usize,
    pub threads: usize,
    pub strategy: Strategy,
}

/// `out` `(L, D)` = BiMamba(RMSNorm(`src`) * `layer.norm`) for a window `src` `(L, D)`.
/// `a_fwd` / `a_rev`: `A` of each direction `(E, N)`.
pub(crate) fn bimamba(
    p: &MixerParams<'_>,
    layer: &CaduceusLayer,
    a_fwd: &[f32],
    a_rev: &[f32],
    src: &[f32],
    out: &mut [f32],
    sc: &mut MixerScratch,
) -> Result<()> {
    let fwd = Direction {
        proj: &layer.fwd_proj,
        ssm: &layer.fwd,
        a: a_fwd,
    };
    run_direction(p, &fwd, false, &layer.norm, src, out, false, sc)?;
    let Some(rev_ssm) = &layer.rev else {
        return Ok(());
    };
    let rev = Direction {
        proj: layer.rev_projections(),
        ssm: rev_ssm,
        a: a_rev,
    };
    match p.strategy {
        Strategy::Add => run_direction(p, &rev, true, &layer.norm, src, out, true, sc),
        Strategy::EwMultiply => {
            let mut other = std::mem::take(&mut sc.other);
            fit(&mut other, out.len());
            let res = run_direction(p, &rev, true, &layer.norm, src, &mut other, false, sc);
            out.par_iter_mut()
                .zip(other.par_iter())
                .with_min_len(4096)
                .for_each(|(o, &r)| *o *= r);
            sc.other = other;
            res
        }
    }
}

/// One Mamba over the window, chunk by chunk (right to left when `reverse`), writing (or adding to, when
/// `accumulate`) `out` `(L, D)`.
#[allow(clippy::too_many_arguments)]
fn run_direction(
    p: &MixerParams<'_>,
    dir: &Direction<'_>,
    reverse: bool,
    norm: &[f32],
    src: &[f32],
    out: &mut [f32],
    accumulate: bool,
    sc: &mut MixerScratch,
) -> Result<()> {
    let dims = p.dims;
    let (d, e, n, k, r) = (
        dims.d_model,
        dims.d_inner,
        dims.d_state,
        dims.d_conv,
        dims.dt_rank,
    );
    let len = src.len() / d;
    let chunk = p.chunk.clamp(1, len.max(1));
    let w_dbl = r + 2 * n;
    fit(&mut sc.hist, e * (k - 1));
    fit(&mut sc.h, e * n);
    let n_chunks = len.div_ceil(chunk);
    for i in 0..n_chunks {
        let c = if reverse { n_chunks - 1 - i } else { i };
        let (start, end) = (c * chunk, ((c + 1) * chunk).min(len));
        let l = end - start;
        fit(&mut sc.u, l * d);
        fit(&mut sc.xz, 2 * e * l);
        fit(&mut sc.xc, e * l);
        fit(&mut sc.dbl, l * w_dbl);
        fit(&mut sc.dt, e * l);
        rms_norm_rows(&src[start * d..end * d], norm, p.eps, &mut sc.u, d);
        // xz^T (2E, l) = W_in (2E, D) · u^T (D, l).
        matmul(
            &mut sc.xz,
            Layout::row_major(2 * e, l),
            &dir.proj.in_proj,
            Layout::row_major(2 * e, d),
            &sc.u,
            Layout::transposed(d, l, d),
            false,
            p.threads,
        )?;
        let in_bias = dir.proj.in_proj_bias.as_deref();
        sc.xz.par_chunks_mut(l).enumerate().for_each(|(ch, row)| {
            if let Some(b) = in_bias {
                row.iter_mut().for_each(|v| *v += b[ch]);
            }
            if reverse {
                row.reverse();
            }
        });
        let (x, z) = sc.xz.split_at_mut(e * l);
        let ssm = dir.ssm;
        sc.xc
            .par_chunks_mut(l)
            .zip(x.par_chunks(l))
            .zip(sc.hist.par_chunks_mut(k - 1))
            .enumerate()
            .for_each(|(ch, ((xc, x), hist))| {
                let row = kernels::ConvRow {
                    x,
                    w: &ssm.conv_weight[ch * k..(ch + 1) * k],
                    bias: ssm.conv_bias.as_ref().map_or(0.0, |b| b[ch]),
                };
                kernels::conv_row(&row, hist, xc);
            });
        // dbl (l, R+2N) = xc^T (l, E) · W_x^T (E, R+2N).
        matmul(
            &mut sc.dbl,
            Layout::row_major(l, w_dbl),
            &sc.xc,
            Layout::transposed(l, e, l),
            &ssm.x_proj,
            Layout::transposed(e, w_dbl, e),
            false,
            p.threads,
        )?;
        // dt^T (E, l) = W_dt (E, R) · dt_low^T (R, l).
        matmul(
            &mut sc.dt,
            Layout::row_major(e, l),
            &ssm.dt_proj,
            Layout::row_major(e, r),
            &sc.dbl,
            Layout::transposed(r, l, w_dbl),
            false,
            p.threads,
        )?;
        let dbl = &sc.dbl[..];
        let a = dir.a;
        z.par_chunks_mut(l)
            .zip(sc.dt.par_chunks_mut(l))
            .zip(sc.xc.par_chunks(l))
            .zip(sc.h.par_chunks_mut(n))
            .enumerate()
            .for_each(|(ch, (((gate, delta), u), h))| {
                let row = kernels::ScanRow {
                    u,
                    a: &a[ch * n..(ch + 1) * n],
                    dbl,
                    b_off: r,
                    dt_bias: ssm.dt_bias[ch],
                    d: ssm.d[ch],
                };
                kernels::scan_row(&row, h, delta, gate);
                if reverse {
                    gate.reverse();
                }
            });
        // out rows (l, D) (+)= y^T (l, E) · W_out^T (E, D).
        let dst = &mut out[start * d..end * d];
        matmul(
            dst,
            Layout::row_major(l, d),
            z,
            Layout::transposed(l, e, l),
            &dir.proj.out_proj,
            Layout::transposed(e, d, e),
            accumulate,
            p.threads,
        )?;
        if let Some(b) = &dir.proj.out_proj_bias {
            dst.par_chunks_mut(d)
                .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b));
        }
    }
    Ok(())
}

/// RMSNorm of each `d`-wide row of `x` into `y`: `x / sqrt(mean(x²) + eps) * w`.
pub(crate) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, y: &mut [f32], d: usize) {
    y.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .with_min_len(64)
        .for_each(|(y, x)| rms_norm_row(x, w, eps, y));
}

/// RMSNorm of one row.
pub(crate) fn rms_norm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    y.iter_mut()
        .zip(x)
        .zip(w)
        .for_each(|((y, &x), &w)| *y = x * inv * w);
}
