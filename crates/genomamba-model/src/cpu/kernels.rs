//! Per-channel kernels of the fast engine, written so LLVM vectorises them: branch-free polynomial `exp`,
//! `ln`, softplus and SiLU, the depthwise causal conv over one channel's chunk, and the selective scan over
//! one channel with the state loop over `d_state` as the vectorised inner loop (fixed size for common N).
//!
//! Each entry point is compiled twice: once for the baseline target and once with AVX2 + FMA, chosen at
//! run time. Accuracy: `exp` and `ln` are within ~2 ulp of the correctly rounded f32 values.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer

#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `e^x` for any finite x (clamped to [-87, 88], i.e. ~1e-38 .. 1.65e38).
#[inline(always)]
pub fn exp<const F: bool>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // j holds round(x * log2 e) in its low mantissa bits; k is that integer as a float.
    let j = fma::<F>(x, LOG2E, ROUND);
    let k = j - ROUND;
    let r = fma::<F>(-k, LN2_LO, fma::<F>(-k, LN2_HI, x));
    // Taylor series of e^r to r^7 on |r| <= ln2/2 (truncation < 6e-9 relative).
    let mut p = 1.0 / 5040.0;
    p = fma::<F>(p, r, 1.0 / 720.0);
    p = fma::<F>(p, r, 1.0 / 120.0);
    p = fma::<F>(p, r, 1.0 / 24.0);
    p = fma::<F>(p, r, 1.0 / 6.0);
    p = fma::<F>(p, r, 0.5);
    p = fma::<F>(p, r, 1.0);
    p = fma::<F>(p, r, 1.0);
    // 2^k from the bits of j (integer ops only, so this vectorises): exponent field = k + 127 in [1, 254].
    let scale = f32::from_bits(j.to_bits().wrapping_sub(0x4b40_0000).wrapping_add(127) << 23);
    p * scale
}

/// Natural log of a positive normal `w`.
#[inline(always)]
pub fn ln<const F: bool>(w: f32) -> f32 {
    let bits = w.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e = if big { e + 1.0 } else { e };
    // ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 9.0;
    p = fma::<F>(p, s2, 1.0 / 7.0);
    p = fma::<F>(p, s2, 1.0 / 5.0);
    p = fma::<F>(p, s2, 1.0 / 3.0);
    p = fma::<F>(p, s2, 1.0);
    fma::<F>(e, LN2_HI, fma::<F>(e, LN2_LO, 2.0 * s * p))
}

/// PyTorch softplus (β = 1, threshold 20): `v` above 20, else `log1p(exp(v))`, accurate for very negative v.
#[inline(always)]
pub fn softplus<const F: bool>(v: f32) -> f32 {
    let u = exp::<F>(v.min(20.0));
    let w = 1.0 + u;
    let d = w - 1.0;
    // log1p(u) = ln(w) * u / (w - 1) corrects the rounding of 1 + u; when w == 1, log1p(u) = u.
    let l = if d == 0.0 { u } else { ln::<F>(w) * (u / d) };
    if v > 20.0 { v } else { l }
}

/// `v / (1 + e^-v)`.
#[inline(always)]
pub fn silu<const F: bool>(v: f32) -> f32 {
    v / (1.0 + exp::<F>(-v))
}

/// Inputs of one channel's conv over a chunk of `L` tokens.
pub struct ConvRow<'a> {
    /// `(L,)` pre-conv inputs x of this channel.
    pub x: &'a [f32],
    /// `(K,)` taps; tap `K-1` multiplies the current token.
    pub w: &'a [f32],
    /// Conv bias (0 when the model has none).
    pub bias: f32,
}

#[inline(always)]
fn conv_body<const F: bool>(p: &ConvRow<'_>, hist: &mut [f32], out: &mut [f32]) {
    let l = p.x.len();
    let k = p.w.len();
    let h = k - 1; // == hist.len()
    out.fill(p.bias);
    // Output t needs x at t-(K-1)+j; indices below 0 come from `hist` (the previous chunk's tail).
    for (j, &wj) in p.w.iter().enumerate() {
        let lag = h - j; // output t reads x[t - lag]
        let head = lag.min(l);
        for t in 0..head {
            out[t] = fma::<F>(wj, hist[h - lag + t], out[t]);
        }
        for (o, &x) in out[head..].iter_mut().zip(&p.x[..l - head]) {
            *o = fma::<F>(wj, x, *o);
        }
    }
    for o in out.iter_mut() {
        *o = silu::<F>(*o);
    }
    // New history: the last K-1 values of hist ++ x.
    if l >= h {
        hist.copy_from_slice(&p.x[l - h..]);
    } else {
        hist.copy_within(l.., 0);
        hist[h - l..].copy_from_slice(p.x);
    }
}

/// Depthwise causal conv + SiLU of one channel: writes `out` `(L,)` and updates `hist` `(K-1,)`.
pub fn conv_row(p: &ConvRow<'_>, hist: &mut [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { conv_avx2(p, hist, out) };
        return;
    }
    conv_body::<false>(p, hist, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn conv_avx2(p: &ConvRow<'_>, hist: &mut [f32], out: &mut [f32]) {
    conv_body::<true>(p, hist, out);
}

/// Inputs of one channel's selective scan over a chunk of `L` tokens (reference/mamba.md §1.2 steps 4–7).
pub struct ScanRow<'a> {
    /// `(L,)` post-conv inputs `xc`.
    pub u: &'a [f32],
    /// `(N,)` `A = -exp(A_log)` of this channel.
    pub a: &'a [f32],
    /// `(L, R + 2N)` row-major x_proj outputs `[dt_low | B | C]` of the chunk, shared by all channels.
    pub dbl: &'a [f32],
    /// Offset of B within a `dbl` row (= R).
    pub b_off: usize,
    /// Δ bias.
    pub dt_bias: f32,
    /// Skip weight D.
    pub d: f32,
}

#[inline(always)]
fn scan_body<const F: bool, const N: usize>(
    p: &ScanRow<'_>,
    n: usize,
    h: &mut [f32],
    delta: &mut [f32],
    gate: &mut [f32],
) {
    // Vectorised pre-passes over time: Δ = softplus(dt + bias), gate = silu(z) (already in `gate`).
    for v in delta.iter_mut() {
        *v = softplus::<F>(*v + p.dt_bias);
    }
    for g in gate.iter_mut() {
        *g = silu::<F>(*g);
    }
    let stride = p.dbl.len() / p.u.len().max(1);
    // Fixed-size state when N is known at compile time, so the n-loop is fully unrolled into vectors.
    let nn = if N > 0 { N } else { n };
    let a = &p.a[..nn];
    let h = &mut h[..nn];
    for (t, (dl, g)) in delta.iter().zip(gate.iter_mut()).enumerate() {
        let row = &p.dbl[t * stride + p.b_off..t * stride + p.b_off + 2 * n];
        let (b, c) = row.split_at(n);
        let (b, c) = (&b[..nn], &c[..nn]);
        let u = p.u[t];
        let du = dl * u;
        let acc = if N > 0 {
            // Lanes, then a pairwise tree sum, so the n-loop has no serial dependency and vectorises.
            let mut lanes = [0.0f32; N];
            for s in 0..N {
                let hs = fma::<F>(exp::<F>(dl * a[s]), h[s], du * b[s]);
                h[s] = hs;
                lanes[s] = hs * c[s];
            }
            let mut w = N;
            while w > 1 {
                w /= 2;
                for i in 0..w {
                    lanes[i] += lanes[i + w];
                }
            }
            lanes[0]
        } else {
            let mut acc = 0.0f32;
            for s in 0..nn {
                let hs = fma::<F>(exp::<F>(dl * a[s]), h[s], du * b[s]);
                h[s] = hs;
                acc = fma::<F>(hs, c[s], acc);
            }
            acc
        };
        *g *= fma::<F>(p.d, u, acc);
    }
}

/// Selective scan of one channel: `h` `(N,)` state in/out. `delta` `(L,)` holds dt pre-activations on entry (scratch); `gate` `(L,)` holds z on entry and `y` on exit.
pub fn scan_row(p: &ScanRow<'_>, h: &mut [f32], delta: &mut [f32], gate: &mut [f32]) {
    let n = h.len();
    macro_rules! go {
        ($f:literal) => {
            match n {
                4 => scan_body::<$f, 4>(p, n, h, delta, gate),
                8 => scan_body::<$f, 8>(p, n, h, delta, gate),
                16 => scan_body::<$f, 16>(p, n, h, delta, gate),
                32 => scan_body::<$f, 32>(p, n, h, delta, gate),
                _ => scan_body::<$f, 0>(p, n, h, delta, gate),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { scan_avx2(p, h, delta, gate) };
        return;
    }
    go!(false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scan_avx2(p: &ScanRow<'_>, h: &mut [f32], delta: &mut [f32], gate: &mut [f32]) {
    let n = h.len();
    match n {
        4 => scan_body::<true, 4>(p, n, h, delta, gate),
        8 => scan_body::<true, 8>(p, n, h, delta, gate),
        16 => scan_body::<true, 16>(p, n, h, delta, gate),
        32 => scan_body::<true, 32>(p, n, h, delta, gate),
        _ => scan_body::<true, 0>(p, n, h, delta, gate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exp_ln_softplus_accuracy() {
        let mut worst = [0f64; 3];
        for i in -40000..=40000 {
            let x = i as f32 * 0.0021;
            let e = (f64::from(x)).exp();
            worst[0] = worst[0].max((f64::from(exp::<false>(x)) - e).abs() / e);
            let w = 1.0 + (i + 40001) as f32 * 0.37;
            worst[1] = worst[1].max(
                (f64::from(ln::<true>(w)) - f64::from(w).ln()).abs() / f64::from(w).ln().max(1e-3),
            );
            let sp = if x > 20.0 { f64::from(x) } else { e.ln_1p() };
            worst[2] = worst[2].max((f64::from(softplus::<false>(x)) - sp).abs() / sp);
        }
        assert!(worst.iter().all(|&w| w < 1e-6), "{worst:?}");
        assert!(softplus::<false>(-80.0) > 0.0 && softplus::<false>(25.0) == 25.0);
    }
}
