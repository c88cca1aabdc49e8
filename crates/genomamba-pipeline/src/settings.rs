//! Validated settings for one run: what to compute, over what, into which file.

use std::path::PathBuf;
use std::sync::Arc;

use crate::scoring::Variants;

/// What a run computes.
#[derive(Debug, Clone, PartialEq)]
// One per run: the size of the score variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Task {
    /// Per-base probabilities of A, C, G, T (the predictions table).
    Predict(PredictOptions),
    /// Pooled or per-base embeddings (the embeddings table).
    Embed(EmbedOptions),
    /// Variant-effect scores of a VCF's SNVs (the variants table).
    Score(ScoreOptions),
}

/// Options of `genomamba predict`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictOptions {
    /// The value columns written (`--columns`; [`genomamba_parquet::schema::PREDICTION_VALUES`] by default);
    /// the key, coordinate, `ref` and alignment columns always are.
    pub values: Vec<genomamba_parquet::Field>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            values: genomamba_parquet::schema::PREDICTION_VALUES.to_vec(),
        }
    }
}

/// Options of `genomamba score`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    /// The VCF, as given (for the metadata).
    pub vcf: PathBuf,
    /// SHA-256 (hex) of the VCF's bytes as stored (for the metadata, and to check the file read again).
    pub vcf_sha256: String,
    /// The file the VCF is read again from, for the rows' text and for `--output-vcf`: the VCF itself, or the
    /// copy of standard input made when it was read.
    pub vcf_reread: PathBuf,
    /// Its records and alleles.
    pub variants: Arc<Variants>,
    /// The reference's records (name, length) when known up front (its index, or a first pass over it); else
    /// learned as records end.
    pub lengths: Vec<(String, u64)>,
    /// How much of the reference is read.
    pub read: ReferenceRead,
    /// `--strand`: both strands apply to masked-site scoring only (a causal model scores the forward strand).
    pub strand: Strand,
    /// The walk that scores a causal model's sites apart from the main pass ([`crate::walk`]): with
    /// `--indel-flank` (indels and multi-base substitutions too; without it they get status not_snv), or when
    /// the reference has no usable index. `None`: the main pass scores the SNVs.
    pub walk: Option<crate::WalkPass>,
    /// SNVs under a bidirectional model: each scored at its masked site, with its flanks ([`crate::masked`]);
    /// `None` for causal models, whose SNVs are read off the main pass or the walk.
    pub masked: Option<crate::MaskedPass>,
    /// `--output-vcf`: the VCF written again with the scores in its INFO column.
    pub output_vcf: Option<crate::AnnotatedVcf>,
}

/// How much of the reference `genomamba score` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceRead {
    /// Every record whole: a reference on standard input or a pipe, which cannot be read twice.
    Everything,
    /// The records holding sites, whole (no usable index: their names come from a first pass over the file).
    Whole,
    /// Through the index, the windows that hold sites (the regions of the open options).
    Windows,
    /// Nothing: no record of the reference holds a scorable site, so no row needs the model.
    Nothing,
}

impl ReferenceRead {
    /// For the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceRead::Everything => "every record whole (standard input or a pipe)",
            ReferenceRead::Whole => "whole records holding sites (no usable .fai)",
            ReferenceRead::Windows => "windows holding sites (.fai)",
            ReferenceRead::Nothing => "nothing (no site within a record of the reference)",
        }
    }
}

/// Options of `genomamba embed`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOptions {
    /// How many positions one output row averages.
    pub pool: Pool,
    /// Which strands are run.
    pub strand: Strand,
    /// The element type of the `embedding` column.
    pub dtype: OutDtype,
}

/// How embedding rows pool positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Bins of this many bases, aligned to multiples of it in the record's coordinates (1 = per base).
    Bases(u64),
    /// One row per window (its kept core, burn-in and flanks excluded).
    Window,
    /// One row per sequence: a whole record, a region, or a read.
    Record,
}

/// Strand policy of `embed`, and of `score` with a bidirectional model ([`crate::MaskedPass`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strand {
    /// The sequence as given.
    Forward,
    /// The mean of the forward pass and the reverse-complement pass, aligned by position.
    Both,
}

impl Strand {
    /// The name written to the metadata.
    pub fn name(self) -> &'static str {
        match self {
            Strand::Forward => "forward",
            Strand::Both => "rc_average",
        }
    }
}

/// The element type of the embedding column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutDtype {
    /// 32-bit floats.
    F32,
    /// 16-bit floats (Parquet Float16), half the size.
    F16,
}

/// Everything a run needs apart from the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What to compute.
    pub task: Task,
    /// Input files, `-` for standard input.
    pub inputs: Vec<PathBuf>,
    /// How the inputs are opened (format, regions, reference, read filters).
    pub open: genomamba_seq::OpenOptions,
    /// The Parquet file to write.
    pub output: PathBuf,
    /// Overwrite an existing output.
    pub force: bool,
    /// Window length W in bases; 0 = each sequence is one window.
    pub window: u64,
    /// Burn-in (causal) or flank (bidirectional) context in bases.
    pub overlap: u64,
    /// Tokens per engine call (the compute chunk).
    pub chunk: usize,
    /// Most whole-window pieces per batched engine call (engines that prefer batches); 0 = automatic.
    pub batch: usize,
    /// No progress and no summary on stderr.
    pub quiet: bool,
    /// The command line recorded in the metadata (without options that do not change the output).
    pub command_line: Vec<String>,
    /// The git commit the binary was built from (`unknown` when not built from a checkout), recorded beside the
    /// version.
    pub commit: String,
    /// Upper bound of one Parquet row group, uncompressed bytes.
    pub row_group_bytes: usize,
}
