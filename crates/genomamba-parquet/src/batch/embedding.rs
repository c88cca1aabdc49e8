//! Rows of the embeddings table.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, FixedSizeListArray, Float16Array, Float32Array, Int64Array, RecordBatch,
};
use arrow_schema::SchemaRef;
use half::f16;
use half::slice::HalfFloatSliceExt;

use super::columns::{AlignmentBuilder, KeyBuilder, check_interval};
use super::{BatchBuilder, ReadFields};
use crate::error::{Error, Result};
use crate::field::{Dtype, SequenceKind, item_field};
use crate::schema;

/// Embedding values in the table's element type.
#[derive(Debug)]
enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

/// Builds embeddings batches: one row per pooled bin (or per base), each with a D-value embedding.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{BatchBuilder, Dtype, EmbeddingBatchBuilder, SequenceKind};
/// let mut b = EmbeddingBatchBuilder::new(3, Dtype::F16, SequenceKind::Contig)?;
/// b.push("chr1", 0, 100, 0.0, &[0.5, -1.0, 2.0], None)?;
/// b.push("chr1", 100, 150, 0.2, &[0.0, 1.0, 0.25], None)?;
/// assert!(b.push("chr1", 150, 200, 0.0, &[1.0], None).is_err()); // wrong length, nothing appended
/// let batch = b.finish()?;
/// assert_eq!(batch.num_rows(), 2);
/// assert!(b.is_empty());
/// # Ok::<(), genomamba_parquet::Error>(())
/// ```
#[derive(Debug)]
pub struct EmbeddingBatchBuilder {
    schema: SchemaRef,
    dim: usize,
    dim_i32: i32,
    dtype: Dtype,
    key: KeyBuilder,
    start: Vec<i64>,
    end: Vec<i64>,
    n_frac: Vec<f32>,
    values: Values,
    alignment: Option<AlignmentBuilder>,
    bytes: usize,
}

impl EmbeddingBatchBuilder {
    /// A builder for D = `dim` values per row stored as `dtype`; `kind` picks the key and alignment columns.
    ///
    /// Fails if `dim` is 0 or above `i32::MAX`.
    pub fn new(dim: usize, dtype: Dtype, kind: SequenceKind) -> Result<Self> {
        let dim_i32 = schema::checked_dim(dim)?;
        Ok(Self {
            schema: schema::embeddings(dim, dtype, kind)?,
            dim,
            dim_i32,
            dtype,
            key: KeyBuilder::new(kind),
            start: Vec::new(),
            end: Vec::new(),
            n_frac: Vec::new(),
            values: match dtype {
                Dtype::F32 => Values::F32(Vec::new()),
                Dtype::F16 => Values::F16(Vec::new()),
            },
            alignment: AlignmentBuilder::for_kind(kind),
            bytes: 0,
        })
    }

    /// D, the number of values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Appends one row covering `[start, end)` (0-based) of sequence `name`.
    ///
    /// `n_frac`: fraction of N in the bin; `embedding`: D values, converted to f16 (round to nearest) when the
    /// dtype is [`Dtype::F16`]; `read`: alignment fields, used only for [`SequenceKind::AlignedRead`].
    pub fn push(
        &mut self,
        name: &str,
        start: i64,
        end: i64,
        n_frac: f32,
        embedding: &[f32],
        read: Option<&ReadFields<'_>>,
    ) -> Result<()> {
        check_interval(name, start, end)?;
        if embedding.len() != self.dim {
            return Err(Error::EmbeddingLength {
                name: name.to_owned(),
                start,
                end,
                expected: self.dim,
                got: embedding.len(),
            });
        }
        self.key.append(name)?;
        self.start.push(start);
        self.end.push(end);
        self.n_frac.push(n_frac);
        let value_bytes = match &mut self.values {
            Values::F32(v) => {
                v.extend_from_slice(embedding);
                4 * self.dim
            }
            Values::F16(v) => {
                let n = v.len();
                v.resize(n + self.dim, f16::ZERO);
                v[n..].convert_from_f32_slice(embedding);
                2 * self.dim
            }
        };
        let align_bytes = self.alignment.as_mut().map_or(0, |a| a.append(read));
        self.bytes += name.len() + 4 + 8 + 8 + 4 + value_bytes + align_bytes;
        Ok(())
    }
}

impl BatchBuilder for EmbeddingBatchBuilder {
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
        let values: ArrayRef = match &mut self.values {
            Values::F32(v) => Arc::new(Float32Array::from(std::mem::take(v))),
            Values::F16(v) => Arc::new(Float16Array::from(std::mem::take(v))),
        };
        let embedding = FixedSizeListArray::try_new(
            Arc::new(item_field(self.dtype)),
            self.dim_i32,
            values,
            None,
        )?;
        let mut columns: Vec<ArrayRef> = vec![
            self.key.finish(),
            Arc::new(Int64Array::from(std::mem::take(&mut self.start))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.end))),
            Arc::new(Float32Array::from(std::mem::take(&mut self.n_frac))),
            Arc::new(embedding),
        ];
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
    use arrow_array::types::{Float16Type, Float32Type};

    use super::*;

    #[test]
    fn test_f32_values_and_reset() -> Result<()> {
        let mut b = EmbeddingBatchBuilder::new(2, Dtype::F32, SequenceKind::Contig)?;
        b.push("chr1", 0, 4, 0.25, &[1.0, 2.0], None)?;
        b.push("chr2", 0, 4, 0.0, &[3.0, 4.0], None)?;
        assert_eq!(b.len(), 2);
        assert!(b.approx_bytes() >= 2 * (8 + 8 + 4 + 8));
        let batch = b.finish()?;
        let emb = batch.column(4).as_fixed_size_list();
        assert_eq!(emb.value_length(), 2);
        assert_eq!(
            emb.value(1).as_primitive::<Float32Type>().values().as_ref(),
            &[3.0, 4.0]
        );
        assert_eq!(b.len(), 0);
        assert_eq!(b.approx_bytes(), 0);
        assert_eq!(b.finish()?.num_rows(), 0);
        Ok(())
    }

    #[test]
    fn test_f16_rounds() -> Result<()> {
        let mut b = EmbeddingBatchBuilder::new(3, Dtype::F16, SequenceKind::Read)?;
        b.push("read1", 0, 10, 0.0, &[1.0, 0.1, 65504.0], None)?;
        let batch = b.finish()?;
        assert_eq!(batch.schema().field(0).name(), "read_name");
        let emb = batch.column(4).as_fixed_size_list();
        let v = emb.value(0);
        let v = v.as_primitive::<Float16Type>();
        assert_eq!(v.value(0), f16::from_f32(1.0));
        assert_eq!(v.value(1).to_f32(), f16::from_f32(0.1).to_f32());
        assert!((v.value(1).to_f32() - 0.1).abs() < 1e-4);
        assert_eq!(v.value(2).to_f32(), 65504.0);
        Ok(())
    }

    #[test]
    fn test_rejects_bad_rows_without_appending() -> Result<()> {
        let mut b = EmbeddingBatchBuilder::new(2, Dtype::F32, SequenceKind::AlignedRead)?;
        assert!(matches!(
            b.push("r", 0, 1, 0.0, &[1.0], None),
            Err(Error::EmbeddingLength {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            b.push("r", 3, 1, 0.0, &[1.0, 2.0], None),
            Err(Error::Interval { .. })
        ));
        assert!(b.is_empty());
        let read = ReadFields {
            ref_name: Some("chr1"),
            ref_start: Some(99),
            reverse: Some(false),
            mapq: Some(7),
            flag: Some(0),
        };
        b.push("r", 0, 1, 0.0, &[1.0, 2.0], Some(&read))?;
        let batch = b.finish()?;
        assert_eq!(batch.num_columns(), 10);
        assert_eq!(
            batch
                .column(6)
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(0),
            99
        );
        assert_eq!(batch.column(7).as_string::<i32>().value(0), "+");
        assert_eq!(batch.column(5).null_count(), 0);
        Ok(())
    }
}
