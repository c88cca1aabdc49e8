//! Loads the kernels for one model specialisation into a context: each (file, specialisation, arch) is
//! compiled once per process by NVRTC and cached as a CUBIN; `GENOMAMBA_CUBIN_DIR` may hold prebuilt CUBINs
//! (written by the `nvrtc-check` test with `GENOMAMBA_CUBIN_OUT`) for machines without libnvrtc.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction};
use cudarc::nvrtc::Ptx;

use crate::compile::compile;
use crate::kernels::{Dtype, KernelId, ScanTuning, Spec};
use crate::{Error, Result};

type Key = (KernelId, Spec, String);

fn cache() -> &'static Mutex<HashMap<Key, Arc<Vec<u8>>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Vec<u8>>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// File name of a prebuilt CUBIN: `<stem>-<tag>-<arch>.cubin`, e.g. `scan-f32-n16-k0-sm_90.cubin`.
pub fn cubin_name(kernel: KernelId, spec: &Spec, arch: &str) -> String {
    let stem = kernel.file().trim_end_matches(".cu");
    format!("{stem}-{}-{arch}.cubin", spec.tag())
}

/// The CUBIN for `kernel` under `spec` on `arch`: from the process cache, a prebuilt file, or NVRTC.
pub fn cubin(kernel: KernelId, spec: &Spec, arch: &str) -> Result<Arc<Vec<u8>>> {
    let key = (kernel, *spec, arch.to_owned());
    if let Some(c) = cache().lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let prebuilt = std::env::var_os("GENOMAMBA_CUBIN_DIR")
        .map(|d| PathBuf::from(d).join(cubin_name(kernel, spec, arch)))
        .filter(|p| p.is_file());
    let bytes = match prebuilt {
        Some(p) => std::fs::read(&p)
            .map_err(|e| Error::Unsupported(format!("reading {}: {e}", p.display())))?,
        None => compile(kernel, spec, arch)?.cubin,
    };
    let bytes = Arc::new(bytes);
    if let Ok(mut m) = cache().lock() {
        m.insert(key, bytes.clone());
    }
    Ok(bytes)
}

/// Every entry point the engine launches, loaded for one (dtype, d_state, d_conv).
#[derive(Clone, Debug)]
pub struct Kernels {
    /// embed.cu
    pub embed_gather: CudaFunction,
    /// embed.cu
    pub add_bias: CudaFunction,
    /// rmsnorm.cu
    pub add_rmsnorm: CudaFunction,
    /// rmsnorm.cu
    pub add_rmsnorm_f32: CudaFunction,
    /// conv.cu
    pub conv_silu: CudaFunction,
    /// conv.cu
    pub conv_state_update: CudaFunction,
    /// scan.cu
    pub scan_local: CudaFunction,
    /// scan.cu
    pub scan_carry: CudaFunction,
    /// scan.cu
    pub scan_output: CudaFunction,
    /// head.cu
    pub base_head: CudaFunction,
    /// pool.cu
    pub sum_tiles: CudaFunction,
    /// pool.cu
    pub sum_tile_runs: CudaFunction,
    /// bidir.cu
    pub flip_f32: CudaFunction,
    /// bidir.cu
    pub combine_rows: CudaFunction,
    /// bidir.cu
    pub add_f32: CudaFunction,
    /// bidir.cu
    pub rcps_hidden: CudaFunction,
    /// bidir.cu
    pub mlm_head: CudaFunction,
}

impl Kernels {
    /// Compiles (or reuses) and loads every kernel for `arch` (e.g. `sm_90`).
    pub fn load(
        ctx: &Arc<CudaContext>,
        dtype: Dtype,
        d_state: usize,
        d_conv: usize,
        arch: &str,
    ) -> Result<Kernels> {
        let mut modules = HashMap::new();
        for k in KernelId::ALL {
            let spec = Spec::for_kernel(k, dtype, d_state, d_conv);
            let bin = cubin(k, &spec, arch)?;
            modules.insert(k, ctx.load_module(Ptx::from_binary(bin.as_ref().clone()))?);
        }
        let f = |k: KernelId, name: &str| -> Result<CudaFunction> {
            let m = modules
                .get(&k)
                .ok_or_else(|| Error::Unsupported(format!("module {} not loaded", k.file())))?;
            Ok(m.load_function(name)?)
        };
        Ok(Kernels {
            embed_gather: f(KernelId::Embed, "embed_gather")?,
            add_bias: f(KernelId::Embed, "add_bias")?,
            add_rmsnorm: f(KernelId::RmsNorm, "add_rmsnorm")?,
            add_rmsnorm_f32: f(KernelId::RmsNorm, "add_rmsnorm_f32")?,
            conv_silu: f(KernelId::Conv, "conv_silu")?,
            conv_state_update: f(KernelId::Conv, "conv_state_update")?,
            scan_local: f(KernelId::Scan, "scan_local")?,
            scan_carry: f(KernelId::Scan, "scan_carry")?,
            scan_output: f(KernelId::Scan, "scan_output")?,
            base_head: f(KernelId::Head, "base_head")?,
            sum_tiles: f(KernelId::Pool, "sum_tiles")?,
            sum_tile_runs: f(KernelId::Pool, "sum_tile_runs")?,
            flip_f32: f(KernelId::Bidir, "flip_f32")?,
            combine_rows: f(KernelId::Bidir, "combine_rows")?,
            add_f32: f(KernelId::Bidir, "add_f32")?,
            rcps_hidden: f(KernelId::Bidir, "rcps_hidden")?,
            mlm_head: f(KernelId::Bidir, "mlm_head")?,
        })
    }

    /// These kernels with the scan's three replaced by the variant `tuning` of `scan.cu` for `dtype` and
    /// `d_state` (compiled, or read from `GENOMAMBA_CUBIN_DIR`, like the rest). For the benchmark.
    pub fn with_scan(
        &self,
        ctx: &Arc<CudaContext>,
        dtype: Dtype,
        d_state: usize,
        tuning: ScanTuning,
        arch: &str,
    ) -> Result<Kernels> {
        let spec = Spec::scan(dtype, d_state, tuning);
        let bin = cubin(KernelId::Scan, &spec, arch)?;
        let m = ctx.load_module(Ptx::from_binary(bin.as_ref().clone()))?;
        Ok(Kernels {
            scan_local: m.load_function("scan_local")?,
            scan_carry: m.load_function("scan_carry")?,
            scan_output: m.load_function("scan_output")?,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cubin_name() {
        let s = Spec::for_kernel(KernelId::Scan, Dtype::F32, 16, 4);
        assert_eq!(
            cubin_name(KernelId::Scan, &s, "sm_90"),
            "scan-f32-n16-k0-sm_90.cubin"
        );
    }
}
