//! The pipeline's error type.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading an input failed; the message names the file, the record and the position.
    #[error(transparent)]
    Input(#[from] std::io::Error),
    /// The model or engine failed.
    #[error(transparent)]
    Model(#[from] genomamba_model::Error),
    /// Writing the output failed.
    #[error(transparent)]
    Output(#[from] genomamba_parquet::Error),
    /// The run was interrupted (Ctrl-C); no output was left behind.
    #[error("interrupted")]
    Interrupted,
    /// The settings do not fit the inputs or the model.
    #[error("{0}")]
    Invalid(String),
    /// A worker thread stopped without reporting why.
    #[error("internal error: the {0} thread stopped unexpectedly")]
    Thread(&'static str),
}

/// The pipeline's result type.
pub type Result<T> = std::result::Result<T, Error>;
