//! What the model crate's integration tests share: the golden files' layout and lambda's bases as tokens.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use genomamba_seq::alphabet;
use safetensors::SafeTensors;

/// `tests/golden/<family>/<name>` at the repository root.
pub fn golden(family: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(family)
        .join(name)
}

/// An `expected.safetensors` written by a make_goldens.py: the input, the rows whose hidden state is kept, the
/// hidden states at those rows `(rows, W)` and the base probabilities `(L, 4)`, flattened.
pub struct Expected {
    pub ids: Vec<u8>,
    pub rows: Vec<usize>,
    pub hidden: Vec<f32>,
    pub probs: Vec<f32>,
}

fn f32s(st: &SafeTensors<'_>, key: &str) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    Ok(st
        .tensor(key)?
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads an `expected.safetensors`.
pub fn expected(path: &Path) -> Result<Expected, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let st = SafeTensors::deserialize(&bytes)?;
    let rows = st
        .tensor("hidden_rows")?
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
        .collect();
    Ok(Expected {
        ids: st.tensor("input_ids")?.data().to_vec(),
        rows,
        hidden: f32s(&st, "last_hidden_state")?,
        probs: f32s(&st, "base_probs")?,
    })
}

/// `n` bases of lambda from base `skip` on, as tokens (genomamba-seq's alphabet).
pub fn lambda(skip: usize, n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/genomes/lambda_virus.fa"),
    )?;
    let (mut tokens, mut soft_masked) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        alphabet::tokenize(line.as_bytes(), &mut tokens, &mut soft_masked)?;
    }
    Ok(tokens.into_iter().skip(skip).take(n).collect())
}

/// Rows kept, and per block the residual stream after it at those rows `(rows, D)`, flattened.
pub type LayerHidden = (Vec<usize>, Vec<Vec<f32>>);

/// An `expected-layers.safetensors` written by make_layer_goldens.py: the rows kept and, per block `K` (index
/// `K - 1`), the residual stream after it at those rows `(rows, D)`, flattened.
pub fn layer_hidden(path: &Path) -> Result<LayerHidden, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let st = SafeTensors::deserialize(&bytes)?;
    let rows: Vec<usize> = st
        .tensor("hidden_rows")?
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
        .collect();
    let shape = st.tensor("layer_hidden")?.shape().to_vec();
    let all = f32s(&st, "layer_hidden")?;
    let per_layer = shape[1] * shape[2];
    Ok((
        rows,
        all.chunks_exact(per_layer).map(<[f32]>::to_vec).collect(),
    ))
}
