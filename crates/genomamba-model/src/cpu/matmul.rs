//! Strided f32 matrix products on the `gemm` crate, checked so the unsafe call cannot read or write out of
//! bounds, and the transpose that turns a PyTorch `(out, in)` weight into the `(in, out)` right-hand side
//! `gemm` reads fastest.

use crate::{Error, Result};

/// A strided view: element `(i, j)` is at `offset + i*rs + j*cs`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl Layout {
    /// Row-major `rows x cols`.
    pub fn row_major(rows: usize, cols: usize) -> Layout {
        Layout {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major `cols x rows` matrix, seen as `rows x cols`.
    pub fn transposed(rows: usize, cols: usize, ld: usize) -> Layout {
        Layout {
            rows,
            cols,
            rs: 1,
            cs: ld,
        }
    }
    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1)
                .checked_mul(self.rs)
                .zip((self.cols - 1).checked_mul(self.cs))
                .and_then(|(a, b)| a.checked_add(b))
                .is_some_and(|m| m < len)
    }
}

/// `src` `(rows, cols)` row-major, transposed into `(cols, rows)` row-major.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for (i, row) in src.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out[j * rows + i] = v;
        }
    }
    out
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), `lhs` `m x k`, `rhs` `k x n`, `dst` `m x n`.
/// `threads > 1` lets gemm split the work on the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    dst: &mut [f32],
    dl: Layout,
    lhs: &[f32],
    ll: Layout,
    rhs: &[f32],
    rl: Layout,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    let ok = dl.rows == ll.rows && dl.cols == rl.cols && ll.cols == rl.rows;
    if !ok || !dl.fits(dst.len()) || !ll.fits(lhs.len()) || !rl.fits(rhs.len()) {
        return Err(Error::Internal(format!(
            "matmul shapes {dl:?} = {ll:?} x {rl:?} do not fit their buffers"
        )));
    }
    if dl.rows == 0 || dl.cols == 0 {
        return Ok(());
    }
    if ll.cols == 0 {
        if !accumulate {
            for i in 0..dl.rows {
                for j in 0..dl.cols {
                    dst[i * dl.rs + j * dl.cs] = 0.0;
                }
            }
        }
        return Ok(());
    }
    if dl.rows == 1 {
        return one_row(dst, dl, lhs, ll, rhs, rl, accumulate, threads);
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let s = |v: usize| v as isize;
    // SAFETY: every index (i*rs + j*cs) of the three views lies inside its slice (checked by `fits` above),
    // dst is borrowed mutably and so does not alias lhs or rhs, and strides fit in isize (slice lengths do).
    unsafe {
        gemm::gemm(
            dl.rows,
            dl.cols,
            ll.cols,
            dst.as_mut_ptr(),
            s(dl.cs),
            s(dl.rs),
            accumulate,
            lhs.as_ptr(),
            s(ll.cs),
            s(ll.rs),
            rhs.as_ptr(),
            s(rl.cs),
            s(rl.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// A one-row product, run as two equal rows: `gemm` takes another path for one row, whose sums can differ in
/// the last bit from the same row's in a taller product, so a sequence run in calls of one token would drift
/// from the same sequence run whole. With two rows every call gives a row the bits it gets in any other.
#[allow(clippy::too_many_arguments)]
fn one_row(
    dst: &mut [f32],
    dl: Layout,
    lhs: &[f32],
    ll: Layout,
    rhs: &[f32],
    rl: Layout,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    // The same orientation as the view (row- or column-major), two rows tall.
    let two = |v: Layout| {
        if v.cs == 1 {
            Layout::row_major(2, v.cols)
        } else {
            Layout::transposed(2, v.cols, 2)
        }
    };
    let (dl2, ll2) = (two(dl), two(ll));
    let mut lhs2 = vec![0.0; 2 * ll.cols];
    let mut dst2 = vec![0.0; 2 * dl.cols];
    for i in 0..2 {
        for j in 0..ll.cols {
            lhs2[i * ll2.rs + j * ll2.cs] = lhs[j * ll.cs];
        }
        for j in 0..dl.cols {
            dst2[i * dl2.rs + j * dl2.cs] = dst[j * dl.cs];
        }
    }
    matmul(&mut dst2, dl2, &lhs2, ll2, rhs, rl, accumulate, threads)?;
    for j in 0..dl.cols {
        dst[j * dl.cs] = dst2[j * dl2.cs];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_matmul_strided_matches_loops() -> Result<()> {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect(); // (n, k) like nn.Linear
        let mut c = vec![1.0; n * m]; // written channel-major (n, m)
        matmul(
            &mut c,
            Layout::transposed(m, n, m),
            &a,
            Layout::row_major(m, k),
            &w,
            Layout::transposed(k, n, k),
            true,
            1,
        )?;
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * w[j * k + p]).sum::<f32>();
                assert!((c[j * m + i] - want).abs() < 1e-5);
            }
        }
        assert!(
            matmul(
                &mut c[..4],
                Layout::row_major(m, n),
                &a,
                Layout::row_major(m, k),
                &w,
                Layout::transposed(k, n, k),
                false,
                1
            )
            .is_err()
        );
        Ok(())
    }
}
