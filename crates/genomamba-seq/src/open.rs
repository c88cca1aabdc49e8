//! Choosing and opening a reader: [`open`] for paths (and `-`), [`open_reader`] for any byte stream.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    num::NonZero,
    path::{Path, PathBuf},
};

use flate2::read::MultiGzDecoder;
use noodles::bgzf;

pub use crate::bam::ReadFilter;
use crate::{
    Region, bam,
    bgzf_eof::EofChecked,
    fasta, fastq,
    source::{SequenceSource, context, invalid_data},
};

/// An input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// FASTA (plain, gzip or bgzip).
    Fasta,
    /// FASTQ (plain or gzip).
    Fastq,
    /// BAM.
    Bam,
    /// CRAM (needs a reference).
    Cram,
}

/// What to open and how: format override, regions, record names, CRAM reference, read filter.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Format override; `None` = sniff the first bytes.
    pub format: Option<Format>,
    /// Regions to read, in order (FASTA needs `.fai` (+`.gzi`), BAM `.bai`/`.csi`, CRAM `.crai`).
    pub regions: Vec<Region>,
    /// FASTA records to read, by name (through the index when there is one, else by streaming).
    pub names: Vec<String>,
    /// Reference FASTA for CRAM.
    pub reference: Option<PathBuf>,
    /// Read filter for BAM/CRAM.
    pub filter: ReadFilter,
    /// BGZF decompression threads for streamed bgzip/BAM input (0 = available parallelism, at most 4).
    pub threads: usize,
    /// Bases of context to stream before and after each FASTA region (clipped to the record), so that a
    /// region's first window gets the same burn-in (and a bidirectional model the same flanks) as in a run
    /// over the whole record. Reported as [`crate::SequenceInfo::lead`] and [`crate::SequenceInfo::trail`].
    pub context: (u64, u64),
}

impl OpenOptions {
    /// Sets the context streamed before and after each FASTA region.
    pub fn with_context(mut self, before: u64, after: u64) -> Self {
        self.context = (before, after);
        self
    }
    /// Sets the format override.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }
    /// Sets the regions.
    pub fn with_regions(mut self, regions: Vec<Region>) -> Self {
        self.regions = regions;
        self
    }
    /// Sets the record names.
    pub fn with_names(mut self, names: Vec<String>) -> Self {
        self.names = names;
        self
    }
    /// Sets the CRAM reference.
    pub fn with_reference(mut self, path: impl Into<PathBuf>) -> Self {
        self.reference = Some(path.into());
        self
    }
    /// Sets the read filter.
    pub fn with_filter(mut self, filter: ReadFilter) -> Self {
        self.filter = filter;
        self
    }

    fn workers(&self) -> NonZero<usize> {
        let n = if self.threads == 0 {
            std::thread::available_parallelism()
                .map_or(1, NonZero::get)
                .min(4)
        } else {
            self.threads
        };
        NonZero::new(n).unwrap_or(NonZero::<usize>::MIN)
    }
}

/// Compression of the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bgzf,
}

/// The compression the first bytes of a file announce (18 bytes tell BGZF from gzip; 2 tell gzip).
pub(crate) fn compression(head: &[u8]) -> Compression {
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        // BGZF: FLG.FEXTRA and a `BC` subfield first (SAM spec §4.1).
        if head.len() >= 14 && head[3] & 4 != 0 && &head[12..14] == b"BC" {
            Compression::Bgzf
        } else {
            Compression::Gzip
        }
    } else {
        Compression::None
    }
}

/// A file format genomamba does not read, recognised by its first bytes so that the error says what it is and
/// how to convert it (rather than "unknown format"): (what it is, the program that writes it out as text, which
/// is followed by the file's name).
fn foreign_container(head: &[u8]) -> Option<(&'static str, &'static str)> {
    match head {
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(("xz-compressed", "xz -dc")),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(("bzip2-compressed", "bzip2 -dc")),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(("zstd-compressed", "zstd -dc")),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(("lz4-compressed", "lz4 -dc")),
        [b'P', b'K', 3, 4, ..] => Some(("a zip archive", "unzip -p")),
        // UCSC .2bit, either byte order.
        [0x43, 0x27, 0x41, 0x1a, ..] | [0x1a, 0x41, 0x27, 0x43, ..] => {
            Some(("a UCSC .2bit file", "twoBitToFa"))
        }
        _ => None,
    }
}

/// Why a file in a compression or container genomamba does not read (xz, bzip2, zstd, lz4, zip, .2bit) is
/// refused, with the command that converts it; `None` for any other first bytes (at least 6 tell).
pub(crate) fn foreign_reason(head: &[u8], name: &str) -> Option<String> {
    let (what, program) = foreign_container(head)?;
    let out = if program == "twoBitToFa" {
        " stdout"
    } else {
        ""
    };
    let how = if name == "-" {
        format!("convert it before the pipe, `{program} FILE{out} | genomamba <command> - ...`")
    } else {
        format!("convert it with `{program} {name}{out} | bgzip > converted.gz`")
    };
    Some(format!(
        "this is {what}, which genomamba does not read (it reads plain text, gzip and bgzip, BAM and CRAM): \
         {how}"
    ))
}

/// [`foreign_reason`] as an error naming the input.
pub(crate) fn refuse_foreign(head: &[u8], name: &str) -> io::Result<()> {
    match foreign_reason(head, name) {
        Some(why) => Err(invalid_data(name, why)),
        None => Ok(()),
    }
}

/// Whether the first bytes are a SAM text header line (`@HD`, `@SQ`, `@RG`, `@PG` or `@CO` and a tab), which
/// would otherwise pass for a FASTQ read name.
pub(crate) fn is_sam_text(head: &[u8]) -> bool {
    matches!(
        head,
        [b'@', b'H', b'D', b'\t', ..]
            | [b'@', b'S', b'Q', b'\t', ..]
            | [b'@', b'R', b'G', b'\t', ..]
            | [b'@', b'P', b'G', b'\t', ..]
            | [b'@', b'C', b'O', b'\t', ..]
    )
}

/// The error for SAM text given as input.
pub(crate) fn sam_text_error(input: &str) -> io::Error {
    invalid_data(
        input,
        "this is SAM text, which is not read: convert it with `samtools view -b` (BAM) or give the reads as \
         FASTQ",
    )
}

/// The format of the first bytes (after blank lines), else of `name`'s extension when `by_name`; SAM text, an
/// empty input and an unknown format are errors naming the input.
fn sniff(head: &[u8], name: &str, by_name: bool) -> io::Result<Format> {
    if head.is_empty() {
        return Err(invalid_data(name, "empty input"));
    }
    if is_sam_text(head) {
        return Err(sam_text_error(name));
    }
    format_of(head)
        .or_else(|| by_name.then(|| format_from_extension(name)).flatten())
        .ok_or_else(|| {
            invalid_data(
                name,
                "unknown format: not FASTA ('>'), FASTQ ('@'), BAM or CRAM; give the format explicitly",
            )
        })
}

fn format_of(head: &[u8]) -> Option<Format> {
    match head {
        [b'B', b'A', b'M', 1, ..] => Some(Format::Bam),
        [b'C', b'R', b'A', b'M', ..] => Some(Format::Cram),
        [b'>', ..] => Some(Format::Fasta),
        [b'@', ..] => Some(Format::Fastq),
        _ => None,
    }
}

fn format_from_extension(path: &str) -> Option<Format> {
    let p = path
        .strip_suffix(".gz")
        .or_else(|| path.strip_suffix(".bgz"))
        .unwrap_or(path);
    let ext = p.rsplit('.').next()?.to_ascii_lowercase();
    match ext.as_str() {
        "fa" | "fasta" | "fna" | "fas" | "ffn" | "frn" | "faa" | "mfa" => Some(Format::Fasta),
        "fq" | "fastq" => Some(Format::Fastq),
        "bam" => Some(Format::Bam),
        "cram" => Some(Format::Cram),
        _ => None,
    }
}

/// Looks at the first bytes after leading blank lines.
fn peek_nonblank(r: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    loop {
        let buf = r.fill_buf()?;
        match buf.first() {
            Some(b'\n' | b'\r') => r.consume(1),
            _ => return Ok(buf[..buf.len().min(16)].to_vec()),
        }
    }
}

/// Opens the input at `path` (`-` = standard input), choosing the reader from the first bytes (or
/// `opts.format`). A path that is not a regular file (a named pipe, process substitution's `/dev/fd/N`) is
/// opened once and read as a stream, as standard input is: regions are refused there.
///
/// ```no_run
/// use genomamba_seq::{open, OpenOptions, Region};
/// let opts = OpenOptions::default().with_regions(vec!["NC_001416.1:1-100".parse()?]);
/// let mut src = open("lambda.fa.gz".as_ref(), &opts)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open(path: &Path, opts: &OpenOptions) -> io::Result<Box<dyn SequenceSource>> {
    let name = path.display().to_string();
    if name == "-" {
        return open_reader(Box::new(io::stdin()), "-", opts);
    }
    // A named pipe (`<(zcat x.fa.gz)`, `/dev/fd/N`) can be read only once: open it once and sniff it in the
    // same buffered stream, as standard input.
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(invalid_data(&name, "is a directory, not a sequence file"));
        }
        if !meta.is_file() {
            if !opts.regions.is_empty() {
                // Refused before opening: opening a pipe waits for its writer.
                return open_reader(Box::new(io::empty()), &name, opts);
            }
            let file = File::open(path).map_err(|e| context(&name, "opening", e))?;
            return open_reader(Box::new(file), &name, opts);
        }
    }
    let comp = file_compression(path, &name)?;
    let file = File::open(path).map_err(|e| context(&name, "opening", e))?;
    let format = match opts.format {
        Some(f) => f,
        None => sniff_file(path, comp, &name)?,
    };
    // Named records go through the index when it can be read by region (bgzip needs its .gzi too); else the
    // file is streamed and the other records skipped.
    let needs_index = !opts.regions.is_empty()
        || (format == Format::Fasta
            && !opts.names.is_empty()
            && fasta::indexed::with_suffix(path, ".fai").exists()
            && fasta::indexed::unusable(path, comp).is_none());
    match format {
        Format::Fasta if needs_index => {
            if comp == Compression::Gzip {
                return Err(invalid_data(
                    &name,
                    "region queries need a bgzip-compressed, indexed FASTA; this file is plain gzip: \
                     re-compress it with `bgzip` and index it with `samtools faidx`",
                ));
            }
            let mut regions = opts.regions.clone();
            regions.extend(opts.names.iter().map(Region::whole));
            Ok(Box::new(fasta::indexed::IndexedReader::open(
                path,
                comp == Compression::Bgzf,
                regions,
                opts.context,
            )?))
        }
        Format::Bam if !opts.regions.is_empty() => Ok(Box::new(bam::QueryReader::open(
            path,
            opts.regions.clone(),
            opts.filter,
        )?)),
        Format::Cram if !opts.regions.is_empty() => Ok(Box::new(bam::cram::Reader::query(
            path,
            opts.regions.clone(),
            opts.reference.as_deref(),
            opts.filter,
        )?)),
        Format::Fastq if !opts.regions.is_empty() => {
            Err(invalid_data(&name, "regions do not apply to FASTQ input"))
        }
        _ => from_stream(
            Box::new(BufReader::with_capacity(1 << 17, file)),
            comp,
            format,
            name,
            opts,
        ),
    }
}

/// The record names regions of the input at `path` are looked up in: an indexed FASTA's `.fai`, a BAM's or
/// CRAM's header (`@SQ`). `None` for what cannot be read by region (FASTQ, a FASTA without its index, a pipe).
pub fn record_names(path: &Path) -> io::Result<Option<Vec<String>>> {
    let name = path.display().to_string();
    if name == "-" || !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let comp = file_compression(path, &name)?;
    let header = match sniff_file(path, comp, &name)? {
        Format::Fasta => {
            return Ok(match fasta::indexed::region_index(path, &[])? {
                fasta::indexed::RegionIndex::Ready(records) => {
                    Some(records.into_iter().map(|(n, _)| n).collect())
                }
                _ => None,
            });
        }
        Format::Fastq => return Ok(None),
        Format::Bam => noodles::bam::io::Reader::new(File::open(path)?)
            .read_header()
            .map_err(|e| context(&name, "reading the BAM header", e))?,
        Format::Cram => noodles::cram::io::reader::Builder::default()
            .build_from_path(path)
            .map_err(|e| context(&name, "opening", e))?
            .read_header()
            .map_err(|e| context(&name, "reading the CRAM header", e))?,
    };
    Ok(Some(
        header
            .reference_sequences()
            .keys()
            .map(|k| k.to_string())
            .collect(),
    ))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The compression of the file at `path`, from its first bytes.
pub(crate) fn file_compression(path: &Path, name: &str) -> io::Result<Compression> {
    let mut file = File::open(path).map_err(|e| context(name, "opening", e))?;
    let mut head = [0u8; 18];
    let n = read_up_to(&mut file, &mut head).map_err(|e| context(name, "reading", e))?;
    refuse_foreign(&head[..n], name)?;
    Ok(compression(&head[..n]))
}

fn sniff_file(path: &Path, comp: Compression, name: &str) -> io::Result<Format> {
    let file = File::open(path).map_err(|e| context(name, "opening", e))?;
    let mut inner: Box<dyn BufRead> = match comp {
        Compression::None => Box::new(BufReader::new(file)),
        _ => Box::new(BufReader::new(MultiGzDecoder::new(file))),
    };
    let head = peek_nonblank(&mut *inner).map_err(|e| context(name, "reading", e))?;
    sniff(&head, name, true)
}

/// The format [`open`] will find at `path` (`-`: standard input), for choosing an output table before the
/// input is opened: a file's first bytes (decompressed), else its name's extension; an empty file or one of
/// no known format is an error naming it. Standard input is peeked at without being consumed (what the first
/// read of it returned, at most 8 KiB, decompressed as far as it goes); `None` when that does not tell.
///
/// A path that is not a regular file (a named pipe, process substitution's `/dev/fd/N`) is not read at all,
/// since what is read from a pipe is gone for [`open`]: `None`.
pub fn detect_format(path: &Path) -> io::Result<Option<Format>> {
    let name = path.display().to_string();
    if name != "-" && std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    if name != "-" {
        let comp = file_compression(path, &name)?;
        return sniff_file(path, comp, &name).map(Some);
    }
    let mut stdin = io::stdin().lock();
    // `Stdin` is buffered process-wide: bytes seen here are read again by whoever reads it next.
    let head = stdin.fill_buf().map_err(|e| context(&name, "reading", e))?;
    refuse_foreign(head, &name)?;
    let mut text = Vec::with_capacity(64);
    if compression(head) == Compression::None {
        text.extend_from_slice(&head[..head.len().min(4096)]);
    } else {
        // A gzip stream cut where the buffer ends: decode what it gives before failing on the cut.
        let mut decoder = MultiGzDecoder::new(head);
        let mut chunk = [0u8; 64];
        while text.len() < 4096 {
            match decoder.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
            }
        }
    }
    let start = text
        .iter()
        .position(|b| !matches!(b, b'\n' | b'\r'))
        .unwrap_or(text.len());
    if is_sam_text(&text[start..]) {
        return Err(sam_text_error(&name));
    }
    Ok(format_of(&text[start..]))
}

/// Opens a reader over any byte stream (e.g. standard input), sniffing compression and format unless
/// `opts.format` is set. Regions need a seekable indexed file and are refused here.
pub fn open_reader(
    inner: Box<dyn Read + Send>,
    name: &str,
    opts: &OpenOptions,
) -> io::Result<Box<dyn SequenceSource>> {
    if !opts.regions.is_empty() {
        return Err(invalid_data(
            name,
            "region queries need an indexed file that can be read by position, not a stream (standard input, \
             a pipe or process substitution): give the file's path",
        ));
    }
    let mut r = BufReader::with_capacity(1 << 17, inner);
    let head = r.fill_buf().map_err(|e| context(name, "reading", e))?;
    refuse_foreign(head, name)?;
    let comp = compression(head);
    let boxed: Box<dyn BufRead + Send> = Box::new(r);
    match opts.format {
        Some(f) => from_stream(boxed, comp, f, name.to_string(), opts),
        None => {
            let mut inner = decompress(boxed, comp, opts);
            let head = peek_nonblank(&mut *inner).map_err(|e| context(name, "reading", e))?;
            let format = sniff(&head, name, name != "-")?;
            from_decompressed(inner, format, name.to_string(), opts)
        }
    }
}

fn decompress(
    inner: Box<dyn BufRead + Send>,
    comp: Compression,
    opts: &OpenOptions,
) -> Box<dyn BufRead + Send> {
    match comp {
        Compression::None => inner,
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 17,
            MultiGzDecoder::new(inner),
        )),
        // A stream that ends without the BGZF end-of-file marker fails there (it was cut at a block boundary).
        Compression::Bgzf => Box::new(bgzf::io::MultithreadedReader::with_worker_count(
            opts.workers(),
            EofChecked::new(inner),
        )),
    }
}

fn from_stream(
    inner: Box<dyn BufRead + Send>,
    comp: Compression,
    format: Format,
    name: String,
    opts: &OpenOptions,
) -> io::Result<Box<dyn SequenceSource>> {
    if format == Format::Cram {
        // CRAM has its own block compression; it is never wrapped in gzip.
        return from_decompressed(inner, format, name, opts);
    }
    from_decompressed(decompress(inner, comp, opts), format, name, opts)
}

fn from_decompressed(
    inner: Box<dyn BufRead + Send>,
    format: Format,
    name: String,
    opts: &OpenOptions,
) -> io::Result<Box<dyn SequenceSource>> {
    Ok(match format {
        Format::Fasta => Box::new(fasta::Reader::new(inner, name, &opts.names)),
        Format::Fastq => Box::new(fastq::Reader::new(inner, name)),
        Format::Bam => Box::new(bam::Reader::new(inner, name, opts.filter)?),
        Format::Cram => Box::new(bam::cram::Reader::new(
            Box::new(inner),
            name,
            opts.reference.as_deref(),
            opts.filter,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sniffing() {
        assert_eq!(
            compression(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C']),
            Compression::Bgzf
        );
        assert_eq!(
            compression(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Compression::Gzip
        );
        assert_eq!(compression(b">x"), Compression::None);
        assert_eq!(format_of(b"BAM\x01...."), Some(Format::Bam));
        assert_eq!(format_of(b"CRAM\x03"), Some(Format::Cram));
        assert_eq!(format_of(b"@r\nA"), Some(Format::Fastq));
        assert_eq!(format_of(b"ACGT"), None);
        assert!(is_sam_text(b"@HD\tVN:1.6") && is_sam_text(b"@CO\tx"));
        assert!(!is_sam_text(b"@HD_read1\nACGT") && !is_sam_text(b"@SQ"));
        assert!(sniff(b"@SQ\tSN:chr1", "x", true).is_err());
        assert_eq!(format_from_extension("x/y.fna.gz"), Some(Format::Fasta));
        assert_eq!(format_from_extension("y.FASTQ"), Some(Format::Fastq));
        assert_eq!(format_from_extension("y.txt"), None);
    }

    #[test]
    fn test_open_reader_sniffs_gzip_fastq() -> io::Result<()> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"\n@r1\nACGT\n+\nIIII\n")?;
        let gz = enc.finish()?;
        let mut src = open_reader(Box::new(io::Cursor::new(gz)), "-", &OpenOptions::default())?;
        assert_eq!(src.next_sequence()?.map(|i| i.name), Some("r1".into()));
        let e = open_reader(Box::new(&b"hello"[..]), "-", &OpenOptions::default())
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("-: unknown format")));
        Ok(())
    }
}
