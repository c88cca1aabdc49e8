"""Coefficients of the fast engine's AVX-512 polynomials, fitted for the least maximum relative error.

    python crates/genomamba-model/scripts/fit_polynomials.py

- `2^f` on |f| <= 1/2, degree 5, constant term 1 (so 2^0 = 1 exactly and the error vanishes with f): the
  scan's exp(ΔA) (crates/genomamba-model/src/cpu/kernels.rs, `EXP2_C`).
- `log1p(t) / t` on [0, 1], degree 8, constant term 1 (so log1p(t) = t for tiny t): softplus as
  `max(v, 0) + log1p(e^-|v|)` (crates/genomamba-model/src/cpu/vmath512.rs, `LOG1P`).

Lawson's iteratively reweighted least squares on a dense grid; the coefficients are rounded to f32 and the
error of their f32 evaluation by Horner's rule with fused multiply-adds (each step rounded once) is reported.
"""

import numpy as np


def fit(x, f, degree, iterations=400):
    """p with p(x) = 1 + c1 x + ... + cd x^d minimising max |p - f| / |f|; returns (c, truncation error)."""
    v = np.vander(x, degree + 1, increasing=True)[:, 1:]
    w = np.ones_like(x)
    for _ in range(iterations):
        s = np.sqrt(w) / np.abs(f)
        c, *_ = np.linalg.lstsq(v * s[:, None], (f - 1) * s, rcond=None)
        err = (v @ c + 1 - f) / f
        w = w * np.abs(err)
        w /= w.sum()
    return np.concatenate([[1.0], c]), np.abs(err).max()


def horner_f32(c32, x):
    xs = x.astype(np.float32)
    p = np.full_like(xs, c32[-1])
    for ci in c32[-2::-1]:
        # One rounding per step, as a fused multiply-add (the f64 product of two f32 is exact).
        p = (p.astype(np.float64) * xs + np.float64(ci)).astype(np.float32)
    return p


def report(name, c, trunc, rel):
    print(f"{name}: truncation {trunc:.2e}, f32 FMA evaluation {rel:.2e} (relative)")
    print("  coefficients (f32):", ", ".join(repr(float(v)) for v in c.astype(np.float32)))


def main():
    x = np.linspace(-0.5, 0.5, 40001)
    f = 2.0**x
    c, trunc = fit(x, f, 5)
    rel = np.max(np.abs(horner_f32(c.astype(np.float32), x).astype(np.float64) - f) / f)
    report("2^f, |f| <= 1/2, degree 5", c, trunc, rel)

    t = np.linspace(0.0, 1.0, 40001)
    g = np.ones_like(t)
    g[1:] = np.log1p(t[1:]) / t[1:]
    c, trunc = fit(t, g, 8)
    got = (horner_f32(c.astype(np.float32), t).astype(np.float64) * t.astype(np.float32)).astype(np.float32)
    want = np.log1p(t)
    rel = np.max(np.abs(got[1:] - want[1:]) / want[1:])
    report("log1p(t) / t, 0 <= t <= 1, degree 8", c, trunc, rel)


if __name__ == "__main__":
    main()
