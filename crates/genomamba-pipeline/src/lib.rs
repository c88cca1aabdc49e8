//! Orchestration of a genomamba run: a reader thread streams coordinate-tagged pieces of sequence, the engine
//! turns them into hidden states or base probabilities, the heads into rows, and a writer thread into Parquet row
//! groups, through bounded queues so memory stays flat on whole genomes.

pub mod annotate;
mod error;
mod feed;
pub mod heads;
pub mod masked;
pub mod metadata;
pub mod pooling;
pub mod progress;
mod repeats;
pub mod run;
pub mod scoring;
pub mod settings;
pub mod spans;
pub mod walk;

pub use annotate::AnnotatedVcf;
pub use error::{Error, Result};
pub use masked::MaskedPass;
pub use run::{InputKind, Summary, run};
pub use scoring::Variants;
pub use settings::{
    EmbedOptions, OutDtype, Pool, PredictOptions, ReferenceRead, ScoreOptions, Settings, Strand,
    Task,
};
pub use spans::SiteReads;
pub use walk::WalkPass;
