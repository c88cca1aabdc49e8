//! Token-major kernels of the fast engine: buffers are `(T, width)` row-major, so a run of `W` neighbouring
//! channels at one token is one SIMD vector. The causal conv runs per token over all channels; the selective
//! scan runs per block of `W` channels with the `(N, W)` state held in registers, Δ = softplus(dt_proj(...))
//! computed on the fly (dt_proj fused), and the gate applied before the result is written (reference/mamba.md
//! §1.2 steps 3–7). The scan takes runs of 64 tokens as its outer loop and a task's blocks as the inner one,
//! each run in stages (Δ and the gate, then the recurrence; the AVX-512 path also splits off the decays).
//! Every path computes the decays exp(ΔA) as `2^k · 2^f` with the same degree-5 polynomial
//! ([`exp2_decay`] and its AVX-512 form).
//!
//! `W` is 16 with AVX-512, 8 with AVX2 + FMA and 4 otherwise (the caller's [`Simd`] level, checked at run
//! time). Each channel's arithmetic is the same whatever block it lands in, so outputs do not depend on how
//! channels are split across threads.

use super::kernels::{exp2_decay, silu, softplus};
use super::simd::Simd;

#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// Inputs of the causal conv over one tile of `T` tokens.
pub(crate) struct ConvTile<'a> {
    /// `K-1+T` rows of stride `ld`: the first `K-1` rows are the history (previous tokens' x), then the
    /// tile's x; channel `c` of a row is at `row * ld + c`.
    pub x: &'a [f32],
    /// Row stride of `x`.
    pub ld: usize,
    /// Taps `(K, E)`.
    pub w_t: &'a [f32],
    /// Bias `(E,)`.
    pub bias: &'a [f32],
    /// The SIMD level to run at.
    pub simd: Simd,
}

#[inline(always)]
fn conv_body<const F: bool>(p: &ConvTile<'_>, t0: usize, out: &mut [f32]) {
    let e = p.bias.len();
    let k = p.w_t.len() / e;
    for (i, o) in out.chunks_exact_mut(e).enumerate() {
        let t = t0 + i;
        o.copy_from_slice(p.bias);
        for j in 0..k {
            let x = &p.x[(t + j) * p.ld..(t + j) * p.ld + e];
            let w = &p.w_t[j * e..(j + 1) * e];
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = fma::<F>(w, x, *o);
            }
        }
        for o in o.iter_mut() {
            *o = silu::<F>(*o);
        }
    }
}

/// Depthwise causal conv + SiLU for tokens `t0..t0 + out.len()/E` of the tile into `out` (rows of `E`).
/// Runs at `p.simd`, or at the best level below it that this CPU has.
pub(crate) fn conv_tile(p: &ConvTile<'_>, t0: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if p.simd >= Simd::Avx512 && Simd::Avx512.is_available() {
            // SAFETY: the CPU supports AVX-512F (and DQ), checked just above.
            unsafe { conv_avx512(p, t0, out) };
            return;
        }
        if p.simd >= Simd::Avx2 && Simd::Avx2.is_available() {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { conv_avx2(p, t0, out) };
            return;
        }
    }
    conv_body::<false>(p, t0, out);
}

/// The conv with AVX-512: 64 channels at a time as four vectors, whose SiLU chains interleave (`vmath512`,
/// no division), then 16 at a time, the remaining `E % 16` channels with the portable body's arithmetic.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn conv_avx512(p: &ConvTile<'_>, t0: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let e = p.bias.len();
    let k = p.w_t.len() / e;
    let full = e / 16 * 16;
    let ld = |s: &[f32]| {
        let s = &s[..16];
        // SAFETY: `s` is 16 readable f32.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    };
    // Bias plus the K taps of the 16 channels from `c` at token `t`.
    let taps = |t: usize, c: usize| {
        let mut acc = ld(&p.bias[c..]);
        for j in 0..k {
            acc = _mm512_fmadd_ps(ld(&p.w_t[j * e + c..]), ld(&p.x[(t + j) * p.ld + c..]), acc);
        }
        acc
    };
    let store = |o: &mut [f32], v: __m512| {
        let o = &mut o[..16];
        // SAFETY: `o` is 16 writable f32.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) };
    };
    let quads = full / 64 * 64;
    for (i, o) in out.chunks_exact_mut(e).enumerate() {
        let t = t0 + i;
        for c in (0..quads).step_by(64) {
            let v: [__m512; 4] = std::array::from_fn(|q| taps(t, c + 16 * q));
            for (q, v) in super::vmath512::silu(v).into_iter().enumerate() {
                store(&mut o[c + 16 * q..], v);
            }
        }
        for c in (quads..full).step_by(16) {
            store(&mut o[c..], super::vmath512::silu([taps(t, c)])[0]);
        }
        for (c, o) in o.iter_mut().enumerate().skip(full) {
            let mut acc = p.bias[c];
            for j in 0..k {
                acc = p.w_t[j * e + c].mul_add(p.x[(t + j) * p.ld + c], acc);
            }
            *o = silu::<true>(acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn conv_avx2(p: &ConvTile<'_>, t0: usize, out: &mut [f32]) {
    conv_body::<true>(p, t0, out);
}

/// Inputs of the selective scan over one tile of `T` tokens, shared by all channel blocks.
pub(crate) struct ScanTile<'a> {
    /// `(T, R + 2N)` row-major x_proj outputs `[dt_low | B | C]`.
    pub dbl: &'a [f32],
    /// dt_rank `R`.
    pub r: usize,
    /// d_state `N`.
    pub n: usize,
    /// `(N, E)` A · log2(e), A = -exp(A_log).
    pub a2_t: &'a [f32],
    /// `(R, E)` dt_proj weight.
    pub dt_t: &'a [f32],
    /// `(E,)` Δ bias.
    pub dt_bias: &'a [f32],
    /// `(E,)` skip weight D.
    pub d: &'a [f32],
    /// Gate pre-activations: z of channel `c` at token `t` is `z[t * z_ld + c]`.
    pub z: &'a [f32],
    /// Row stride of `z`.
    pub z_ld: usize,
    /// The SIMD level to run at.
    pub simd: Simd,
}

/// A `(T, E)` row-major buffer that channel blocks on different threads read and write in place, each only
/// in its own columns.
#[derive(Clone, Copy)]
pub(crate) struct Columns {
    ptr: *mut f32,
    rows: usize,
    e: usize,
}

// SAFETY: `Columns` is only handed to `scan_tile` calls on disjoint channel ranges, so no element is accessed
// from two threads; the buffer outlives the parallel loop that uses it (it is created from a `&mut` borrow).
unsafe impl Send for Columns {}
// SAFETY: as above.
unsafe impl Sync for Columns {}

impl Columns {
    /// Views `buf` (`rows x e`, row-major) for disjoint-column access.
    pub fn new(buf: &mut [f32], rows: usize, e: usize) -> Columns {
        assert!(buf.len() >= rows * e);
        Columns {
            ptr: buf.as_mut_ptr(),
            rows,
            e,
        }
    }
}

/// Tokens per run of both scans' stages (Δ and the gate for the run, then the recurrence).
const RUN: usize = 64;

/// Δ and SiLU(z) of one block of `W` channels for a run of tokens, between the two passes.
struct RunBufs<const W: usize> {
    delta: [[f32; W]; RUN],
    gate: [[f32; W]; RUN],
}

/// Tokens `tokens` (at most `RUN`) of channels `c0..c0 + W` with state `h` `(N, W)`: first Δ and the gate of
/// every token (no dependence between tokens, so the long softplus and SiLU chains overlap), then the
/// recurrence, whose only loop-carried chain is through `h`.
#[inline(always)]
fn scan_body<const F: bool, const W: usize>(
    p: &ScanTile<'_>,
    c0: usize,
    xc: Columns,
    h: &mut [[f32; W]],
    tokens: std::ops::Range<usize>,
    bufs: &mut RunBufs<W>,
) {
    let (r, n, e) = (p.r, p.n, xc.e);
    let stride = r + 2 * n;
    let bias: [f32; W] = std::array::from_fn(|l| p.dt_bias[c0 + l]);
    let dskip: [f32; W] = std::array::from_fn(|l| p.d[c0 + l]);
    let t0 = tokens.start;
    for (t, (delta, gate)) in tokens
        .clone()
        .zip(bufs.delta.iter_mut().zip(bufs.gate.iter_mut()))
    {
        let row = &p.dbl[t * stride..(t + 1) * stride];
        // Δ = softplus(dt_low · W_dt^T + bias), accumulated over r in order.
        let mut dt = [0f32; W];
        for (j, &v) in row[..r].iter().enumerate() {
            let w = &p.dt_t[j * e + c0..j * e + c0 + W];
            for l in 0..W {
                dt[l] = fma::<F>(v, w[l], dt[l]);
            }
        }
        for l in 0..W {
            delta[l] = dt[l] + bias[l];
        }
        gate.copy_from_slice(&p.z[t * p.z_ld + c0..t * p.z_ld + c0 + W]);
    }
    // softplus and SiLU over the run's flat buffers: loops LLVM vectorises (per token, W lanes at a time, it
    // left them scalar, with a division per lane).
    let len = tokens.len();
    for v in bufs.delta[..len].as_flattened_mut() {
        *v = softplus::<F>(*v);
    }
    for v in bufs.gate[..len].as_flattened_mut() {
        *v = silu::<F>(*v);
    }
    for t in tokens {
        let (delta, gate) = (&bufs.delta[t - t0], &bufs.gate[t - t0]);
        let row = &p.dbl[t * stride..(t + 1) * stride];
        let at = t * e + c0;
        // SAFETY: `t < rows` and `c0 + W <= e`, so every index is inside the `rows x e` buffer, and only this
        // call touches columns `c0..c0 + W` (see `Columns`).
        let u: [f32; W] = std::array::from_fn(|l| unsafe { *xc.ptr.add(at + l) });
        let mut du = [0f32; W];
        for l in 0..W {
            du[l] = delta[l] * u[l];
        }
        let mut acc = [0f32; W];
        for (s, hs) in h.iter_mut().enumerate() {
            let (b, c) = (row[r + s], row[r + n + s]);
            let a2 = &p.a2_t[s * e + c0..s * e + c0 + W];
            for l in 0..W {
                let v = fma::<F>(exp2_decay::<F>(delta[l] * a2[l]), hs[l], du[l] * b);
                hs[l] = v;
                acc[l] = fma::<F>(v, c, acc[l]);
            }
        }
        for l in 0..W {
            let y = fma::<F>(dskip[l], u[l], acc[l]) * gate[l];
            // SAFETY: as for the read of `u` above.
            unsafe { *xc.ptr.add(at + l) = y };
        }
    }
}

/// Scans channels `c0..c0 + h.len()/N` over the tile: reads xc from `xc` and writes the gated y over it;
/// `h` is those channels' `(channels, N)` state, updated in place. Runs of `RUN` tokens are the outer loop and
/// blocks of `W` channels the inner one, so a run's rows are read while in cache by every block.
#[inline(always)]
fn scan_channels<const F: bool, const W: usize, const N: usize>(
    p: &ScanTile<'_>,
    c0: usize,
    xc: Columns,
    h: &mut [f32],
) {
    let n = p.n;
    let channels = h.len() / n;
    let full = channels / W;
    // Every block's state as (N, W), for the whole tile.
    let mut states: Vec<[f32; W]> = vec![[0f32; W]; full * n];
    for (b, st) in states.chunks_exact_mut(n).enumerate() {
        load(st, &h[b * W * n..(b + 1) * W * n], n);
    }
    let mut bufs = Box::new(RunBufs {
        delta: [[0f32; W]; RUN],
        gate: [[0f32; W]; RUN],
    });
    for t0 in (0..xc.rows).step_by(RUN) {
        let tokens = t0..(t0 + RUN).min(xc.rows);
        for (b, st) in states.chunks_exact_mut(n).enumerate() {
            let cb = c0 + b * W;
            // With N known at compile time the state is copied into an array that lives in registers.
            if N > 0 {
                let mut reg = [[0f32; W]; N];
                reg.copy_from_slice(st);
                scan_body::<F, W>(p, cb, xc, &mut reg, tokens.clone(), &mut bufs);
                st.copy_from_slice(&reg);
            } else {
                scan_body::<F, W>(p, cb, xc, st, tokens.clone(), &mut bufs);
            }
        }
    }
    for (b, st) in states.chunks_exact(n).enumerate() {
        store(st, &mut h[b * W * n..(b + 1) * W * n], n);
    }
    // Channels past the last full block, one at a time.
    if full * W == channels {
        return;
    }
    let mut one = Box::new(RunBufs {
        delta: [[0f32; 1]; RUN],
        gate: [[0f32; 1]; RUN],
    });
    for c in full * W..channels {
        let hc = &mut h[c * n..(c + 1) * n];
        let mut st = vec![[0f32; 1]; n];
        load(&mut st, hc, n);
        for t0 in (0..xc.rows).step_by(RUN) {
            let tokens = t0..(t0 + RUN).min(xc.rows);
            scan_body::<F, 1>(p, c0 + c, xc, &mut st, tokens, &mut one);
        }
        store(&st, hc, n);
    }
}

#[inline(always)]
fn load<const W: usize>(st: &mut [[f32; W]], h: &[f32], n: usize) {
    for (l, hc) in h.chunks_exact(n).enumerate() {
        for (s, &v) in hc.iter().enumerate() {
            st[s][l] = v;
        }
    }
}

#[inline(always)]
fn store<const W: usize>(st: &[[f32; W]], h: &mut [f32], n: usize) {
    for (l, hc) in h.chunks_exact_mut(n).enumerate() {
        for (s, v) in hc.iter_mut().enumerate() {
            *v = st[s][l];
        }
    }
}

/// Selective scan of channels `c0..c0 + h.len()/N` over a tile: `xc` holds the post-conv inputs `(T, E)` on
/// entry and the gated outputs y in those channels on exit; `h` is their `(channels, N)` state. Runs at
/// `p.simd`, or at the best level below it that this CPU has.
pub(crate) fn scan_tile(p: &ScanTile<'_>, c0: usize, xc: Columns, h: &mut [f32]) {
    assert!(c0 + h.len() / p.n <= xc.e && p.z.len() >= xc.rows.saturating_sub(1) * p.z_ld + xc.e);
    #[cfg(target_arch = "x86_64")]
    {
        if p.simd >= Simd::Avx512 && Simd::Avx512.is_available() {
            // SAFETY: the CPU supports AVX-512F and DQ, checked just above.
            unsafe { scan_avx512(p, c0, xc, h) };
            return;
        }
        if p.simd >= Simd::Avx2 && Simd::Avx2.is_available() {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { scan_avx2(p, c0, xc, h) };
            return;
        }
    }
    scan_portable(p, c0, xc, h);
}

/// The scan without SIMD instructions beyond the baseline (4 lanes, no FMA).
fn scan_portable(p: &ScanTile<'_>, c0: usize, xc: Columns, h: &mut [f32]) {
    match p.n {
        8 => scan_channels::<false, 4, 8>(p, c0, xc, h),
        16 => scan_channels::<false, 4, 16>(p, c0, xc, h),
        _ => scan_channels::<false, 4, 0>(p, c0, xc, h),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn scan_avx512(p: &ScanTile<'_>, c0: usize, xc: Columns, h: &mut [f32]) {
    match p.n {
        8 => avx512::scan_channels::<8>(p, c0, xc, h),
        16 => avx512::scan_channels::<16>(p, c0, xc, h),
        _ => scan_channels::<true, 16, 0>(p, c0, xc, h),
    }
}

/// The scan with AVX-512 intrinsics (F and DQ): `exp(ΔA) = 2^(Δ · A log2 e)` as `2^k · 2^f` with `f` from
/// `reduce` (x minus x rounded to the nearest integer, one instruction) and `k = x - f`, a degree-5 polynomial
/// for `2^f` on `|f| <= 1/2` (1.6e-7 relative in f32) and `scalef`, which also takes care of underflow, so
/// no clamping is needed (ΔA <= 0). The state stays in zmm registers. Each run of `RUN` tokens goes through
/// stages that keep the long dependency chains apart from the recurrence: x, z and dt_proj for every token;
/// softplus and SiLU four tokens at a time; then, `SUB` tokens at a time, their decays (no dependence between
/// tokens) and their recurrence, whose only loop-carried chain is through h. The stages after the first read
/// only this run's contiguous buffers and the x_proj rows.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Columns, RUN, ScanTile};
    use crate::cpu::kernels::EXP2_C;
    use crate::cpu::vmath512;

    const W: usize = 16;
    /// Tokens whose decays are computed ahead of their recurrence: `SUB x N` vectors (16 KiB at N 16).
    const SUB: usize = 16;
    /// How many tokens ahead a block's x and z are prefetched.
    const PREFETCH: usize = 16;

    #[inline(always)]
    fn load(v: &[f32; W]) -> __m512 {
        // SAFETY: `v` is 16 readable f32.
        unsafe { _mm512_loadu_ps(v.as_ptr()) }
    }

    #[inline(always)]
    fn store(v: __m512) -> [f32; W] {
        let mut out = [0f32; W];
        // SAFETY: `out` is 16 writable f32.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    fn block(s: &[f32], at: usize) -> [f32; W] {
        std::array::from_fn(|l| s[at + l])
    }

    /// Δ, SiLU(z) and x of one block for a run of tokens, between the stages.
    struct RunVecs {
        delta: [__m512; RUN],
        gate: [__m512; RUN],
        u: [__m512; RUN],
        /// exp(ΔA) of `SUB` tokens, `(SUB, N)` for N up to 16.
        decay: [[__m512; W]; SUB],
    }

    /// One block's constants, gathered once per call so the token runs below read them contiguously.
    struct Block<const N: usize> {
        /// `A · log2 e` per state.
        a2: [[f32; W]; N],
        /// Δ bias and skip D.
        bias: [f32; W],
        dskip: [f32; W],
        /// The block's state as (N, W).
        h: [[f32; W]; N],
    }

    /// Scans channels `c0..c0 + h.len()/N` (full blocks of 16 here, the rest with the portable body);
    /// `N` (= d_state) is at most 16. Runs of `RUN` tokens are the outer loop and blocks the inner one, so a
    /// run's rows (x, z and x_proj outputs) are read while in cache by every block, page by page.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) fn scan_channels<const N: usize>(
        p: &ScanTile<'_>,
        c0: usize,
        xc: Columns,
        h: &mut [f32],
    ) {
        let (r, e) = (p.r, xc.e);
        let channels = h.len() / N;
        let full = channels / W;
        let mut blocks: Vec<Block<N>> = (0..full)
            .map(|b| {
                let cb = c0 + b * W;
                let mut st = [[0f32; W]; N];
                super::load(&mut st, &h[b * W * N..(b + 1) * W * N], N);
                Block {
                    a2: std::array::from_fn(|s| block(p.a2_t, s * e + cb)),
                    bias: block(p.dt_bias, cb),
                    dskip: block(p.d, cb),
                    h: st,
                }
            })
            .collect();
        // dt_proj's weights per block, (blocks, R) vectors.
        let dtw: Vec<[f32; W]> = (0..full)
            .flat_map(|b| (0..r).map(move |j| (b, j)))
            .map(|(b, j)| block(p.dt_t, j * e + c0 + b * W))
            .collect();
        let mut bufs = RunVecs {
            delta: [_mm512_setzero_ps(); RUN],
            gate: [_mm512_setzero_ps(); RUN],
            u: [_mm512_setzero_ps(); RUN],
            decay: [[_mm512_setzero_ps(); W]; SUB],
        };
        for t0 in (0..xc.rows).step_by(RUN) {
            let run = RUN.min(xc.rows - t0);
            for (b, blk) in blocks.iter_mut().enumerate() {
                scan16::<N>(
                    p,
                    c0 + b * W,
                    xc,
                    blk,
                    &dtw[b * r..(b + 1) * r],
                    t0..t0 + run,
                    &mut bufs,
                );
            }
        }
        for (b, blk) in blocks.iter().enumerate() {
            super::store(&blk.h, &mut h[b * W * N..(b + 1) * W * N], N);
        }
        let rest = &mut h[full * W * N..];
        if !rest.is_empty() {
            super::scan_channels::<true, 1, N>(p, c0 + full * W, xc, rest);
        }
    }

    /// Tokens `tokens` (at most `RUN`) of block `blk` (channels `c0..c0 + 16`), `dtw` its dt_proj weights;
    /// `bufs` holds Δ, the gate and x between the stages.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    fn scan16<const N: usize>(
        p: &ScanTile<'_>,
        c0: usize,
        xc: Columns,
        blk: &mut Block<N>,
        dtw: &[[f32; W]],
        tokens: std::ops::Range<usize>,
        bufs: &mut RunVecs,
    ) {
        let (r, n, e) = (p.r, p.n, xc.e);
        let stride = r + 2 * n;
        let mut hs = blk.h.map(|v| load(&v));
        let a2 = &blk.a2;
        let (bias, dskip) = (load(&blk.bias), load(&blk.dskip));
        let c: [__m512; 6] = std::array::from_fn(|i| _mm512_set1_ps(EXP2_C[i]));
        let (t0, run) = (tokens.start, tokens.len());
        let RunVecs {
            delta,
            gate,
            u,
            decay,
        } = bufs;
        for (i, ((dl, gt), ut)) in delta
            .iter_mut()
            .zip(gate.iter_mut())
            .zip(u.iter_mut())
            .take(run)
            .enumerate()
        {
            let t = t0 + i;
            // The block's x and z are one cache line per token, a whole row apart: fetch them a few tokens
            // ahead (the hardware prefetchers miss such strides) and copy x into `u` for the later stages.
            // SAFETY: prefetches do not fault; the addresses are inside `xc` and `z` (ahead < rows), and
            // the load reads the 16 values at row `t < rows`, columns `c0..c0 + 16 <= e`, which only this
            // call touches (see `Columns`).
            unsafe {
                let ahead = (t + PREFETCH).min(xc.rows - 1);
                _mm_prefetch::<_MM_HINT_T0>(xc.ptr.add(ahead * e + c0).cast());
                _mm_prefetch::<_MM_HINT_T0>(p.z.as_ptr().add(ahead * p.z_ld + c0).cast());
                *ut = _mm512_loadu_ps(xc.ptr.add(t * e + c0));
            }
            let low = &p.dbl[t * stride..t * stride + r];
            // Four partial sums so dt_proj is not one chain of R dependent FMAs.
            let mut dt = [_mm512_setzero_ps(); 4];
            let (quads, wq) = (low.chunks_exact(4), dtw.chunks_exact(4));
            let (rest, wr) = (quads.remainder(), wq.remainder());
            for (v, w) in quads.zip(wq) {
                dt[0] = _mm512_fmadd_ps(_mm512_set1_ps(v[0]), load(&w[0]), dt[0]);
                dt[1] = _mm512_fmadd_ps(_mm512_set1_ps(v[1]), load(&w[1]), dt[1]);
                dt[2] = _mm512_fmadd_ps(_mm512_set1_ps(v[2]), load(&w[2]), dt[2]);
                dt[3] = _mm512_fmadd_ps(_mm512_set1_ps(v[3]), load(&w[3]), dt[3]);
            }
            for (&v, w) in rest.iter().zip(wr) {
                dt[0] = _mm512_fmadd_ps(_mm512_set1_ps(v), load(w), dt[0]);
            }
            let dt = _mm512_add_ps(_mm512_add_ps(dt[0], dt[1]), _mm512_add_ps(dt[2], dt[3]));
            *dl = _mm512_add_ps(dt, bias);
            let zrow = &p.z[t * p.z_ld + c0..t * p.z_ld + c0 + W];
            // SAFETY: `zrow` is 16 readable f32.
            *gt = unsafe { _mm512_loadu_ps(zrow.as_ptr()) };
        }
        // Δ = softplus(dt + bias) and the gate SiLU(z), four tokens at a time so their chains interleave.
        let (dq, gq) = (
            delta[..run].chunks_exact_mut(4),
            gate[..run].chunks_exact_mut(4),
        );
        for (d, g) in dq.zip(gq) {
            let (d, g): (&mut [__m512; 4], &mut [__m512; 4]) = match (d.try_into(), g.try_into()) {
                (Ok(d), Ok(g)) => (d, g),
                _ => unreachable!("chunks of 4"),
            };
            *d = vmath512::softplus(*d);
            *g = vmath512::silu(*g);
        }
        for i in run / 4 * 4..run {
            [delta[i]] = vmath512::softplus([delta[i]]);
            [gate[i]] = vmath512::silu([gate[i]]);
        }
        // The decays exp(ΔA) of `SUB` tokens first (independent of each other, so they run at the ports'
        // throughput), then those tokens' recurrence, which only reads them.
        for s0 in (0..run).step_by(SUB) {
            let len = SUB.min(run - s0);
            for (dk, &dl) in decay.iter_mut().zip(&delta[s0..s0 + len]) {
                for (d, a) in dk.iter_mut().zip(a2) {
                    let x = _mm512_mul_ps(dl, load(a));
                    let f =
                        _mm512_reduce_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
                    let k = _mm512_sub_ps(x, f);
                    let mut q = c[5];
                    for &ci in c[..5].iter().rev() {
                        q = _mm512_fmadd_ps(q, f, ci);
                    }
                    *d = _mm512_scalef_ps(q, k);
                }
            }
            for (i, dk) in decay.iter().take(len).enumerate() {
                let (t, j) = (t0 + s0 + i, s0 + i);
                let row = &p.dbl[t * stride..(t + 1) * stride];
                let (bs, cs): (&[f32; N], &[f32; N]) =
                    match (row[r..r + n].try_into(), row[r + n..].try_into()) {
                        (Ok(b), Ok(c)) => (b, c),
                        _ => unreachable!("N == n"),
                    };
                let (u, gt) = (u[j], gate[j]);
                let du = _mm512_mul_ps(delta[j], u);
                // Four partial sums (state s goes to acc[s % 4]) so the C contraction is not one long chain.
                let mut acc = [_mm512_setzero_ps(); 4];
                // Unrolled with constant indices so the state stays in registers.
                macro_rules! step {
                    ($($s:literal)*) => {$(
                        if $s < N {
                            let v = _mm512_fmadd_ps(dk[$s], hs[$s], _mm512_mul_ps(du, _mm512_set1_ps(bs[$s])));
                            hs[$s] = v;
                            acc[$s % 4] = _mm512_fmadd_ps(v, _mm512_set1_ps(cs[$s]), acc[$s % 4]);
                        }
                    )*};
                }
                step!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
                let acc =
                    _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
                let y = _mm512_mul_ps(_mm512_fmadd_ps(dskip, u, acc), gt);
                // SAFETY: `t < rows` and `c0 + 16 <= e`, so the 16 values are inside the `rows x e` buffer,
                // and only this call touches columns `c0..c0 + 16` (see `Columns`).
                unsafe { _mm512_storeu_ps(xc.ptr.add(t * e + c0), y) };
            }
        }
        for (s, v) in hs.iter().enumerate() {
            blk.h[s] = store(*v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scan_avx2(p: &ScanTile<'_>, c0: usize, xc: Columns, h: &mut [f32]) {
    match p.n {
        8 => scan_channels::<true, 8, 8>(p, c0, xc, h),
        16 => scan_channels::<true, 8, 16>(p, c0, xc, h),
        _ => scan_channels::<true, 8, 0>(p, c0, xc, h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::pre::{LayerPre, SsmRef};

    /// A deterministic pseudo-random value in [-0.5, 0.5).
    fn noise(i: usize) -> f32 {
        ((i.wrapping_mul(2_654_435_761) >> 7) % 10_000) as f32 / 10_000.0 - 0.5
    }

    /// Every scan path this CPU has (AVX-512, AVX2 + FMA, portable) gives the same outputs and state, for
    /// d_state 16, 8 (fixed-size paths) and 5 (general), and channel counts that leave partial blocks, over
    /// tiles longer than one run of tokens.
    #[test]
    fn test_scan_paths_agree() {
        for (n, e, t) in [(16usize, 88usize, 150usize), (8, 40, 70), (5, 24, 129)] {
            let r = 3;
            let dbl: Vec<f32> = (0..t * (r + 2 * n)).map(|i| 2.0 * noise(i)).collect();
            let a_log: Vec<f32> = (0..e * n)
                .map(|i| (1.0 + (i % n) as f32 + noise(i + 7)).ln())
                .collect();
            let dt_proj: Vec<f32> = (0..e * r).map(|i| noise(i + 11)).collect();
            let conv: Vec<f32> = (0..e * 4).map(|i| noise(i + 13)).collect();
            let x_proj = vec![0.0; (r + 2 * n) * e];
            let pre = LayerPre::new(
                &SsmRef {
                    a_log: &a_log,
                    dt_proj: &dt_proj,
                    conv_weight: &conv,
                    conv_bias: None,
                    x_proj: &x_proj,
                },
                e,
                n,
                4,
                r,
            );
            let dt_bias: Vec<f32> = (0..e).map(|i| -2.0 + 4.0 * noise(i + 17)).collect();
            let d: Vec<f32> = (0..e).map(|i| 1.0 + noise(i + 19)).collect();
            let z: Vec<f32> = (0..t * 2 * e).map(|i| 8.0 * noise(i + 23)).collect();
            let x: Vec<f32> = (0..t * e).map(|i| 3.0 * noise(i + 29)).collect();
            let h0: Vec<f32> = (0..e * n).map(|i| noise(i + 31)).collect();
            let run = |simd: Simd| {
                let p = ScanTile {
                    dbl: &dbl,
                    r,
                    n,
                    a2_t: &pre.a2_t,
                    dt_t: &pre.dt_t,
                    dt_bias: &dt_bias,
                    d: &d,
                    z: &z,
                    z_ld: 2 * e,
                    simd,
                };
                let (mut y, mut h) = (x.clone(), h0.clone());
                scan_tile(&p, 0, Columns::new(&mut y, t, e), &mut h);
                (y, h)
            };
            let want = run(Simd::Portable);
            let paths: Vec<_> = Simd::available()
                .into_iter()
                .skip(1)
                .map(|s| (s.name(), run(s)))
                .collect();
            let scale = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
            for (name, (y, h)) in &paths {
                for (what, got, exp) in [("y", y, &want.0), ("h", h, &want.1)] {
                    let err = got
                        .iter()
                        .zip(exp)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        err <= 1e-5 * scale(exp),
                        "N {n}, E {e}: {name} {what} off by {err}"
                    );
                }
            }
            assert!(want.0 != x && want.1 != h0, "the scan changed nothing");
        }
    }
}
