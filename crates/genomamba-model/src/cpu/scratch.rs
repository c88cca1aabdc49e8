//! Buffers of the fast engine, sized for one tile of `T` tokens and reused (no per-token allocation); their
//! size depends on the tile, not on the chunk or the window, so memory stays flat however long the input.

use crate::cpu::aligned::AlignedBuf;
use crate::engine::Dims;

/// Work buffers for one tile of `T` tokens, token-major; each is used through its prefix for shorter tiles.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Residual stream `(T, D)`.
    pub s: AlignedBuf,
    /// Normalised block input `(T, D)`; the final hidden rows at the end.
    pub u: AlignedBuf,
    /// The mixer's own buffers.
    pub mix: MixerBufs,
}

/// What one Mamba mixer needs over a tile of `T` tokens besides its input and output.
#[derive(Debug, Default)]
pub struct MixerBufs {
    /// `(K-1+T, 2E)`: per row x then z; the first `K-1` rows hold the conv history in their x half.
    pub xz: AlignedBuf,
    /// Post-conv `xc` `(T, E)`, overwritten by the gated scan output y.
    pub xc: AlignedBuf,
    /// `x_proj` output `(T, R + 2N)`.
    pub dbl: AlignedBuf,
}

impl MixerBufs {
    /// Sizes the buffers for a tile of `l` tokens.
    pub fn prepare(&mut self, l: usize, dims: &Dims) {
        let e = dims.d_inner;
        self.xz.fit((dims.d_conv - 1 + l) * 2 * e);
        self.xc.fit(l * e);
        self.dbl.fit(l * (dims.dt_rank + 2 * dims.d_state));
    }
}

impl Scratch {
    /// Sizes every buffer for a tile of `l` tokens (capacity is kept, so nothing is reallocated later).
    pub fn prepare(&mut self, l: usize, dims: &Dims) {
        let d = dims.d_model;
        self.s.fit(l * d);
        self.u.fit(l * d);
        self.mix.prepare(l, dims);
    }
}
