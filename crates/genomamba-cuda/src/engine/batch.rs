//! Many independent sequences (reads, short windows) per launch: `nb` windows side by side in one chunk.

use std::ops::Range;

use genomamba_model::engine::{Output, Want, check_segment_lists};

use super::CudaEngine;
use super::stream::{HostRows, SegmentSums, Step};
use super::workspace::{States, max_state_windows, scratch_for};
use crate::{Error, Result};

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
        self.bind()?;
        outs.resize_with(seqs.len(), Output::default);
        outs.iter_mut().for_each(Output::clear);
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let groups = self.prepare_groups(seqs, batch)?;
        let mut sink = HostRows {
            want,
            lens: &lens,
            outs,
        };
        let steps = self.group_steps(&groups, &lens);
        self.run_steps(seqs, steps, &mut sink)?;
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
        self.bind()?;
        check_segment_lists(seqs, segments)?;
        sums.resize_with(seqs.len(), Vec::new);
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let groups = self.prepare_groups(seqs, batch)?;
        let mut sink = SegmentSums::new(segments, sums, self.info.dims.d_model);
        let steps = self.group_steps(&groups, &lens);
        self.run_steps(seqs, steps, &mut sink)
    }

    /// Checks `seqs`, splits them into launch groups of similar length ([`group_by_length`], at most `batch`
    /// a group, 0 = as many as fit, and never more than the carried state budget of
    /// [`max_state_windows`]) and makes room for the widest group's state and scan scratch, freeing the old
    /// before allocating the new. Resets the streaming state.
    fn prepare_groups(&mut self, seqs: &[&[u8]], batch: usize) -> Result<Vec<Vec<usize>>> {
        for s in seqs {
            self.check_tokens(s)?;
        }
        self.streaming = false;
        let dims = self.info.dims;
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let state_cap = max_state_windows(&dims, self.dtype, self.chunk);
        let groups = group_by_length(&lens, self.chunk, batch, state_cap);
        let nb_max = groups.iter().map(Vec::len).max().unwrap_or(1);
        let scratch = groups
            .iter()
            .map(|g| scratch_for(g.len() * self.step_rows(g.len()), g.len(), &dims, self.sms))
            .max()
            .unwrap_or(0);
        let grow_states = nb_max > self.states.nb;
        let grow_scratch = scratch > self.ws.scratch;
        if !grow_states && !grow_scratch {
            return Ok(groups);
        }
        self.synchronize()?; // buffers in use (also by the copy stream) are about to be freed
        if grow_states {
            self.states.release();
        }
        let grown = (|| -> Result<()> {
            if grow_scratch {
                self.ws.resize_scratch(&self.stream, scratch)?;
            }
            if grow_states {
                self.states = States::new(&self.stream, &dims, nb_max)?;
            }
            Ok(())
        })();
        if grown.is_err()
            && self.states.nb == 0
            && let Ok(s) = States::new(&self.stream, &dims, 1)
        {
            // Best effort: one slot again, so that `run` keeps working after the error.
            self.states = s;
        }
        grown?;
        Ok(groups)
    }

    /// Rows per launch step of a group of `g` windows side by side.
    fn step_rows(&self, g: usize) -> usize {
        (self.chunk / g.max(1)).max(1)
    }

    /// The launch steps of `groups` (sequence lengths `lens`): each group from a fresh state, in steps of
    /// [`CudaEngine::step_rows`] rows until its longest member ends.
    fn group_steps<'g>(&self, groups: &'g [Vec<usize>], lens: &[usize]) -> Vec<Step<'g>> {
        let mut steps = Vec::new();
        for members in groups {
            let t_step = self.step_rows(members.len());
            let len = members.iter().map(|&i| lens[i]).max().unwrap_or(0);
            for t0 in (0..len).step_by(t_step) {
                steps.push(Step {
                    members,
                    t0,
                    t: t_step.min(len - t0),
                    reset: t0 == 0,
                });
            }
        }
        steps
    }
}

/// Splits sequences of lengths `lens` into launch groups (indices into `lens`): longest first, each group
/// padded to its first (longest) member, at most `max_windows` windows (0 = as many as fit `chunk` rows beside
/// that member), never more than `chunk` nor `state_cap` (the windows whose carried state fits its budget, see
/// [`max_state_windows`]; at least 1), and closed before padding would make up half of its rows. Empty
/// sequences join no group.
pub(crate) fn group_by_length(
    lens: &[usize],
    chunk: usize,
    max_windows: usize,
    state_cap: usize,
) -> Vec<Vec<usize>> {
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
            .min(state_cap)
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
            group_by_length(&[10, 100, 5, 60], 1000, 0, usize::MAX),
            vec![vec![1, 3, 0], vec![2]]
        );
        // At most chunk / longest windows per group, or `max_windows`.
        assert_eq!(
            group_by_length(&[100; 5], 250, 0, usize::MAX),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(
            group_by_length(&[100; 5], 1000, 3, usize::MAX),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        assert_eq!(
            group_by_length(&[10; 5], 3, 8, usize::MAX),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        // A sequence longer than the chunk runs alone (in pieces); empty ones are skipped.
        assert_eq!(
            group_by_length(&[5000, 0, 7], 1000, 0, usize::MAX),
            vec![vec![0], vec![2]]
        );
        assert!(group_by_length(&[], 1000, 0, usize::MAX).is_empty());
        // The carried-state cap bounds every group, with or without `max_windows`; 0 still allows 1.
        assert_eq!(
            group_by_length(&[10; 5], 1000, 0, 2),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(
            group_by_length(&[10; 5], 1000, 4, 3),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        assert_eq!(
            group_by_length(&[10; 3], 1000, 0, 0),
            vec![vec![0], vec![1], vec![2]]
        );
        // 65,535 tiny reads on a chunk of 1,000,000 rows: without a cap, one group of 65,535 windows; with
        // the cap of a mamba-130m-sized model, none over it.
        let tiny = vec![4; 65_535];
        assert_eq!(group_by_length(&tiny, 1_000_000, 0, usize::MAX).len(), 1);
        let dims = genomamba_model::engine::Dims {
            d_model: 768,
            n_layer: 24,
            d_inner: 1536,
            d_state: 16,
            d_conv: 4,
            dt_rank: 48,
            vocab_size: 16,
        };
        let cap = max_state_windows(&dims, crate::kernels::Dtype::F32, 4096);
        let groups = group_by_length(&tiny, 1_000_000, 0, cap);
        assert!(groups.iter().all(|g| g.len() <= cap));
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), tiny.len());
    }
}
