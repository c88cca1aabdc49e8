//! Streaming one window through [`Engine::run`](genomamba_model::engine::Engine::run) in chunks: tokens go
//! up through page-locked buffers, each chunk computes on the compute stream while the previous chunk's
//! results (hidden rows and probabilities, or pooling sums) copy down on the copy stream into the other of
//! two page-locked slots, and the host takes a chunk's results up only once its copy is done.

use std::ops::Range;

use genomamba_model::engine::{Output, Want, check_segments};

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

/// What a streamed run does with each chunk after its forward pass.
trait ChunkSink {
    /// Whether the chunks need the four-base head.
    fn probs(&self) -> bool;
    /// Enqueues chunk `slot`'s work after its forward pass (rows `rows` of the call): any kernels on the
    /// compute stream, then, between [`CudaEngine::begin_copy`] and [`CudaEngine::end_copy`], its copies.
    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, rows: Range<usize>) -> Result<()>;
    /// Takes up chunk `slot`'s results (rows `rows` of the call) on the host, waiting for its copies.
    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, rows: Range<usize>) -> Result<()>;
}

/// Hidden rows and probabilities appended to an [`Output`].
struct HostRows<'a> {
    want: Want,
    out: &'a mut Output,
}

impl ChunkSink for HostRows<'_> {
    fn probs(&self) -> bool {
        self.want.base_probs
    }

    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, rows: Range<usize>) -> Result<()> {
        eng.begin_copy(slot)?;
        let n = rows.len();
        let d = eng.info.dims.d_model;
        let st = &mut eng.stages[slot];
        if self.want.hidden {
            if st.hidden.is_none() {
                st.hidden = Some(Pinned::new(&eng.copy, eng.chunk * d)?);
            }
            if let Some(h) = st.hidden.as_mut() {
                h.download(&eng.copy, eng.ws.hidden[slot].ptr(), n * d)?;
            }
        }
        if self.want.base_probs {
            st.probs
                .download(&eng.copy, eng.ws.probs[slot].ptr(), n * 4)?;
        }
        eng.end_copy(slot)
    }

    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, rows: Range<usize>) -> Result<()> {
        let n = rows.len();
        let d = eng.info.dims.d_model;
        let st = &mut eng.stages[slot];
        if self.want.hidden
            && let Some(h) = st.hidden.as_mut()
        {
            self.out.hidden.extend_from_slice(&h.host()?[..n * d]);
        }
        if self.want.base_probs {
            let p = &st.probs.host()?[..n * 4];
            self.out
                .base_probs
                .extend(p.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
        }
        self.out.rows += n;
        Ok(())
    }
}

/// Sums of hidden rows over segments of the call, added up chunk by chunk on the host in f64.
struct SegmentSums<'a> {
    segments: &'a [Range<usize>],
    /// `(segments.len(), D)` f64.
    sums: &'a mut [f64],
    /// Per slot, the segments its chunk summed, in order.
    summed: [Vec<usize>; 2],
}

impl ChunkSink for SegmentSums<'_> {
    fn probs(&self) -> bool {
        false
    }

    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, rows: Range<usize>) -> Result<()> {
        let summed = &mut self.summed[slot];
        summed.clear();
        let mut local = Vec::new();
        for (k, s) in self.segments.iter().enumerate() {
            let (a, b) = (s.start.max(rows.start), s.end.min(rows.end));
            if a < b {
                summed.push(k);
                local.push(a - rows.start..b - rows.start);
            }
        }
        let src = eng.enqueue_sums(slot, &local)?;
        eng.begin_copy(slot)?;
        let n = local.len() * eng.info.dims.d_model;
        eng.sums.download(&eng.copy, slot, src, n)?;
        eng.end_copy(slot)
    }

    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, _rows: Range<usize>) -> Result<()> {
        let d = eng.info.dims.d_model;
        let summed = &self.summed[slot];
        let part = eng.sums.host(slot, summed.len() * d)?;
        for (&k, p) in summed.iter().zip(part.chunks_exact(d.max(1))) {
            for (s, v) in self.sums[k * d..(k + 1) * d].iter_mut().zip(p) {
                *s += v;
            }
        }
        Ok(())
    }
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

    /// Orders the copy stream after the compute stream's work so far (chunk `slot`'s results are ready).
    fn begin_copy(&mut self, slot: usize) -> Result<()> {
        self.ready[slot].record(&self.stream)?;
        self.copy.wait(&self.ready[slot])?;
        Ok(())
    }

    /// Marks the end of chunk `slot`'s copies: the compute stream may reuse the slot after this.
    fn end_copy(&mut self, slot: usize) -> Result<()> {
        self.copied[slot].record(&self.copy)?;
        Ok(())
    }

    /// Runs `tokens` in chunks through `sink`, from a fresh state or continuing the carried one.
    fn stream_chunks(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        sink: &mut impl ChunkSink,
    ) -> Result<()> {
        self.check_tokens(tokens)?;
        if fresh {
            self.states.reset(&self.stream)?;
            self.streaming = true;
        } else if !self.streaming {
            return Err(Error::Unsupported(
                "a batch call reset the carried state; start with fresh = true".into(),
            ));
        }
        let mut pending: Option<(usize, Range<usize>)> = None;
        for (ci, piece) in tokens.chunks(self.chunk).enumerate() {
            let slot = ci % 2;
            let rows = ci * self.chunk..ci * self.chunk + piece.len();
            // The device slot is free once the copy of the chunk that last used it finished.
            self.stream.wait(&self.copied[slot])?;
            self.upload_tokens(slot, piece)?;
            self.forward(1, piece.len(), slot, sink.probs())?;
            sink.enqueue(self, slot, rows.clone())?;
            if let Some((s, r)) = pending.take() {
                sink.drain(self, s, r)?;
            }
            pending = Some((slot, rows));
        }
        if let Some((s, r)) = pending {
            sink.drain(self, s, r)?;
        }
        Ok(())
    }

    pub(super) fn run_stream(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        want: Want,
        out: &mut Output,
    ) -> Result<()> {
        out.clear();
        self.stream_chunks(tokens, fresh, &mut HostRows { want, out })
    }

    /// Runs `tokens` like [`genomamba_model::Engine::run`] and sets `sums` to the sums of the final hidden
    /// rows over each of `segments` (rows of this call): `(segments.len(), D)` f64. The rows are summed on the
    /// GPU; only the sums cross PCIe.
    pub fn run_sums(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        segments: &[Range<usize>],
        sums: &mut Vec<f64>,
    ) -> Result<()> {
        check_segments(segments, tokens.len())?;
        sums.clear();
        sums.resize(segments.len() * self.info.dims.d_model, 0.0);
        let mut sink = SegmentSums {
            segments,
            sums,
            summed: [Vec::new(), Vec::new()],
        };
        self.stream_chunks(tokens, fresh, &mut sink)
    }

    /// Runs `tokens` like [`genomamba_model::Engine::run`] but returns only mean-pooled hidden rows: bins of
    /// `bin` tokens aligned to the call's first token (the last may be shorter), `(ceil(len / bin), D)`
    /// appended to `pooled`. Only the bins' sums cross PCIe. Returns the number of pooled rows.
    pub fn run_pooled(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        bin: usize,
        pooled: &mut Vec<f32>,
    ) -> Result<usize> {
        let bin = bin.max(1);
        let bins: Vec<Range<usize>> = (0..tokens.len())
            .step_by(bin)
            .map(|a| a..(a + bin).min(tokens.len()))
            .collect();
        let mut sums = Vec::new();
        self.run_sums(tokens, fresh, &bins, &mut sums)?;
        let d = self.info.dims.d_model.max(1);
        for (b, s) in bins.iter().zip(sums.chunks_exact(d)) {
            let n = b.len() as f64;
            pooled.extend(s.iter().map(|&v| (v / n) as f32));
        }
        Ok(bins.len())
    }
}
