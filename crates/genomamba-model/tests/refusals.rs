//! Checkpoints that are not the Mamba-1 model the config describes are refused with an error naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use genomamba_model::Model;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn small() -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/mamba/small/hf");
    Ok((
        std::fs::read(dir.join("config.json"))?,
        std::fs::read(dir.join("model.safetensors"))?,
    ))
}

/// Re-serialises the checkpoint after `edit` changes its tensor list; returns the load error text.
fn load_edited(
    edit: impl for<'a> FnOnce(&mut BTreeMap<String, TensorView<'a>>, &'a [u8]),
) -> Result<String, Box<dyn std::error::Error>> {
    let (config, bytes) = small()?;
    let zeros = vec![0u8; 4 * 64 * 1000];
    let st = SafeTensors::deserialize(&bytes)?;
    let mut map: BTreeMap<String, TensorView<'_>> = st.tensors().into_iter().collect();
    edit(&mut map, &zeros);
    let edited = safetensors::serialize(map, None)?;
    Ok(Model::from_bytes(&config, &edited)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default())
}

#[test]
fn test_missing_tensor_is_named() -> TestResult {
    let e = load_edited(|m, _| {
        m.remove("backbone.layers.1.mixer.A_log");
    })?;
    assert!(
        e.contains("missing tensor `backbone.layers.1.mixer.A_log`"),
        "{e}"
    );
    Ok(())
}

#[test]
fn test_shape_mismatch_is_named() -> TestResult {
    let e = load_edited(|m, z| {
        if let Ok(v) = TensorView::new(Dtype::F32, vec![64, 8], &z[..64 * 8 * 4]) {
            m.insert("backbone.layers.0.mixer.A_log".into(), v);
        }
    })?;
    assert!(
        e.contains("backbone.layers.0.mixer.A_log") && e.contains("[64, 16]"),
        "{e}"
    );
    Ok(())
}

#[test]
fn test_unknown_tensor_is_refused() -> TestResult {
    let e = load_edited(|m, z| {
        if let Ok(v) = TensorView::new(Dtype::F32, vec![32], &z[..128]) {
            m.insert("backbone.layers.0.mixer.attn.q_proj.weight".into(), v);
        }
    })?;
    assert!(
        e.contains("unexpected tensor `backbone.layers.0.mixer.attn.q_proj.weight`"),
        "{e}"
    );
    Ok(())
}

#[test]
fn test_non_finite_weights_are_refused() -> TestResult {
    for (value, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let e = load_edited(|m, _| {
            let key = "backbone.layers.1.mixer.in_proj.weight";
            let shape = m[key].shape().to_vec();
            let mut data: Vec<f32> = vec![0.5; shape.iter().product()];
            data[7] = value;
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            // The view borrows its bytes for the map's lifetime; a test can leak them.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if let Ok(v) = TensorView::new(Dtype::F32, shape, bytes) {
                m.insert(key.into(), v);
            }
        })?;
        assert!(
            e.contains("tensor `backbone.layers.1.mixer.in_proj.weight` holds")
                && e.contains(&format!("{shown} at element 7")),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn test_integer_weights_are_refused() -> TestResult {
    let e = load_edited(|m, z| {
        if let Ok(v) = TensorView::new(Dtype::I32, vec![32], &z[..128]) {
            m.insert("backbone.norm_f.weight".into(), v);
        }
    })?;
    assert!(
        e.contains("backbone.norm_f.weight") && e.contains("dtype"),
        "{e}"
    );
    Ok(())
}

#[test]
fn test_mamba2_and_hybrids_are_refused() -> TestResult {
    let (_, bytes) = small()?;
    for (config, key) in [
        (r#"{"model_type":"mamba2","hidden_size":32}"#, "mamba2"),
        (
            r#"{"d_model":32,"n_layer":2,"vocab_size":12,"ssm_cfg":{"layer":"Mamba2"}}"#,
            "ssm_cfg.layer",
        ),
        (
            r#"{"d_model":32,"n_layer":2,"vocab_size":12,"attn_layer_idx":[1],"attn_cfg":{}}"#,
            "attn_layer_idx",
        ),
        (
            r#"{"d_model":32,"n_layer":2,"vocab_size":12,"d_intermediate":64}"#,
            "d_intermediate",
        ),
        (
            r#"{"model_type":"mamba","hidden_size":32,"num_hidden_layers":2,"vocab_size":16,"state_size":8}"#,
            "x_proj.weight",
        ),
    ] {
        let e = Model::from_bytes(config.as_bytes(), &bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(key), "{config}: {e}");
    }
    Ok(())
}
