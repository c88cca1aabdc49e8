//! Projections through cuBLAS: `Y (rows, out) = X (rows, in) · W^T` with `W (out, in)` row-major (PyTorch
//! `nn.Linear` layout), all row-major with explicit leading dimensions.
//!
//! cuBLAS is column-major, so the call computes `Y^T = W · X^T`: `op(A) = W` read transposed from its
//! row-major storage (`transa = T`, `lda = in`), `B = X^T` (`ldb = ldx`), `C = Y^T` (`ldc = ldy`).
//! f32 runs `CUBLAS_COMPUTE_32F` (no TF32, for parity); bf16 runs bf16 inputs/outputs with f32 accumulation
//! (tensor cores).

use std::ffi::{c_int, c_void};

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

    /// Enqueues `Y = X W^T` on the handle's stream.
    ///
    /// # Safety
    /// `x`, `w`, `y` must be device addresses of `dtype` buffers at least [`Linear::extents`] long, and `y`
    /// must not overlap `x` or `w`.
    pub unsafe fn run(&self, blas: &CudaBlas, dtype: Dtype, x: u64, w: u64, y: u64) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let ty = match dtype {
            Dtype::F32 => sys::cudaDataType_t::CUDA_R_32F,
            Dtype::Bf16 => sys::cudaDataType_t::CUDA_R_16BF,
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: the caller guarantees the extents; alpha/beta are f32 as CUBLAS_COMPUTE_32F requires.
        unsafe {
            result::gemm_ex(
                *blas.handle(),
                sys::cublasOperation_t::CUBLAS_OP_T,
                sys::cublasOperation_t::CUBLAS_OP_N,
                int(self.out, "out")?,
                int(self.rows, "rows")?,
                int(self.inp, "in")?,
                (&alpha) as *const f32 as *const c_void,
                w as *const c_void,
                ty,
                int(self.inp, "lda")?,
                x as *const c_void,
                ty,
                int(self.ldx, "ldx")?,
                (&beta) as *const f32 as *const c_void,
                y as *mut c_void,
                ty,
                int(self.ldy, "ldy")?,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )?;
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
}
