//! Mean pooling of per-position hidden states into embedding rows.

use std::ops::Range;

/// One finished embedding row: the mean hidden state over `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledRow {
    /// First position, 0-based, in the record's coordinates.
    pub start: u64,
    /// One past the last position.
    pub end: u64,
    /// Fraction of positions in the bin whose base is N.
    pub n_frac: f32,
    /// Mean hidden state, width D.
    pub mean: Vec<f32>,
}

/// Accumulates positions in coordinate order and closes a bin when a position falls outside it.
///
/// Bins of `bin` bases are aligned to multiples of `bin` in the record's coordinates, so a region that starts
/// on a multiple of `bin` gives the same rows as the whole record; `bin == u64::MAX` never closes a bin by
/// position (window and record pooling close it explicitly with [`Pooler::flush`]).
#[derive(Debug)]
pub struct Pooler {
    bin: u64,
    width: usize,
    sum: Vec<f64>,
    count: u64,
    n_count: u64,
    start: u64,
    end: u64,
}

impl Pooler {
    /// A pooler for rows of `width` values and bins of `bin` bases.
    pub fn new(bin: u64, width: usize) -> Self {
        Self {
            bin: bin.max(1),
            width,
            sum: vec![0.0; width],
            count: 0,
            n_count: 0,
            start: 0,
            end: 0,
        }
    }

    /// Adds `rows` consecutive positions from `start`, all in one bin, whose hidden states sum to `sum`
    /// (length `width`), `n_count` of them N; returns the bin this closed, if any (a bin closes when positions
    /// leave it or skip ahead).
    pub fn add_sum(
        &mut self,
        start: u64,
        rows: u64,
        sum: &[f64],
        n_count: u64,
    ) -> Option<PooledRow> {
        if rows == 0 {
            return None;
        }
        debug_assert_eq!(
            self.bin_of(start),
            self.bin_of(start + rows - 1),
            "a segment spans bins"
        );
        let closed = if self.count > 0
            && (start != self.end || self.bin_of(start) != self.bin_of(self.start))
        {
            self.flush()
        } else {
            None
        };
        if self.count == 0 {
            self.start = start;
        }
        for (s, &v) in self.sum.iter_mut().zip(sum) {
            *s += v;
        }
        self.count += rows;
        self.n_count += n_count;
        self.end = start + rows;
        closed
    }

    /// Closes the open bin, if any positions are in it.
    pub fn flush(&mut self) -> Option<PooledRow> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let mean = self.sum.iter().map(|&s| (s / n) as f32).collect();
        let row = PooledRow {
            start: self.start,
            end: self.end,
            n_frac: (self.n_count as f64 / n) as f32,
            mean,
        };
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.count = 0;
        self.n_count = 0;
        Some(row)
    }

    fn bin_of(&self, pos: u64) -> u64 {
        pos / self.bin
    }

    /// Bases per bin (`u64::MAX`: closed only by [`Pooler::flush`] or a gap).
    pub fn bin(&self) -> u64 {
        self.bin
    }

    /// The width D of the rows.
    pub fn width(&self) -> usize {
        self.width
    }
}

/// Sets `out` to the kept rows `keep` of a piece whose row 0 is record position `start`, cut where a bin of
/// `bin` bases starts (bins align to multiples of `bin` in record coordinates): the row ranges whose hidden
/// sums are the piece's share of each bin, in order. `bin == u64::MAX`: one range.
pub fn bin_segments(start: u64, keep: Range<usize>, bin: u64, out: &mut Vec<Range<usize>>) {
    out.clear();
    let bin = bin.max(1);
    let mut row = keep.start;
    while row < keep.end {
        let pos = start + row as u64;
        let to_next_bin = bin - pos % bin;
        let end =
            usize::try_from(to_next_bin).map_or(keep.end, |n| row.saturating_add(n).min(keep.end));
        out.push(row..end);
        row = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds positions `from..to` with hidden state `[pos, -pos]` each (N at `n_at`) as the segments
    /// `bin_segments` cuts, rows = positions.
    fn add_range(p: &mut Pooler, from: u64, to: u64, bin: u64, n_at: u64) -> Vec<PooledRow> {
        let mut segments = Vec::new();
        bin_segments(from, 0..(to - from) as usize, bin, &mut segments);
        let mut rows = Vec::new();
        for seg in segments {
            let (a, b) = (from + seg.start as u64, from + seg.end as u64);
            let s: f64 = (a..b).map(|x| x as f64).sum();
            let n = u64::from((a..b).contains(&n_at));
            rows.extend(p.add_sum(a, b - a, &[s, -s], n));
        }
        rows
    }

    #[test]
    fn bins_align_to_multiples_and_average() {
        let mut p = Pooler::new(4, 2);
        // Positions 2..11 in two pieces, 2..6 and 6..11: bins [2,4), [4,8), [8,11).
        let mut rows = add_range(&mut p, 2, 6, 4, 5);
        rows.extend(add_range(&mut p, 6, 11, 4, 5));
        rows.extend(p.flush());
        let spans: Vec<_> = rows.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(spans, vec![(2, 4), (4, 8), (8, 11)]);
        assert_eq!(rows[0].mean, vec![2.5, -2.5]);
        assert_eq!(rows[1].mean, vec![5.5, -5.5]);
        assert_eq!(rows[1].n_frac, 0.25);
        assert_eq!(rows[2].mean, vec![9.0, -9.0]);
    }

    #[test]
    fn segments_cut_at_bin_starts_in_record_coordinates() {
        let mut s = Vec::new();
        // Row 0 is position 98; keep rows 1..9 = positions 99..107; bins of 4 start at 100 and 104.
        bin_segments(98, 1..9, 4, &mut s);
        assert_eq!(s, vec![1..2, 2..6, 6..9]);
        bin_segments(98, 1..9, u64::MAX, &mut s);
        assert_eq!(s, vec![1..9]);
        bin_segments(0, 0..3, 1, &mut s);
        assert_eq!(s, vec![0..1, 1..2, 2..3]);
        bin_segments(0, 5..5, 4, &mut s);
        assert!(s.is_empty());
    }

    #[test]
    fn a_gap_in_positions_closes_the_bin() {
        let mut p = Pooler::new(u64::MAX, 1);
        assert!(p.add_sum(0, 1, &[1.0], 0).is_none());
        let closed = p.add_sum(5, 2, &[6.0], 1).expect("gap closes");
        assert_eq!((closed.start, closed.end, closed.mean[0]), (0, 1, 1.0));
        let last = p.flush().expect("open bin");
        assert_eq!(
            (last.start, last.end, last.mean[0], last.n_frac),
            (5, 7, 3.0, 0.5)
        );
        assert!(p.flush().is_none());
    }
}
