//! Caduceus against goldens made by the Caduceus modeling code (tests/golden/caduceus/make_goldens.py): Ph and
//! PS, fused and unfused add-norm; reverse-complement equivariance of PS on real sequence; chunked scans equal
//! one pass in both directions; loading rules (tied tensors aliased, missing untied ones named).

use std::path::PathBuf;
use std::sync::Arc;

use genomamba_model::caduceus::{CaduceusConfig, CaduceusEngine, CaduceusModel, Hidden};
use genomamba_model::{AnyModel, Engine, Error, Model, ModelFormat, Output, Simd, Want};
use safetensors::SafeTensors;
use support::Expected;

mod support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MODELS: [&str; 4] = ["ps-fused", "ps-unfused", "ph-fused", "ph-unfused"];

fn golden(name: &str) -> PathBuf {
    support::golden("caduceus", name)
}

fn expected(name: &str) -> Result<Expected, Box<dyn std::error::Error>> {
    support::expected(&golden(name).join("expected.safetensors"))
}

fn lambda(n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    support::lambda(0, n)
}

/// Reverse complement of tokens: reverse, then A<->T, C<->G.
fn rc(tokens: &[u8]) -> Vec<u8> {
    tokens
        .iter()
        .rev()
        .map(|&t| if (7..=10).contains(&t) { 17 - t } else { t })
        .collect()
}

fn run(engine: &mut dyn Engine, ids: &[u8]) -> Result<Output, Error> {
    let mut out = Output::default();
    engine.run(ids, true, Want::ALL, &mut out)?;
    Ok(out)
}

fn engine(m: &Arc<CaduceusModel>, chunk: usize, hidden: Hidden) -> Result<CaduceusEngine, Error> {
    CaduceusEngine::new(Arc::clone(m), 2, chunk, hidden)
}

/// Max over rows of |a - b| / |b| (row norms) for `(rows, width)` buffers.
fn max_rel(a: &[f32], b: &[f32], width: usize) -> f64 {
    a.chunks(width)
        .zip(b.chunks(width))
        .map(|(a, b)| {
            let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
            let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
            (num / den.max(1e-30)).sqrt()
        })
        .fold(0.0, f64::max)
}

fn max_abs_probs(a: &[[f32; 4]], b: &[[f32; 4]]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(p, q)| p.iter().zip(q).map(|(x, y)| f64::from(x - y).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn test_engine_matches_caduceus_goldens() -> TestResult {
    for name in MODELS {
        let exp = expected(name)?;
        let mut want_ids = lambda(exp.ids.len())?;
        want_ids[100..105].fill(11);
        assert_eq!(
            exp.ids, want_ids,
            "{name}: golden input is lambda with 5 Ns"
        );
        let model = Arc::new(CaduceusModel::from_dir(&golden(name))?);
        let c = &model.config;
        assert_eq!(model.info.format, ModelFormat::Caduceus);
        assert!(!model.info.causal);
        assert_eq!(c.rcps, name.starts_with("ps"));
        assert_eq!(c.fused_add_norm, name.ends_with("-fused"));
        // Every stored float tensor is a parameter; tied ones are aliased, so nothing is counted twice.
        let bytes = std::fs::read(golden(name).join("model.safetensors"))?;
        let st = SafeTensors::deserialize(&bytes)?;
        let stored: usize = st
            .tensors()
            .iter()
            .filter(|(k, _)| !k.ends_with("complement_map"))
            .map(|(_, v)| v.shape().iter().product::<usize>())
            .sum();
        assert_eq!(
            model.info.n_params, stored as u64,
            "{name}: parameter count"
        );
        let width = c.stream_width();
        let runs = [65536, 7, 3].map(|chunk| (chunk, Simd::best()));
        let levels = Simd::available().into_iter().map(|simd| (100, simd));
        for (chunk, simd) in runs.into_iter().chain(levels) {
            let mut e = engine(&model, chunk, Hidden::Raw)?;
            e.set_simd(simd)?;
            let out = run(&mut e, &exp.ids)?;
            assert_eq!(out.rows, exp.ids.len());
            let got: Vec<f32> = exp
                .rows
                .iter()
                .flat_map(|&r| out.hidden[r * width..(r + 1) * width].iter().copied())
                .collect();
            let h = max_rel(&got, &exp.hidden, width);
            let probs: Vec<[f32; 4]> = exp
                .probs
                .chunks(4)
                .map(|p| [p[0], p[1], p[2], p[3]])
                .collect();
            let p = max_abs_probs(&out.base_probs, &probs);
            let at = format!("{name} chunk {chunk} {simd}");
            eprintln!("{at}: hidden max rel {h:.2e}, probs max abs {p:.2e}");
            assert!(h < 1e-4, "{at}: hidden max rel err {h:e}");
            assert!(p < 2e-5, "{at}: probs max abs err {p:e}");
        }
    }
    Ok(())
}

#[test]
fn test_ps_fused_flag_changes_the_function() -> TestResult {
    let exp = expected("ps-fused")?;
    let mut model = CaduceusModel::from_dir(&golden("ps-fused"))?;
    model.config.fused_add_norm = false;
    let out = run(&mut engine(&Arc::new(model), 4096, Hidden::Raw)?, &exp.ids)?;
    let w = 2 * 16;
    let got: Vec<f32> = exp
        .rows
        .iter()
        .flat_map(|&r| out.hidden[r * w..(r + 1) * w].iter().copied())
        .collect();
    let h = max_rel(&got, &exp.hidden, w);
    assert!(
        h > 0.1,
        "unfused semantics should not reproduce the fused golden ({h:e})"
    );
    Ok(())
}

#[test]
fn test_ps_embedding_is_symmetric_mean_of_raw_halves() -> TestResult {
    let model = Arc::new(CaduceusModel::from_dir(&golden("ps-fused"))?);
    let ids = lambda(300)?;
    let raw = run(&mut engine(&model, 64, Hidden::Raw)?, &ids)?;
    let mut sym_engine = engine(&model, 64, Hidden::Symmetric)?;
    let d = model.config.d_model;
    assert_eq!(sym_engine.hidden_width(), d);
    let sym = run(&mut sym_engine, &ids)?;
    for t in 0..ids.len() {
        let r = &raw.hidden[t * 2 * d..(t + 1) * 2 * d];
        for j in 0..d {
            let want = 0.5 * (r[j] + r[2 * d - 1 - j]);
            assert!((sym.hidden[t * d + j] - want).abs() < 1e-6);
        }
    }
    assert_eq!(sym.base_probs, raw.base_probs);
    Ok(())
}

/// A Caduceus-PS config with these sizes (fused add-norm, weight tie, `add`, as published).
fn ps_config(d_model: usize, n_layer: usize, extra: &str) -> Result<CaduceusConfig, Error> {
    CaduceusConfig::from_json(
        format!(
            r#"{{"model_type":"caduceus","d_model":{d_model},"n_layer":{n_layer},"vocab_size":12,
            "ssm_cfg":{{"d_state":16,"d_conv":4,"expand":2}},"fused_add_norm":true,"rcps":true,
            "residual_in_fp32":false,"complement_map":{{"7":10,"8":9,"9":8,"10":7}}{extra}}}"#
        )
        .as_bytes(),
    )
}

#[test]
fn test_ps_is_reverse_complement_equivariant_on_lambda() -> TestResult {
    let ids = lambda(6000)?;
    let ids_rc = rc(&ids);
    let random = Arc::new(CaduceusModel::random(ps_config(32, 4, "")?, 7));
    let golden_ps = Arc::new(CaduceusModel::from_dir(&golden("ps-unfused"))?);
    for (what, model) in [("random d32x4", random), ("ps-unfused", golden_ps)] {
        // 1000 divides the length (the two strands' chunks mirror each other); 999 does not.
        for chunk in [65536, 1000, 999] {
            let mut raw = engine(&model, chunk, Hidden::Raw)?;
            let (a, b) = (run(&mut raw, &ids)?, run(&mut raw, &ids_rc)?);
            let w = model.config.stream_width();
            let l = ids.len();
            let mut worst = 0f32;
            for t in 0..l {
                let x = &a.hidden[(l - 1 - t) * w..(l - t) * w];
                let y = &b.hidden[t * w..(t + 1) * w];
                // out(RC x)[t] = rcL(out(x))[t]: row L-1-t, channels reversed.
                for j in 0..w {
                    worst = worst.max((y[j] - x[w - 1 - j]).abs());
                }
                let (p, q) = (a.base_probs[l - 1 - t], b.base_probs[t]);
                for j in 0..4 {
                    worst = worst.max((q[j] - p[3 - j]).abs());
                }
            }
            eprintln!("{what} chunk {chunk}: RC equivariance max abs err {worst:.2e}");
            assert!(worst < 1e-5, "{what}: RC equivariance error {worst:e}");
            let mut sym = engine(&model, chunk, Hidden::Symmetric)?;
            let (a, b) = (run(&mut sym, &ids)?, run(&mut sym, &ids_rc)?);
            let d = model.config.d_model;
            for t in 0..l {
                let x = &a.hidden[(l - 1 - t) * d..(l - t) * d];
                let y = &b.hidden[t * d..(t + 1) * d];
                assert!(x.iter().zip(y).all(|(x, y)| (x - y).abs() < 1e-5));
            }
        }
    }
    Ok(())
}

#[test]
fn test_chunked_scans_equal_one_pass_both_directions() -> TestResult {
    let ids = lambda(1000)?;
    let ew = Arc::new(CaduceusModel::random(
        ps_config(
            24,
            2,
            r#","bidirectional_strategy":"ew_multiply","fused_add_norm":false"#,
        )?,
        3,
    ));
    let mut models: Vec<(String, Arc<CaduceusModel>)> = vec![("random ew_multiply".into(), ew)];
    for name in ["ps-fused", "ph-unfused"] {
        models.push((
            name.into(),
            Arc::new(CaduceusModel::from_dir(&golden(name))?),
        ));
    }
    for (what, model) in models {
        let whole = run(&mut engine(&model, ids.len(), Hidden::Raw)?, &ids)?;
        let w = model.config.stream_width();
        for chunk in [1, 2, 3, 5, 64, 999] {
            let got = run(&mut engine(&model, chunk, Hidden::Raw)?, &ids)?;
            let h = max_rel(&got.hidden, &whole.hidden, w);
            let p = max_abs_probs(&got.base_probs, &whole.base_probs);
            assert!(
                h < 1e-5 && p < 1e-5,
                "{what} chunk {chunk}: hidden {h:e}, probs {p:e}"
            );
        }
    }
    Ok(())
}

#[test]
fn test_loading_aliases_tied_and_names_missing_tensors() -> TestResult {
    // AnyModel tells the architectures apart; the Mamba loader refuses Caduceus clearly.
    let any = AnyModel::from_dir(&golden("ps-fused"))?;
    assert!(matches!(any, AnyModel::Caduceus(_)));
    assert_eq!(any.info().format.as_str(), "caduceus");
    let e = Model::from_dir(&golden("ps-fused"))
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("caduceus")));
    let mamba = AnyModel::from_dir(&golden("../mamba/small/hf"))?;
    assert!(matches!(mamba, AnyModel::Mamba(_)));

    // Tied reverse projections are absent from ps-fused and aliased to the forward ones.
    let m = CaduceusModel::from_dir(&golden("ps-fused"))?;
    assert!(
        m.layers
            .iter()
            .all(|l| l.rev_proj.is_none() && l.rev.is_some())
    );
    assert!(m.lm_head.is_none());

    // ph-unfused is untied: dropping a reverse projection is an error naming it.
    let src = golden("ph-unfused");
    let bytes = std::fs::read(src.join("model.safetensors"))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let rewrite =
        |drop: &str, add: bool| -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
            let dir = tempfile::tempdir()?;
            let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
            for name in st.names() {
                if name != drop {
                    views.push((name.to_owned(), st.tensor(name)?));
                }
            }
            if add {
                views.push(("caduceus.backbone.extra.weight".into(), st.tensor(drop)?));
            }
            std::fs::write(
                dir.path().join("model.safetensors"),
                safetensors::serialize(views, None)?,
            )?;
            std::fs::copy(src.join("config.json"), dir.path().join("config.json"))?;
            Ok(dir)
        };
    let key = "caduceus.backbone.layers.1.mixer.mamba_rev.in_proj.weight";
    let dir = rewrite(key, false)?;
    let e = CaduceusModel::from_dir(dir.path())
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(
            |e| e.contains("missing") && e.contains("layers.1.mixer.mamba_rev.in_proj.weight")
        ),
        "{e:?}"
    );
    let dir = rewrite("caduceus.backbone.norm_f.weight", true)?;
    let e = CaduceusModel::from_dir(dir.path())
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("norm_f.weight")),
        "{e:?}"
    );

    // A bidirectional engine refuses to continue a window.
    let mut eng = engine(&Arc::new(m), 64, Hidden::Symmetric)?;
    let mut out = Output::default();
    assert!(eng.run(&[7, 8], false, Want::ALL, &mut out).is_err());
    assert!(eng.run(&[7, 99], true, Want::ALL, &mut out).is_err());
    assert!(!eng.is_causal());
    Ok(())
}
