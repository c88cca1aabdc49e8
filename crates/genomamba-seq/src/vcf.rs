//! VCF (and BCF) sites for variant scoring: the CHROM, POS, ID, REF and ALT columns of every data line.
//!
//! The VCF text is read by noodles-vcf (the `vcf` feature of noodles, a dependency of the product anyway):
//! [`noodles::vcf::io::Reader::read_header`] reads and checks the header, then
//! [`noodles::vcf::io::Reader::read_record`] reads each data line into a lazily parsed
//! [`noodles::vcf::Record`], whose five fields we read at once so that a bad value is reported at its line.
//! What this module adds:
//! - Line numbers. noodles' errors carry none; a counting reader under noodles knows how many lines it has
//!   handed over, so every error reads `{source}: line {n}: ...`, with the column and value (`POS 'x': ...`)
//!   where the failure is a field's.
//! - Compressed input: gzip or bgzip, sniffed from the magic bytes (not the file name), goes through flate2's
//!   [`MultiGzDecoder`], which reads a bgzip file's many members in order; a seekable BGZF reader would buy
//!   nothing for one pass. A truncated file is reported as such.
//! - BCF, recognised by its magic bytes after decompression (`bcftools view -Ob`, or `-Ou` uncompressed), is
//!   read by noodles-bcf into the same records, numbered by record instead of line (module `vcf::bcf`).
//!
//! noodles decides what is valid VCF. Among what it refuses (and an earlier hand-written parser here
//! accepted): data lines of fewer than the 8 fixed columns (CHROM to INFO; 5-column sites-only lines are
//! refused), empty columns, blank lines, invalid UTF-8 anywhere in a line or the header, a byte order mark,
//! and meta lines it cannot parse or that repeat an ID (`##INFO`, `##contig`, ...). It accepts POS `0`
//! (telomeric breakends, VCF 4.3), which is kept as 0 for the caller to handle, POS written with a leading
//! `+`, and empty ALT alleles (`G,`). QUAL, FILTER, INFO and the samples are not interpreted (noodles
//! parses them lazily, and they are never asked for).
//!
//! Coordinates: [`VcfRecord::pos`] is VCF's 1-based POS unchanged (DESIGN §4); the caller converts.

use std::{
    error::Error as _,
    fs::File,
    io::{self, BufRead, BufReader, Cursor, Read},
    path::Path,
    str,
    sync::{Arc, Mutex},
};

use flate2::read::MultiGzDecoder;
use noodles::vcf::{
    self as nv, header::parser::ParseError as HeaderError, variant::record::AlternateBases as _,
};
use sha2::{Digest as _, Sha256};

use crate::{
    bgzf_eof::EofChecked,
    open::{Compression, compression, read_up_to, refuse_foreign},
    source::{context, invalid_data},
};

/// One VCF data line (all its ALT alleles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcfRecord {
    /// CHROM; records of one contig share it (a VCF of millions of sites holds each name once, not once a
    /// record).
    pub chrom: Arc<str>,
    /// POS, 1-based as in the file; 0 for a telomeric breakend (VCF 4.3), which is no base.
    pub pos: u64,
    /// ID; None for `.` (several IDs stay joined by `;` as written).
    pub id: Option<String>,
    /// REF as written.
    pub reference: String,
    /// ALT alleles as written, split on `,`; empty for `.`.
    pub alts: Vec<String>,
    /// 1-based line number in the (decompressed) file, for messages; in a BCF, the record's number.
    pub line: u64,
}

/// A VCF file's records and the checksum of its bytes, as [`read_path`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcfFile {
    /// Every data record, in the file's order.
    pub records: Vec<VcfRecord>,
    /// SHA-256 (hex) of the file's bytes as stored (compressed if it is), so that an output names the exact
    /// file it scored: `sha256sum calls.vcf.gz` gives the same.
    pub sha256: String,
}

/// Reads every data record of a VCF file: plain text, gzip or bgzip, or BCF (sniffed from the first bytes,
/// not the file name); `-` is standard input. Errors name the file (and the line, for bad content). Every byte
/// is read, so the checksum covers the whole file even where the records end before it does.
pub fn read_path(path: &Path) -> io::Result<VcfFile> {
    let mut reader = open(path)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    records.shrink_to_fit();
    Ok(VcfFile {
        records,
        sha256: reader.sha256()?,
    })
}

/// A [`VcfReader`] of the file at `path` (`-`: standard input), named by its path in errors.
pub fn open(path: &Path) -> io::Result<VcfReader<'static>> {
    let name = path.display().to_string();
    if name == "-" {
        return VcfReader::new(BufReader::with_capacity(1 << 16, io::stdin()), &name);
    }
    if path.is_dir() {
        return Err(invalid_data(&name, "is a directory, not a VCF"));
    }
    let file = File::open(path).map_err(|e| context(&name, "opening", e))?;
    VcfReader::new(BufReader::with_capacity(1 << 16, file), &name)
}

/// A VCF or BCF read one record at a time, in memory that does not grow with the file, its bytes (as stored,
/// compressed if they are) hashed as they are read.
///
/// ```
/// use genomamba_seq::vcf::VcfReader;
/// let data: &[u8] = b"##fileformat=VCFv4.3\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
///     chr1\t10\trs1\tA\tG\t.\t.\t.\n";
/// let mut reader = VcfReader::new(data, "x.vcf")?;
/// assert_eq!(reader.next_record()?.map(|r| r.pos), Some(10));
/// assert_eq!(reader.next_record()?, None);
/// assert_eq!(reader.sha256()?.len(), 64);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct VcfReader<'r> {
    source: String,
    format: Format<'r>,
    /// The input as stored, hashed as the decoder above it reads it; shared with that decoder.
    input: Shared<Sha256Reader<Box<dyn BufRead + Send + 'r>>>,
    /// The last record's CHROM, which the next record shares when it names the same contig (a VCF of millions
    /// of sites then holds each name once).
    chrom: Option<Arc<str>>,
}

/// What a [`VcfReader`] decodes with.
enum Format<'r> {
    /// VCF text, through noodles-vcf under a line counter; `compressed` only adds a hint to an unexpected end.
    Text {
        reader: nv::io::Reader<LineCounter<Box<dyn Read + Send + 'r>>>,
        record: nv::Record,
        compressed: bool,
    },
    /// BCF, through noodles-bcf; `n`: the number of records read.
    Bcf {
        reader: noodles::bcf::io::Reader<bcf::Framed<Box<dyn Read + Send + 'r>>>,
        header: Box<nv::Header>,
        record: noodles::bcf::Record,
        n: u64,
    },
}

impl<'r> VcfReader<'r> {
    /// Sniffs `reader` (VCF plain, gzip or bgzip, or BCF) and reads its header; `source` names it in errors.
    ///
    /// The header must be valid for noodles (first line `##fileformat=VCF...`, meta lines, the `#CHROM` line);
    /// each data line needs the 8 fixed columns; CRLF line ends are accepted. Columns after ALT are not
    /// interpreted.
    pub fn new<R: BufRead + Send + 'r>(reader: R, source: &str) -> io::Result<Self> {
        let input = Shared(Arc::new(Mutex::new(Sha256Reader {
            inner: Box::new(reader) as Box<dyn BufRead + Send + 'r>,
            digest: Sha256::new(),
        })));
        let (text, compressed, is_bcf) = decoded(input.clone(), source)?;
        let format = if is_bcf {
            let (reader, header) = bcf::open(text, source)?;
            Format::Bcf {
                reader,
                header: Box::new(header),
                record: noodles::bcf::Record::default(),
                n: 0,
            }
        } else {
            let mut reader = nv::io::Reader::new(LineCounter::new(text));
            if let Err(e) = reader.read_header() {
                return Err(header_error(reader.get_mut(), &e, source, compressed));
            }
            Format::Text {
                reader,
                record: nv::Record::default(),
                compressed,
            }
        };
        Ok(Self {
            source: source.to_string(),
            format,
            input,
            chrom: None,
        })
    }

    /// The next data record, or `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<VcfRecord>> {
        let source = self.source.as_str();
        match &mut self.format {
            Format::Text {
                reader,
                record,
                compressed,
            } => next_text(reader, record, *compressed, source, &mut self.chrom),
            Format::Bcf {
                reader,
                header,
                record,
                n,
            } => bcf::next(reader, header, record, n, source, &mut self.chrom),
        }
    }

    /// Reads the rest of the input and returns the SHA-256 (hex) of all its bytes as stored: `sha256sum` of the
    /// file gives the same.
    pub fn sha256(self) -> io::Result<String> {
        let source = self.source;
        drop(self.format);
        let mut input =
            self.input.0.lock().map_err(|_| {
                io::Error::other(format!("{source}: reading: a reader thread failed"))
            })?;
        io::copy(&mut *input, &mut io::sink()).map_err(|e| context(&source, "reading", e))?;
        Ok(input.hex())
    }
}

/// Runs `consume` on `reader` through a SHA-256 of the bytes it takes, then reads the rest of the input into the
/// same digest; returns what `consume` returned and the digest (hex).
fn hashed<R: BufRead, T>(
    reader: R,
    source: &str,
    consume: impl FnOnce(&mut Sha256Reader<R>, &str) -> io::Result<T>,
) -> io::Result<(T, String)> {
    let mut hashed = Sha256Reader {
        inner: reader,
        digest: Sha256::new(),
    };
    let value = consume(&mut hashed, source)?;
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| context(source, "reading", e))?;
    Ok((value, hashed.hex()))
}

/// A buffered reader that feeds every byte its consumer takes into a SHA-256.
struct Sha256Reader<R> {
    inner: R,
    digest: Sha256,
}

impl<R> Sha256Reader<R> {
    /// The SHA-256 (hex) of the bytes taken so far.
    fn hex(&self) -> String {
        (self.digest.clone().finalize().iter())
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl<R: BufRead> Read for Sha256Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let src = self.inner.fill_buf()?;
        let n = src.len().min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Sha256Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        // The bytes being consumed are the front of what the last `fill_buf` returned, still buffered: asking
        // again reads nothing.
        if let Ok(buffered) = self.inner.fill_buf() {
            self.digest.update(&buffered[..n.min(buffered.len())]);
        }
        self.inner.consume(n);
    }
}

/// A reader owned by two: the decoder that reads it, and the [`VcfReader`] that reads the rest at the end.
struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Read> Read for Shared<T> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("a reader thread failed"))?
            .read(out)
    }
}

/// Same as [`read_path`] from any reader (VCF plain, gzip or bgzip, or BCF; sniffed), without the checksum;
/// `source` names it in errors. [`VcfReader`] reads one record at a time.
///
/// ```
/// use genomamba_seq::vcf;
/// let data: &[u8] = b"##fileformat=VCFv4.3\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
///     chr1\t10\trs1\tA\tG,<DEL>\t.\t.\t.\nchr1\t20\t.\tAC\t.\t.\t.\t.\n\
///     chr1\t0\t.\tN\t.[chr1:1[\t.\t.\t.\n";
/// let records = vcf::read(data, "x.vcf")?;
/// assert_eq!(records[0].alts, ["G", "<DEL>"]);
/// assert_eq!((records[1].pos, records[1].id.as_deref(), records[1].line), (20, None, 4));
/// assert!(records[1].alts.is_empty());
/// // POS 0, a telomeric breakend: kept as 0, for the caller to handle.
/// assert_eq!(records[2].pos, 0);
///
/// let bad: &[u8] = b"##fileformat=VCFv4.3\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
///     chr1\tx1\t.\tA\tG\t.\t.\t.\n";
/// let e = vcf::read(bad, "x.vcf").unwrap_err();
/// assert_eq!(e.to_string(), "x.vcf: line 3: POS 'x1': invalid digit found in string");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read<R: BufRead + Send>(reader: R, source: &str) -> io::Result<Vec<VcfRecord>> {
    let mut reader = VcfReader::new(reader, source)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    records.shrink_to_fit();
    Ok(records)
}

/// The input decompressed (gzip and bgzip sniffed from the first bytes), with whether it was compressed and
/// whether it is BCF; refuses other compressions by their magic bytes.
fn decoded<'r, R: Read + Send + 'r>(
    mut reader: R,
    source: &str,
) -> io::Result<(Box<dyn Read + Send + 'r>, bool, bool)> {
    // Take the first bytes out (a `fill_buf` may hold fewer) and put them back in front: enough to tell BGZF
    // from gzip.
    let mut head = [0u8; 18];
    let n = read_up_to(&mut reader, &mut head).map_err(|e| context(source, "reading", e))?;
    refuse_foreign(&head[..n], source)?;
    let whole = Cursor::new(head[..n].to_vec()).chain(reader);
    let kind = compression(&head[..n]);
    let compressed = kind != Compression::None;
    let mut text: Box<dyn Read + Send + 'r> = match kind {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(MultiGzDecoder::new(whole)),
        // Cut at a block boundary, a bgzip file or BCF still decompresses cleanly: only the end-of-file
        // marker tells it is whole.
        Compression::Bgzf => Box::new(MultiGzDecoder::new(EofChecked::new(whole))),
    };
    let mut magic = [0u8; 3];
    let n = read_up_to(&mut text, &mut magic).map_err(|e| io_error(source, 1, &e, compressed))?;
    let is_bcf = magic[..n] == *bcf::MAGIC;
    Ok((
        Box::new(Cursor::new(magic[..n].to_vec()).chain(text)),
        compressed,
        is_bcf,
    ))
}

/// `name` as an [`Arc`], the same as `last`'s when it is the same name; `last` becomes it.
fn shared_chrom(name: &str, last: &mut Option<Arc<str>>) -> Arc<str> {
    match last {
        Some(previous) if **previous == *name => Arc::clone(previous),
        _ => Arc::clone(last.insert(name.into())),
    }
}

/// The next record of VCF text read by noodles; `compressed` only adds a hint to an unexpected end of the input.
fn next_text<R: Read>(
    reader: &mut nv::io::Reader<LineCounter<R>>,
    record: &mut nv::Record,
    compressed: bool,
    source: &str,
    chrom: &mut Option<Arc<str>>,
) -> io::Result<Option<VcfRecord>> {
    let result = reader.read_record(record);
    let counter = reader.get_ref();
    match result {
        Ok(0) => Ok(None),
        Ok(_) => {
            let n = counter.line();
            site(record, n, &counter.text, chrom)
                .map(Some)
                .map_err(|msg| invalid_data(source, format_args!("line {n}: {msg}")))
        }
        Err(e) if counter.failed => Err(io_error(source, counter.lines + 1, &e, compressed)),
        Err(e) => {
            // noodles reads a line's columns up to the 8th and stops short of the line end when it
            // runs out of them.
            let short =
                e.kind() == io::ErrorKind::UnexpectedEof || e.to_string() == "unexpected EOL";
            let hint = if short {
                " (a data line needs the 8 tab-separated columns CHROM POS ID REF ALT QUAL FILTER INFO)"
            } else {
                ""
            };
            let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
                "unexpected end of file".to_string()
            } else if e
                .get_ref()
                .is_some_and(|inner| inner.is::<str::Utf8Error>())
            {
                // noodles' byte index counts without the tabs: no help.
                "the line is not valid UTF-8".to_string()
            } else if e.to_string() == "missing field" {
                "missing field (an empty column; '.' stands for a missing value)".to_string()
            } else {
                chain(&e)
            };
            Err(invalid_data(
                source,
                format_args!("line {}: {msg}{hint}", counter.line()),
            ))
        }
    }
}

/// The fields we keep of one record read by noodles, parsing the lazy ones (POS) now; `text` is the line as
/// read, to show the value at fault. The error is the message after `line {n}: `.
fn site(
    record: &nv::Record,
    line: u64,
    text: &[u8],
    chrom: &mut Option<Arc<str>>,
) -> Result<VcfRecord, String> {
    let pos = match record.variant_start() {
        // POS 0: noodles' telomere.
        None => 0,
        // Parquet's pos column is an Int64, as are the coordinates of every other tool that reads it.
        Some(Ok(p)) if i64::try_from(p.get()).is_ok() => p.get() as u64,
        Some(Ok(_)) => {
            return Err(format!(
                "POS '{}': out of range (at most {})",
                shown(pos_text(text)),
                i64::MAX
            ));
        }
        Some(Err(e)) => {
            // noodles' message lacks the value.
            return Err(format!("POS '{}': {}", shown(pos_text(text)), chain(&e)));
        }
    };
    let id = Some(record.ids().as_ref().to_string()).filter(|id| !id.is_empty());
    let alts = record
        .alternate_bases()
        .iter()
        .map(|alt| alt.map(str::to_string))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("ALT: {}", chain(&e)))?;
    Ok(VcfRecord {
        chrom: shared_chrom(record.reference_sequence_name(), chrom),
        pos,
        id,
        reference: record.reference_bases().to_string(),
        alts,
        line,
    })
}

/// The POS column of a data line as written (its second column).
fn pos_text(line: &[u8]) -> &[u8] {
    line.split(|&b| b == b'\t').nth(1).unwrap_or_default()
}

/// The message for noodles' failure to read the header.
fn header_error<R: Read>(
    counter: &mut LineCounter<R>,
    e: &io::Error,
    source: &str,
    compressed: bool,
) -> io::Error {
    if counter.failed {
        return io_error(source, counter.lines + 1, e, compressed);
    }
    let at_end = counter.fill_buf().is_ok_and(<[u8]>::is_empty);
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<HeaderError>())
    {
        // noodles' header reader takes the lines that start with '#'; there were none.
        Some(HeaderError::Empty) if at_end => invalid_data(source, "empty file: not a VCF"),
        Some(HeaderError::Empty) => invalid_data(
            source,
            "line 1: not a VCF file: the first line does not start with '##fileformat=VCF'",
        ),
        Some(HeaderError::MissingHeader) if at_end => invalid_data(
            source,
            format_args!("VCF header: {e} (no #CHROM line before the end of the file)"),
        ),
        Some(HeaderError::MissingHeader) => invalid_data(
            source,
            format_args!(
                "line {}: VCF header: {e} (a data line before the #CHROM line)",
                counter.lines + 1
            ),
        ),
        _ => invalid_data(
            source,
            format_args!("line {}: VCF header: {}", counter.line(), chain(e)),
        ),
    }
}

/// A failure of the input itself (reading, decompressing) at line `n`; keeps the kind.
fn io_error(source: &str, n: u64, e: &io::Error, compressed: bool) -> io::Error {
    let hint = if compressed && e.kind() == io::ErrorKind::UnexpectedEof {
        " (truncated gzip file?)"
    } else {
        ""
    };
    io::Error::new(e.kind(), format!("{source}: line {n}: {e}{hint}"))
}

/// An error's message and those of its sources, joined by `: ` (noodles' messages are often only the outer
/// layer: "invalid record").
fn chain(e: &io::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        next = inner.source();
    }
    out
}

/// A buffered reader that counts the lines its reader (noodles) has consumed, keeps the last one's text, and
/// notes a failure of the input underneath, so errors can name the line and value, and tell bad input from
/// bad text.
struct LineCounter<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Line ends consumed.
    lines: u64,
    /// Whether bytes of a line were consumed after the last line end.
    mid_line: bool,
    /// The bytes of the last line consumed (of the current one if `mid_line`), without its line end.
    text: Vec<u8>,
    /// Whether reading `inner` failed.
    failed: bool,
}

impl<R: Read> LineCounter<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            pos: 0,
            filled: 0,
            lines: 0,
            mid_line: false,
            text: Vec::new(),
            failed: false,
        }
    }

    /// The line of the last byte consumed (1-based; 0 before any).
    fn line(&self) -> u64 {
        self.lines + u64::from(self.mid_line)
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let src = self.fill_buf()?;
        let n = src.len().min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                }
            };
            (self.pos, self.filled) = (0, n);
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.filled - self.pos);
        if amt > 0 {
            let mut taken = &self.buf[self.pos..self.pos + amt];
            while !taken.is_empty() {
                if !self.mid_line {
                    self.text.clear();
                }
                match memchr::memchr(b'\n', taken) {
                    Some(i) => {
                        self.text.extend_from_slice(&taken[..i]);
                        self.lines += 1;
                        self.mid_line = false;
                        taken = &taken[i + 1..];
                    }
                    None => {
                        self.text.extend_from_slice(taken);
                        self.mid_line = true;
                        taken = &[];
                    }
                }
            }
            self.pos += amt;
        }
    }
}

/// A value for a message: lossy UTF-8, control characters escaped, cut at 60 characters.
fn shown(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

pub mod annotate;
mod bcf;

#[cfg(test)]
mod tests;
