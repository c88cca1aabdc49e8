//! Command-line arguments (clap derive only): doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Mamba DNA language models over genomes and reads, on GPU or CPU, written to Parquet.
///
/// Coordinates in every output are 0-based half-open (BED style); `-r chr:start-end` on the command line is
/// 1-based inclusive (samtools style).
#[derive(Debug, Parser)]
#[command(name = "genomamba", version, about, max_term_width = 110)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per-base probabilities of A, C, G, T: one row per base (chrom, start, end, ref, p_a..p_t, entropy, logp_ref).
    Predict(PredictArgs),
    /// Embeddings: the model's final hidden state, mean-pooled per bin, window, record or BED interval.
    Embed(EmbedArgs),
    /// Describe a model: format, sizes, parameter count, sha256 of the weights, vocabulary.
    Inspect(InspectArgs),
    /// Variant-effect scores of a VCF's SNVs: ln P(alt) - ln P(ref) at each site, given the bases before it
    /// (indels too, as haplotypes, with --indel-flank), or with a Caduceus model at the site masked.
    Score(ScoreArgs),
    /// Split a genome into balanced shards cut at window boundaries, as BED, for scattering over a cluster.
    Regions(RegionsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    ///
    /// bash: `genomamba completions bash > ~/.local/share/bash-completion/completions/genomamba`;
    /// zsh: `genomamba completions zsh > ~/.zfunc/_genomamba` (with `fpath+=~/.zfunc` before `compinit`);
    /// fish: `genomamba completions fish > ~/.config/fish/completions/genomamba.fish`.
    Completions(CompletionsArgs),
    /// What this build is and what it finds here: commit, CPU SIMD level, NVIDIA driver, NVRTC, cuBLAS, GPUs,
    /// where `--device auto` would run, the embedded model. For bug reports; `--version` prints one line.
    Version(VersionArgs),
}

/// `genomamba version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `genomamba completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `genomamba score`. The shared engine options' help says what they mean for score, causal and Caduceus models.
#[derive(Debug, Args)]
#[command(
    mut_arg("model", |a| a.help(
        "Model directory (config.json + weights), or owner/name[@revision] of one already in the Hugging Face \
         cache. Default: the model embedded in the binary. A causal Mamba model scores a site given the bases \
         before it; a bidirectional Caduceus model scores it masked ([MASK]) in a window of its own, the site and \
         --overlap bases on each side (default 16384; --window and --indel-flank do not apply)"
    ).long_help(None::<&str>)),
    mut_arg("window", |a| a.help(
        "Window length in bases: each window restarts the model after its burn-in; 0 = each record is one \
         window [default: 1048576]"
    ).long_help(None::<&str>)),
    mut_arg("overlap", |a| a.help(
        "Burn-in in bases before each window: context the model reads but whose outputs are dropped \
         [default: 8192]. Caduceus: the bases on each side of a masked site [default: 16384]"
    ).long_help(None::<&str>)),
)]
pub struct ScoreArgs {
    /// The variants: VCF (plain, gzip or bgzip) or BCF; `-` for standard input. One row per record and ALT allele, in
    /// the file's order; SNVs are scored (and indels with --indel-flank), other alleles get a status saying why
    /// not (not_snv, ref_mismatch, unknown_contig, ...).
    #[arg(long, value_name = "VCF")]
    pub vcf: PathBuf,

    /// Also score indels and multi-base substitutions (REF and ALT of A, C, G, T): ln P(ALT haplotype) - ln P(REF
    /// haplotype), each haplotype the allele then the reference after REF, both max(len REF, len ALT) + BASES
    /// bases long, given the same bases before it as an SNV there; logp_ref and logp_alt are the haplotypes'
    /// sums. The model runs each window's prefix once and each haplotype from its saved state. Needs the
    /// reference as a file.
    #[arg(long, value_name = "BASES")]
    pub indel_flank: Option<u64>,

    /// forward, or both (Caduceus models): each SNV also scored on the reverse strand, in its window's reverse
    /// complement with the site masked there, and logp_ref, logp_alt and score the means of the two strands' (as
    /// GPN's variant scoring does). A Caduceus-PS model gives the same on both strands, to rounding.
    #[arg(long, value_enum, default_value_t = StrandArg::Forward)]
    pub strand: StrandArg,

    /// The reference genome the VCF was called against: FASTA, plain, gzip or bgzip. With its .fai (and .gzi
    /// for bgzip) only the windows holding sites are run; without, each record holding a site is run whole.
    #[arg(long, value_name = "FASTA")]
    pub reference: PathBuf,

    /// The Parquet file to write (written beside it under a temporary name, renamed when complete).
    #[arg(short, long, value_name = "OUT.parquet")]
    pub output: PathBuf,

    /// Also write the VCF again, every record in its order, with each ALT allele's values in INFO:
    /// GENOMAMBA_SCORE, GENOMAMBA_LOGP_REF, GENOMAMBA_LOGP_ALT, GENOMAMBA_STATUS (Number=A). .vcf, .vcf.gz
    /// (bgzip, with its tabix index when the records are sorted) or .bcf (with its CSI index); `-` for standard
    /// output (plain text).
    #[arg(long, value_name = "OUT.vcf.gz")]
    pub output_vcf: Option<PathBuf>,

    /// Model, engine and output options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `genomamba regions`.
#[derive(Debug, Args)]
pub struct RegionsArgs {
    /// The genome FASTA (its .fai is used when present, else the file is read once).
    #[arg(value_name = "FASTA")]
    pub genome: PathBuf,

    /// At most this many bases per shard; longer records are split into equal numbers of whole windows.
    #[arg(long, default_value_t = 16 * 1_048_576, value_name = "BASES")]
    pub max_bases: u64,

    /// Window length of the runs the shards feed (shards start on multiples of it); 0 = whole records.
    /// [default: the model's, as the runs use: 1048576, or 98304 for Caduceus]
    #[arg(long, value_name = "BASES")]
    pub window: Option<u64>,

    /// The model the shards will run, whose default window applies when --window is not given (only its
    /// config.json is read). Default: the embedded model.
    #[arg(long, value_name = "DIR", env = "GENOMAMBA_MODEL")]
    pub model: Option<PathBuf>,

    /// `embed --pool` of the runs: refused unless its bins fit the shards (N divides the window; `record` only
    /// when no record is split), so that the shards' rows gather into one run's table.
    #[arg(long, value_name = "N|window|record")]
    pub pool: Option<String>,

    /// Write the BED here instead of standard output (`-`: standard output), whole or not at all.
    #[arg(short, long, value_name = "OUT.bed")]
    pub output: Option<PathBuf>,

    /// Overwrite the output if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Options of the commands that read sequences (`predict`, `embed`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input files: FASTA (plain, gzip, bgzip), FASTQ (plain, gzip), BAM, CRAM; `-` reads standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// The Parquet file to write (written beside it under a temporary name, renamed when complete).
    #[arg(short, long, value_name = "OUT.parquet")]
    pub output: PathBuf,

    /// Region to read, `chr`, `chr:start-end` or `chr:start-` (1-based inclusive); repeatable. Needs an index
    /// (.fai, and .gzi for bgzip; .bai/.csi for BAM; .crai for CRAM). A record whose name has ':' is read as
    /// samtools reads it: `{name}` or `{name}:start-end` when the plain text would be ambiguous.
    #[arg(short, long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// BED file of regions to read (0-based half-open). A region's windows start at its first base, and up to
    /// `--overlap` bases before it (after it too, for bidirectional runs) are read as context, so shards cut on
    /// window boundaries (`genomamba regions`) give exactly the rows of one run over the whole record.
    #[arg(long = "regions", value_name = "BED")]
    pub regions_bed: Option<PathBuf>,

    /// Input format, when it cannot be told from the file name or its first bytes.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,

    /// Reference FASTA for CRAM inputs.
    #[arg(long, value_name = "FASTA")]
    pub reference: Option<PathBuf>,

    /// BAM/CRAM: skip alignments with a mapping quality below this.
    #[arg(long, default_value_t = 0, value_name = "Q")]
    pub min_mapq: u8,

    /// BAM/CRAM: skip records with any of these flag bits [default: 0xF00 = secondary, QC-fail, duplicate,
    /// supplementary]. Decimal or 0x hex.
    #[arg(long, value_name = "FLAGS", value_parser = parse_flags)]
    pub exclude_flags: Option<u16>,

    /// BAM/CRAM: keep only records with all of these flag bits. Decimal or 0x hex.
    #[arg(long, value_name = "FLAGS", value_parser = parse_flags, default_value = "0")]
    pub include_flags: u16,

    /// Model, engine and output options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Options of every command that runs a model: which model, where, in what windows, and the output file's fate.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Model directory (config.json + weights), or `owner/name[@revision]` of a model already in the Hugging Face
    /// cache (HF_HUB_CACHE, HF_HOME; nothing is downloaded). Default: the model embedded in the binary.
    #[arg(long, value_name = "DIR", env = "GENOMAMBA_MODEL")]
    pub model: Option<PathBuf>,

    /// Window length in bases: each window restarts the model after its burn-in; 0 = each sequence is one window.
    /// [default: 1048576; 98304 for Caduceus, whose windows plus both flanks then fill the 131,072-base context
    /// it was trained on]
    #[arg(long, value_name = "BASES")]
    pub window: Option<u64>,

    /// Context in bases before each window (causal models: burn-in) or on both sides (bidirectional models and
    /// `--strand both`), whose outputs are dropped. [default: 8192; 16384 each side for Caduceus]
    #[arg(long, value_name = "BASES")]
    pub overlap: Option<u64>,

    /// Bases per engine step; the state is carried across steps, so this changes speed and memory, not results.
    #[arg(long, default_value_t = 65_536, value_name = "BASES")]
    pub chunk: usize,

    /// Most whole-window pieces (reads, records or windows within one chunk) per engine call, run side by side
    /// (on a GPU in one launch; on the CPU a thread each, with --threads 2 or more); 0 = as many as fit 1 Mi
    /// bases (at most 16,384); 1 = one at a time, every thread on each.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub batch: usize,

    /// Where to run the model: auto (a GPU when one is usable, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: String,

    /// Compute precision: f32 everywhere, or (CUDA engine only) bf16 activations and projection weights on
    /// tensor cores, with f32 state, residual stream and accumulation.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,

    /// CPU threads to use [default: all cores].
    #[arg(short = 't', long, value_name = "N")]
    pub threads: Option<usize>,

    /// Overwrite the output if it exists.
    #[arg(long)]
    pub force: bool,

    /// No progress and no summary on stderr (warnings and errors are still written).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `genomamba predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Shared options.
    #[command(flatten)]
    pub run: RunArgs,

    /// Value columns to write, comma-separated (in the table's order whatever the order given): p_a, p_c, p_g,
    /// p_t (`probs`: the four), entropy, logp_ref. The key, start, end, ref and alignment columns are always
    /// written. `--columns logp_ref` makes a per-base table about 5 times smaller. [default: all]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "COLUMN,...")]
    pub columns: Vec<ValueColumn>,
}

/// A value column of the predictions table, or `probs` for the four probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueColumn {
    /// P(A).
    #[value(name = "p_a")]
    PA,
    /// P(C).
    #[value(name = "p_c")]
    PC,
    /// P(G).
    #[value(name = "p_g")]
    PG,
    /// P(T).
    #[value(name = "p_t")]
    PT,
    /// p_a, p_c, p_g and p_t.
    Probs,
    /// Entropy of the four, in nats.
    Entropy,
    /// ln P(the base read).
    #[value(name = "logp_ref")]
    LogpRef,
}

/// `genomamba embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Shared options.
    #[command(flatten)]
    pub run: RunArgs,

    /// Bases per output row (bins aligned to multiples of N in record coordinates; 1 = per base), `window` (one
    /// row per window) or `record` (one row per record, read or BED interval). [default: 1000 for genomes,
    /// record for reads and for --regions]
    #[arg(long, value_name = "N|window|record")]
    pub pool: Option<String>,

    /// forward, or both: the mean of the forward pass and the reverse-complement pass, aligned by position.
    #[arg(long, value_enum, default_value_t = StrandArg::Forward)]
    pub strand: StrandArg,

    /// Element type of the embedding column.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    pub dtype: DtypeArg,

    /// Caduceus-PS only: write the model's raw 2 x d_model final state [h1 | h2] instead of the strand-symmetric
    /// d_model embedding (h1 + reverse_channels(h2)) / 2.
    #[arg(long)]
    pub raw: bool,

    /// Mamba models: embed the residual stream after block K (1 to n_layer; transformers' hidden_states[K-1]
    /// with output_hidden_states=True, no final norm) instead of the final hidden state after norm_f. Intermediate
    /// layers often serve downstream tasks better; only blocks 1..K run.
    #[arg(long, value_name = "K")]
    pub layer: Option<usize>,
}

/// `genomamba inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Model directory, or `owner/name[@revision]` of a model in the Hugging Face cache. Default: the model embedded
    /// in the binary.
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// From the file name, else from the first bytes.
    Auto,
    /// FASTA.
    Fasta,
    /// FASTQ.
    Fastq,
    /// BAM.
    Bam,
    /// CRAM.
    Cram,
}

/// `--strand` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrandArg {
    /// The sequence as given.
    Forward,
    /// Average with the reverse-complement pass.
    Both,
}

/// `--precision` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit floats throughout.
    F32,
    /// bfloat16 activations and projections (CUDA only).
    Bf16,
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
}

fn parse_flags(s: &str) -> Result<u16, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("not a SAM flag value (0..65535, decimal or 0x hex): {s}"))
}
