//! The windower (DESIGN §5): cuts each sequence of a [`SequenceSource`] into coordinate-tagged windows of
//! tokens, streaming, in bounded memory for causal models.
//!
//! Causal: window `k` covers `[k*W, min((k+1)*W, len))`; its first piece starts with up to `O` bases of burn-in
//! (the bases before `k*W`) outside `keep`; a window comes in pieces of at most `max_piece` kept tokens (engine
//! state carries between the pieces of one window and is reset at `first`). `W = 0` makes the whole sequence one
//! window, so a 100 Mb record is held `max_piece + O` tokens at a time.
//! Bidirectional: window `k` is one piece `[k*W - O, (k+1)*W + O)` clipped to the sequence; `keep` is the core.
//! Either way every base of a sequence is in exactly one `keep` range, in order.
//!
//! Context: a sequence may stream [`SequenceInfo::lead`] bases before its first base and
//! [`SequenceInfo::trail`] after its last (FASTA regions read with context). The window grid starts at the
//! sequence's first base; context bases serve only as burn-in or flank, so a region cut at a window boundary
//! gives exactly the outputs a run over the whole record gives for those bases.

mod batch;

use std::{io, ops::Range, sync::Arc};

use md5::{Digest, Md5};

pub use self::batch::{BatchLimits, Batcher};
use crate::{
    alphabet::{self, N, SOFT_MASK_BIT, TABLE},
    source::{SequenceInfo, SequenceSource, invalid_data},
};

/// Window geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length `W` in bases; 0 = the whole sequence is one window.
    pub window: u64,
    /// Overlap `O` in bases: causal burn-in before each window, or bidirectional flank on each side.
    pub overlap: u64,
    /// Bidirectional model (one piece per window with flanks on both sides).
    pub bidirectional: bool,
    /// Most kept tokens per piece for causal streaming (ignored when bidirectional); at least 1.
    pub max_piece: usize,
}

impl Default for WindowSpec {
    /// `W = 1,048,576`, `O = 0`, causal, pieces of 65,536 tokens.
    fn default() -> Self {
        Self {
            window: 1 << 20,
            overlap: 0,
            bidirectional: false,
            max_piece: 1 << 16,
        }
    }
}

/// A contiguous run of tokens of one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// 0-based index of the sequence in the input.
    pub seq_index: usize,
    /// The sequence.
    pub seq: Arc<SequenceInfo>,
    /// 0-based index of the window within the sequence.
    pub window_index: u64,
    /// First piece of its window: engine state must be reset before it.
    pub first: bool,
    /// Last piece of its window.
    pub last: bool,
    /// Coordinate of `tokens[0]` in the named record (same frame as `SequenceInfo::start`), 0-based.
    pub start: u64,
    /// Token ids, `(len,)`.
    pub tokens: Vec<u8>,
    /// The raw bytes as read, same length.
    pub bases: Vec<u8>,
    /// Soft-mask (lower case) flags, same length.
    pub soft_masked: Vec<bool>,
    /// Indexes into `tokens` whose outputs are emitted (burn-in and flanks excluded).
    pub keep: Range<usize>,
}

impl Piece {
    /// Record coordinates `[start, end)` of the kept tokens.
    pub fn kept_span(&self) -> (u64, u64) {
        (
            self.start + self.keep.start as u64,
            self.start + self.keep.end as u64,
        )
    }

    /// Whether the piece is a whole window (`first && last`).
    pub fn is_whole_window(&self) -> bool {
        self.first && self.last
    }
}

/// Facts about a finished sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSummary {
    /// 0-based index of the sequence in the input.
    pub seq_index: usize,
    /// The sequence.
    pub info: Arc<SequenceInfo>,
    /// Number of bases.
    pub length: u64,
    /// MD5 of the upper-cased bases (as SAM `@SQ M5`).
    pub md5: [u8; 16],
    /// Number of bases whose token is `N` (IUPAC codes included).
    pub n_count: u64,
}

/// What the windower hands out, in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A piece of a window.
    Piece(Piece),
    /// A sequence is finished (after its last piece; alone for a sequence of 0 bases).
    SequenceEnd(SequenceSummary),
}

/// The sequence being windowed. Offsets are into the streamed bases: `lead` context bases, then the
/// sequence, then `trail` context bases.
struct Current {
    index: usize,
    info: Arc<SequenceInfo>,
    /// Stream offset of the sequence's first base (= `info.lead`).
    lead: u64,
    /// Stream offset one past the sequence's last base (`u64::MAX` when no context follows it).
    limit: u64,
    /// Raw bases `[buf_start, buf_start + buf.len())` of the stream.
    buf: Vec<u8>,
    buf_start: u64,
    exhausted: bool,
    window: u64,
    /// Next base (sequence offset) to put in a keep range.
    pos: u64,
    md5: Md5,
    n_count: u64,
    scratch: Vec<u8>,
}

impl Current {
    fn buf_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }
}

/// Turns a [`SequenceSource`] into [`Event`]s.
pub struct Windower {
    src: Box<dyn SequenceSource>,
    spec: WindowSpec,
    next_index: usize,
    cur: Option<Current>,
    done: bool,
}

impl Windower {
    /// A windower over `src` with geometry `spec`.
    pub fn new(src: Box<dyn SequenceSource>, spec: WindowSpec) -> Self {
        let spec = WindowSpec {
            max_piece: spec.max_piece.max(1),
            ..spec
        };
        Self {
            src,
            spec,
            next_index: 0,
            cur: None,
            done: false,
        }
    }

    /// The input's display name.
    pub fn input_name(&self) -> &str {
        self.src.input_name()
    }

    /// The next event; `None` after the last sequence.
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.cur.is_none() {
                let Some(info) = self.src.next_sequence()? else {
                    self.done = true;
                    return Ok(None);
                };
                let lead = info.lead;
                let limit = if info.trail > 0 {
                    lead.saturating_add(info.len.unwrap_or(u64::MAX))
                } else {
                    u64::MAX
                };
                self.cur = Some(Current {
                    index: self.next_index,
                    info: Arc::new(info),
                    lead,
                    limit,
                    buf: Vec::new(),
                    buf_start: 0,
                    exhausted: false,
                    window: 0,
                    pos: lead,
                    md5: Md5::new(),
                    n_count: 0,
                    scratch: Vec::new(),
                });
                self.next_index += 1;
            }
            if let Some(ev) = self.step()? {
                return Ok(Some(ev));
            }
        }
    }

    /// Reads bases until the buffer reaches sequence offset `upto` or the sequence ends.
    fn fill(src: &mut dyn SequenceSource, c: &mut Current, upto: u64) -> io::Result<()> {
        while !c.exhausted && c.buf_end() < upto {
            let want = usize::try_from(upto - c.buf_end())
                .unwrap_or(usize::MAX)
                .min(1 << 20);
            let old = c.buf.len();
            let n = src.read_bases(&mut c.buf, want)?;
            if n == 0 {
                c.exhausted = true;
                break;
            }
            // Only the sequence's own bases count towards its MD5 and N count, not the context.
            let new_start = c.buf_start + old as u64;
            let lo = c.lead.clamp(new_start, c.buf_end()) - c.buf_start;
            let hi = c.limit.clamp(new_start, c.buf_end()) - c.buf_start;
            let new = &c.buf[lo as usize..hi as usize];
            c.scratch.clear();
            c.scratch.extend(new.iter().map(u8::to_ascii_uppercase));
            c.md5.update(&c.scratch);
            c.n_count += new
                .iter()
                .filter(|&&b| TABLE[b as usize] & !SOFT_MASK_BIT == N)
                .count() as u64;
        }
        Ok(())
    }

    fn step(&mut self) -> io::Result<Option<Event>> {
        let spec = self.spec;
        let Some(c) = self.cur.as_mut() else {
            return Ok(None);
        };
        let w = if spec.window == 0 {
            u64::MAX
        } else {
            spec.window
        };
        let ws = c.lead.saturating_add(c.window.saturating_mul(w));
        let we = ws.saturating_add(w);
        let (from, core_end, first, last) = if spec.bidirectional {
            Self::fill(&mut *self.src, c, we.saturating_add(spec.overlap))?;
            let core_end = we.min(c.buf_end()).min(c.limit);
            if core_end <= ws {
                return Ok(self.cur.take().map(Self::summary));
            }
            (ws.saturating_sub(spec.overlap), core_end, true, true)
        } else {
            let first = c.pos == ws;
            let target = we
                .min(c.pos.saturating_add(spec.max_piece as u64))
                .min(c.limit);
            // One base of lookahead tells whether the sequence ends with this piece.
            Self::fill(&mut *self.src, c, target.saturating_add(1))?;
            let core_end = target.min(c.buf_end());
            if core_end <= c.pos {
                return Ok(self.cur.take().map(Self::summary));
            }
            let last =
                core_end == we || core_end == c.limit || (c.exhausted && core_end == c.buf_end());
            let from = if first {
                ws.saturating_sub(spec.overlap)
            } else {
                c.pos
            };
            (from, core_end, first, last)
        };
        let to = if spec.bidirectional {
            we.saturating_add(spec.overlap).min(c.buf_end())
        } else {
            core_end
        };
        let lo = (from - c.buf_start) as usize;
        let hi = (to - c.buf_start) as usize;
        let bases = c.buf[lo..hi].to_vec();
        let mut tokens = Vec::with_capacity(bases.len());
        let mut soft_masked = Vec::with_capacity(bases.len());
        if let Err(e) = alphabet::tokenize(&bases, &mut tokens, &mut soft_masked) {
            let at = c.info.start - c.lead + from + e.offset as u64 + 1;
            return Err(invalid_data(
                self.src.input_name(),
                format_args!(
                    "record '{}': invalid base {:?} at position {at} (1-based)",
                    c.info.name,
                    char::from(e.byte)
                ),
            ));
        }
        let keep_start = if spec.bidirectional { ws } else { c.pos };
        let piece = Piece {
            seq_index: c.index,
            seq: Arc::clone(&c.info),
            window_index: c.window,
            first,
            last,
            start: c.info.start - c.lead + from,
            tokens,
            bases,
            soft_masked,
            keep: (keep_start - from) as usize..(core_end - from) as usize,
        };
        c.pos = core_end;
        if last {
            c.window += 1;
        }
        // Keep only what the next piece may need: O bases of burn-in or left flank before `pos`.
        let keep_from = c.pos.saturating_sub(spec.overlap).max(c.buf_start);
        let drop = (keep_from - c.buf_start) as usize;
        if drop > 0 {
            c.buf.drain(..drop);
            c.buf_start = keep_from;
        }
        Ok(Some(Event::Piece(piece)))
    }

    fn summary(c: Current) -> Event {
        let length = c.buf_end().min(c.limit).saturating_sub(c.lead);
        Event::SequenceEnd(SequenceSummary {
            seq_index: c.index,
            info: c.info,
            length,
            md5: c.md5.finalize().into(),
            n_count: c.n_count,
        })
    }
}

impl Iterator for Windower {
    type Item = io::Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

#[cfg(test)]
mod tests;
