//! Rows of the predictions table: one per base.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, StringBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;

use super::columns::{AlignmentBuilder, KeyBuilder, check_interval};
use super::{BatchBuilder, ReadFields};
use crate::error::{Error, Result};
use crate::field::{Field, SequenceKind};
use crate::schema;

/// Renormalised probabilities, in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Distribution {
    p: [f64; 4],
}

impl Distribution {
    /// Entropy in nats.
    fn entropy(&self) -> f64 {
        -self
            .p
            .iter()
            .filter(|&&q| q > 0.0)
            .map(|&q| q * q.ln())
            .sum::<f64>()
    }
}

/// Renormalises `probs` (A, C, G, T); `None` if any is negative or not finite, or all are zero.
fn renormalise(probs: [f32; 4]) -> Option<Distribution> {
    if probs.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return None;
    }
    let sum: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    if sum <= 0.0 || !sum.is_finite() {
        return None;
    }
    Some(Distribution {
        p: probs.map(|x| f64::from(x) / sum),
    })
}

/// Natural logs of the renormalised probabilities of A, C, G, T, computed as the predictions table's `logp_ref`
/// (in f64, then rounded to f32), so a variant's `logp_ref` equals that column at its site; `None` where that
/// row's probabilities are null (any value negative or not finite, or all zero).
///
/// ```
/// let lp = genomamba_parquet::log_probs([0.5, 0.25, 0.125, 0.125]).unwrap();
/// assert_eq!(lp[1], 0.25f64.ln() as f32);
/// assert!(genomamba_parquet::log_probs([f32::NAN; 4]).is_none());
/// ```
pub fn log_probs(probs: [f32; 4]) -> Option<[f32; 4]> {
    renormalise(probs).map(|d| d.p.map(|q| q.ln() as f32))
}

/// Index of a base in A, C, G, T (either case), or `None` for N and anything else.
pub fn base_index(base: u8) -> Option<usize> {
    match base.to_ascii_uppercase() {
        b'A' => Some(0),
        b'C' => Some(1),
        b'G' => Some(2),
        b'T' => Some(3),
        _ => None,
    }
}

/// Builds predictions batches: one row per base with the model's distribution over A, C, G, T.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{BatchBuilder, PredictionBatchBuilder, SequenceKind};
/// let mut b = PredictionBatchBuilder::new(SequenceKind::Contig);
/// b.push("chr1", 0, b'A', None, None)?; // first base: no context, probabilities null
/// b.push("chr1", 1, b'c', Some([0.2, 0.4, 0.2, 0.2]), None)?;
/// b.push("chr1", 2, b'N', Some([1.0, 1.0, 1.0, 1.0]), None)?; // renormalised; logp_ref null for N
/// let batch = b.finish()?;
/// assert_eq!(batch.num_rows(), 3);
/// assert_eq!(batch.column_by_name("p_a").map(|c| c.null_count()), Some(1));
/// assert_eq!(batch.column_by_name("logp_ref").map(|c| c.null_count()), Some(2));
/// # Ok::<(), genomamba_parquet::Error>(())
/// ```
#[derive(Debug)]
pub struct PredictionBatchBuilder {
    schema: SchemaRef,
    key: KeyBuilder,
    start: Vec<i64>,
    ref_base: StringBuilder,
    /// The value columns written, in the table's order, each with its rows.
    values: Vec<(Field, Float32Builder)>,
    alignment: Option<AlignmentBuilder>,
    bytes: usize,
}

impl PredictionBatchBuilder {
    /// A builder whose key and alignment columns follow `kind`.
    pub fn new(kind: SequenceKind) -> Self {
        Self::of_values(kind, &schema::PREDICTION_VALUES)
    }

    /// A builder of the value columns `values` (checked to be some of them), in the table's order.
    fn of_values(kind: SequenceKind, values: &[Field]) -> Self {
        let fields: Vec<Field> = schema::prediction_fields(kind)
            .into_iter()
            .filter(|f| !schema::PREDICTION_VALUES.contains(f) || values.contains(f))
            .collect();
        Self {
            schema: schema::to_schema(&fields),
            key: KeyBuilder::new(kind),
            start: Vec::new(),
            ref_base: StringBuilder::new(),
            values: fields
                .into_iter()
                .filter(|f| schema::PREDICTION_VALUES.contains(f))
                .map(|f| (f, Float32Builder::new()))
                .collect(),
            alignment: AlignmentBuilder::for_kind(kind),
            bytes: 0,
        }
    }

    /// A builder that writes, of the value columns ([`schema::PREDICTION_VALUES`]), only those in `values`
    /// (in the table's order whatever theirs); the key, `start`, `end`, `ref` and alignment columns are always
    /// written. Fails when `values` holds none of them or a column that is not one of them.
    ///
    /// ```
    /// use genomamba_parquet::{BatchBuilder, Field, PredictionBatchBuilder, SequenceKind};
    /// let mut b = PredictionBatchBuilder::with_values(SequenceKind::Contig, &[Field::LogpRef])?;
    /// b.push("chr1", 1, b'C', Some([0.2, 0.4, 0.2, 0.2]), None)?;
    /// let batch = b.finish()?;
    /// let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
    /// assert_eq!(names, ["chrom", "start", "end", "ref", "logp_ref"]);
    /// # Ok::<(), genomamba_parquet::Error>(())
    /// ```
    pub fn with_values(kind: SequenceKind, values: &[Field]) -> Result<Self> {
        if let Some(other) = values
            .iter()
            .find(|f| !schema::PREDICTION_VALUES.contains(f))
        {
            return Err(Error::Column(format!(
                "{} is not a value column of the predictions table",
                other.name()
            )));
        }
        if values.is_empty() {
            return Err(Error::Column(
                "no value column: keep at least one of p_a, p_c, p_g, p_t, entropy, logp_ref"
                    .into(),
            ));
        }
        Ok(Self::of_values(kind, values))
    }

    /// Appends the base at 0-based `pos0` of `name` (`end` = `pos0 + 1`).
    ///
    /// `ref_base`: the byte as read (printable ASCII, case kept); `probs`: the model's P(A, C, G, T), renormalised
    /// here, or `None` where no context exists (all probability columns, `entropy` and `logp_ref` null).
    /// `logp_ref` = ln P(ref) after renormalising, null when the base is not A, C, G or T (either case).
    /// Negative, non-finite or all-zero probabilities are an error.
    pub fn push(
        &mut self,
        name: &str,
        pos0: i64,
        ref_base: u8,
        probs: Option<[f32; 4]>,
        read: Option<&ReadFields<'_>>,
    ) -> Result<()> {
        let end = pos0.checked_add(1).unwrap_or(i64::MIN);
        check_interval(name, pos0, end)?;
        let bad_base = || Error::Base {
            name: name.to_owned(),
            pos: pos0,
            byte: ref_base,
        };
        if !ref_base.is_ascii_graphic() {
            return Err(bad_base());
        }
        let dist = match probs {
            None => None,
            Some(p) => Some(renormalise(p).ok_or_else(|| Error::Probabilities {
                name: name.to_owned(),
                pos: pos0,
                probs: p,
            })?),
        };
        let base = [ref_base];
        let base = std::str::from_utf8(&base).map_err(|_| bad_base())?;
        self.key.append(name)?;
        self.start.push(pos0);
        self.ref_base.append_value(base);
        for (field, b) in &mut self.values {
            b.append_option(dist.and_then(|d| match field {
                Field::PA => Some(d.p[0] as f32),
                Field::PC => Some(d.p[1] as f32),
                Field::PG => Some(d.p[2] as f32),
                Field::PT => Some(d.p[3] as f32),
                Field::Entropy => Some(d.entropy() as f32),
                Field::LogpRef => base_index(ref_base).map(|i| d.p[i].ln() as f32),
                // Not a value column: `of_values` keeps none.
                _ => None,
            }));
        }
        let align_bytes = self.alignment.as_mut().map_or(0, |a| a.append(read));
        self.bytes += name.len() + 4 + 8 + 8 + 5 + 4 * self.values.len() + align_bytes;
        Ok(())
    }
}

impl BatchBuilder for PredictionBatchBuilder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn len(&self) -> usize {
        self.start.len()
    }

    fn approx_bytes(&self) -> usize {
        self.bytes
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let start = std::mem::take(&mut self.start);
        let end: Vec<i64> = start.iter().map(|s| s + 1).collect();
        let mut columns: Vec<ArrayRef> = vec![
            self.key.finish(),
            Arc::new(Int64Array::from(start)),
            Arc::new(Int64Array::from(end)),
            Arc::new(self.ref_base.finish()),
        ];
        for (_, b) in &mut self.values {
            columns.push(Arc::new(b.finish()));
        }
        if let Some(a) = &mut self.alignment {
            columns.extend(a.finish());
        }
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

    #[test]
    fn test_renormalise() {
        let d = renormalise([1.0, 1.0, 1.0, 1.0]).expect("valid");
        assert_eq!(d.p, [0.25; 4]);
        assert!((d.entropy() - 4f64.ln()).abs() < 1e-12);
        let d = renormalise([0.0, 2.0, 0.0, 0.0]).expect("valid");
        assert_eq!(d.entropy(), 0.0);
        assert!(renormalise([0.0; 4]).is_none());
        assert!(renormalise([f32::NAN, 0.5, 0.5, 0.0]).is_none());
        assert!(renormalise([-0.1, 0.5, 0.5, 0.1]).is_none());
    }

    #[test]
    fn test_row_values() -> Result<()> {
        let mut b = PredictionBatchBuilder::new(SequenceKind::Contig);
        b.push("chr1", 10, b'g', Some([0.1, 0.2, 0.6, 0.1]), None)?;
        b.push("chr1", 11, b'R', Some([0.1, 0.2, 0.6, 0.1]), None)?;
        b.push("chr1", 12, b'T', None, None)?;
        let batch = b.finish()?;
        let col = |n: &str| batch.column_by_name(n).expect("column").clone();
        assert_eq!(
            col("end")
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .as_ref(),
            &[11, 12, 13]
        );
        assert_eq!(col("ref").as_string::<i32>().value(0), "g");
        let logp = col("logp_ref");
        let logp = logp.as_primitive::<Float32Type>();
        assert!((logp.value(0) - 0.6f32.ln()).abs() < 1e-6);
        assert!(logp.is_null(1) && logp.is_null(2));
        let h = col("entropy");
        let h = h.as_primitive::<Float32Type>();
        let want: f64 = [0.1f64, 0.2, 0.6, 0.1].iter().map(|p| -p * p.ln()).sum();
        assert!((f64::from(h.value(0)) - want).abs() < 1e-6);
        assert!(h.is_null(2));
        Ok(())
    }

    #[test]
    fn test_value_columns_left_out() -> Result<()> {
        let rows = |b: &mut PredictionBatchBuilder| -> Result<RecordBatch> {
            b.push("r1", 0, b'A', None, Some(&ReadFields::default()))?;
            b.push(
                "r1",
                1,
                b'C',
                Some([0.1, 0.2, 0.6, 0.1]),
                Some(&ReadFields::default()),
            )?;
            b.finish()
        };
        let full = rows(&mut PredictionBatchBuilder::new(SequenceKind::AlignedRead))?;
        // Listed out of order and twice: the table's order, once each.
        let mut b = PredictionBatchBuilder::with_values(
            SequenceKind::AlignedRead,
            &[Field::LogpRef, Field::PG, Field::LogpRef],
        )?;
        let some = rows(&mut b)?;
        let names: Vec<&str> = some
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "read_name",
                "start",
                "end",
                "ref",
                "p_g",
                "logp_ref",
                "ref_name",
                "ref_start",
                "strand",
                "mapq",
                "flag"
            ]
        );
        for name in names {
            assert_eq!(
                some.column_by_name(name),
                full.column_by_name(name),
                "{name}"
            );
        }
        assert_eq!(b.schema(), some.schema());
        assert!(matches!(
            PredictionBatchBuilder::with_values(SequenceKind::Contig, &[]),
            Err(Error::Column(_))
        ));
        assert!(matches!(
            PredictionBatchBuilder::with_values(SequenceKind::Contig, &[Field::Start]),
            Err(Error::Column(_))
        ));
        Ok(())
    }

    #[test]
    fn test_errors_leave_builder_unchanged() {
        let mut b = PredictionBatchBuilder::new(SequenceKind::Read);
        assert!(matches!(
            b.push("r", 0, b'\n', None, None),
            Err(Error::Base { byte: b'\n', .. })
        ));
        assert!(matches!(
            b.push("r", 0, 0xC3, None, None),
            Err(Error::Base { .. })
        ));
        assert!(matches!(
            b.push("r", 0, b'A', Some([0.0; 4]), None),
            Err(Error::Probabilities { .. })
        ));
        assert!(matches!(
            b.push("r", -1, b'A', None, None),
            Err(Error::Interval { .. })
        ));
        assert!(b.push("r", i64::MAX, b'A', None, None).is_err());
        assert!(b.is_empty());
    }
}
