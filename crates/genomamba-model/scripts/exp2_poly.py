"""Coefficients of the fast engine's 2^f polynomial (crates/genomamba-model/src/cpu/tile.rs, `avx512::C`).

    python crates/genomamba-model/scripts/exp2_poly.py [--degree 5]

Fits p(f) = 1 + c1 f + ... + cd f^d to 2^f on |f| <= 1/2 for the least maximum *relative* error (Lawson's
iteratively reweighted least squares on a dense grid; the constant term is fixed to 1 so that 2^0 is exactly 1
and the error vanishes with f), rounds the coefficients to f32, and reports the truncation error and the error
of the f32 evaluation by Horner's rule with fused multiply-adds (each step rounded once to f32).
"""

import argparse

import numpy as np


def fit(degree, points=40001, iterations=300):
    x = np.linspace(-0.5, 0.5, points)
    f = 2.0**x
    v = np.vander(x, degree + 1, increasing=True)[:, 1:]
    w = np.ones_like(x)
    for _ in range(iterations):
        s = np.sqrt(w) / f
        c, *_ = np.linalg.lstsq(v * s[:, None], (f - 1) * s, rcond=None)
        err = (v @ c + 1 - f) / f
        w = w * np.abs(err)
        w /= w.sum()
    return x, f, np.concatenate([[1.0], c]), np.abs(err).max()


def horner_f32(c32, x):
    xs = x.astype(np.float32)
    p = np.full_like(xs, c32[-1])
    for ci in c32[-2::-1]:
        # One rounding per step, as a fused multiply-add (the f64 product of two f32 is exact).
        p = (p.astype(np.float64) * xs + np.float64(ci)).astype(np.float32)
    return p.astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--degree", type=int, default=5)
    args = ap.parse_args()
    x, f, c, trunc = fit(args.degree)
    c32 = c.astype(np.float32)
    rel = (np.abs(horner_f32(c32, x) - f) / f).max()
    print(f"degree {args.degree}: truncation {trunc:.2e} relative, f32 FMA evaluation {rel:.2e} relative")
    print("coefficients (f32):", ", ".join(repr(float(v)) for v in c32))


if __name__ == "__main__":
    main()
