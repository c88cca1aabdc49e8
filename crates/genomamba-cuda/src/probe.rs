//! Is there a driver, a GPU, NVRTC, cuBLAS? Every check returns an error, never a panic.
//!
//! cudarc's dynamic loading panics when a library is absent and a function of it is called, so each library
//! is first probed with its `is_culib_present` (a plain `dlopen` attempt) before any call into it.

use std::sync::Arc;

use cudarc::driver::{CudaContext, sys::CUdevice_attribute};

use crate::{Error, Result};

/// Oldest driver the crate is built for: CUDA 13.0 (driver 580), cudarc feature `cuda-13000`.
pub const MIN_DRIVER: &str = "580 (CUDA 13.0)";

/// What [`probe`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device ordinal probed.
    pub ordinal: usize,
    /// Marketing name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Compute capability `(major, minor)`, e.g. `(9, 0)`.
    pub compute_capability: (i32, i32),
    /// Total device memory in bytes.
    pub total_memory: usize,
    /// Free device memory in bytes at probe time.
    pub free_memory: usize,
    /// Number of streaming multiprocessors.
    pub multiprocessors: u32,
    /// Driver's CUDA version as `major * 1000 + minor * 10` (13000 for CUDA 13.0).
    pub driver_version: i32,
    /// Whether libnvrtc (needed to compile kernels) could be loaded.
    pub nvrtc: bool,
    /// Whether libcublas (needed for the projections) could be loaded.
    pub cublas: bool,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (maj, min) = self.compute_capability;
        write!(
            f,
            "cuda:{} ({}, sm_{maj}{min}, {:.1} GiB, {} SMs, driver CUDA {}.{})",
            self.ordinal,
            self.name,
            self.total_memory as f64 / (1u64 << 30) as f64,
            self.multiprocessors,
            self.driver_version / 1000,
            (self.driver_version % 1000) / 10
        )
    }
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::GpuUnavailable {
        reason: reason.into(),
    }
}

/// Whether `libcuda.so.1` (the driver) can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library by name and drops the handle; calls no CUDA function.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether `libnvrtc.so.13` can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: as in `driver_present`, a dlopen attempt only.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Whether `libcublas.so.13` (and so its `libcublasLt.so.13`) can be loaded.
pub fn cublas_present() -> bool {
    // SAFETY: as in `driver_present`, a dlopen attempt only.
    unsafe { cudarc::cublas::sys::is_culib_present() }
}

/// Opens a context on `ordinal` after checking that the driver library exists; Err instead of cudarc's panic.
pub(crate) fn context(ordinal: usize) -> Result<Arc<CudaContext>> {
    let count = device_count()?;
    if ordinal >= count {
        return Err(unavailable(format!(
            "device {ordinal} requested, the driver sees {count} device(s)"
        )));
    }
    CudaContext::new(ordinal)
        .map_err(|e| unavailable(format!("creating a context on device {ordinal}: {e}")))
}

fn driver_version() -> Result<i32> {
    let mut v = 0i32;
    // SAFETY: the driver library is loaded (checked by `context` or `driver_cuda_version`), and `v` is a valid
    // out pointer.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    r.result()?;
    Ok(v)
}

/// The CUDA version of the installed driver as `major * 1000 + minor * 10` (13000 for CUDA 13.0), with no GPU
/// touched; `Err(GpuUnavailable)` when there is no driver library.
pub fn driver_cuda_version() -> Result<i32> {
    if !driver_present() {
        return Err(unavailable(
            "the NVIDIA driver library libcuda.so.1 is not on the loader path (no driver installed?)",
        ));
    }
    driver_version()
}

/// Number of GPUs the driver sees; `Err(GpuUnavailable)` without a driver, or when it fails to initialise.
pub fn device_count() -> Result<usize> {
    if !driver_present() {
        return Err(unavailable(
            "the NVIDIA driver library libcuda.so.1 is not on the loader path (no driver installed?)",
        ));
    }
    let count = CudaContext::device_count()
        .map_err(|e| unavailable(format!("cuInit/cuDeviceGetCount: {e}")))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Probes device `ordinal`: name, compute capability, memory. `Err(GpuUnavailable)` without a driver or GPU.
pub fn probe(ordinal: usize) -> Result<DeviceInfo> {
    let ctx = context(ordinal)?;
    info_of(&ctx)
}

pub(crate) fn info_of(ctx: &Arc<CudaContext>) -> Result<DeviceInfo> {
    let (free_memory, total_memory) = ctx.mem_get_info()?;
    let sms = ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    Ok(DeviceInfo {
        ordinal: ctx.ordinal(),
        name: ctx.name()?,
        compute_capability: ctx.compute_capability()?,
        total_memory,
        free_memory,
        multiprocessors: u32::try_from(sms).unwrap_or(1),
        driver_version: driver_version()?,
        nvrtc: nvrtc_present(),
        cublas: cublas_present(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_probe_never_panics() {
        // On a machine without a driver this must be a clean error; with one, a consistent answer.
        match probe(0) {
            Ok(info) => {
                assert!(info.total_memory > 0);
                assert!(info.compute_capability.0 >= 1);
            }
            Err(Error::GpuUnavailable { reason }) => assert!(!reason.is_empty()),
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }

    #[test]
    fn test_probe_out_of_range_ordinal() {
        let r = probe(1 << 20);
        assert!(matches!(r, Err(Error::GpuUnavailable { .. })), "{r:?}");
    }

    #[test]
    fn test_display() {
        let info = DeviceInfo {
            ordinal: 0,
            name: "NVIDIA H200".into(),
            compute_capability: (9, 0),
            total_memory: 150_754_820_096,
            free_memory: 0,
            multiprocessors: 132,
            driver_version: 13000,
            nvrtc: true,
            cublas: true,
        };
        assert_eq!(
            info.to_string(),
            "cuda:0 (NVIDIA H200, sm_90, 140.4 GiB, 132 SMs, driver CUDA 13.0)"
        );
    }
}
