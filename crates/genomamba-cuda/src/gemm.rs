//! Projections through cuBLAS: `Y (rows, out) = X (rows, in) · W^T` with `W (out, in)` row-major (PyTorch
//! `nn.Linear` layout), all row-major with explicit leading dimensions.
//!
//! cuBLAS is column-major, so the call computes `Y^T = W · X^T`: `op(A) = W` read transposed from its
//! row-major storage (`transa = T`, `lda = in`), `B = X^T` (`ldb = ldx`), `C = Y^T` (`ldc = ldy`).
//! f32 runs `CUBLAS_COMPUTE_32F` (no TF32, for parity); bf16 runs bf16 inputs/outputs with f32 accumulation
//! (tensor cores).

use std::ffi::{c_int, c_void};
use std::ops::Range;

use cudarc::cublas::{CudaBlas, result, sys};

use crate::kernels::Dtype;
use crate::{Error, Result};

/// One projection's geometry. Leading dimensions are in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Rows of X and Y.
    pub rows: usize,
    /// Input features (columns of X used, columns of W).
    pub inp: usize,
    /// Output features (rows of W, columns of Y written).
    pub out: usize,
    /// Leading dimension of X (>= inp).
    pub ldx: usize,
    /// Leading dimension of Y (>= out).
    pub ldy: usize,
}

/// Most elements one cuBLAS operand may span: cuBLAS documents failures for operands of 2^31 elements or more.
pub(crate) const MAX_SPAN: usize = (1 << 31) - 1;

/// Splits `rows` rows into consecutive blocks (row ranges) whose X (`rows x ldx`) and Y (`rows x ldy`) span
/// at most `max_span` elements each: blocks of `max_span / max(ldx, ldy)` rows, rounded down to a multiple of
/// 8 (16-byte-aligned offsets in bf16) when that leaves 8 or more, and at least 1 row. Empty for 0 rows.
pub(crate) fn row_blocks(
    rows: usize,
    ldx: usize,
    ldy: usize,
    max_span: usize,
) -> Vec<Range<usize>> {
    let per = max_span / ldx.max(ldy).max(1);
    let per = if per >= 8 { per / 8 * 8 } else { per.max(1) };
    (0..rows)
        .step_by(per)
        .map(|r0| r0..(r0 + per).min(rows))
        .collect()
}

fn int(v: usize, what: &str) -> Result<c_int> {
    c_int::try_from(v).map_err(|_| Error::TooLarge(format!("{what} = {v} exceeds cuBLAS's int")))
}

impl Linear {
    /// A dense projection with contiguous rows.
    pub fn dense(rows: usize, inp: usize, out: usize) -> Linear {
        Linear {
            rows,
            inp,
            out,
            ldx: inp,
            ldy: out,
        }
    }

    /// Bytes of X, W, Y touched (for bounds checks): `(x, w, y)`.
    pub fn extents(&self, dtype: Dtype) -> (usize, usize, usize) {
        let s = dtype.size();
        let last = |ld: usize, cols: usize| {
            if self.rows == 0 {
                0
            } else {
                ((self.rows - 1) * ld + cols) * s
            }
        };
        (
            last(self.ldx, self.inp),
            self.inp * self.out * s,
            last(self.ldy, self.out),
        )
    }

    /// Enqueues `Y = X W^T` on the handle's stream, as one cuBLAS call per block of rows of
    /// [`row_blocks`] (no operand spans 2^31 elements).
    ///
    /// # Safety
    /// `x`, `w`, `y` must be device addresses of `dtype` buffers at least [`Linear::extents`] long, and `y`
    /// must not overlap `x` or `w`.
    pub unsafe fn run(&self, blas: &CudaBlas, dtype: Dtype, x: u64, w: u64, y: u64) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.run_split(blas, dtype, x, w, y, MAX_SPAN) }
    }

    /// [`Linear::run`] in blocks whose X and Y span at most `max_span` elements each.
    ///
    /// # Safety
    /// As [`Linear::run`].
    pub(crate) unsafe fn run_split(
        &self,
        blas: &CudaBlas,
        dtype: Dtype,
        x: u64,
        w: u64,
        y: u64,
        max_span: usize,
    ) -> Result<()> {
        let ty = match dtype {
            Dtype::F32 => sys::cudaDataType_t::CUDA_R_32F,
            Dtype::Bf16 => sys::cudaDataType_t::CUDA_R_16BF,
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        let size = dtype.size() as u64;
        for block in row_blocks(self.rows, self.ldx, self.ldy, max_span) {
            let r0 = block.start as u64;
            let (xb, yb) = (
                x + r0 * self.ldx as u64 * size,
                y + r0 * self.ldy as u64 * size,
            );
            // SAFETY: the caller guarantees the extents of all `rows` rows, and this block's rows lie within
            // them (X and Y offset by its first row); alpha/beta are f32 as CUBLAS_COMPUTE_32F requires.
            unsafe {
                result::gemm_ex(
                    *blas.handle(),
                    sys::cublasOperation_t::CUBLAS_OP_T,
                    sys::cublasOperation_t::CUBLAS_OP_N,
                    int(self.out, "out")?,
                    int(block.len(), "rows")?,
                    int(self.inp, "in")?,
                    (&alpha) as *const f32 as *const c_void,
                    w as *const c_void,
                    ty,
                    int(self.inp, "lda")?,
                    xb as *const c_void,
                    ty,
                    int(self.ldx, "ldx")?,
                    (&beta) as *const f32 as *const c_void,
                    yb as *mut c_void,
                    ty,
                    int(self.ldy, "ldy")?,
                    sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_extents() {
        // dt projection: X = x_dbl (rows, R + 2N) read over its first R columns.
        let l = Linear {
            rows: 3,
            inp: 4,
            out: 8,
            ldx: 4 + 2 * 16,
            ldy: 8,
        };
        assert_eq!(
            l.extents(Dtype::F32),
            ((2 * 36 + 4) * 4, 4 * 8 * 4, 3 * 8 * 4)
        );
        assert_eq!(Linear::dense(0, 4, 8).extents(Dtype::Bf16), (0, 64, 0));
    }

    #[test]
    fn test_row_blocks() {
        // mamba-130m's in_proj at 1,048,576 rows: Y (rows, 3072) spans 3.2e9 elements; blocks of 699,048 rows
        // (a multiple of 8) keep both X (ld 768) and Y under 2^31.
        let rows = 1 << 20;
        let b = row_blocks(rows, 768, 3072, MAX_SPAN);
        assert_eq!(b, vec![0..699_048, 699_048..rows]);
        for r in &b {
            assert!(r.len() * 3072 < 1 << 31);
        }
        // Small enough: one block; no rows: none.
        assert_eq!(row_blocks(1000, 768, 3072, MAX_SPAN), vec![0..1000]);
        assert!(row_blocks(0, 768, 3072, MAX_SPAN).is_empty());
        // Blocks cover the rows in order, each within the span, the larger leading dimension deciding.
        let b = row_blocks(37, 10, 4, 85);
        assert_eq!(b, vec![0..8, 8..16, 16..24, 24..32, 32..37]);
        // Under 8 rows a block: not rounded; a row wider than the span still makes blocks of 1.
        assert_eq!(row_blocks(5, 3, 20, 50), vec![0..2, 2..4, 4..5]);
        assert_eq!(row_blocks(2, 100, 1, 50), vec![0..1, 1..2]);
    }

    /// `run_split` with blocks of a few rows equals one call, on strided X and Y, in f32 and bf16.
    #[test]
    #[ignore = "needs a CUDA device"]
    fn gpu_split_gemm_matches_one_call() -> Result<()> {
        use crate::buf::DevBuf;
        let ctx = crate::probe::context(0)?;
        let stream = ctx.new_stream()?;
        let blas = CudaBlas::new(stream.clone())?;
        let l = Linear {
            rows: 37,
            inp: 6,
            out: 5,
            ldx: 9,
            ldy: 7,
        };
        let val = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 64.0;
        let x: Vec<f32> = (0..l.rows * l.ldx).map(val).collect();
        let w: Vec<f32> = (0..l.out * l.inp).map(|i| val(i + 7)).collect();
        for dtype in [Dtype::F32, Dtype::Bf16] {
            let up = |v: &[f32]| match dtype {
                Dtype::F32 => DevBuf::from_f32(&stream, v),
                Dtype::Bf16 => DevBuf::from_f32_as_bf16(&stream, v),
            };
            let (xd, wd) = (up(&x)?, up(&w)?);
            let nan = vec![f32::NAN; l.rows * l.ldy];
            let (y1, y2) = (up(&nan)?, up(&nan)?);
            // SAFETY: X, W and both Y buffers hold the extents of `l`; the Ys are separate allocations.
            unsafe {
                l.run(&blas, dtype, xd.ptr(), wd.ptr(), y1.ptr())?;
                l.run_split(&blas, dtype, xd.ptr(), wd.ptr(), y2.ptr(), 8 * 9)?;
            }
            let bytes = l.rows * l.ldy * dtype.size();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            y1.download_bytes(&stream, 0..bytes, &mut a)?;
            y2.download_bytes(&stream, 0..bytes, &mut b)?;
            let f = |v: &[u8]| -> Vec<f32> {
                match dtype {
                    Dtype::F32 => v
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    Dtype::Bf16 => v
                        .chunks_exact(2)
                        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                }
            };
            let (a, b) = (f(&a), f(&b));
            let tol = match dtype {
                Dtype::F32 => 1e-5,
                Dtype::Bf16 => 1e-2,
            };
            for r in 0..l.rows {
                let cols = r * l.ldy..r * l.ldy + l.out;
                for (p, q) in a[cols.clone()].iter().zip(&b[cols]) {
                    // Every written element is finite, and the blocks give what one call gives (up to a
                    // GPU's choice of kernel per shape).
                    assert!(
                        p.is_finite() && (p - q).abs() <= tol * p.abs().max(1.0),
                        "{dtype:?} row {r}: {p} vs {q}"
                    );
                }
            }
        }
        Ok(())
    }
}
