//! One Mamba mixer over a chunk, shared by the causal engine and the bidirectional (Caduceus) engine: the
//! launch context [`Gpu`] and the stages in_proj -> conv -> x_proj -> dt_proj -> scan -> out_proj
//! ([`MixerStage`]).

use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::CudaStream;
use genomamba_model::engine::Dims;

use super::launch::{THREADS, cfg, i32_of, launch};
use super::workspace::Workspace;
use crate::Result;
use crate::buf::{DevBuf, need};
use crate::gemm::Linear;
use crate::kernels::Dtype;
use crate::modules::Kernels;
use crate::scan_plan::{ScanPlan, grid_1d};
use crate::weights::DevLayer;

/// What every launch needs: the compute stream, cuBLAS on it, the loaded kernels, the activation dtype and
/// the model's sizes.
pub(crate) struct Gpu<'a> {
    pub stream: &'a Arc<CudaStream>,
    pub blas: &'a CudaBlas,
    pub kernels: &'a Kernels,
    pub dtype: Dtype,
    pub dims: Dims,
}

/// The launch groups of one mixer, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixerStage {
    /// in_proj GEMM `(rows, 2E)` and its bias.
    InProj,
    /// Depthwise causal conv + SiLU, and the conv state update.
    Conv,
    /// x_proj GEMM `(rows, R + 2N)`.
    XProj,
    /// dt_proj GEMM `(rows, E)` over `x_dbl[:, :R]`.
    DtProj,
    /// The selective scan (all its passes).
    Scan,
    /// out_proj GEMM `(rows, D)` and its bias.
    OutProj,
}

impl MixerStage {
    /// Every stage, in launch order.
    pub const ALL: [MixerStage; 6] = [
        MixerStage::InProj,
        MixerStage::Conv,
        MixerStage::XProj,
        MixerStage::DtProj,
        MixerStage::Scan,
        MixerStage::OutProj,
    ];

    /// A short name (benchmark output).
    pub fn name(self) -> &'static str {
        match self {
            MixerStage::InProj => "in_proj",
            MixerStage::Conv => "conv",
            MixerStage::XProj => "x_proj",
            MixerStage::DtProj => "dt_proj",
            MixerStage::Scan => "scan",
            MixerStage::OutProj => "out_proj",
        }
    }

    /// Multiply-adds x 2 of its GEMM for `rows` rows of a model of `dims` (0 for the stages without one).
    pub fn gemm_flops(self, rows: usize, dims: &Dims) -> f64 {
        let (d, e, n, r) = (dims.d_model, dims.d_inner, dims.d_state, dims.dt_rank);
        let (inp, out) = match self {
            MixerStage::InProj => (d, 2 * e),
            MixerStage::XProj => (e, r + 2 * n),
            MixerStage::DtProj => (r, e),
            MixerStage::OutProj => (e, d),
            MixerStage::Conv | MixerStage::Scan => (0, 0),
        };
        2.0 * rows as f64 * inp as f64 * out as f64
    }
}

impl Gpu<'_> {
    /// Enqueues `Y = X W^T` after checking that every operand holds the extent `lin` touches; `x` may start
    /// `x_off` bytes into its buffer.
    pub(crate) fn gemm(
        &self,
        lin: Linear,
        x: &DevBuf,
        x_off: usize,
        w: &DevBuf,
        y: &DevBuf,
    ) -> Result<()> {
        let (xb, wb, yb) = lin.extents(self.dtype);
        need(x, x_off + xb)?;
        need(w, wb)?;
        need(y, yb)?;
        // SAFETY: the three extents were checked above; y is a separate buffer from x and w.
        unsafe { lin.run(self.blas, self.dtype, x.at(x_off)?, w.ptr(), y.ptr()) }
    }

    /// [`Gpu::gemm`] with `x` from its start, then `bias` `(out,)` added to every row of `y` when there is one.
    fn gemm_bias(
        &self,
        lin: Linear,
        x: &DevBuf,
        w: &DevBuf,
        bias: Option<&DevBuf>,
        y: &DevBuf,
    ) -> Result<()> {
        self.gemm(lin, x, 0, w, y)?;
        if let Some(bias) = bias {
            let (ld, rows, cols) = (lin.ldy as i64, lin.rows as i64, i32_of(lin.out, "columns")?);
            launch!(
                self,
                &self.kernels.add_bias,
                cfg((grid_1d(lin.rows * lin.out, THREADS), 1, 1), THREADS),
                &y.ptr(),
                &ld,
                &bias.ptr(),
                &rows,
                &cols
            );
        }
        Ok(())
    }

    /// Enqueues one Mamba mixer over `nb` windows x `t` rows whose normalised input is in `ws.normed`:
    /// writes `ws.mix` `(rows, D)` (bias included), and reads and updates the conv state at `conv_state`
    /// `(nb, E, K-1)` and the SSM state at `ssm` `(nb, E, N)`, both f32.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mixer(
        &self,
        layer: &DevLayer,
        ws: &Workspace,
        conv_state: u64,
        ssm: u64,
        nb: usize,
        t: usize,
        plan: ScanPlan,
    ) -> Result<()> {
        for stage in MixerStage::ALL {
            self.mixer_stage(stage, layer, ws, conv_state, ssm, nb, t, plan)?;
        }
        Ok(())
    }

    /// Enqueues one stage of [`Gpu::mixer`] (same arguments); the stages of [`MixerStage::ALL`] in order make
    /// the mixer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mixer_stage(
        &self,
        stage: MixerStage,
        layer: &DevLayer,
        ws: &Workspace,
        conv_state: u64,
        ssm: u64,
        nb: usize,
        t: usize,
        plan: ScanPlan,
    ) -> Result<()> {
        let rows = nb * t;
        let dims = self.dims;
        let (d, e, n, r) = (dims.d_model, dims.d_inner, dims.d_state, dims.dt_rank);
        let w = r + 2 * n;
        let k = self.kernels;
        let (e_i, t_i, nb_i) = (i32_of(e, "d_inner")?, i32_of(t, "t")?, i32_of(nb, "nb")?);
        let ld_xz = (2 * e) as i64;
        match stage {
            MixerStage::InProj => self.gemm_bias(
                Linear::dense(rows, d, 2 * e),
                &ws.normed,
                &layer.in_proj,
                layer.in_bias.as_ref(),
                &ws.xz,
            )?,
            MixerStage::Conv => {
                launch!(
                    self,
                    &k.conv_silu,
                    cfg((grid_1d(rows * e, THREADS), 1, 1), THREADS),
                    &ws.xz.ptr(),
                    &ld_xz,
                    &conv_state,
                    &layer.conv_w.ptr(),
                    &layer.conv_b.ptr(),
                    &ws.xc.ptr(),
                    &nb_i,
                    &t_i,
                    &e_i
                );
                launch!(
                    self,
                    &k.conv_state_update,
                    cfg((grid_1d(nb * e, THREADS), 1, 1), THREADS),
                    &ws.xz.ptr(),
                    &ld_xz,
                    &conv_state,
                    &nb_i,
                    &t_i,
                    &e_i
                );
            }
            MixerStage::XProj => self.gemm(
                Linear::dense(rows, e, w),
                &ws.xc,
                0,
                &layer.x_proj,
                &ws.xdbl,
            )?,
            // dt_low is x_dbl[:, :R], read with row stride W.
            MixerStage::DtProj => self.gemm(
                Linear {
                    rows,
                    inp: r,
                    out: e,
                    ldx: w,
                    ldy: e,
                },
                &ws.xdbl,
                0,
                &layer.dt_proj,
                &ws.dt,
            )?,
            MixerStage::Scan => self.scan(layer, ws, ssm, nb, t, plan)?,
            MixerStage::OutProj => self.gemm_bias(
                Linear::dense(rows, e, d),
                &ws.y,
                &layer.out_proj,
                layer.out_bias.as_ref(),
                &ws.mix,
            )?,
        }
        Ok(())
    }
}
