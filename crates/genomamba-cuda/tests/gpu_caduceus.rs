//! GPU tests of the Caduceus engine (ignored without a GPU; run by tests/gpu/run.sh): every golden model of
//! tests/golden/caduceus (Ph and PS, fused and unfused) on the GPU against the CPU Caduceus engine (which the
//! model crate checks against the Caduceus code's goldens) on lambda's first 20 kb, f32 and bf16; chunked
//! scans equal one pass; PS raw and symmetric embeddings; without a GPU, an error, never a panic.

use std::path::PathBuf;
use std::sync::Arc;

use genomamba_cuda::{CudaCaduceusEngine, Dtype, cuda_caduceus_engine};
use genomamba_model::caduceus::{CaduceusEngine, CaduceusModel, Hidden};
use genomamba_model::engine::{Engine, Output, Want};
use genomamba_seq::alphabet;

#[path = "support/repo.rs"]
mod repo;

type R = Result<(), Box<dyn std::error::Error>>;

fn golden_dirs() -> Vec<PathBuf> {
    let root = repo::repo_root().join("tests/golden/caduceus");
    ["ps-fused", "ps-unfused", "ph-fused", "ph-unfused"]
        .iter()
        .map(|n| root.join(n))
        .collect()
}

fn lambda(n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = repo::repo_root().join("data/genomes/lambda_virus.fa");
    let (mut tokens, mut soft_masked) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.starts_with('>'))
    {
        alphabet::tokenize(line.as_bytes(), &mut tokens, &mut soft_masked)?;
    }
    tokens.truncate(n);
    Ok(tokens)
}

/// Max over rows of `|got - want| / |want|` (row norms), rows `width` wide.
fn row_rel(got: &[f32], want: &[f32], width: usize) -> f64 {
    assert_eq!(got.len(), want.len());
    got.chunks(width)
        .zip(want.chunks(width))
        .map(|(g, w)| {
            let num: f64 = g
                .iter()
                .zip(w)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum();
            let den: f64 = w.iter().map(|b| f64::from(*b).powi(2)).sum();
            (num / den.max(1e-30)).sqrt()
        })
        .fold(0.0, f64::max)
}

fn max_abs(got: &[[f32; 4]], want: &[[f32; 4]]) -> f64 {
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max)
}

fn run(engine: &mut dyn Engine, tokens: &[u8]) -> Result<Output, Box<dyn std::error::Error>> {
    let mut out = Output::default();
    engine.run(tokens, true, Want::ALL, &mut out)?;
    Ok(out)
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_caduceus_matches_cpu_on_golden_models() -> R {
    let tokens = lambda(20_000)?;
    for dir in golden_dirs() {
        let model = CaduceusModel::from_dir(&dir)?;
        let kinds: &[Hidden] = if model.config.rcps {
            &[Hidden::Symmetric, Hidden::Raw]
        } else {
            &[Hidden::Symmetric]
        };
        for &hidden in kinds {
            let mut cpu = CaduceusEngine::new(Arc::new(model.clone()), 0, 4096, hidden)?;
            let want = run(&mut cpu, &tokens)?;
            let width = cpu.hidden_width();
            let mut gpu = cuda_caduceus_engine(&model, 0, Dtype::F32, 0, hidden)?;
            assert_eq!(gpu.hidden_width(), width);
            assert!(!gpu.is_causal());
            let got = run(gpu.as_mut(), &tokens)?;
            let (eh, ep) = (
                row_rel(&got.hidden, &want.hidden, width),
                max_abs(&got.base_probs, &want.base_probs),
            );
            println!(
                "caduceus {} {hidden:?} f32: hidden rel err {eh:.3e}, probs {ep:.3e}",
                dir.display()
            );
            assert!(eh < 1e-4 && ep < 1e-5, "{}: {eh:e} {ep:e}", dir.display());
            // Pooling sums on the GPU (only the sums cross PCIe) vs the host's sums of the CPU rows.
            let segments = [
                0..20_000,
                100..1100,
                19_999..20_000,
                5000..5000,
                1000..20_000,
            ];
            let (mut sums_cpu, mut sums_gpu) = (Vec::new(), Vec::new());
            cpu.run_sums(&tokens, true, &segments, &mut sums_cpu)?;
            gpu.run_sums(&tokens, true, &segments, &mut sums_gpu)?;
            let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let es = row_rel(&f32s(&sums_gpu), &f32s(&sums_cpu), width);
            println!(
                "caduceus {} {hidden:?} sums: rel err {es:.3e}",
                dir.display()
            );
            assert!(es < 1e-4, "{} sums: {es:e}", dir.display());
            // Chunks of 777 rows (both scan directions carry state across them) == one pass.
            let mut chunked = CudaCaduceusEngine::new(&model, 0, Dtype::F32, 777, hidden)?;
            let c = run(&mut chunked, &tokens)?;
            let ec = row_rel(&c.hidden, &got.hidden, width);
            println!("caduceus {} chunk 777: vs one pass {ec:.3e}", dir.display());
            assert!(ec < 1e-5);
            let mut bf16 = cuda_caduceus_engine(&model, 0, Dtype::Bf16, 0, hidden)?;
            let b = run(bf16.as_mut(), &tokens)?;
            // bf16 rounds every activation to 8 significant bits: judged, as the causal engine's bf16 test
            // is, by the relative error over the whole output; the row errors are reported (on a 16-wide
            // golden model the worst of 20,000 rows runs 2-5x the median).
            let eb = row_rel(&b.hidden, &want.hidden, b.hidden.len());
            let mut rows: Vec<f64> = b
                .hidden
                .chunks(width)
                .zip(want.hidden.chunks(width))
                .map(|(g, w)| row_rel(g, w, width))
                .collect();
            rows.sort_by(f64::total_cmp);
            println!(
                "caduceus {} bf16: hidden rel err {eb:.3e} (rows: median {:.3e}, p99 {:.3e}, max {:.3e}), \
                 probs max abs err {:.3e}",
                dir.display(),
                rows[rows.len() / 2],
                rows[rows.len() * 99 / 100],
                rows[rows.len() - 1],
                max_abs(&b.base_probs, &want.base_probs)
            );
            assert!(eb < 2e-2, "{} bf16: {eb:e}", dir.display());
        }
    }
    Ok(())
}

/// A Caduceus-PS of the published size (d_model 256, 16 layers, random weights) over one 1,048,576-base
/// window of lambda repeated: bases/s, f32 and bf16.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_caduceus_ps_1mb_window() -> R {
    use genomamba_model::caduceus::CaduceusConfig;
    let json = br#"{"model_type":"caduceus","d_model":256,"n_layer":16,"vocab_size":12,
        "ssm_cfg":{"d_state":16,"d_conv":4,"expand":2,"dt_rank":"auto"},"fused_add_norm":true,
        "residual_in_fp32":false,"rcps":true,"complement_map":{"7":10,"8":9,"9":8,"10":7}}"#;
    let model = CaduceusModel::random(CaduceusConfig::from_json(json)?, 1);
    let tokens: Vec<u8> = lambda(usize::MAX)?
        .into_iter()
        .cycle()
        .take(1 << 20)
        .collect();
    for dtype in [Dtype::F32, Dtype::Bf16] {
        let mut e = CudaCaduceusEngine::new(&model, 0, dtype, 0, Hidden::Symmetric)?;
        run(&mut e, &tokens)?; // warm-up: kernels loaded, window buffers allocated
        let t0 = std::time::Instant::now();
        let out = run(&mut e, &tokens)?;
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(out.rows, tokens.len());
        println!(
            "caduceus-ps 256x16 {}: 1,048,576-base window in {secs:.3} s = {:.0} bases/s (outputs copied to host)",
            dtype.as_str(),
            tokens.len() as f64 / secs
        );
    }
    Ok(())
}

/// Runs everywhere (CI included): without a driver or GPU, building an engine is an error, never a panic.
#[test]
fn caduceus_engine_without_gpu_is_an_error_not_a_panic() -> R {
    let model = CaduceusModel::from_dir(&golden_dirs()[0])?;
    match cuda_caduceus_engine(&model, 0, Dtype::F32, 64, Hidden::Symmetric) {
        Ok(e) => assert!(e.device().starts_with("cuda:0")),
        Err(err) => {
            assert!(
                genomamba_cuda::driver_present()
                    || matches!(err, genomamba_cuda::Error::GpuUnavailable { .. })
            );
            assert!(!err.to_string().is_empty());
        }
    }
    Ok(())
}
