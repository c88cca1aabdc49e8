//! GPU benchmark (ignored; run by tests/gpu/run.sh): bases/s over a 1,048,576-base window for random models
//! of d_model x layers 128x4, 256x16, 768x24 in f32 and bf16; the scan kernels' achieved bandwidth against a
//! device copy measured in the same run. Writes one JSON object per line to `$GENOMAMBA_BENCH_OUT`
//! (default `target/gpu-bench.jsonl`) and prints them.

#[path = "support/random_model.rs"]
mod random_model;

use std::io::Write;
use std::time::Instant;

use genomamba_cuda::{CudaEngine, Dtype, copy_bandwidth, probe};
use genomamba_model::engine::{Engine, Output, Want};
use random_model::{random_model, random_tokens};

const WINDOW: usize = 1 << 20;

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
    let mut emit = |v: serde_json::Value| -> std::io::Result<()> {
        println!("{v}");
        writeln!(file, "{v}")
    };
    emit(serde_json::json!({"kind": "device", "device": info.to_string()}))?;
    let tokens = random_tokens(WINDOW, 1);
    let only = std::env::var("GENOMAMBA_BENCH_ONLY").ok();
    let mut copy_done = false;
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
            let mut eng = CudaEngine::new(&model, 0, dtype, WINDOW)?;
            let build_s = t_build.elapsed().as_secs_f64();
            if !copy_done {
                let gbps = copy_bandwidth(eng.context(), 4 << 30, 10)?;
                emit(
                    serde_json::json!({"kind": "copy", "bytes": 4u64 << 30, "gbps_read_plus_write": gbps}),
                )?;
                copy_done = true;
            }
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
            assert_eq!(out.rows, WINDOW);
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
            let scan = eng.bench_scan(&tokens, 5)?;
            emit(serde_json::json!({
                "kind": "window", "model": format!("{d}x{layers}"), "dtype": dtype.as_str(),
                "bases": WINDOW, "chunk": eng.chunk(), "engine_build_s": build_s,
                "probs_s": secs, "bases_per_s": WINDOW as f64 / secs,
                "hidden_and_probs_s": secs_hidden, "pooled128_s": secs_pooled,
                "scan_ms": scan.ms, "scan_nblk": scan.nblk, "scan_gbps": scan.gbps,
            }))?;
        }
    }
    Ok(())
}
