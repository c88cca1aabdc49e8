//! Scalar maths of the fast engine's tile kernels (`tile.rs`), written so LLVM vectorises the loops that call
//! them: branch-free polynomial `exp`, `ln`, softplus and SiLU, the scan's decays (`exp2_decay`), and RMSNorm
//! of a row. `F` chooses fused multiply-adds (for callers compiled with FMA enabled). Accuracy: `exp` and `ln`
//! are within ~2 ulp of the correctly rounded f32 values, `exp2_decay` within 1.6e-7 relative.

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

/// Coefficients of 2^f on |f| <= 1/2, degree 5, fitted for the least maximum relative error with the constant
/// term fixed to 1 (so 2^0 = 1 exactly): 9.2e-8 from truncation, 1.6e-7 evaluated in f32 with FMA
/// (`scripts/fit_polynomials.py`). The linear term is the fit's, deliberately 1.8e-7 below ln 2.
#[allow(clippy::approx_constant)]
pub const EXP2_C: [f32; 6] = [
    1.0,
    0.693_147,
    0.240_222_42,
    0.055_507_336,
    0.009_671_511,
    0.001_326_471_3,
];

/// `2^t` for `t <= 0`, the scan's decays `exp(ΔA) = 2^(Δ · A log2 e)` (Δ > 0, A < 0): `2^k · 2^f` with `k`
/// the nearest integer and a degree-5 polynomial for `2^f` on `|f| <= 1/2` ([`EXP2_C`], 1.6e-7 relative),
/// the arithmetic of the AVX-512 scan (which gets `f` from `vreduceps` and applies `2^k` with `vscalefps`).
/// Below `t = -126` the result is held at 2^-126 (~1.2e-38: a decay that is zero to f32 precision); NaN
/// stays NaN. About 12 operations, against ~18 for [`exp`] of ΔA with its wider range and two-part ln 2.
#[inline(always)]
pub fn exp2_decay<const F: bool>(t: f32) -> f32 {
    #[allow(clippy::manual_clamp)] // `max` would turn NaN into -126
    let t = if t < -126.0 { -126.0 } else { t };
    // j holds round(t) in its low mantissa bits; k is that integer as a float, f = t - k exactly.
    let j = t + ROUND;
    let k = j - ROUND;
    let f = t - k;
    let c = EXP2_C;
    let mut p = fma::<F>(c[5], f, c[4]);
    p = fma::<F>(p, f, c[3]);
    p = fma::<F>(p, f, c[2]);
    p = fma::<F>(p, f, c[1]);
    p = fma::<F>(p, f, c[0]);
    // 2^k from the bits of j: exponent field = k + 127 in [1, 127].
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

/// RMSNorm of one row: `x / sqrt(mean(x²) + eps) * w` into `y`. The squares are summed in 16 interleaved
/// partial sums, so LLVM vectorises the sum (a serial f32 sum cannot be reordered); the result differs from
/// a serial sum only in rounding.
pub fn rms_norm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    let ms = (acc.iter().sum::<f32>() + rest) / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    y.iter_mut()
        .zip(x)
        .zip(w)
        .for_each(|((y, &x), &w)| *y = x * inv * w);
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

    #[test]
    fn test_exp2_decay_accuracy_and_range() {
        let mut worst = 0f64;
        for i in 0..=1_260_000 {
            let t = -(i as f32) * 1e-4;
            let want = 2f64.powf(f64::from(t));
            for got in [exp2_decay::<true>(t), exp2_decay::<false>(t)] {
                worst = worst.max((f64::from(got) - want).abs() / want);
            }
        }
        assert!(worst < 2.5e-7, "{worst}");
        assert_eq!(exp2_decay::<true>(0.0), 1.0);
        assert_eq!(exp2_decay::<true>(-500.0), f32::MIN_POSITIVE);
        assert!(exp2_decay::<true>(f32::NAN).is_nan());
    }
}
