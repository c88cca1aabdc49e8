//! The engines against goldens made by HF transformers' Mamba (tests/golden/mamba/make_goldens.py), in both
//! checkpoint formats and in bf16/f16, plus chunking invariance on real sequence.

use std::path::PathBuf;
use std::sync::Arc;

use genomamba_model::{CpuEngine, Engine, Model, ModelFormat, Output, ReferenceEngine, Simd, Want};
use safetensors::SafeTensors;
use support::{Expected, expected};

mod support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn golden(name: &str) -> PathBuf {
    support::golden("mamba", name)
}

fn lambda(n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    support::lambda(0, n)
}

/// Max over rows of |got - want| / |want| (row norms) and max |p - q| over probabilities.
fn compare(out: &Output, exp: &Expected, d: usize) -> (f64, f64) {
    let mut hid = 0f64;
    for (i, &r) in exp.rows.iter().enumerate() {
        let want = &exp.hidden[i * d..(i + 1) * d];
        let got = &out.hidden[r * d..(r + 1) * d];
        let num: f64 = want
            .iter()
            .zip(got)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        let den: f64 = want.iter().map(|a| f64::from(*a).powi(2)).sum();
        hid = hid.max((num / den).sqrt());
    }
    let mut prob = 0f64;
    for (row, p) in out.base_probs.iter().enumerate() {
        for (j, &v) in p.iter().enumerate() {
            let w = exp.probs[row * 4 + j];
            if row == 0 {
                assert!(v.is_nan() && w.is_nan(), "row 0 has no context");
            } else {
                prob = prob.max(f64::from(v - w).abs());
            }
        }
    }
    (hid, prob)
}

fn check(engine: &mut dyn Engine, exp: &Expected, what: &str) -> TestResult {
    let mut out = Output::default();
    engine.run(&exp.ids, true, Want::ALL, &mut out)?;
    assert_eq!(out.rows, exp.ids.len());
    let (h, p) = compare(&out, exp, engine.hidden_width());
    eprintln!("{what}: hidden max rel {h:.2e}, probs max abs {p:.2e}");
    assert!(h < 1e-4, "{what}: hidden max rel err {h:e}");
    assert!(p < 1e-5, "{what}: base probs max abs err {p:e}");
    Ok(())
}

#[test]
fn test_engines_match_transformers_both_formats() -> TestResult {
    for name in ["odd", "small"] {
        let exp = expected(&golden(name).join("expected.safetensors"))?;
        assert_eq!(
            exp.ids,
            lambda(exp.ids.len())?,
            "golden input is lambda's first bases"
        );
        let hf = Arc::new(Model::from_dir(&golden(name).join("hf"))?);
        let ssm = Arc::new(Model::from_dir(&golden(name).join("ssm"))?);
        assert_eq!(hf.info.format, ModelFormat::HfMamba);
        assert_eq!(ssm.info.format, ModelFormat::MambaSsm);
        assert_eq!(
            hf.layers, ssm.layers,
            "{name}: both formats hold the same weights"
        );
        assert_eq!(hf.lm_head(), ssm.lm_head());
        assert_eq!(hf.info.n_params, ssm.info.n_params);
        assert_ne!(hf.info.sha256, ssm.info.sha256);
        for (fmt, m) in [("hf", &hf), ("ssm", &ssm)] {
            check(
                &mut ReferenceEngine::new(Arc::clone(m)),
                &exp,
                &format!("{name}/{fmt} reference"),
            )?;
            check(
                &mut CpuEngine::new(Arc::clone(m), 2, 65536)?,
                &exp,
                &format!("{name}/{fmt} cpu"),
            )?;
            check(
                &mut CpuEngine::new(Arc::clone(m), 1, 333)?,
                &exp,
                &format!("{name}/{fmt} cpu chunk 333"),
            )?;
        }
    }
    Ok(())
}

/// The conv and scan kernels at every SIMD level this CPU has (AVX-512, AVX2 + FMA, portable) match
/// transformers, not only the best one.
#[test]
fn test_every_simd_level_matches_transformers() -> TestResult {
    for name in ["odd", "small"] {
        let exp = expected(&golden(name).join("expected.safetensors"))?;
        let m = Arc::new(Model::from_dir(&golden(name).join("hf"))?);
        for simd in Simd::available() {
            let mut engine = CpuEngine::new(Arc::clone(&m), 2, 512)?;
            engine.set_simd(simd)?;
            check(&mut engine, &exp, &format!("{name} cpu {simd}"))?;
        }
    }
    Ok(())
}

/// `Model::truncate(K)` (`embed --layer K`): the residual stream after block K, as transformers'
/// `hidden_states[K - 1]`, from both engines, in chunks and at every SIMD level.
#[test]
fn test_truncated_models_give_transformers_hidden_states_per_layer() -> TestResult {
    for name in ["odd", "small"] {
        let exp = expected(&golden(name).join("expected.safetensors"))?;
        let (rows, layers) =
            support::layer_hidden(&golden(name).join("expected-layers.safetensors"))?;
        assert_eq!(rows, exp.rows);
        let full = Model::from_dir(&golden(name).join("hf"))?;
        assert_eq!(layers.len(), full.layers.len());
        for (k, hidden) in (1..).zip(layers) {
            let mut cut = full.clone();
            cut.truncate(k)?;
            assert_eq!((cut.layers.len(), cut.info.dims.n_layer), (k, k));
            let m = Arc::new(cut);
            let want = Expected {
                ids: exp.ids.clone(),
                rows: rows.clone(),
                hidden,
                probs: Vec::new(),
            };
            let mut engines: Vec<(String, Box<dyn Engine>)> = vec![
                (
                    "reference".into(),
                    Box::new(ReferenceEngine::new(Arc::clone(&m))),
                ),
                (
                    "cpu chunk 333".into(),
                    Box::new(CpuEngine::new(Arc::clone(&m), 1, 333)?),
                ),
            ];
            for simd in Simd::available() {
                let mut engine = CpuEngine::new(Arc::clone(&m), 2, 65536)?;
                engine.set_simd(simd)?;
                engines.push((format!("cpu {simd}"), Box::new(engine)));
            }
            for (what, mut engine) in engines {
                let mut out = Output::default();
                let hidden_only = Want {
                    hidden: true,
                    base_probs: false,
                };
                engine.run(&want.ids, true, hidden_only, &mut out)?;
                let (h, _) = compare(&out, &want, m.info.dims.d_model);
                eprintln!("{name} layer {k} {what}: hidden max rel {h:.2e}");
                assert!(
                    h < 1e-4,
                    "{name} layer {k} {what}: hidden max rel err {h:e}"
                );
            }
        }
        let mut cut = full.clone();
        assert!(cut.truncate(0).is_err() && cut.truncate(full.layers.len() + 1).is_err());
    }
    Ok(())
}

#[test]
fn test_half_precision_copies_load_and_match() -> TestResult {
    let full = Model::from_dir(&golden("small").join("hf"))?;
    for tag in ["bf16", "f16"] {
        let m = Arc::new(Model::from_dir(&golden("small").join(format!("hf-{tag}")))?);
        assert_eq!(m.info.dtype, tag);
        assert_eq!(m.info.dims, full.info.dims);
        assert_ne!(m.layers, full.layers, "{tag} weights are rounded");
        let exp = expected(&golden("small").join(format!("expected-{tag}.safetensors")))?;
        check(
            &mut CpuEngine::new(Arc::clone(&m), 2, 4096)?,
            &exp,
            &format!("small/{tag} cpu"),
        )?;
        check(
            &mut ReferenceEngine::new(m),
            &exp,
            &format!("small/{tag} reference"),
        )?;
    }
    Ok(())
}

#[test]
fn test_from_bytes_equals_from_dir() -> TestResult {
    let dir = golden("small").join("hf");
    let a = Model::from_dir(&dir)?;
    let b = Model::from_bytes(
        &std::fs::read(dir.join("config.json"))?,
        &std::fs::read(dir.join("model.safetensors"))?,
    )?;
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.info.sha256, b.info.sha256);
    assert_eq!(b.info.name, "embedded");
    assert_eq!(a.info.sha256.len(), 64);
    Ok(())
}

#[test]
fn test_sharded_safetensors_load() -> TestResult {
    let src = golden("odd").join("hf");
    let bytes = std::fs::read(src.join("model.safetensors"))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let dir = tempfile::tempdir()?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (i, part) in [a, b].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
            .iter()
            .map(|n| Ok((n.clone(), st.tensor(n)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        std::fs::write(dir.path().join(&file), safetensors::serialize(views, None)?)?;
        for n in part {
            map.insert(n.clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::to_vec(&index)?,
    )?;
    std::fs::copy(src.join("config.json"), dir.path().join("config.json"))?;
    let sharded = Model::from_dir(dir.path())?;
    let single = Model::from_dir(&src)?;
    assert_eq!(sharded.layers, single.layers);
    assert_eq!(sharded.lm_head(), single.lm_head());
    assert_ne!(
        sharded.info.sha256, single.info.sha256,
        "digest of two shards"
    );
    Ok(())
}
