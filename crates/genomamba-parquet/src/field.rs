//! Every column of every genomamba table, in one enum (oxbow's `Field` pattern).
//!
//! Integer types: coordinates (`start`, `end`, `pos`, `ref_start`) are `Int64`; `mapq` is `UInt8` and `flag` is
//! `UInt16`, their widths in BAM. Dictionary columns (`chrom`, `status`) use `Int32` keys.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField};

/// Element type of the `embedding` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dtype {
    /// IEEE binary32.
    #[default]
    F32,
    /// IEEE binary16 (Parquet logical type `FLOAT16`); values are rounded to nearest.
    F16,
}

impl Dtype {
    /// The Arrow type of one element.
    pub fn data_type(self) -> DataType {
        match self {
            Self::F32 => DataType::Float32,
            Self::F16 => DataType::Float16,
        }
    }

    /// `"f32"` or `"f16"`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

/// What the rows' sequences are, which decides the key column and the alignment columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SequenceKind {
    /// Contigs of a FASTA file: key column `chrom`.
    #[default]
    Contig,
    /// Unaligned reads (FASTQ, unaligned BAM): key column `read_name`.
    Read,
    /// Reads with alignment fields (BAM/CRAM): `read_name` plus `ref_name`, `ref_start`, `strand`, `mapq`, `flag`.
    AlignedRead,
}

impl SequenceKind {
    /// The key column: [`Field::Chrom`] for contigs, [`Field::ReadName`] for reads.
    pub fn key(self) -> Field {
        match self {
            Self::Contig => Field::Chrom,
            Self::Read | Self::AlignedRead => Field::ReadName,
        }
    }

    /// The alignment columns appended at the end of the table (empty unless [`SequenceKind::AlignedRead`]).
    pub fn alignment_fields(self) -> &'static [Field] {
        match self {
            Self::AlignedRead => &[
                Field::RefName,
                Field::RefStart,
                Field::Strand,
                Field::Mapq,
                Field::Flag,
            ],
            Self::Contig | Self::Read => &[],
        }
    }
}

/// One column: its name, Arrow type, nullability and field metadata (`description`, and `unit` where one applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `chrom`: contig name, dictionary<int32, utf8>.
    Chrom,
    /// `read_name`: read name, utf8 (replaces `chrom` for read inputs).
    ReadName,
    /// `start`: 0-based inclusive start, int64.
    Start,
    /// `end`: 0-based exclusive end, int64.
    End,
    /// `n_frac`: fraction of N bases in `[start, end)`, float32.
    NFrac,
    /// `embedding`: fixed_size_list<float32 or float16, D>, never null.
    Embedding {
        /// D, the number of values per row.
        dim: i32,
        /// Element type.
        dtype: Dtype,
    },
    /// `ref`: the base at `start` as read (case kept), utf8 of one character.
    RefBase,
    /// `p_a`: probability of A, float32, null where no context exists.
    PA,
    /// `p_c`: probability of C.
    PC,
    /// `p_g`: probability of G.
    PG,
    /// `p_t`: probability of T.
    PT,
    /// `entropy`: entropy of (p_a, p_c, p_g, p_t) in nats, float32, nullable.
    Entropy,
    /// `logp_ref`: natural log of the reference base's probability, float32, null for N or no context.
    LogpRef,
    /// `pos`: VCF POS, 1-based, int64.
    Pos,
    /// `id`: VCF ID, utf8, null for `.`.
    Id,
    /// `ref`: VCF REF allele, utf8.
    RefAllele,
    /// `alt`: one ALT allele, utf8.
    Alt,
    /// `score`: logp_alt - logp_ref (natural log), float32, null when not scored.
    Score,
    /// `logp_alt`: natural log of P(alt), float32, nullable.
    LogpAlt,
    /// `status`: `ok` or why the variant was not scored, dictionary<int32, utf8>.
    Status,
    /// `ref_name`: reference sequence of the alignment, utf8, null if unmapped.
    RefName,
    /// `ref_start`: 0-based alignment start on `ref_name`, int64, nullable.
    RefStart,
    /// `strand`: `+` or `-`, utf8, null if unmapped.
    Strand,
    /// `mapq`: mapping quality, uint8, null when absent (255 in BAM).
    Mapq,
    /// `flag`: SAM flag, uint16, nullable.
    Flag,
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

impl Field {
    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chrom => "chrom",
            Self::ReadName => "read_name",
            Self::Start => "start",
            Self::End => "end",
            Self::NFrac => "n_frac",
            Self::Embedding { .. } => "embedding",
            Self::RefBase | Self::RefAllele => "ref",
            Self::PA => "p_a",
            Self::PC => "p_c",
            Self::PG => "p_g",
            Self::PT => "p_t",
            Self::Entropy => "entropy",
            Self::LogpRef => "logp_ref",
            Self::Pos => "pos",
            Self::Id => "id",
            Self::Alt => "alt",
            Self::Score => "score",
            Self::LogpAlt => "logp_alt",
            Self::Status => "status",
            Self::RefName => "ref_name",
            Self::RefStart => "ref_start",
            Self::Strand => "strand",
            Self::Mapq => "mapq",
            Self::Flag => "flag",
        }
    }

    /// The Arrow data type.
    pub fn data_type(self) -> DataType {
        match self {
            Self::Chrom | Self::Status => dict_utf8(),
            Self::ReadName
            | Self::RefBase
            | Self::Id
            | Self::RefAllele
            | Self::Alt
            | Self::RefName
            | Self::Strand => DataType::Utf8,
            Self::Start | Self::End | Self::Pos | Self::RefStart => DataType::Int64,
            Self::NFrac
            | Self::PA
            | Self::PC
            | Self::PG
            | Self::PT
            | Self::Entropy
            | Self::LogpRef
            | Self::Score
            | Self::LogpAlt => DataType::Float32,
            Self::Embedding { dim, dtype } => {
                DataType::FixedSizeList(Arc::new(item_field(dtype)), dim)
            }
            Self::Mapq => DataType::UInt8,
            Self::Flag => DataType::UInt16,
        }
    }

    /// Whether the column may hold nulls.
    pub fn nullable(self) -> bool {
        matches!(
            self,
            Self::PA
                | Self::PC
                | Self::PG
                | Self::PT
                | Self::Entropy
                | Self::LogpRef
                | Self::Id
                | Self::Score
                | Self::LogpAlt
                | Self::RefName
                | Self::RefStart
                | Self::Strand
                | Self::Mapq
                | Self::Flag
        )
    }

    /// `(description, unit)` stored as Arrow field metadata.
    fn doc(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Chrom => ("sequence name from the input", None),
            Self::ReadName => ("read name from the input", None),
            Self::Start => ("0-based start, inclusive", Some("bp")),
            Self::End => ("0-based end, exclusive", Some("bp")),
            Self::NFrac => ("fraction of N bases in [start, end)", Some("fraction")),
            Self::Embedding { .. } => ("pooled hidden state of the bases in [start, end)", None),
            Self::RefBase => ("base at start as read (case kept)", None),
            Self::PA | Self::PC | Self::PG | Self::PT => (
                "model probability of the base at start given its context, renormalised over ACGT; null without context",
                Some("probability"),
            ),
            Self::Entropy => ("entropy of p_a, p_c, p_g, p_t", Some("nats")),
            Self::LogpRef => (
                "log probability of the reference base; null for N",
                Some("natural log"),
            ),
            Self::Pos => ("VCF POS, 1-based", Some("bp")),
            Self::Id => ("VCF ID; null for .", None),
            Self::RefAllele => ("VCF REF allele", None),
            Self::Alt => ("one VCF ALT allele", None),
            Self::Score => ("logp_alt - logp_ref", Some("natural log")),
            Self::LogpAlt => (
                "log probability of the alternate allele",
                Some("natural log"),
            ),
            Self::Status => ("ok, or why the variant was not scored", None),
            Self::RefName => (
                "reference sequence of the alignment; null if unmapped",
                None,
            ),
            Self::RefStart => (
                "0-based alignment start on ref_name; null if unmapped",
                Some("bp"),
            ),
            Self::Strand => ("alignment strand, + or -; null if unmapped", None),
            Self::Mapq => (
                "mapping quality; null if unmapped or unavailable (255)",
                Some("phred"),
            ),
            Self::Flag => ("SAM flag", None),
        }
    }

    /// The Arrow field, with its metadata.
    pub fn to_arrow(self) -> ArrowField {
        let (description, unit) = self.doc();
        let mut metadata = HashMap::from([("description".to_owned(), description.to_owned())]);
        if let Some(unit) = unit {
            metadata.insert("unit".to_owned(), unit.to_owned());
        }
        ArrowField::new(self.name(), self.data_type(), self.nullable()).with_metadata(metadata)
    }
}

/// The non-nullable `item` child of the `embedding` list.
pub(crate) fn item_field(dtype: Dtype) -> ArrowField {
    ArrowField::new("item", dtype.data_type(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_embedding_type() {
        let f = Field::Embedding {
            dim: 8,
            dtype: Dtype::F16,
        }
        .to_arrow();
        assert_eq!(f.name(), "embedding");
        assert!(!f.is_nullable());
        let DataType::FixedSizeList(item, 8) = f.data_type() else {
            panic!("wrong type {:?}", f.data_type());
        };
        assert_eq!(item.data_type(), &DataType::Float16);
        assert!(!item.is_nullable());
    }

    #[test]
    fn test_metadata_and_nullability() {
        let f = Field::Entropy.to_arrow();
        assert!(f.is_nullable());
        assert_eq!(f.metadata().get("unit").map(String::as_str), Some("nats"));
        assert!(!Field::Start.nullable());
        assert_eq!(Field::Mapq.data_type(), DataType::UInt8);
        assert_eq!(Field::Flag.data_type(), DataType::UInt16);
        assert_eq!(Field::RefBase.name(), Field::RefAllele.name());
    }

    #[test]
    fn test_sequence_kind() {
        assert_eq!(SequenceKind::Contig.key(), Field::Chrom);
        assert_eq!(SequenceKind::Read.key(), Field::ReadName);
        assert!(SequenceKind::Read.alignment_fields().is_empty());
        let names: Vec<_> = SequenceKind::AlignedRead
            .alignment_fields()
            .iter()
            .map(|f| f.name())
            .collect();
        assert_eq!(names, ["ref_name", "ref_start", "strand", "mapq", "flag"]);
    }
}
