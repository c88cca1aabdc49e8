//! Short sequences side by side on the CPU engines' thread pool ([`crate::Engine::run_batch`]): each thread runs
//! whole reads on its own (a "lane", with buffers of its own) instead of every thread sharing each tile. A read of
//! 150 bases is one small tile, too little work to split across threads without them waiting on each other; on
//! longer sequences the threads already keep busy inside each tile, and a lane per long sequence would leave
//! threads idle while the batch's last ones finish. Outputs do not depend on the thread count (the kernels split
//! tokens or fixed channel blocks, never a sum), so a batch gives the same bits as its sequences one by one.

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::Result;
use crate::engine::{Output, check_segments, sum_segments};

/// Longest sequence, in tokens, that runs in a lane.
pub(crate) const LANE_TOKENS: usize = 4096;

/// Most bytes the lanes' buffers may hold together (a bidirectional window's buffers grow with its length).
pub(crate) const LANES_BYTES: usize = 1 << 30;

/// The work buffers of the lanes, reused across batches: a lane takes one (or makes one) for each sequence
/// and hands it back. Not tied to threads, so a job that rayon nests inside another on one thread gets a
/// buffer of its own.
pub(crate) struct Lanes<L> {
    free: Mutex<Vec<L>>,
}

impl<L> Default for Lanes<L> {
    fn default() -> Self {
        Lanes {
            free: Mutex::new(Vec::new()),
        }
    }
}

/// Which sequences of a batch run side by side on `threads` threads: those of at most [`LANE_TOKENS`] whose lane
/// needs few enough bytes (`bytes(len)`, so that one per thread fits [`LANES_BYTES`]), provided there are at least
/// as many of them as threads (fewer would leave threads idle: they run one at a time with every thread instead).
pub(crate) fn side_by_side(
    seqs: &[&[u8]],
    threads: usize,
    bytes: impl Fn(usize) -> usize,
) -> Vec<bool> {
    let fits: Vec<bool> = seqs
        .iter()
        .map(|s| {
            threads > 1
                && s.len() <= LANE_TOKENS
                && bytes(s.len()).saturating_mul(threads) <= LANES_BYTES
        })
        .collect();
    if fits.iter().filter(|&&f| f).count() < threads {
        return vec![false; seqs.len()];
    }
    fits
}

/// The indices of a batch's sequences that [`side_by_side`] leaves to run one at a time.
pub(crate) fn one_at_a_time(side: &[bool]) -> impl Iterator<Item = usize> + '_ {
    side.iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| i)
}

/// In a lane, [`crate::Engine::run_sums`] of a sequence of `len` tokens: `run` fills `rows` with its hidden rows
/// (`width` wide), which are then summed over `segments` into `sums`.
pub(crate) fn sums_in_lane(
    rows: &mut Output,
    width: usize,
    (len, segments): (usize, &[Range<usize>]),
    sums: &mut Vec<f64>,
    run: impl FnOnce(&mut Output) -> Result<()>,
) -> Result<()> {
    check_segments(segments, len)?;
    run(rows)?;
    sum_segments(&rows.hidden, width, segments, sums);
    Ok(())
}

impl<L: Send> Lanes<L> {
    /// On the current rayon pool, runs `each(lane, i, out)` side by side for every `i` with `side[i]`, `out`
    /// being `outs[i]`; a lane's buffers come from `make` the first time. Stops at the first error.
    pub(crate) fn run<O: Send>(
        &self,
        side: &[bool],
        outs: &mut [O],
        make: impl Fn() -> L + Sync,
        each: impl Fn(&mut L, usize, &mut O) -> Result<()> + Sync,
    ) -> Result<()> {
        outs.par_iter_mut()
            .enumerate()
            .with_max_len(1)
            .filter(|(i, _)| side[*i])
            .try_for_each(|(i, out)| {
                let mut lane = self.take().unwrap_or_else(&make);
                let done = each(&mut lane, i, out);
                self.give(lane);
                done
            })
    }

    fn take(&self) -> Option<L> {
        self.free.lock().map(|mut free| free.pop()).unwrap_or(None)
    }

    fn give(&self, lane: L) {
        if let Ok(mut free) = self.free.lock() {
            free.push(lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enough_sequences_that_fit_go_side_by_side() {
        let (short, long, longest) = (vec![7u8; 10], vec![7u8; 1000], vec![7u8; LANE_TOKENS + 1]);
        let seqs = [&short[..], &long[..], &short[..]];
        // Too long for a lane, whatever its bytes.
        assert_eq!(
            side_by_side(&[&longest[..], &short[..], &short[..]], 2, |_| 0),
            [false, true, true]
        );
        // A lane of 10 tokens fits, one of 1000 does not.
        let bytes = |len: usize| len * (LANES_BYTES / 1000);
        assert_eq!(side_by_side(&seqs, 2, bytes), [true, false, true]);
        // Three threads, two that fit: all one at a time.
        assert_eq!(side_by_side(&seqs, 3, bytes), [false; 3]);
        // One thread: nothing to gain.
        assert_eq!(side_by_side(&seqs, 1, |_| 0), [false; 3]);
        assert_eq!(side_by_side(&seqs, 2, |_| 0), [true; 3]);
    }
}
