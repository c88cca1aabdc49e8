//! The recurrent state a causal Mamba carries from one chunk to the next.

use crate::engine::Dims;

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
        let layer = LayerState {
            conv: vec![0.0; dims.d_inner * (dims.d_conv - 1)],
            ssm: vec![0.0; dims.d_inner * dims.d_state],
        };
        State {
            layers: vec![layer; dims.n_layer],
            next_base_probs: None,
            pos: 0,
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
