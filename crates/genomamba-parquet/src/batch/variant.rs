//! Rows of the variants table: one per (VCF record, ALT allele).

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;

use super::BatchBuilder;
use crate::error::{Error, Result};
use crate::schema;

/// Values of the `status` column used by genomamba; any other string is accepted too.
pub mod status {
    /// Scored.
    pub const OK: &str = "ok";
    /// REF does not match the reference sequence.
    pub const REF_MISMATCH: &str = "ref_mismatch";
    /// Not a single-nucleotide variant (indels, MNVs, symbolic alleles).
    pub const NOT_SNV: &str = "not_snv";
    /// The contig is not in the reference.
    pub const UNKNOWN_CONTIG: &str = "unknown_contig";
    /// POS is beyond the end of the contig, or 0 (a telomeric breakend, VCF 4.3: no base).
    pub const OUT_OF_BOUNDS: &str = "out_of_bounds";
    /// REF or ALT is N or another ambiguity code.
    pub const AMBIGUOUS: &str = "ambiguous";
    /// ALT is `.`: the record states no alternative allele.
    pub const NO_ALT: &str = "no_alt";
    /// The model saw no base before the site: the first base of a contig, and with no overlap between windows the
    /// first base of every window (causal models).
    pub const NO_CONTEXT: &str = "no_context";
}

/// One row: a VCF record with one ALT allele and its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant<'a> {
    /// CHROM.
    pub chrom: &'a str,
    /// POS, 1-based as in the VCF.
    pub pos: i64,
    /// ID; `None` for `.`.
    pub id: Option<&'a str>,
    /// REF allele.
    pub ref_allele: &'a str,
    /// One ALT allele.
    pub alt: &'a str,
    /// ln P(ref) at the site; `None` when not scored.
    pub logp_ref: Option<f32>,
    /// ln P(alt) at the site; `None` when not scored.
    pub logp_alt: Option<f32>,
    /// [`status::OK`] or the reason it was not scored.
    pub status: &'a str,
}

/// Builds variants batches. `score` is computed as `logp_alt - logp_ref` when both are given.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{BatchBuilder, Variant, VariantBatchBuilder, status};
/// let mut b = VariantBatchBuilder::new();
/// b.push(&Variant {
///     chrom: "chr1", pos: 101, id: Some("rs1"), ref_allele: "A", alt: "G",
///     logp_ref: Some(-0.5), logp_alt: Some(-2.0), status: status::OK,
/// })?;
/// b.push(&Variant {
///     chrom: "chr1", pos: 205, id: None, ref_allele: "AT", alt: "A",
///     logp_ref: None, logp_alt: None, status: status::NOT_SNV,
/// })?;
/// let batch = b.finish()?;
/// assert_eq!(batch.num_rows(), 2);
/// assert_eq!(batch.column_by_name("score").map(|c| c.null_count()), Some(1));
/// # Ok::<(), genomamba_parquet::Error>(())
/// ```
pub struct VariantBatchBuilder {
    schema: SchemaRef,
    chrom: StringDictionaryBuilder<Int32Type>,
    pos: Vec<i64>,
    id: StringBuilder,
    ref_allele: StringBuilder,
    alt: StringBuilder,
    score: Float32Builder,
    logp_ref: Float32Builder,
    logp_alt: Float32Builder,
    status: StringDictionaryBuilder<Int32Type>,
    bytes: usize,
}

impl std::fmt::Debug for VariantBatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantBatchBuilder")
            .field("rows", &self.pos.len())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Default for VariantBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl VariantBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            schema: schema::variants(),
            chrom: StringDictionaryBuilder::new(),
            pos: Vec::new(),
            id: StringBuilder::new(),
            ref_allele: StringBuilder::new(),
            alt: StringBuilder::new(),
            score: Float32Builder::new(),
            logp_ref: Float32Builder::new(),
            logp_alt: Float32Builder::new(),
            status: StringDictionaryBuilder::new(),
            bytes: 0,
        }
    }

    /// Appends one variant; fails if `pos < 0` (POS 0 is a telomeric breakend, VCF 4.3).
    pub fn push(&mut self, v: &Variant<'_>) -> Result<()> {
        if v.pos < 0 {
            return Err(Error::Position {
                chrom: v.chrom.to_owned(),
                pos: v.pos,
            });
        }
        // Dictionary appends fail only past 2^31 distinct values; if `status` failed after `chrom` succeeded, the
        // column lengths would differ and `finish` would return an error rather than a misaligned batch.
        self.chrom.append(v.chrom)?;
        self.status.append(v.status)?;
        self.pos.push(v.pos);
        self.id.append_option(v.id);
        self.ref_allele.append_value(v.ref_allele);
        self.alt.append_value(v.alt);
        self.score
            .append_option(v.logp_alt.zip(v.logp_ref).map(|(a, r)| a - r));
        self.logp_ref.append_option(v.logp_ref);
        self.logp_alt.append_option(v.logp_alt);
        // Dictionary keys (chrom, status), pos, three strings with their offsets, three floats.
        let strings = v.id.map_or(0, str::len) + v.ref_allele.len() + v.alt.len();
        self.bytes += 2 * 4 + 8 + strings + 3 * 4 + 3 * 4;
        Ok(())
    }
}

impl BatchBuilder for VariantBatchBuilder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn len(&self) -> usize {
        self.pos.len()
    }

    fn approx_bytes(&self) -> usize {
        self.bytes
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.chrom.finish()),
            Arc::new(Int64Array::from(std::mem::take(&mut self.pos))),
            Arc::new(self.id.finish()),
            Arc::new(self.ref_allele.finish()),
            Arc::new(self.alt.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.logp_ref.finish()),
            Arc::new(self.logp_alt.finish()),
            Arc::new(self.status.finish()),
        ];
        self.bytes = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;

    use super::*;

    fn v(pos: i64, status: &'static str) -> Variant<'static> {
        Variant {
            chrom: "chr2",
            pos,
            id: None,
            ref_allele: "C",
            alt: "T",
            logp_ref: Some(-0.25),
            logp_alt: Some(-3.0),
            status,
        }
    }

    #[test]
    fn test_score_and_status() -> Result<()> {
        let mut b = VariantBatchBuilder::new();
        b.push(&v(1, status::OK))?;
        b.push(&Variant {
            logp_alt: None,
            ..v(7, status::REF_MISMATCH)
        })?;
        b.push(&v(9, status::OK))?;
        let batch = b.finish()?;
        let score = batch.column(5).as_primitive::<Float32Type>();
        assert_eq!(score.value(0), -2.75);
        assert!(score.is_null(1));
        let status = batch.column(8).as_dictionary::<Int32Type>();
        assert_eq!(status.keys().values().as_ref(), &[0, 1, 0]);
        assert_eq!(batch.column(2).null_count(), 3);
        Ok(())
    }

    #[test]
    fn test_rejects_negative_pos_and_keeps_pos_zero() -> Result<()> {
        let mut b = VariantBatchBuilder::new();
        assert!(matches!(
            b.push(&v(-1, status::OK)),
            Err(Error::Position { pos: -1, .. })
        ));
        assert!(b.is_empty());
        b.push(&v(0, status::OUT_OF_BOUNDS))?;
        let batch = b.finish()?;
        let pos = batch
            .column_by_name("pos")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .map(|a| a.values().to_vec());
        assert_eq!(pos, Some(vec![0]));
        Ok(())
    }
}
