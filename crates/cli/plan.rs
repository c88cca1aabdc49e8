//! From parsed arguments to a validated plan: pipeline settings, model choice, device and thread count.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use genomamba_model::caduceus::Hidden;
use genomamba_model::{AnyModel, Architecture};
use genomamba_parquet::Field;
use genomamba_pipeline::{
    AnnotatedVcf, EmbedOptions, InputKind, MaskedPass, OutDtype, Pool, PredictOptions,
    ReferenceRead, ScoreOptions, Settings, SiteReads, Strand, Task, Variants, WalkPass,
};
use genomamba_seq::fasta::indexed::{RegionIndex, region_index};
use genomamba_seq::vcf::annotate::VcfCompression;
use genomamba_seq::{Format, OpenOptions, ReadFilter, Region};

use crate::UsageError;
use crate::args::{
    DtypeArg, EmbedArgs, EngineArgs, Format as FormatArg, PrecisionArg, PredictArgs, RunArgs,
    ScoreArgs, StrandArg, ValueColumn,
};

/// Flags that never change the output, left out of the command line recorded in the metadata so the same
/// command gives the same file.
const UNRECORDED_FLAGS: &[&str] = &["--quiet", "-q", "--force"];
/// Options with a value that never change the output.
const UNRECORDED_OPTIONS: &[&str] = &["--threads", "-t"];

/// Default window and overlap of causal models (DESIGN §5).
const WINDOW: u64 = 1_048_576;
const OVERLAP: u64 = 8192;
/// Default window and flank (each side) of Caduceus: 98,304 + 2 x 16,384 = 131,072 bases, the length the
/// published Caduceus models were trained on, so no run sees more context than training did, and every kept
/// base has at least 16 kb of context on both sides (except near sequence ends). Kept bases are 75% of the
/// bases run.
const CADUCEUS_WINDOW: u64 = 98_304;
const CADUCEUS_OVERLAP: u64 = 16_384;

/// The window a model of this architecture runs when `--window` is not given, in bases.
pub fn default_window(architecture: Architecture) -> u64 {
    match architecture {
        Architecture::Mamba => WINDOW,
        Architecture::Caduceus => CADUCEUS_WINDOW,
    }
}

/// The context a model of this architecture reads when `--overlap` is not given, in bases: burn-in before each
/// window (causal), or flank on each side (Caduceus).
pub fn default_overlap(architecture: Architecture) -> u64 {
    match architecture {
        Architecture::Mamba => OVERLAP,
        Architecture::Caduceus => CADUCEUS_OVERLAP,
    }
}

/// Everything a model run needs.
pub struct Plan {
    /// Pipeline settings.
    pub settings: Settings,
    /// What the inputs hold.
    pub kind: InputKind,
    /// `--model`, or None for the embedded model.
    pub model: Option<PathBuf>,
    /// `--device`.
    pub device: String,
    /// `--precision`.
    pub precision: genomamba_cuda::Dtype,
    /// Worker threads.
    pub threads: usize,
    /// `--window` and `--overlap` as given (defaults depend on the model).
    window: Option<u64>,
    overlap: Option<u64>,
    /// `embed --raw`.
    raw: bool,
    /// `embed --layer`: the block whose residual stream is embedded (1-based).
    pub layer: Option<usize>,
    /// `score --vcf -` (or a pipe): the copy that the VCF is read again from (removed when the plan is dropped).
    spool: Option<tempfile::TempPath>,
}

impl Plan {
    /// The plan of `genomamba predict`.
    pub fn predict(args: PredictArgs) -> anyhow::Result<Plan> {
        let options = match args.columns.as_slice() {
            [] => PredictOptions::default(),
            columns => PredictOptions {
                values: value_fields(columns),
            },
        };
        Plan::new(args.run, false, move |_, _| Ok(Task::Predict(options)))
    }

    /// The plan of `genomamba embed`.
    pub fn embed(args: EmbedArgs) -> anyhow::Result<Plan> {
        let EmbedArgs {
            run,
            pool,
            strand,
            dtype,
            raw,
            layer,
        } = args;
        let mut plan = Plan::new(run, raw, move |kind, has_regions| {
            let pool = match pool.as_deref() {
                None if kind != InputKind::Genome || has_regions => Pool::Record,
                None => Pool::Bases(1000),
                Some(text) => parse_pool(text)?,
            };
            let strand = strand_of(strand);
            let dtype = match dtype {
                DtypeArg::F32 => OutDtype::F32,
                DtypeArg::F16 => OutDtype::F16,
            };
            Ok(Task::Embed(EmbedOptions {
                pool,
                strand,
                dtype,
            }))
        })?;
        plan.layer = layer;
        Ok(plan)
    }

    /// The plan of `genomamba score`: the VCF read and classified, and, when the reference has a .fai, the
    /// windows holding its sites as regions.
    pub fn score(args: ScoreArgs) -> anyhow::Result<Plan> {
        let ScoreArgs {
            vcf,
            indel_flank,
            strand,
            reference,
            output,
            output_vcf,
            engine,
        } = args;
        if vcf.as_os_str() == "-" && reference.as_os_str() == "-" {
            return Err(UsageError(
                "--vcf and --reference cannot both be standard input (-)".into(),
            )
            .into());
        }
        // Standard input and pipes (`<(zcat ref.fa.gz)`) can be read only once.
        let reference_once = read_once(&reference);
        if indel_flank.is_some() && reference_once {
            return Err(UsageError(
                "--indel-flank needs the lengths of the reference's records before it reads their bases (a \
                 haplotype stops at its record's end): give it as a file, not standard input (-) or a pipe"
                    .into(),
            )
            .into());
        }
        let model = [("the --model", engine.model.as_deref())];
        check_paths(&[reference.clone(), vcf.clone()], &model, &output)?;
        // The VCF is read again for the rows' text (and for --output-vcf): standard input or a pipe is copied
        // first.
        let spool = if read_once(&vcf) {
            Some(spool(&vcf)?)
        } else {
            None
        };
        let vcf_reread = spool.as_ref().map_or(vcf.clone(), |s| s.to_path_buf());
        let mut vcf_reader = match &spool {
            Some(copy) => genomamba_seq::vcf::VcfReader::new(
                std::io::BufReader::with_capacity(
                    1 << 16,
                    std::fs::File::open(copy).with_context(|| {
                        format!("{}: reading the copy made of it", vcf.display())
                    })?,
                ),
                &vcf.display().to_string(),
            )?,
            None => genomamba_seq::vcf::open(&vcf)?,
        };
        let variants = Arc::new(Variants::read(&mut vcf_reader, indel_flank.is_some())?);
        let vcf_sha256 = vcf_reader.sha256()?;
        let output_vcf = output_vcf
            .map(|path| annotated_vcf(path, &vcf, &reference, &model, &output, engine.force))
            .transpose()?;
        let window = engine.window.unwrap_or(default_window(Architecture::Mamba));
        // With a usable index only the windows holding sites are read, after checking the index against the
        // FASTA for every record holding one (a stale index would put sites out of bounds or read wrong bases).
        // Without one, a first pass finds the records and their lengths, and only those holding sites are read,
        // whole; the walk then runs only their windows that hold sites (unless a window is a whole record: the
        // main pass streams those). With --indel-flank the walk scores every site (SNVs too) in either case.
        let mut contigs = variants.contigs();
        contigs.extend(variants.haplotype_contigs());
        contigs.sort_unstable();
        contigs.dedup();
        let index = if reference_once {
            RegionIndex::Missing
        } else {
            region_index(&reference, &contigs).context("reading the reference's index")?
        };
        let mut open = OpenOptions::default().with_format(Format::Fasta);
        let mut walk = None;
        let (lengths, read) = match index {
            RegionIndex::Ready(lengths) => {
                walk = indel_flank.map(|flank| WalkPass {
                    indel_flank: Some(flank),
                    reads: SiteReads::Regions(variants.walk_regions(&lengths, window, flank)),
                });
                let regions = variants.regions(&lengths, window);
                let read = if regions.is_empty() {
                    ReferenceRead::Nothing
                } else {
                    ReferenceRead::Windows
                };
                open = open.with_regions(regions);
                (lengths, read)
            }
            _ if reference_once => (Vec::new(), ReferenceRead::Everything),
            RegionIndex::Missing | RegionIndex::Unusable(_) => {
                if let RegionIndex::Unusable(why) = &index
                    && !engine.quiet
                {
                    eprintln!("genomamba: {why}; reading the records that hold sites whole");
                }
                let lengths = genomamba_seq::fasta::scan_lengths(&reference)?;
                let holding = |of: &[&str]| -> Vec<String> {
                    lengths
                        .iter()
                        .filter(|(name, _)| of.binary_search(&name.as_str()).is_ok())
                        .map(|(name, _)| name.clone())
                        .collect()
                };
                if indel_flank.is_some() || window != 0 {
                    walk = Some(WalkPass {
                        indel_flank,
                        reads: SiteReads::Records(holding(&contigs)),
                    });
                }
                let names = holding(&variants.contigs());
                let read = if names.is_empty() {
                    ReferenceRead::Nothing
                } else {
                    ReferenceRead::Whole
                };
                open = open.with_names(names);
                (lengths, read)
            }
        };
        let task = Task::Score(ScoreOptions {
            vcf,
            vcf_sha256,
            vcf_reread,
            variants,
            lengths,
            read,
            walk,
            masked: None,
            strand: strand_of(strand),
            output_vcf,
        });
        let mut plan = Plan::assemble(
            vec![reference],
            output,
            open,
            engine,
            InputKind::Genome,
            task,
            false,
        )?;
        plan.spool = spool;
        Ok(plan)
    }

    fn new(
        run: RunArgs,
        raw: bool,
        task: impl FnOnce(InputKind, bool) -> Result<Task, UsageError>,
    ) -> anyhow::Result<Plan> {
        let format = match run.format {
            FormatArg::Auto => None,
            FormatArg::Fasta => Some(Format::Fasta),
            FormatArg::Fastq => Some(Format::Fastq),
            FormatArg::Bam => Some(Format::Bam),
            FormatArg::Cram => Some(Format::Cram),
        };
        check_paths(
            &run.inputs,
            &[
                ("the --regions BED", run.regions_bed.as_deref()),
                ("the --reference", run.reference.as_deref()),
                ("the --model", run.engine.model.as_deref()),
            ],
            &run.output,
        )?;
        let kind = input_kind(&run.inputs, format)?;
        if kind != InputKind::AlignedReads && !run.engine.quiet {
            let unused: Vec<&str> = [
                ("--reference (for CRAM)", run.reference.is_some()),
                ("--min-mapq", run.min_mapq != 0),
                ("--include-flags", run.include_flags != 0),
                ("--exclude-flags", run.exclude_flags.is_some()),
            ]
            .into_iter()
            .filter_map(|(option, given)| given.then_some(option))
            .collect();
            if !unused.is_empty() {
                eprintln!(
                    "genomamba: warning: {} {} only to BAM and CRAM input; ignored for {}",
                    unused.join(", "),
                    if unused.len() == 1 {
                        "applies"
                    } else {
                        "apply"
                    },
                    match kind {
                        InputKind::Reads => "FASTQ",
                        _ => "FASTA",
                    }
                );
            }
        }
        let mut regions = Vec::new();
        // A region's text may itself be a record's name (`HLA-A*01:01:01:01`): read as samtools reads it, against
        // the inputs' record names, when any text has a ':'.
        let names = if run.regions.iter().any(|t| t.contains(':')) {
            let mut names = std::collections::HashSet::new();
            for input in &run.inputs {
                // An input that cannot tell is reported when it is opened.
                if let Ok(Some(of_input)) = genomamba_seq::open::record_names(input) {
                    names.extend(of_input);
                }
            }
            names
        } else {
            Default::default()
        };
        for text in &run.regions {
            regions.push(
                Region::parse_with_names(text, |n| names.contains(n))
                    .map_err(|e| UsageError(format!("-r {text}: {e}")))?,
            );
        }
        if let Some(bed) = &run.regions_bed {
            let intervals = genomamba_seq::region::read_bed_path(bed)?;
            // An empty BED (say, an intersection that found nothing) must not turn into a run over every record.
            if intervals.is_empty() {
                anyhow::bail!(
                    "{}: no intervals (only header, track, comment or blank lines): nothing to run; without \
                     --regions every record is run whole",
                    bed.display()
                );
            }
            regions.extend(intervals);
        }
        if kind == InputKind::Reads && !regions.is_empty() {
            return Err(UsageError(
                "-r/--regions select parts of a genome (FASTA) or of alignments (BAM, CRAM); FASTQ reads have no \
                 coordinates"
                    .into(),
            )
            .into());
        }
        let task = task(kind, !regions.is_empty())?;
        let filter = ReadFilter {
            min_mapq: run.min_mapq,
            include_flags: run.include_flags,
            exclude_flags: run
                .exclude_flags
                .unwrap_or(ReadFilter::default().exclude_flags),
        };
        let open = OpenOptions {
            format,
            regions,
            names: Vec::new(),
            reference: run.reference.clone(),
            filter,
            threads: 1,
            // Set by the pipeline from the window geometry.
            context: (0, 0),
        };
        Plan::assemble(run.inputs, run.output, open, run.engine, kind, task, raw)
    }

    /// The plan from what every model-running command shares.
    fn assemble(
        inputs: Vec<PathBuf>,
        output: PathBuf,
        mut open: OpenOptions,
        engine: EngineArgs,
        kind: InputKind,
        task: Task,
        raw: bool,
    ) -> anyhow::Result<Plan> {
        if engine.chunk == 0 {
            return Err(UsageError("--chunk must be at least 1".into()).into());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match engine.threads {
            Some(0) => return Err(UsageError("--threads must be at least 1".into()).into()),
            // More threads than cores only contend (`--threads 1000` took 100 times longer on two cores).
            Some(n) if n > cores => {
                if !engine.quiet {
                    eprintln!(
                        "genomamba: --threads {n}: {cores} cores are available to this process; using {cores}"
                    );
                }
                cores
            }
            Some(n) => n,
            None => cores,
        };
        open.threads = threads.min(4);
        let settings = Settings {
            task,
            inputs,
            open,
            output,
            force: engine.force,
            window: engine.window.unwrap_or(default_window(Architecture::Mamba)),
            overlap: engine
                .overlap
                .unwrap_or(default_overlap(Architecture::Mamba)),
            chunk: engine.chunk,
            batch: engine.batch,
            quiet: engine.quiet,
            command_line: recorded_command_line(),
            commit: crate::version::COMMIT.to_owned(),
            row_group_bytes: 128 << 20,
        };
        Ok(Plan {
            settings,
            kind,
            model: engine.model,
            device: engine.device,
            precision: match engine.precision {
                PrecisionArg::F32 => genomamba_cuda::Dtype::F32,
                PrecisionArg::Bf16 => genomamba_cuda::Dtype::Bf16,
            },
            threads,
            window: engine.window,
            overlap: engine.overlap,
            raw,
            layer: None,
            spool: None,
        })
    }

    /// The files the run writes, for messages: `-o`, and with `score --output-vcf` the VCF too.
    pub fn outputs(&self) -> String {
        let table = self.settings.output.display();
        match &self.settings.task {
            Task::Score(ScoreOptions {
                output_vcf: Some(vcf),
                ..
            }) => match vcf.path.to_string_lossy() {
                name if name == "-" => format!("{table} and standard output"),
                name => format!("{table} and {name}"),
            },
            _ => table.to_string(),
        }
    }

    /// Cuts a Mamba model after block `--layer` ([`genomamba_model::Model::truncate`]), after
    /// [`Plan::fit_model`] has checked that it can be.
    pub fn cut_model(&self, model: &mut AnyModel) -> anyhow::Result<()> {
        if let (Some(k), AnyModel::Mamba(m)) = (self.layer, model) {
            Arc::make_mut(m).truncate(k)?;
        }
        Ok(())
    }

    /// Loads `--model` (any supported architecture), or the embedded default model.
    pub fn load_model(&self) -> anyhow::Result<AnyModel> {
        match &self.model {
            Some(dir) => load_model_dir(dir),
            None => Ok(AnyModel::Mamba(Arc::new(
                crate::embedded::load().context("loading the embedded model")?,
            ))),
        }
    }

    /// Settles what depends on the model: the default window and flanks of Caduceus, and `--raw` (Caduceus-PS
    /// only). Returns the hidden state the engine should give.
    pub fn fit_model(&mut self, model: &AnyModel) -> Result<Hidden, UsageError> {
        let ps = matches!(model, AnyModel::Caduceus(m) if m.config.rcps);
        if self.raw && !ps {
            return Err(UsageError(
                "--raw needs a Caduceus-PS model (rcps: true); this model has one d_model-wide state".into(),
            ));
        }
        if self.raw && matches!(&self.settings.task, Task::Embed(e) if e.strand == Strand::Both) {
            return Err(UsageError(
                "--raw writes the model's own 2 x d_model state of the given strand; --strand both does not apply \
                 (a Caduceus-PS embedding without --raw is already strand-symmetric)"
                    .into(),
            ));
        }
        if let (Task::Score(score), AnyModel::Caduceus(_)) = (&mut self.settings.task, model) {
            let flank = self
                .overlap
                .unwrap_or(default_overlap(Architecture::Caduceus));
            score.masked = Some(masked_pass(score, self.window, flank)?);
            // The masked pass scores every SNV; no walk.
            score.walk = None;
            self.settings.window = flank.saturating_mul(2).saturating_add(1);
            self.settings.overlap = flank;
            return Ok(Hidden::Symmetric);
        }
        if matches!(&self.settings.task, Task::Score(s) if s.strand == Strand::Both) {
            return Err(UsageError(
                "--strand both applies to score with a bidirectional (Caduceus) model, each SNV masked on both \
                 strands; a causal model scores the forward strand, given the bases before each site"
                    .into(),
            ));
        }
        match (self.layer, model) {
            (Some(_), AnyModel::Caduceus(_)) => {
                return Err(UsageError(
                    "--layer applies to Mamba models; a Caduceus model's blocks are bidirectional pairs whose \
                     intermediate states genomamba does not give"
                        .into(),
                ));
            }
            (Some(k), AnyModel::Mamba(m)) if k == 0 || k > m.layers.len() => {
                return Err(UsageError(format!(
                    "--layer {k}: the model has layers 1 to {}",
                    m.layers.len()
                )));
            }
            _ => {}
        }
        let architecture = model.architecture();
        self.settings.window = self.window.unwrap_or(default_window(architecture));
        self.settings.overlap = self.overlap.unwrap_or(default_overlap(architecture));
        Ok(if self.raw {
            Hidden::Raw
        } else {
            Hidden::Symmetric
        })
    }
}

/// The predictions table's value columns that `--columns` names (the builder writes them in the table's order,
/// each once).
fn value_fields(columns: &[ValueColumn]) -> Vec<Field> {
    columns
        .iter()
        .flat_map(|c| match c {
            ValueColumn::PA => &[Field::PA][..],
            ValueColumn::PC => &[Field::PC],
            ValueColumn::PG => &[Field::PG],
            ValueColumn::PT => &[Field::PT],
            ValueColumn::Probs => &[Field::PA, Field::PC, Field::PG, Field::PT],
            ValueColumn::Entropy => &[Field::Entropy],
            ValueColumn::LogpRef => &[Field::LogpRef],
        })
        .copied()
        .collect()
}

/// `--pool`: a number of bases (1 or more), `window` or `record`.
pub fn parse_pool(text: &str) -> Result<Pool, UsageError> {
    match text {
        "window" => Ok(Pool::Window),
        "record" => Ok(Pool::Record),
        n => match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Pool::Bases(n)),
            _ => Err(UsageError(format!(
                "--pool takes a number of bases (1 or more), `window` or `record`, not `{n}`"
            ))),
        },
    }
}

/// The pipeline's strand policy for `--strand`.
fn strand_of(arg: StrandArg) -> Strand {
    match arg {
        StrandArg::Forward => Strand::Forward,
        StrandArg::Both => Strand::Both,
    }
}

/// How `score` runs a bidirectional model: each SNV at its masked site, with `flank` bases (`--overlap`) on each
/// side. Refuses what does not apply: `--indel-flank`, `--window` (a site is a window of its own) and a reference on
/// standard input (its records' lengths are needed up front).
fn masked_pass(
    score: &ScoreOptions,
    window: Option<u64>,
    flank: u64,
) -> Result<MaskedPass, UsageError> {
    let refuse = |why: &str| Err(UsageError(why.into()));
    if score.walk.as_ref().is_some_and(|w| w.indel_flank.is_some()) {
        return refuse(
            "--indel-flank needs a causal model (HF Mamba or mamba-ssm); a bidirectional (Caduceus) model scores \
             SNVs, each at its masked site",
        );
    }
    if window.is_some() {
        return refuse(
            "--window does not apply to score with a bidirectional (Caduceus) model: each SNV is run in a window of \
             its own, the site masked and --overlap bases on each side",
        );
    }
    let reads = match score.read {
        ReferenceRead::Everything => {
            return refuse(
                "score with a bidirectional (Caduceus) model needs the reference as a file (its records' lengths \
                 first, then the bases around each site), not standard input (-) or a pipe",
            );
        }
        ReferenceRead::Windows => {
            SiteReads::Regions(score.variants.masked_regions(&score.lengths, flank))
        }
        ReferenceRead::Whole | ReferenceRead::Nothing => {
            let contigs = score.variants.contigs();
            SiteReads::Records(
                score
                    .lengths
                    .iter()
                    .filter(|(name, _)| contigs.binary_search(&name.as_str()).is_ok())
                    .map(|(name, _)| name.clone())
                    .collect(),
            )
        }
    };
    Ok(MaskedPass {
        flank,
        reads,
        strand: score.strand,
    })
}

/// Loads the model `--model` names: a directory, or `owner/name[@revision]` already in the Hugging Face cache.
pub fn load_model_dir(arg: &Path) -> anyhow::Result<AnyModel> {
    let dir = genomamba_model::hub::locate(arg)?;
    let from = if dir == arg {
        String::new()
    } else {
        format!(" ({} in the Hugging Face cache)", arg.display())
    };
    AnyModel::from_dir(&dir)
        .with_context(|| format!("loading the model in {}{from}", dir.display()))
}

/// What the inputs hold, from `--format` or what each input's first bytes (else its name) say, as the reader
/// will find it; mixing genomes and reads is refused.
fn input_kind(inputs: &[PathBuf], format: Option<Format>) -> anyhow::Result<InputKind> {
    let mut formats = Vec::with_capacity(inputs.len());
    for path in inputs {
        formats.push(match format {
            Some(f) => Some(f),
            None => genomamba_seq::open::detect_format(path)?,
        });
    }
    Ok(kind_of(&formats)?)
}

/// The table kind of inputs of these formats (`None`: not known before reading, taken as a genome).
fn kind_of(formats: &[Option<Format>]) -> Result<InputKind, UsageError> {
    let mut kind = None;
    for format in formats {
        let this = match format {
            Some(Format::Fasta) | None => InputKind::Genome,
            Some(Format::Fastq) => InputKind::Reads,
            Some(Format::Bam | Format::Cram) => InputKind::AlignedReads,
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k == this => {}
            Some(_) => {
                return Err(UsageError(
                    "inputs mix genomes, unaligned reads and alignments: run them separately (the tables differ)"
                        .into(),
                ));
            }
        }
    }
    Ok(kind.unwrap_or(InputKind::Genome))
}

/// This process's command line without the options that do not change the output.
fn recorded_command_line() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    out.push("genomamba".to_string());
    while let Some(arg) = args.next() {
        if UNRECORDED_FLAGS.contains(&arg.as_str()) {
            continue;
        }
        if UNRECORDED_OPTIONS.contains(&arg.as_str()) {
            args.next();
            continue;
        }
        if UNRECORDED_OPTIONS
            .iter()
            .any(|o| arg.starts_with(&format!("{o}=")))
        {
            continue;
        }
        out.push(arg);
    }
    out
}

/// Whether `path` can be read only once: `-` (standard input), or a pipe, a terminal or a socket (`<(zcat
/// calls.vcf.gz)` gives `/dev/fd/63`, a pipe).
fn read_once(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The input `path` (`-`: standard input) copied whole to a temporary file (in `TMPDIR`), removed with its path.
fn spool(path: &Path) -> anyhow::Result<tempfile::TempPath> {
    let context = || {
        format!(
            "{}: copying it to a temporary file (the VCF is read again for the rows)",
            path.display()
        )
    };
    let mut copy = tempfile::Builder::new()
        .prefix(".genomamba-vcf.")
        .tempfile()
        .with_context(context)?;
    if path.as_os_str() == "-" {
        std::io::copy(&mut std::io::stdin().lock(), copy.as_file_mut()).with_context(context)?;
    } else {
        let mut input = std::fs::File::open(path).with_context(context)?;
        std::io::copy(&mut input, copy.as_file_mut()).with_context(context)?;
    }
    let copy = copy.into_temp_path();
    // Removed by an interrupt that does not wait for the run to end.
    genomamba_parquet::sink::register_temp_file(&copy);
    Ok(copy)
}

/// `score --output-vcf PATH`, checked before any work: its name, its directory, an existing file or index
/// without --force.
fn annotated_vcf(
    path: PathBuf,
    vcf: &Path,
    reference: &Path,
    model: &[(&str, Option<&Path>)],
    output: &Path,
    force: bool,
) -> anyhow::Result<AnnotatedVcf> {
    let Some(compression) = VcfCompression::of_path(&path) else {
        return Err(UsageError(format!(
            "--output-vcf {}: give a name ending in .vcf, .vcf.gz or .vcf.bgz (bgzip), or .bcf, or - for \
             standard output (VCF text)",
            path.display()
        ))
        .into());
    };
    if path.as_os_str() != "-" {
        if path == output {
            return Err(UsageError(format!(
                "--output-vcf {} is also -o: give the VCF and the table different paths",
                path.display()
            ))
            .into());
        }
        check_paths(&[reference.to_path_buf(), vcf.to_path_buf()], model, &path)?;
        // What the writer's staged files will check at the end, checked now: the VCF, and its index.
        let mut targets = vec![path.clone()];
        let indexes: &[&str] = match compression {
            VcfCompression::Plain => &[],
            VcfCompression::Bgzf => &[".tbi", ".csi"],
            VcfCompression::Bcf => &[".csi"],
        };
        targets.extend((indexes.iter()).map(|s| PathBuf::from(format!("{}{s}", path.display()))));
        for target in targets {
            genomamba_parquet::sink::check_target(&target, force)?;
        }
    }
    Ok(AnnotatedVcf { path, compression })
}

/// Fails before any model is loaded or file created when an input is missing, the output's directory does not
/// exist, or the output is a file the run reads (`--force` would destroy it): one of the `inputs`, one of the
/// `others` it reads (`(what, path)`: the --regions BED, the --reference, the --model), or an index or model file
/// beside them ([`files_read`]).
pub(crate) fn check_paths(
    inputs: &[PathBuf],
    others: &[(&str, Option<&Path>)],
    output: &Path,
) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        return Err(UsageError(
            "-o -: outputs are files (written beside their path and renamed when complete), not standard \
             output; give a file path"
                .into(),
        )
        .into());
    }
    if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(UsageError(
            "standard input (-) is given more than once: it can be read only once".into(),
        )
        .into());
    }
    for input in inputs.iter().filter(|p| p.as_os_str() != "-") {
        std::fs::metadata(input).with_context(|| format!("input {}", input.display()))?;
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "output {}: the directory {} does not exist",
            output.display(),
            dir.display()
        );
    }
    if let Ok(out) = output.canonicalize() {
        let named = (inputs.iter())
            .map(|input| ("an input", input.as_path()))
            .chain(
                others
                    .iter()
                    .filter_map(|&(what, path)| Some((what, path?))),
            );
        for (what, path) in named {
            for (role, file) in files_read(what, path) {
                if file.canonicalize().is_ok_and(|f| f == out) {
                    return Err(UsageError(format!(
                        "the output {} is {role}: the run reads it; choose another output path",
                        output.display()
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// What a run may read for `path` (`what` it is: "an input", "the --reference", ...), as `(role, file)`: the path
/// itself, the indexes beside it (`.fai`, `.gzi`, `.bai`, `.csi`, `.crai`, `.tbi`, and `x.bai` for `x.bam`), and
/// the files of a directory (a model's).
fn files_read(what: &str, path: &Path) -> Vec<(String, PathBuf)> {
    if path.as_os_str() == "-" {
        return Vec::new();
    }
    let shown = path.display();
    if path.is_dir() {
        let files = std::fs::read_dir(path).into_iter().flatten().flatten();
        return files
            .map(|entry| (format!("a file of {what} {shown}"), entry.path()))
            .collect();
    }
    let mut out = vec![(what.to_string(), path.to_path_buf())];
    for suffix in [".fai", ".gzi", ".bai", ".csi", ".crai", ".tbi"] {
        let index = PathBuf::from(format!("{shown}{suffix}"));
        out.push((format!("the index of {what} {shown}"), index));
    }
    if path.extension().is_some_and(|e| e == "bam") {
        out.push((
            format!("the index of {what} {shown}"),
            path.with_extension("bai"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_genomes_and_reads_is_a_usage_error() {
        assert!(kind_of(&[Some(Format::Fasta), Some(Format::Fastq)]).is_err());
        assert!(kind_of(&[None, Some(Format::Bam)]).is_err());
        assert_eq!(
            kind_of(&[Some(Format::Bam), Some(Format::Cram)]).ok(),
            Some(InputKind::AlignedReads)
        );
        assert_eq!(kind_of(&[None]).ok(), Some(InputKind::Genome));
    }
}
