//! Mean pooling of per-position hidden states into embedding rows.

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

    /// Adds the hidden state `row` (length `width`) of position `pos`; returns the bin it closed, if any.
    pub fn add(&mut self, pos: u64, row: &[f32], is_n: bool) -> Option<PooledRow> {
        let closed =
            if self.count > 0 && (pos != self.end || self.bin_of(pos) != self.bin_of(self.start)) {
                self.flush()
            } else {
                None
            };
        if self.count == 0 {
            self.start = pos;
        }
        for (s, &v) in self.sum.iter_mut().zip(row) {
            *s += f64::from(v);
        }
        self.count += 1;
        self.n_count += u64::from(is_n);
        self.end = pos + 1;
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

    /// The width D of the rows.
    pub fn width(&self) -> usize {
        self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_align_to_multiples_and_average() {
        let mut p = Pooler::new(4, 2);
        let mut rows = Vec::new();
        // Positions 2..11: bins [2,4), [4,8), [8,11).
        for pos in 2..11u64 {
            let v = pos as f32;
            rows.extend(p.add(pos, &[v, -v], pos == 5));
        }
        rows.extend(p.flush());
        let spans: Vec<_> = rows.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(spans, vec![(2, 4), (4, 8), (8, 11)]);
        assert_eq!(rows[0].mean, vec![2.5, -2.5]);
        assert_eq!(rows[1].mean, vec![5.5, -5.5]);
        assert_eq!(rows[1].n_frac, 0.25);
        assert_eq!(rows[2].mean, vec![9.0, -9.0]);
    }

    #[test]
    fn a_gap_in_positions_closes_the_bin() {
        let mut p = Pooler::new(u64::MAX, 1);
        assert!(p.add(0, &[1.0], false).is_none());
        let closed = p.add(5, &[3.0], false).expect("gap closes");
        assert_eq!((closed.start, closed.end, closed.mean[0]), (0, 1, 1.0));
        let last = p.flush().expect("open bin");
        assert_eq!((last.start, last.end), (5, 6));
        assert!(p.flush().is_none());
    }
}
