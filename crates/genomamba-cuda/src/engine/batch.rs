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
    /// fit), and fills `outs[i]` for `seqs[i]` (resized to `seqs.len()`). Sequences are grouped by length
    /// (longest first, so little of a launch is padding). Resets the streaming state of
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
        let mut hidden = Vec::new();
        let mut probs = Vec::new();
        for members in &groups {
            let group: Vec<&[u8]> = members.iter().map(|&i| seqs[i]).collect();
            let g = group.len();
            let t_chunk = t_chunk(g);
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
                for (b, (s, &i)) in group.iter().zip(members).enumerate() {
                    let out = &mut outs[i];
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
