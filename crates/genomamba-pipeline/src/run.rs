//! One run: a reader thread streams pieces, this thread runs the engine and the heads, a writer thread writes
//! row groups; bounded queues keep memory flat whatever the input size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use arrow_array::RecordBatch;
use crossbeam_channel::{Receiver, Sender, bounded};
use genomamba_model::Engine;
use genomamba_parquet::{ParquetSink, SequenceKind, SinkOptions};
use genomamba_seq::window::{Event, Piece, SequenceSummary, WindowSpec, Windower};

use crate::feed::{Computed, Fed, Feed};
use crate::heads::Heads;
use crate::metadata::{InputRecord, RunMetadata};
use crate::progress::Progress;
use crate::repeats::RepeatedNames;
use crate::settings::{ReferenceRead, Settings, Strand, Task};
use crate::{Error, Result};

/// Pieces in flight between the reader and the engine.
const READ_AHEAD: usize = 4;
/// Bases of masked windows past which a run on the CPU says how to run fewer.
const MASKED_NOTE_BASES: u64 = 10_000_000;
/// Record batches in flight between the engine and the writer.
const WRITE_AHEAD: usize = 4;

/// What kind of sequences the inputs hold; decides the key column and the alignment columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Genome records (FASTA): the key column is `chrom`.
    Genome,
    /// Unaligned reads (FASTQ): the key column is `read_name`.
    Reads,
    /// Alignments (BAM, CRAM): `read_name` plus the alignment columns.
    AlignedReads,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Sequences read.
    pub records: u64,
    /// Bases run through the model: the main pass's kept positions, and the bases the walk runs (its windows
    /// from their burn-in, and the indels' haplotypes), or of the masked windows.
    pub bases: u64,
    /// Rows written.
    pub rows: u64,
    /// Wall-clock seconds, every pass included.
    pub seconds: f64,
    /// What the user should hear about the output (not errors: the file is written).
    pub warnings: Vec<String>,
}

/// Runs a scoring pass apart from the main one (the walk, masked sites) with progress of its own (`total`
/// bases when known, for the ETA), says
/// how many of the `asked` alleles it scored (`what`) unless quiet, and hands the outcomes to `heads`. Returns the
/// bases it ran.
fn side_pass(
    settings: &Settings,
    heads: &mut Heads,
    what: &str,
    asked: usize,
    total: Option<u64>,
    pass: impl FnOnce(&mut Progress) -> Result<Vec<(usize, crate::scoring::AlleleOutcome)>>,
) -> Result<u64> {
    let mut progress = Progress::new(settings.quiet, total);
    let outcomes = pass(&mut progress)?;
    progress.finish();
    if !settings.quiet {
        let scored = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
        eprintln!(
            "genomamba: {scored} of {asked} {what}, {} bases run in {:.1} s",
            progress.bases(),
            progress.elapsed()
        );
    }
    heads.settle(outcomes);
    Ok(progress.bases())
}

/// A message from the reader thread.
enum FromReader {
    /// An input was opened.
    Opened(usize),
    /// A piece or the end of a sequence of input `usize`.
    Event(usize, Event),
    /// Reading failed.
    Failed(std::io::Error),
}

/// Runs `settings` through `engine` and writes the output file; on any error or interruption no output is left.
///
/// `kind`: what the inputs hold; `model`: the model's metadata (JSON object); `interrupted`: set by a signal
/// handler to stop the run between pieces.
pub fn run(
    settings: &Settings,
    kind: InputKind,
    engine: &mut dyn Engine,
    model: serde_json::Value,
    interrupted: &AtomicBool,
) -> Result<Summary> {
    if let Task::Score(score) = &settings.task
        && engine.is_causal() == score.masked.is_some()
    {
        return Err(Error::Invalid(if engine.is_causal() {
            "internal: masked-site scoring asked of a causal model".into()
        } else {
            "a bidirectional model scores each site masked in a window of its own; this run was not set up so"
                .into()
        }));
    }
    let bidirectional =
        !engine.is_causal() || matches!(&settings.task, Task::Embed(e) if e.strand == Strand::Both);
    if bidirectional && settings.window == 0 {
        return Err(Error::Invalid(
            "--window 0 (whole sequences) needs a causal model and --strand forward: this run must hold each \
             window whole; give a window length instead"
                .into(),
        ));
    }
    let spec = WindowSpec {
        window: settings.window,
        overlap: settings.overlap,
        bidirectional,
        max_piece: settings.chunk.max(1),
    };
    let sequence_kind = match kind {
        InputKind::Genome => SequenceKind::Contig,
        InputKind::Reads => SequenceKind::Read,
        InputKind::AlignedReads => SequenceKind::AlignedRead,
    };
    let mut heads = Heads::new(&settings.task, engine.hidden_width(), sequence_kind)?;
    let mut meta = RunMetadata::new(
        settings,
        &model,
        &engine.device(),
        engine.compute_dtype(),
        bidirectional,
        kind == InputKind::Genome,
    );
    let options = SinkOptions::default().with_max_row_group_bytes(settings.row_group_bytes);
    let sink = ParquetSink::create_with_options(
        &settings.output,
        heads.schema(),
        String::new(),
        settings.force,
        options,
    )?;

    let started = std::time::Instant::now();
    // Bases the passes apart from the main one run; sequences they read (the main pass then reads none).
    let (mut side_bases, mut side_records) = (0, 0);
    // With indels and multi-base substitutions, or a reference with no usable index, one walk scores every site
    // through its own reads of the reference; the main pass then reads nothing.
    if let Task::Score(score) = &settings.task
        && let Some(pass) = &score.walk
        && let Some(reference) = settings.inputs.first()
    {
        let mut read = Vec::new();
        let what = match pass.indel_flank {
            Some(_) => "SNVs, indels and substitutions scored",
            None => "SNVs scored",
        };
        side_bases += side_pass(
            settings,
            &mut heads,
            what,
            score.variants.scorable() + score.variants.haplotype_count(),
            Some(crate::walk::planned_bases(
                pass,
                &score.variants,
                &score.lengths,
                settings.window,
                settings.overlap,
            )),
            |progress| {
                crate::walk::score_walk(
                    reference,
                    &settings.open,
                    pass,
                    &score.variants,
                    &score.lengths,
                    settings.window,
                    settings.overlap,
                    settings.chunk,
                    engine,
                    progress,
                    interrupted,
                    &mut read,
                )
            },
        )?;
        side_records = read.len() as u64;
        for record in read {
            meta.add_sequence(0, record);
        }
    }
    // SNVs under a bidirectional model: each in a masked window of its own; the main pass then reads nothing.
    if let Task::Score(score) = &settings.task
        && let Some(pass) = &score.masked
        && let Some(reference) = settings.inputs.first()
    {
        let what = match pass.strand {
            Strand::Forward => "SNVs scored at their masked sites",
            Strand::Both => "SNVs scored at their masked sites, on both strands",
        };
        let mut read = Vec::new();
        let total = crate::masked::planned_bases(pass, &score.variants, &score.lengths);
        if !settings.quiet && engine.device().starts_with("cpu") && total > MASKED_NOTE_BASES {
            eprintln!(
                "genomamba: note: each site runs a window of its own, {total} bases in all on the CPU; a smaller \
                 --overlap (the bases on each side of a site, now {}) runs fewer, and a GPU runs the windows \
                 thousands at a time",
                pass.flank
            );
        }
        side_bases += side_pass(
            settings,
            &mut heads,
            what,
            score.variants.scorable(),
            Some(total),
            |progress| {
                crate::masked::score_masked(
                    reference,
                    &settings.open,
                    pass,
                    &score.variants,
                    &score.lengths,
                    settings.batch,
                    engine,
                    progress,
                    interrupted,
                    &mut read,
                )
            },
        )?;
        // The main pass reads nothing: the inputs are what this pass read.
        side_records = read.len() as u64;
        for record in read {
            meta.add_sequence(0, record);
        }
    }
    let mut progress = Progress::new(settings.quiet, None);
    let (piece_tx, piece_rx) = bounded::<FromReader>(READ_AHEAD);
    let (batch_tx, batch_rx) = bounded::<RecordBatch>(WRITE_AHEAD);
    let mut summary = Summary {
        records: side_records,
        bases: side_bases,
        rows: 0,
        seconds: 0.0,
        warnings: Vec::new(),
    };

    let sink = thread::scope(|scope| -> Result<ParquetSink> {
        let inputs = match &settings.task {
            Task::Score(s)
                if s.read == ReferenceRead::Nothing || s.masked.is_some() || s.walk.is_some() =>
            {
                Vec::new()
            }
            _ => settings.inputs.clone(),
        };
        // A region gets the burn-in (and flanks) it would have inside a run over its whole record.
        let after = if spec.bidirectional { spec.overlap } else { 0 };
        let open = settings.open.clone().with_context(spec.overlap, after);
        scope.spawn(move || read_inputs(inputs, open, spec, piece_tx));
        let writer = scope.spawn(move || write_batches(sink, batch_rx));

        // Reads of no bases (FASTQ records trimmed to nothing) are common and not worth a word; score's rows
        // are the VCF's, whose statuses already say what a site on an empty record got.
        let warn_empty = kind == InputKind::Genome && !matches!(settings.task, Task::Score(_));
        // Score's rows are the VCF's, keyed by its sites.
        let repeated = match (&settings.task, kind) {
            (Task::Score(_), _) => None,
            (_, InputKind::Genome) => Some(RepeatedNames::records()),
            (_, InputKind::Reads | InputKind::AlignedReads) => Some(RepeatedNames::reads()),
        };
        let computed = compute(
            settings.batch,
            warn_empty,
            repeated,
            &piece_rx,
            &batch_tx,
            engine,
            &mut heads,
            &mut meta,
            &mut progress,
            &mut summary,
            interrupted,
        );
        // Closing both queues stops the reader (its next send fails) and lets the writer drain and return.
        drop(piece_rx);
        drop(batch_tx);
        // A writer error explains a failed send, so it goes first.
        let sink = writer.join().map_err(|_| Error::Thread("writer"))??;
        computed?;
        Ok(sink)
    })?;

    progress.finish();
    // The annotated VCF is written before the table is renamed into place, and renamed after it: a failure of
    // either leaves neither.
    let annotated = match (&settings.task, heads.scorer()) {
        (Task::Score(score), Some(scorer)) => match &score.output_vcf {
            Some(out) => Some(crate::annotate::write(
                out,
                score,
                scorer,
                settings,
                &model,
                interrupted,
            )?),
            None => None,
        },
        _ => None,
    };
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    meta.finish(&summary);
    sink.finish_with_metadata(meta.to_json())?;
    if let Some(mut written) = annotated {
        summary.warnings.extend(written.warning.take());
        written.commit()?;
    }
    Ok(summary)
}

/// Where computed rows go: the heads, the metadata, the progress line, the summary, the writer's queue.
struct Rows<'a> {
    heads: &'a mut Heads,
    meta: &'a mut RunMetadata,
    progress: &'a mut Progress,
    summary: &'a mut Summary,
    batches: &'a Sender<RecordBatch>,
    /// Records with no bases, when the run warns of them.
    empty_records: Option<EmptyRecords>,
    /// Sequence names repeated across inputs, when the run warns of them.
    repeated: Option<RepeatedNames>,
    /// Set by a signal handler: stops the batches handed over at the end (score builds all its rows then).
    interrupted: &'a AtomicBool,
}

impl Rows<'_> {
    /// Adds a piece's rows from the engine's results for it.
    fn piece(&mut self, piece: &Piece, computed: Computed<'_>) -> Result<()> {
        self.summary.rows += self.heads.consume(piece, computed)?;
        let kept = piece.keep.len() as u64;
        self.summary.bases += kept;
        self.progress.advance(&piece.seq.name, kept);
        self.send(false)
    }

    /// Closes a sequence of input `input`.
    fn end(&mut self, input: usize, end: &SequenceSummary) -> Result<()> {
        self.summary.rows += self.heads.end_sequence(end)?;
        self.summary.records += 1;
        if let Some(empty) = self.empty_records.as_mut().filter(|_| end.length == 0) {
            empty.add(&end.info.name);
        }
        if let Some(repeated) = self.repeated.as_mut() {
            repeated.add(input, &end.info.name);
        }
        self.meta
            .add_sequence(input, InputRecord::from_summary(end));
        self.send(false)
    }

    /// Hands record batches to the writer when enough rows have built up (or all of them).
    fn send(&mut self, all: bool) -> Result<()> {
        while let Some(batch) = self.heads.take_batch(all)? {
            if self.interrupted.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            self.batches
                .send(batch)
                .map_err(|_| Error::Thread("writer"))?;
        }
        Ok(())
    }

    /// An event handed back by [`Feed::drain`].
    fn fed(&mut self, fed: Fed<'_>) -> Result<()> {
        match fed {
            Fed::Piece(piece, computed) => self.piece(&piece, computed),
            Fed::End(input, end) => self.end(input, &end),
        }
    }
}

/// The engine loop: pieces in, record batches out.
#[allow(clippy::too_many_arguments)]
fn compute(
    batch: usize,
    warn_empty: bool,
    repeated: Option<RepeatedNames>,
    pieces: &Receiver<FromReader>,
    batches: &Sender<RecordBatch>,
    engine: &mut dyn Engine,
    heads: &mut Heads,
    meta: &mut RunMetadata,
    progress: &mut Progress,
    summary: &mut Summary,
    interrupted: &AtomicBool,
) -> Result<()> {
    let mut feed = Feed::new(engine, heads.compute(), heads.needs_reverse(engine), batch);
    let mut rows = Rows {
        heads,
        meta,
        progress,
        summary,
        batches,
        empty_records: warn_empty.then(EmptyRecords::default),
        repeated,
        interrupted,
    };
    for message in pieces {
        if interrupted.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        match message {
            FromReader::Failed(e) => return Err(Error::Input(e)),
            FromReader::Event(input, event) if feed.takes(&event) => {
                if feed.push(input, event) {
                    feed.drain(engine, |fed| rows.fed(fed))?;
                }
            }
            other => {
                feed.drain(engine, |fed| rows.fed(fed))?;
                match other {
                    FromReader::Opened(input) => rows.meta.open_input(input),
                    FromReader::Event(_, Event::Piece(piece)) => {
                        let computed = feed.run_one(engine, &piece)?;
                        rows.piece(&piece, computed)?;
                    }
                    FromReader::Event(input, Event::SequenceEnd(end)) => rows.end(input, &end)?,
                    FromReader::Failed(e) => return Err(Error::Input(e)),
                }
            }
        }
    }
    feed.drain(engine, |fed| rows.fed(fed))?;
    rows.summary.rows += rows.heads.finish()?;
    rows.summary.warnings = rows.heads.warnings();
    rows.summary
        .warnings
        .extend(rows.empty_records.as_ref().and_then(EmptyRecords::warning));
    let meta = &*rows.meta;
    rows.summary
        .warnings
        .extend((rows.repeated.as_ref()).and_then(|r| r.warning(|input| meta.input_path(input))));
    rows.send(true)
}

/// Records that held no bases: counted, the first few named for the warning.
#[derive(Default)]
struct EmptyRecords {
    count: u64,
    names: Vec<String>,
}

impl EmptyRecords {
    /// Names given in the warning at most.
    const NAMED: usize = 5;

    fn add(&mut self, name: &str) {
        self.count += 1;
        if self.names.len() < Self::NAMED {
            self.names.push(name.to_owned());
        }
    }

    /// "N record(s) with no bases, so no rows: a, b, ..." or nothing.
    fn warning(&self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let more = if self.count > self.names.len() as u64 {
            format!(" and {} more", self.count - self.names.len() as u64)
        } else {
            String::new()
        };
        let (records, have) = if self.count == 1 {
            ("record", "has")
        } else {
            ("records", "have")
        };
        Some(format!(
            "{} {records} {have} no bases, so no rows: {}{more}",
            self.count,
            self.names.join(", ")
        ))
    }
}

/// The reader thread: opens each input in turn and streams its events; stops quietly when the engine side hangs up.
fn read_inputs(
    inputs: Vec<PathBuf>,
    open: genomamba_seq::OpenOptions,
    spec: WindowSpec,
    tx: Sender<FromReader>,
) {
    for (index, path) in inputs.iter().enumerate() {
        let source = match genomamba_seq::open(path, &open) {
            Ok(source) => source,
            Err(e) => {
                let _ = tx.send(FromReader::Failed(e));
                return;
            }
        };
        if tx.send(FromReader::Opened(index)).is_err() {
            return;
        }
        let mut windower = Windower::new(source, spec);
        loop {
            match windower.next_event() {
                Ok(Some(event)) => {
                    if tx.send(FromReader::Event(index, event)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(FromReader::Failed(e));
                    return;
                }
            }
        }
    }
}

/// The writer thread: writes every batch it receives; returns the sink for the caller to finish.
fn write_batches(mut sink: ParquetSink, batches: Receiver<RecordBatch>) -> Result<ParquetSink> {
    for batch in batches {
        sink.write(&batch)?;
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::EmptyRecords;

    #[test]
    fn empty_records_are_named_up_to_five() {
        let mut genome = EmptyRecords::default();
        assert_eq!(genome.warning(), None);
        genome.add("chrUn_1");
        assert_eq!(
            genome.warning().as_deref(),
            Some("1 record has no bases, so no rows: chrUn_1")
        );
        (2..=7).for_each(|i| genome.add(&format!("chrUn_{i}")));
        assert_eq!(
            genome.warning().as_deref(),
            Some(
                "7 records have no bases, so no rows: chrUn_1, chrUn_2, chrUn_3, chrUn_4, chrUn_5 and 2 more"
            )
        );
    }
}
