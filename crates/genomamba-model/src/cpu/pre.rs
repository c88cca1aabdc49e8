//! Weights rearranged once, at engine creation, into the layouts the tile kernels and GEMMs read fastest.
//!
//! The model keeps every matrix as its checkpoint stores it (PyTorch `nn.Linear`, `(out, in)`), which the
//! reference engine and the CUDA engine read. The fast CPU engine multiplies token-major activations
//! `(T, in)` by these matrices, and the `gemm` crate is faster when the right-hand side is `(in, out)`
//! row-major than when it reads `(out, in)` transposed, which it has to gather while packing, on every call
//! (`stream --random 256,16 --gemm-check 1024`, four alternating runs: one layer's projections at 75-89% of
//! the SGEMM peak measured in the same process before, 94-106% after). So the engine holds its own
//! `(in, out)` copies of the projections: the price is resident memory, the projections once more (~350 MB
//! for a mamba-130m-sized model, ~27 MB for a Caduceus-sized one).

use super::matmul::transpose;

/// The selective-SSM weights of one Mamba, borrowed from a causal block or one Caduceus direction.
pub(crate) struct SsmRef<'a> {
    /// `(E, N)`.
    pub a_log: &'a [f32],
    /// `(E, R)`.
    pub dt_proj: &'a [f32],
    /// `(E, K)`.
    pub conv_weight: &'a [f32],
    /// `(E,)`.
    pub conv_bias: Option<&'a [f32]>,
    /// `(R + 2N, E)`.
    pub x_proj: &'a [f32],
}

/// One Mamba's SSM constants, rearranged so that a run of channels is contiguous.
#[derive(Debug)]
pub(crate) struct LayerPre {
    /// `A · log2(e)` transposed, `(N, E)`, with `A = -exp(A_log)`: the scan computes `exp(ΔA)` as
    /// `2^(Δ·A·log2 e)`.
    pub a2_t: Vec<f32>,
    /// `dt_proj.weight` transposed, `(R, E)`.
    pub dt_t: Vec<f32>,
    /// Conv taps transposed, `(K, E)`: row `K-1` multiplies the current token.
    pub conv_t: Vec<f32>,
    /// Conv bias `(E,)` (zeros when the model has none).
    pub conv_b: Vec<f32>,
    /// `x_proj.weight` transposed, `(E, R + 2N)`.
    pub x_t: Vec<f32>,
}

impl LayerPre {
    /// Rearranges one Mamba's weights; `e`, `n`, `k`, `r` are d_inner, d_state, d_conv, dt_rank.
    pub fn new(w: &SsmRef<'_>, e: usize, n: usize, k: usize, r: usize) -> LayerPre {
        let a: Vec<f32> = w.a_log.iter().map(|&v| -v.exp()).collect();
        LayerPre {
            a2_t: transpose(&a, e, n)
                .iter()
                .map(|&v| v * std::f32::consts::LOG2_E)
                .collect(),
            dt_t: transpose(w.dt_proj, e, r),
            conv_t: transpose(w.conv_weight, e, k),
            conv_b: w.conv_bias.map_or_else(|| vec![0.0; e], <[f32]>::to_vec),
            x_t: transpose(w.x_proj, r + 2 * n, e),
        }
    }
}

/// One Mamba's input and output projections as `(in, out)` row-major right-hand sides.
#[derive(Debug)]
pub(crate) struct ProjPre {
    /// `in_proj.weight` transposed, `(D, 2E)`: columns `[0, E)` give x, `[E, 2E)` give z.
    pub in_t: Vec<f32>,
    /// `out_proj.weight` transposed, `(E, D)`.
    pub out_t: Vec<f32>,
}

impl ProjPre {
    /// From `in_proj` `(2E, D)` and `out_proj` `(D, E)`; `d`, `e` are d_model, d_inner.
    pub fn new(in_proj: &[f32], out_proj: &[f32], d: usize, e: usize) -> ProjPre {
        ProjPre {
            in_t: transpose(in_proj, 2 * e, d),
            out_t: transpose(out_proj, d, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_projections_transposed() {
        let src: Vec<f32> = (0..6).map(|i| i as f32).collect(); // (2, 3)
        assert_eq!(transpose(&src, 2, 3), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // D = 3, E = 2: in_proj (2E, D) = (4, 3) -> (3, 4); out_proj (D, E) = (3, 2) -> (2, 3).
        let in_proj: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let out_proj: Vec<f32> = (20..26).map(|i| i as f32).collect();
        let p = ProjPre::new(&in_proj, &out_proj, 3, 2);
        let in_t = [0.0, 3.0, 6.0, 9.0, 1.0, 4.0, 7.0, 10.0, 2.0, 5.0, 8.0, 11.0];
        assert_eq!(p.in_t, in_t);
        assert_eq!(p.out_t, [20.0, 22.0, 24.0, 21.0, 23.0, 25.0]);
    }
}
