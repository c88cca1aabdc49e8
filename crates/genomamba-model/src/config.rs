//! One typed Mamba-1 config parsed from HF transformers (`model_type: mamba`) or mamba-ssm `config.json`.

use serde_json::{Map, Value};

use crate::engine::ModelFormat;
use crate::{Error, Result};

/// Hyper-parameters of a Mamba-1 language model. Every size is read from the config (with the format's
/// documented defaults) and later cross-checked against the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Which layout the config (and so the weight names) follows.
    pub format: ModelFormat,
    /// Residual stream width.
    pub d_model: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Embedding rows (padded vocabulary).
    pub vocab_size: usize,
    /// SSM state size per channel.
    pub d_state: usize,
    /// Conv width.
    pub d_conv: usize,
    /// Inner width `expand * d_model`.
    pub d_inner: usize,
    /// Rank of the Δ projection.
    pub dt_rank: usize,
    /// `in_proj` / `out_proj` carry biases.
    pub bias: bool,
    /// `conv1d` carries a bias.
    pub conv_bias: bool,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// LM head shares the embedding matrix.
    pub tie_embeddings: bool,
}

pub(crate) fn bad(key: &str, reason: impl Into<String>) -> Error {
    Error::ConfigValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn get_usize(
    m: &Map<String, Value>,
    key: &str,
    default: Option<usize>,
) -> Result<usize> {
    match m.get(key) {
        None | Some(Value::Null) => default.ok_or_else(|| bad(key, "missing")),
        Some(v) => v
            .as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .filter(|&x| x > 0)
            .ok_or_else(|| bad(key, format!("expected a positive integer, got {v}"))),
    }
}

pub(crate) fn get_f64(m: &Map<String, Value>, key: &str, default: f64) -> Result<f64> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| bad(key, format!("expected a number, got {v}"))),
    }
}

pub(crate) fn get_bool(m: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad(key, format!("expected a boolean, got {v}"))),
    }
}

/// `expand` may be written as an integer or a float (`2` or `2.0`); `d_inner = int(expand * d_model)`.
pub(crate) fn inner_width(m: &Map<String, Value>, key: &str, d_model: usize) -> Result<usize> {
    let expand = get_f64(m, key, 2.0)?;
    let d_inner = (expand * d_model as f64).floor();
    if !(1.0..1e9).contains(&d_inner) {
        return Err(bad(key, format!("{expand} gives no usable inner width")));
    }
    Ok(d_inner as usize)
}

/// `"auto"` means `ceil(d_model / 16)`.
pub(crate) fn rank(m: &Map<String, Value>, key: &str, d_model: usize) -> Result<usize> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(d_model.div_ceil(16)),
        Some(Value::String(s)) if s == "auto" => Ok(d_model.div_ceil(16)),
        Some(_) => get_usize(m, key, None),
    }
}

impl Config {
    /// Parses `config.json` bytes, choosing the format from its keys: `model_type: "mamba"` is HF transformers;
    /// no `model_type` but `d_model` is mamba-ssm. Refuses Mamba-2, hybrid attention/MLP and other model types.
    pub fn from_json(bytes: &[u8]) -> Result<Config> {
        let v: Value = serde_json::from_slice(bytes)?;
        let m = v
            .as_object()
            .ok_or_else(|| bad("", "config.json is not a JSON object"))?;
        let c = Self::parse(m)?;
        if c.d_conv < 2 {
            let key = if c.format == ModelFormat::HfMamba {
                "conv_kernel"
            } else {
                "ssm_cfg.d_conv"
            };
            return Err(bad(key, "a conv width below 2 is not supported"));
        }
        Ok(c)
    }

    fn parse(m: &Map<String, Value>) -> Result<Config> {
        match m.get("model_type").and_then(Value::as_str) {
            Some("mamba") => Self::from_hf(m),
            Some("caduceus") => Err(Error::Unsupported(
                "config.json `model_type` is \"caduceus\": load it with `AnyModel::from_dir` (bidirectional engine)"
                    .into(),
            )),
            Some(other) => Err(Error::Unsupported(format!(
                "config.json `model_type` is {other:?}; only Mamba-1 (\"mamba\" or a mamba-ssm config) is supported"
            ))),
            None if m.contains_key("d_model") => Self::from_mamba_ssm(m),
            None => Err(bad(
                "model_type",
                "missing, and no mamba-ssm `d_model` either",
            )),
        }
    }

    fn from_hf(m: &Map<String, Value>) -> Result<Config> {
        let d_model = get_usize(m, "hidden_size", Some(768))?;
        let d_inner = inner_width(m, "expand", d_model)?;
        if let Some(i) = m.get("intermediate_size").and_then(Value::as_u64)
            && i as usize != d_inner
        {
            return Err(bad(
                "intermediate_size",
                format!("{i} disagrees with expand * hidden_size = {d_inner}"),
            ));
        }
        let act = m
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("silu");
        if act != "silu" {
            return Err(bad(
                "hidden_act",
                format!("{act:?} is not supported (only \"silu\")"),
            ));
        }
        Ok(Config {
            format: ModelFormat::HfMamba,
            d_model,
            n_layer: get_usize(m, "num_hidden_layers", Some(32))?,
            vocab_size: get_usize(m, "vocab_size", Some(50280))?,
            d_state: get_usize(m, "state_size", Some(16))?,
            d_conv: get_usize(m, "conv_kernel", Some(4))?,
            d_inner,
            dt_rank: rank(m, "time_step_rank", d_model)?,
            bias: get_bool(m, "use_bias", false)?,
            conv_bias: get_bool(m, "use_conv_bias", true)?,
            norm_eps: get_f64(m, "layer_norm_epsilon", 1e-5)?,
            tie_embeddings: get_bool(m, "tie_word_embeddings", true)?,
        })
    }

    fn from_mamba_ssm(m: &Map<String, Value>) -> Result<Config> {
        if get_usize(m, "d_intermediate", Some(0)).unwrap_or(0) > 0 {
            return Err(Error::Unsupported(
                "config key `d_intermediate` > 0 (a gated MLP per block)".into(),
            ));
        }
        if let Some(a) = m.get("attn_layer_idx").and_then(Value::as_array)
            && !a.is_empty()
        {
            return Err(Error::Unsupported(
                "config key `attn_layer_idx` is not empty (attention layers)".into(),
            ));
        }
        if !get_bool(m, "rms_norm", true)? {
            return Err(Error::Unsupported(
                "config key `rms_norm` is false (LayerNorm blocks)".into(),
            ));
        }
        let empty = Map::new();
        let ssm = match m.get("ssm_cfg") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(s)) => s,
            Some(v) => return Err(bad("ssm_cfg", format!("expected an object, got {v}"))),
        };
        if let Some(layer) = ssm.get("layer").and_then(Value::as_str)
            && layer != "Mamba1"
        {
            return Err(Error::Unsupported(format!(
                "config key `ssm_cfg.layer` is {layer:?} (only Mamba1)"
            )));
        }
        let d_model = get_usize(m, "d_model", None)?;
        let vocab = get_usize(m, "vocab_size", Some(50277))?;
        let pad = get_usize(m, "pad_vocab_size_multiple", Some(8))?;
        let sub = |k: &str| format!("ssm_cfg.{k}");
        let wrap = |k: &'static str| move |e: Error| rename_key(e, &sub(k));
        Ok(Config {
            format: ModelFormat::MambaSsm,
            d_model,
            n_layer: get_usize(m, "n_layer", None)?,
            vocab_size: vocab.div_ceil(pad) * pad,
            d_state: get_usize(ssm, "d_state", Some(16)).map_err(wrap("d_state"))?,
            d_conv: get_usize(ssm, "d_conv", Some(4)).map_err(wrap("d_conv"))?,
            d_inner: inner_width(ssm, "expand", d_model).map_err(wrap("expand"))?,
            dt_rank: rank(ssm, "dt_rank", d_model).map_err(wrap("dt_rank"))?,
            bias: get_bool(ssm, "bias", false).map_err(wrap("bias"))?,
            conv_bias: get_bool(ssm, "conv_bias", true).map_err(wrap("conv_bias"))?,
            norm_eps: get_f64(m, "norm_epsilon", 1e-5)?,
            tie_embeddings: get_bool(m, "tie_embeddings", true)?,
        })
    }
}

pub(crate) fn rename_key(e: Error, key: &str) -> Error {
    match e {
        Error::ConfigValue { reason, .. } => Error::ConfigValue {
            key: key.to_owned(),
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hf_defaults_and_auto_rank() -> Result<()> {
        let c = Config::from_json(
            br#"{"model_type":"mamba","hidden_size":48,"num_hidden_layers":2,
            "vocab_size":16,"state_size":8,"conv_kernel":3,"expand":2,"time_step_rank":"auto"}"#,
        )?;
        assert_eq!((c.d_inner, c.dt_rank, c.d_state, c.d_conv), (96, 3, 8, 3));
        assert!(c.tie_embeddings && c.conv_bias && !c.bias);
        assert_eq!(c.format, ModelFormat::HfMamba);
        Ok(())
    }

    #[test]
    fn test_mamba_ssm_pads_vocab() -> Result<()> {
        let c = Config::from_json(
            br#"{"d_model":768,"n_layer":24,"vocab_size":50277,"ssm_cfg":{},
            "pad_vocab_size_multiple":8}"#,
        )?;
        assert_eq!(
            (c.vocab_size, c.dt_rank, c.d_inner, c.d_state),
            (50280, 48, 1536, 16)
        );
        assert_eq!(c.format, ModelFormat::MambaSsm);
        Ok(())
    }

    #[test]
    fn test_refusals_name_the_key() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"d_model":8,"n_layer":1,"ssm_cfg":{"layer":"Mamba2"}}"#,
                "ssm_cfg.layer",
            ),
            (
                br#"{"d_model":8,"n_layer":1,"d_intermediate":32}"#,
                "d_intermediate",
            ),
            (
                br#"{"d_model":8,"n_layer":1,"attn_layer_idx":[1]}"#,
                "attn_layer_idx",
            ),
            (br#"{"model_type":"mamba2"}"#, "mamba2"),
            (
                br#"{"d_model":8,"n_layer":1,"ssm_cfg":{"d_state":"x"}}"#,
                "ssm_cfg.d_state",
            ),
        ];
        for (json, key) in cases {
            let e = Config::from_json(json)
                .map(|_| ())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(key), "{e:?} should name {key}");
        }
    }
}
