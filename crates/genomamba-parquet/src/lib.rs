//! Parquet outputs of genomamba: Arrow schemas, batch builders, an atomic sink and provenance metadata.
//!
//! Three tables (see DESIGN §8), each with coordinates 0-based half-open except the variants' 1-based `pos`:
//!
//! | table | columns |
//! | --- | --- |
//! | embeddings | `chrom`, `start`, `end`, `n_frac`, `embedding` (fixed_size_list<f32 or f16, D>, never null) |
//! | predictions | `chrom`, `start`, `end`, `ref`, `p_a`, `p_c`, `p_g`, `p_t`, `entropy`, `logp_ref` |
//! | variants | `chrom`, `pos`, `id`, `ref`, `alt`, `score`, `logp_ref`, `logp_alt`, `status` |
//!
//! For read inputs `read_name` replaces `chrom`, and aligned reads add `ref_name`, `ref_start`, `strand`, `mapq`,
//! `flag` at the end ([`SequenceKind`]). The shape follows oxbow: [`Field`] knows each column, [`schema`] builds
//! each table once, the builders in [`batch`] turn plain values into record batches, and [`ParquetSink`] writes
//! them with zstd, row groups bounded by bytes, and one key-value entry `genomamba` holding [`Provenance`] JSON.
//!
//! # Examples
//!
//! Write a two-row embeddings file and read its provenance back:
//!
//! ```
//! use genomamba_parquet::{
//!     BatchBuilder, Dtype, EmbeddingBatchBuilder, ParquetSink, Provenance, SequenceKind, Table,
//! };
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("emb.parquet");
//! let mut rows = EmbeddingBatchBuilder::new(4, Dtype::F16, SequenceKind::Contig)?;
//! rows.push("chr1", 0, 100, 0.0, &[0.1, 0.2, 0.3, 0.4], None)?;
//! rows.push("chr1", 100, 130, 0.5, &[0.5, 0.6, 0.7, 0.8], None)?;
//! let meta = Provenance::new(Table::Embeddings, "0.1.0", vec!["genomamba".into(), "embed".into()]);
//! let mut sink = ParquetSink::create(&path, rows.schema(), meta.to_json()?, false)?;
//! sink.write(&rows.finish()?)?;
//! sink.finish()?;
//! let json = genomamba_parquet::read_metadata_json(&path)?.expect("genomamba key");
//! assert_eq!(Provenance::from_json(&json)?.table, "embeddings");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
mod error;
pub mod field;
pub mod metadata;
pub mod schema;
pub mod sink;

pub use batch::{
    BatchBuilder, EmbeddingBatchBuilder, PredictionBatchBuilder, ReadFields, Variant,
    VariantBatchBuilder, base_index, log_probs, status,
};
pub use error::{Error, Result};
pub use field::{Dtype, Field, SequenceKind};
pub use metadata::{Provenance, read_metadata_json};
pub use schema::Table;
pub use sink::{METADATA_KEY, ParquetSink, SinkOptions, SinkSummary, remove_temp_files};
