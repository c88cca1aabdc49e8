//! The crate's error type.

use std::path::PathBuf;

/// Errors from building batches or writing Parquet files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("creating", "renaming", ...).
        op: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output file exists and `force` was not given.
    #[error("{} already exists (use --force to overwrite)", path.display())]
    Exists {
        /// The existing output.
        path: PathBuf,
    },
    /// An embedding's length differs from the builder's dimension.
    #[error("embedding of {name}:{start}-{end} has {got} values, expected {expected}")]
    EmbeddingLength {
        /// Sequence name of the row.
        name: String,
        /// Row start (0-based).
        start: i64,
        /// Row end (exclusive).
        end: i64,
        /// The dimension D of the table.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An embedding dimension of 0 or above `i32::MAX`.
    #[error("invalid embedding dimension {0} (must be 1..=2147483647)")]
    Dimension(usize),
    /// `end < start`, or a negative coordinate.
    #[error("invalid interval {name}:{start}-{end}")]
    Interval {
        /// Sequence name of the row.
        name: String,
        /// Start (0-based).
        start: i64,
        /// End (exclusive).
        end: i64,
    },
    /// A negative variant position (VCF POS is 1-based, or 0 for a telomeric breakend).
    #[error("invalid variant position {chrom}:{pos} (VCF POS is 1-based, or 0 for a telomere)")]
    Position {
        /// Contig.
        chrom: String,
        /// The position given.
        pos: i64,
    },
    /// A reference base byte that is not printable ASCII.
    #[error("invalid reference base byte 0x{byte:02x} at {name}:{pos}")]
    Base {
        /// Sequence name.
        name: String,
        /// 0-based position.
        pos: i64,
        /// The byte.
        byte: u8,
    },
    /// Probabilities that are negative, not finite, or sum to zero.
    #[error("invalid base probabilities {probs:?} at {name}:{pos}")]
    Probabilities {
        /// Sequence name.
        name: String,
        /// 0-based position.
        pos: i64,
        /// The values given (A, C, G, T).
        probs: [f32; 4],
    },
    /// A choice of columns the table cannot have.
    #[error("columns: {0}")]
    Column(String),
    /// An Arrow error (array construction, dictionary overflow).
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A Parquet error (encoding, writing the footer, reading metadata).
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The `genomamba` metadata JSON could not be (de)serialised.
    #[error("genomamba metadata JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the operation and path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
