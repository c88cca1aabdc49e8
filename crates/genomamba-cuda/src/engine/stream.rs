//! Launch steps through two slots: a step's tokens go up through a page-locked buffer, it computes on the
//! compute stream, and its results (hidden rows and probabilities, or pooling sums) copy down on the copy
//! stream into the slot's page-locked buffers while the next step computes; the host takes a step's results up
//! only once its copy is done. One window streamed in chunks ([`Engine::run`](genomamba_model::Engine::run),
//! its state carried) and groups of fresh windows side by side (batches) both run this way.

use std::ops::Range;

use genomamba_model::engine::{Output, Want, check_segments};

use super::CudaEngine;
use crate::buf::Pinned;
use crate::{Error, Result};

/// Token id padding shorter windows of a step at their end (causal: padding never affects earlier rows).
pub(super) const PAD: u8 = 0;

/// Host staging for one slot.
#[derive(Debug)]
pub(super) struct Stage {
    pub(super) hidden: Option<Pinned<f32>>,
    pub(super) probs: Pinned<f32>,
    pub(super) tokens: Pinned<u8>,
}

/// One launch step: `members.len()` windows side by side, window `b` being sequence `members[b]`, rows
/// `t0..t0 + t` of each (launch rows `b * t..(b + 1) * t`; rows past a sequence's end are padding).
#[derive(Clone, Copy, Debug)]
pub(super) struct Step<'a> {
    pub(super) members: &'a [usize],
    pub(super) t0: usize,
    pub(super) t: usize,
    /// Whether the windows start here from a fresh state.
    pub(super) reset: bool,
}

impl Step<'_> {
    /// Rows of sequence `len` long in this step.
    fn rows_of(&self, len: usize) -> usize {
        self.t.min(len.saturating_sub(self.t0))
    }
}

/// What the steps do after their forward pass.
pub(super) trait StepSink {
    /// Whether the steps need the four-base head.
    fn probs(&self) -> bool;
    /// Enqueues step `step`'s work in slot `slot` after its forward pass: any kernels on the compute stream,
    /// then, between [`CudaEngine::begin_copy`] and [`CudaEngine::end_copy`], its copies.
    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, step: &Step<'_>) -> Result<()>;
    /// Takes up step `step`'s results from slot `slot` on the host, waiting for its copies.
    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, step: &Step<'_>) -> Result<()>;
}

/// Hidden rows and probabilities appended to one [`Output`] per sequence.
pub(super) struct HostRows<'a> {
    pub(super) want: Want,
    pub(super) lens: &'a [usize],
    pub(super) outs: &'a mut [Output],
}

impl StepSink for HostRows<'_> {
    fn probs(&self) -> bool {
        self.want.base_probs
    }

    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, step: &Step<'_>) -> Result<()> {
        eng.begin_copy(slot)?;
        let rows = step.members.len() * step.t;
        let d = eng.info.dims.d_model;
        let st = &mut eng.stages[slot];
        if self.want.hidden {
            if st.hidden.is_none() {
                st.hidden = Some(Pinned::new(&eng.copy, eng.chunk * d)?);
            }
            if let Some(h) = st.hidden.as_mut() {
                h.download(&eng.copy, eng.ws.hidden[slot].ptr(), rows * d)?;
            }
        }
        if self.want.base_probs {
            st.probs
                .download(&eng.copy, eng.ws.probs[slot].ptr(), rows * 4)?;
        }
        eng.end_copy(slot)
    }

    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, step: &Step<'_>) -> Result<()> {
        let d = eng.info.dims.d_model;
        let st = &mut eng.stages[slot];
        let t = step.t;
        for (b, &i) in step.members.iter().enumerate() {
            let n = step.rows_of(self.lens[i]);
            let out = &mut self.outs[i];
            if self.want.hidden
                && let Some(h) = st.hidden.as_mut()
            {
                out.hidden
                    .extend_from_slice(&h.host()?[b * t * d..(b * t + n) * d]);
            }
            if self.want.base_probs {
                let p = &st.probs.host()?[b * t * 4..(b * t + n) * 4];
                out.base_probs
                    .extend(p.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
            }
            out.rows += n;
        }
        Ok(())
    }
}

/// Sums of hidden rows over segments of each sequence, added up step by step on the host in f64.
pub(super) struct SegmentSums<'a> {
    pub(super) segments: &'a [&'a [Range<usize>]],
    /// Per sequence, `(segments[i].len(), D)` f64, zeroed before the first step.
    pub(super) sums: &'a mut [Vec<f64>],
    /// Per slot, the (sequence, segment) of each range its step summed, in order.
    pub(super) owners: [Vec<(usize, usize)>; 2],
}

impl<'a> SegmentSums<'a> {
    /// Sums over `segments[i]` of sequence `i` into `sums[i]`, which it resizes and zeroes.
    pub(super) fn new(
        segments: &'a [&'a [Range<usize>]],
        sums: &'a mut [Vec<f64>],
        d: usize,
    ) -> Self {
        for (s, segs) in sums.iter_mut().zip(segments) {
            s.clear();
            s.resize(segs.len() * d, 0.0);
        }
        SegmentSums {
            segments,
            sums,
            owners: [Vec::new(), Vec::new()],
        }
    }
}

impl StepSink for SegmentSums<'_> {
    fn probs(&self) -> bool {
        false
    }

    fn enqueue(&mut self, eng: &mut CudaEngine, slot: usize, step: &Step<'_>) -> Result<()> {
        let owners = &mut self.owners[slot];
        owners.clear();
        let (t0, t) = (step.t0, step.t);
        let mut ranges = Vec::new();
        for (b, &i) in step.members.iter().enumerate() {
            for (k, s) in self.segments[i].iter().enumerate() {
                let (lo, hi) = (s.start.max(t0), s.end.min(t0 + t));
                if lo < hi {
                    ranges.push(b * t + lo - t0..b * t + hi - t0);
                    owners.push((i, k));
                }
            }
        }
        let src = eng.enqueue_sums(slot, &ranges)?;
        eng.begin_copy(slot)?;
        let n = ranges.len() * eng.info.dims.d_model;
        if n > 0 {
            eng.sums.download(&eng.copy, slot, src, n)?;
        }
        eng.end_copy(slot)
    }

    fn drain(&mut self, eng: &mut CudaEngine, slot: usize, _step: &Step<'_>) -> Result<()> {
        let d = eng.info.dims.d_model;
        let owners = &self.owners[slot];
        let part = eng.sums.host(slot, owners.len() * d)?;
        for (&(i, k), p) in owners.iter().zip(part.chunks_exact(d.max(1))) {
            for (s, v) in self.sums[i][k * d..(k + 1) * d].iter_mut().zip(p) {
                *s += v;
            }
        }
        Ok(())
    }
}

impl CudaEngine {
    /// Copies step `step`'s tokens of `seqs` (padded with [`PAD`]) through slot `slot`'s page-locked buffer
    /// to the device.
    pub(super) fn upload_step(
        &mut self,
        slot: usize,
        seqs: &[&[u8]],
        step: &Step<'_>,
    ) -> Result<()> {
        let (t0, t) = (step.t0, step.t);
        let rows = step.members.len() * t;
        let pinned = &mut self.stages[slot].tokens;
        let host = pinned
            .host()?
            .get_mut(..rows)
            .ok_or_else(|| Error::TooLarge("token chunk".into()))?;
        for (b, &i) in step.members.iter().enumerate() {
            let n = step.rows_of(seqs[i].len());
            let row = &mut host[b * t..(b + 1) * t];
            if n > 0 {
                row[..n].copy_from_slice(&seqs[i][t0..t0 + n]);
            }
            row[n..].fill(PAD);
        }
        pinned.upload(&self.stream, self.ws.tokens.ptr(), rows)
    }

    /// Orders the copy stream after the compute stream's work so far (slot `slot`'s results are ready).
    fn begin_copy(&mut self, slot: usize) -> Result<()> {
        self.ready[slot].record(&self.stream)?;
        self.copy.wait(&self.ready[slot])?;
        Ok(())
    }

    /// Marks the end of slot `slot`'s copies: the compute stream may reuse the slot after this.
    fn end_copy(&mut self, slot: usize) -> Result<()> {
        self.copied[slot].record(&self.copy)?;
        Ok(())
    }

    /// Runs `steps` over `seqs` through `sink`, alternating slots: a step computes while the previous one's
    /// results copy down and the host takes up the one before. On an error both streams are drained before it
    /// returns, so no copy is left in flight (or a slot marked free while one is).
    pub(super) fn run_steps<'s>(
        &mut self,
        seqs: &[&[u8]],
        steps: impl IntoIterator<Item = Step<'s>>,
        sink: &mut impl StepSink,
    ) -> Result<()> {
        let run = self.run_steps_without_drain(seqs, steps, sink);
        if run.is_err() {
            let _ = self.synchronize();
        }
        run
    }

    /// [`Self::run_steps`] without the drain on error.
    fn run_steps_without_drain<'s>(
        &mut self,
        seqs: &[&[u8]],
        steps: impl IntoIterator<Item = Step<'s>>,
        sink: &mut impl StepSink,
    ) -> Result<()> {
        let mut pending: Option<(usize, Step<'s>)> = None;
        for (k, step) in steps.into_iter().enumerate() {
            let slot = k % 2;
            // The device slot is free once the copy of the step that last used it finished.
            self.stream.wait(&self.copied[slot])?;
            if step.reset {
                self.states.reset(&self.stream)?;
            }
            self.upload_step(slot, seqs, &step)?;
            self.forward(step.members.len(), step.t, slot, sink.probs())?;
            sink.enqueue(self, slot, &step)?;
            if let Some((s, p)) = pending.take() {
                sink.drain(self, s, &p)?;
            }
            pending = Some((slot, step));
        }
        if let Some((s, p)) = pending {
            sink.drain(self, s, &p)?;
        }
        Ok(())
    }

    /// Runs one window `tokens` in chunks through `sink`, from a fresh state or continuing the carried one.
    fn stream_window(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        sink: &mut impl StepSink,
    ) -> Result<()> {
        self.check_tokens(tokens)?;
        if !fresh && !self.streaming {
            return Err(Error::Unsupported(
                "a batch call reset the carried state; start with fresh = true".into(),
            ));
        }
        if fresh {
            self.states.reset(&self.stream)?;
            self.pos = 0;
        }
        self.streaming = true;
        let chunk = self.chunk;
        let steps = (0..tokens.len()).step_by(chunk).map(|t0| Step {
            members: &[0],
            t0,
            t: chunk.min(tokens.len() - t0),
            reset: false,
        });
        self.run_steps(&[tokens], steps, sink)?;
        self.pos += tokens.len() as u64;
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
        let mut sink = HostRows {
            want,
            lens: &[tokens.len()],
            outs: std::slice::from_mut(out),
        };
        self.stream_window(tokens, fresh, &mut sink)
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
        self.bind()?;
        check_segments(segments, tokens.len())?;
        let d = self.info.dims.d_model;
        let segments = [segments];
        let mut sink = SegmentSums::new(&segments, std::slice::from_mut(sums), d);
        self.stream_window(tokens, fresh, &mut sink)
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
        self.bind()?;
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
