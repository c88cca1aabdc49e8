//! GPU benchmark (ignored; run by tests/gpu/run.sh): bases/s over a 1,048,576-base window for random models
//! of d_model x layers 128x4, 256x16, 768x24 in f32 and bf16, and where the time goes:
//! - each stage of layer 0 timed alone, the GEMMs in TFLOP/s;
//! - the scan's achieved bandwidth against a device copy measured in the same run, and its exp2 rate against
//!   the special-function units' peak;
//! - the scan under other time-block counts than the engine's plan;
//! - the scan as each candidate variant of `scan.cu` (`ScanTuning::CANDIDATES`). A variant's output must
//!   match the default's, or the test fails at the end, after every measurement.
//!
//! Writes one JSON object per line to `$GENOMAMBA_BENCH_OUT` (default `target/gpu-bench.jsonl`) and prints
//! them. `GENOMAMBA_BENCH_ONLY=768x24` runs one size; `GENOMAMBA_BENCH_WINDOW` sets another window length (a
//! quick check on the CUDA emulation).

#[path = "support/random_model.rs"]
mod random_model;

use std::io::Write;
use std::time::Instant;

use genomamba_cuda::kernels::ScanTuning;
use genomamba_cuda::{CudaEngine, Dtype, copy_bandwidth, device_peaks, probe};
use genomamba_model::engine::{Engine, Output, Want};
use random_model::{random_model, random_tokens};
use serde_json::{Map, Value, json};

/// The window: 1,048,576 bases.
const WINDOW: usize = 1 << 20;

/// Time-block counts tried besides the engine's plan, as multiples of it.
const NBLK_FACTORS: [f64; 4] = [0.25, 0.5, 2.0, 4.0];

#[test]
#[ignore = "needs a CUDA device"]
fn bench_window_throughput() -> Result<(), Box<dyn std::error::Error>> {
    let info = probe(0)?;
    let path =
        std::env::var("GENOMAMBA_BENCH_OUT").unwrap_or_else(|_| "target/gpu-bench.jsonl".into());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut emit = |v: Value| -> std::io::Result<()> {
        println!("{v}");
        writeln!(file, "{v}")
    };
    let window = match std::env::var("GENOMAMBA_BENCH_WINDOW") {
        Ok(w) => w.parse()?,
        Err(_) => WINDOW,
    };
    let tokens = random_tokens(window, 1);
    let only = std::env::var("GENOMAMBA_BENCH_ONLY").ok();
    let mut copy_gbps = None;
    // Scan variants whose output is not the default's (reported at the end, after every measurement).
    let mut wrong = Vec::new();
    for (d, layers) in [(128, 4), (256, 16), (768, 24)] {
        if only
            .as_deref()
            .is_some_and(|o| o != format!("{d}x{layers}"))
        {
            continue;
        }
        let model = random_model(d, layers, 42);
        for dtype in [Dtype::F32, Dtype::Bf16] {
            let t_build = Instant::now();
            let mut eng = CudaEngine::new(&model, 0, dtype, window)?;
            let build_s = t_build.elapsed().as_secs_f64();
            if copy_gbps.is_none() {
                let peaks = device_peaks(eng.context());
                emit(json!({
                    "kind": "device", "device": info.to_string(), "sms": peaks.sms,
                    "sm_clock_mhz": peaks.sm_clock_mhz, "ex2_peak_per_s": peaks.ex2_per_s,
                    "dram_peak_gbps": peaks.dram_gbps,
                }))?;
                // 4 GiB for the 1 Mb window, less for a short one.
                let bytes = (window * 4096).min(4 << 30);
                let gbps = copy_bandwidth(eng.context(), bytes, 10)?;
                emit(json!({"kind": "copy", "bytes": bytes, "gbps_read_plus_write": gbps}))?;
                copy_gbps = Some((gbps, peaks.ex2_per_s));
            }
            let (copy, ex2_peak) = copy_gbps.unwrap_or((f64::NAN, None));
            let mut out = Output::default();
            let want = Want {
                hidden: false,
                base_probs: true,
            };
            eng.run(&tokens, true, want, &mut out)?; // warm-up
            let reps = if d >= 768 { 2 } else { 3 };
            let t0 = Instant::now();
            for _ in 0..reps {
                eng.run(&tokens, true, want, &mut out)?;
            }
            let secs = t0.elapsed().as_secs_f64() / reps as f64;
            assert_eq!(out.rows, window);
            // Each timed variant runs once untimed first: its page-locked buffers (3.2 GB of hidden rows for
            // 768x24) are allocated on first use.
            let mut hid = Output::default();
            eng.run(&tokens, true, Want::ALL, &mut hid)?;
            let t1 = Instant::now();
            eng.run(&tokens, true, Want::ALL, &mut hid)?;
            let secs_hidden = t1.elapsed().as_secs_f64();
            let mut pooled = Vec::new();
            eng.run_pooled(&tokens, true, 128, &mut pooled)?;
            let t2 = Instant::now();
            eng.run_pooled(&tokens, true, 128, &mut pooled)?;
            let secs_pooled = t2.elapsed().as_secs_f64();

            let mut bench = eng.bench(&tokens)?;
            let layer = bench.layer(3)?;
            let scan = bench.scan(5, None)?;
            let mut sweep = Vec::new();
            for f in NBLK_FACTORS {
                let nblk = ((scan.nblk as f64 * f).round() as usize).max(1);
                let s = bench.scan(3, Some(nblk))?;
                sweep.push(json!({"nblk": s.nblk, "ms": s.ms, "gbps": s.gbps}));
            }
            let mut variants = Vec::new();
            for t in ScanTuning::CANDIDATES {
                let Some(v) = bench.scan_variant(t, 3)? else {
                    continue;
                };
                let tol = match dtype {
                    Dtype::F32 => 1e-5,
                    Dtype::Bf16 => 8e-3, // one to two bf16 steps of the largest output
                };
                if v.max_rel_diff > tol {
                    wrong.push(format!(
                        "{d}x{layers} {} scan variant {}: output differs from the default's by {:.3e} (allowed {tol:e})",
                        dtype.as_str(),
                        v.name,
                        v.max_rel_diff
                    ));
                }
                variants.push(json!({
                    "variant": v.name, "ms": v.scan.ms, "speedup": scan.ms / v.scan.ms,
                    "gbps": v.scan.gbps,
                    "ex2_fraction_of_peak": ex2_peak.map(|p| v.scan.ex2_per_s / p),
                    "max_rel_diff": v.max_rel_diff,
                }));
            }
            drop(bench); // gives back the engine (and its scan scratch as it was)
            let stage_ms: Map<String, Value> = layer
                .stages
                .iter()
                .map(|s| (s.name.to_owned(), json!(s.ms)))
                .collect();
            let tflops: Map<String, Value> = layer
                .stages
                .iter()
                .filter_map(|s| Some((s.name.to_owned(), json!(s.tflops?))))
                .collect();
            let pass_ms: Map<String, Value> = scan
                .passes
                .iter()
                .map(|p| (p.name.to_owned(), json!(p.ms)))
                .collect();
            emit(json!({
                "kind": "window", "model": format!("{d}x{layers}"), "dtype": dtype.as_str(),
                "bases": window, "chunk": eng.chunk(), "engine_build_s": build_s,
                "probs_s": secs, "bases_per_s": window as f64 / secs,
                "hidden_and_probs_s": secs_hidden, "pooled128_s": secs_pooled,
                "layer0_ms": stage_ms, "layer0_gemm_tflops": tflops,
                "layers_x_layer0_s": layers as f64 * layer.ms() / 1e3,
                "scan_ms": scan.ms, "scan_nblk": scan.nblk, "scan_pass_ms": pass_ms,
                "scan_gbps": scan.gbps, "scan_fraction_of_copy": scan.gbps / copy,
                "scan_ex2_per_s": scan.ex2_per_s,
                "scan_ex2_fraction_of_peak": ex2_peak.map(|p| scan.ex2_per_s / p),
                "scan_nblk_sweep": sweep, "scan_variants": variants,
            }))?;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}
