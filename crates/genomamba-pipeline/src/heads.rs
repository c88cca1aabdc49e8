//! Turns engine outputs for one piece into table rows: per-base predictions or pooled embeddings.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use genomamba_model::{Engine, Output, Want};
use genomamba_parquet::{
    BatchBuilder, Dtype, EmbeddingBatchBuilder, PredictionBatchBuilder, ReadFields, SequenceKind,
};
use genomamba_seq::Alignment;
use genomamba_seq::alphabet;
use genomamba_seq::window::Piece;

use crate::Result;
use crate::pooling::{PooledRow, Pooler};
use crate::settings::{EmbedOptions, OutDtype, Pool, Strand, Task};

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 65_536;
/// Approximate bytes per record batch handed to the writer.
const BATCH_BYTES: usize = 32 << 20;

/// The row builder of the task, with the pooling state of embeddings.
// One value per run: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Heads {
    /// Per-base predictions.
    Predict {
        /// Rows not yet handed on.
        builder: PredictionBatchBuilder,
    },
    /// Embeddings.
    Embed {
        /// Rows not yet handed on.
        builder: EmbeddingBatchBuilder,
        /// Embedding options.
        options: EmbedOptions,
        /// Open bins.
        pooler: Pooler,
        /// The sequence the open bin belongs to, with its read columns.
        current: Option<(String, Option<Alignment>)>,
        /// Reused strand-averaged rows.
        mean: Vec<f32>,
    },
}

impl Heads {
    /// Heads for `task` over hidden states of `width` values per position.
    pub fn new(task: &Task, width: usize, kind: SequenceKind) -> Result<Self> {
        Ok(match task {
            Task::Predict => Heads::Predict {
                builder: PredictionBatchBuilder::new(kind),
            },
            Task::Embed(options) => {
                let bin = match options.pool {
                    Pool::Bases(n) => n,
                    Pool::Window | Pool::Record => u64::MAX,
                };
                Heads::Embed {
                    builder: EmbeddingBatchBuilder::new(
                        width,
                        match options.dtype {
                            OutDtype::F32 => Dtype::F32,
                            OutDtype::F16 => Dtype::F16,
                        },
                        kind,
                    )?,
                    options: options.clone(),
                    pooler: Pooler::new(bin, width),
                    current: None,
                    mean: Vec::new(),
                }
            }
        })
    }

    /// The schema of the table these heads fill.
    pub fn schema(&self) -> SchemaRef {
        match self {
            Heads::Predict { builder, .. } => builder.schema(),
            Heads::Embed { builder, .. } => builder.schema(),
        }
    }

    /// What the engine must compute for these heads.
    pub fn want(&self) -> Want {
        match self {
            Heads::Predict { .. } => Want {
                hidden: false,
                base_probs: true,
            },
            Heads::Embed { .. } => Want {
                hidden: true,
                base_probs: false,
            },
        }
    }

    /// Whether each piece must also run as its reverse complement (`--strand both` on an engine whose
    /// embedding is not strand-symmetric already).
    pub fn needs_reverse(&self, engine: &dyn Engine) -> bool {
        matches!(self, Heads::Embed { options, .. } if options.strand == Strand::Both)
            && !engine.strand_symmetric()
    }

    /// Adds the rows of `piece` from the engine's outputs for it: `out` for its tokens (hidden rows
    /// `width` wide, or probabilities, as [`Heads::want`] says) and, when [`Heads::needs_reverse`],
    /// `out_rc` for its reverse complement. Returns the number of rows added.
    pub fn consume(
        &mut self,
        piece: &Piece,
        width: usize,
        out: &Output,
        out_rc: Option<&Output>,
    ) -> Result<u64> {
        let alignment = piece.seq.alignment.as_ref();
        let read = alignment.map(read_fields);
        match self {
            Heads::Predict { builder } => {
                for i in piece.keep.clone() {
                    let probs = out.base_probs[i];
                    let probs = (!probs[0].is_nan()).then_some(probs);
                    let pos = (piece.start + i as u64) as i64;
                    builder.push(&piece.seq.name, pos, piece.bases[i], probs, read.as_ref())?;
                }
                Ok(piece.keep.len() as u64)
            }
            Heads::Embed {
                builder,
                options,
                pooler,
                current,
                mean,
            } => {
                let rows: &[f32] = match out_rc {
                    Some(rc) => {
                        average_strands(&out.hidden, &rc.hidden, width, mean);
                        mean
                    }
                    None => &out.hidden,
                };
                let name = &piece.seq.name;
                if current.as_ref().is_none_or(|(n, _)| n != name) {
                    if let Some(row) = pooler.flush() {
                        push_pooled(builder, current.as_ref(), &row)?;
                    }
                    *current = Some((name.clone(), alignment.cloned()));
                }
                let before = builder.len();
                for i in piece.keep.clone() {
                    let pos = piece.start + i as u64;
                    let is_n = piece.tokens[i] == alphabet::N;
                    if let Some(row) = pooler.add(pos, &rows[i * width..(i + 1) * width], is_n) {
                        push_pooled(builder, current.as_ref(), &row)?;
                    }
                }
                if options.pool == Pool::Window
                    && piece.last
                    && let Some(row) = pooler.flush()
                {
                    push_pooled(builder, current.as_ref(), &row)?;
                }
                Ok((builder.len() - before) as u64)
            }
        }
    }

    /// Closes the open bin of the sequence that just ended; returns the rows added.
    pub fn end_sequence(&mut self) -> Result<u64> {
        match self {
            Heads::Predict { .. } => Ok(0),
            Heads::Embed {
                builder,
                pooler,
                current,
                ..
            } => match pooler.flush() {
                Some(row) => {
                    push_pooled(builder, current.as_ref(), &row)?;
                    Ok(1)
                }
                None => Ok(0),
            },
        }
    }

    /// The rows built so far as a record batch, when enough have accumulated (or `all`).
    pub fn take_batch(&mut self, all: bool) -> Result<Option<RecordBatch>> {
        let (len, bytes) = match self {
            Heads::Predict { builder, .. } => (builder.len(), builder.approx_bytes()),
            Heads::Embed { builder, .. } => (builder.len(), builder.approx_bytes()),
        };
        if len == 0 || (!all && len < BATCH_ROWS && bytes < BATCH_BYTES) {
            return Ok(None);
        }
        let batch = match self {
            Heads::Predict { builder, .. } => builder.finish()?,
            Heads::Embed { builder, .. } => builder.finish()?,
        };
        Ok(Some(batch))
    }
}

/// Averages the forward rows with the reverse-complement rows aligned by position: row i of the forward pass
/// pairs with row L-1-i of the reverse pass. `fwd`, `rc`: (L, width).
fn average_strands(fwd: &[f32], rc: &[f32], width: usize, mean: &mut Vec<f32>) {
    let len = fwd.len() / width.max(1);
    mean.clear();
    mean.reserve(fwd.len());
    for i in 0..len {
        let f = &fwd[i * width..(i + 1) * width];
        let j = len - 1 - i;
        let r = &rc[j * width..(j + 1) * width];
        mean.extend(f.iter().zip(r).map(|(a, b)| 0.5 * (a + b)));
    }
}

fn push_pooled(
    builder: &mut EmbeddingBatchBuilder,
    current: Option<&(String, Option<Alignment>)>,
    row: &PooledRow,
) -> Result<()> {
    if let Some((name, alignment)) = current {
        let read = alignment.as_ref().map(read_fields);
        builder.push(
            name,
            row.start as i64,
            row.end as i64,
            row.n_frac,
            &row.mean,
            read.as_ref(),
        )?;
    }
    Ok(())
}

fn read_fields(a: &Alignment) -> ReadFields<'_> {
    ReadFields {
        ref_name: a.ref_name.as_deref(),
        ref_start: a.ref_start,
        reverse: Some(a.reverse),
        mapq: a.mapq,
        flag: Some(a.flag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strands_pair_position_i_with_mirror() {
        // Two positions, width 2: forward rows [1,2],[3,4]; reverse-pass rows [10,20],[30,40].
        let mut mean = Vec::new();
        average_strands(
            &[1.0, 2.0, 3.0, 4.0],
            &[10.0, 20.0, 30.0, 40.0],
            2,
            &mut mean,
        );
        assert_eq!(mean, vec![15.5, 21.0, 6.5, 12.0]);
    }
}
