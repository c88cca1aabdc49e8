//! One chunk through the whole model: the kernel launch sequence and its geometry.
//!
//! Per chunk of `nb` windows x `t` steps (row `m = b*t + s`), with `E = d_inner`, `W = R + 2N`:
//! embed_gather -> for each layer { add_rmsnorm (adds the previous block's output) -> in_proj GEMM (rows, 2E)
//! -> conv_silu + conv_state_update -> x_proj GEMM (rows, W) -> dt_proj GEMM (rows, E) over x_dbl[:, :R]
//! -> scan (local, carry, output, or output alone for one block) -> out_proj GEMM (rows, D) } ->
//! add_rmsnorm_f32 with norm_f -> base_head (optional).

use super::CudaEngine;
use super::launch::{THREADS, cfg, i32_of, launch, norm_threads};
use crate::scan_plan::grid_1d;
use crate::{Error, Result};

impl CudaEngine {
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
        let d = dims.d_model;
        let (rows_i, d_i, t_i, nb_i) = (
            rows as i64,
            i32_of(d, "d_model")?,
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

        let plan = ws.plan(nb, t, &dims, self.sms);
        let null = 0u64;
        let gpu = self.gpu();

        for (li, layer) in self.model.layers.iter().enumerate() {
            self.norm(li, rows)?;
            let (conv_state, ssm) = (self.states.conv[li].ptr(), self.states.ssm[li].ptr());
            gpu.mixer(layer, ws, conv_state, ssm, nb, t, plan)?;
        }
        let hidden = ws.hidden[slot].ptr();
        let delta = if self.model.layers.is_empty() {
            null
        } else {
            ws.mix.ptr()
        };
        // A model cut after a block (`--layer`) gives its residual stream: no weights, no norm.
        let norm_f = if self.model.final_norm {
            self.model.norm_f.ptr()
        } else {
            null
        };
        launch!(
            self,
            &k.add_rmsnorm_f32,
            cfg((rows as u32, 1, 1), norm_threads(d)),
            &resid,
            &delta,
            &norm_f,
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

    /// Enqueues layer `li`'s pre-norm over `rows` rows: adds the previous layer's mixer output (`ws.mix`, none
    /// before layer 0) into the residual stream and writes its RMSNorm to `ws.normed`.
    pub(crate) fn norm(&self, li: usize, rows: usize) -> Result<()> {
        let d = self.info.dims.d_model;
        let d_i = i32_of(d, "d_model")?;
        let eps = self.info.norm_eps as f32;
        let delta = if li == 0 { 0u64 } else { self.ws.mix.ptr() };
        launch!(
            self,
            &self.kernels.add_rmsnorm,
            cfg((i32_of(rows, "rows")? as u32, 1, 1), norm_threads(d)),
            &self.ws.resid.ptr(),
            &delta,
            &self.layer(li)?.norm.ptr(),
            &self.ws.normed.ptr(),
            &d_i,
            &eps
        );
        Ok(())
    }
}
