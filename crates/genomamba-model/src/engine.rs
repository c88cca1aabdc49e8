//! The engine trait every backend (reference, fast CPU, CUDA, bidirectional Caduceus) implements.
//!
//! Callers hold a `Box<dyn Engine>` and call [`Engine::run`] once per window piece; the engine keeps the
//! per-layer state between calls, so a causal model can stream a whole chromosome in pieces.

use std::ops::Range;

use crate::state::State;
use crate::{Error, Result};

/// What a [`Engine::run`] call should compute. Asking for less saves work (no LM head, no hidden copy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// Fill [`Output::hidden`] with the final hidden state after `norm_f` (transformers' `last_hidden_state`), or
    /// the residual stream after the last block of a truncated model ([`crate::Model::truncate`]).
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
    /// Copies the state the last [`Engine::run`] left (every block's conv and SSM state and the next base's
    /// distribution) into `into`, so that [`Engine::restore_state`] can later continue from this point: many
    /// continuations of one prefix (variant haplotypes) then cost their own length only. Causal engines that
    /// support it; the default is an error.
    fn save_state(&mut self, into: &mut State) -> Result<()> {
        let _ = into;
        Err(Error::Unsupported(format!(
            "saving the state ({} engine)",
            self.device()
        )))
    }
    /// Makes `from` (from [`Engine::save_state`] of an engine of the same model) the state the next
    /// `run(.., fresh = false, ..)` continues from. The default is an error.
    fn restore_state(&mut self, from: &State) -> Result<()> {
        let _ = from;
        Err(Error::Unsupported(format!(
            "restoring a state ({} engine)",
            self.device()
        )))
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
    /// Whether [`Engine::run_sums`] sums where the hidden states are (on a GPU, so only the sums cross to the
    /// host). Otherwise a caller making many calls sums on the host with a buffer of its own ([`sums_on_host`]).
    fn sums_on_device(&self) -> bool {
        false
    }
    /// Runs `tokens` as [`Engine::run`] would and sets `sums` to the sums of the final hidden rows over each of
    /// `segments` (row ranges of this call, within `0..tokens.len()`, in any order): `(segments.len(),
    /// hidden_width)` f64 row-major, each a sum in row order. The default runs [`Engine::run`] and sums on the
    /// host ([`sums_on_host`] with a fresh output buffer; a caller making many calls passes its own).
    fn run_sums(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        segments: &[Range<usize>],
        sums: &mut Vec<f64>,
    ) -> Result<()> {
        sums_on_host(self, &mut Output::default(), tokens, fresh, segments, sums)
    }
    /// [`Engine::run_sums`] for many fresh windows, as [`Engine::run_batch`] runs them: `sums[i]` for `seqs[i]`
    /// over `segments[i]` (`sums` resized to `seqs.len()`). Leaves no state to continue from. The default
    /// runs one fresh [`Engine::run_sums`] each.
    fn run_batch_sums(
        &mut self,
        seqs: &[&[u8]],
        segments: &[&[Range<usize>]],
        sums: &mut Vec<Vec<f64>>,
    ) -> Result<()> {
        check_segment_lists(seqs, segments)?;
        sums.resize_with(seqs.len(), Vec::new);
        for ((seq, segs), s) in seqs.iter().zip(segments).zip(sums.iter_mut()) {
            self.run_sums(seq, true, segs, s)?;
        }
        Ok(())
    }
}

/// Hidden rows only.
pub(crate) const HIDDEN: Want = Want {
    hidden: true,
    base_probs: false,
};

/// [`Engine::run_sums`] on the host: runs `engine` for hidden rows into `scratch` (reusable across calls) and
/// sums them over `segments` into `sums` with [`sum_segments`].
pub fn sums_on_host<E: Engine + ?Sized>(
    engine: &mut E,
    scratch: &mut Output,
    tokens: &[u8],
    fresh: bool,
    segments: &[Range<usize>],
    sums: &mut Vec<f64>,
) -> Result<()> {
    check_segments(segments, tokens.len())?;
    engine.run(tokens, fresh, HIDDEN, scratch)?;
    sum_segments(&scratch.hidden, engine.hidden_width(), segments, sums);
    Ok(())
}

/// Errors unless every segment lies within `0..rows`.
pub fn check_segments(segments: &[Range<usize>], rows: usize) -> Result<()> {
    match segments.iter().find(|s| s.start > s.end || s.end > rows) {
        Some(s) => Err(Error::Usage(format!(
            "segment {}..{} outside the {rows} rows of the call",
            s.start, s.end
        ))),
        None => Ok(()),
    }
}

/// Errors unless there is one segment list per sequence and each lies within its sequence ([`check_segments`]).
pub fn check_segment_lists(seqs: &[&[u8]], segments: &[&[Range<usize>]]) -> Result<()> {
    if segments.len() != seqs.len() {
        return Err(Error::Usage(format!(
            "{} segment lists for {} sequences",
            segments.len(),
            seqs.len()
        )));
    }
    for (segs, seq) in segments.iter().zip(seqs) {
        check_segments(segs, seq.len())?;
    }
    Ok(())
}

/// Sets `sums` to the sums over each of `segments` of the rows of `hidden` (`(rows, width)` f32): `(segments.len(),
/// width)` f64, each summed in row order. Segments must lie within the rows ([`check_segments`]).
pub fn sum_segments(hidden: &[f32], width: usize, segments: &[Range<usize>], sums: &mut Vec<f64>) {
    sums.clear();
    sums.resize(segments.len() * width, 0.0);
    if width == 0 {
        return;
    }
    for (seg, sum) in segments.iter().zip(sums.chunks_exact_mut(width)) {
        for row in hidden[seg.start * width..seg.end * width].chunks_exact(width) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
    }
}

/// Token ids of A, C, G, T in the character vocabulary (DESIGN.md §3), in that order.
pub const BASE_TOKENS: [usize; 4] = [7, 8, 9, 10];

#[cfg(test)]
// Segment lists of one range are slices, not ranges collected.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Model, cpu_engine};

    fn engine() -> Box<dyn Engine> {
        let dims = Dims {
            d_model: 8,
            n_layer: 2,
            d_inner: 16,
            d_state: 4,
            d_conv: 4,
            dt_rank: 1,
            vocab_size: 16,
        };
        cpu_engine(Arc::new(Model::random(dims, 5)), 1, 16).expect("engine")
    }

    fn tokens(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| 7 + ((i * 5 + seed) % 4) as u8).collect()
    }

    /// Each segment's sum is the f64 sum of its hidden rows from `run`; an empty segment sums to zero.
    #[test]
    fn test_run_sums_sum_the_hidden_rows_of_each_segment() {
        let mut eng = engine();
        let toks = tokens(50, 1);
        let mut out = Output::default();
        eng.run(&toks, true, HIDDEN, &mut out).expect("run");
        let segments = [3..10, 10..11, 40..50, 7..7, 0..50];
        let mut sums = Vec::new();
        eng.run_sums(&toks, true, &segments, &mut sums)
            .expect("sums");
        let w = eng.hidden_width();
        assert_eq!(sums.len(), segments.len() * w);
        for (seg, got) in segments.iter().zip(sums.chunks_exact(w)) {
            for (c, &g) in got.iter().enumerate() {
                let want: f64 = seg.clone().map(|r| f64::from(out.hidden[r * w + c])).sum();
                assert_eq!(g, want, "{seg:?} column {c}");
            }
        }
        assert!(sums[3 * w..4 * w].iter().all(|&v| v == 0.0));
        assert!(
            eng.run_sums(&toks, true, &[45..51], &mut sums).is_err(),
            "a segment past the rows is an error"
        );
    }

    /// The batched form gives each sequence what a fresh `run_sums` gives it.
    #[test]
    fn test_run_batch_sums_match_one_by_one() {
        let mut eng = engine();
        let seqs = [tokens(30, 2), tokens(7, 3)];
        let segs: [&[Range<usize>]; 2] = [&[0..30, 5..9], &[2..7]];
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let mut sums = Vec::new();
        eng.run_batch_sums(&refs, &segs, &mut sums).expect("batch");
        for ((seq, seg), got) in seqs.iter().zip(segs).zip(&sums) {
            let mut want = Vec::new();
            eng.run_sums(seq, true, seg, &mut want).expect("one");
            assert_eq!(got, &want);
        }
        assert!(eng.run_batch_sums(&refs, &segs[..1], &mut sums).is_err());
    }
}
