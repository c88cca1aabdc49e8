//! The reference's bases for the passes that score variants apart from the main pass (the walk, masked
//! sites): a pass lists, per record, the spans it needs, and `read_spans` streams the reference once, handing
//! each span's tokens and bases over as soon as all of them are read and keeping no more of a record than the
//! next span needs.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use genomamba_seq::window::{Event, WindowSpec, Windower};
use genomamba_seq::{OpenOptions, Region};

use crate::metadata::InputRecord;
use crate::{Error, Result};

/// What a pass reads of the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteReads {
    /// Through its index, these regions (each covering the spans of a group of sites); the pass may add context
    /// before each.
    Regions(Vec<Region>),
    /// These records whole (no usable index).
    Records(Vec<String>),
}

/// `[start, end)` (0-based) of one record, needed for `item`.
#[derive(Debug)]
pub(crate) struct Span<T> {
    pub start: u64,
    pub end: u64,
    pub item: T,
}

/// Per record name, its spans, in order of `start`.
pub(crate) type Spans<'a, T> = HashMap<&'a str, VecDeque<Span<T>>>;

/// Reads `reference` with `open`, narrowed to `reads` (each region widened by `before` bases of context), and calls
/// `visit(record, item, tokens, bases)` with each span of `pending` once its bases are read: `tokens` and `bases`
/// are the record's `[start, end)` as token ids and as read. Spans of records that are not read are never visited;
/// a span of a record read whose bases never come is an error. Returns the sequences read (records or regions),
/// as the metadata lists inputs.
pub(crate) fn read_spans<T>(
    reference: &Path,
    open: &OpenOptions,
    reads: &SiteReads,
    before: u64,
    mut pending: Spans<'_, T>,
    interrupted: &AtomicBool,
    mut visit: impl FnMut(&str, T, &[u8], &[u8]) -> Result<()>,
) -> Result<Vec<InputRecord>> {
    let mut read = Vec::new();
    if pending.values().all(VecDeque::is_empty) {
        return Ok(read);
    }
    let open = match reads {
        SiteReads::Regions(regions) => open.clone().with_regions(regions.clone()),
        SiteReads::Records(names) => open.clone().with_names(names.clone()),
    }
    .with_context(before, 0);
    let source = genomamba_seq::open(reference, &open)?;
    // Each region (or record) is one window: the passes keep their own grids.
    let spec = WindowSpec {
        window: 0,
        overlap: before,
        bidirectional: false,
        max_piece: 1 << 16,
    };
    let mut windower = Windower::new(source, spec);
    // The streamed bases of the current record from `at`: token ids and the bases as read.
    let (mut name, mut at) = (String::new(), 0u64);
    let (mut tokens, mut bases): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    while let Some(event) = windower.next_event()? {
        if interrupted.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let piece = match event {
            Event::Piece(piece) => piece,
            Event::SequenceEnd(end) => {
                read.push(InputRecord::from_summary(&end));
                continue;
            }
        };
        let Some(queue) = pending.get_mut(piece.seq.name.as_str()) else {
            continue;
        };
        let end = at + tokens.len() as u64;
        if piece.seq.name != name || piece.start > end {
            name.clone_from(&piece.seq.name);
            at = piece.start;
            tokens.clear();
            bases.clear();
        }
        let end = at + tokens.len() as u64;
        let skip = (end.saturating_sub(piece.start) as usize).min(piece.tokens.len());
        tokens.extend_from_slice(&piece.tokens[skip..]);
        bases.extend_from_slice(&piece.bases[skip..]);
        let end = at + tokens.len() as u64;
        while queue.front().is_some_and(|s| s.end <= end) {
            let Some(span) = queue.pop_front() else {
                break;
            };
            if span.start < at {
                return Err(Error::Invalid(format!(
                    "internal: the reference's bases of {name} from {} were not read",
                    span.start
                )));
            }
            // A span may be costly (a masked window on the CPU): stop between spans, not only between pieces.
            if interrupted.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let range = (span.start - at) as usize..(span.end - at) as usize;
            visit(&name, span.item, &tokens[range.clone()], &bases[range])?;
        }
        // Keep only what the next span of this record needs.
        let keep_from = queue.front().map_or(end, |s| s.start).max(at);
        let drop = ((keep_from - at) as usize).min(tokens.len());
        tokens.drain(..drop);
        bases.drain(..drop);
        at += drop as u64;
    }
    if let Some((name, span)) = pending.iter().find_map(|(n, q)| q.front().map(|s| (n, s))) {
        return Err(Error::Invalid(format!(
            "internal: the reference's bases of {name} up to {} were not read",
            span.end
        )));
    }
    Ok(read)
}
