//! Uploads a [`Model`]'s f32 weights to the device: projection matrices in the engine's dtype, everything
//! the kernels read directly (norms, conv, dt bias, A, D) in f32.

use std::sync::Arc;

use cudarc::driver::CudaStream;
use genomamba_model::engine::BASE_TOKENS;
use genomamba_model::model::Model;

use crate::Result;
use crate::buf::DevBuf;
use crate::kernels::Dtype;

/// One block's weights on the device.
#[derive(Debug)]
pub struct DevLayer {
    /// RMSNorm scale `(D,)` f32.
    pub norm: DevBuf,
    /// `in_proj` `(2E, D)` in the engine dtype.
    pub in_proj: DevBuf,
    /// `in_proj` bias `(2E,)` f32, if any.
    pub in_bias: Option<DevBuf>,
    /// Conv taps `(E, K)` f32.
    pub conv_w: DevBuf,
    /// Conv bias `(E,)` f32 (zeros when the model has none).
    pub conv_b: DevBuf,
    /// `x_proj` `(R + 2N, E)` in the engine dtype.
    pub x_proj: DevBuf,
    /// `dt_proj` `(E, R)` in the engine dtype.
    pub dt_proj: DevBuf,
    /// `dt_proj` bias `(E,)` f32.
    pub dt_bias: DevBuf,
    /// `-exp(A_log) * log2(e)`, `(E, N)` f32.
    pub a2: DevBuf,
    /// Skip `D`, `(E,)` f32.
    pub d_skip: DevBuf,
    /// `out_proj` `(D, E)` in the engine dtype.
    pub out_proj: DevBuf,
    /// `out_proj` bias `(D,)` f32, if any.
    pub out_bias: Option<DevBuf>,
}

/// The whole model on the device.
#[derive(Debug)]
pub struct DevModel {
    /// Embedding `(vocab, D)` f32.
    pub embedding: DevBuf,
    /// LM-head rows of A, C, G, T `(4, D)` f32; `None` when the vocabulary lacks them.
    pub head4: Option<DevBuf>,
    /// Final norm `(D,)` f32.
    pub norm_f: DevBuf,
    /// Whether the hidden state is normalised by `norm_f` ([`genomamba_model::Model::final_norm`]).
    pub final_norm: bool,
    /// Blocks.
    pub layers: Vec<DevLayer>,
}

fn proj(stream: &Arc<CudaStream>, w: &[f32], dtype: Dtype) -> Result<DevBuf> {
    match dtype {
        Dtype::F32 => DevBuf::from_f32(stream, w),
        Dtype::Bf16 => DevBuf::from_f32_as_bf16(stream, w),
    }
}

/// `A * log2(e)` with `A = -exp(A_log)`, so that `exp(dt A) = exp2(dt * a2)` in the kernel.
pub fn a2_of(a_log: &[f32]) -> Vec<f32> {
    a_log
        .iter()
        .map(|&v| (-(f64::from(v).exp()) * std::f64::consts::LOG2_E) as f32)
        .collect()
}

/// The four LM-head rows of A, C, G, T, `(4, D)` row-major, or `None` when the vocabulary is too small.
pub fn head_rows(lm_head: &[f32], d_model: usize, vocab: usize) -> Option<Vec<f32>> {
    if BASE_TOKENS.iter().any(|&t| t >= vocab) {
        return None;
    }
    Some(
        BASE_TOKENS
            .iter()
            .flat_map(|&t| lm_head[t * d_model..(t + 1) * d_model].iter().copied())
            .collect(),
    )
}

/// One Mamba's f32 weights on the host, borrowed from a causal model's block or one direction of a Caduceus
/// block. Shapes as in PyTorch (`E = d_inner`).
pub struct HostLayer<'a> {
    /// Pre-norm scale `(D,)`.
    pub norm: &'a [f32],
    /// `(2E, D)` and its bias.
    pub in_proj: &'a [f32],
    /// `(2E,)`.
    pub in_bias: Option<&'a [f32]>,
    /// `(E, K)`.
    pub conv_w: &'a [f32],
    /// `(E,)`.
    pub conv_b: Option<&'a [f32]>,
    /// `(R + 2N, E)`.
    pub x_proj: &'a [f32],
    /// `(E, R)`.
    pub dt_proj: &'a [f32],
    /// `(E,)`.
    pub dt_bias: &'a [f32],
    /// `(E, N)`.
    pub a_log: &'a [f32],
    /// `(E,)`.
    pub d_skip: &'a [f32],
    /// `(D, E)`.
    pub out_proj: &'a [f32],
    /// `(D,)`.
    pub out_bias: Option<&'a [f32]>,
}

/// Uploads one Mamba's weights for an engine running in `dtype`; `d_inner` sizes the zero conv bias of a
/// model without one.
pub fn upload_layer(
    stream: &Arc<CudaStream>,
    l: &HostLayer<'_>,
    d_inner: usize,
    dtype: Dtype,
) -> Result<DevLayer> {
    let f32_buf = |v: &[f32]| DevBuf::from_f32(stream, v);
    let opt = |v: Option<&[f32]>| v.map(f32_buf).transpose();
    Ok(DevLayer {
        norm: f32_buf(l.norm)?,
        in_proj: proj(stream, l.in_proj, dtype)?,
        in_bias: opt(l.in_bias)?,
        conv_w: f32_buf(l.conv_w)?,
        conv_b: match l.conv_b {
            Some(b) => f32_buf(b)?,
            None => DevBuf::zeros(stream, d_inner * 4)?,
        },
        x_proj: proj(stream, l.x_proj, dtype)?,
        dt_proj: proj(stream, l.dt_proj, dtype)?,
        dt_bias: f32_buf(l.dt_bias)?,
        a2: f32_buf(&a2_of(l.a_log))?,
        d_skip: f32_buf(l.d_skip)?,
        out_proj: proj(stream, l.out_proj, dtype)?,
        out_bias: opt(l.out_bias)?,
    })
}

/// Uploads `model` for an engine running in `dtype`.
pub fn upload(stream: &Arc<CudaStream>, model: &Model, dtype: Dtype) -> Result<DevModel> {
    let dims = model.info.dims;
    let mut layers = Vec::with_capacity(model.layers.len());
    for l in &model.layers {
        let host = HostLayer {
            norm: &l.norm,
            in_proj: &l.in_proj,
            in_bias: l.in_proj_bias.as_deref(),
            conv_w: &l.conv_weight,
            conv_b: l.conv_bias.as_deref(),
            x_proj: &l.x_proj,
            dt_proj: &l.dt_proj,
            dt_bias: &l.dt_bias,
            a_log: &l.a_log,
            d_skip: &l.d,
            out_proj: &l.out_proj,
            out_bias: l.out_proj_bias.as_deref(),
        };
        layers.push(upload_layer(stream, &host, dims.d_inner, dtype)?);
    }
    let head4 = match head_rows(model.lm_head(), dims.d_model, dims.vocab_size) {
        Some(rows) => Some(DevBuf::from_f32(stream, &rows)?),
        None => None,
    };
    Ok(DevModel {
        embedding: DevBuf::from_f32(stream, &model.embedding)?,
        head4,
        norm_f: DevBuf::from_f32(stream, &model.norm_f)?,
        final_norm: model.final_norm,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a2_of() {
        let a = a2_of(&[0.0, 16f32.ln()]);
        assert!((a[0] - -std::f32::consts::LOG2_E).abs() < 1e-6);
        assert!((a[1] - -16.0 * std::f32::consts::LOG2_E).abs() < 1e-4);
        // exp2(dt * a2) == exp(dt * A)
        let dt = 0.37f32;
        assert!(((dt * a[1]).exp2() - (-16.0 * dt).exp()).abs() < 1e-7);
    }

    #[test]
    fn test_head_rows() {
        let d = 2;
        let lm: Vec<f32> = (0..12 * d).map(|i| i as f32).collect();
        assert_eq!(
            head_rows(&lm, d, 12),
            Some(vec![14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0])
        );
        assert_eq!(head_rows(&lm[..10 * d], d, 10), None);
    }
}
