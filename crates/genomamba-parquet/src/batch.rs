//! Builders that turn plain Rust values into Arrow record batches, one per table.
//!
//! Each builder validates a row before appending any of it, so a rejected `push` leaves the builder unchanged.
//! `finish` returns the rows pushed so far as a [`RecordBatch`] and resets the builder for reuse.

mod columns;
mod embedding;
mod prediction;
mod variant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

pub use embedding::EmbeddingBatchBuilder;
pub use prediction::{PredictionBatchBuilder, base_index, log_probs};
pub use variant::{Variant, VariantBatchBuilder, status};

use crate::error::Result;

/// Alignment fields of one read (BAM/CRAM), borrowed from the record.
///
/// Used only by builders made with [`crate::SequenceKind::AlignedRead`]; other builders ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadFields<'a> {
    /// Reference sequence name; `None` if unmapped.
    pub ref_name: Option<&'a str>,
    /// 0-based alignment start on `ref_name`.
    pub ref_start: Option<i64>,
    /// `true` if the read aligned to the reverse strand (`-`).
    pub reverse: Option<bool>,
    /// Mapping quality; pass `None` for BAM's 255 (unavailable).
    pub mapq: Option<u8>,
    /// SAM flag.
    pub flag: Option<u16>,
}

/// What every batch builder offers, so the sink side can be generic over tables.
pub trait BatchBuilder {
    /// The schema of the batches this builder makes.
    fn schema(&self) -> SchemaRef;
    /// Rows pushed since the last `finish`.
    fn len(&self) -> usize;
    /// Whether no rows have been pushed since the last `finish`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Approximate uncompressed size of the pushed rows in bytes (use it to decide when to `finish`).
    fn approx_bytes(&self) -> usize;
    /// Builds a batch of the pushed rows and resets the builder.
    fn finish(&mut self) -> Result<RecordBatch>;
}
