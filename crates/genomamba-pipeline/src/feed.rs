//! Feeds pieces to the engine: one call per piece, or, for an engine that runs many sequences per launch (a
//! GPU), whole-window pieces (reads, short records, windows that fit one chunk) gathered into one
//! [`Engine::run_batch`] call. Events keep their reader order either way.

use genomamba_model::{Engine, Output, Want};
use genomamba_seq::alphabet;
use genomamba_seq::window::{Event, Piece, SequenceSummary};

use crate::Result;

/// Tokens gathered before a batch runs.
const BATCH_TOKENS: usize = 1 << 20;
/// Bytes of engine output a batch may hold (hidden rows of embeddings are `4 x width` bytes a token).
const BATCH_OUTPUT_BYTES: usize = 256 << 20;
/// Pieces gathered before a batch runs.
const BATCH_PIECES: usize = 16_384;

/// Most tokens a batch gathers: [`BATCH_TOKENS`], fewer when their outputs (hidden rows `width` f32 wide
/// when wanted, 4 probabilities, both strands when `reverse`) would pass [`BATCH_OUTPUT_BYTES`].
fn batch_tokens(width: usize, want: Want, reverse: bool) -> usize {
    let per_token = 16 + if want.hidden { 4 * width } else { 0 };
    let per_token = per_token * if reverse { 2 } else { 1 };
    (BATCH_OUTPUT_BYTES / per_token).clamp(1, BATCH_TOKENS)
}

/// Makes `dst` the reverse complement of the tokens `src`, reusing its buffer.
fn reverse_complement_into(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.extend_from_slice(src);
    alphabet::reverse_complement(dst);
}

/// An event handed back by [`Feed::drain`].
pub enum Fed<'a> {
    /// A piece with the engine's outputs for it and, when asked for, for its reverse complement.
    Piece(Piece, &'a Output, Option<&'a Output>),
    /// The end of a sequence of input `usize`.
    End(usize, SequenceSummary),
}

/// The engine's output buffers and the events waiting for a batch.
pub struct Feed {
    batching: bool,
    /// Most tokens a batch may gather (from [`BATCH_TOKENS`] and [`BATCH_OUTPUT_BYTES`]).
    max_tokens: usize,
    /// Most pieces a batch may gather.
    max_pieces: usize,
    want: Want,
    reverse: bool,
    waiting: Vec<(usize, Event)>,
    tokens: usize,
    pieces: usize,
    out: Vec<Output>,
    out_rc: Vec<Output>,
    rc_tokens: Vec<Vec<u8>>,
}

impl Feed {
    /// A feed computing `want` (plus the reverse complement of each piece when `reverse`) on `engine`, at
    /// most `max_pieces` pieces a batch (0 = [`BATCH_PIECES`]).
    pub fn new(engine: &dyn Engine, want: Want, reverse: bool, max_pieces: usize) -> Self {
        Feed {
            batching: engine.prefers_batches(),
            max_tokens: batch_tokens(engine.hidden_width(), want, reverse),
            max_pieces: if max_pieces == 0 {
                BATCH_PIECES
            } else {
                max_pieces
            },
            want,
            reverse,
            waiting: Vec::new(),
            tokens: 0,
            pieces: 0,
            out: vec![Output::default()],
            out_rc: vec![Output::default()],
            rc_tokens: vec![Vec::new()],
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

    /// Runs one piece on its own (continuing the engine's state unless it is a window's first piece).
    pub fn run_one(
        &mut self,
        engine: &mut dyn Engine,
        piece: &Piece,
    ) -> Result<(&Output, Option<&Output>)> {
        engine.run(&piece.tokens, piece.first, self.want, &mut self.out[0])?;
        if self.reverse {
            reverse_complement_into(&mut self.rc_tokens[0], &piece.tokens);
            engine.run(&self.rc_tokens[0], true, self.want, &mut self.out_rc[0])?;
        }
        Ok((&self.out[0], self.reverse.then(|| &self.out_rc[0])))
    }

    /// Runs the waiting pieces as one batch (two with the reverse complements) and hands every waiting event
    /// to `each`, in order, a piece with its outputs.
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
        let seqs: Vec<&[u8]> = waiting
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Piece(p) => Some(p.tokens.as_slice()),
                Event::SequenceEnd(_) => None,
            })
            .collect();
        engine.run_batch(&seqs, self.want, &mut self.out)?;
        if self.reverse {
            if self.rc_tokens.len() < seqs.len() {
                self.rc_tokens.resize_with(seqs.len(), Vec::new);
            }
            for (rc, s) in self.rc_tokens.iter_mut().zip(&seqs) {
                reverse_complement_into(rc, s);
            }
            let rc: Vec<&[u8]> = self.rc_tokens[..seqs.len()]
                .iter()
                .map(Vec::as_slice)
                .collect();
            engine.run_batch(&rc, self.want, &mut self.out_rc)?;
        }
        let mut k = 0;
        for (input, event) in waiting {
            match event {
                Event::Piece(piece) => {
                    let rc = self.reverse.then(|| &self.out_rc[k]);
                    each(Fed::Piece(piece, &self.out[k], rc))?;
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

    /// The CPU engine, claiming to prefer batches; counts the batches, which it runs one by one (the trait's
    /// default `run_batch`, which the CPU engine keeps).
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

    /// Whole-window pieces wait and run as one batch, both strands; a piece that continues a window runs on
    /// its own after the batch; every event comes back in reader order with the outputs a fresh run gives.
    #[test]
    fn test_batches_whole_windows_in_order() {
        let want = Want {
            hidden: true,
            base_probs: false,
        };
        let mut eng = Batching {
            inner: engine(),
            batches: Vec::new(),
        };
        let mut feed = Feed::new(&eng, want, true, 0);
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
                Fed::Piece(p, out, rc) => {
                    let mut want_out = Output::default();
                    engine().run(&p.tokens, true, want, &mut want_out)?;
                    assert_eq!(out.hidden, want_out.hidden, "{}", p.seq.name);
                    let rc = rc.expect("reverse strand");
                    assert_eq!(rc.rows, p.tokens.len());
                    seen.push(p.seq.name.clone());
                }
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
    }

    /// A batch is full at BATCH_PIECES pieces (or `--batch`), or at the tokens whose outputs fill
    /// BATCH_OUTPUT_BYTES.
    #[test]
    fn test_batch_limits() {
        let eng = Batching {
            inner: engine(),
            batches: Vec::new(),
        };
        let mut feed = Feed::new(&eng, Want::ALL, false, 0);
        for i in 1..BATCH_PIECES {
            assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, i))));
        }
        assert!(feed.push(0, Event::Piece(piece("r", 1, true, true, 0))));
        // --batch 3: full at the third piece.
        let mut feed = Feed::new(&eng, Want::ALL, false, 3);
        assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, 1))));
        assert!(!feed.push(0, Event::Piece(piece("r", 1, true, true, 2))));
        assert!(feed.push(0, Event::Piece(piece("r", 1, true, true, 3))));
        // Embeddings 16 wide, both strands: 2 x (16 + 64) bytes a token, so BATCH_TOKENS binds; 4096 wide:
        // 2 x (16 + 16,384) bytes a token, 8,184 tokens in 256 MiB.
        let hidden = Want {
            hidden: true,
            base_probs: false,
        };
        assert_eq!(batch_tokens(16, hidden, true), BATCH_TOKENS);
        assert_eq!(batch_tokens(4096, hidden, true), 8184);
        assert_eq!(batch_tokens(4096, Want::ALL, false), 16_368);
    }

    /// An engine that does not prefer batches gets every piece on its own.
    #[test]
    fn test_no_batches_for_engines_that_run_one_at_a_time() {
        let eng = engine();
        let feed = Feed::new(eng.as_ref(), Want::ALL, false, 0);
        assert!(!feed.takes(&Event::Piece(piece("r", 10, true, true, 0))));
    }
}
