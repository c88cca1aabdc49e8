//! `genomamba inspect`: what a model is, in text or JSON, and the model description written to metadata.

use std::io::Write;

use anyhow::Context;
use genomamba_model::Model;
use serde_json::{Value, json};

use crate::args::InspectArgs;

/// The token vocabulary (DESIGN §3), as printed and recorded.
pub const VOCABULARY: &str =
    "[CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6 A=7 C=8 G=9 T=10 N=11";

/// The model's description for the Parquet metadata and `inspect --json`.
pub fn model_json(model: &Model) -> Value {
    let info = &model.info;
    let d = &info.dims;
    json!({
        "name": info.name,
        "format": info.format.as_str(),
        "sha256": info.sha256,
        "weights_dtype": info.dtype,
        "parameters": info.n_params,
        "causal": info.causal,
        "d_model": d.d_model,
        "n_layer": d.n_layer,
        "d_inner": d.d_inner,
        "d_state": d.d_state,
        "d_conv": d.d_conv,
        "dt_rank": d.dt_rank,
        "vocab_size": d.vocab_size,
        "norm_eps": info.norm_eps,
    })
}

/// Runs `genomamba inspect`.
pub fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let (model, card) = match &args.model {
        Some(dir) => (
            Model::from_dir(dir)
                .with_context(|| format!("loading the model in {}", dir.display()))?,
            None,
        ),
        None => (
            crate::embedded::load().context("loading the embedded model")?,
            Some(crate::embedded::card_summary()),
        ),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = model_json(&model);
        if let (Value::Object(map), Some(card)) = (&mut value, &card) {
            map.insert("card".into(), json!(card));
        }
        map_vocab(&mut value);
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let info = &model.info;
    let d = &info.dims;
    let rows = [
        ("model", info.name.clone()),
        ("format", info.format.as_str().to_string()),
        (
            "weights",
            format!("{} on disk, computed in f32", info.dtype),
        ),
        ("sha256", info.sha256.clone()),
        ("parameters", info.n_params.to_string()),
        (
            "causal",
            if info.causal {
                "yes (state streams across chunks)"
            } else {
                "no"
            }
            .to_string(),
        ),
        ("d_model", d.d_model.to_string()),
        ("n_layer", d.n_layer.to_string()),
        ("d_inner", d.d_inner.to_string()),
        ("d_state", d.d_state.to_string()),
        ("d_conv", d.d_conv.to_string()),
        ("dt_rank", d.dt_rank.to_string()),
        ("vocab_size", d.vocab_size.to_string()),
        ("norm_eps", info.norm_eps.to_string()),
        ("vocabulary", VOCABULARY.to_string()),
    ];
    for (key, value) in rows {
        writeln!(out, "{key:<12} {value}")?;
    }
    if let Some(card) = card {
        writeln!(out, "\n{card}")?;
    }
    Ok(())
}

fn map_vocab(value: &mut Value) {
    if let Value::Object(map) = value {
        map.insert("vocabulary".into(), json!(VOCABULARY));
    }
}
