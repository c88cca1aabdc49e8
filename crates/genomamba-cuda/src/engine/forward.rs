//! One chunk through the whole model: the kernel launch sequence and its geometry.
//!
//! Per chunk of `nb` windows x `t` steps (row `m = b*t + s`), with `E = d_inner`, `W = R + 2N`:
//! embed_gather -> for each layer { add_rmsnorm (adds the previous block's output) -> in_proj GEMM (rows, 2E)
//! -> conv_silu + conv_state_update -> x_proj GEMM (rows, W) -> dt_proj GEMM (rows, E) over x_dbl[:, :R]
//! -> scan (local, carry, output, or output alone for one block) -> out_proj GEMM (rows, D) } ->
//! add_rmsnorm_f32 with norm_f -> base_head (optional).

use super::CudaEngine;
use super::launch::{THREADS, cfg, i32_of, launch, norm_threads};
use crate::buf::{DevBuf, need};
use crate::gemm::Linear;
use crate::scan_plan::{ScanPlan, grid_1d};
use crate::{Error, Result};

impl CudaEngine {
    /// Enqueues `Y = X W^T` after checking that every operand holds the extent `lin` touches; `x` may start
    /// `x_off` bytes into its buffer.
    fn gemm(&self, lin: Linear, x: &DevBuf, x_off: usize, w: &DevBuf, y: &DevBuf) -> Result<()> {
        let (xb, wb, yb) = lin.extents(self.dtype);
        need(x, x_off + xb)?;
        need(w, wb)?;
        need(y, yb)?;
        // SAFETY: the three extents were checked above; y is a separate buffer from x and w.
        unsafe { lin.run(&self.blas, self.dtype, x.at(x_off)?, w.ptr(), y.ptr()) }
    }

    /// Enqueues the forward pass of `nb` windows x `t` steps whose tokens are already in `ws.tokens`.
    /// Writes final hidden states to `ws.hidden[slot]` and base probabilities to `ws.probs[slot]` (errors
    /// if `probs` is asked of a vocabulary without A/C/G/T). Reads and updates the carried state of window
    /// slots `0..nb`.
    pub(crate) fn forward(&mut self, nb: usize, t: usize, slot: usize, probs: bool) -> Result<()> {
        let rows = nb * t;
        if rows == 0 {
            return Ok(());
        }
        if rows > self.ws.rows || nb > self.states.nb || nb > 65535 {
            return Err(Error::TooLarge(format!(
                "chunk of {nb} x {t} rows exceeds the workspace"
            )));
        }
        let dims = self.info.dims;
        let (d, e, n, r) = (dims.d_model, dims.d_inner, dims.d_state, dims.dt_rank);
        let w = r + 2 * n;
        let (rows_i, d_i, e_i, t_i, nb_i) = (
            rows as i64,
            i32_of(d, "d_model")?,
            i32_of(e, "d_inner")?,
            i32_of(t, "t")?,
            i32_of(nb, "nb")?,
        );
        let eps = self.info.norm_eps as f32;
        let k = &self.kernels;
        let ws = &self.ws;
        let tokens = ws.tokens.ptr();
        let resid = ws.resid.ptr();

        launch!(
            self,
            &k.embed_gather,
            cfg((grid_1d(rows * d, THREADS), 1, 1), THREADS),
            &tokens,
            &self.model.embedding.ptr(),
            &resid,
            &rows_i,
            &d_i
        );

        let mut plan = ScanPlan::new(nb, t, e, self.sms);
        if plan.scratch_len(nb, e, n) > ws.scratch {
            // Fewer, longer blocks when the scratch was sized for another batch shape.
            plan = ScanPlan::with_blocks(t, ws.scratch / (nb * e * n).max(1));
        }
        let ld_xz = (2 * e) as i64;
        let null = 0u64;

        for (li, layer) in self.model.layers.iter().enumerate() {
            let delta = if li == 0 { null } else { ws.mix.ptr() };
            launch!(
                self,
                &k.add_rmsnorm,
                cfg((rows as u32, 1, 1), norm_threads(d)),
                &resid,
                &delta,
                &layer.norm.ptr(),
                &ws.normed.ptr(),
                &d_i,
                &eps
            );
            self.gemm(
                Linear::dense(rows, d, 2 * e),
                &ws.normed,
                0,
                &layer.in_proj,
                &ws.xz,
            )?;
            if let Some(bias) = &layer.in_bias {
                let cols = i32_of(2 * e, "2E")?;
                launch!(
                    self,
                    &k.add_bias,
                    cfg((grid_1d(rows * 2 * e, THREADS), 1, 1), THREADS),
                    &ws.xz.ptr(),
                    &ld_xz,
                    &bias.ptr(),
                    &rows_i,
                    &cols
                );
            }
            let conv_state = self.states.conv[li].ptr();
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
            self.gemm(
                Linear::dense(rows, e, w),
                &ws.xc,
                0,
                &layer.x_proj,
                &ws.xdbl,
            )?;
            // dt_low is x_dbl[:, :R], read with row stride W.
            self.gemm(
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
            )?;

            self.scan(li, nb, t, plan)?;
            self.gemm(
                Linear::dense(rows, e, d),
                &ws.y,
                0,
                &layer.out_proj,
                &ws.mix,
            )?;
            if let Some(bias) = &layer.out_bias {
                let ld = d as i64;
                launch!(
                    self,
                    &k.add_bias,
                    cfg((grid_1d(rows * d, THREADS), 1, 1), THREADS),
                    &ws.mix.ptr(),
                    &ld,
                    &bias.ptr(),
                    &rows_i,
                    &d_i
                );
            }
        }
        let hidden = ws.hidden[slot].ptr();
        let delta = if self.model.layers.is_empty() {
            null
        } else {
            ws.mix.ptr()
        };
        launch!(
            self,
            &k.add_rmsnorm_f32,
            cfg((rows as u32, 1, 1), norm_threads(d)),
            &resid,
            &delta,
            &self.model.norm_f.ptr(),
            &hidden,
            &d_i,
            &eps
        );

        // The head runs whenever the vocabulary has A/C/G/T (it is cheap), so the carried prediction stays
        // valid across calls that do not ask for probabilities.
        match &self.model.head4 {
            Some(head) => {
                let (cin, cout) = (
                    self.states.carry[self.states.cur].ptr(),
                    self.states.carry[1 - self.states.cur].ptr(),
                );
                let warps = THREADS / 32;
                let grid = rows.div_ceil(warps as usize) as u32;
                launch!(
                    self,
                    &k.base_head,
                    cfg((grid, 1, 1), THREADS),
                    &hidden,
                    &head.ptr(),
                    &tokens,
                    &cin,
                    &cout,
                    &ws.probs[slot].ptr(),
                    &null,
                    &nb_i,
                    &t_i,
                    &d_i
                );
                self.states.cur = 1 - self.states.cur;
            }
            None if probs => {
                return Err(Error::Unsupported(
                    "the vocabulary has no A/C/G/T tokens (ids 7..10) for base probabilities"
                        .into(),
                ));
            }
            None => {}
        }
        Ok(())
    }
}
