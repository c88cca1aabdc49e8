//! Column builders shared by the tables: the sequence key and the alignment columns.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, Int64Builder, StringBuilder, StringDictionaryBuilder, UInt8Builder, UInt16Builder,
};
use arrow_array::types::Int32Type;

use super::ReadFields;
use crate::error::Result;
use crate::field::SequenceKind;

/// `chrom` (dictionary) or `read_name` (plain string).
pub(crate) enum KeyBuilder {
    /// Contig names, dictionary-encoded in first-seen order.
    Chrom(StringDictionaryBuilder<Int32Type>),
    /// Read names.
    ReadName(StringBuilder),
}

impl std::fmt::Debug for KeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chrom(b) => f.debug_tuple("Chrom").field(&b.len()).finish(),
            Self::ReadName(b) => f.debug_tuple("ReadName").field(&b.len()).finish(),
        }
    }
}

impl KeyBuilder {
    pub(crate) fn new(kind: SequenceKind) -> Self {
        match kind {
            SequenceKind::Contig => Self::Chrom(StringDictionaryBuilder::new()),
            SequenceKind::Read | SequenceKind::AlignedRead => Self::ReadName(StringBuilder::new()),
        }
    }

    /// Appends one name; fails only if the dictionary outgrows `i32` keys.
    pub(crate) fn append(&mut self, name: &str) -> Result<()> {
        match self {
            Self::Chrom(b) => {
                b.append(name)?;
            }
            Self::ReadName(b) => b.append_value(name),
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Chrom(b) => Arc::new(b.finish()),
            Self::ReadName(b) => Arc::new(b.finish()),
        }
    }
}

/// `ref_name`, `ref_start`, `strand`, `mapq`, `flag`.
#[derive(Debug, Default)]
pub(crate) struct AlignmentBuilder {
    ref_name: StringBuilder,
    ref_start: Int64Builder,
    strand: StringBuilder,
    mapq: UInt8Builder,
    flag: UInt16Builder,
}

impl AlignmentBuilder {
    /// Builders for `kind`, or `None` when the table has no alignment columns.
    pub(crate) fn for_kind(kind: SequenceKind) -> Option<Self> {
        (kind == SequenceKind::AlignedRead).then(Self::default)
    }

    /// Appends one row; `None` gives nulls in every column. Returns the bytes added (approximate).
    pub(crate) fn append(&mut self, read: Option<&ReadFields<'_>>) -> usize {
        let r = read.copied().unwrap_or_default();
        self.ref_name.append_option(r.ref_name);
        self.ref_start.append_option(r.ref_start);
        self.strand
            .append_option(r.reverse.map(|rev| if rev { "-" } else { "+" }));
        self.mapq.append_option(r.mapq);
        self.flag.append_option(r.flag);
        r.ref_name.map_or(0, str::len) + 4 + 8 + 1 + 4 + 1 + 2
    }

    pub(crate) fn finish(&mut self) -> [ArrayRef; 5] {
        [
            Arc::new(self.ref_name.finish()),
            Arc::new(self.ref_start.finish()),
            Arc::new(self.strand.finish()),
            Arc::new(self.mapq.finish()),
            Arc::new(self.flag.finish()),
        ]
    }
}

/// Checks `0 <= start <= end`.
pub(crate) fn check_interval(name: &str, start: i64, end: i64) -> Result<()> {
    if start < 0 || end < start {
        return Err(crate::Error::Interval {
            name: name.to_owned(),
            start,
            end,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, DictionaryArray, StringArray, UInt8Array};

    use super::*;

    #[test]
    fn test_key_dictionary_keeps_first_seen_order() -> Result<()> {
        let mut k = KeyBuilder::new(SequenceKind::Contig);
        for n in ["chr2", "chr1", "chr2"] {
            k.append(n)?;
        }
        let a = k.finish();
        let d = a
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .expect("dictionary");
        assert_eq!(d.keys().values().as_ref(), &[0, 1, 0]);
        let v = d
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8 values");
        assert_eq!(v.len(), 2);
        assert_eq!(v.value(1), "chr1");
        Ok(())
    }

    #[test]
    fn test_alignment_nulls_and_strand() {
        let mut b = AlignmentBuilder::default();
        b.append(None);
        b.append(Some(&ReadFields {
            ref_name: Some("chr1"),
            ref_start: Some(10),
            reverse: Some(true),
            mapq: Some(60),
            flag: Some(16),
        }));
        let [name, _, strand, mapq, _] = b.finish();
        assert_eq!(name.null_count(), 1);
        let strand = strand
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|s| s.value(1).to_owned());
        assert_eq!(strand.as_deref(), Some("-"));
        let mapq = mapq
            .as_any()
            .downcast_ref::<UInt8Array>()
            .map(|m| m.value(1));
        assert_eq!(mapq, Some(60));
    }

    #[test]
    fn test_check_interval() {
        assert!(check_interval("a", 0, 0).is_ok());
        assert!(check_interval("a", 5, 4).is_err());
        assert!(check_interval("a", -1, 4).is_err());
    }
}
