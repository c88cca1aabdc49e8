//! A loaded Mamba-1 language model: every weight as a plain row-major f32 `Vec` with documented shape, so any
//! engine (reference, CPU, CUDA) can read or upload it.

use std::path::Path;

use crate::config::Config;
use crate::engine::{Dims, ModelFormat, ModelInfo};
use crate::weights::{Tensors, read};
use crate::{Error, Result};

/// Weights of one Mamba block (`backbone.layers.{i}`). `E = d_inner`, `N = d_state`, `K = d_conv`,
/// `R = dt_rank`, `D = d_model`. Matrices follow PyTorch `nn.Linear`: `(out, in)` row-major, `y = x W^T + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// `norm.weight`, `(D,)`: RMSNorm scale applied before the mixer.
    pub norm: Vec<f32>,
    /// `mixer.in_proj.weight`, `(2E, D)`: rows `[0, E)` give x (conv branch), rows `[E, 2E)` give z (gate).
    pub in_proj: Vec<f32>,
    /// `mixer.in_proj.bias`, `(2E,)`, when `bias` is on.
    pub in_proj_bias: Option<Vec<f32>>,
    /// `mixer.conv1d.weight` `(E, 1, K)` stored `(E, K)`: tap `K-1` multiplies the current token.
    pub conv_weight: Vec<f32>,
    /// `mixer.conv1d.bias`, `(E,)`, when `conv_bias` is on.
    pub conv_bias: Option<Vec<f32>>,
    /// `mixer.x_proj.weight`, `(R + 2N, E)`: output columns `[dt_low | B | C]`.
    pub x_proj: Vec<f32>,
    /// `mixer.dt_proj.weight`, `(E, R)`.
    pub dt_proj: Vec<f32>,
    /// `mixer.dt_proj.bias`, `(E,)`: added before the softplus.
    pub dt_bias: Vec<f32>,
    /// `mixer.A_log`, `(E, N)`: `A = -exp(A_log)`.
    pub a_log: Vec<f32>,
    /// `mixer.D`, `(E,)`: skip connection.
    pub d: Vec<f32>,
    /// `mixer.out_proj.weight`, `(D, E)`.
    pub out_proj: Vec<f32>,
    /// `mixer.out_proj.bias`, `(D,)`, when `bias` is on.
    pub out_proj_bias: Option<Vec<f32>>,
}

/// A Mamba-1 language model held in f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Format, sizes, checksum, parameter count.
    pub info: ModelInfo,
    /// `backbone.embedding(s).weight`, `(vocab, D)`.
    pub embedding: Vec<f32>,
    /// `lm_head.weight`, `(vocab, D)`; `None` when tied to [`Model::embedding`] (use [`Model::lm_head`]).
    pub lm_head: Option<Vec<f32>>,
    /// Blocks in order.
    pub layers: Vec<LayerWeights>,
    /// `backbone.norm_f.weight`, `(D,)`.
    pub norm_f: Vec<f32>,
    /// Whether the hidden state the engines give is normalised by [`Model::norm_f`] (the model's final hidden
    /// state), or is the raw residual stream after the last block ([`Model::truncate`]).
    pub final_norm: bool,
}

impl Model {
    /// Loads a model directory holding `config.json` and `model.safetensors` (or shards, or `pytorch_model.bin`).
    pub fn from_dir(dir: &Path) -> Result<Model> {
        let config = Config::from_json(&read(&dir.join("config.json"))?)?;
        let tensors = Tensors::from_dir(dir)?;
        let name = crate::hub::model_name(dir);
        Model::from_parts(&config, tensors, name)
    }

    /// Loads a model from in-memory `config.json` and `model.safetensors` images (e.g. `include_bytes!`).
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8]) -> Result<Model> {
        let config = Config::from_json(config_json)?;
        let mut tensors = Tensors::default();
        tensors.add_safetensors(safetensors)?;
        Model::from_parts(&config, tensors, "embedded".to_owned())
    }

    /// Builds a model from a parsed config and its tensors, checking every shape and refusing leftovers.
    pub fn from_parts(c: &Config, mut t: Tensors, name: String) -> Result<Model> {
        let (d, e, n, k, r, v) = (
            c.d_model,
            c.d_inner,
            c.d_state,
            c.d_conv,
            c.dt_rank,
            c.vocab_size,
        );
        let mut emb_key = "backbone.embeddings.weight";
        let alt = "backbone.embedding.weight";
        if (c.format == ModelFormat::MambaSsm || !t.map.contains_key(emb_key))
            && t.map.contains_key(alt)
        {
            emb_key = alt;
        }
        let embedding = t.take(emb_key, &[v, d])?;
        let lm_head = if c.tie_embeddings {
            // Tied: a stored copy must equal the embedding; it is dropped and aliased.
            if let Some(h) = t.take_opt("lm_head.weight", &[v, d])?
                && h != embedding
            {
                return Err(Error::Unsupported(
                    "`lm_head.weight` differs from the embedding although the config ties them"
                        .into(),
                ));
            }
            None
        } else {
            Some(t.take("lm_head.weight", &[v, d])?)
        };
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = format!("backbone.layers.{i}.");
            let m = format!("{p}mixer.");
            let conv_weight = t.take(&format!("{m}conv1d.weight"), &[e, 1, k])?;
            let opt = |t: &mut Tensors,
                       on: bool,
                       key: String,
                       shape: &[usize]|
             -> Result<Option<Vec<f32>>> {
                if on {
                    t.take(&key, shape).map(Some)
                } else {
                    Ok(None)
                }
            };
            layers.push(LayerWeights {
                norm: t.take(&format!("{p}norm.weight"), &[d])?,
                in_proj: t.take(&format!("{m}in_proj.weight"), &[2 * e, d])?,
                in_proj_bias: opt(&mut t, c.bias, format!("{m}in_proj.bias"), &[2 * e])?,
                conv_weight,
                conv_bias: opt(&mut t, c.conv_bias, format!("{m}conv1d.bias"), &[e])?,
                x_proj: t.take(&format!("{m}x_proj.weight"), &[r + 2 * n, e])?,
                dt_proj: t.take(&format!("{m}dt_proj.weight"), &[e, r])?,
                dt_bias: t.take(&format!("{m}dt_proj.bias"), &[e])?,
                a_log: t.take(&format!("{m}A_log"), &[e, n])?,
                d: t.take(&format!("{m}D"), &[e])?,
                out_proj: t.take(&format!("{m}out_proj.weight"), &[d, e])?,
                out_proj_bias: opt(&mut t, c.bias, format!("{m}out_proj.bias"), &[d])?,
            });
        }
        let norm_f = t.take("backbone.norm_f.weight", &[d])?;
        if let Some(extra) = t.map.keys().next() {
            return Err(Error::UnexpectedTensor(extra.clone()));
        }
        let dtype = t.dtypes.iter().cloned().collect::<Vec<_>>().join("+");
        let mut model = Model {
            info: ModelInfo {
                format: c.format,
                name,
                sha256: t.sha256_hex(),
                dtype,
                dims: Dims {
                    d_model: d,
                    n_layer: c.n_layer,
                    d_inner: e,
                    d_state: n,
                    d_conv: k,
                    dt_rank: r,
                    vocab_size: v,
                },
                norm_eps: c.norm_eps,
                n_params: 0,
                causal: true,
            },
            embedding,
            lm_head,
            layers,
            norm_f,
            final_norm: true,
        };
        model.info.n_params = model.param_count();
        Ok(model)
    }

    /// Keeps blocks `1..=layers` only (1-based) and gives the residual stream after block `layers`, with no
    /// `norm_f`: transformers' `hidden_states[layers - 1]` with `output_hidden_states=True`. The base head then
    /// reads an unnormalised state, so only the hidden state means anything. `layers` is `1..=n_layer`.
    pub fn truncate(&mut self, layers: usize) -> Result<()> {
        let n_layer = self.layers.len();
        if layers == 0 || layers > n_layer {
            return Err(Error::Usage(format!(
                "layer {layers} does not exist: the model has layers 1 to {n_layer}"
            )));
        }
        self.layers.truncate(layers);
        self.info.dims.n_layer = layers;
        self.final_norm = false;
        Ok(())
    }

    /// The LM head matrix `(vocab, D)`: the stored one, or the embedding when tied.
    pub fn lm_head(&self) -> &[f32] {
        self.lm_head.as_deref().unwrap_or(&self.embedding)
    }

    /// Number of parameters, tied tensors counted once.
    pub fn param_count(&self) -> u64 {
        let len = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, Vec::len);
        let mut n = self.embedding.len() + len(&self.lm_head) + self.norm_f.len();
        for l in &self.layers {
            n += l.norm.len()
                + l.in_proj.len()
                + len(&l.in_proj_bias)
                + l.conv_weight.len()
                + len(&l.conv_bias);
            n += l.x_proj.len() + l.dt_proj.len() + l.dt_bias.len() + l.a_log.len() + l.d.len();
            n += l.out_proj.len() + len(&l.out_proj_bias);
        }
        n as u64
    }
}

mod random;
