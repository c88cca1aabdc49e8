//! Turns engine results for one piece into table rows: per-base predictions or pooled embeddings.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use genomamba_model::Engine;
use genomamba_parquet::{
    BatchBuilder, Dtype, EmbeddingBatchBuilder, PredictionBatchBuilder, ReadFields, SequenceKind,
};
use genomamba_seq::Alignment;
use genomamba_seq::alphabet;
use genomamba_seq::window::{Piece, SequenceSummary};

use crate::feed::{Compute, Computed};
use crate::pooling::{PooledRow, Pooler};
use crate::scoring::Scorer;
use crate::settings::{EmbedOptions, OutDtype, Pool, Strand, Task};
use crate::{Error, Result};

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 65_536;
/// Approximate bytes per record batch handed to the writer.
const BATCH_BYTES: usize = 32 << 20;

/// The row builder of the task, with the pooling state of embeddings or the scores of variants.
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
    },
    /// Variant-effect scores, written in the VCF's order once every site has been run.
    Score(Scorer),
}

impl Heads {
    /// Heads for `task` over hidden states of `width` values per position.
    pub fn new(task: &Task, width: usize, kind: SequenceKind) -> Result<Self> {
        Ok(match task {
            Task::Predict(options) => Heads::Predict {
                builder: PredictionBatchBuilder::with_values(kind, &options.values)?,
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
                }
            }
            Task::Score(options) => Heads::Score(Scorer::new(options)),
        })
    }

    /// The schema of the table these heads fill.
    pub fn schema(&self) -> SchemaRef {
        match self {
            Heads::Predict { builder, .. } => builder.schema(),
            Heads::Embed { builder, .. } => builder.schema(),
            Heads::Score(scorer) => scorer.schema(),
        }
    }

    /// What the engine must compute for these heads.
    pub fn compute(&self) -> Compute {
        match self {
            Heads::Predict { .. } | Heads::Score(_) => Compute::Probs,
            Heads::Embed { pooler, .. } => Compute::Sums { bin: pooler.bin() },
        }
    }

    /// Whether each piece must also run as its reverse complement (`--strand both` on an engine whose
    /// embedding is not strand-symmetric already).
    pub fn needs_reverse(&self, engine: &dyn Engine) -> bool {
        matches!(self, Heads::Embed { options, .. } if options.strand == Strand::Both)
            && !engine.strand_symmetric()
    }

    /// Adds the rows of `piece` from the engine's results for it, which are what [`Heads::compute`] asked
    /// for. Returns the number of rows added.
    pub fn consume(&mut self, piece: &Piece, computed: Computed<'_>) -> Result<u64> {
        let alignment = piece.seq.alignment.as_ref();
        match (self, computed) {
            (Heads::Predict { builder }, Computed::Probs(probs)) => {
                let read = alignment.map(read_fields);
                for i in piece.keep.clone() {
                    let p = probs[i];
                    let p = (!p[0].is_nan()).then_some(p);
                    let pos = (piece.start + i as u64) as i64;
                    builder.push(&piece.seq.name, pos, piece.bases[i], p, read.as_ref())?;
                }
                Ok(piece.keep.len() as u64)
            }
            // Rows are counted by `finish`, which builds them.
            (Heads::Score(scorer), Computed::Probs(probs)) => {
                scorer.visit(piece, probs);
                Ok(0)
            }
            (
                Heads::Embed {
                    builder,
                    options,
                    pooler,
                    current,
                },
                Computed::Sums { segments, sums },
            ) => {
                let name = &piece.seq.name;
                if current.as_ref().is_none_or(|(n, _)| n != name) {
                    if let Some(row) = pooler.flush() {
                        push_pooled(builder, current.as_ref(), &row)?;
                    }
                    *current = Some((name.clone(), alignment.cloned()));
                }
                let before = builder.len();
                let width = pooler.width();
                for (seg, sum) in segments.iter().zip(sums.chunks_exact(width.max(1))) {
                    let n_count = piece.tokens[seg.clone()]
                        .iter()
                        .filter(|&&t| t == alphabet::N)
                        .count() as u64;
                    let start = piece.start + seg.start as u64;
                    if let Some(row) = pooler.add_sum(start, seg.len() as u64, sum, n_count) {
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
            _ => Err(Error::Invalid(
                "internal: the engine computed other results than the task needs".into(),
            )),
        }
    }

    /// Closes the open bin of the sequence that just ended; returns the rows added.
    pub fn end_sequence(&mut self, end: &SequenceSummary) -> Result<u64> {
        match self {
            Heads::Predict { .. } => Ok(0),
            Heads::Score(scorer) => {
                scorer.sequence_end(end);
                Ok(0)
            }
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

    /// Takes the outcomes of a pass apart from the main one, the walk ([`crate::walk`]) or masked sites (variants only;
    /// other heads have no use for them).
    pub fn settle(&mut self, outcomes: Vec<(usize, crate::scoring::AlleleOutcome)>) {
        if let Heads::Score(scorer) = self {
            scorer.settle(outcomes);
        }
    }

    /// After the last piece: the rows that only the whole run decides (variants). Returns their number.
    pub fn finish(&mut self) -> Result<u64> {
        match self {
            Heads::Score(scorer) => scorer.finish(),
            Heads::Predict { .. } | Heads::Embed { .. } => Ok(0),
        }
    }

    /// After [`Heads::finish`]: what the user should hear about the rows (variants: no site on the reference,
    /// or many REF alleles that disagree with it).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Heads::Score(scorer) => scorer.warnings(),
            Heads::Predict { .. } | Heads::Embed { .. } => Vec::new(),
        }
    }

    /// The variant scorer, for a score run.
    pub fn scorer(&self) -> Option<&Scorer> {
        match self {
            Heads::Score(scorer) => Some(scorer),
            Heads::Predict { .. } | Heads::Embed { .. } => None,
        }
    }

    /// The rows built so far as a record batch, when enough have accumulated (or `all`); call until `None`.
    pub fn take_batch(&mut self, all: bool) -> Result<Option<RecordBatch>> {
        let builder: &mut dyn BatchBuilder = match self {
            Heads::Predict { builder, .. } => builder,
            Heads::Embed { builder, .. } => builder,
            Heads::Score(scorer) => return scorer.take_batch(),
        };
        if builder.is_empty()
            || (!all && builder.len() < BATCH_ROWS && builder.approx_bytes() < BATCH_BYTES)
        {
            return Ok(None);
        }
        let batch = builder.finish()?;
        Ok(Some(batch))
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
        reverse: a.strand(),
        mapq: a.mapq,
        flag: Some(a.flag),
    }
}
