//! Grouping whole short windows (e.g. reads) into batches for a GPU.

use std::io;

use super::{Event, Windower};

/// Batch size limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most tokens in a batch (a single larger window still makes a batch of its own).
    pub max_tokens: usize,
    /// Most pieces in a batch.
    pub max_pieces: usize,
}

impl Default for BatchLimits {
    /// 1,048,576 tokens, 1,024 pieces.
    fn default() -> Self {
        Self {
            max_tokens: 1 << 20,
            max_pieces: 1024,
        }
    }
}

/// Groups events: a batch is either whole windows (`first && last`) up to the limits, or one piece of a
/// multi-piece window; [`Event::SequenceEnd`]s travel with the batch they follow. Order is kept.
///
/// ```
/// use genomamba_seq::{open_reader, window::{BatchLimits, Batcher, Event, WindowSpec, Windower}, OpenOptions};
/// let fq: &[u8] = b"@a\nACGT\n+\nIIII\n@b\nGG\n+\nII\n@c\nTTTTT\n+\nIIIII\n";
/// let w = Windower::new(open_reader(Box::new(fq), "-", &OpenOptions::default())?, WindowSpec::default());
/// let mut b = Batcher::new(w, BatchLimits { max_tokens: 6, max_pieces: 8 });
/// let sizes: Vec<usize> = std::iter::from_fn(|| b.next_batch().transpose())
///     .map(|r| r.map(|batch| batch.iter().filter(|e| matches!(e, Event::Piece(_))).count()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(sizes, [2, 1]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Batcher {
    windower: Windower,
    limits: BatchLimits,
    pending: Option<Event>,
}

impl Batcher {
    /// Batches the events of `windower`.
    pub fn new(windower: Windower, limits: BatchLimits) -> Self {
        Self {
            windower,
            limits,
            pending: None,
        }
    }

    fn next_event(&mut self) -> io::Result<Option<Event>> {
        match self.pending.take() {
            Some(e) => Ok(Some(e)),
            None => self.windower.next_event(),
        }
    }

    /// The next batch of events; `None` at the end of the input.
    pub fn next_batch(&mut self) -> io::Result<Option<Vec<Event>>> {
        let mut batch = Vec::new();
        let (mut tokens, mut pieces) = (0usize, 0usize);
        while let Some(ev) = self.next_event()? {
            match ev {
                Event::SequenceEnd(_) => batch.push(ev),
                Event::Piece(ref p) => {
                    let n = p.tokens.len();
                    if !p.is_whole_window() {
                        if pieces > 0 {
                            self.pending = Some(ev);
                        } else {
                            batch.push(ev);
                        }
                        break;
                    }
                    if pieces > 0
                        && (tokens + n > self.limits.max_tokens || pieces >= self.limits.max_pieces)
                    {
                        self.pending = Some(ev);
                        break;
                    }
                    tokens += n;
                    pieces += 1;
                    batch.push(ev);
                }
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}
