//! Caduceus (Schiff et al. 2024): bidirectional, optionally reverse-complement-equivariant (RCPS) DNA Mamba
//! masked LMs, in their Ph (`rcps: false`) and PS (`rcps: true`) forms (reference/mamba.md §3).
//!
//! [`CaduceusModel`] loads `config.json` + `model.safetensors` as published (tied tensors aliased);
//! [`CaduceusEngine`] runs one window per call on the CPU, layer by layer, with chunked forward and reverse
//! scans (O(window x d_model) memory), and returns the final hidden state after `norm_f` and the masked-LM
//! head's four-base distribution at every position.

pub mod config;
pub mod engine;
mod mixer;
pub mod model;
mod random;

pub use config::{CaduceusConfig, Strategy};
pub use engine::{CaduceusEngine, Hidden, caduceus_engine};
pub use model::{CaduceusLayer, CaduceusModel, Projections, Ssm};
