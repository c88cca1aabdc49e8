//! The CUDA engine of genomamba: Mamba-1 inference on NVIDIA GPUs through cudarc.
//!
//! - **No CUDA needed to build or to run without a GPU.** cudarc loads `libcuda.so.1`, `libnvrtc.so.13` and
//!   `libcublas.so.13` at run time (feature `dynamic-loading`), and every entry point checks that the
//!   library is present first, so a machine without a driver or GPU gets
//!   [`Error::GpuUnavailable`] from [`probe`] and [`cuda_engine`], never a panic.
//! - **Supported drivers:** bindings for CUDA 13.0 (cudarc feature `cuda-13000`), so NVIDIA driver
//!   **580 or newer** (any driver reporting CUDA >= 13.0), with CUDA 13.x libnvrtc and libcublas on the loader
//!   path. Kernels are compiled by NVRTC to a CUBIN for the device's own `sm_XY`, so the PTX-version limits of
//!   older drivers do not apply; a CUDA 13 NVRTC supports compute capability 7.5 (Turing) and newer. The
//!   kernels are tuned for Hopper (H100/H200).
//! - **Kernels** live in `kernels/*.cu` (self-contained CUDA C, header-free, see kernels/README.md),
//!   specialised at NVRTC compile time by activation dtype, `d_state` and `d_conv`, compiled once per process.
//! - **Projections** run on cuBLAS: f32 (`CUBLAS_COMPUTE_32F`) or bf16 with f32 accumulation.
//!
//! Entry points: [`probe`], [`cuda_engine`] (a boxed [`genomamba_model::engine::Engine`]), and
//! [`CudaEngine`] for the extra batch and pooled-output calls; [`cuda_caduceus_engine`] and
//! [`CudaCaduceusEngine`] for bidirectional Caduceus models (same kernels plus `kernels/bidir.cu`).

mod buf;
pub mod compile;
mod engine;
mod error;
mod gemm;
pub mod kernels;
pub mod modules;
mod probe;
pub mod scan_plan;
mod weights;

pub use engine::{
    AUTO_CHUNK_MAX, Bench, COMPARED_ROWS, CudaCaduceusEngine, CudaEngine, DevicePeaks,
    EX2_PER_CLOCK_PER_SM, LayerBench, ScanBench, StageTime, VariantBench, copy_bandwidth,
    device_peaks,
};
pub use error::{Error, Result};
pub use kernels::Dtype;
pub use probe::{
    DeviceInfo, MIN_DRIVER, cublas_present, device_count, driver_cuda_version, driver_present,
    nvrtc_present, probe,
};

use genomamba_model::caduceus::{CaduceusModel, Hidden};
use genomamba_model::engine::Engine;
use genomamba_model::model::Model;

/// Builds a CUDA engine for `model` on GPU `ordinal` with activations in `dtype` and `chunk` rows per chunk
/// (0 = automatic). Errors (never panics) when there is no driver, no such GPU, or no NVRTC/cuBLAS.
pub fn cuda_engine(
    model: &Model,
    ordinal: usize,
    dtype: Dtype,
    chunk: usize,
) -> Result<Box<dyn Engine>> {
    Ok(Box::new(CudaEngine::new(model, ordinal, dtype, chunk)?))
}

/// Builds a CUDA engine for a Caduceus `model` on GPU `ordinal` (activations in `dtype`, scans in chunks of
/// `chunk` rows, 0 = 65,536), giving `hidden` as a PS model's embedding. Errors (never panics) as
/// [`cuda_engine`].
pub fn cuda_caduceus_engine(
    model: &CaduceusModel,
    ordinal: usize,
    dtype: Dtype,
    chunk: usize,
    hidden: Hidden,
) -> Result<Box<dyn Engine>> {
    Ok(Box::new(CudaCaduceusEngine::new(
        model, ordinal, dtype, chunk, hidden,
    )?))
}
