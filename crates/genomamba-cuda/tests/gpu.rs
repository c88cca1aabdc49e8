//! GPU tests: parity with the CPU engine, chunking invariance, batching, pooling, saved states, golden models.
//! Each is `#[ignore = "needs a CUDA device"]`; run with `-- --ignored` on a GPU machine (tests/gpu/run.sh),
//! where a failed probe fails the test.
//!
//! Errors are relative to the reference's largest magnitude: `max |gpu - ref| / max |ref|` over the tensor.

#[path = "support/random_model.rs"]
mod random_model;
#[path = "support/repo.rs"]
mod repo;

use std::sync::Arc;

use genomamba_cuda::{CudaEngine, Dtype, cuda_engine, probe};
use genomamba_model::engine::{Engine, Output, Want};
use genomamba_model::{Model, cpu_engine};
use random_model::{random_model, random_tokens};

type R = Result<(), Box<dyn std::error::Error>>;

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(1e-30f64, |m, v| m.max(f64::from(v.abs())));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if g.is_nan() && w.is_nan() {
                0.0
            } else {
                f64::from((g - w).abs()) / scale
            }
        })
        .fold(
            0.0,
            |m, e| if e.is_nan() { f64::INFINITY } else { m.max(e) },
        )
}

fn max_abs_probs(got: &[[f32; 4]], want: &[[f32; 4]]) -> f64 {
    assert_eq!(got.len(), want.len());
    let mut m = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        for j in 0..4 {
            let e = if g[j].is_nan() && w[j].is_nan() {
                0.0
            } else {
                f64::from((g[j] - w[j]).abs())
            };
            m = m.max(if e.is_nan() { f64::INFINITY } else { e });
        }
    }
    m
}

fn flat(p: &[[f32; 4]]) -> Vec<f32> {
    p.iter().flatten().copied().collect()
}

fn cpu_run(model: &Model, tokens: &[u8]) -> Result<Output, Box<dyn std::error::Error>> {
    let mut e = cpu_engine(Arc::new(model.clone()), 0, 4096)?;
    let mut out = Output::default();
    e.run(tokens, true, Want::ALL, &mut out)?;
    Ok(out)
}

fn gpu_run(
    model: &Model,
    dtype: Dtype,
    chunk: usize,
    tokens: &[u8],
) -> Result<Output, Box<dyn std::error::Error>> {
    let mut e = cuda_engine(model, 0, dtype, chunk)?;
    let mut out = Output::default();
    e.run(tokens, true, Want::ALL, &mut out)?;
    Ok(out)
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_probe_reports_device() -> R {
    let info = probe(0)?;
    println!("{info}");
    assert!(info.total_memory > 0 && info.multiprocessors > 0);
    assert!(
        info.nvrtc || std::env::var_os("GENOMAMBA_CUBIN_DIR").is_some(),
        "no libnvrtc and no prebuilt CUBINs"
    );
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_parity_f32_vs_cpu() -> R {
    for (d, l, len) in [(128, 4, 5000), (256, 2, 3001)] {
        let model = random_model(d, l, 11);
        let tokens = random_tokens(len, 5);
        let want = cpu_run(&model, &tokens)?;
        let got = gpu_run(&model, Dtype::F32, 0, &tokens)?;
        let (eh, ep) = (
            rel_err(&got.hidden, &want.hidden),
            max_abs_probs(&got.base_probs, &want.base_probs),
        );
        println!("f32 {d}x{l} len {len}: hidden rel err {eh:.3e}, probs max abs err {ep:.3e}");
        assert!(
            got.base_probs[0].iter().all(|p| p.is_nan()),
            "first row of a fresh window must be NaN"
        );
        assert!(eh < 1e-4, "hidden rel err {eh:e}");
        assert!(ep < 1e-5, "probs err {ep:e}");
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_parity_bf16_reported() -> R {
    let model = random_model(256, 4, 12);
    let tokens = random_tokens(4000, 6);
    let want = cpu_run(&model, &tokens)?;
    let got = gpu_run(&model, Dtype::Bf16, 0, &tokens)?;
    let (eh, ep) = (
        rel_err(&got.hidden, &want.hidden),
        max_abs_probs(&got.base_probs, &want.base_probs),
    );
    println!("bf16 256x4: hidden rel err {eh:.3e}, probs max abs err {ep:.3e}");
    assert!(
        eh < 2e-2 && ep < 2e-2,
        "bf16 errors too large: hidden {eh:e}, probs {ep:e}"
    );
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_chunked_equals_one_pass() -> R {
    let model = random_model(128, 3, 13);
    let tokens = random_tokens(2500, 7);
    let one = gpu_run(&model, Dtype::F32, 0, &tokens)?;
    for chunk in [1, 2, 3, 5, 64, 1000] {
        let got = gpu_run(&model, Dtype::F32, chunk, &tokens)?;
        let (eh, ep) = (
            rel_err(&got.hidden, &one.hidden),
            rel_err(&flat(&got.base_probs), &flat(&one.base_probs)),
        );
        println!("chunk {chunk}: hidden rel err {eh:.3e}, probs {ep:.3e}");
        assert!(eh < 1e-5 && ep < 1e-5, "chunk {chunk}: {eh:e} {ep:e}");
    }
    // Split across calls with the state carried (fresh = false), at a boundary shorter than d_conv too.
    for split in [1, 2, 1234] {
        let mut e = cuda_engine(&model, 0, Dtype::F32, 700)?;
        let (mut a, mut b) = (Output::default(), Output::default());
        e.run(&tokens[..split], true, Want::ALL, &mut a)?;
        e.run(&tokens[split..], false, Want::ALL, &mut b)?;
        a.hidden.extend_from_slice(&b.hidden);
        a.base_probs.extend_from_slice(&b.base_probs);
        let eh = rel_err(&a.hidden, &one.hidden);
        let ep = rel_err(&flat(&a.base_probs), &flat(&one.base_probs));
        assert!(eh < 1e-5 && ep < 1e-5, "split {split}: {eh:e} {ep:e}");
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_batch_matches_single_runs() -> R {
    let model = random_model(128, 2, 14);
    let seqs: Vec<Vec<u8>> = (0..37)
        .map(|i| random_tokens(50 + 13 * i, 100 + i as u64))
        .collect();
    let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
    let mut eng = CudaEngine::new(&model, 0, Dtype::F32, 4096)?;
    let mut single = Vec::new();
    for s in &seqs {
        let mut want = Output::default();
        eng.run(s, true, Want::ALL, &mut want)?;
        single.push(want);
    }
    // Eight per launch in input order; as the pipeline calls it (grouped by length, as many as fit); and on an
    // engine whose chunk (100 rows) is shorter than most sequences, so groups step through them in pieces.
    let mut small = CudaEngine::new(&model, 0, Dtype::F32, 100)?;
    let mut runs: Vec<(&str, Vec<Output>)> = Vec::new();
    let mut outs = Vec::new();
    eng.run_batch(&refs, 8, Want::ALL, &mut outs)?;
    runs.push(("batch 8", outs));
    let mut outs = Vec::new();
    Engine::run_batch(&mut eng, &refs, Want::ALL, &mut outs)?;
    runs.push(("by length", outs));
    let mut outs = Vec::new();
    Engine::run_batch(&mut small, &refs, Want::ALL, &mut outs)?;
    runs.push(("chunk 100", outs));
    for (name, outs) in &runs {
        assert_eq!(outs.len(), seqs.len());
        for ((s, got), want) in seqs.iter().zip(outs).zip(&single) {
            assert_eq!(got.rows, s.len());
            let eh = rel_err(&got.hidden, &want.hidden);
            let ep = rel_err(&flat(&got.base_probs), &flat(&want.base_probs));
            assert!(
                eh < 1e-5 && ep < 1e-5,
                "{name}, len {}: {eh:e} {ep:e}",
                s.len()
            );
        }
    }
    Ok(())
}

/// Many tiny reads on a short chunk: groups are capped by their carried state's budget (64 rows of
/// activations hold the state of 12 windows of this model, where 32 reads of 2 bases would fit the chunk), and
/// still match single runs.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_batch_of_tiny_reads_matches_single_runs() -> R {
    let model = random_model(128, 2, 16);
    let seqs: Vec<Vec<u8>> = (0..60)
        .map(|i| random_tokens(1 + i % 4, 300 + i as u64))
        .collect();
    let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
    let mut eng = CudaEngine::new(&model, 0, Dtype::F32, 64)?;
    let mut outs = Vec::new();
    Engine::run_batch(&mut eng, &refs, Want::ALL, &mut outs)?;
    for (s, got) in seqs.iter().zip(&outs) {
        let mut want = Output::default();
        eng.run(s, true, Want::ALL, &mut want)?;
        assert_eq!(got.rows, s.len());
        let eh = rel_err(&got.hidden, &want.hidden);
        let ep = rel_err(&flat(&got.base_probs), &flat(&want.base_probs));
        assert!(eh < 1e-5 && ep < 1e-5, "len {}: {eh:e} {ep:e}", s.len());
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
#[allow(clippy::needless_range_loop)]
fn gpu_pooled_matches_host_mean() -> R {
    let model = random_model(128, 2, 15);
    let tokens = random_tokens(1000, 8);
    let mut eng = CudaEngine::new(&model, 0, Dtype::F32, 300)?;
    let mut full = Output::default();
    eng.run(
        &tokens,
        true,
        Want {
            hidden: true,
            base_probs: false,
        },
        &mut full,
    )?;
    let mut pooled = Vec::new();
    let rows = eng.run_pooled(&tokens, true, 64, &mut pooled)?;
    assert_eq!(rows, 1000usize.div_ceil(64));
    let d = 128;
    let mut want = vec![0f32; rows * d];
    for (k, w) in want.chunks_mut(d).enumerate() {
        let (t0, t1) = (k * 64, (k * 64 + 64).min(1000));
        for t in t0..t1 {
            for c in 0..d {
                w[c] += full.hidden[t * d + c] / (t1 - t0) as f32;
            }
        }
    }
    let e = rel_err(&pooled, &want);
    assert!(e < 1e-5, "pooled rel err {e:e}");
    Ok(())
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Pooling sums on the GPU over segments that cross chunk boundaries, overlap, are one row or empty: streamed
/// over several chunks, continuing the carried state, and in batches of fresh windows, each within 1e-5 of
/// the CPU engine's (the host's f64 sums of its hidden rows).
#[test]
#[ignore = "needs a CUDA device"]
#[allow(clippy::single_range_in_vec_init)]
fn gpu_sums_match_cpu_sums() -> R {
    let model = random_model(64, 2, 17);
    let tokens = random_tokens(1000, 9);
    let segments = [
        0..1000,
        0..1,
        250..350,
        299..301,
        500..500,
        990..1000,
        37..900,
    ];
    let mut cpu = cpu_engine(Arc::new(model.clone()), 0, 4096)?;
    let mut gpu = CudaEngine::new(&model, 0, Dtype::F32, 300)?;
    let (mut want, mut got) = (Vec::new(), Vec::new());
    cpu.run_sums(&tokens, true, &segments, &mut want)?;
    gpu.run_sums(&tokens, true, &segments, &mut got)?;
    let e = rel_err(&f32s(&got), &f32s(&want));
    assert!(e < 1e-5, "one window in four chunks: {e:e}");

    // A window in two calls: the second continues the first's state.
    let later = [0..400, 100..250, 399..400];
    for (part, fresh, segs) in [
        (&tokens[..600], true, &segments[1..4]),
        (&tokens[600..], false, &later[..]),
    ] {
        cpu.run_sums(part, fresh, segs, &mut want)?;
        gpu.run_sums(part, fresh, segs, &mut got)?;
        let e = rel_err(&f32s(&got), &f32s(&want));
        assert!(e < 1e-5, "continued (fresh {fresh}): {e:e}");
    }

    let seqs: Vec<Vec<u8>> = [1000, 37, 310, 0, 299]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_tokens(n, 20 + i as u64))
        .collect();
    let segs: Vec<Vec<std::ops::Range<usize>>> = vec![
        segments.to_vec(),
        vec![0..37, 5..6],
        vec![0..100, 100..200, 200..300, 300..310],
        vec![],
        vec![298..299, 0..299],
    ];
    let seq_refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
    let seg_refs: Vec<&[std::ops::Range<usize>]> = segs.iter().map(Vec::as_slice).collect();
    let mut batch = Vec::new();
    gpu.run_batch_sums(&seq_refs, 2, &seg_refs, &mut batch)?;
    assert_eq!(batch.len(), seqs.len());
    for ((seq, seg), got) in seqs.iter().zip(&segs).zip(&batch) {
        cpu.run_sums(seq, true, seg, &mut want)?;
        let e = rel_err(&f32s(got), &f32s(&want));
        assert!(e < 1e-5, "batched, length {}: {e:e}", seq.len());
    }
    assert!(
        gpu.run_sums(&tokens, true, &[990..1001], &mut got).is_err(),
        "a segment past the tokens"
    );
    Ok(())
}

/// An engine is `Send`: moved to a thread that never touched CUDA, it makes its context current there (a raw
/// driver call on a thread without one fails with CUDA_ERROR_INVALID_CONTEXT) and gives the same results.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_engine_moves_between_threads() -> R {
    let model = random_model(64, 2, 23);
    let tokens = random_tokens(700, 4);
    let mut eng = cuda_engine(&model, 0, Dtype::F32, 256)?;
    let mut here = Output::default();
    eng.run(&tokens, true, Want::ALL, &mut here)?;
    let (eng, there, sums) = std::thread::scope(|s| {
        s.spawn(move || -> Result<_, genomamba_model::Error> {
            let mut eng = eng;
            let mut out = Output::default();
            eng.run(&tokens, true, Want::ALL, &mut out)?;
            let mut sums = Vec::new();
            eng.run_sums(&tokens, true, std::slice::from_ref(&(0..700)), &mut sums)?;
            Ok((eng, out, sums))
        })
        .join()
        .expect("engine thread")
    })?;
    drop(eng);
    // Bit for bit (a position without a prediction holds NaN in both).
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&there.hidden), bits(&here.hidden));
    assert_eq!(
        bits(&flat(&there.base_probs)),
        bits(&flat(&here.base_probs))
    );
    let mut col0 = 0.0;
    for r in 0..700 {
        col0 += f64::from(here.hidden[r * 64]);
    }
    assert!(
        (sums[0] - col0).abs() <= 1e-4 * col0.abs().max(1.0),
        "{} vs {col0}",
        sums[0]
    );
    Ok(())
}

/// The host sleeps while it waits for the GPU (the context's scheduling policy is blocking sync), so a long
/// window does not keep a CPU core spinning.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_engine_waits_without_spinning() -> R {
    use cudarc::driver::sys::{CUctx_flags, cuCtxGetFlags};
    let model = random_model(64, 1, 5);
    let eng = CudaEngine::new(&model, 0, Dtype::F32, 64)?;
    eng.context().bind_to_thread()?;
    let mut flags = 0u32;
    // SAFETY: the engine's context is current on this thread, and `flags` is a valid out pointer.
    unsafe { cuCtxGetFlags(&mut flags) }.result()?;
    let blocking = CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC as u32;
    assert_eq!(
        flags & CUctx_flags::CU_CTX_SCHED_MASK as u32,
        blocking,
        "context flags {flags:#x}"
    );
    Ok(())
}

#[test]
#[ignore = "needs a CUDA device"]
fn gpu_bad_token_is_an_error() -> R {
    let model = random_model(128, 1, 16);
    let mut eng = cuda_engine(&model, 0, Dtype::F32, 0)?;
    let mut out = Output::default();
    assert!(eng.run(&[7, 8, 200], true, Want::ALL, &mut out).is_err());
    Ok(())
}

/// Every model directory under tests/golden/mamba/<case>/ (a `config.json` beside its weights): GPU f32 vs the CPU
/// engine (which the model crate checks against the golden tensors) on the lambda phage genome's first
/// 20 kb.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_golden_models_match_cpu() -> R {
    let root = repo::repo_root().join("tests/golden/mamba");
    let fasta = std::fs::read_to_string(repo::repo_root().join("data/genomes/lambda_virus.fa"))?;
    let (mut tokens, mut soft_masked) = (Vec::new(), Vec::new());
    for line in fasta.lines().filter(|l| !l.starts_with('>')) {
        genomamba_seq::alphabet::tokenize(line.as_bytes(), &mut tokens, &mut soft_masked)?;
    }
    tokens.truncate(20_000);
    // tests/golden/mamba/<case>/<format>/config.json (formats: hf, hf-bf16, hf-f16, ssm).
    let mut dirs = Vec::new();
    for case in std::fs::read_dir(&root)? {
        let case = case?.path();
        if case.is_dir() {
            for format in std::fs::read_dir(&case)? {
                let format = format?.path();
                if format.join("config.json").is_file() {
                    dirs.push(format);
                }
            }
        }
    }
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no model directories under {}",
        root.display()
    );
    for dir in dirs {
        let model = Model::from_dir(&dir)?;
        let want = cpu_run(&model, &tokens)?;
        let got = gpu_run(&model, Dtype::F32, 0, &tokens)?;
        let (eh, ep) = (
            rel_err(&got.hidden, &want.hidden),
            max_abs_probs(&got.base_probs, &want.base_probs),
        );
        println!(
            "golden {}: hidden rel err {eh:.3e}, probs {ep:.3e}",
            dir.display()
        );
        assert!(eh < 1e-4 && ep < 1e-5, "{}: {eh:e} {ep:e}", dir.display());
        let got16 = gpu_run(&model, Dtype::Bf16, 0, &tokens)?;
        let eh16 = rel_err(&got16.hidden, &want.hidden);
        println!("golden {} bf16: hidden rel err {eh16:.3e}", dir.display());
        assert!(eh16 < 2e-2);
    }
    Ok(())
}

/// Models cut after block K (`embed --layer K`): the residual stream with no norm_f, GPU f32 vs the CPU engine
/// (which the model crate checks against transformers' `hidden_states[K - 1]`), in one pass and in chunks.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_truncated_models_match_cpu() -> R {
    let root = repo::repo_root().join("tests/golden/mamba");
    let mut models = vec![random_model(128, 4, 21)];
    for case in ["odd", "small"] {
        models.push(Model::from_dir(&root.join(case).join("hf"))?);
    }
    let tokens = random_tokens(3000, 22);
    for full in models {
        for k in 1..=full.layers.len() {
            let mut model = full.clone();
            model.truncate(k)?;
            let want = cpu_run(&model, &tokens)?;
            for chunk in [0, 333] {
                let got = gpu_run(&model, Dtype::F32, chunk, &tokens)?;
                let eh = rel_err(&got.hidden, &want.hidden);
                println!(
                    "{} cut after block {k}, chunk {chunk}: hidden rel err {eh:.3e}",
                    full.info.name
                );
                assert!(
                    eh < 1e-4,
                    "{} layer {k} chunk {chunk}: {eh:e}",
                    full.info.name
                );
            }
        }
    }
    Ok(())
}

/// The last `rows` rows of `out`: hidden `(rows, d)` and probabilities flattened `(rows, 4)`.
fn tail(out: &Output, rows: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let n = out.rows;
    assert!(rows <= n, "{rows} rows of {n}");
    (
        out.hidden[(n - rows) * d..].to_vec(),
        flat(&out.base_probs[n - rows..]),
    )
}

/// Largest elementwise `|got - want|` (NaN in both counts as equal; NaN in one as infinite).
fn max_abs(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    got.iter().zip(want).fold(0.0, |m, (&g, &w)| {
        let e = if g.is_nan() && w.is_nan() {
            0.0
        } else {
            f64::from((g - w).abs())
        };
        if e.is_nan() { f64::INFINITY } else { m.max(e) }
    })
}

/// Whether two outputs are bit for bit the same (hidden and probabilities).
fn same_bits(a: &Output, b: &Output) -> bool {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    bits(&a.hidden) == bits(&b.hidden) && bits(&flat(&a.base_probs)) == bits(&flat(&b.base_probs))
}

/// Variant-haplotype scoring: a 300-token prefix run once in chunks of 128 rows, its state saved, then
/// continuations A (100 tokens), B (150) and A again, each from the saved state (restored), on a random 128x4
/// model and the golden `odd` model (K 3, N 8). Each continuation matches one fresh pass over prefix +
/// continuation (same engine, other chunk boundaries: 1e-5 relative), A's second run its first, each
/// continuation's first row has the prefix's prediction (not NaN); the saved state matches the CPU engine's
/// after the same prefix (conv and SSM 1e-4 relative, probabilities 1e-5, `pos`), and the CPU's state restored
/// here continues like the CPU engine (1e-4 hidden, 1e-5 probabilities). After a batch call saving is an error
/// and restoring works again; a fresh empty window saves a zero state without a prediction; a state of the
/// wrong shape is refused.
#[test]
#[ignore = "needs a CUDA device"]
fn gpu_saved_state_continues_like_one_pass() -> R {
    use genomamba_model::State;
    let root = repo::repo_root().join("tests/golden/mamba");
    let models = [
        ("random 128x4", random_model(128, 4, 31)),
        ("golden odd", Model::from_dir(&root.join("odd").join("hf"))?),
    ];
    let tokens = random_tokens(700, 32);
    let (prefix, cont_a, cont_b) = (&tokens[..300], &tokens[300..400], &tokens[550..700]);
    let joined = |c: &[u8]| [prefix, c].concat();
    for (name, model) in &models {
        let d = model.info.dims.d_model;
        let mut eng = CudaEngine::new(model, 0, Dtype::F32, 128)?;
        let (mut pre, mut a1, mut b, mut a2): (Output, Output, Output, Output) = Default::default();
        let mut saved = State {
            layers: Vec::new(),
            next_base_probs: None,
            pos: 0,
        };
        eng.run(prefix, true, Want::ALL, &mut pre)?;
        eng.save_state(&mut saved)?;
        eng.run(cont_a, false, Want::ALL, &mut a1)?;
        eng.restore_state(&saved)?;
        eng.run(cont_b, false, Want::ALL, &mut b)?;
        eng.restore_state(&saved)?;
        eng.run(cont_a, false, Want::ALL, &mut a2)?;

        assert_eq!(saved.pos, 300, "{name}: pos");
        let next = saved
            .next_base_probs
            .ok_or("no next-base prediction saved")?;
        for (what, out) in [("A", &a1), ("B", &b), ("A again", &a2)] {
            let first = out.base_probs[0];
            assert!(
                first.iter().all(|p| p.is_finite()),
                "{name}: first row of {what} has no prediction: {first:?}"
            );
            assert_eq!(
                first, next,
                "{name}: first row of {what} is not the saved prediction"
            );
        }

        // Continuations from the saved state against one fresh pass over prefix + continuation.
        for (what, cont, got) in [("A", cont_a, &a1), ("B", cont_b, &b)] {
            let mut one = Output::default();
            eng.run(&joined(cont), true, Want::ALL, &mut one)?;
            let (wh, wp) = tail(&one, cont.len(), d);
            let (eh, ep) = (
                rel_err(&got.hidden, &wh),
                rel_err(&flat(&got.base_probs), &wp),
            );
            println!(
                "{name}: continuation {what} ({} tokens) vs one pass: hidden rel err {eh:.3e}, probs {ep:.3e}",
                cont.len()
            );
            assert!(eh < 1e-5 && ep < 1e-5, "{name} {what}: {eh:e} {ep:e}");
        }
        let (eh, ep) = (
            rel_err(&a2.hidden, &a1.hidden),
            rel_err(&flat(&a2.base_probs), &flat(&a1.base_probs)),
        );
        println!(
            "{name}: A again vs A: hidden rel err {eh:.3e}, probs {ep:.3e}, bit for bit: {}",
            same_bits(&a1, &a2)
        );
        assert!(eh <= 1e-6 && ep <= 1e-6, "{name}: A again {eh:e} {ep:e}");

        // The CPU engine after the same prefix.
        let mut cpu = cpu_engine(Arc::new(model.clone()), 0, 4096)?;
        let mut cpu_state = State::new(&model.info.dims);
        let mut cpu_pre = Output::default();
        cpu.run(prefix, true, Want::ALL, &mut cpu_pre)?;
        cpu.save_state(&mut cpu_state)?;
        assert_eq!(saved.layers.len(), cpu_state.layers.len());
        let (mut e_conv, mut e_ssm) = (0f64, 0f64);
        for (g, c) in saved.layers.iter().zip(&cpu_state.layers) {
            e_conv = e_conv.max(rel_err(&g.conv, &c.conv));
            e_ssm = e_ssm.max(rel_err(&g.ssm, &c.ssm));
        }
        let cpu_next = cpu_state.next_base_probs.ok_or("CPU saved no prediction")?;
        let e_next = max_abs(&next, &cpu_next);
        println!(
            "{name}: saved state vs CPU: conv rel err {e_conv:.3e}, ssm {e_ssm:.3e}, next probs abs {e_next:.3e}, pos {} / {}",
            saved.pos, cpu_state.pos
        );
        assert!(
            e_conv < 1e-4 && e_ssm < 1e-4 && e_next < 1e-5,
            "{name}: {e_conv:e} {e_ssm:e} {e_next:e}"
        );
        assert_eq!(saved.pos, cpu_state.pos);

        // The CPU's state restored here continues like the CPU engine.
        let (mut gb, mut cb) = (Output::default(), Output::default());
        eng.restore_state(&cpu_state)?;
        eng.run(cont_b, false, Want::ALL, &mut gb)?;
        cpu.restore_state(&cpu_state)?;
        cpu.run(cont_b, false, Want::ALL, &mut cb)?;
        let (eh, ep) = (
            rel_err(&gb.hidden, &cb.hidden),
            max_abs_probs(&gb.base_probs, &cb.base_probs),
        );
        println!(
            "{name}: CPU state restored, B vs the CPU engine: hidden rel err {eh:.3e}, probs abs {ep:.3e}"
        );
        assert!(eh < 1e-4 && ep < 1e-5, "{name}: {eh:e} {ep:e}");
        let mut again = State::new(&model.info.dims);
        eng.save_state(&mut again)?;
        assert_eq!(again.pos, 450, "{name}: pos after restore + 150");

        // A batch call leaves nothing to save (an error, not slot 0 of the batch); a restore continues again,
        // into the batch's wider state.
        let seqs: Vec<Vec<u8>> = (0..5)
            .map(|i| random_tokens(40 + 30 * i, 40 + i as u64))
            .collect();
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let mut outs = Vec::new();
        eng.run_batch(&refs, 0, Want::ALL, &mut outs)?;
        let err = eng.save_state(&mut again).expect_err("save after a batch");
        println!("{name}: save after a batch: {err}");
        assert!(eng.run(cont_a, false, Want::ALL, &mut a2).is_err());
        eng.restore_state(&saved)?;
        eng.run(cont_a, false, Want::ALL, &mut a2)?;
        let (eh, ep) = (
            rel_err(&a2.hidden, &a1.hidden),
            rel_err(&flat(&a2.base_probs), &flat(&a1.base_probs)),
        );
        println!(
            "{name}: A after a batch and a restore vs A: hidden rel err {eh:.3e}, probs {ep:.3e}"
        );
        assert!(
            eh <= 1e-6 && ep <= 1e-6,
            "{name}: after a batch {eh:e} {ep:e}"
        );

        // A fresh window after a saved one: nothing of the restored state leaks, and no context (None, NaN).
        let mut empty = State::new(&model.info.dims);
        eng.run(&[], true, Want::ALL, &mut a2)?;
        eng.save_state(&mut empty)?;
        assert_eq!(empty.next_base_probs, None);
        assert_eq!(empty.pos, 0);
        assert!(
            empty
                .layers
                .iter()
                .all(|l| l.conv.iter().chain(&l.ssm).all(|&v| v == 0.0))
        );

        // Shapes that do not fit are refused.
        let mut wrong = saved.clone();
        wrong.layers.pop();
        assert!(
            eng.restore_state(&wrong).is_err(),
            "{name}: one layer short"
        );
        let mut wrong = saved.clone();
        wrong.layers[0].ssm.push(0.0);
        assert!(
            eng.restore_state(&wrong).is_err(),
            "{name}: SSM one value long"
        );
    }
    Ok(())
}

/// Runs everywhere (CI included): without a driver or GPU, building an engine is an error, never a panic.
#[test]
fn engine_without_gpu_is_an_error_not_a_panic() {
    let model = random_model(32, 1, 17);
    match cuda_engine(&model, 0, Dtype::F32, 64) {
        Ok(e) => assert!(e.device().starts_with("cuda:0")),
        Err(err) => {
            assert!(
                genomamba_cuda::driver_present()
                    || matches!(err, genomamba_cuda::Error::GpuUnavailable { .. })
            );
            assert!(!err.to_string().is_empty());
        }
    }
}
