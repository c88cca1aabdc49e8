//! The engine trait every backend (reference, fast CPU, CUDA, bidirectional Caduceus) implements.
//!
//! Callers hold a `Box<dyn Engine>` and call [`Engine::run`] once per window piece; the engine keeps the
//! per-layer state between calls, so a causal model can stream a whole chromosome in pieces.

use crate::Result;

/// What a [`Engine::run`] call should compute. Asking for less saves work (no LM head, no hidden copy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// Fill [`Output::hidden`] with the final hidden state after `norm_f` (transformers' `last_hidden_state`).
    pub hidden: bool,
    /// Fill [`Output::base_probs`] with the four-base distribution of each position given the bases before it.
    pub base_probs: bool,
}

impl Want {
    /// Both outputs.
    pub const ALL: Want = Want {
        hidden: true,
        base_probs: true,
    };
}

/// The outputs of one [`Engine::run`] call, one row per input token. Buffers are reused across calls.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Final hidden states, `(rows, width)` row-major f32 with `width = Engine::hidden_width()`;
    /// empty unless [`Want::hidden`].
    pub hidden: Vec<f32>,
    /// Per row, P(A), P(C), P(G), P(T) of the base at that position given the bases before it in the window
    /// (the LM head's logits at the previous position, softmax renormalised over tokens A=7 C=8 G=9 T=10);
    /// `[NaN; 4]` where no context exists (the first position of a fresh window). Empty unless
    /// [`Want::base_probs`].
    pub base_probs: Vec<[f32; 4]>,
    /// Number of rows (= number of input tokens of the call).
    pub rows: usize,
}

impl Output {
    /// Empties the buffers, keeping their capacity.
    pub fn clear(&mut self) {
        self.hidden.clear();
        self.base_probs.clear();
        self.rows = 0;
    }
}

/// On-disk format a model was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// Hugging Face transformers Mamba (`model_type: mamba`, `backbone.embeddings.weight`).
    HfMamba,
    /// Original state-spaces/mamba-ssm layout (`d_model`, `n_layer`, `ssm_cfg`; `backbone.embedding.weight`).
    MambaSsm,
    /// Caduceus (`model_type: caduceus`), Ph or PS: bidirectional masked LM.
    Caduceus,
}

impl ModelFormat {
    /// Short stable name, as written to metadata (`"hf-mamba"`, `"mamba-ssm"`, `"caduceus"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::HfMamba => "hf-mamba",
            ModelFormat::MambaSsm => "mamba-ssm",
            ModelFormat::Caduceus => "caduceus",
        }
    }
}

/// Sizes of a Mamba-1 model, all read from config and cross-checked against the tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Residual stream width `d_model`.
    pub d_model: usize,
    /// Number of Mamba blocks.
    pub n_layer: usize,
    /// Inner width `E = expand * d_model`.
    pub d_inner: usize,
    /// SSM state size `N` per channel.
    pub d_state: usize,
    /// Depthwise causal conv width `K`.
    pub d_conv: usize,
    /// Rank `R` of the Δ projection.
    pub dt_rank: usize,
    /// Rows of the embedding / LM head (the padded vocabulary).
    pub vocab_size: usize,
}

/// Describes a loaded model: for logs, Parquet metadata and `genomamba inspect`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Format the model was read from.
    pub format: ModelFormat,
    /// Human name: the model directory's name, or `"embedded"`.
    pub name: String,
    /// Lower-case hex SHA-256 of the weights file; for a sharded or several-file model, the SHA-256 of the
    /// concatenation of the files' SHA-256 digests, in file-name order.
    pub sha256: String,
    /// Storage dtype of the weights on disk (`"f32"`, `"f16"`, `"bf16"`); compute is always f32.
    pub dtype: String,
    /// Sizes.
    pub dims: Dims,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// Number of parameters, tied tensors counted once.
    pub n_params: u64,
    /// Whether outputs at a position depend only on tokens at or before it.
    pub causal: bool,
}

/// A model runner. Implemented by the CPU engines here and by the CUDA engine in `genomamba-cuda`.
pub trait Engine: Send {
    /// The model this engine runs.
    fn info(&self) -> &ModelInfo;
    /// Width of one row of [`Output::hidden`] (`d_model` for Mamba).
    fn hidden_width(&self) -> usize;
    /// Whether the model is causal (state can be carried across calls with `fresh = false`).
    fn is_causal(&self) -> bool;
    /// Where the engine runs: `"cpu"` or e.g. `"cuda:0 (NVIDIA H200)"`.
    fn device(&self) -> String;
    /// Runs `tokens` (token ids). `fresh`: start a new window (reset all state); otherwise continue from the
    /// state the previous call left (causal models only). Internally processes in chunks. Fills `out` with
    /// one row per token, reusing its buffers (previous contents are replaced).
    fn run(&mut self, tokens: &[u8], fresh: bool, want: Want, out: &mut Output) -> Result<()>;
    /// The arithmetic precision of activations and projections (`"f32"`, or `"bf16"` on a GPU).
    fn compute_dtype(&self) -> &'static str {
        "f32"
    }
    /// Whether [`Output::hidden`] of the reverse complement equals this one reversed by position (an
    /// RC-equivariant model's strand-symmetric embedding), so a `--strand both` pass would add nothing.
    fn strand_symmetric(&self) -> bool {
        false
    }
    /// Whether [`Engine::run_batch`] beats one fresh [`Engine::run`] per sequence (a GPU filling one launch
    /// with many reads or windows); callers gather batches only then.
    fn prefers_batches(&self) -> bool {
        false
    }
    /// Runs each of `seqs` as its own fresh window, as `run(seq, true, want, ..)` would, and fills `outs[i]`
    /// for `seqs[i]` (`outs` resized to `seqs.len()`). Leaves no state to continue from: the next `run` must
    /// be fresh. The default runs them one by one.
    fn run_batch(&mut self, seqs: &[&[u8]], want: Want, outs: &mut Vec<Output>) -> Result<()> {
        outs.resize_with(seqs.len(), Output::default);
        for (seq, out) in seqs.iter().zip(outs.iter_mut()) {
            self.run(seq, true, want, out)?;
        }
        Ok(())
    }
}

/// Token ids of A, C, G, T in the character vocabulary (DESIGN.md §3), in that order.
pub const BASE_TOKENS: [usize; 4] = [7, 8, 9, 10];
