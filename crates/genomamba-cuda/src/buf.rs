//! Device and pinned host buffers addressed by raw pointers.
//!
//! The engine runs everything on one stream, so it tracks ordering itself and passes raw device pointers
//! to kernels and cuBLAS; a [`DevBuf`] owns its allocation (freed on drop) and knows its size, so every
//! launch can check its extents on the host first.

use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, PinnedHostSlice, result};

use crate::{Error, Result};

/// A device allocation of `bytes` bytes.
#[derive(Debug)]
pub struct DevBuf {
    _slice: CudaSlice<u8>,
    ptr: u64,
    bytes: usize,
}

impl DevBuf {
    /// Allocates `bytes` (at least 1) uninitialised bytes.
    pub fn alloc(stream: &Arc<CudaStream>, bytes: usize) -> Result<DevBuf> {
        // SAFETY: the memory is only read by kernels after the engine has written it (or zeroed it).
        let slice = unsafe { stream.alloc::<u8>(bytes.max(1)) }?;
        let ptr = {
            let (p, _sync) = slice.device_ptr(stream);
            p
        };
        Ok(DevBuf {
            _slice: slice,
            ptr,
            bytes,
        })
    }

    /// Allocates `bytes` zeroed bytes.
    pub fn zeros(stream: &Arc<CudaStream>, bytes: usize) -> Result<DevBuf> {
        let b = DevBuf::alloc(stream, bytes)?;
        b.zero(stream)?;
        Ok(b)
    }

    /// Uploads f32 values (blocking copy from pageable memory; for weights at load time).
    pub fn from_f32(stream: &Arc<CudaStream>, v: &[f32]) -> Result<DevBuf> {
        let b = DevBuf::alloc(stream, std::mem::size_of_val(v))?;
        // SAFETY: `b` holds exactly `v`'s byte length; pageable-source copies complete before returning.
        unsafe { result::memcpy_htod_async(b.ptr, v, stream.cu_stream()) }?;
        stream.synchronize()?;
        Ok(b)
    }

    /// Uploads values rounded to bf16 (round to nearest even).
    pub fn from_f32_as_bf16(stream: &Arc<CudaStream>, v: &[f32]) -> Result<DevBuf> {
        let h: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let b = DevBuf::alloc(stream, std::mem::size_of_val(h.as_slice()))?;
        // SAFETY: as in `from_f32`.
        unsafe { result::memcpy_htod_async(b.ptr, &h, stream.cu_stream()) }?;
        stream.synchronize()?;
        Ok(b)
    }

    /// Copies `host` bytes to the start of this buffer and waits for the copy.
    pub fn upload_bytes(&self, stream: &Arc<CudaStream>, host: &[u8]) -> Result<()> {
        need(self, host.len())?;
        // SAFETY: the buffer holds at least `host.len()` bytes (checked above); the stream is synchronised
        // before `host` can be dropped or changed.
        unsafe { result::memcpy_htod_async(self.ptr, host, stream.cu_stream()) }?;
        stream.synchronize()?;
        Ok(())
    }

    /// Waits for the stream's work, then copies the first `n` f32 of this buffer into `out` (resized to `n`).
    pub fn download_f32(
        &self,
        stream: &Arc<CudaStream>,
        n: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        need(self, n * 4)?;
        out.clear();
        out.resize(n, 0.0);
        // SAFETY: the buffer holds at least `n` f32 (checked above) and `out` has exactly `n` slots; the
        // stream is synchronised before `out` is used.
        unsafe { result::memcpy_dtoh_async(out.as_mut_slice(), self.ptr, stream.cu_stream()) }?;
        stream.synchronize()?;
        Ok(())
    }

    /// Waits for the stream's work, then copies bytes `range` of this buffer into `out` (resized to fit).
    pub fn download_bytes(
        &self,
        stream: &Arc<CudaStream>,
        range: std::ops::Range<usize>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        need(self, range.end)?;
        out.clear();
        out.resize(range.len(), 0);
        // SAFETY: the range lies within the buffer (checked above) and `out` has exactly its length; the
        // stream is synchronised before `out` is used.
        unsafe {
            result::memcpy_dtoh_async(
                out.as_mut_slice(),
                self.at(range.start)?,
                stream.cu_stream(),
            )
        }?;
        stream.synchronize()?;
        Ok(())
    }

    /// Device address of byte `offset`; Err if it lies outside the buffer.
    pub fn at(&self, offset: usize) -> Result<u64> {
        if offset > self.bytes {
            return Err(Error::TooLarge(format!(
                "offset {offset} outside a buffer of {} bytes",
                self.bytes
            )));
        }
        Ok(self.ptr + offset as u64)
    }

    /// Device address of the start.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Enqueues a fill with zero bytes.
    pub fn zero(&self, stream: &Arc<CudaStream>) -> Result<()> {
        // SAFETY: the range lies within this allocation.
        unsafe { result::memset_d8_async(self.ptr, 0, self.bytes, stream.cu_stream()) }?;
        Ok(())
    }

    /// Enqueues a fill of the first `n` f32 slots with `value` (bit pattern repeated).
    pub fn fill_f32(&self, stream: &Arc<CudaStream>, n: usize, value: f32) -> Result<()> {
        need(self, n * 4)?;
        // SAFETY: `n` f32 words lie within this allocation (checked above).
        unsafe {
            cudarc::driver::sys::cuMemsetD32Async(self.ptr, value.to_bits(), n, stream.cu_stream())
        }
        .result()?;
        Ok(())
    }
}

/// Copies each pair's host f32 values to the start of its device buffer: all copies enqueued on `stream`, then
/// one wait for them all (a saved state of many layers costs one round trip, not one per buffer). Every size
/// is checked before anything is enqueued; the wait happens even when enqueueing fails part way, so no copy
/// outlives the borrowed host slices.
pub fn upload_f32_each(stream: &Arc<CudaStream>, pairs: &[(&[f32], &DevBuf)]) -> Result<()> {
    for (host, buf) in pairs {
        need(buf, std::mem::size_of_val(*host))?;
    }
    enqueue_then_wait(stream, || {
        for (host, buf) in pairs {
            // SAFETY: the buffer holds at least `host`'s bytes (checked above); `host` is borrowed until this
            // function returns, and `enqueue_then_wait` synchronises the stream before it does, on every path.
            unsafe { result::memcpy_htod_async(buf.ptr, host, stream.cu_stream()) }?;
        }
        Ok(())
    })
}

/// Copies the start of each pair's device buffer into its host f32 slice (as many values as the slice holds):
/// all copies enqueued on `stream` after its work so far, then one wait for them all. Every size is checked
/// before anything is enqueued; the wait happens even when enqueueing fails part way, so no copy outlives the
/// borrowed host slices.
pub fn download_f32_each(
    stream: &Arc<CudaStream>,
    pairs: &mut [(&DevBuf, &mut [f32])],
) -> Result<()> {
    for (buf, host) in pairs.iter() {
        need(buf, std::mem::size_of_val(*host))?;
    }
    enqueue_then_wait(stream, || {
        for (buf, host) in pairs.iter_mut() {
            // SAFETY: the buffer holds at least `host`'s bytes (checked above); `host` is borrowed mutably
            // until this function returns, and `enqueue_then_wait` synchronises the stream before it does, on
            // every path, so nothing else reads or writes it while the copy is in flight.
            unsafe { result::memcpy_dtoh_async(host, buf.ptr, stream.cu_stream()) }?;
        }
        Ok(())
    })
}

/// Runs `enqueue` (async copies on `stream` that borrow host memory), then waits for `stream` whether or not it
/// enqueued everything, so no copy outlives the borrow; an enqueue error is reported before a wait error.
fn enqueue_then_wait(
    stream: &Arc<CudaStream>,
    enqueue: impl FnOnce() -> std::result::Result<(), cudarc::driver::DriverError>,
) -> Result<()> {
    let enqueued = enqueue();
    let waited = stream.synchronize();
    enqueued?;
    waited?;
    Ok(())
}

/// Errors unless `buf` holds at least `bytes` bytes.
pub fn need(buf: &DevBuf, bytes: usize) -> Result<()> {
    if buf.bytes < bytes {
        return Err(Error::TooLarge(format!(
            "needs {bytes} bytes, the buffer has {}",
            buf.bytes
        )));
    }
    Ok(())
}

/// A page-locked host buffer plus an event marking the last copy that used it, so the host never touches it
/// while a copy is in flight.
#[derive(Debug)]
pub struct Pinned<T> {
    host: PinnedHostSlice<T>,
    done: cudarc::driver::CudaEvent,
}

impl<T> Drop for Pinned<T> {
    /// Waits for the last copy first: after an error a copy may still be in flight into or out of this
    /// memory, and freeing page-locked memory does not wait for it (cudarc's own event is never recorded,
    /// as the copies here are raw driver calls).
    fn drop(&mut self) {
        let _ = self.done.synchronize();
    }
}

impl<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy> Pinned<T> {
    /// Allocates `len` elements of page-locked memory (not write-combined: the host reads it back).
    pub fn new(stream: &Arc<CudaStream>, len: usize) -> Result<Pinned<T>> {
        let ctx = stream.context();
        // SAFETY: the contents are written (by a copy or by the host) before they are read.
        let host = unsafe { ctx.alloc_pinned_with_flags::<T>(len.max(1), 0) }?;
        // The host waits on this event (the stream waits elsewhere follow the context's blocking-sync policy,
        // set by the engines): blocking sync lets the waiting thread sleep instead of spinning a core.
        let done = ctx.new_event(Some(CUevent_flags::CU_EVENT_BLOCKING_SYNC))?;
        Ok(Pinned { host, done })
    }

    /// Elements it holds.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    /// Waits for the last copy and returns the host view.
    pub fn host(&mut self) -> Result<&mut [T]> {
        self.done.synchronize()?;
        Ok(self.host.as_mut_slice()?)
    }

    /// Enqueues a copy of `n` elements from device address `src` into the start of this buffer.
    pub fn download(&mut self, stream: &Arc<CudaStream>, src: u64, n: usize) -> Result<()> {
        self.done.synchronize()?;
        let host = self.host.as_mut_slice()?;
        let dst = host
            .get_mut(..n)
            .ok_or_else(|| Error::TooLarge(format!("{n} elements into pinned buffer")))?;
        // SAFETY: `src` points to at least `n` elements (callers size device buffers from the same counts) and
        // `dst` is page-locked memory that stays alive and untouched until `done` fires.
        unsafe { result::memcpy_dtoh_async(dst, src, stream.cu_stream()) }?;
        self.done.record(stream)?;
        Ok(())
    }

    /// Enqueues a copy of the first `n` elements of this buffer to device address `dst`.
    pub fn upload(&mut self, stream: &Arc<CudaStream>, dst: u64, n: usize) -> Result<()> {
        let host = self.host.as_slice()?;
        let src = host
            .get(..n)
            .ok_or_else(|| Error::TooLarge(format!("{n} elements from pinned buffer")))?;
        // SAFETY: `dst` has room for `n` elements; `src` stays untouched until `done` fires (`host` waits).
        unsafe { result::memcpy_htod_async(dst, src, stream.cu_stream()) }?;
        self.done.record(stream)?;
        Ok(())
    }
}
