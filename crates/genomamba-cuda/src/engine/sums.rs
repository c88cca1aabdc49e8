//! Sums of hidden rows over row ranges on the GPU (kernels/pool.cu), so mean pooling moves only the sums
//! across PCIe: a range's rows are cut into tiles, `sum_tiles` sums each tile and `sum_tile_runs` each
//! range's run of tiles, both in f64.

use std::ops::Range;

use std::sync::Arc;

use cudarc::driver::CudaStream;

use super::CudaEngine;
use super::launch::{THREADS, cfg, i32_of, launch};
use super::mixer::Gpu;
use crate::buf::{DevBuf, Pinned, need};
use crate::scan_plan::grid_1d;
use crate::{Error, Result};

/// Fewest rows a tile holds (unless its range is shorter).
const MIN_TILE: usize = 32;
/// Most tiles one range is cut into, so `sum_tile_runs` stays short.
const MAX_TILES: usize = 512;

/// The tiles of some row ranges: `tiles` `(ntiles, 2)` `[row0, row1)`, and `first` `(nranges + 1,)`, range
/// `j` owning tiles `first[j]..first[j + 1]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TilePlan {
    pub(crate) tiles: Vec<i32>,
    pub(crate) first: Vec<i32>,
}

impl TilePlan {
    /// Cuts each of `ranges` (rows of one launch) into tiles of at least [`MIN_TILE`] rows, at most
    /// [`MAX_TILES`] tiles a range.
    pub(crate) fn new(ranges: &[Range<usize>]) -> Result<TilePlan> {
        let mut plan = TilePlan {
            tiles: Vec::new(),
            first: vec![0],
        };
        for r in ranges {
            let tile = r.len().div_ceil(MAX_TILES).max(MIN_TILE);
            let mut row = r.start;
            while row < r.end {
                let end = (row + tile).min(r.end);
                plan.tiles.push(i32_of(row, "tile start")?);
                plan.tiles.push(i32_of(end, "tile end")?);
                row = end;
            }
            plan.first.push(i32_of(plan.tiles.len() / 2, "tiles")?);
        }
        Ok(plan)
    }

    fn ntiles(&self) -> usize {
        self.tiles.len() / 2
    }

    fn nranges(&self) -> usize {
        self.first.len() - 1
    }
}

/// Device and host buffers of the sums, grown on demand: the tile plan (staged per slot through page-locked
/// memory, so its upload is truly asynchronous), the tile sums, and two slots of range sums (one may be in a
/// copy while the next chunk sums) with their page-locked host copies.
#[derive(Debug, Default)]
pub(super) struct SumBufs {
    tiles: Option<DevBuf>,
    first: Option<DevBuf>,
    partial: Option<DevBuf>,
    out: [Option<DevBuf>; 2],
    host: [Option<Pinned<f64>>; 2],
    stage_tiles: [Option<Pinned<i32>>; 2],
    stage_first: [Option<Pinned<i32>>; 2],
}

/// Enqueues a copy of `src` to device address `dst` through the page-locked buffer `stage` (grown when
/// smaller), once `stage`'s previous upload has finished.
fn staged_upload(
    stream: &Arc<CudaStream>,
    stage: &mut Option<Pinned<i32>>,
    src: &[i32],
    dst: u64,
) -> Result<()> {
    if stage.as_ref().is_none_or(|p| p.len() < src.len()) {
        *stage = Some(Pinned::new(stream, src.len().next_power_of_two())?);
    }
    let p = stage
        .as_mut()
        .ok_or_else(|| Error::TooLarge("staging buffer".into()))?;
    p.host()?[..src.len()].copy_from_slice(src);
    p.upload(stream, dst, src.len())
}

/// `buf`, replaced by one of at least `bytes` bytes when it is smaller (callers synchronise first).
fn grow<'a>(
    stream: &Arc<CudaStream>,
    buf: &'a mut Option<DevBuf>,
    bytes: usize,
) -> Result<&'a DevBuf> {
    if !fits(buf, bytes) {
        *buf = Some(DevBuf::alloc(stream, bytes.next_power_of_two())?);
    }
    buf.as_ref()
        .ok_or_else(|| Error::TooLarge("sum buffer".into()))
}

fn fits(buf: &Option<DevBuf>, bytes: usize) -> bool {
    buf.as_ref().is_some_and(|b| need(b, bytes).is_ok())
}

impl SumBufs {
    /// Enqueues on `gpu`'s stream the sums over `ranges` of the rows of `hidden` (`(rows, width)` f32) into
    /// range-sum slot `slot`, `(ranges.len(), width)` f64; returns its device address. `busy`: every stream
    /// that may still use these buffers, synchronised before one is replaced.
    pub(super) fn enqueue(
        &mut self,
        gpu: &Gpu<'_>,
        busy: &[&Arc<CudaStream>],
        hidden: (u64, usize, usize),
        slot: usize,
        ranges: &[Range<usize>],
    ) -> Result<u64> {
        let (hidden, rows, width) = hidden;
        if ranges.iter().any(|r| r.start > r.end || r.end > rows) {
            return Err(Error::TooLarge("sum range past the hidden rows".into()));
        }
        let plan = TilePlan::new(ranges)?;
        let (ntiles, nranges) = (plan.ntiles(), plan.nranges());
        let sizes = [
            8 * ntiles,
            4 * (nranges + 1),
            8 * ntiles * width,
            8 * nranges * width,
        ];
        let bufs = [&self.tiles, &self.first, &self.partial, &self.out[slot]];
        if bufs.iter().zip(sizes).any(|(b, n)| !fits(b, n)) {
            // Buffers in use by queued work are about to be replaced.
            for s in busy {
                s.synchronize()?;
            }
        }
        let stream = gpu.stream;
        let tiles = grow(stream, &mut self.tiles, sizes[0])?.ptr();
        let first = grow(stream, &mut self.first, sizes[1])?.ptr();
        let partial = grow(stream, &mut self.partial, sizes[2])?.ptr();
        let out = grow(stream, &mut self.out[slot], sizes[3])?.ptr();
        // `tiles` and `first` hold the plan (grown above); the copies run in stream order before the kernels.
        if ntiles > 0 {
            staged_upload(stream, &mut self.stage_tiles[slot], &plan.tiles, tiles)?;
        }
        staged_upload(stream, &mut self.stage_first[slot], &plan.first, first)?;
        let (w_i, nt_i, nr_i) = (
            i32_of(width, "width")?,
            i32_of(ntiles, "tiles")?,
            i32_of(nranges, "ranges")?,
        );
        if ntiles > 0 {
            launch!(
                gpu,
                &gpu.kernels.sum_tiles,
                cfg((grid_1d(ntiles * width, THREADS), 1, 1), THREADS),
                &hidden,
                &tiles,
                &partial,
                &nt_i,
                &w_i
            );
        }
        if nranges > 0 {
            launch!(
                gpu,
                &gpu.kernels.sum_tile_runs,
                cfg((grid_1d(nranges * width, THREADS), 1, 1), THREADS),
                &partial,
                &first,
                &out,
                &nr_i,
                &w_i
            );
        }
        Ok(out)
    }

    /// Enqueues on `stream` the download of `n` f64 from `src` into slot `slot`'s page-locked host buffer
    /// (grown when smaller; its previous copy is finished by then).
    pub(super) fn download(
        &mut self,
        stream: &Arc<CudaStream>,
        slot: usize,
        src: u64,
        n: usize,
    ) -> Result<()> {
        let host = &mut self.host[slot];
        if host.as_ref().is_none_or(|h| h.len() < n) {
            *host = Some(Pinned::new(stream, n.next_power_of_two())?);
        }
        if let Some(h) = host.as_mut() {
            h.download(stream, src, n)?;
        }
        Ok(())
    }

    /// Waits for slot `slot`'s download and returns its first `n` sums.
    pub(super) fn host(&mut self, slot: usize, n: usize) -> Result<&[f64]> {
        match self.host[slot].as_mut() {
            Some(h) => Ok(&h.host()?[..n]),
            None if n == 0 => Ok(&[]),
            None => Err(Error::TooLarge("sums never downloaded".into())),
        }
    }
}

impl CudaEngine {
    /// Enqueues the sums of `ws.hidden[slot]`'s rows over `ranges` (rows of the last forward pass) into
    /// range-sum slot `slot`, `(ranges.len(), D)` f64; returns its device address.
    pub(super) fn enqueue_sums(&mut self, slot: usize, ranges: &[Range<usize>]) -> Result<u64> {
        let hidden = (
            self.ws.hidden[slot].ptr(),
            self.ws.rows,
            self.info.dims.d_model,
        );
        let mut bufs = std::mem::take(&mut self.sums);
        let src = bufs.enqueue(
            &self.gpu(),
            &[&self.stream, &self.copy],
            hidden,
            slot,
            ranges,
        );
        self.sums = bufs;
        src
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tile_plan() {
        // 0..70 -> 32 + 32 + 6; an empty range owns no tiles; 100..105 one short tile.
        let p = TilePlan::new(&[0..70, 80..80, 100..105]).expect("plan");
        assert_eq!(p.tiles, vec![0, 32, 32, 64, 64, 70, 100, 105]);
        assert_eq!(p.first, vec![0, 3, 3, 4]);
        // A million rows: tiles of 1,954 rows, 512 of them.
        let p = TilePlan::new(std::slice::from_ref(&(0..1_000_000))).expect("plan");
        assert_eq!(p.ntiles(), 512);
        assert_eq!(p.tiles[1], 1954);
        assert_eq!(p.tiles[p.tiles.len() - 1], 1_000_000);
    }
}
