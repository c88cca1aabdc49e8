//! The typed Caduceus `config.json` (`model_type: caduceus`; reference/mamba.md §3.1).

use serde_json::{Map, Value};

use crate::caduceus::engine::Hidden;
use crate::config::{bad, get_bool, get_f64, get_usize, inner_width, rank, rename_key};
use crate::{Error, Result};

/// How the forward and reverse Mamba outputs of a BiMamba mixer are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `out = fwd + rev` (the published checkpoints).
    Add,
    /// `out = fwd * rev`, element-wise.
    EwMultiply,
}

impl Strategy {
    /// The config spelling (`"add"`, `"ew_multiply"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Add => "add",
            Strategy::EwMultiply => "ew_multiply",
        }
    }
}

/// Hyper-parameters of a Caduceus masked LM. Sizes are those of each Mamba (`d_model`); an RCPS model's
/// residual stream is `2 * d_model` wide.
#[derive(Clone, Debug, PartialEq)]
pub struct CaduceusConfig {
    /// Width of each Mamba and of the embedding.
    pub d_model: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Embedding rows: `vocab_size` padded up to a multiple of `pad_vocab_size_multiple`.
    pub vocab_size: usize,
    /// SSM state size per channel (`ssm_cfg.d_state`).
    pub d_state: usize,
    /// Conv width (`ssm_cfg.d_conv`).
    pub d_conv: usize,
    /// `int(ssm_cfg.expand * d_model)`.
    pub d_inner: usize,
    /// Rank of the Δ projection (`ssm_cfg.dt_rank`, `"auto"` = ceil(d_model / 16)).
    pub dt_rank: usize,
    /// `in_proj` / `out_proj` carry biases (`ssm_cfg.bias`).
    pub bias: bool,
    /// `conv1d` carries a bias (`ssm_cfg.conv_bias`).
    pub conv_bias: bool,
    /// RMSNorm epsilon (`norm_epsilon`).
    pub norm_eps: f64,
    /// `residual_in_fp32`: recorded only, compute is f32 throughout.
    pub residual_in_fp32: bool,
    /// `fused_add_norm`: for RCPS the fused block swaps the residual halves every layer (a different function).
    pub fused_add_norm: bool,
    /// Whether each mixer also runs a reverse-direction Mamba.
    pub bidirectional: bool,
    /// How the two directions combine.
    pub strategy: Strategy,
    /// The reverse Mamba shares `in_proj` / `out_proj` with the forward one.
    pub weight_tie: bool,
    /// Reverse-complement parameter sharing (Caduceus-PS).
    pub rcps: bool,
    /// Token id -> complement id, `(vocab_size,)`; identity where the config is silent.
    pub complement: Vec<usize>,
    /// The LM head is the embedding (`tie_word_embeddings`, default true).
    pub tie_embeddings: bool,
}

impl CaduceusConfig {
    /// Parses `config.json` bytes of a `model_type: caduceus` model; errors name the key at fault.
    pub fn from_json(bytes: &[u8]) -> Result<CaduceusConfig> {
        let v: Value = serde_json::from_slice(bytes)?;
        let m = v
            .as_object()
            .ok_or_else(|| bad("", "config.json is not a JSON object"))?;
        match m.get("model_type").and_then(Value::as_str) {
            Some("caduceus") => {}
            other => {
                return Err(bad(
                    "model_type",
                    format!("expected \"caduceus\", got {other:?}"),
                ));
            }
        }
        if !get_bool(m, "rms_norm", true)? {
            return Err(Error::Unsupported(
                "config key `rms_norm` is false (LayerNorm Caduceus blocks are not supported)"
                    .into(),
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
        let sub = |k: &'static str| move |e: Error| rename_key(e, &format!("ssm_cfg.{k}"));
        let d_model = get_usize(m, "d_model", None)?;
        let vocab = get_usize(m, "vocab_size", None)?;
        let pad = get_usize(m, "pad_vocab_size_multiple", Some(8))?;
        let vocab_size = vocab.div_ceil(pad) * pad;
        let bidirectional = get_bool(m, "bidirectional", true)?;
        let strategy = match m.get("bidirectional_strategy") {
            None | Some(Value::Null) => Strategy::Add,
            Some(Value::String(s)) if s == "add" => Strategy::Add,
            Some(Value::String(s)) if s == "ew_multiply" => Strategy::EwMultiply,
            Some(v) => {
                return Err(bad(
                    "bidirectional_strategy",
                    format!("{v} is not supported (\"add\" or \"ew_multiply\")"),
                ));
            }
        };
        let rcps = get_bool(m, "rcps", false)?;
        let complement = complement_map(m.get("complement_map"), vocab_size, rcps)?;
        let c = CaduceusConfig {
            d_model,
            n_layer: get_usize(m, "n_layer", None)?,
            vocab_size,
            d_state: get_usize(ssm, "d_state", Some(16)).map_err(sub("d_state"))?,
            d_conv: get_usize(ssm, "d_conv", Some(4)).map_err(sub("d_conv"))?,
            d_inner: inner_width(ssm, "expand", d_model).map_err(sub("expand"))?,
            dt_rank: rank(ssm, "dt_rank", d_model).map_err(sub("dt_rank"))?,
            bias: get_bool(ssm, "bias", false).map_err(sub("bias"))?,
            conv_bias: get_bool(ssm, "conv_bias", true).map_err(sub("conv_bias"))?,
            norm_eps: get_f64(m, "norm_epsilon", 1e-5)?,
            residual_in_fp32: get_bool(m, "residual_in_fp32", true)?,
            fused_add_norm: get_bool(m, "fused_add_norm", true)?,
            bidirectional,
            strategy,
            weight_tie: get_bool(m, "bidirectional_weight_tie", true)?,
            rcps,
            complement,
            tie_embeddings: get_bool(m, "tie_word_embeddings", true)?,
        };
        if c.d_conv < 2 {
            return Err(bad(
                "ssm_cfg.d_conv",
                "a conv width below 2 is not supported",
            ));
        }
        if c.rcps && !c.tie_embeddings {
            return Err(bad(
                "tie_word_embeddings",
                "an RCPS model's LM head is always the embedding",
            ));
        }
        Ok(c)
    }

    /// Width of the embedding rows an engine gives for `hidden`: the raw state's width, or `d_model`.
    pub fn hidden_width(&self, hidden: Hidden) -> usize {
        match hidden {
            Hidden::Raw => self.stream_width(),
            Hidden::Symmetric => self.d_model,
        }
    }

    /// Whether the embedding for `hidden` is strand-symmetric (PS, not raw): a reverse-complement pass adds
    /// nothing.
    pub fn strand_symmetric(&self, hidden: Hidden) -> bool {
        self.rcps && hidden == Hidden::Symmetric
    }

    /// Width of the residual stream and of the raw final hidden state (`2 d_model` for RCPS).
    pub fn stream_width(&self) -> usize {
        if self.rcps {
            2 * self.d_model
        } else {
            self.d_model
        }
    }
}

/// `complement_map`: an object keyed by integer strings (`{"7": 10, ...}`), extended with the identity up to
/// `vocab` as Caduceus does for padded ids. Required for RCPS.
fn complement_map(v: Option<&Value>, vocab: usize, rcps: bool) -> Result<Vec<usize>> {
    let mut map: Vec<usize> = (0..vocab).collect();
    let obj = match v {
        None | Some(Value::Null) if rcps => {
            return Err(bad("complement_map", "missing (an RCPS model needs it)"));
        }
        None | Some(Value::Null) => return Ok(map),
        Some(Value::Object(o)) => o,
        Some(v) => {
            return Err(bad(
                "complement_map",
                format!("expected an object, got {v}"),
            ));
        }
    };
    for (k, val) in obj {
        let key = format!("complement_map.{k}");
        let from = k
            .parse::<usize>()
            .ok()
            .filter(|&i| i < vocab)
            .ok_or_else(|| bad(&key, format!("key is not a token id below {vocab}")))?;
        let to = val
            .as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .filter(|&i| i < vocab)
            .ok_or_else(|| bad(&key, format!("{val} is not a token id below {vocab}")))?;
        map[from] = to;
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &[u8] = br#"{"model_type":"caduceus","d_model":256,"n_layer":16,"vocab_size":12,
        "ssm_cfg":{"d_state":16,"d_conv":4,"expand":2,"dt_rank":"auto"},"rms_norm":true,
        "residual_in_fp32":false,"fused_add_norm":true,"pad_vocab_size_multiple":8,"bidirectional":true,
        "bidirectional_strategy":"add","bidirectional_weight_tie":true,"rcps":true,
        "complement_map":{"0":0,"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":10,"8":9,"9":8,"10":7,"11":11}}"#;

    #[test]
    fn test_published_ps_config() -> Result<()> {
        let c = CaduceusConfig::from_json(PS)?;
        assert_eq!(
            (c.vocab_size, c.d_inner, c.dt_rank, c.d_state, c.d_conv),
            (16, 512, 16, 16, 4)
        );
        assert!(c.rcps && c.fused_add_norm && c.weight_tie && c.bidirectional);
        assert_eq!(c.strategy, Strategy::Add);
        assert_eq!(c.complement[7..12], [10, 9, 8, 7, 11]);
        assert_eq!(
            c.complement[12..],
            [12, 13, 14, 15],
            "padded ids map to themselves"
        );
        assert_eq!(c.stream_width(), 512);
        Ok(())
    }

    #[test]
    fn test_refusals_name_the_key() {
        let text = std::str::from_utf8(PS).unwrap_or_default();
        let cases = [
            (
                text.replace("\"add\"", "\"concat\""),
                "bidirectional_strategy",
            ),
            (text.replace("\"7\":10", "\"7\":99"), "complement_map.7"),
            (text.replace("\"7\":10", "\"x\":10"), "complement_map.x"),
            (
                text.replace("\"complement_map\"", "\"cm\""),
                "complement_map",
            ),
            (
                text.replace("\"d_state\":16", "\"d_state\":0"),
                "ssm_cfg.d_state",
            ),
            (
                text.replace("\"rms_norm\":true", "\"rms_norm\":false"),
                "rms_norm",
            ),
            (text.replace("\"n_layer\":16,", ""), "n_layer"),
        ];
        for (json, key) in cases {
            let e = CaduceusConfig::from_json(json.as_bytes())
                .map(|_| ())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(key), "{e:?} should name {key}");
        }
    }
}
