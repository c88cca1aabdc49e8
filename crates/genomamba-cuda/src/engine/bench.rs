//! Timing helpers for the GPU benchmark (tests/gpu_bench.rs): the scan kernels' achieved bandwidth, and a
//! device-to-device copy measured in the same run as the ceiling to compare it with.

use std::sync::Arc;

use cudarc::driver::{CudaContext, result, sys::CUevent_flags};

use super::CudaEngine;
use super::stream::Step;
use crate::buf::DevBuf;
use crate::scan_plan::ScanPlan;
use crate::{Error, Result};

/// What [`CudaEngine::bench_scan`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanBench {
    /// Rows (time steps) scanned per call.
    pub rows: usize,
    /// Time blocks of the plan.
    pub nblk: usize,
    /// Mean milliseconds per scan (local + carry + output).
    pub ms: f64,
    /// Bytes the scan must move at least (inputs read once per pass, output written once).
    pub bytes: f64,
    /// `bytes / ms`, in GB/s.
    pub gbps: f64,
}

impl CudaEngine {
    /// Runs `tokens` (at most one chunk) once to fill the activations, then times `reps` scans of layer 0
    /// over them. The carried state is left undefined: start the next `run` fresh.
    pub fn bench_scan(&mut self, tokens: &[u8], reps: usize) -> Result<ScanBench> {
        let rows = tokens.len();
        if rows == 0 || rows > self.chunk {
            return Err(Error::TooLarge(format!(
                "bench_scan wants 1..={} tokens",
                self.chunk
            )));
        }
        self.check_tokens(tokens)?;
        self.states.reset(&self.stream)?;
        self.streaming = false;
        let step = Step {
            members: &[0],
            t0: 0,
            t: rows,
            reset: false,
        };
        self.upload_step(0, &[tokens], &step)?;
        self.forward(1, rows, 0, false)?;
        let dims = self.info.dims;
        let plan = ScanPlan::new(1, rows, dims.d_inner, self.sms);
        let ctx = self.stream.context();
        let start = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        self.scan(0, 1, rows, plan)?;
        start.record(&self.stream)?;
        for _ in 0..reps.max(1) {
            self.scan(0, 1, rows, plan)?;
        }
        end.record(&self.stream)?;
        end.synchronize()?;
        let ms = f64::from(start.elapsed_ms(&end)?) / reps.max(1) as f64;
        let (e, n, s) = (
            dims.d_inner as f64,
            dims.d_state as f64,
            self.dtype.size() as f64,
        );
        // scan_local reads dt, x, B; scan_output reads dt, x, z, B, C and writes y.
        let per_row = if plan.nblk > 1 {
            s * (2.0 * e + n)
        } else {
            0.0
        } + s * (4.0 * e + 2.0 * n);
        let bytes = per_row * rows as f64;
        Ok(ScanBench {
            rows,
            nblk: plan.nblk,
            ms,
            bytes,
            gbps: bytes / (ms * 1e6),
        })
    }
}

/// Device-to-device copy bandwidth on `ctx` in GB/s, counting bytes read plus bytes written, for a copy of
/// `bytes` bytes timed over `reps` repetitions.
pub fn copy_bandwidth(ctx: &Arc<CudaContext>, bytes: usize, reps: usize) -> Result<f64> {
    let stream = ctx.new_stream()?;
    let src = DevBuf::zeros(&stream, bytes)?;
    let dst = DevBuf::alloc(&stream, bytes)?;
    let start = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
    let end = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
    // SAFETY: both buffers hold `bytes` bytes and are distinct allocations.
    unsafe { result::memcpy_dtod_async(dst.ptr(), src.ptr(), bytes, stream.cu_stream()) }?;
    start.record(&stream)?;
    for _ in 0..reps.max(1) {
        // SAFETY: as above.
        unsafe { result::memcpy_dtod_async(dst.ptr(), src.ptr(), bytes, stream.cu_stream()) }?;
    }
    end.record(&stream)?;
    end.synchronize()?;
    let ms = f64::from(start.elapsed_ms(&end)?) / reps.max(1) as f64;
    Ok(2.0 * bytes as f64 / (ms * 1e6))
}
