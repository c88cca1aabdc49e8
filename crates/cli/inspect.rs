//! `genomamba inspect`: what a model is, in text or JSON, and the model description written to metadata.

use std::io::Write;

use std::sync::Arc;

use anyhow::Context;
use genomamba_model::caduceus::{CaduceusModel, Hidden};
use genomamba_model::{AnyModel, Architecture};
use serde_json::{Value, json};

use crate::args::InspectArgs;

/// The token vocabulary (DESIGN §3), as printed and recorded.
pub const VOCABULARY: &str =
    "[CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6 A=7 C=8 G=9 T=10 N=11";

/// The model's description for the Parquet metadata and `inspect --json`; `hidden`: the embedding a
/// Caduceus-PS run writes.
pub fn model_json(model: &AnyModel, hidden: Hidden) -> Value {
    let info = model.info();
    let d = &info.dims;
    let mut value = json!({
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
    });
    if let (AnyModel::Caduceus(m), Value::Object(map)) = (model, &mut value) {
        for (k, v) in caduceus_json(m, hidden) {
            map.insert(k.into(), v);
        }
    }
    value
}

/// What a Caduceus model is and how genomamba reads its outputs.
fn caduceus_json(m: &CaduceusModel, hidden: Hidden) -> Vec<(&'static str, Value)> {
    let c = &m.config;
    let embedding = match (c.rcps, hidden) {
        (false, _) => "final hidden state after norm_f (d_model)",
        (true, Hidden::Symmetric) => {
            "strand-symmetric (h1 + reverse_channels(h2)) / 2 of the final hidden state [h1 | h2] after norm_f \
             (d_model)"
        }
        (true, Hidden::Raw) => "raw final hidden state [h1 | h2] after norm_f (2 x d_model)",
    };
    vec![
        ("variant", json!(if c.rcps { "ps" } else { "ph" })),
        ("rcps", json!(c.rcps)),
        ("fused_add_norm", json!(c.fused_add_norm)),
        ("bidirectional", json!(c.bidirectional)),
        ("bidirectional_strategy", json!(c.strategy.as_str())),
        ("bidirectional_weight_tie", json!(c.weight_tie)),
        ("embedding", json!(embedding)),
        (
            "predictions",
            json!(
                "masked-LM head at each position with no masking: p_a..p_t are the model's distribution at \
                 a position whose own base is visible to it, not P(base | context)"
            ),
        ),
        (
            "windows",
            json!("bidirectional: each window runs whole, with --overlap flanks on both sides"),
        ),
    ]
}

/// Runs `genomamba inspect`.
pub fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let (model, card) = match &args.model {
        Some(dir) => (crate::plan::load_model_dir(dir)?, None),
        None => (
            AnyModel::Mamba(Arc::new(
                crate::embedded::load().context("loading the embedded model")?,
            )),
            Some(crate::embedded::card_summary()),
        ),
    };
    let architecture = model.architecture();
    let (window, overlap) = (
        crate::plan::default_window(architecture),
        crate::plan::default_overlap(architecture),
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = model_json(&model, Hidden::Symmetric);
        if let Value::Object(map) = &mut value {
            map.insert("default_window".into(), json!(window));
            map.insert("default_overlap".into(), json!(overlap));
            if let Some(card) = &card {
                map.insert("card".into(), json!(card));
            }
        }
        map_vocab(&mut value);
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let info = model.info();
    let d = &info.dims;
    let mut rows = vec![
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
        (
            "windows",
            match architecture {
                Architecture::Mamba => format!(
                    "{window} bases after {overlap} of burn-in by default (--window, --overlap)"
                ),
                Architecture::Caduceus => format!(
                    "{window} bases with {overlap} on each side by default (--window, --overlap)"
                ),
            },
        ),
    ];
    if let AnyModel::Caduceus(m) = &model {
        let c = &m.config;
        let variant = if c.rcps {
            "PS (reverse-complement equivariant, rcps)"
        } else {
            "Ph (rcps false)"
        };
        rows.push(("caduceus", variant.to_string()));
        rows.push(("add-norm", format!("fused {}", c.fused_add_norm)));
        rows.push((
            "bidirection",
            format!(
                "{}, strategy {}, weight tie {}",
                c.bidirectional,
                c.strategy.as_str(),
                c.weight_tie
            ),
        ));
    }
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
