//! `genomamba version`: what this build is and what it finds on this machine (CPU threads and SIMD level, the
//! NVIDIA driver, NVRTC, cuBLAS and the GPUs, where `--device auto` would run, the embedded model), as text or
//! as one JSON object (`--json`), for bug reports and pipeline provenance. `--version` stays one line.

use std::io::Write;

use anyhow::Context;
use genomamba_model::{AnyModel, Simd};
use serde_json::{Value, json};

use crate::args::VersionArgs;

/// The git commit the binary was built from (`build.rs`), or `unknown`.
pub const COMMIT: &str = env!("GENOMAMBA_COMMIT");

/// `major.minor` of a CUDA version written as `major * 1000 + minor * 10`.
fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// What the CUDA side finds: the driver, libraries and GPUs, and where `--device auto` would run.
fn cuda_json() -> Value {
    let cubin_dir =
        std::env::var_os("GENOMAMBA_CUBIN_DIR").map(|d| d.to_string_lossy().into_owned());
    let (nvrtc, cublas) = (
        genomamba_cuda::nvrtc_present(),
        genomamba_cuda::cublas_present(),
    );
    let driver = genomamba_cuda::driver_cuda_version().map(cuda_version);
    let mut devices = Vec::new();
    let mut problems = Vec::new();
    match genomamba_cuda::device_count() {
        Ok(count) => {
            for ordinal in 0..count {
                match genomamba_cuda::probe(ordinal) {
                    Ok(info) => devices.push(json!({
                        "ordinal": info.ordinal,
                        "name": info.name,
                        "compute_capability": format!("{}.{}", info.compute_capability.0, info.compute_capability.1),
                        "memory_bytes": info.total_memory,
                        "free_memory_bytes": info.free_memory,
                        "multiprocessors": info.multiprocessors,
                    })),
                    Err(e) => problems.push(format!("cuda:{ordinal}: {e}")),
                }
            }
            if count == 0 {
                problems.push("the driver sees no GPU".into());
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // The order `--device auto` meets them in (device.rs): GPU 0, then the libraries its engine loads.
    let auto_problem = if devices.first().is_none_or(|d| d["ordinal"] != 0) {
        Some(
            problems
                .first()
                .cloned()
                .unwrap_or_else(|| "no GPU 0".into()),
        )
    } else if !cublas {
        Some("libcublas.so.13 is not on the loader path".into())
    } else if !nvrtc && cubin_dir.is_none() {
        Some("libnvrtc.so.13 is not on the loader path and GENOMAMBA_CUBIN_DIR is not set".into())
    } else {
        None
    };
    json!({
        "built_for_driver": genomamba_cuda::MIN_DRIVER,
        "driver_cuda_version": driver.as_ref().ok(),
        "nvrtc": nvrtc,
        "cublas": cublas,
        "cubin_dir": cubin_dir,
        "devices": devices,
        "problems": problems,
        "auto_device": if auto_problem.is_none() { "cuda:0" } else { "cpu" },
        "auto_reason": auto_problem,
    })
}

/// The whole report.
fn report() -> anyhow::Result<Value> {
    let model = AnyModel::Mamba(std::sync::Arc::new(
        crate::embedded::load().context("loading the embedded model")?,
    ));
    let info = model.info();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(json!({
        "tool": "genomamba",
        "version": env!("CARGO_PKG_VERSION"),
        "commit": COMMIT,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        "cpu": {
            "threads_available": threads,
            "simd": Simd::best().name(),
            "simd_levels": Simd::available().iter().map(|s| s.name()).collect::<Vec<_>>(),
        },
        "cuda": cuda_json(),
        "embedded_model": {
            "name": info.name,
            "format": info.format.as_str(),
            "sha256": info.sha256,
            "parameters": info.n_params,
            "d_model": info.dims.d_model,
            "n_layer": info.dims.n_layer,
        },
    }))
}

/// The report as aligned `key: value` lines.
fn text(r: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let cuda = &r["cuda"];
    let found = |b: &Value| {
        if b.as_bool() == Some(true) {
            "found"
        } else {
            "not found"
        }
    };
    let mut lines = vec![
        format!(
            "genomamba {} (commit {}, {} build, {})",
            s(&r["version"]),
            s(&r["commit"]),
            s(&r["build"]),
            s(&r["target"])
        ),
        format!(
            "cpu:        {} threads available; SIMD {} (this CPU has: {})",
            r["cpu"]["threads_available"],
            s(&r["cpu"]["simd"]),
            r["cpu"]["simd_levels"]
                .as_array()
                .map(|l| l.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
        format!(
            "cuda:       built for NVIDIA drivers >= {}, libraries loaded at run time",
            s(&cuda["built_for_driver"])
        ),
        format!(
            "driver:     {}",
            cuda["driver_cuda_version"]
                .as_str()
                .map_or("not found (libcuda.so.1)".into(), |v| format!("CUDA {v}"))
        ),
        format!("nvrtc:      libnvrtc.so.13 {}", found(&cuda["nvrtc"])),
        format!("cublas:     libcublas.so.13 {}", found(&cuda["cublas"])),
    ];
    if let Some(dir) = cuda["cubin_dir"].as_str() {
        lines.push(format!(
            "cubins:     prebuilt in {dir} (GENOMAMBA_CUBIN_DIR)"
        ));
    }
    for d in cuda["devices"].as_array().into_iter().flatten() {
        lines.push(format!(
            "gpu:        cuda:{} {}, compute capability {}, {:.1} GiB, {} SMs",
            d["ordinal"],
            s(&d["name"]),
            s(&d["compute_capability"]),
            d["memory_bytes"].as_f64().unwrap_or(0.0) / f64::from(1u32 << 30),
            d["multiprocessors"]
        ));
    }
    for p in cuda["problems"].as_array().into_iter().flatten() {
        lines.push(format!("gpu:        {}", s(p)));
    }
    let first_problem = cuda["problems"].get(0).and_then(Value::as_str);
    lines.push(match cuda["auto_reason"].as_str() {
        None => format!(
            "auto:       --device auto runs on {}",
            s(&cuda["auto_device"])
        ),
        // Said just above.
        Some(why) if Some(why) == first_problem => {
            "auto:       --device auto runs on the CPU".into()
        }
        Some(why) => format!("auto:       --device auto runs on the CPU ({why})"),
    });
    let m = &r["embedded_model"];
    lines.push(format!(
        "model:      {}, {}, d_model {} x {} layers, {} parameters, sha256 {}",
        s(&m["name"]),
        s(&m["format"]),
        m["d_model"],
        m["n_layer"],
        m["parameters"],
        s(&m["sha256"])
    ));
    lines.join("\n")
}

/// Prints the report.
pub fn version(args: &VersionArgs) -> anyhow::Result<()> {
    let report = report()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{}", text(&report))?;
    }
    out.flush()?;
    Ok(())
}
