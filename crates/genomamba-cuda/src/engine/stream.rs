//! Streaming one window through [`Engine::run`](genomamba_model::engine::Engine::run) in chunks: tokens go
//! up through page-locked buffers, each chunk computes on the compute stream while the previous chunk's
//! outputs copy down on the copy stream into the other of two page-locked slots, and the host appends a
//! chunk to the output only once its copy is done.

use genomamba_model::engine::{Output, Want};

use super::CudaEngine;
use crate::buf::Pinned;
use crate::{Error, Result};

/// Host staging for one output slot.
#[derive(Debug)]
pub(super) struct Stage {
    pub(super) hidden: Option<Pinned<f32>>,
    pub(super) probs: Pinned<f32>,
    pub(super) tokens: Pinned<u8>,
}

impl CudaEngine {
    /// Copies `tokens` (at most `ws.rows`) through stage `slot`'s pinned buffer to the device.
    pub(super) fn upload_tokens(&mut self, slot: usize, tokens: &[u8]) -> Result<()> {
        let pinned = &mut self.stages[slot].tokens;
        pinned
            .host()?
            .get_mut(..tokens.len())
            .ok_or_else(|| Error::TooLarge("token chunk".into()))?
            .copy_from_slice(tokens);
        pinned.upload(&self.stream, self.ws.tokens.ptr(), tokens.len())
    }

    /// Enqueues the copies of chunk `slot` (rows `rows`) on the copy stream after the compute stream's work.
    fn enqueue_copies(&mut self, slot: usize, rows: usize, want: Want) -> Result<()> {
        self.ready[slot].record(&self.stream)?;
        self.copy.wait(&self.ready[slot])?;
        let d = self.info.dims.d_model;
        let st = &mut self.stages[slot];
        if want.hidden {
            if st.hidden.is_none() {
                st.hidden = Some(Pinned::new(&self.copy, self.chunk * d)?);
            }
            if let Some(h) = st.hidden.as_mut() {
                h.download(&self.copy, self.ws.hidden[slot].ptr(), rows * d)?;
            }
        }
        if want.base_probs {
            st.probs
                .download(&self.copy, self.ws.probs[slot].ptr(), rows * 4)?;
        }
        self.copied[slot].record(&self.copy)?;
        Ok(())
    }

    /// Waits for chunk `slot`'s copies and appends its rows to `out`.
    fn drain(&mut self, slot: usize, rows: usize, want: Want, out: &mut Output) -> Result<()> {
        let d = self.info.dims.d_model;
        let st = &mut self.stages[slot];
        if want.hidden
            && let Some(h) = st.hidden.as_mut()
        {
            out.hidden.extend_from_slice(&h.host()?[..rows * d]);
        }
        if want.base_probs {
            let p = &st.probs.host()?[..rows * 4];
            out.base_probs
                .extend(p.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
        }
        out.rows += rows;
        Ok(())
    }

    pub(super) fn run_stream(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        self.check_tokens(tokens)?;
        if !fresh && !self.streaming {
            return Err(Error::Unsupported(
                "a batch call reset the carried state; start with fresh = true".into(),
            ));
        }
        out.clear();
        if fresh {
            self.states.reset(&self.stream)?;
            self.streaming = true;
        }
        let mut pending: Option<(usize, usize)> = None;
        for (ci, piece) in tokens.chunks(self.chunk).enumerate() {
            let slot = ci % 2;
            // The device slot is free once the copy of the chunk that last used it finished.
            self.stream.wait(&self.copied[slot])?;
            self.upload_tokens(slot, piece)?;
            self.forward(1, piece.len(), slot, want.base_probs)?;
            self.enqueue_copies(slot, piece.len(), want)?;
            if let Some((s, rows)) = pending.take() {
                self.drain(s, rows, want, out)?;
            }
            pending = Some((slot, piece.len()));
        }
        if let Some((s, rows)) = pending {
            self.drain(s, rows, want, out)?;
        }
        Ok(())
    }

    /// Runs `tokens` like [`genomamba_model::Engine::run`] but returns only mean-pooled hidden rows: bins of `bin` tokens
    /// aligned to the call's first token (the last may be shorter), `(ceil(len / bin), D)` appended to
    /// `pooled`. Only pooled rows cross PCIe. Returns the number of pooled rows.
    pub fn run_pooled(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        bin: usize,
        pooled: &mut Vec<f32>,
    ) -> Result<usize> {
        self.check_tokens(tokens)?;
        let bin = bin.max(1);
        let step = if bin >= self.chunk {
            self.chunk
        } else {
            self.chunk / bin * bin
        };
        if bin > self.chunk {
            return Err(Error::Unsupported(format!(
                "pool bin {bin} larger than the chunk {}",
                self.chunk
            )));
        }
        if fresh {
            self.states.reset(&self.stream)?;
            self.streaming = true;
        } else if !self.streaming {
            return Err(Error::Unsupported(
                "a batch call reset the carried state; start with fresh = true".into(),
            ));
        }
        let d = self.info.dims.d_model;
        let mut total = 0;
        for piece in tokens.chunks(step) {
            self.stream.wait(&self.copied[0])?;
            self.upload_tokens(0, piece)?;
            self.forward(1, piece.len(), 0, false)?;
            let (src, rows) = self.pool(1, piece.len(), 0, bin)?;
            let start = pooled.len();
            pooled.resize(start + rows * d, 0.0);
            // SAFETY: `src` holds `rows * d` f32 written by the pool kernel on this stream; the destination
            // is pageable, so the copy completes before the call returns.
            unsafe {
                cudarc::driver::result::memcpy_dtoh_async(
                    &mut pooled[start..],
                    src,
                    self.stream.cu_stream(),
                )
            }?;
            self.stream.synchronize()?;
            total += rows;
        }
        Ok(total)
    }
}
