//! Outputs must not depend on chunking: random chunk sizes (including 1 and sizes below d_conv) with the
//! state carried equal one pass, on real lambda sequence.

use std::path::Path;
use std::sync::Arc;

use genomamba_model::{CpuEngine, Engine, Model, Output, ReferenceEngine, Want};
use rand::{Rng, SeedableRng};
use support::lambda;

mod support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn model(name: &str) -> Result<Arc<Model>, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/mamba")
        .join(name)
        .join("hf");
    Ok(Arc::new(Model::from_dir(&dir)?))
}

/// Max relative error per row (vs `a`'s row norm) and max abs probability error; NaN must match NaN.
fn diff(a: &Output, b: &Output, d: usize) -> (f32, f32) {
    assert_eq!(a.rows, b.rows);
    let mut h = 0f32;
    for (x, y) in a.hidden.chunks(d).zip(b.hidden.chunks(d)) {
        let num: f32 = x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum();
        let den: f32 = x.iter().map(|p| p * p).sum();
        h = h.max((num / den).sqrt());
    }
    let mut p = 0f32;
    for (x, y) in a.base_probs.iter().zip(&b.base_probs) {
        for (u, v) in x.iter().zip(y) {
            assert_eq!(u.is_nan(), v.is_nan());
            if !u.is_nan() {
                p = p.max((u - v).abs());
            }
        }
    }
    (h, p)
}

#[test]
fn test_random_chunks_equal_one_pass() -> TestResult {
    let tokens = lambda(10_000, 3000)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for name in ["odd", "small"] {
        let m = model(name)?;
        let d = m.info.dims.d_model;
        let mut engine = CpuEngine::new(Arc::clone(&m), 2, 1 << 16)?;
        let mut one = Output::default();
        engine.run(&tokens, true, Want::ALL, &mut one)?;
        for round in 0..4 {
            // Round 0: all chunks of 1; round 1: sizes below d_conv; then random sizes.
            let mut state = engine.new_state();
            let mut pieces = Output::default();
            let mut at = 0;
            while at < tokens.len() {
                let len = match round {
                    0 => 1,
                    1 => rng.random_range(1..m.info.dims.d_conv),
                    _ => rng.random_range(1..700),
                }
                .min(tokens.len() - at);
                engine.forward_chunk(&tokens[at..at + len], &mut state, Want::ALL, &mut pieces)?;
                at += len;
            }
            let (h, p) = diff(&one, &pieces, d);
            assert!(
                h < 1e-5 && p < 1e-5,
                "{name} round {round}: hidden {h:e} probs {p:e}"
            );
            assert_eq!(state.pos, tokens.len() as u64);
        }
    }
    Ok(())
}

#[test]
fn test_run_continues_or_resets_state() -> TestResult {
    let tokens = lambda(0, 1500)?;
    let m = model("odd")?;
    for mut engine in [
        Box::new(CpuEngine::new(Arc::clone(&m), 1, 256)?) as Box<dyn Engine>,
        Box::new(ReferenceEngine::new(Arc::clone(&m))),
    ] {
        let mut one = Output::default();
        engine.run(&tokens, true, Want::ALL, &mut one)?;
        let (mut first, mut second) = (Output::default(), Output::default());
        engine.run(
            &tokens[..700],
            true,
            Want {
                hidden: true,
                base_probs: false,
            },
            &mut first,
        )?;
        engine.run(&tokens[700..], false, Want::ALL, &mut second)?;
        assert!(first.base_probs.is_empty() && first.rows == 700);
        let d = engine.hidden_width();
        assert!(
            second.base_probs[0].iter().all(|p| !p.is_nan()),
            "continuation has context"
        );
        let (h, p) = diff(
            &Output {
                hidden: one.hidden[700 * d..].to_vec(),
                base_probs: one.base_probs[700..].to_vec(),
                rows: 800,
            },
            &second,
            d,
        );
        assert!(
            h < 1e-5 && p < 1e-5,
            "{}: hidden {h:e} probs {p:e}",
            engine.device()
        );
        // A fresh run of the tail differs: it has no context.
        engine.run(&tokens[700..], true, Want::ALL, &mut second)?;
        assert!(second.base_probs[0][0].is_nan());
        let (h, _) = diff(
            &Output {
                hidden: one.hidden[700 * d..].to_vec(),
                base_probs: Vec::new(),
                rows: 800,
            },
            &Output {
                base_probs: Vec::new(),
                ..second.clone()
            },
            d,
        );
        assert!(h > 1e-3, "state must have been reset");
    }
    Ok(())
}

#[test]
fn test_out_of_vocabulary_token_is_an_error() -> TestResult {
    let mut engine = CpuEngine::new(model("small")?, 1, 64)?;
    let mut out = Output::default();
    let err = engine
        .run(&[7, 8, 200], true, Want::ALL, &mut out)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("200") && err.contains("offset 2"), "{err}");
    Ok(())
}
