//! genomamba-seq: genome and read files in, coordinate-tagged token windows out.
//!
//! - [`open()`] picks a reader for a path (or `-` for standard input) by sniffing its first bytes: FASTA (plain,
//!   gzip, bgzip; regions through `.fai`/`.gzi`), FASTQ (plain, gzip), BAM (streamed, or region queries through
//!   `.bai`/`.csi`) and CRAM (with a reference FASTA). Every reader is a [`SequenceSource`]: a stream of
//!   sequences ([`SequenceInfo`]) whose bases are read in bounded slices, so a 250 Mb chromosome is never held
//!   whole.
//! - [`alphabet`] maps bytes to token ids through one const table (DESIGN §3).
//! - [`window::Windower`] cuts each sequence into windows (DESIGN §5) and hands out [`window::Piece`]s of tokens
//!   with their coordinates and the range of positions whose outputs are kept; [`window::Batcher`] groups
//!   short windows for a GPU.
//! - [`vcf::VcfReader`] reads the sites of a VCF or BCF file (plain, gzip, bgzip) one record at a time: CHROM,
//!   POS, ID, REF and ALT of each data line, with line-accurate errors, for variant scoring ([`vcf::read_path`]
//!   reads them all).
//!
//! Coordinates are 0-based half-open everywhere; [`Region`] converts samtools-style 1-based strings at the edge.
//!
//! ```
//! use genomamba_seq::{open_reader, window::{Event, WindowSpec, Windower}, Format, OpenOptions};
//! let fasta: &[u8] = b">chr1\nACGTACGTAC\n";
//! let src = open_reader(Box::new(fasta), "-", &OpenOptions::default().with_format(Format::Fasta))?;
//! let mut w = Windower::new(src, WindowSpec { window: 4, overlap: 2, bidirectional: false, max_piece: 1024 });
//! let mut kept = Vec::new();
//! while let Some(event) = w.next_event()? {
//!     if let Event::Piece(p) = event {
//!         kept.push((p.start + p.keep.start as u64, p.keep.len()));
//!     }
//! }
//! assert_eq!(kept, [(0, 4), (4, 4), (8, 2)]);
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod alphabet;
pub mod bam;
mod bgzf_eof;
pub mod fasta;
pub mod fastq;
pub mod open;
pub mod region;
pub mod source;
pub mod vcf;
pub mod window;

pub use open::{Format, OpenOptions, ReadFilter, open, open_reader};
pub use region::Region;
pub use source::{Alignment, SequenceInfo, SequenceSource};

/// Errors of this crate outside the readers (which return `io::Result` as noodles does).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A region string that does not parse.
    #[error("invalid region '{text}': {reason}")]
    InvalidRegion {
        /// The text given.
        text: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A bad line in a BED file.
    #[error("{path}:{line}: invalid BED line: {reason}")]
    InvalidBed {
        /// The BED file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why it is invalid.
        reason: String,
    },
    /// A region that does not fit in its record.
    #[error("region {region} is outside the record (length {length})")]
    RegionOutOfBounds {
        /// The region, samtools style.
        region: String,
        /// The record's length in bases.
        length: u64,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { source, path } => {
                std::io::Error::new(source.kind(), format!("{path}: {source}"))
            }
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}
