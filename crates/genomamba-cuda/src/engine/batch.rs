//! Many independent sequences (reads, short windows) per launch: `nb` windows side by side in one chunk.

use std::ops::Range;

use cudarc::driver::result;
use genomamba_model::engine::{Output, Want, check_segments};

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
        outs.resize_with(seqs.len(), Output::default);
        outs.iter_mut().for_each(Output::clear);
        let d = self.info.dims.d_model;
        let mut hidden = Vec::new();
        let mut probs = Vec::new();
        self.run_groups(seqs, batch, want.base_probs, |eng, members, t0, t| {
            let g = members.len();
            if want.hidden {
                eng.ws.hidden[0].download_f32(&eng.stream, g * t * d, &mut hidden)?;
            }
            if want.base_probs {
                eng.ws.probs[0].download_f32(&eng.stream, g * t * 4, &mut probs)?;
            }
            for (b, &i) in members.iter().enumerate() {
                let out = &mut outs[i];
                let n = t.min(seqs[i].len().saturating_sub(t0));
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
            Ok(())
        })?;
        if outs.iter().zip(seqs).any(|(o, s)| o.rows != s.len()) {
            return Err(Error::TooLarge(
                "batch output rows do not match the inputs".into(),
            ));
        }
        Ok(())
    }

    /// Runs each sequence of `seqs` from a fresh state, as [`CudaEngine::run_batch`] does, and sets `sums[i]`
    /// to the sums of its final hidden rows over each of `segments[i]` (rows of `seqs[i]`), `(segments[i].len(),
    /// D)` f64 (`sums` resized to `seqs.len()`). The rows are summed on the GPU; only the sums cross PCIe.
    pub fn run_batch_sums(
        &mut self,
        seqs: &[&[u8]],
        batch: usize,
        segments: &[&[Range<usize>]],
        sums: &mut Vec<Vec<f64>>,
    ) -> Result<()> {
        if segments.len() != seqs.len() {
            return Err(Error::Unsupported(format!(
                "{} segment lists for {} sequences",
                segments.len(),
                seqs.len()
            )));
        }
        let d = self.info.dims.d_model;
        sums.resize_with(seqs.len(), Vec::new);
        for ((s, segs), seq) in sums.iter_mut().zip(segments).zip(seqs) {
            check_segments(segs, seq.len())?;
            s.clear();
            s.resize(segs.len() * d, 0.0);
        }
        let mut ranges = Vec::new();
        let mut owners = Vec::new();
        let mut part = Vec::new();
        self.run_groups(seqs, batch, false, |eng, members, t0, t| {
            // Launch row b*t + r is row t0 + r of the sequence in window b.
            ranges.clear();
            owners.clear();
            for (b, &i) in members.iter().enumerate() {
                for (k, s) in segments[i].iter().enumerate() {
                    let (lo, hi) = (s.start.max(t0), s.end.min(t0 + t));
                    if lo < hi {
                        ranges.push(b * t + lo - t0..b * t + hi - t0);
                        owners.push((i, k));
                    }
                }
            }
            let src = eng.enqueue_sums(0, &ranges)?;
            part.clear();
            part.resize(ranges.len() * d, 0.0f64);
            // SAFETY: `src` holds `ranges.len() * d` f64 written on this stream; pageable destination of that
            // length, and the stream is synchronised before `part` is read.
            unsafe { result::memcpy_dtoh_async(part.as_mut_slice(), src, eng.stream.cu_stream()) }?;
            eng.stream.synchronize()?;
            for (&(i, k), p) in owners.iter().zip(part.chunks_exact(d.max(1))) {
                for (s, v) in sums[i][k * d..(k + 1) * d].iter_mut().zip(p) {
                    *s += v;
                }
            }
            Ok(())
        })
    }

    /// Runs `seqs` in launch groups of similar length (longest first, so little of a launch is padding; at
    /// most `batch` a group, 0 = as many as fit), each from a fresh state, calling `take(self, members, t0, t)`
    /// after each launch step's forward pass: `members[b]` (an index into `seqs`) ran in window `b`, rows
    /// `t0..t0 + t` of it at launch rows `b * t..(b + 1) * t` of `ws.hidden[0]` / `ws.probs[0]` (rows past
    /// its end are padding). Resets the streaming state.
    fn run_groups(
        &mut self,
        seqs: &[&[u8]],
        batch: usize,
        probs: bool,
        mut take: impl FnMut(&mut CudaEngine, &[usize], usize, usize) -> Result<()>,
    ) -> Result<()> {
        for s in seqs {
            self.check_tokens(s)?;
        }
        self.streaming = false;
        let dims = self.info.dims;
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let groups = group_by_length(&lens, self.chunk, batch);
        if groups.is_empty() {
            return Ok(());
        }
        // Rows per launch step of a group of `g` windows.
        let chunk = self.chunk;
        let t_chunk = |g: usize| (chunk / g).max(1);
        self.synchronize()?; // buffers may be replaced below
        let nb_max = groups.iter().map(Vec::len).max().unwrap_or(1);
        if nb_max > self.states.nb {
            self.states = States::new(&self.stream, &dims, nb_max)?;
        }
        let scratch = groups
            .iter()
            .map(|g| scratch_for(g.len() * t_chunk(g.len()), g.len(), &dims, self.sms))
            .max()
            .unwrap_or(0);
        if scratch > self.ws.scratch {
            self.ws = Workspace::new(&self.stream, &dims, self.dtype, self.chunk, scratch)?;
        }
        let mut host_tokens = vec![PAD; chunk];
        for members in &groups {
            let g = members.len();
            let t_chunk = t_chunk(g);
            let len = members.iter().map(|&i| lens[i]).max().unwrap_or(0);
            self.states.reset(&self.stream)?;
            let mut t0 = 0;
            while t0 < len {
                let t = t_chunk.min(len - t0);
                host_tokens[..g * t].fill(PAD);
                for (b, &i) in members.iter().enumerate() {
                    let s = seqs[i];
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
                self.forward(g, t, 0, probs)?;
                take(self, members, t0, t)?;
                t0 += t;
            }
        }
        Ok(())
    }
}

/// Splits sequences of lengths `lens` into launch groups (indices into `lens`): longest first, each group
/// padded to its first (longest) member, at most `max_windows` windows (0 = as many as fit `chunk` rows beside
/// that member) and never more than `chunk`, and closed before padding would make up half of its rows. Empty
/// sequences join no group.
pub(crate) fn group_by_length(lens: &[usize], chunk: usize, max_windows: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let (mut longest, mut real, mut cap) = (0usize, 0usize, 0usize);
    for i in order {
        let len = lens[i];
        let fits = groups
            .last()
            .is_some_and(|g| g.len() < cap && 2 * (real + len) > (g.len() + 1) * longest);
        if fits {
            real += len;
            if let Some(g) = groups.last_mut() {
                g.push(i);
            }
        } else {
            (longest, real) = (len, len);
            // One row per window and step at least, so never more windows than the chunk has rows.
            cap = if max_windows > 0 {
                max_windows
            } else {
                chunk / len
            }
            .min(chunk)
            .clamp(1, 65535);
            groups.push(vec![i]);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_group_by_length() {
        // Longest first; 100 + 60 fills 80% of 2 x 100 rows, adding 10 would leave 170 of 300 (57%), adding
        // 5 then 175 of 400 (44%): a new group.
        assert_eq!(
            group_by_length(&[10, 100, 5, 60], 1000, 0),
            vec![vec![1, 3, 0], vec![2]]
        );
        // At most chunk / longest windows per group, or `max_windows`.
        assert_eq!(
            group_by_length(&[100; 5], 250, 0),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(
            group_by_length(&[100; 5], 1000, 3),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        assert_eq!(
            group_by_length(&[10; 5], 3, 8),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        // A sequence longer than the chunk runs alone (in pieces); empty ones are skipped.
        assert_eq!(
            group_by_length(&[5000, 0, 7], 1000, 0),
            vec![vec![0], vec![2]]
        );
        assert!(group_by_length(&[], 1000, 0).is_empty());
    }
}
