//! Saving and restoring the carried state of [`Engine::run`](genomamba_model::Engine::run) calls: run a prefix
//! once, save, then run each of several continuations (variant haplotypes) from the saved point.
//!
//! The saved state is window slot 0 of [`States`]: per layer conv `(E, K-1)` and SSM `(E, N)` f32, and the
//! head carry `carry[cur]` (the next base's distribution, NaN when the window has no context yet), in the
//! layout of [`genomamba_model::State`], so a state saved by the CPU engine restores here and back.

use genomamba_model::state::{LayerState, State};

use super::CudaEngine;
use super::workspace::States;
use crate::buf::{DevBuf, download_f32_each, upload_f32_each};
use crate::{Error, Result};

impl CudaEngine {
    /// Copies the carried state of window slot 0 (what the last `run` left) into `into`, resizing its vectors
    /// to this model's shapes: per layer conv `(E, K-1)` and SSM `(E, N)` f32, `next_base_probs` from the
    /// head carry (`None` where it holds NaN: a fresh window, or a model without A/C/G/T tokens), and `pos`:
    /// the tokens run since the last fresh start, plus the `pos` of a state restored since. Errors after a
    /// batch call, which leaves no state to continue from, and after a restore that failed part way.
    pub(super) fn save_state_into(&mut self, into: &mut State) -> Result<()> {
        if !self.streaming || self.states.nb == 0 {
            return Err(Error::Unsupported(
                "no carried state to save: a batch call (or a failed restore) left none; start with a fresh \
                 run or restore a state"
                    .into(),
            ));
        }
        // Every launch so far must be done before the state is read (the copies below are ordered after the
        // compute stream's work anyway; this also drains the copy stream, so nothing is left in flight).
        self.synchronize()?;
        let dims = self.info.dims;
        let (conv, ssm) = State::layer_lens(&dims);
        into.layers.resize_with(dims.n_layer, || LayerState {
            conv: Vec::new(),
            ssm: Vec::new(),
        });
        let mut carry = [f32::NAN; 4];
        let mut pairs: Vec<(&DevBuf, &mut [f32])> = Vec::with_capacity(2 * dims.n_layer + 1);
        for ((l, c), s) in into
            .layers
            .iter_mut()
            .zip(&self.states.conv)
            .zip(&self.states.ssm)
        {
            let LayerState { conv: lc, ssm: ls } = l;
            lc.resize(conv, 0.0);
            ls.resize(ssm, 0.0);
            pairs.push((c, lc.as_mut_slice()));
            pairs.push((s, ls.as_mut_slice()));
        }
        pairs.push((&self.states.carry[self.states.cur], &mut carry[..]));
        download_f32_each(&self.stream, &mut pairs)?;
        into.next_base_probs = (!carry.iter().any(|p| p.is_nan())).then_some(carry);
        into.pos = self.pos;
        Ok(())
    }

    /// Makes `from` the state of window slot 0, which the next `run(.., fresh = false, ..)` continues from
    /// (`next_base_probs` `None` uploads NaN: the next first row has no prediction). Checks the shapes first;
    /// allocates a one-slot state if a failed batch left none. The copies finish before this returns, so every
    /// later launch sees them.
    pub(super) fn restore_state_from(&mut self, from: &State) -> Result<()> {
        let dims = self.info.dims;
        from.check_fits(&dims)?;
        // Launches still in flight may read or write the state about to be replaced.
        self.synchronize()?;
        if self.states.nb == 0 {
            self.states = States::new(&self.stream, &dims, 1)?;
        }
        let carry = from.next_base_probs.unwrap_or([f32::NAN; 4]);
        let mut pairs: Vec<(&[f32], &DevBuf)> = Vec::with_capacity(2 * dims.n_layer + 1);
        for ((l, c), s) in from
            .layers
            .iter()
            .zip(&self.states.conv)
            .zip(&self.states.ssm)
        {
            pairs.push((&l.conv, c));
            pairs.push((&l.ssm, s));
        }
        pairs.push((&carry, &self.states.carry[self.states.cur]));
        // Marked invalid until the upload succeeded: a failed one leaves slot 0 half written.
        self.streaming = false;
        upload_f32_each(&self.stream, &pairs)?;
        self.streaming = true;
        self.pos = from.pos;
        Ok(())
    }
}
