//! Many independent sequences (reads, short windows) per launch: `nb` windows side by side in one chunk.

use cudarc::driver::result;
use genomamba_model::engine::{Output, Want};

use super::CudaEngine;
use super::workspace::{States, Workspace, scratch_for};
use crate::{Error, Result};

/// Token id used to pad shorter sequences at their end (causal: padding never affects earlier rows).
const PAD: u8 = 0;

impl CudaEngine {
    /// Runs each sequence of `seqs` from a fresh state, up to `batch` of them per launch (0 = as many as
    /// fit), and fills `outs[i]` for `seqs[i]` (resized to `seqs.len()`). Resets the streaming state of
    /// [`genomamba_model::engine::Engine::run`]: the next `run` must be fresh.
    pub fn run_batch(
        &mut self,
        seqs: &[&[u8]],
        batch: usize,
        want: Want,
        outs: &mut Vec<Output>,
    ) -> Result<()> {
        for s in seqs {
            self.check_tokens(s)?;
        }
        outs.resize_with(seqs.len(), Output::default);
        outs.iter_mut().for_each(Output::clear);
        self.streaming = false;
        let dims = self.info.dims;
        let d = dims.d_model;
        let max_len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        if max_len == 0 {
            return Ok(());
        }
        // Windows per launch: `batch`, else enough to fill the chunk with the longest sequence.
        let nb = if batch > 0 {
            batch
        } else {
            (self.chunk / max_len).max(1)
        }
        .clamp(1, 65535)
        .min(seqs.len());
        let t_chunk = (self.chunk / nb).max(1);
        self.synchronize()?; // buffers may be replaced below
        if nb > self.states.nb {
            self.states = States::new(&self.stream, &dims, nb)?;
        }
        let scratch = scratch_for(nb * t_chunk, nb, &dims, self.sms);
        if scratch > self.ws.scratch {
            self.ws = Workspace::new(&self.stream, &dims, self.dtype, self.chunk, scratch)?;
        }
        let mut host_tokens = vec![PAD; nb * t_chunk];
        let mut hidden = Vec::new();
        let mut probs = Vec::new();
        for group in seqs.chunks(nb).zip(outs.chunks_mut(nb)) {
            let (group, group_out) = group;
            let g = group.len();
            let len = group.iter().map(|s| s.len()).max().unwrap_or(0);
            self.states.reset(&self.stream)?;
            let mut t0 = 0;
            while t0 < len {
                let t = t_chunk.min(len - t0);
                host_tokens[..g * t].fill(PAD);
                for (b, s) in group.iter().enumerate() {
                    if t0 < s.len() {
                        let n = t.min(s.len() - t0);
                        host_tokens[b * t..b * t + n].copy_from_slice(&s[t0..t0 + n]);
                    }
                }
                self.synchronize()?;
                // SAFETY: the workspace holds `chunk >= g * t` token slots; pageable source, blocking copy.
                unsafe {
                    result::memcpy_htod_async(
                        self.ws.tokens.ptr(),
                        &host_tokens[..g * t],
                        self.stream.cu_stream(),
                    )
                }?;
                self.forward(g, t, 0, want.base_probs)?;
                if want.hidden {
                    hidden.resize(g * t * d, 0.0f32);
                    // SAFETY: hidden[0] holds g*t rows of d f32; pageable destination, blocking copy.
                    unsafe {
                        result::memcpy_dtoh_async(
                            &mut hidden,
                            self.ws.hidden[0].ptr(),
                            self.stream.cu_stream(),
                        )
                    }?;
                }
                if want.base_probs {
                    probs.resize(g * t * 4, 0.0f32);
                    // SAFETY: probs[0] holds g*t rows of 4 f32; pageable destination, blocking copy.
                    unsafe {
                        result::memcpy_dtoh_async(
                            &mut probs,
                            self.ws.probs[0].ptr(),
                            self.stream.cu_stream(),
                        )
                    }?;
                }
                self.stream.synchronize()?;
                for (b, (s, out)) in group.iter().zip(group_out.iter_mut()).enumerate() {
                    let n = t.min(s.len().saturating_sub(t0));
                    if n == 0 {
                        continue;
                    }
                    if want.hidden {
                        out.hidden
                            .extend_from_slice(&hidden[b * t * d..(b * t + n) * d]);
                    }
                    if want.base_probs {
                        let p = &probs[b * t * 4..(b * t + n) * 4];
                        out.base_probs
                            .extend(p.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
                    }
                    out.rows += n;
                }
                t0 += t;
            }
        }
        if outs.iter().zip(seqs).any(|(o, s)| o.rows != s.len()) {
            return Err(Error::TooLarge(
                "batch output rows do not match the inputs".into(),
            ));
        }
        Ok(())
    }
}
