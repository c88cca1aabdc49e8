//! Buffers of the fast engine, sized for the longest chunk seen and reused (no per-token allocation).

use crate::engine::Dims;

/// Work buffers for one chunk of `L` tokens; each is used through its prefix for shorter chunks.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Residual stream `(L, D)`.
    pub s: Vec<f32>,
    /// Normalised block input `(L, D)`; the final hidden rows at the end.
    pub u: Vec<f32>,
    /// `in_proj` output channel-major `(2E, L)`: x rows then z rows; z is overwritten with the gated y.
    pub xz: Vec<f32>,
    /// Post-conv `xc`, `(E, L)`.
    pub xc: Vec<f32>,
    /// `x_proj` output `(L, R + 2N)`.
    pub dbl: Vec<f32>,
    /// Δ pre-activations, then Δ, `(E, L)`.
    pub dt: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

impl Scratch {
    /// Makes every buffer at least as long as a chunk of `l` tokens needs; then truncates the views the
    /// kernels split by rows to exactly that chunk (capacity is kept, so nothing is reallocated later).
    pub fn prepare(&mut self, l: usize, dims: &Dims) {
        let (d, e) = (dims.d_model, dims.d_inner);
        for (v, len) in [
            (&mut self.s, l * d),
            (&mut self.u, l * d),
            (&mut self.xz, 2 * e * l),
            (&mut self.xc, e * l),
            (&mut self.dbl, l * (dims.dt_rank + 2 * dims.d_state)),
            (&mut self.dt, e * l),
        ] {
            grow(v, len);
            v.truncate(len);
        }
    }
}
