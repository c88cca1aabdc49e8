//! NVRTC: compiles a kernel file under one specialisation to a CUBIN for one GPU architecture, keeping the
//! program log (with `--ptxas-options=-v`: registers, stack, spills per entry point).
//!
//! CUBIN rather than PTX: a CUBIN for `sm_90` loads on any driver that runs the GPU, whereas PTX from an NVRTC
//! newer than the driver is refused (`CUDA_ERROR_UNSUPPORTED_PTX_VERSION`).

use std::ffi::{CStr, c_char};

use cudarc::nvrtc::{result, sys};

use crate::kernels::{KernelId, Spec, full_source};
use crate::probe::nvrtc_present;
use crate::{Error, Result};

/// A compiled kernel file.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Which file.
    pub kernel: KernelId,
    /// Under which specialisation.
    pub spec: Spec,
    /// The CUBIN image.
    pub cubin: Vec<u8>,
    /// NVRTC's program log (ptxas statistics).
    pub log: String,
}

/// Per-function resource use parsed from a ptxas `-v` log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entry point name.
    pub function: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of spill stores plus spill loads.
    pub spill_bytes: u32,
    /// Bytes of stack frame.
    pub stack_bytes: u32,
}

/// The NVRTC options used for `arch` (e.g. `sm_90`) and `spec`.
pub fn options(arch: &str, spec: &Spec) -> Vec<String> {
    let mut o = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_owned(),
        "--use_fast_math".to_owned(),
        "--ptxas-options=-v".to_owned(),
    ];
    o.extend(spec.defines());
    o
}

struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by nvrtcCreateProgram and is destroyed exactly once, here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn log_of(prog: &Program) -> String {
    // SAFETY: `prog` is a live program; the returned buffer is NUL-terminated by NVRTC.
    match unsafe { result::get_program_log(prog.0) } {
        Ok(buf) if !buf.is_empty() => {
            // SAFETY: NVRTC writes a NUL-terminated string of the size it reported.
            unsafe { CStr::from_ptr(buf.as_ptr() as *const c_char) }
                .to_string_lossy()
                .into_owned()
        }
        _ => String::new(),
    }
}

/// Compiles `kernel` under `spec` for `arch`. `Err(LibraryMissing)` when libnvrtc cannot be loaded.
pub fn compile(kernel: KernelId, spec: &Spec, arch: &str) -> Result<Compiled> {
    if !nvrtc_present() {
        return Err(Error::LibraryMissing {
            lib: "nvrtc",
            hint: "put the directory of libnvrtc.so.13 (CUDA 13.0: /usr/local/cuda/lib64, or pip \
                   nvidia-cuda-nvrtc==13.0.88's nvidia/cu13/lib) on LD_LIBRARY_PATH"
                .to_owned(),
        });
    }
    let src = std::ffi::CString::new(full_source(kernel))
        .map_err(|_| Error::Unsupported(format!("{} contains a NUL byte", kernel.file())))?;
    let name = std::ffi::CString::new(kernel.file()).unwrap_or_default();
    let opts = options(arch, spec);
    let fail = |status, log| Error::Compile {
        kernel: kernel.file().to_owned(),
        options: opts.join(" "),
        status,
        log,
    };
    let prog =
        Program(result::create_program(&src, Some(&name)).map_err(|s| fail(s, String::new()))?);
    // SAFETY: `prog` is live and the options are plain ASCII without NUL bytes.
    if let Err(status) = unsafe { result::compile_program(prog.0, &opts) } {
        return Err(fail(status, log_of(&prog)));
    }
    let log = log_of(&prog);
    let mut size = 0usize;
    // SAFETY: `prog` compiled successfully for a real architecture, so it has a CUBIN; `size` is an out pointer.
    unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
        .result()
        .map_err(|s| fail(s, log.clone()))?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` has exactly the size NVRTC reported.
    unsafe { sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr() as *mut c_char) }
        .result()
        .map_err(|s| fail(s, log.clone()))?;
    Ok(Compiled {
        kernel,
        spec: *spec,
        cubin,
        log,
    })
}

fn number_before(line: &str, suffix: &str) -> Option<u32> {
    let head = &line[..line.find(suffix)?];
    head.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Parses a ptxas `-v` log into per-function usage.
pub fn parse_usage(log: &str) -> Vec<Usage> {
    let mut out: Vec<Usage> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            out.push(Usage {
                function: name.to_owned(),
                ..Usage::default()
            });
        } else if let Some(u) = out.last_mut() {
            if line.contains("bytes stack frame") {
                u.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                u.spill_bytes = number_before(line, "bytes spill stores").unwrap_or(0)
                    + number_before(line, "bytes spill loads").unwrap_or(0);
            }
            if line.contains("Used ") && line.contains(" registers") {
                u.registers = number_before(line, " registers").unwrap_or(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Dtype;

    const LOG: &str = "ptxas info    : 0 bytes gmem\n\
        ptxas info    : Compiling entry function 'scan_local' for 'sm_90'\n\
        ptxas info    : Function properties for scan_local\n    \
        8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
        ptxas info    : Used 64 registers, used 0 barriers, 432 bytes cmem[0]\n\
        ptxas info    : Compiling entry function 'scan_carry' for 'sm_90'\n\
        ptxas info    : Function properties for scan_carry\n    \
        0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
        ptxas info    : Used 18 registers, used 0 barriers, 384 bytes cmem[0]\n";

    #[test]
    fn test_parse_usage() {
        let u = parse_usage(LOG);
        assert_eq!(u.len(), 2);
        assert_eq!(
            u[0],
            Usage {
                function: "scan_local".into(),
                registers: 64,
                spill_bytes: 16,
                stack_bytes: 8
            }
        );
        assert_eq!(
            u[1],
            Usage {
                function: "scan_carry".into(),
                registers: 18,
                spill_bytes: 0,
                stack_bytes: 0
            }
        );
    }

    #[test]
    fn test_options() {
        let spec = Spec::for_kernel(KernelId::Conv, Dtype::F32, 16, 4);
        let o = options("sm_90", &spec);
        assert_eq!(o[0], "--gpu-architecture=sm_90");
        assert!(o.contains(&"-DD_CONV=4".to_owned()));
        assert!(!o.iter().any(|s| s.starts_with("-DD_STATE")));
    }

    #[test]
    fn test_compile_without_nvrtc_is_an_error_not_a_panic() {
        if nvrtc_present() {
            return; // covered by the nvrtc-check test
        }
        let spec = Spec::for_kernel(KernelId::Head, Dtype::F32, 16, 4);
        assert!(matches!(
            compile(KernelId::Head, &spec, "sm_90"),
            Err(Error::LibraryMissing { .. })
        ));
    }
}
