//! Launch geometry of the two-level chunked scan (`kernels/scan.cu`) and launch shapes shared by the
//! elementwise kernels.
//!
//! The scan runs one thread per (window, channel, time block), sequential over the block's `lb` steps. The
//! number of blocks is chosen so that `nb * E * nblk` threads about fill the GPU (2048 resident threads per
//! SM), with blocks of at least [`MIN_BLOCK`] steps so that the carry pass (sequential over `nblk`) stays
//! short.

/// Threads per block of the scan kernels (`blockDim.x`).
pub const SCAN_THREADS: u32 = 128;
/// Shortest time block worth splitting off.
pub const MIN_BLOCK: usize = 64;
/// Most time blocks (the carry pass walks them in sequence; also `gridDim.y` <= 65535).
pub const MAX_BLOCKS: usize = 8192;
/// Resident threads per SM assumed when sizing (Hopper: 2048).
pub const THREADS_PER_SM: usize = 2048;

/// How one scan call is cut in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanPlan {
    /// Number of time blocks per window.
    pub nblk: usize,
    /// Steps per block (the last block may be shorter).
    pub lb: usize,
}

impl ScanPlan {
    /// Plans `nb` windows of `t >= 1` steps with `e` channels on a GPU with `sms` multiprocessors.
    pub fn new(nb: usize, t: usize, e: usize, sms: usize) -> ScanPlan {
        let t = t.max(1);
        let target = sms.max(1) * THREADS_PER_SM;
        let want = target.div_ceil((nb * e).max(1));
        let nblk = want.min(t.div_ceil(MIN_BLOCK)).clamp(1, MAX_BLOCKS);
        let lb = t.div_ceil(nblk);
        ScanPlan {
            nblk: t.div_ceil(lb),
            lb,
        }
    }

    /// Cuts `t >= 1` steps into at most `nblk` (at least 1) blocks of equal length (the last may be shorter).
    pub fn with_blocks(t: usize, nblk: usize) -> ScanPlan {
        let t = t.max(1);
        let lb = t.div_ceil(nblk.clamp(1, MAX_BLOCKS));
        ScanPlan {
            nblk: t.div_ceil(lb),
            lb,
        }
    }

    /// f32 slots of each of the P and H scratch arrays: `nb * nblk * e * n`, or 0 for one time block (the
    /// scan then runs `scan_output` alone on the carried state and never touches P or H).
    pub fn scratch_len(&self, nb: usize, e: usize, n: usize) -> usize {
        if self.nblk <= 1 {
            0
        } else {
            nb * self.nblk * e * n
        }
    }
}

/// Whether the scan may read each row's B and C (`n` states each) 16 bytes at a time (the `SCAN_VEC_BC`
/// variant of `kernels/scan.cu`): `n` elements of `size` bytes fill whole 16-byte groups (or `n` is below
/// one group, read element by element), and the x_proj output at device address `base`, rows of `ld`
/// elements with B at column `off_b` and C at `off_c`, keeps every row's B and C 16-byte aligned.
pub fn vector_rows(
    n: usize,
    size: usize,
    base: u64,
    ld: usize,
    off_b: usize,
    off_c: usize,
) -> bool {
    let group = 16 / size.max(1);
    (n.is_multiple_of(group) || n < group)
        && base.is_multiple_of(16)
        && (ld * size).is_multiple_of(16)
        && (off_b * size).is_multiple_of(16)
        && (off_c * size).is_multiple_of(16)
}

/// Grid size for a 1-D grid-stride kernel over `n` elements with `threads` per block.
pub fn grid_1d(n: usize, threads: u32) -> u32 {
    let blocks = n.div_ceil(threads as usize).max(1);
    // Grid-stride loops cover any remainder; 2^20 blocks saturate any GPU.
    blocks.min(1 << 20) as u32
}

#[cfg(test)]
mod tests {
    //! Host-side check of the decomposition the kernels implement, with their exact flattened layouts:
    //! level 1 (block-local end states and products, P from the sum of dt), level 2 (carry), level 3
    //! (re-run from the entering state), compared with a plain sequential scan, with a carried initial state.
    //! Loops index by position on purpose, to mirror the kernels' indexing.
    #![allow(clippy::needless_range_loop)]
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    struct Case {
        nb: usize,
        t: usize,
        e: usize,
        n: usize,
        dt: Vec<f32>, // (nb*t, e), already softplus'ed
        x: Vec<f32>,  // (nb*t, e)
        b: Vec<f32>,  // (nb*t, n)
        c: Vec<f32>,  // (nb*t, n)
        a: Vec<f32>,  // (e, n), negative
        h0: Vec<f32>, // (nb, e, n)
    }

    fn case(rng: &mut StdRng, nb: usize, t: usize, e: usize, n: usize) -> Case {
        let mut v = |len: usize, lo: f32, hi: f32| {
            (0..len)
                .map(|_| rng.random_range(lo..hi))
                .collect::<Vec<_>>()
        };
        Case {
            nb,
            t,
            e,
            n,
            dt: v(nb * t * e, 0.001, 0.3),
            x: v(nb * t * e, -1.0, 1.0),
            b: v(nb * t * n, -1.0, 1.0),
            c: v(nb * t * n, -1.0, 1.0),
            a: v(e * n, -4.0, -0.05),
            h0: v(nb * e * n, -1.0, 1.0),
        }
    }

    /// Sequential reference: returns y_ssm = sum_n h C (without D/gate) and the final state.
    fn sequential(k: &Case) -> (Vec<f64>, Vec<f64>) {
        let (nb, t, e, n) = (k.nb, k.t, k.e, k.n);
        let mut y = vec![0.0; nb * t * e];
        let mut h: Vec<f64> = k.h0.iter().map(|&v| f64::from(v)).collect();
        for b in 0..nb {
            for s in 0..t {
                let m = b * t + s;
                for ch in 0..e {
                    let dt = f64::from(k.dt[m * e + ch]);
                    let mut acc = 0.0;
                    for j in 0..n {
                        let hi = (b * e + ch) * n + j;
                        let da = (dt * f64::from(k.a[ch * n + j])).exp();
                        h[hi] = da * h[hi]
                            + dt * f64::from(k.x[m * e + ch]) * f64::from(k.b[m * n + j]);
                        acc += h[hi] * f64::from(k.c[m * n + j]);
                    }
                    y[m * e + ch] = acc;
                }
            }
        }
        (y, h)
    }

    /// The three kernels' algebra in f32, indexing P/H as (nb, nblk, e, n) and the state as (nb, e, n).
    fn two_level(k: &Case, plan: ScanPlan) -> (Vec<f32>, Vec<f32>) {
        let (nb, t, e, n) = (k.nb, k.t, k.e, k.n);
        // The kernels' P/H layout, also for one block (where the engine allocates none: scan_output alone).
        let len = nb * plan.nblk * e * n;
        let (mut p, mut hbuf) = (vec![0f32; len], vec![0f32; len]);
        // scan_local: one "thread" per (ch, blk, b).
        for b in 0..nb {
            for blk in 0..plan.nblk {
                for ch in 0..e {
                    let (t0, t1) = (blk * plan.lb, t.min(blk * plan.lb + plan.lb));
                    let (mut h, mut prod) = (vec![0f32; n], vec![1f32; n]);
                    for s in t0..t1 {
                        let m = b * t + s;
                        let dt = k.dt[m * e + ch];
                        for j in 0..n {
                            let decay = (dt * k.a[ch * n + j]).exp();
                            prod[j] *= decay;
                            h[j] = decay * h[j] + dt * k.x[m * e + ch] * k.b[m * n + j];
                        }
                    }
                    let o = ((b * plan.nblk + blk) * e + ch) * n;
                    p[o..o + n].copy_from_slice(&prod);
                    hbuf[o..o + n].copy_from_slice(&h);
                }
            }
        }
        // scan_carry: one "thread" per flat (b, e, n) index i.
        let mut state = k.h0.clone();
        let en = e * n;
        for (i, st) in state.iter_mut().enumerate() {
            let (b, rest) = (i / en, i % en);
            let mut h = *st;
            for blk in 0..plan.nblk {
                let o = b * plan.nblk * en + blk * en + rest;
                let (pv, hv) = (p[o], hbuf[o]);
                hbuf[o] = h;
                h = pv * h + hv;
            }
            *st = h;
        }
        // scan_output.
        let mut y = vec![0f32; nb * t * e];
        for b in 0..nb {
            for blk in 0..plan.nblk {
                for ch in 0..e {
                    let o = ((b * plan.nblk + blk) * e + ch) * n;
                    let mut h: Vec<f32> = hbuf[o..o + n].to_vec();
                    for s in blk * plan.lb..t.min(blk * plan.lb + plan.lb) {
                        let m = b * t + s;
                        let dt = k.dt[m * e + ch];
                        let mut acc = 0f32;
                        for j in 0..n {
                            h[j] = (dt * k.a[ch * n + j]).exp() * h[j]
                                + dt * k.x[m * e + ch] * k.b[m * n + j];
                            acc += h[j] * k.c[m * n + j];
                        }
                        y[m * e + ch] = acc;
                    }
                }
            }
        }
        (y, state)
    }

    fn max_rel(a: &[f32], b: &[f64]) -> f64 {
        let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - y).abs() / scale)
            .fold(0.0, f64::max)
    }

    #[test]
    fn test_two_level_scan_matches_sequential() {
        let mut rng = StdRng::seed_from_u64(7);
        for &(nb, t, e, n, sms) in &[
            (1, 1, 3, 4, 1),
            (1, 37, 5, 4, 132),
            (2, 300, 4, 8, 132),
            (3, 1000, 2, 16, 1),
            (1, 777, 3, 16, 132),
        ] {
            let k = case(&mut rng, nb, t, e, n);
            let (y_ref, h_ref) = sequential(&k);
            for plan in [
                ScanPlan { nblk: 1, lb: t },
                ScanPlan::new(nb, t, e, sms),
                ScanPlan { nblk: t, lb: 1 },
            ] {
                let (y, h) = two_level(&k, plan);
                let (ey, eh) = (max_rel(&y, &y_ref), max_rel(&h, &h_ref));
                assert!(
                    ey < 1e-4 && eh < 1e-4,
                    "nb={nb} t={t} {plan:?}: y err {ey:e}, state err {eh:e}"
                );
            }
        }
    }

    #[test]
    fn test_plan_covers_time_and_fills_gpu() {
        for &(nb, t, e) in &[
            (1, 1 << 20, 256),
            (1, 1 << 20, 1536),
            (64, 150, 256),
            (1, 3, 512),
            (1, 1, 1),
        ] {
            let p = ScanPlan::new(nb, t, e, 132);
            assert!(
                p.nblk * p.lb >= t && (p.nblk - 1) * p.lb < t,
                "{p:?} does not tile {t}"
            );
            assert!(p.nblk <= MAX_BLOCKS && p.nblk >= 1);
            if t >= MIN_BLOCK * 4096 {
                assert!(
                    nb * e * p.nblk >= 132 * THREADS_PER_SM,
                    "{p:?} underfills for e={e}"
                );
            }
        }
        assert_eq!(
            ScanPlan::new(1, 100, 1536, 132),
            ScanPlan { nblk: 2, lb: 50 }
        );
    }

    #[test]
    fn test_scratch_len() {
        // One block needs no scratch; more need (nb, nblk, e, n).
        assert_eq!(ScanPlan { nblk: 1, lb: 100 }.scratch_len(3, 8, 16), 0);
        assert_eq!(
            ScanPlan { nblk: 4, lb: 25 }.scratch_len(3, 8, 16),
            3 * 4 * 8 * 16
        );
        assert_eq!(ScanPlan::with_blocks(100, 0).scratch_len(2, 8, 16), 0);
    }

    #[test]
    fn test_grid_1d() {
        assert_eq!(grid_1d(0, 256), 1);
        assert_eq!(grid_1d(257, 256), 2);
        assert_eq!(grid_1d(usize::MAX / 2, 256), 1 << 20);
    }

    #[test]
    fn test_vector_rows() {
        // mamba-130m (R 48, N 16): f32 and bf16 rows of 80 elements, B at 48, C at 64.
        assert!(vector_rows(16, 4, 256, 80, 48, 64));
        assert!(vector_rows(16, 2, 256, 80, 48, 64));
        // R 4 in bf16: B at 8 bytes.
        assert!(!vector_rows(16, 2, 256, 36, 4, 20));
        assert!(vector_rows(16, 4, 256, 36, 4, 20));
        // R 3 (odd): B misaligned in f32 too.
        assert!(!vector_rows(16, 4, 256, 35, 3, 19));
        // A misaligned base.
        assert!(!vector_rows(16, 4, 260, 80, 48, 64));
    }
}
