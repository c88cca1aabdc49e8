//! Mamba-1 DNA language models on the CPU: config and weight loading (HF transformers and mamba-ssm layouts,
//! safetensors or PyTorch `.bin`), the recurrent [`State`], an f64 [`mod@reference`] engine and the fast f32
//! [`cpu`] engine, the bidirectional [`caduceus`] models and their engine, all behind the [`Engine`] trait that the CUDA engine also implements.
//!
//! ```no_run
//! use std::sync::Arc;
//! use genomamba_model::{Model, Output, Want, cpu_engine};
//! # fn main() -> genomamba_model::Result<()> {
//! let model = Arc::new(Model::from_dir(std::path::Path::new("model_dir"))?);
//! let mut engine = cpu_engine(model, 0, 65536)?;
//! let mut out = Output::default();
//! engine.run(&[7, 8, 9, 10, 7], true, Want::ALL, &mut out)?; // A C G T A
//! assert_eq!(out.rows, 5);
//! # Ok(()) }
//! ```

mod any;
pub mod caduceus;
pub mod config;
pub mod cpu;
pub mod engine;
mod error;
pub mod heads;
pub mod hub;
pub mod model;
pub mod reference;
pub mod state;
pub mod weights;

pub use any::{AnyModel, Architecture};
pub use caduceus::{CaduceusEngine, CaduceusModel};
pub use config::Config;
pub use cpu::{CpuEngine, Simd, cpu_engine};
pub use engine::{BASE_TOKENS, Dims, Engine, ModelFormat, ModelInfo, Output, Want};
pub use error::{Error, Result};
pub use model::{LayerWeights, Model};
pub use reference::ReferenceEngine;
pub use state::{LayerState, State};
