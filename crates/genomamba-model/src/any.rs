//! [`AnyModel`]: loads any supported model directory, telling the architecture from `config.json`.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::caduceus::{CaduceusModel, Hidden, caduceus_engine};
use crate::engine::{Engine, ModelInfo};
use crate::model::Model;
use crate::weights::read;
use crate::{Result, cpu_engine};

/// A loaded model of any supported architecture.
#[derive(Clone, Debug)]
pub enum AnyModel {
    /// A causal Mamba-1 LM (HF transformers or mamba-ssm layout).
    Mamba(Arc<Model>),
    /// A bidirectional Caduceus masked LM (Ph or PS).
    Caduceus(Arc<CaduceusModel>),
}

/// The architecture of a model directory, as its `config.json` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// Causal Mamba-1 (anything but Caduceus; loading checks that it is).
    Mamba,
    /// Bidirectional Caduceus.
    Caduceus,
}

impl Architecture {
    /// Reads `dir/config.json` only, not the weights: `model_type: caduceus` is [`Architecture::Caduceus`],
    /// anything else [`Architecture::Mamba`]. Fails on a missing or malformed `config.json`.
    pub fn of_dir(dir: &Path) -> Result<Architecture> {
        let bytes = read(&dir.join("config.json"))?;
        let v: Value = serde_json::from_slice(&bytes)?;
        Ok(
            if v.get("model_type").and_then(Value::as_str) == Some("caduceus") {
                Architecture::Caduceus
            } else {
                Architecture::Mamba
            },
        )
    }
}

impl AnyModel {
    /// Loads a model directory: `model_type: caduceus` gives [`AnyModel::Caduceus`], anything else goes to
    /// [`Model::from_dir`] (which refuses what it cannot run).
    pub fn from_dir(dir: &Path) -> Result<AnyModel> {
        match Architecture::of_dir(dir)? {
            Architecture::Caduceus => {
                Ok(AnyModel::Caduceus(Arc::new(CaduceusModel::from_dir(dir)?)))
            }
            Architecture::Mamba => Ok(AnyModel::Mamba(Arc::new(Model::from_dir(dir)?))),
        }
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        match self {
            AnyModel::Mamba(_) => Architecture::Mamba,
            AnyModel::Caduceus(_) => Architecture::Caduceus,
        }
    }

    /// Format, sizes, checksum and parameter count.
    pub fn info(&self) -> &ModelInfo {
        match self {
            AnyModel::Mamba(m) => &m.info,
            AnyModel::Caduceus(m) => &m.info,
        }
    }

    /// A CPU engine with `threads` workers (0 = all cores) and `chunk` tokens per step; `hidden` chooses a
    /// Caduceus-PS model's embedding (ignored by the other models, whose state is one `d_model` stream).
    pub fn cpu_engine(
        &self,
        threads: usize,
        chunk: usize,
        hidden: Hidden,
    ) -> Result<Box<dyn Engine>> {
        match self {
            AnyModel::Mamba(m) => cpu_engine(Arc::clone(m), threads, chunk),
            AnyModel::Caduceus(m) => caduceus_engine(Arc::clone(m), threads, chunk, hidden),
        }
    }
}
