//! The BiMamba mixer over one window, chunked (DESIGN §5, reference/mamba.md §3.2): the forward Mamba runs
//! over tiles left to right and the reverse Mamba right to left, each carrying its conv history `(E, K-1)`
//! and SSM state `(E, N)` from tile to tile, through the fast engine's token-major tile kernels
//! ([`mixer_tile`]). Only tile-sized buffers exist besides the window's `(L, D)` input and output, so memory
//! is O(L x D + tile x E), never O(L x E x N); the result does not depend on the tile size beyond float
//! rounding.
//!
//! The reverse Mamba reads the window's rows last to first (its tile row `i` is window row `L-1-j0-i`) and its
//! output rows go back to those window rows as they are combined.

use rayon::prelude::*;

use crate::Result;
use crate::caduceus::config::Strategy;
use crate::caduceus::model::{CaduceusLayer, Projections, Ssm};
use crate::cpu::kernels::rms_norm_row;
use crate::cpu::pre::{LayerPre, ProjPre, SsmRef};
use crate::cpu::scratch::MixerBufs;
use crate::cpu::{Carry, Exec, MixerRef, TILE, mixer_tile};
use crate::engine::Dims;

/// Tile-sized work buffers, reused across layers, directions and windows.
#[derive(Debug, Default)]
pub(crate) struct MixerScratch {
    /// Normalised input rows of the tile, `(T, D)`.
    u: Vec<f32>,
    /// The mixer's own buffers.
    mix: MixerBufs,
    /// The reverse direction's output rows of the tile, `(T, D)`.
    tmp: Vec<f32>,
    /// Conv history `(E, K-1)` of the direction being run.
    conv: Vec<f32>,
    /// SSM state `(E x N)` of the direction being run.
    h: Vec<f32>,
}

/// `v` holds `len` zeros (carried state at the start of a direction).
fn zeroed(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

/// `v` holds `len` values, contents unspecified (overwritten before they are read); capacity is kept.
fn sized(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

/// One block's SSM weights rearranged for the tile kernels: forward, and reverse when bidirectional.
pub(crate) struct BlockPre {
    fwd: LayerPre,
    rev: Option<LayerPre>,
    /// The forward Mamba's projections, which a weight-tied reverse one shares.
    fwd_proj: ProjPre,
    /// The reverse Mamba's own projections, when not tied.
    rev_proj: Option<ProjPre>,
}

impl BlockPre {
    /// Rearranges `layer`'s weights for models of size `dims`.
    pub(crate) fn new(layer: &CaduceusLayer, dims: &Dims) -> BlockPre {
        let pre = |s: &Ssm| {
            let r = SsmRef {
                a_log: &s.a_log,
                dt_proj: &s.dt_proj,
                conv_weight: &s.conv_weight,
                conv_bias: s.conv_bias.as_deref(),
                x_proj: &s.x_proj,
            };
            LayerPre::new(&r, dims.d_inner, dims.d_state, dims.d_conv, dims.dt_rank)
        };
        let proj =
            |p: &Projections| ProjPre::new(&p.in_proj, &p.out_proj, dims.d_model, dims.d_inner);
        BlockPre {
            fwd: pre(&layer.fwd),
            rev: layer.rev.as_ref().map(pre),
            fwd_proj: proj(&layer.fwd_proj),
            rev_proj: layer.rev_proj.as_ref().map(proj),
        }
    }
}

/// What every mixer call shares.
pub(crate) struct MixerParams<'a> {
    pub dims: &'a Dims,
    pub eps: f32,
    pub chunk: usize,
    pub exec: Exec,
    pub strategy: Strategy,
}

fn mixer_ref<'a>(
    proj: &'a Projections,
    proj_pre: &'a ProjPre,
    ssm: &'a Ssm,
    pre: &'a LayerPre,
) -> MixerRef<'a> {
    MixerRef {
        proj: proj_pre,
        in_bias: proj.in_proj_bias.as_deref(),
        dt_bias: &ssm.dt_bias,
        d: &ssm.d,
        out_bias: proj.out_proj_bias.as_deref(),
        pre,
    }
}

/// How a direction's output rows enter `out`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Write,
    Add,
    Multiply,
}

/// `out` `(L, D)` = BiMamba(RMSNorm(`src`) * `layer.norm`) for a window `src` `(L, D)`.
pub(crate) fn bimamba(
    p: &MixerParams<'_>,
    layer: &CaduceusLayer,
    pre: &BlockPre,
    src: &[f32],
    out: &mut [f32],
    sc: &mut MixerScratch,
) -> Result<()> {
    let fwd = mixer_ref(&layer.fwd_proj, &pre.fwd_proj, &layer.fwd, &pre.fwd);
    run_direction(p, &fwd, &layer.norm, src, out, false, Combine::Write, sc)?;
    let (Some(rev_ssm), Some(rev_pre)) = (&layer.rev, &pre.rev) else {
        return Ok(());
    };
    let rev_proj = pre.rev_proj.as_ref().unwrap_or(&pre.fwd_proj);
    let rev = mixer_ref(layer.rev_projections(), rev_proj, rev_ssm, rev_pre);
    let how = match p.strategy {
        Strategy::Add => Combine::Add,
        Strategy::EwMultiply => Combine::Multiply,
    };
    run_direction(p, &rev, &layer.norm, src, out, true, how, sc)
}

/// One Mamba over the window, tile by tile (last row first when `reverse`), combining its rows into `out`
/// `(L, D)`.
#[allow(clippy::too_many_arguments)]
fn run_direction(
    p: &MixerParams<'_>,
    w: &MixerRef<'_>,
    norm: &[f32],
    src: &[f32],
    out: &mut [f32],
    reverse: bool,
    how: Combine,
    sc: &mut MixerScratch,
) -> Result<()> {
    let dims = p.dims;
    let d = dims.d_model;
    let len = src.len() / d;
    let tile = p.chunk.clamp(1, TILE);
    zeroed(&mut sc.conv, dims.d_inner * (dims.d_conv - 1));
    zeroed(&mut sc.h, dims.d_inner * dims.d_state);
    let mut j0 = 0;
    while j0 < len {
        let l = tile.min(len - j0);
        sized(&mut sc.u, l * d);
        sc.u.par_chunks_mut(d)
            .enumerate()
            .with_min_len(64)
            .for_each(|(i, u)| {
                let row = if reverse { len - 1 - j0 - i } else { j0 + i };
                rms_norm_row(&src[row * d..(row + 1) * d], norm, p.eps, u);
            });
        let carry = Carry {
            conv: &mut sc.conv,
            ssm: &mut sc.h,
        };
        if how == Combine::Write && !reverse {
            let dst = &mut out[j0 * d..(j0 + l) * d];
            mixer_tile(w, dims, &sc.u, &mut sc.mix, carry, dst, false, p.exec)?;
        } else {
            sized(&mut sc.tmp, l * d);
            mixer_tile(
                w,
                dims,
                &sc.u,
                &mut sc.mix,
                carry,
                &mut sc.tmp,
                false,
                p.exec,
            )?;
            // Tile row i belongs to window row j0 + i, or L-1-j0-i when reverse: rows [first, first + l).
            let first = if reverse { len - j0 - l } else { j0 };
            let tmp = &sc.tmp;
            out[first * d..(first + l) * d]
                .par_chunks_mut(d)
                .enumerate()
                .with_min_len(64)
                .for_each(|(q, o)| {
                    let i = if reverse { l - 1 - q } else { q };
                    let t = &tmp[i * d..(i + 1) * d];
                    match how {
                        Combine::Write => o.copy_from_slice(t),
                        Combine::Add => o.iter_mut().zip(t).for_each(|(o, &v)| *o += v),
                        Combine::Multiply => o.iter_mut().zip(t).for_each(|(o, &v)| *o *= v),
                    }
                });
        }
        j0 += l;
    }
    Ok(())
}
