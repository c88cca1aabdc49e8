//! AVX-512 versions of the tile kernels' scalar maths (`kernels.rs`), 16 lanes at a time, cheaper than
//! the scalar algorithms vectorised: `scalef` for the powers of two, a division-free softplus (a polynomial
//! for log1p instead of a log and two divisions) and SiLU's division as `rcp14` and one Newton step (a zmm
//! division occupies the divider for ~16 cycles; the pass that computes Δ and the gate for a run of tokens
//! was bound by it). Accuracy: a few 1e-7 relative, tested against f64 and the scalar versions.
//!
//! Every function needs AVX-512F; callers are `#[target_feature(enable = "avx512f")]` functions reached only
//! after `is_x86_feature_detected!("avx512f")`.

use std::arch::x86_64::*;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

#[inline(always)]
fn splat(v: f32) -> __m512 {
    // SAFETY: AVX-512F is enabled in every caller (module docs).
    unsafe { _mm512_set1_ps(v) }
}

/// Applies `f` to every vector of `v`, one step for all of them at a time: the callers below are chains of
/// such steps, so `L` independent vectors interleave their chains and keep both vector ports busy where one
/// chain would mostly wait on latency.
#[inline(always)]
fn each<const L: usize>(mut v: [__m512; L], f: impl Fn(__m512) -> __m512) -> [__m512; L] {
    for x in &mut v {
        *x = f(*x);
    }
    v
}

/// `f` over pairs of vectors, as [`each`].
#[inline(always)]
fn each2<const L: usize>(
    a: [__m512; L],
    b: [__m512; L],
    f: impl Fn(__m512, __m512) -> __m512,
) -> [__m512; L] {
    std::array::from_fn(|j| f(a[j], b[j]))
}

/// `1 / b` to ~1 ulp: `rcp14` (relative error < 2^-14) refined by one Newton step.
#[inline]
#[target_feature(enable = "avx512f")]
fn recip<const L: usize>(b: [__m512; L]) -> [__m512; L] {
    let r = each(b, |b| _mm512_rcp14_ps(b));
    // r' = r + r (1 - b r)
    let e = each2(b, r, |b, r| _mm512_fnmadd_ps(b, r, splat(1.0)));
    each2(r, e, |r, e| _mm512_fmadd_ps(r, e, r))
}

/// `e^x` for `x` in [-87, 88] (callers clamp): Cody–Waite reduction by ln 2 in two parts, the Taylor series of
/// `e^r` to `r^7` on `|r| <= ln2/2`, then `scalef`.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp<const L: usize>(x: [__m512; L]) -> [__m512; L] {
    let k = each(x, |x| {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            splat(LOG2E),
        ))
    });
    let r = each2(k, x, |k, x| {
        _mm512_fnmadd_ps(k, splat(LN2_LO), _mm512_fnmadd_ps(k, splat(LN2_HI), x))
    });
    let mut p = [splat(1.0 / 5040.0); L];
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = each2(p, r, |p, r| _mm512_fmadd_ps(p, r, splat(c)));
    }
    each2(p, k, |p, k| _mm512_scalef_ps(p, k))
}

/// `log1p(t) / t` on [0, 1] as `1 + c1 t + ... + c8 t^8`, fitted for the least maximum relative error
/// (3.3e-8; 1.6e-7 for `log1p` evaluated in f32; `scripts/fit_polynomials.py`). Highest degree first.
const LOG1P: [f32; 8] = [
    0.005_364_809_7,
    -0.030_065_736,
    0.079_204_45,
    -0.137_537_96,
    0.191_536_52,
    -0.248_571_63,
    0.333_213_24,
    -0.499_996_48,
];

/// `e^-|v|` clamped at e^-87, in (0, 1].
#[inline]
#[target_feature(enable = "avx512f")]
fn exp_neg_abs<const L: usize>(v: [__m512; L]) -> [__m512; L] {
    exp(each(v, |v| {
        let neg_abs = _mm512_min_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_max_ps(neg_abs, splat(-87.0))
    }))
}

/// PyTorch softplus (β = 1, threshold 20) of `L` vectors: `v` above 20, else `log1p(e^v)`, as
/// `max(v, 0) + log1p(t)` with `t = e^-|v|` in (0, 1] (clamped at e^-87, as the scalar version), accurate
/// for very negative v.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn softplus<const L: usize>(v: [__m512; L]) -> [__m512; L] {
    let t = exp_neg_abs(v);
    let mut q = [splat(LOG1P[0]); L];
    for c in &LOG1P[1..] {
        q = each2(q, t, |q, t| _mm512_fmadd_ps(q, t, splat(*c)));
    }
    let log1p = each2(q, t, |q, t| {
        _mm512_mul_ps(_mm512_fmadd_ps(q, t, splat(1.0)), t)
    });
    each2(v, log1p, |v, log1p| {
        let sp = _mm512_add_ps(_mm512_max_ps(v, _mm512_setzero_ps()), log1p);
        let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, splat(20.0));
        _mm512_mask_blend_ps(above, sp, v)
    })
}

/// `v · sigmoid(v)` of `L` vectors, with `t = e^-|v|` (clamped at e^-87) so that `1 + t` lies in (1, 2]:
/// `sigmoid(v) = 1 / (1 + t)` for `v >= 0` and `t / (1 + t)` below.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn silu<const L: usize>(v: [__m512; L]) -> [__m512; L] {
    let t = exp_neg_abs(v);
    let r = recip(each(t, |t| _mm512_add_ps(splat(1.0), t)));
    let sig: [__m512; L] = std::array::from_fn(|j| {
        let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v[j], _mm512_setzero_ps());
        _mm512_mask_mul_ps(r[j], below, r[j], t[j])
    });
    each2(v, sig, |v, s| _mm512_mul_ps(v, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels;

    /// exp, softplus or silu (`which` 0, 1, 2) of 16 values.
    #[target_feature(enable = "avx512f")]
    fn apply(which: usize, xs: &[f32; 16]) -> [f32; 16] {
        let mut out = [0f32; 16];
        // SAFETY: `xs` and `out` are 16 f32 each.
        let x = unsafe { _mm512_loadu_ps(xs.as_ptr()) };
        let [y] = match which {
            0 => exp([x]),
            1 => softplus([x]),
            _ => silu([x]),
        };
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), y) };
        out
    }

    /// Worst relative error against f64 references over a wide grid, and sane values far outside it.
    #[test]
    fn test_vector_maths_accuracy() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let run = |which, xs: &[f32; 16]| {
            // SAFETY: AVX-512F was checked just above.
            unsafe { apply(which, xs) }
        };
        let mut worst = [0f64; 3];
        let grid: Vec<f32> = (-45_000..=45_000).map(|i| i as f32 * 0.0019).collect();
        for xs in grid.chunks_exact(16) {
            let xs: &[f32; 16] = xs.try_into().expect("16 values");
            let (e, sp, si) = (run(0, xs), run(1, xs), run(2, xs));
            for (l, &x) in xs.iter().enumerate() {
                let x = f64::from(x);
                let rel = |got: f32, want: f64| (f64::from(got) - want).abs() / want.abs();
                worst[0] = worst[0].max(rel(e[l], x.exp()));
                let spw = if x > 20.0 { x } else { x.exp().ln_1p() };
                worst[1] = worst[1].max(rel(sp[l], spw));
                if x != 0.0 {
                    worst[2] = worst[2].max(rel(si[l], x / (1.0 + (-x).exp())));
                }
            }
        }
        assert!(
            worst.iter().all(|&w| w < 1e-6),
            "exp, softplus, silu: {worst:?}"
        );
        // Far outside the grid: finite, thresholds as PyTorch's, as the scalar kernels.
        let far = [
            -1e30, -200.0, -100.0, -88.0, -87.5, 19.99, 20.0, 20.01, 25.0, 88.5, 100.0, 1e30, 0.0,
            -0.0, 1e-30, -1e-30,
        ];
        let (sp, si) = (run(1, &far), run(2, &far));
        for (l, &x) in far.iter().enumerate() {
            assert!(
                sp[l].is_finite() && si[l].is_finite(),
                "{x}: {} {}",
                sp[l],
                si[l]
            );
            assert!(sp[l] >= 0.0, "softplus({x}) = {}", sp[l]);
            let (want_sp, want_si) = (kernels::softplus::<true>(x), kernels::silu::<true>(x));
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1e-30) + 1e-30;
            assert!(
                close(sp[l], want_sp),
                "softplus({x}): {} vs scalar {want_sp}",
                sp[l]
            );
            if x.abs() < 1e3 {
                assert!(
                    close(si[l], want_si),
                    "silu({x}): {} vs scalar {want_si}",
                    si[l]
                );
            }
        }
        assert_eq!(sp[8], 25.0);
        assert_eq!(si[11], 1e30);
    }
}
