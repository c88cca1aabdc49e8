//! Feeds pieces to the engine: one call per piece, or, for an engine that runs many sequences at once (a GPU
//! in one launch, a CPU engine a thread each), whole-window pieces (reads, short records, windows that fit one
//! chunk) gathered into one batched call. Events keep their reader order either way. Embeddings come back as sums of hidden rows over each
//! piece's share of each bin ([`Engine::run_sums`]): an engine on a GPU sums there, so only the sums cross
//! to the host.

use std::ops::Range;

use genomamba_model::engine::sums_on_host;
use genomamba_model::{Engine, Output, Want};
use genomamba_seq::alphabet;
use genomamba_seq::window::{Event, Piece, SequenceSummary};

use crate::Result;
use crate::pooling::bin_segments;

/// Tokens gathered before a batch runs.
const BATCH_TOKENS: usize = 1 << 20;
/// Bytes of engine output a batch may hold on the host (hidden rows are `4 x width` bytes a token unless the
/// engine sums them on its device).
const BATCH_OUTPUT_BYTES: usize = 256 << 20;
/// Pieces gathered before a batch runs.
const BATCH_PIECES: usize = 16_384;

/// Base probabilities only.
const PROBS: Want = Want {
    hidden: false,
    base_probs: true,
};

/// What the engine computes for each piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compute {
    /// Base probabilities.
    Probs,
    /// Sums of hidden rows over each piece's kept rows, cut where bins of `bin` bases start
    /// ([`bin_segments`]).
    Sums {
        /// Bin length in bases (`u64::MAX`: never cut).
        bin: u64,
    },
}

/// The engine's results for one piece.
pub enum Computed<'a> {
    /// Per row, P(A), P(C), P(G), P(T) (`[NaN; 4]` where the row has no context).
    Probs(&'a [[f32; 4]]),
    /// Hidden sums, `(segments.len(), width)` f64, over the piece's row ranges `segments`; the mean of both
    /// strands' sums (the reverse complement's rows mirrored) when the feed runs the reverse complement.
    Sums {
        /// Row ranges of the piece, in order.
        segments: &'a [Range<usize>],
        /// Their sums.
        sums: &'a [f64],
    },
}

/// Most tokens a batch gathers: [`BATCH_TOKENS`], fewer when their outputs on the host (4 probabilities,
/// or hidden rows `width` f32 wide when `hidden_on_host`, both strands when `reverse`) would pass
/// [`BATCH_OUTPUT_BYTES`].
fn batch_tokens(width: usize, hidden_on_host: bool, reverse: bool) -> usize {
    let per_token = 16 + if hidden_on_host { 4 * width } else { 0 };
    let per_token = per_token * if reverse { 2 } else { 1 };
    (BATCH_OUTPUT_BYTES / per_token).clamp(1, BATCH_TOKENS)
}

/// Makes `dst` the reverse complement of the tokens `src`, reusing its buffer.
fn reverse_complement_into(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.extend_from_slice(src);
    alphabet::reverse_complement(dst);
}

/// Sets `dst` to `segments` of a piece of `len` rows mirrored onto its reverse complement: rows `a..b` are
/// rows `len - b..len - a` there.
fn mirror_into(dst: &mut Vec<Range<usize>>, segments: &[Range<usize>], len: usize) {
    dst.clear();
    dst.extend(segments.iter().map(|s| len - s.end..len - s.start));
}

/// Averages the forward sums with the reverse complement's (same segments, mirrored) in place.
fn average_strands(sums: &mut [f64], rc: &[f64]) {
    for (s, r) in sums.iter_mut().zip(rc) {
        *s = 0.5 * (*s + r);
    }
}

/// The sums of one call: on the engine's device, or, given a buffer for its hidden rows, on the host.
fn run_sums(
    engine: &mut dyn Engine,
    host_rows: Option<&mut Output>,
    tokens: &[u8],
    fresh: bool,
    segments: &[Range<usize>],
    sums: &mut Vec<f64>,
) -> Result<()> {
    match host_rows {
        Some(rows) => sums_on_host(engine, rows, tokens, fresh, segments, sums)?,
        None => engine.run_sums(tokens, fresh, segments, sums)?,
    }
    Ok(())
}

/// An event handed back by [`Feed::drain`].
pub enum Fed<'a> {
    /// A piece with the engine's results for it.
    Piece(Piece, Computed<'a>),
    /// The end of a sequence of input `usize`.
    End(usize, SequenceSummary),
}

/// The engine's output buffers and the events waiting for a batch.
pub struct Feed {
    compute: Compute,
    batching: bool,
    /// Most tokens a batch may gather (from [`BATCH_TOKENS`] and [`BATCH_OUTPUT_BYTES`]).
    max_tokens: usize,
    /// Most pieces a batch may gather.
    max_pieces: usize,
    reverse: bool,
    /// The engine's hidden rows of one piece, summed here, when the engine does not sum on its device (a CPU
    /// engine): kept between pieces, and dropped with the feed before the output file is finished.
    host_rows: Option<Output>,
    waiting: Vec<(usize, Event)>,
    tokens: usize,
    pieces: usize,
    /// Per piece of a call: probabilities, or segments and sums (forward, then reverse complement).
    out: Vec<Output>,
    segments: Vec<Vec<Range<usize>>>,
    sums: Vec<Vec<f64>>,
    rc_segments: Vec<Vec<Range<usize>>>,
    rc_sums: Vec<Vec<f64>>,
    rc_tokens: Vec<Vec<u8>>,
}

impl Feed {
    /// A feed computing `compute` (on the reverse complement of each piece too when `reverse`, which only
    /// sums support) on `engine`, at most `max_pieces` pieces a batch (0 = [`BATCH_PIECES`]).
    pub fn new(engine: &dyn Engine, compute: Compute, reverse: bool, max_pieces: usize) -> Self {
        let hidden_on_host = matches!(compute, Compute::Sums { .. }) && !engine.sums_on_device();
        Feed {
            compute,
            batching: engine.prefers_batches(),
            max_tokens: batch_tokens(engine.hidden_width(), hidden_on_host, reverse),
            max_pieces: if max_pieces == 0 {
                BATCH_PIECES
            } else {
                max_pieces
            },
            reverse: reverse && matches!(compute, Compute::Sums { .. }),
            host_rows: hidden_on_host.then(Output::default),
            waiting: Vec::new(),
            tokens: 0,
            pieces: 0,
            out: Vec::new(),
            segments: Vec::new(),
            sums: Vec::new(),
            rc_segments: Vec::new(),
            rc_sums: Vec::new(),
            rc_tokens: Vec::new(),
        }
    }

    /// Whether `event` should wait for a batch: a whole-window piece when the engine prefers batches, or a
    /// sequence end behind waiting pieces (so events stay in order).
    pub fn takes(&self, event: &Event) -> bool {
        match event {
            Event::Piece(p) => self.batching && p.first && p.last,
            Event::SequenceEnd(_) => !self.waiting.is_empty(),
        }
    }

    /// Adds an event [`Feed::takes`]; returns whether the batch is now full and should be drained.
    pub fn push(&mut self, input: usize, event: Event) -> bool {
        if let Event::Piece(p) = &event {
            self.tokens += p.tokens.len();
            self.pieces += 1;
        }
        self.waiting.push((input, event));
        self.tokens >= self.max_tokens || self.pieces >= self.max_pieces
    }

    /// Makes room for `n` pieces' results and sets the segments (and reverse tokens and segments) of
    /// `pieces`.
    fn prepare<'p>(&mut self, pieces: impl Iterator<Item = &'p Piece>, n: usize) {
        for v in [&mut self.segments, &mut self.rc_segments] {
            if v.len() < n {
                v.resize_with(n, Vec::new);
            }
        }
        if self.rc_tokens.len() < n {
            self.rc_tokens.resize_with(n, Vec::new);
        }
        let Compute::Sums { bin } = self.compute else {
            return;
        };
        for (k, p) in pieces.enumerate() {
            bin_segments(p.start, p.keep.clone(), bin, &mut self.segments[k]);
            if self.reverse {
                reverse_complement_into(&mut self.rc_tokens[k], &p.tokens);
                mirror_into(&mut self.rc_segments[k], &self.segments[k], p.tokens.len());
            }
        }
    }

    /// The results for piece `k` of the last call.
    fn computed(&self, k: usize) -> Computed<'_> {
        match self.compute {
            Compute::Probs => Computed::Probs(&self.out[k].base_probs),
            Compute::Sums { .. } => Computed::Sums {
                segments: &self.segments[k],
                sums: &self.sums[k],
            },
        }
    }

    /// Runs one piece on its own (continuing the engine's state unless it is a window's first piece).
    pub fn run_one(&mut self, engine: &mut dyn Engine, piece: &Piece) -> Result<Computed<'_>> {
        self.prepare(std::iter::once(piece), 1);
        match self.compute {
            Compute::Probs => {
                self.out.resize_with(1, Output::default);
                engine.run(&piece.tokens, piece.first, PROBS, &mut self.out[0])?;
            }
            Compute::Sums { .. } => {
                self.sums.resize_with(1, Vec::new);
                self.rc_sums.resize_with(1, Vec::new);
                let rows = self.host_rows.as_mut();
                let (segs, sums) = (&self.segments[0], &mut self.sums[0]);
                run_sums(engine, rows, &piece.tokens, piece.first, segs, sums)?;
                if self.reverse {
                    let rows = self.host_rows.as_mut();
                    let (rc, segs) = (&self.rc_tokens[0], &self.rc_segments[0]);
                    run_sums(engine, rows, rc, true, segs, &mut self.rc_sums[0])?;
                    average_strands(&mut self.sums[0], &self.rc_sums[0]);
                }
            }
        }
        Ok(self.computed(0))
    }

    /// Runs the waiting pieces as one batch (two with the reverse complements) and hands every waiting event
    /// to `each`, in order, a piece with its results.
    pub fn drain(
        &mut self,
        engine: &mut dyn Engine,
        mut each: impl FnMut(Fed<'_>) -> Result<()>,
    ) -> Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.waiting);
        (self.tokens, self.pieces) = (0, 0);
        let pieces: Vec<&Piece> = waiting
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Piece(p) => Some(p),
                Event::SequenceEnd(_) => None,
            })
            .collect();
        let n = pieces.len();
        self.prepare(pieces.iter().copied(), n);
        let seqs: Vec<&[u8]> = pieces.iter().map(|p| p.tokens.as_slice()).collect();
        match self.compute {
            Compute::Probs => engine.run_batch(&seqs, PROBS, &mut self.out)?,
            Compute::Sums { .. } => {
                // Engines that batch sum each piece's rows where they ran it (a GPU on its device, a CPU lane in its
                // own buffer), so a batch never holds every piece's hidden rows.
                let segs: Vec<&[Range<usize>]> =
                    self.segments[..n].iter().map(Vec::as_slice).collect();
                engine.run_batch_sums(&seqs, &segs, &mut self.sums)?;
                if self.reverse {
                    let rc: Vec<&[u8]> = self.rc_tokens[..n].iter().map(Vec::as_slice).collect();
                    let segs: Vec<&[Range<usize>]> =
                        self.rc_segments[..n].iter().map(Vec::as_slice).collect();
                    engine.run_batch_sums(&rc, &segs, &mut self.rc_sums)?;
                    for (s, r) in self.sums.iter_mut().zip(&self.rc_sums) {
                        average_strands(s, r);
                    }
                }
            }
        }
        let mut k = 0;
        for (input, event) in waiting {
            match event {
                Event::Piece(piece) => {
                    each(Fed::Piece(piece, self.computed(k)))?;
                    k += 1;
                }
                Event::SequenceEnd(end) => each(Fed::End(input, end))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use genomamba_model::engine::{Dims, ModelInfo};
    use genomamba_model::{Model, cpu_engine};
    use genomamba_seq::source::SequenceInfo;
    use genomamba_seq::window::SequenceSummary;

    use super::*;

    /// The CPU engine on one thread, claiming to prefer batches (which it does only from two threads); counts the
    /// batches, which it runs one by one.
    struct Batching {
        inner: Box<dyn Engine>,
        batches: Vec<usize>,
    }

    impl Engine for Batching {
        fn info(&self) -> &ModelInfo {
            self.inner.info()
        }
        fn hidden_width(&self) -> usize {
            self.inner.hidden_width()
        }
        fn is_causal(&self) -> bool {
            true
        }
        fn device(&self) -> String {
            self.inner.device()
        }
        fn run(
            &mut self,
            tokens: &[u8],
            fresh: bool,
            want: Want,
            out: &mut Output,
        ) -> genomamba_model::Result<()> {
            self.inner.run(tokens, fresh, want, out)
        }
        fn prefers_batches(&self) -> bool {
            true
        }
        fn run_batch(
            &mut self,
            seqs: &[&[u8]],
            want: Want,
            outs: &mut Vec<Output>,
        ) -> genomamba_model::Result<()> {
            self.batches.push(seqs.len());
            self.inner.run_batch(seqs, want, outs)
        }
        fn run_batch_sums(
            &mut self,
            seqs: &[&[u8]],
            segments: &[&[Range<usize>]],
            sums: &mut Vec<Vec<f64>>,
        ) -> genomamba_model::Result<()> {
            self.batches.push(seqs.len());
            self.inner.run_batch_sums(seqs, segments, sums)
        }
    }

    fn engine() -> Box<dyn Engine> {
        let dims = Dims {
            d_model: 16,
            n_layer: 2,
            d_inner: 32,
            d_state: 4,
            d_conv: 4,
            dt_rank: 2,
            vocab_size: 16,
        };
        cpu_engine(Arc::new(Model::random(dims, 3)), 1, 64).expect("engine")
    }

    fn piece(name: &str, len: usize, first: bool, last: bool, seed: usize) -> Piece {
        let tokens: Vec<u8> = (0..len).map(|i| 7 + ((i * 7 + seed) % 4) as u8).collect();
        Piece {
            seq_index: seed,
            seq: Arc::new(SequenceInfo {
                name: name.into(),
                ..SequenceInfo::default()
            }),
            window_index: 0,
            first,
            last,
            start: 0,
            bases: tokens.iter().map(|_| b'A').collect(),
            soft_masked: vec![false; len],
            keep: 0..len,
            tokens,
        }
    }

    fn end(name: &str) -> Event {
        Event::SequenceEnd(SequenceSummary {
            seq_index: 0,
            info: Arc::new(SequenceInfo {
                name: name.into(),
                ..SequenceInfo::default()
            }),
            length: 0,
            md5: [0; 16],
            n_count: 0,
        })
    }

    /// The hidden rows of `tokens` run fresh, summed over `segments`, averaged with the reverse complement's
    /// rows at the same positions (forward row `r` is reverse row `len - 1 - r`): what the feed should hand
    /// back for a whole-window piece. Rows are summed in the order the feed sums them.
    fn both_strand_sums(tokens: &[u8], segments: &[Range<usize>]) -> Vec<f64> {
        let want = Want {
            hidden: true,
            base_probs: false,
        };
        let (mut fwd, mut rc) = (Output::default(), Output::default());
        engine().run(tokens, true, want, &mut fwd).expect("forward");
        let mut rc_tokens = tokens.to_vec();
        alphabet::reverse_complement(&mut rc_tokens);
        engine()
            .run(&rc_tokens, true, want, &mut rc)
            .expect("reverse");
        let (w, len) = (engine().hidden_width(), tokens.len());
        let mut sums = Vec::new();
        for seg in segments {
            for c in 0..w {
                let f: f64 = seg.clone().map(|r| f64::from(fwd.hidden[r * w + c])).sum();
                let r: f64 = seg
                    .clone()
                    .rev()
                    .map(|r| f64::from(rc.hidden[(len - 1 - r) * w + c]))
                    .sum();
                sums.push(0.5 * (f + r));
            }
        }
        sums
    }

    /// Whole-window pieces wait and run as one batch, both strands; a piece that continues a window runs on
    /// its own after the batch; every event comes back in reader order with the sums a fresh run gives, cut
    /// at the bins.
    #[test]
    fn test_batches_whole_windows_in_order() {
        let mut eng = Batching {
            inner: engine(),
            batches: Vec::new(),
        };
        let mut feed = Feed::new(&eng, Compute::Sums { bin: 8 }, true, 0);
        let events = [
            Event::Piece(piece("r1", 30, true, true, 1)),
            end("r1"),
            Event::Piece(piece("r2", 11, true, true, 2)),
            end("r2"),
        ];
        for e in events {
            assert!(feed.takes(&e));
            assert!(!feed.push(0, e));
        }
        let long = Event::Piece(piece("g", 50, true, false, 3));
        assert!(
            !feed.takes(&long),
            "a window's first of several pieces runs alone"
        );
        let mut seen = Vec::new();
        feed.drain(&mut eng, |fed| {
            match fed {
                Fed::Piece(p, Computed::Sums { segments, sums }) => {
                    let cuts: Vec<usize> = segments.iter().map(|s| s.end).collect();
                    let want_cuts: Vec<usize> = (8..p.tokens.len()).step_by(8).collect();
                    assert_eq!(cuts[..cuts.len() - 1], want_cuts, "{}", p.seq.name);
                    assert_eq!(
                        sums,
                        both_strand_sums(&p.tokens, segments),
                        "{}",
                        p.seq.name
                    );
                    seen.push(p.seq.name.clone());
                }
                Fed::Piece(..) => panic!("sums were asked for"),
                Fed::End(_, s) => seen.push(format!("end {}", s.info.name)),
            }
            Ok(())
        })
        .expect("drain");
        assert_eq!(seen, ["r1", "end r1", "r2", "end r2"]);
        assert_eq!(eng.batches, vec![2, 2], "one batch per strand");
        assert!(
            !feed.takes(&end("g")),
            "nothing waits: a sequence end goes straight on"
        );
        let Event::Piece(long) = long else {
            unreachable!()
        };
        let Computed::Sums { segments, sums } = feed.run_one(&mut eng, &long).expect("one") else {
            panic!("sums were asked for")
        };
        assert_eq!(segments.len(), 7);
        assert_eq!(sums, both_strand_sums(&long.tokens, segments));
    }

    /// Probabilities run one piece at a time give what the engine gives, on the forward strand only.
    #[test]
    fn test_probabilities_of_one_piece() {
        let mut eng = engine();
        let mut feed = Feed::new(eng.as_ref(), Compute::Probs, true, 0);
        let p = piece("r", 20, true, true, 4);
        let mut want = Output::default();
        engine()
            .run(&p.tokens, true, PROBS, &mut want)
            .expect("run");
        let Computed::Probs(probs) = feed.run_one(eng.as_mut(), &p).expect("one") else {
            panic!("probabilities were asked for")
        };
        assert_eq!(probs.len(), 20);
        assert!(probs[0][0].is_nan());
        assert_eq!(probs[1..], want.base_probs[1..]);
    }

    /// A batch is full at BATCH_PIECES pieces (or `--batch`), or at the tokens whose outputs fill
    /// BATCH_OUTPUT_BYTES.
    #[test]
    fn test_batch_limits() {
        let eng = Batching {
            inner: engine(),
            batches: Vec::new(),
        };
        let mut feed = Feed::new(&eng, Compute::Probs, false, 0);
        for i in 1..BATCH_PIECES {
            assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, i))));
        }
        assert!(feed.push(0, Event::Piece(piece("r", 1, true, true, 0))));
        // --batch 3: full at the third piece.
        let mut feed = Feed::new(&eng, Compute::Probs, false, 3);
        assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, 1))));
        assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, 2))));
        assert!(feed.push(0, Event::Piece(piece("r", 1, true, true, 3))));
        // Hidden rows on the host, 16 wide, both strands: 2 x (16 + 64) bytes a token, so BATCH_TOKENS binds;
        // 4096 wide: 2 x (16 + 16,384) bytes a token, 8,184 tokens in 256 MiB; one strand 16,368. Summed on
        // the device, only the probabilities' 16 bytes count.
        assert_eq!(batch_tokens(16, true, true), BATCH_TOKENS);
        assert_eq!(batch_tokens(4096, true, true), 8184);
        assert_eq!(batch_tokens(4096, true, false), 16_368);
        assert_eq!(batch_tokens(4096, false, true), BATCH_TOKENS);
    }

    /// An engine that does not prefer batches gets every piece on its own.
    #[test]
    fn test_no_batches_for_engines_that_run_one_at_a_time() {
        let eng = engine();
        let feed = Feed::new(eng.as_ref(), Compute::Probs, false, 0);
        assert!(!feed.takes(&Event::Piece(piece("r", 10, true, true, 0))));
    }
}
