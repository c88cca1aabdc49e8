//! The selective-scan launch sequence of one layer.

use super::CudaEngine;
use super::launch::{THREADS, cfg, i32_of, launch};
use super::mixer::Gpu;
use super::workspace::Workspace;
use crate::scan_plan::{SCAN_THREADS, ScanPlan, grid_1d};
use crate::weights::DevLayer;
use crate::{Error, Result};

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
        let dims = self.dims;
        let (e, n, r) = (dims.d_inner, dims.d_state, dims.dt_rank);
        let k = self.kernels;
        let (t_i, e_i, nb_i) = (i32_of(t, "t")?, i32_of(e, "d_inner")?, i32_of(nb, "nb")?);
        let (nblk_i, lb_i) = (i32_of(plan.nblk, "nblk")?, i32_of(plan.lb, "lb")?);
        let (ld_xz, ld_dbl) = ((2 * e) as i64, (r + 2 * n) as i64);
        let (off_b, off_c) = (i32_of(r, "dt_rank")?, i32_of(r + n, "dt_rank + d_state")?);
        let z = ws.xz.at(e * self.dtype.size())?;
        let null = 0u64;
        let grid = (
            e.div_ceil(SCAN_THREADS as usize) as u32,
            plan.nblk as u32,
            nb as u32,
        );
        if plan.nblk == 1 {
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
                &ssm,
                &ssm,
                &ws.y.ptr(),
                &t_i,
                &e_i,
                &nblk_i,
                &lb_i
            );
        } else {
            if plan.scratch_len(nb, e, n) > ws.scratch {
                return Err(Error::TooLarge("scan scratch smaller than the plan".into()));
            }
            let (p, h) = (ws.scan_p.ptr(), ws.scan_h.ptr());
            launch!(
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
            );
            launch!(
                self,
                &k.scan_carry,
                cfg((grid_1d(nb * e * n, THREADS), 1, 1), THREADS),
                &p,
                &h,
                &ssm,
                &nb_i,
                &e_i,
                &nblk_i
            );
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
                &h,
                &null,
                &ws.y.ptr(),
                &t_i,
                &e_i,
                &nblk_i,
                &lb_i
            );
        }
        Ok(())
    }
}

impl CudaEngine {
    /// [`Gpu::scan`] of layer `li` on this engine's workspace and carried state.
    pub(crate) fn scan(&self, li: usize, nb: usize, t: usize, plan: ScanPlan) -> Result<()> {
        let layer = self
            .model
            .layers
            .get(li)
            .ok_or_else(|| Error::TooLarge(format!("layer {li}")))?;
        self.gpu()
            .scan(layer, &self.ws, self.states.ssm[li].ptr(), nb, t, plan)
    }
}
