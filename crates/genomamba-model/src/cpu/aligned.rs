//! Work buffers whose start is aligned to a cache line.

use std::ops::{Deref, DerefMut};

/// One 64-byte cache line of f32.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A growable f32 buffer that starts on a 64-byte boundary, so 16 floats at any offset that is a multiple of
/// 16 are one cache line. (A large `Vec<f32>` from the system allocator typically starts 16 bytes into a
/// page: every 16-float vector of a tile row would then straddle two lines, which halves the scan's and the
/// conv's load bandwidth.)
#[derive(Debug, Default)]
pub struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// Makes the buffer `len` floats long, keeping the first `min(old, new)` values. Floats past that are
    /// zero the first time the buffer reaches them and otherwise whatever an earlier, longer use left there
    /// (callers overwrite before reading); capacity is never given back, so a buffer sized once for the
    /// largest tile is not reallocated.
    pub fn fit(&mut self, len: usize) {
        let lines = len.div_ceil(16);
        if self.lines.len() < lines {
            self.lines.resize(lines, Line::default());
        }
        self.len = len;
    }
}

impl Deref for AlignedBuf {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]` with size 64, so the lines are `16 * lines.len()`
        // contiguous, initialised f32, and `len <= 16 * lines.len()` (`fit`).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_aligned_and_kept_across_fits() {
        let mut b = AlignedBuf::default();
        b.fit(37);
        assert_eq!(b.len(), 37);
        assert!(b.iter().all(|&v| v == 0.0));
        b.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
        b.fit(5000);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        assert_eq!((b[36], b[37], b[4999]), (36.0, 0.0, 0.0));
        b.fit(3);
        assert_eq!(&b[..], &[0.0, 1.0, 2.0]);
    }
}
