//! The CUDA engine: a Mamba-1 model on one GPU behind [`genomamba_model::engine::Engine`].
//!
//! One compute stream runs every kernel and GEMM in order; a second stream copies finished launch steps'
//! results (hidden states and probabilities, or pooling sums) to page-locked host buffers while the next step
//! computes (two device and two host slots, ordered by events), for a window streamed in chunks and for a
//! batch of windows alike. The host waits only for a step's copy before taking up its results.

mod batch;
mod bench;
mod caduceus;
mod forward;
mod launch;
mod mixer;
mod saved;
mod scan;
mod stream;
mod sums;
mod workspace;

pub use bench::{
    Bench, COMPARED_ROWS, DevicePeaks, EX2_PER_CLOCK_PER_SM, LayerBench, ScanBench, StageTime,
    VariantBench, copy_bandwidth, device_peaks,
};
pub use caduceus::CudaCaduceusEngine;

use std::ops::Range;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaEvent, CudaStream};
use genomamba_model::engine::{Dims, Engine, ModelInfo, Output, Want};
use genomamba_model::model::Model;
use genomamba_model::state::State;

use crate::buf::Pinned;
use crate::kernels::{D_CONVS, D_STATES, Dtype};
use crate::modules::Kernels;
use crate::probe::{DeviceInfo, context, cublas_present, info_of};
use crate::weights::{DevModel, upload};
use crate::{Error, Result};
use mixer::Gpu;
use stream::Stage;
use workspace::{States, Workspace, bytes_per_row, scratch_for};

/// Most rows one chunk may hold when the caller leaves the chunk size to the engine.
pub const AUTO_CHUNK_MAX: usize = 1 << 20;

/// A Mamba-1 model on a CUDA GPU.
pub struct CudaEngine {
    info: ModelInfo,
    dtype: Dtype,
    device: DeviceInfo,
    sms: usize,
    chunk: usize,
    kernels: Kernels,
    model: DevModel,
    ws: Workspace,
    states: States,
    stages: [Stage; 2],
    ready: [CudaEvent; 2],
    copied: [CudaEvent; 2],
    /// Buffers of the pooling sums.
    sums: sums::SumBufs,
    /// Whether slot 0's carried state belongs to the stream of `run` calls (a batch call clobbers it).
    streaming: bool,
    /// Tokens run in slot 0's window since its fresh start, or since the position of a restored state
    /// ([`genomamba_model::State::pos`]).
    pos: u64,
    blas: CudaBlas,
    copy: Arc<CudaStream>,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
}

impl Drop for CudaEngine {
    /// Drains both streams before the buffers go: the copy stream may still read device buffers that are freed
    /// on the compute stream, and write into page-locked ones.
    fn drop(&mut self) {
        let _ = self.synchronize();
    }
}

fn check_dims(dims: &Dims) -> Result<()> {
    if !D_STATES.contains(&dims.d_state) {
        return Err(Error::Unsupported(format!(
            "d_state {} (supported: {D_STATES:?})",
            dims.d_state
        )));
    }
    if !D_CONVS.contains(&dims.d_conv) {
        return Err(Error::Unsupported(format!(
            "d_conv {} (supported: {D_CONVS:?})",
            dims.d_conv
        )));
    }
    if dims.d_model == 0 || dims.d_inner == 0 || dims.dt_rank == 0 {
        return Err(Error::Unsupported("zero-sized model".into()));
    }
    Ok(())
}

/// Sets the scheduling policy of `ctx` (a primary context, shared by the process) to blocking sync, keeping
/// its other flags (cuCtxSetFlags replaces them all).
fn blocking_sync(ctx: &Arc<CudaContext>) -> Result<()> {
    use cudarc::driver::sys::{CUctx_flags, cuCtxGetFlags, cuCtxSetFlags};
    ctx.bind_to_thread()?;
    let mut flags = 0u32;
    // SAFETY: `ctx` is current on this thread (bound above) and `flags` is a valid out pointer.
    unsafe { cuCtxGetFlags(&mut flags) }.result()?;
    let flags = (flags & !(CUctx_flags::CU_CTX_SCHED_MASK as u32))
        | CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC as u32;
    // SAFETY: as above; only the scheduling bits changed, to a valid scheduling policy.
    unsafe { cuCtxSetFlags(flags) }.result()?;
    Ok(())
}

/// A GPU opened for an engine: its context, what the probe found, its SM count, a compute stream with cuBLAS
/// on it, and the kernels compiled for the model's sizes and activation dtype.
struct OpenGpu {
    ctx: Arc<CudaContext>,
    device: DeviceInfo,
    sms: usize,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    kernels: Kernels,
}

impl OpenGpu {
    /// Checks the sizes, probes GPU `ordinal` and cuBLAS, and compiles (or reuses) the kernels.
    fn new(ordinal: usize, dims: &Dims, dtype: Dtype) -> Result<OpenGpu> {
        check_dims(dims)?;
        let ctx = context(ordinal)?;
        if !cublas_present() {
            return Err(Error::LibraryMissing {
                lib: "cublas",
                hint: "put the directory of libcublas.so.13 and libcublasLt.so.13 (CUDA 13.0) on LD_LIBRARY_PATH"
                    .to_owned(),
            });
        }
        // The host sleeps while it waits for the GPU instead of spinning a core: a window takes milliseconds
        // to seconds, so a wake-up's few microseconds do not count, and the reader and writer threads of the
        // pipeline (and other jobs on a shared node) keep that core. A scheduling preference only: the engine
        // works either way, so a driver that refuses it is not an error.
        let _ = blocking_sync(&ctx);
        let device = info_of(&ctx)?;
        let sms = device.multiprocessors as usize;
        let (maj, min) = device.compute_capability;
        let arch = format!("sm_{maj}{min}");
        // SAFETY: every engine orders its work itself (one compute stream; the causal engine's copy stream is
        // ordered by its `ready`/`copied` events), so cudarc's per-slice event tracking is not needed.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream()?;
        let blas = CudaBlas::new(stream.clone())?;
        let kernels = Kernels::load(&ctx, dtype, dims.d_state, dims.d_conv, &arch)?;
        Ok(OpenGpu {
            ctx,
            device,
            sms,
            stream,
            blas,
            kernels,
        })
    }
}

impl CudaEngine {
    /// Uploads `model` to GPU `ordinal` and compiles its kernels. `chunk`: rows per chunk (0 = as many as
    /// fit in half the free memory, at most [`AUTO_CHUNK_MAX`]).
    pub fn new(model: &Model, ordinal: usize, dtype: Dtype, chunk: usize) -> Result<CudaEngine> {
        let dims = model.info.dims;
        let OpenGpu {
            ctx,
            device,
            sms,
            stream,
            blas,
            kernels,
        } = OpenGpu::new(ordinal, &dims, dtype)?;
        let copy = ctx.new_stream()?;
        let weights = upload(&stream, model, dtype)?;
        let per_row = bytes_per_row(&dims, dtype)
            + 8 * dims.d_inner * dims.d_state / crate::scan_plan::MIN_BLOCK;
        let chunk = if chunk > 0 {
            chunk
        } else {
            let (free, _) = ctx.mem_get_info()?;
            (free / 2 / per_row).clamp(1, AUTO_CHUNK_MAX)
        };
        if chunk > i32::MAX as usize {
            return Err(Error::TooLarge(format!("chunk of {chunk} rows")));
        }
        let ws = Workspace::new(
            &stream,
            &dims,
            dtype,
            chunk,
            scratch_for(chunk, 1, &dims, sms),
        )?;
        let states = States::new(&stream, &dims, 1)?;
        let stage = || -> Result<Stage> {
            Ok(Stage {
                hidden: None,
                probs: Pinned::new(&stream, chunk * 4)?,
                tokens: Pinned::new(&stream, chunk)?,
            })
        };
        let stages = [stage()?, stage()?];
        let ev = || ctx.new_event(None);
        let (ready, copied) = ([ev()?, ev()?], [ev()?, ev()?]);
        stream.synchronize()?;
        Ok(CudaEngine {
            info: model.info.clone(),
            dtype,
            device,
            sms,
            chunk,
            kernels,
            model: weights,
            ws,
            states,
            stages,
            ready,
            copied,
            sums: sums::SumBufs::default(),
            streaming: true,
            pos: 0,
            blas,
            copy,
            stream,
            ctx,
        })
    }

    /// Rows per chunk.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Activation dtype.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// What the device probe found.
    pub fn device_info(&self) -> &DeviceInfo {
        &self.device
    }

    /// The CUDA context (for [`copy_bandwidth`]).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The launch context of this engine's compute stream.
    fn gpu(&self) -> Gpu<'_> {
        Gpu {
            stream: &self.stream,
            blas: &self.blas,
            kernels: &self.kernels,
            dtype: self.dtype,
            dims: self.info.dims,
        }
    }

    /// Makes this engine's context current on the calling thread (an engine is `Send`; the raw driver and
    /// cuBLAS calls act on the current context). Called by each public entry point that touches the GPU.
    fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread()?;
        Ok(())
    }

    /// Blocks until all enqueued work on both streams is done; waits for both even when the first fails, and
    /// returns the first error.
    pub fn synchronize(&self) -> Result<()> {
        let compute = self.stream.synchronize();
        let copy = self.copy.synchronize();
        compute?;
        copy?;
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u8]) -> Result<()> {
        let vocab = self.info.dims.vocab_size;
        if let Some((offset, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, t)| usize::from(**t) >= vocab)
        {
            return Err(genomamba_model::Error::Token {
                token,
                offset,
                vocab,
            }
            .into());
        }
        Ok(())
    }
}

impl Engine for CudaEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn hidden_width(&self) -> usize {
        self.info.dims.d_model
    }

    fn compute_dtype(&self) -> &'static str {
        self.dtype.as_str()
    }

    fn is_causal(&self) -> bool {
        true
    }

    fn device(&self) -> String {
        format!(
            "cuda:{} ({}, {})",
            self.device.ordinal,
            self.device.name,
            self.dtype.as_str()
        )
    }

    fn run(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        want: Want,
        out: &mut Output,
    ) -> genomamba_model::Result<()> {
        self.bind()?;
        Ok(self.run_stream(tokens, fresh, want, out)?)
    }

    /// Saves the state the last `run` (or `run_sums`, `run_pooled`) left, after waiting for the GPU: per
    /// layer conv `(E, K-1)` and SSM `(E, N)` f32, the next base's distribution (`None` before any context)
    /// and `pos` (tokens since the fresh start, counted by this engine, plus the `pos` of a restored state).
    /// Errors after a batch call, which leaves no state to continue from.
    fn save_state(&mut self, into: &mut State) -> genomamba_model::Result<()> {
        self.bind()?;
        Ok(self.save_state_into(into)?)
    }

    /// Makes `from` (saved by this or another engine of the same model, the CPU's included) the state the next
    /// `run(.., fresh = false, ..)` continues from, also after a batch call; errors unless its shapes fit this
    /// model. The upload is finished when this returns.
    fn restore_state(&mut self, from: &State) -> genomamba_model::Result<()> {
        self.bind()?;
        Ok(self.restore_state_from(from)?)
    }

    fn prefers_batches(&self) -> bool {
        true
    }

    fn run_batch(
        &mut self,
        seqs: &[&[u8]],
        want: Want,
        outs: &mut Vec<Output>,
    ) -> genomamba_model::Result<()> {
        // Launch groups sized by the chunk and each group's longest sequence (batch.rs, group_by_length).
        Ok(CudaEngine::run_batch(self, seqs, 0, want, outs)?)
    }

    fn sums_on_device(&self) -> bool {
        true
    }

    fn run_sums(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        segments: &[Range<usize>],
        sums: &mut Vec<f64>,
    ) -> genomamba_model::Result<()> {
        Ok(CudaEngine::run_sums(self, tokens, fresh, segments, sums)?)
    }

    fn run_batch_sums(
        &mut self,
        seqs: &[&[u8]],
        segments: &[&[Range<usize>]],
        sums: &mut Vec<Vec<f64>>,
    ) -> genomamba_model::Result<()> {
        Ok(CudaEngine::run_batch_sums(self, seqs, 0, segments, sums)?)
    }
}
