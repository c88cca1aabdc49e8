//! A loaded Caduceus model (reference/mamba.md §3.5): every weight a row-major f32 `Vec`, tied tensors held once.
//!
//! `D = d_model`, `E = d_inner`, `N = d_state`, `K = d_conv`, `R = dt_rank`, `V = vocab_size`; matrices follow
//! PyTorch `nn.Linear`, `(out, in)`.

use std::path::Path;

use crate::caduceus::config::CaduceusConfig;
use crate::engine::{Dims, ModelFormat, ModelInfo};
use crate::weights::{Tensors, read};
use crate::{Error, Result};

/// The projections of one Mamba: the parameters a weight-tied reverse Mamba shares with the forward one.
#[derive(Clone, Debug, PartialEq)]
pub struct Projections {
    /// `in_proj.weight`, `(2E, D)`: rows `[0, E)` give x (conv branch), `[E, 2E)` give z (gate).
    pub in_proj: Vec<f32>,
    /// `in_proj.bias`, `(2E,)`, when `ssm_cfg.bias`.
    pub in_proj_bias: Option<Vec<f32>>,
    /// `out_proj.weight`, `(D, E)`.
    pub out_proj: Vec<f32>,
    /// `out_proj.bias`, `(D,)`, when `ssm_cfg.bias`.
    pub out_proj_bias: Option<Vec<f32>>,
}

/// The per-direction selective-SSM parameters of one Mamba (never tied).
#[derive(Clone, Debug, PartialEq)]
pub struct Ssm {
    /// `conv1d.weight` `(E, 1, K)` stored `(E, K)`; tap `K-1` multiplies the current token.
    pub conv_weight: Vec<f32>,
    /// `conv1d.bias`, `(E,)`, when `ssm_cfg.conv_bias`.
    pub conv_bias: Option<Vec<f32>>,
    /// `x_proj.weight`, `(R + 2N, E)`: outputs `[dt_low | B | C]`.
    pub x_proj: Vec<f32>,
    /// `dt_proj.weight`, `(E, R)`.
    pub dt_proj: Vec<f32>,
    /// `dt_proj.bias`, `(E,)`, added before the softplus.
    pub dt_bias: Vec<f32>,
    /// `A_log`, `(E, N)`: `A = -exp(A_log)`.
    pub a_log: Vec<f32>,
    /// `D`, `(E,)`.
    pub d: Vec<f32>,
}

/// One Caduceus block: RMSNorm then a BiMamba mixer.
#[derive(Clone, Debug, PartialEq)]
pub struct CaduceusLayer {
    /// `norm.weight` (or `norm.submodule.weight`), `(D,)`.
    pub norm: Vec<f32>,
    /// `mamba_fwd` projections.
    pub fwd_proj: Projections,
    /// `mamba_fwd` SSM.
    pub fwd: Ssm,
    /// `mamba_rev` SSM; `None` when the model is not bidirectional.
    pub rev: Option<Ssm>,
    /// `mamba_rev` projections; `None` when tied to [`CaduceusLayer::fwd_proj`] (or not bidirectional).
    pub rev_proj: Option<Projections>,
}

impl CaduceusLayer {
    /// The reverse Mamba's projections: its own, or the forward ones when tied.
    pub fn rev_projections(&self) -> &Projections {
        self.rev_proj.as_ref().unwrap_or(&self.fwd_proj)
    }
}

/// A Caduceus (Ph or PS) masked language model held in f32.
#[derive(Clone, Debug, PartialEq)]
pub struct CaduceusModel {
    /// Format, sizes (of each Mamba), checksum, parameter count; `causal` is false.
    pub info: ModelInfo,
    /// The parsed config.
    pub config: CaduceusConfig,
    /// Word embedding, `(V, D)`.
    pub embedding: Vec<f32>,
    /// An untied LM head `(V, D)` (Ph with `tie_word_embeddings: false` only); `None` = the embedding.
    pub lm_head: Option<Vec<f32>>,
    /// Blocks in order.
    pub layers: Vec<CaduceusLayer>,
    /// `norm_f.weight` (or `norm_f.submodule.weight`), `(D,)`.
    pub norm_f: Vec<f32>,
}

impl CaduceusModel {
    /// Loads a directory holding `config.json` (`model_type: caduceus`) and `model.safetensors` (or shards).
    pub fn from_dir(dir: &Path) -> Result<CaduceusModel> {
        let config = CaduceusConfig::from_json(&read(&dir.join("config.json"))?)?;
        let tensors = Tensors::from_dir(dir)?;
        let name = crate::hub::model_name(dir);
        CaduceusModel::from_parts(config, tensors, name)
    }

    /// Builds the model from its config and tensors (names with or without the `caduceus.` prefix): checks
    /// every shape, aliases the tied tensors the checkpoints omit, and refuses missing untied or unknown ones.
    pub fn from_parts(c: CaduceusConfig, mut t: Tensors, name: String) -> Result<CaduceusModel> {
        // `CaduceusForMaskedLM` prefixes the backbone with `caduceus.`; a bare `Caduceus` state dict does not.
        let prefixed: Vec<String> = t
            .map
            .keys()
            .filter(|k| k.starts_with("caduceus."))
            .cloned()
            .collect();
        for k in prefixed {
            if let Some(v) = t.map.remove(&k) {
                t.map.insert(k["caduceus.".len()..].to_owned(), v);
            }
        }
        let (d, v) = (c.d_model, c.vocab_size);
        let (emb_key, mixer, norm_sub) = if c.rcps {
            (
                "backbone.embeddings.word_embeddings.embedding.weight",
                "mixer.submodule.",
                if c.fused_add_norm { "" } else { "submodule." },
            )
        } else {
            ("backbone.embeddings.word_embeddings.weight", "mixer.", "")
        };
        let embedding = t.take(emb_key, &[v, d])?;
        if c.rcps {
            for key in [
                "backbone.embeddings.word_embeddings.complement_map",
                "lm_head.complement_map",
            ] {
                check_complement(&mut t, key, &c.complement)?;
            }
        }
        let head_key = if c.rcps {
            "lm_head.lm_head.weight"
        } else {
            "lm_head.weight"
        };
        let lm_head = if c.tie_embeddings {
            if let Some(h) = t.take_opt(head_key, &[v, d])?
                && h != embedding
            {
                return Err(Error::Unsupported(format!(
                    "`{head_key}` differs from the embedding although the config ties them"
                )));
            }
            None
        } else {
            Some(t.take(head_key, &[v, d])?)
        };
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = format!("backbone.layers.{i}.");
            let fwd = format!("{p}{mixer}mamba_fwd.");
            let rev = format!("{p}{mixer}mamba_rev.");
            let fwd_proj = projections(&mut t, &c, &fwd)?;
            let (rev_ssm, rev_proj) = if c.bidirectional {
                let own = if c.weight_tie {
                    tied_copies_match(&mut t, &c, &rev, &fwd_proj)?;
                    None
                } else {
                    Some(projections(&mut t, &c, &rev)?)
                };
                (Some(ssm(&mut t, &c, &rev)?), own)
            } else {
                (None, None)
            };
            layers.push(CaduceusLayer {
                norm: t.take(&format!("{p}norm.{norm_sub}weight"), &[d])?,
                fwd: ssm(&mut t, &c, &fwd)?,
                fwd_proj,
                rev: rev_ssm,
                rev_proj,
            });
        }
        let norm_f = t.take(&format!("backbone.norm_f.{norm_sub}weight"), &[d])?;
        if let Some(extra) = t.map.keys().next() {
            return Err(Error::UnexpectedTensor(extra.clone()));
        }
        let mut model = CaduceusModel {
            info: ModelInfo {
                format: ModelFormat::Caduceus,
                name,
                sha256: t.sha256_hex(),
                dtype: t.dtypes.iter().cloned().collect::<Vec<_>>().join("+"),
                dims: Dims {
                    d_model: d,
                    n_layer: c.n_layer,
                    d_inner: c.d_inner,
                    d_state: c.d_state,
                    d_conv: c.d_conv,
                    dt_rank: c.dt_rank,
                    vocab_size: v,
                },
                norm_eps: c.norm_eps,
                n_params: 0,
                causal: false,
            },
            config: c,
            embedding,
            lm_head,
            layers,
            norm_f,
        };
        model.info.n_params = model.param_count();
        Ok(model)
    }

    /// The LM head `(V, D)`: the embedding unless an untied head was stored.
    pub fn lm_head(&self) -> &[f32] {
        self.lm_head.as_deref().unwrap_or(&self.embedding)
    }

    /// Number of parameters, tied tensors counted once, complement-map buffers not counted.
    pub fn param_count(&self) -> u64 {
        let len = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, Vec::len);
        let proj = |p: &Projections| {
            p.in_proj.len() + len(&p.in_proj_bias) + p.out_proj.len() + len(&p.out_proj_bias)
        };
        let ssm = |s: &Ssm| {
            s.conv_weight.len()
                + len(&s.conv_bias)
                + s.x_proj.len()
                + s.dt_proj.len()
                + s.dt_bias.len()
                + s.a_log.len()
                + s.d.len()
        };
        let mut n = self.embedding.len() + len(&self.lm_head) + self.norm_f.len();
        for l in &self.layers {
            n += l.norm.len() + proj(&l.fwd_proj) + ssm(&l.fwd);
            n += l.rev.as_ref().map_or(0, ssm) + l.rev_proj.as_ref().map_or(0, proj);
        }
        n as u64
    }
}

fn projections(t: &mut Tensors, c: &CaduceusConfig, p: &str) -> Result<Projections> {
    let (d, e) = (c.d_model, c.d_inner);
    Ok(Projections {
        in_proj: t.take(&format!("{p}in_proj.weight"), &[2 * e, d])?,
        in_proj_bias: opt(t, c.bias, format!("{p}in_proj.bias"), &[2 * e])?,
        out_proj: t.take(&format!("{p}out_proj.weight"), &[d, e])?,
        out_proj_bias: opt(t, c.bias, format!("{p}out_proj.bias"), &[d])?,
    })
}

/// A tied tensor's name suffix, its shape and the forward Mamba's values it must equal.
type TiedPair<'a> = (&'a str, &'a [usize], Option<&'a [f32]>);

/// A tied reverse Mamba's projections are aliased; a checkpoint that stores them anyway must store copies.
fn tied_copies_match(
    t: &mut Tensors,
    c: &CaduceusConfig,
    p: &str,
    fwd: &Projections,
) -> Result<()> {
    let (d, e) = (c.d_model, c.d_inner);
    let pairs: [TiedPair<'_>; 4] = [
        ("in_proj.weight", &[2 * e, d], Some(&fwd.in_proj)),
        ("in_proj.bias", &[2 * e], fwd.in_proj_bias.as_deref()),
        ("out_proj.weight", &[d, e], Some(&fwd.out_proj)),
        ("out_proj.bias", &[d], fwd.out_proj_bias.as_deref()),
    ];
    for (name, shape, want) in pairs {
        let key = format!("{p}{name}");
        if let Some(got) = t.take_opt(&key, shape)?
            && Some(got.as_slice()) != want
        {
            return Err(Error::Unsupported(format!(
                "`{key}` differs from the forward Mamba's although `bidirectional_weight_tie` is true"
            )));
        }
    }
    Ok(())
}

fn ssm(t: &mut Tensors, c: &CaduceusConfig, p: &str) -> Result<Ssm> {
    let (e, n, k, r) = (c.d_inner, c.d_state, c.d_conv, c.dt_rank);
    Ok(Ssm {
        conv_weight: t.take(&format!("{p}conv1d.weight"), &[e, 1, k])?,
        conv_bias: opt(t, c.conv_bias, format!("{p}conv1d.bias"), &[e])?,
        x_proj: t.take(&format!("{p}x_proj.weight"), &[r + 2 * n, e])?,
        dt_proj: t.take(&format!("{p}dt_proj.weight"), &[e, r])?,
        dt_bias: t.take(&format!("{p}dt_proj.bias"), &[e])?,
        a_log: t.take(&format!("{p}A_log"), &[e, n])?,
        d: t.take(&format!("{p}D"), &[e])?,
    })
}

fn opt(t: &mut Tensors, on: bool, key: String, shape: &[usize]) -> Result<Option<Vec<f32>>> {
    if on {
        t.take(&key, shape).map(Some)
    } else {
        Ok(None)
    }
}

/// A stored `complement_map` buffer must agree with the config's (optional: the config is authoritative).
fn check_complement(t: &mut Tensors, key: &str, want: &[usize]) -> Result<()> {
    if let Some(got) = t.take_any_opt(key, &[want.len()])?
        && got.iter().zip(want).any(|(&g, &w)| g != w as f32)
    {
        return Err(Error::Unsupported(format!(
            "the buffer `{key}` disagrees with config.json `complement_map`"
        )));
    }
    Ok(())
}
