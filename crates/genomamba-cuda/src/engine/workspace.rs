//! Device activation buffers for up to `rows` rows per chunk, and the per-layer carried state.

use std::sync::Arc;

use cudarc::driver::CudaStream;
use genomamba_model::engine::Dims;

use crate::buf::DevBuf;
use crate::kernels::Dtype;
use crate::scan_plan::ScanPlan;
use crate::{Error, Result};

/// Activations of one chunk of `rows` rows (`nb` windows x `t` steps, `nb * t <= rows`).
#[derive(Debug)]
pub struct Workspace {
    /// Row capacity.
    pub rows: usize,
    /// f32 slots of each scan scratch array.
    pub scratch: usize,
    /// Token ids `(rows,)` u8.
    pub tokens: DevBuf,
    /// Residual stream `(rows, D)` f32.
    pub resid: DevBuf,
    /// Block input after RMSNorm `(rows, D)` act.
    pub normed: DevBuf,
    /// in_proj output `(rows, 2E)` act: x | z.
    pub xz: DevBuf,
    /// conv output `(rows, E)` act.
    pub xc: DevBuf,
    /// x_proj output `(rows, R + 2N)` act: dt_low | B | C.
    pub xdbl: DevBuf,
    /// dt_proj output `(rows, E)` act (bias not added).
    pub dt: DevBuf,
    /// Gated scan output `(rows, E)` act.
    pub y: DevBuf,
    /// out_proj output `(rows, D)` act.
    pub mix: DevBuf,
    /// Final hidden states `(rows, D)` f32, two slots (one may be in a copy while the next chunk computes).
    pub hidden: [DevBuf; 2],
    /// Base probabilities `(rows, 4)` f32, two slots.
    pub probs: [DevBuf; 2],
    /// Scan scratch P, `(nb, nblk, E, N)` f32.
    pub scan_p: DevBuf,
    /// Scan scratch H, `(nb, nblk, E, N)` f32.
    pub scan_h: DevBuf,
}

/// Bytes per row of every activation buffer (scan scratch excluded).
pub fn bytes_per_row(dims: &Dims, dtype: Dtype) -> usize {
    let (d, e) = (dims.d_model, dims.d_inner);
    let s = dtype.size();
    1 + 4 * d
        + s * d
        + s * 2 * e
        + s * e
        + s * (dims.dt_rank + 2 * dims.d_state)
        + 2 * s * e
        + s * d
        + 2 * 4 * d
        + 2 * 16
}

/// Bytes of carried state per window slot ([`States`]): conv `(E, K-1)` and SSM `(E, N)` f32 per layer,
/// plus two head carries of 4 f32.
pub fn state_bytes_per_window(dims: &Dims) -> usize {
    dims.n_layer * dims.d_inner * (dims.d_state + dims.d_conv.saturating_sub(1)) * 4 + 2 * 16
}

/// Most window slots a batch group may carry state for: as many as fit the activation memory of a chunk of
/// `rows` rows (`rows x bytes_per_row` bytes), at least 1.
pub fn max_state_windows(dims: &Dims, dtype: Dtype, rows: usize) -> usize {
    let budget = rows.saturating_mul(bytes_per_row(dims, dtype));
    (budget / state_bytes_per_window(dims).max(1)).max(1)
}

/// Largest scan scratch any chunk of at most `rows` rows needs on a GPU with `sms` SMs, for `nb` windows
/// (0 when the plan has one time block).
pub fn scratch_for(rows: usize, nb: usize, dims: &Dims, sms: usize) -> usize {
    let t = rows.div_ceil(nb.max(1));
    ScanPlan::new(nb.max(1), t, dims.d_inner, sms).scratch_len(
        nb.max(1),
        dims.d_inner,
        dims.d_state,
    )
}

impl Workspace {
    /// Replaces the scan scratch by arrays of `len` f32 slots each, unless it holds that many already (the
    /// benchmark's plans with more time blocks than the engine's own, and back; a batch's wider groups).
    /// The old arrays are freed (stream-ordered on `stream`, whose work so far may still use them) before
    /// the new ones are allocated, so device memory never holds both. On an error the scratch is left empty
    /// (`scratch == 0`: plans fall back to one time block, which needs none).
    pub fn resize_scratch(&mut self, stream: &Arc<CudaStream>, len: usize) -> Result<()> {
        if len != self.scratch {
            let bytes = len
                .checked_mul(4)
                .ok_or_else(|| Error::TooLarge(format!("scan scratch of {len} slots")))?;
            self.scratch = 0;
            self.scan_p = DevBuf::alloc(stream, 0)?;
            self.scan_h = DevBuf::alloc(stream, 0)?;
            self.scan_p = DevBuf::alloc(stream, bytes)?;
            self.scan_h = DevBuf::alloc(stream, bytes)?;
            self.scratch = len;
        }
        Ok(())
    }

    /// Allocates buffers for `rows` rows and `scratch` scan slots.
    pub fn new(
        stream: &Arc<CudaStream>,
        dims: &Dims,
        dtype: Dtype,
        rows: usize,
        scratch: usize,
    ) -> Result<Workspace> {
        let (d, e) = (dims.d_model, dims.d_inner);
        let s = dtype.size();
        let a = |bytes: usize| DevBuf::alloc(stream, bytes);
        Ok(Workspace {
            rows,
            scratch,
            tokens: a(rows)?,
            resid: a(rows * d * 4)?,
            normed: a(rows * d * s)?,
            xz: a(rows * 2 * e * s)?,
            xc: a(rows * e * s)?,
            xdbl: a(rows * (dims.dt_rank + 2 * dims.d_state) * s)?,
            dt: a(rows * e * s)?,
            y: a(rows * e * s)?,
            mix: a(rows * d * s)?,
            hidden: [a(rows * d * 4)?, a(rows * d * 4)?],
            probs: [a(rows * 16)?, a(rows * 16)?],
            scan_p: a(scratch * 4)?,
            scan_h: a(scratch * 4)?,
        })
    }
}

impl Workspace {
    /// The scan geometry for `nb` windows x `t` rows on a GPU with `sms` SMs, with fewer, longer time blocks
    /// when the scratch was sized for another batch shape.
    pub fn plan(&self, nb: usize, t: usize, dims: &Dims, sms: usize) -> ScanPlan {
        let (e, n) = (dims.d_inner, dims.d_state);
        let plan = ScanPlan::new(nb, t, e, sms);
        if plan.scratch_len(nb, e, n) > self.scratch {
            ScanPlan::with_blocks(t, self.scratch / (nb * e * n).max(1))
        } else {
            plan
        }
    }
}

/// Per-layer carried state for `nb` window slots.
#[derive(Debug)]
pub struct States {
    /// Window slots.
    pub nb: usize,
    /// Per layer, conv state `(nb, E, K-1)` f32.
    pub conv: Vec<DevBuf>,
    /// Per layer, SSM state `(nb, E, N)` f32.
    pub ssm: Vec<DevBuf>,
    /// Head carries `(nb, 4)` f32: `carry[cur]` holds the prediction for the next chunk's first row.
    pub carry: [DevBuf; 2],
    /// Which carry is current.
    pub cur: usize,
}

impl States {
    /// Frees the per-layer state (before a larger one is allocated) and leaves no window slots (`nb == 0`:
    /// every launch errors until a new `States` replaces this one).
    pub fn release(&mut self) {
        self.nb = 0;
        self.conv.clear();
        self.ssm.clear();
    }

    /// Allocates zeroed state for `nb` slots.
    pub fn new(stream: &Arc<CudaStream>, dims: &Dims, nb: usize) -> Result<States> {
        let e = dims.d_inner;
        let mut conv = Vec::with_capacity(dims.n_layer);
        let mut ssm = Vec::with_capacity(dims.n_layer);
        for _ in 0..dims.n_layer {
            conv.push(DevBuf::zeros(stream, nb * e * (dims.d_conv - 1) * 4)?);
            ssm.push(DevBuf::zeros(stream, nb * e * dims.d_state * 4)?);
        }
        let carry = [
            DevBuf::alloc(stream, nb * 16)?,
            DevBuf::alloc(stream, nb * 16)?,
        ];
        let s = States {
            nb,
            conv,
            ssm,
            carry,
            cur: 0,
        };
        s.reset(stream)?;
        Ok(s)
    }

    /// Enqueues a reset of every slot: zero conv and SSM state, no head context (NaN).
    pub fn reset(&self, stream: &Arc<CudaStream>) -> Result<()> {
        for b in self.conv.iter().chain(&self.ssm) {
            b.zero(stream)?;
        }
        self.carry[self.cur].fill_f32(stream, self.nb * 4, f32::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bytes_per_row() {
        let dims = Dims {
            d_model: 4,
            n_layer: 1,
            d_inner: 8,
            d_state: 2,
            d_conv: 4,
            dt_rank: 1,
            vocab_size: 12,
        };
        // tokens 1, resid 16, normed 16, xz 64, xc 32, xdbl 20, dt+y 64, mix 16, hidden 32, probs 32
        assert_eq!(
            bytes_per_row(&dims, Dtype::F32),
            1 + 16 + 16 + 64 + 32 + 20 + 64 + 16 + 32 + 32
        );
        assert!(bytes_per_row(&dims, Dtype::Bf16) < bytes_per_row(&dims, Dtype::F32));
    }

    #[test]
    fn test_max_state_windows() {
        let dims = Dims {
            d_model: 4,
            n_layer: 2,
            d_inner: 8,
            d_state: 2,
            d_conv: 4,
            dt_rank: 1,
            vocab_size: 12,
        };
        // 2 layers x 8 channels x (2 + 3) x 4 bytes + 32 bytes of head carries.
        assert_eq!(state_bytes_per_window(&dims), 2 * 8 * 5 * 4 + 32);
        // 293 bytes per f32 row: 1,000 rows budget 293,000 bytes, 832 windows of 352 bytes.
        assert_eq!(max_state_windows(&dims, Dtype::F32, 1000), 293_000 / 352);
        assert_eq!(max_state_windows(&dims, Dtype::F32, 1), 1);
        assert_eq!(max_state_windows(&dims, Dtype::F32, 0), 1);
        // mamba-130m-sized (768 x 24, E 1536, N 16, K 4): 2.8 MB of state a window, so a chunk of 4,096 rows
        // carries at most 66 windows in f32 (a group of 65,535 would ask for 184 GB).
        let big = Dims {
            d_model: 768,
            n_layer: 24,
            d_inner: 1536,
            d_state: 16,
            d_conv: 4,
            dt_rank: 48,
            vocab_size: 16,
        };
        let w = max_state_windows(&big, Dtype::F32, 4096);
        assert!(w * state_bytes_per_window(&big) <= 4096 * bytes_per_row(&big, Dtype::F32));
        assert!((w + 1) * state_bytes_per_window(&big) > 4096 * bytes_per_row(&big, Dtype::F32));
    }

    #[test]
    fn test_scratch_for_single_block_is_empty() {
        let dims = Dims {
            d_model: 4,
            n_layer: 1,
            d_inner: 8,
            d_state: 2,
            d_conv: 4,
            dt_rank: 1,
            vocab_size: 12,
        };
        // 64 rows make one time block: no scratch; 1,000 rows on 4 SMs make several.
        assert_eq!(scratch_for(64, 1, &dims, 4), 0);
        assert_eq!(scratch_for(640, 10, &dims, 4), 0);
        let plan = ScanPlan::new(1, 1000, 8, 4);
        assert!(plan.nblk > 1);
        assert_eq!(scratch_for(1000, 1, &dims, 4), plan.nblk * 8 * 2);
    }
}
