//! Compiles every kernel under every specialisation for sm_90 through NVRTC (no GPU needed) and checks
//! ptxas's resource report: no spills and no stack frame (local memory) in any kernel.
//!
//! Run with `--features nvrtc-check` and libnvrtc.so.13 on the loader path (see nvrtc-check.sh). Without
//! NVRTC the test skips, unless `REQUIRE_NVRTC=1`, when it fails. With `GENOMAMBA_CUBIN_OUT=DIR` it also
//! writes each CUBIN there under the name `GENOMAMBA_CUBIN_DIR` expects at run time.
#![cfg(feature = "nvrtc-check")]

use genomamba_cuda::compile::{compile, parse_usage};
use genomamba_cuda::kernels::all_specs;
use genomamba_cuda::modules::cubin_name;
use genomamba_cuda::nvrtc_present;

const ARCH: &str = "sm_90";

#[test]
fn test_kernels_compile_for_sm90_without_spills() -> Result<(), Box<dyn std::error::Error>> {
    if !nvrtc_present() {
        if std::env::var("REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
            return Err(
                "REQUIRE_NVRTC=1 but libnvrtc.so.13 cannot be loaded (set LD_LIBRARY_PATH)".into(),
            );
        }
        eprintln!("skipping: libnvrtc.so.13 not found (set REQUIRE_NVRTC=1 to fail instead)");
        return Ok(());
    }
    let out_dir = std::env::var_os("GENOMAMBA_CUBIN_OUT").map(std::path::PathBuf::from);
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut problems = Vec::new();
    let mut compiled = 0;
    for (kernel, spec) in all_specs() {
        let t0 = std::time::Instant::now();
        let c = compile(kernel, &spec, ARCH)?;
        assert!(
            c.cubin.len() > 64,
            "{} {}: empty CUBIN",
            kernel.file(),
            spec.tag()
        );
        let usage = parse_usage(&c.log);
        for f in kernel.functions() {
            let Some(u) = usage.iter().find(|u| u.function == *f) else {
                problems.push(format!(
                    "{} {}: no ptxas report for {f}:\n{}",
                    kernel.file(),
                    spec.tag(),
                    c.log
                ));
                continue;
            };
            println!(
                "{:<11} {:<14} {:<18} {:>3} registers, {:>3} B stack, {:>3} B spill   ({} ms, {} B cubin)",
                kernel.file(),
                spec.tag(),
                f,
                u.registers,
                u.stack_bytes,
                u.spill_bytes,
                t0.elapsed().as_millis(),
                c.cubin.len()
            );
            if u.spill_bytes > 0 {
                problems.push(format!(
                    "{} {} {f}: {} bytes of spills",
                    kernel.file(),
                    spec.tag(),
                    u.spill_bytes
                ));
            }
        }
        if let Some(d) = &out_dir {
            std::fs::write(d.join(cubin_name(kernel, &spec, ARCH)), &c.cubin)?;
        }
        compiled += 1;
    }
    assert!(compiled >= 24, "only {compiled} specialisations compiled");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
