//! AVX-512 versions of the tile kernels' scalar maths (`kernels.rs`): 16 lanes at a time, with the same
//! algorithms, `scalef` for the powers of two and divisions replaced by `rcp14` and one Newton step (a zmm
//! division occupies the divider for ~16 cycles; the pass that computes Δ and the gate for a run of tokens
//! was bound by it). Accuracy: within a few ulp of the scalar versions (tested against them).
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

/// `1 / b` to ~1 ulp: `rcp14` (relative error < 2^-14) refined by one Newton step.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn recip(b: __m512) -> __m512 {
    let r = _mm512_rcp14_ps(b);
    // r' = r + r (1 - b r)
    let e = _mm512_fnmadd_ps(b, r, splat(1.0));
    _mm512_fmadd_ps(r, e, r)
}

/// `e^x` for `x` in [-87, 88] (callers clamp): Cody–Waite reduction by ln 2 in two parts, the Taylor series of
/// `e^r` to `r^7` on `|r| <= ln2/2`, then `scalef`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn exp(x: __m512) -> __m512 {
    let k = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, splat(LOG2E)),
    );
    let r = _mm512_fnmadd_ps(k, splat(LN2_LO), _mm512_fnmadd_ps(k, splat(LN2_HI), x));
    let mut p = splat(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = _mm512_fmadd_ps(p, r, splat(c));
    }
    _mm512_scalef_ps(p, k)
}

/// Natural log of positive normal `w`: `w = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), `ln m = 2 atanh(s)`,
/// `s = (m-1)/(m+1)`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn ln(w: __m512) -> __m512 {
    // m in [1, 2) and e = floor(log2 w); halve m (and add 1 to e) where m > sqrt 2.
    let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(w);
    let e = _mm512_getexp_ps(w);
    let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, splat(std::f32::consts::SQRT_2));
    let m = _mm512_mask_mul_ps(m, big, m, splat(0.5));
    let e = _mm512_mask_add_ps(e, big, e, splat(1.0));
    let s = _mm512_mul_ps(
        _mm512_sub_ps(m, splat(1.0)),
        recip(_mm512_add_ps(m, splat(1.0))),
    );
    let s2 = _mm512_mul_ps(s, s);
    let mut p = splat(1.0 / 9.0);
    for c in [1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0] {
        p = _mm512_fmadd_ps(p, s2, splat(c));
    }
    let two_s_p = _mm512_mul_ps(_mm512_add_ps(s, s), p);
    _mm512_fmadd_ps(e, splat(LN2_HI), _mm512_fmadd_ps(e, splat(LN2_LO), two_s_p))
}

/// PyTorch softplus (β = 1, threshold 20): `v` above 20, else `log1p(exp(v))`, accurate for very negative v.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn softplus(v: __m512) -> __m512 {
    let u = exp(_mm512_max_ps(_mm512_min_ps(v, splat(20.0)), splat(-87.0)));
    let w = _mm512_add_ps(splat(1.0), u);
    let d = _mm512_sub_ps(w, splat(1.0));
    // log1p(u) = ln(w) * u / (w - 1) corrects the rounding of 1 + u; where w == 1, log1p(u) = u.
    let l = _mm512_mul_ps(ln(w), _mm512_mul_ps(u, recip(d)));
    let exact = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(d, _mm512_setzero_ps());
    let l = _mm512_mask_blend_ps(exact, l, u);
    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, splat(20.0));
    _mm512_mask_blend_ps(above, l, v)
}

/// `v · sigmoid(v)`, with `t = e^-|v|` (clamped at e^-87) so that `1 + t` lies in (1, 2]:
/// `sigmoid(v) = 1 / (1 + t)` for `v >= 0` and `t / (1 + t)` below.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn silu(v: __m512) -> __m512 {
    let neg_abs = _mm512_min_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), v));
    let t = exp(_mm512_max_ps(neg_abs, splat(-87.0)));
    let r = recip(_mm512_add_ps(splat(1.0), t));
    let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
    let sig = _mm512_mask_mul_ps(r, below, r, t);
    _mm512_mul_ps(v, sig)
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
        let y = match which {
            0 => exp(x),
            1 => softplus(x),
            _ => silu(x),
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
