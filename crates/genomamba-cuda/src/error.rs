//! The crate's error type.

/// Errors from probing the GPU, compiling kernels or running the CUDA engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU: no driver library, no device at this ordinal, or the driver refused to initialise.
    #[error("no usable CUDA GPU: {reason}")]
    GpuUnavailable {
        /// Why, in words (names the missing library or the driver's error).
        reason: String,
    },
    /// A CUDA library (NVRTC, cuBLAS) is not on the loader path.
    #[error("CUDA library {lib} not found: {hint}")]
    LibraryMissing {
        /// Short library name (`nvrtc`, `cublas`).
        lib: &'static str,
        /// How to make it findable.
        hint: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    /// A cuBLAS call failed.
    #[error("cuBLAS: {0:?}")]
    Cublas(#[from] cudarc::cublas::result::CublasError),
    /// NVRTC refused a kernel; `log` is the compiler's program log.
    #[error("NVRTC compiling {kernel} ({options}): {status:?}\n{log}")]
    Compile {
        /// Kernel file name.
        kernel: String,
        /// Options passed, space separated.
        options: String,
        /// NVRTC status.
        status: cudarc::nvrtc::result::NvrtcError,
        /// Program log.
        log: String,
    },
    /// The model has a shape the kernels do not support.
    #[error("unsupported by the CUDA engine: {0}")]
    Unsupported(String),
    /// A size overflowed the 32-bit kernel arguments or host arithmetic.
    #[error("size too large for the CUDA engine: {0}")]
    TooLarge(String),
    /// An error from the model crate (e.g. a token outside the vocabulary).
    #[error(transparent)]
    Model(#[from] genomamba_model::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for genomamba_model::Error {
    /// The engine trait returns the model crate's error; CUDA failures travel as its `Usage` text until it
    /// has a variant for backend failures.
    fn from(e: Error) -> Self {
        match e {
            Error::Model(m) => m,
            other => genomamba_model::Error::Usage(other.to_string()),
        }
    }
}
