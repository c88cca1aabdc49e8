//! The crate's error type.

use std::path::PathBuf;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or a field has the wrong type.
    #[error("invalid config.json: {0}")]
    Config(#[from] serde_json::Error),
    /// A config value is missing, out of range or inconsistent.
    #[error("invalid config key `{key}`: {reason}")]
    ConfigValue {
        /// The config key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--model` that is neither a directory nor a model in the Hugging Face cache.
    #[error("{0}")]
    NotFound(String),
    /// The model is not a Mamba-1 model this crate can run.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The safetensors file could not be parsed.
    #[error("invalid safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// The PyTorch `.bin` file could not be read.
    #[error("invalid pytorch checkpoint: {0}")]
    Pickle(#[from] candle_core::Error),
    /// A required tensor is absent.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// A tensor's shape disagrees with the config.
    #[error("tensor `{key}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        key: String,
        /// Shape implied by config.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A tensor has a dtype other than f32, f16 or bf16.
    #[error("tensor `{key}` has unsupported dtype {dtype}")]
    Dtype {
        /// Tensor name.
        key: String,
        /// The dtype found.
        dtype: String,
    },
    /// A weight is NaN or infinite (a corrupt or diverged checkpoint).
    #[error(
        "tensor `{key}` holds {value} at element {index}: the weights are corrupt or the training diverged"
    )]
    NonFinite {
        /// Tensor name.
        key: String,
        /// Element index, row-major.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// A checkpoint holds a tensor this crate does not know, which might change the maths.
    #[error("unexpected tensor `{0}` (not part of a Mamba-1 model)")]
    UnexpectedTensor(String),
    /// A token id is outside the vocabulary.
    #[error("token id {token} at offset {offset} is outside the vocabulary of {vocab}")]
    Token {
        /// The id.
        token: u8,
        /// Its offset in the call's input.
        offset: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// `fresh = false` asked of a model that cannot carry state.
    #[error("{0}")]
    Usage(String),
    /// An internal consistency check failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// The thread pool could not be built.
    #[error("building thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
