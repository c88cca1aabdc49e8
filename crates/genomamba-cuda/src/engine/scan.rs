//! The selective-scan launch sequence of one layer: its passes (`kernels/scan.cu`), launched in order by
//! [`Gpu::scan`] and one at a time by the benchmark.

use super::CudaEngine;
use super::launch::{THREADS, cfg, i32_of, launch};
use super::mixer::Gpu;
use super::workspace::Workspace;
use crate::scan_plan::{SCAN_THREADS, ScanPlan, grid_1d};
use crate::weights::DevLayer;
use crate::{Error, Result};

/// One kernel of the two-level scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanPass {
    /// Level 1: each time block from a zero state, its end state and decay product (`scan_local`).
    Local,
    /// Level 2: the state entering each block, and the carried state after the last (`scan_carry`).
    Carry,
    /// Level 3: each block again from its entering state, writing `y` (`scan_output`); alone, with the carried
    /// state read and written in place, when the plan has one block.
    Output,
}

impl ScanPass {
    /// The passes a plan launches, in order.
    pub fn of(plan: ScanPlan) -> &'static [ScanPass] {
        if plan.nblk == 1 {
            &[ScanPass::Output]
        } else {
            &[ScanPass::Local, ScanPass::Carry, ScanPass::Output]
        }
    }

    /// The kernel's name.
    pub fn name(self) -> &'static str {
        match self {
            ScanPass::Local => "scan_local",
            ScanPass::Carry => "scan_carry",
            ScanPass::Output => "scan_output",
        }
    }
}

impl Gpu<'_> {
    /// Enqueues the selective scan of `layer` for `nb` windows x `t` steps: reads `ws.dt`, `ws.xc`,
    /// `ws.xdbl`, `ws.xz` (z half), updates the SSM state at `ssm` (`(nb, E, N)` f32), writes `ws.y`.
    pub(crate) fn scan(
        &self,
        layer: &DevLayer,
        ws: &Workspace,
        ssm: u64,
        nb: usize,
        t: usize,
        plan: ScanPlan,
    ) -> Result<()> {
        for &pass in ScanPass::of(plan) {
            self.scan_pass(pass, layer, ws, ssm, nb, t, plan)?;
        }
        Ok(())
    }

    /// Enqueues one pass of [`Gpu::scan`]; the passes of `ScanPass::of(plan)` in order make the whole scan.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan_pass(
        &self,
        pass: ScanPass,
        layer: &DevLayer,
        ws: &Workspace,
        ssm: u64,
        nb: usize,
        t: usize,
        plan: ScanPlan,
    ) -> Result<()> {
        let dims = self.dims;
        let (e, n, r) = (dims.d_inner, dims.d_state, dims.dt_rank);
        let k = self.kernels;
        let (t_i, e_i, nb_i) = (i32_of(t, "t")?, i32_of(e, "d_inner")?, i32_of(nb, "nb")?);
        let (nblk_i, lb_i) = (i32_of(plan.nblk, "nblk")?, i32_of(plan.lb, "lb")?);
        let (ld_xz, ld_dbl) = ((2 * e) as i64, (r + 2 * n) as i64);
        let (off_b, off_c) = (i32_of(r, "dt_rank")?, i32_of(r + n, "dt_rank + d_state")?);
        if plan.nblk > 1 && plan.scratch_len(nb, e, n) > ws.scratch {
            return Err(Error::TooLarge("scan scratch smaller than the plan".into()));
        }
        let (p, h) = (ws.scan_p.ptr(), ws.scan_h.ptr());
        let grid = (
            e.div_ceil(SCAN_THREADS as usize) as u32,
            plan.nblk as u32,
            nb as u32,
        );
        match pass {
            ScanPass::Local => launch!(
                self,
                &k.scan_local,
                cfg(grid, SCAN_THREADS),
                &ws.dt.ptr(),
                &layer.dt_bias.ptr(),
                &layer.a2.ptr(),
                &ws.xc.ptr(),
                &ws.xdbl.ptr(),
                &ld_dbl,
                &off_b,
                &p,
                &h,
                &t_i,
                &e_i,
                &nblk_i,
                &lb_i
            ),
            ScanPass::Carry => launch!(
                self,
                &k.scan_carry,
                cfg((grid_1d(nb * e * n, THREADS), 1, 1), THREADS),
                &p,
                &h,
                &ssm,
                &nb_i,
                &e_i,
                &nblk_i
            ),
            ScanPass::Output => {
                let z = ws.xz.at(e * self.dtype.size())?;
                // One block: the carried state is both the entering state and where the final one goes.
                let (h_in, final_state) = if plan.nblk == 1 {
                    (ssm, ssm)
                } else {
                    (h, 0u64)
                };
                launch!(
                    self,
                    &k.scan_output,
                    cfg(grid, SCAN_THREADS),
                    &ws.dt.ptr(),
                    &layer.dt_bias.ptr(),
                    &layer.a2.ptr(),
                    &ws.xc.ptr(),
                    &ws.xdbl.ptr(),
                    &ld_dbl,
                    &off_b,
                    &off_c,
                    &z,
                    &ld_xz,
                    &layer.d_skip.ptr(),
                    &h_in,
                    &final_state,
                    &ws.y.ptr(),
                    &t_i,
                    &e_i,
                    &nblk_i,
                    &lb_i
                );
            }
        }
        Ok(())
    }
}

impl CudaEngine {
    /// The layer `li` of this engine's model.
    pub(crate) fn layer(&self, li: usize) -> Result<&DevLayer> {
        self.model
            .layers
            .get(li)
            .ok_or_else(|| Error::TooLarge(format!("layer {li}")))
    }
}
