//! The three tables (DESIGN §8) as Arrow schemas, built in one place.
//!
//! Column order: the key (`chrom` or `read_name`), the table's own columns, then the alignment columns when the
//! rows are aligned reads. File-level provenance is not part of the schema: [`crate::ParquetSink`] writes it
//! under the key-value entry `genomamba`.

use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::field::{Dtype, Field, SequenceKind};

/// One of the three output tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Pooled or per-base embeddings.
    Embeddings,
    /// Per-base probabilities of A, C, G, T.
    Predictions,
    /// Variant-effect scores.
    Variants,
}

impl Table {
    /// `"embeddings"`, `"predictions"` or `"variants"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embeddings => "embeddings",
            Self::Predictions => "predictions",
            Self::Variants => "variants",
        }
    }
}

/// Checks that `dim` fits Arrow's `i32` list size and is not 0.
pub(crate) fn checked_dim(dim: usize) -> Result<i32> {
    match i32::try_from(dim) {
        Ok(d) if d > 0 => Ok(d),
        _ => Err(Error::Dimension(dim)),
    }
}

fn with_key(kind: SequenceKind, own: &[Field]) -> Vec<Field> {
    let mut fields = vec![kind.key()];
    fields.extend_from_slice(own);
    fields.extend_from_slice(kind.alignment_fields());
    fields
}

/// The columns of the embeddings table: key, `start`, `end`, `n_frac`, `embedding` (D = `dim`), alignment columns.
pub fn embedding_fields(dim: usize, dtype: Dtype, kind: SequenceKind) -> Result<Vec<Field>> {
    let dim = checked_dim(dim)?;
    Ok(with_key(
        kind,
        &[
            Field::Start,
            Field::End,
            Field::NFrac,
            Field::Embedding { dim, dtype },
        ],
    ))
}

/// The value columns of the predictions table, in its order: `p_a`..`p_t`, `entropy`, `logp_ref`. A run may
/// write a subset of them ([`crate::PredictionBatchBuilder::with_values`]); the other columns are always written.
pub const PREDICTION_VALUES: [Field; 6] = [
    Field::PA,
    Field::PC,
    Field::PG,
    Field::PT,
    Field::Entropy,
    Field::LogpRef,
];

/// The columns of the predictions table: key, `start`, `end`, `ref`, `p_a`..`p_t`, `entropy`, `logp_ref`,
/// alignment columns.
pub fn prediction_fields(kind: SequenceKind) -> Vec<Field> {
    let mut own = vec![Field::Start, Field::End, Field::RefBase];
    own.extend(PREDICTION_VALUES);
    with_key(kind, &own)
}

/// The columns of the variants table: `chrom`, `pos`, `id`, `ref`, `alt`, `score`, `logp_ref`, `logp_alt`, `status`.
pub fn variant_fields() -> Vec<Field> {
    vec![
        Field::Chrom,
        Field::Pos,
        Field::Id,
        Field::RefAllele,
        Field::Alt,
        Field::Score,
        Field::LogpRef,
        Field::LogpAlt,
        Field::Status,
    ]
}

/// Builds an Arrow schema from fields.
pub fn to_schema(fields: &[Field]) -> SchemaRef {
    Arc::new(Schema::new(
        fields.iter().map(|f| f.to_arrow()).collect::<Vec<_>>(),
    ))
}

/// The embeddings schema.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{schema, Dtype, SequenceKind};
/// let s = schema::embeddings(256, Dtype::F16, SequenceKind::Contig)?;
/// let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
/// assert_eq!(names, ["chrom", "start", "end", "n_frac", "embedding"]);
/// # Ok::<(), genomamba_parquet::Error>(())
/// ```
pub fn embeddings(dim: usize, dtype: Dtype, kind: SequenceKind) -> Result<SchemaRef> {
    Ok(to_schema(&embedding_fields(dim, dtype, kind)?))
}

/// The predictions schema.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{schema, SequenceKind};
/// let s = schema::predictions(SequenceKind::AlignedRead);
/// assert_eq!(s.field(0).name(), "read_name");
/// assert_eq!(s.fields().len(), 15);
/// ```
pub fn predictions(kind: SequenceKind) -> SchemaRef {
    to_schema(&prediction_fields(kind))
}

/// The variants schema.
pub fn variants() -> SchemaRef {
    to_schema(&variant_fields())
}

#[cfg(test)]
mod tests {
    use arrow_schema::DataType;

    use super::*;

    #[test]
    fn test_embeddings() -> Result<()> {
        let s = embeddings(4, Dtype::F32, SequenceKind::AlignedRead)?;
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "read_name",
                "start",
                "end",
                "n_frac",
                "embedding",
                "ref_name",
                "ref_start",
                "strand",
                "mapq",
                "flag"
            ]
        );
        assert!(matches!(
            s.field(4).data_type(),
            DataType::FixedSizeList(_, 4)
        ));
        assert!(matches!(
            embeddings(0, Dtype::F32, SequenceKind::Contig),
            Err(Error::Dimension(0))
        ));
        assert!(embeddings(1 << 31, Dtype::F32, SequenceKind::Contig).is_err());
        Ok(())
    }

    #[test]
    fn test_predictions_and_variants() {
        let p = predictions(SequenceKind::Contig);
        let names: Vec<_> = p.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "chrom", "start", "end", "ref", "p_a", "p_c", "p_g", "p_t", "entropy", "logp_ref"
            ]
        );
        let v = variants();
        let names: Vec<_> = v.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "chrom", "pos", "id", "ref", "alt", "score", "logp_ref", "logp_alt", "status"
            ]
        );
        assert!(matches!(v.field(8).data_type(), DataType::Dictionary(_, _)));
        assert_eq!(Table::Variants.as_str(), "variants");
    }
}
