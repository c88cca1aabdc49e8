//! The recurrent state a causal Mamba carries from one chunk to the next.

use crate::engine::Dims;
use crate::{Error, Result};

/// State of one block. `E = d_inner`, `K = d_conv`, `N = d_state`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerState {
    /// `(E, K-1)` row-major: per channel the last `K-1` pre-conv inputs x, oldest first (zeros before the start).
    pub conv: Vec<f32>,
    /// `(E, N)` row-major: the SSM state `h` after the last token.
    pub ssm: Vec<f32>,
}

/// State of a whole model between chunks.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// One per block.
    pub layers: Vec<LayerState>,
    /// P(A,C,G,T) of the next token, predicted from the last token seen; `None` at the start of a window.
    pub next_base_probs: Option<[f32; 4]>,
    /// Tokens consumed since the last reset.
    pub pos: u64,
}

impl State {
    /// A fresh (all-zero) state for a model of these sizes.
    pub fn new(dims: &Dims) -> State {
        let (conv, ssm) = State::layer_lens(dims);
        let layer = LayerState {
            conv: vec![0.0; conv],
            ssm: vec![0.0; ssm],
        };
        State {
            layers: vec![layer; dims.n_layer],
            next_base_probs: None,
            pos: 0,
        }
    }

    /// Values per layer of a model of `dims`: conv `E * (K-1)` and SSM `E * N`.
    pub fn layer_lens(dims: &Dims) -> (usize, usize) {
        (
            dims.d_inner * dims.d_conv.saturating_sub(1),
            dims.d_inner * dims.d_state,
        )
    }

    /// Errors unless this state has the shapes of a model of `dims` (before restoring it into an engine).
    pub fn check_fits(&self, dims: &Dims) -> Result<()> {
        if self.layers.len() != dims.n_layer {
            return Err(Error::Usage(format!(
                "a state of {} layers does not fit this model of {} layers",
                self.layers.len(),
                dims.n_layer
            )));
        }
        let (conv, ssm) = State::layer_lens(dims);
        match (self.layers.iter().enumerate())
            .find(|(_, l)| l.conv.len() != conv || l.ssm.len() != ssm)
        {
            Some((i, l)) => Err(Error::Usage(format!(
                "layer {i} of the state has {} conv and {} SSM values; this model has {conv} and {ssm}",
                l.conv.len(),
                l.ssm.len()
            ))),
            None => Ok(()),
        }
    }

    /// Resets to the start of a window, keeping allocations.
    pub fn reset(&mut self) {
        for l in &mut self.layers {
            l.conv.fill(0.0);
            l.ssm.fill(0.0);
        }
        self.next_base_probs = None;
        self.pos = 0;
    }
}
