//! Region reads from an indexed FASTA: plain text with `.fai`, or bgzip with `.fai` and `.gzi`.
//!
//! The `.fai` is checked against the FASTA before any region of a record is read: the byte before the record's
//! first base ends its header line, which names the record, and the record's last base (by the index's length) is followed by a line end
//! and then the next header or the end of the file. A stale index (the FASTA edited after `samtools faidx`) is
//! refused rather than read at the wrong offsets or cut short.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fs::File,
    io::{self, BufRead, BufReader, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use noodles::{bgzf, fasta::fai};

use super::lines::{LineState, read_body};
use crate::{
    Region,
    open::{Compression, file_compression},
    source::{SequenceInfo, SequenceSource, context, invalid_data},
};

/// A FASTA's `.fai`, as far as reading regions through it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionIndex {
    /// Regions can be read: the index's records (name, length in bases), in its order.
    Ready(Vec<(String, u64)>),
    /// No `.fai` beside the FASTA.
    Missing,
    /// A `.fai` is there but the FASTA cannot be read by region; why, as a sentence for a message.
    Unusable(String),
}

/// Whether regions of the FASTA at `path` can be read through its index, with the index's records when they
/// can. The index's first and last records, and those named in `check` that it lists, are checked against the
/// FASTA (their header line names them, their first and last bases sit where the index says), so that a stale
/// index, or one made for another FASTA, fails here, naming the record.
///
/// Unusable: a plain gzip FASTA (no random access), or a bgzip one without its `.gzi`.
pub fn region_index(path: &Path, check: &[&str]) -> io::Result<RegionIndex> {
    let input = path.display().to_string();
    if !with_suffix(path, ".fai").exists() {
        return Ok(RegionIndex::Missing);
    }
    let compression = file_compression(path, &input)?;
    if let Some(why) = unusable(path, compression) {
        return Ok(RegionIndex::Unusable(why));
    }
    let mut reader =
        IndexedReader::open(path, compression == Compression::Bgzf, Vec::new(), (0, 0))?;
    let check: HashSet<&[u8]> = check.iter().map(|name| name.as_bytes()).collect();
    // The first and last records always: an index made for another FASTA fails there.
    let last = reader.index.len().saturating_sub(1);
    let named: Vec<fai::Record> = (reader.index.iter().enumerate())
        .filter(|&(i, r)| i == 0 || i == last || check.contains(<&[u8]>::from(r.name())))
        .map(|(_, r)| r.clone())
        .collect();
    for record in &named {
        reader.check(record)?;
    }
    Ok(RegionIndex::Ready(names_and_lengths(&reader.index)))
}

/// Why a FASTA of `compression` at `path` cannot be read by region even with its `.fai` (a sentence naming
/// the file), or `None` when it can: plain gzip has no random access, and bgzip needs its `.gzi` too.
pub(crate) fn unusable(path: &Path, compression: Compression) -> Option<String> {
    let input = path.display();
    match compression {
        Compression::Gzip => Some(format!(
            "{input} is plain gzip, which cannot be read by region (bgzip can)"
        )),
        Compression::Bgzf if !with_suffix(path, ".gzi").exists() => Some(format!(
            "{input} is bgzip-compressed but has no {} (`samtools faidx` or `bgzip -r` makes it)",
            with_suffix(path, ".gzi").display()
        )),
        Compression::Bgzf | Compression::None => None,
    }
}

/// The (name, length in bases) of each record of an index, in its order.
fn names_and_lengths(index: &[fai::Record]) -> Vec<(String, u64)> {
    index
        .iter()
        .map(|r| (r.name().to_string(), r.length()))
        .collect()
}

/// The records (name, length in bases) of the `.fai` beside `path`, in its order; `None` when there is none.
/// Nothing is checked against the FASTA.
pub fn lengths(path: &Path) -> io::Result<Option<Vec<(String, u64)>>> {
    let fai_path = with_suffix(path, ".fai");
    if !fai_path.exists() {
        return Ok(None);
    }
    let index: Vec<fai::Record> = fai::fs::read(&fai_path)
        .map_err(|e| context(&fai_path.display().to_string(), "reading", e))?
        .into();
    Ok(Some(names_and_lengths(&index)))
}

trait BufReadSeek: BufRead + Seek + Send {}
impl<T: BufRead + Seek + Send> BufReadSeek for T {}

/// Reads regions of an indexed FASTA in the order given; each region is one sequence whose `start` is its
/// 0-based offset in the record.
pub struct IndexedReader {
    inner: Box<dyn BufReadSeek>,
    input: String,
    index: Vec<fai::Record>,
    /// Position in `index` by record name.
    by_name: HashMap<String, usize>,
    queue: VecDeque<Region>,
    remaining: u64,
    current: Option<(String, u64)>,
    state: LineState,
    /// Context bases to read before and after each region.
    context: (u64, u64),
}

/// `path` with `ext` appended (`x.fa` -> `x.fa.fai`).
pub(crate) fn with_suffix(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

impl IndexedReader {
    /// Opens `path` with its `.fai` (and `.gzi` when `bgzf`), to read `regions` in order, each with up to
    /// `context.0` bases before it and `context.1` after it (clipped to the record).
    pub fn open(
        path: &Path,
        bgzf_compressed: bool,
        regions: Vec<Region>,
        flanks: (u64, u64),
    ) -> io::Result<Self> {
        let input = path.display().to_string();
        let fai_path = with_suffix(path, ".fai");
        let index: Vec<fai::Record> = fai::fs::read(&fai_path)
            .map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        " (reading by region needs the index: `samtools faidx {input}` makes it{})",
                        if bgzf_compressed {
                            ", and the .gzi"
                        } else {
                            ""
                        }
                    )
                } else {
                    String::new()
                };
                context(
                    &input,
                    format_args!("reading the index {}{hint}", fai_path.display()),
                    e,
                )
            })?
            .into();
        if bgzf_compressed {
            // Region reads never reach the end in order: check once that the file is whole.
            crate::bgzf_eof::check_file(path, &input)?;
        }
        let file = File::open(path).map_err(|e| context(&input, "opening", e))?;
        let inner: Box<dyn BufReadSeek> = if bgzf_compressed {
            let gzi_path = with_suffix(path, ".gzi");
            let gzi = bgzf::gzi::fs::read(&gzi_path).map_err(|e| {
                context(
                    &input,
                    format_args!(
                        "reading {} (create it with `samtools faidx` or `bgzip -r`)",
                        gzi_path.display()
                    ),
                    e,
                )
            })?;
            Box::new(bgzf::io::IndexedReader::new(file, gzi))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, file))
        };
        let mut reader = Self::from_parts(inner, input, index, regions)?;
        reader.context = flanks;
        Ok(reader)
    }

    fn from_parts(
        inner: Box<dyn BufReadSeek>,
        input: String,
        index: Vec<fai::Record>,
        regions: Vec<Region>,
    ) -> io::Result<Self> {
        let mut by_name = HashMap::with_capacity(index.len());
        for (i, record) in index.iter().enumerate() {
            by_name.entry(record.name().to_string()).or_insert(i);
        }
        let mut r = Self {
            inner,
            input,
            index,
            by_name,
            queue: VecDeque::new(),
            remaining: 0,
            current: None,
            state: LineState::default(),
            context: (0, 0),
        };
        // Validate every region, and the index entry of its record, up front: fail before any output.
        let mut checked: HashSet<&str> = HashSet::new();
        for region in &regions {
            let rec = r.record(&region.name)?.clone();
            region
                .resolve(rec.length())
                .map_err(|e| invalid_data(&r.input, e))?;
            if checked.insert(&region.name) {
                r.check(&rec)?;
            }
        }
        r.queue = regions.into();
        Ok(r)
    }

    fn record(&self, name: &str) -> io::Result<&fai::Record> {
        (self.by_name.get(name))
            .map(|&i| &self.index[i])
            .ok_or_else(|| {
                let names: Vec<String> = self
                    .index
                    .iter()
                    .take(5)
                    .map(|r| r.name().to_string())
                    .collect();
                let more = if self.index.len() > 5 { ", ..." } else { "" };
                invalid_data(
                    &self.input,
                    format_args!(
                        "unknown record name '{name}' (the index lists: {}{more})",
                        names.join(", ")
                    ),
                )
            })
    }

    fn mismatch(&self, name: &str, what: impl std::fmt::Display) -> io::Error {
        invalid_data(
            &self.input,
            format_args!(
                "record '{name}': the .fai index does not match the FASTA ({what}); re-create it with `samtools faidx`"
            ),
        )
    }
}

impl IndexedReader {
    /// Checks that `rec` matches the FASTA: the byte before its first base ends a line, and after its last base
    /// come line ends and then the next header or the end of the file.
    fn check(&mut self, rec: &fai::Record) -> io::Result<()> {
        let name = rec.name().to_string();
        let (line_bases, line_width) = (rec.line_base_count().get(), rec.line_width().get());
        if line_bases == 0 || line_width < line_bases {
            return Err(self.mismatch(&name, "line lengths"));
        }
        // The byte before the first base must end the header line.
        if rec.position() == 0 {
            return Err(self.mismatch(&name, "offset 0"));
        }
        if self.byte_at(rec.position() - 1)? != Some(b'\n') {
            return Err(self.mismatch(
                &name,
                format_args!("no line end before offset {}", rec.position()),
            ));
        }
        // ... and name the record (an index made for another FASTA can put its offsets on line starts).
        match self.header_before(rec.position())? {
            Some(header)
                if header.split(|b| b.is_ascii_whitespace()).next() == Some(name.as_bytes()) => {}
            // A header line too long to look back over is left unchecked.
            None => {}
            Some(header) => {
                let shown = String::from_utf8_lossy(&header);
                let what = if header.is_empty() {
                    format!(
                        "the line before offset {} is not a header line",
                        rec.position()
                    )
                } else {
                    format!(
                        "the header line before offset {} is '>{}'",
                        rec.position(),
                        shown.chars().take(80).collect::<String>()
                    )
                };
                return Err(self.mismatch(&name, what));
            }
        }
        let Some(last) = rec.length().checked_sub(1) else {
            return Ok(());
        };
        let offset = rec.position() + last / line_bases * line_width + last % line_bases;
        let length = rec.length();
        match self.byte_at(offset)? {
            Some(b) if !matches!(b, b'\n' | b'\r' | b'>') => {}
            _ => {
                return Err(self.mismatch(
                    &name,
                    format_args!("the record ends before the index's {length} bases"),
                ));
            }
        }
        // What follows the last base: line ends, then a header or the end of the file.
        loop {
            let buf = self
                .inner
                .fill_buf()
                .map_err(|e| context(&self.input, "reading", e))?;
            match buf.first() {
                None | Some(b'>') => return Ok(()),
                Some(b'\n' | b'\r') => self.inner.consume(1),
                Some(_) => {
                    return Err(self.mismatch(
                        &name,
                        format_args!("the record goes on past the index's {length} bases"),
                    ));
                }
            }
        }
    }

    /// The header line that ends just before `offset` (which follows a line end), without its `>` and line end;
    /// empty when that line is not a header, `None` when it starts more than 64 KiB back. Reads 256 bytes back
    /// first (most header lines are shorter), so that checking many small records reads little.
    fn header_before(&mut self, offset: u64) -> io::Result<Option<Vec<u8>>> {
        for look_back in [256, 1 << 16] {
            let from = offset.saturating_sub(look_back);
            self.inner
                .seek(SeekFrom::Start(from))
                .map_err(|e| context(&self.input, "seeking", e))?;
            let mut text = vec![0; (offset - from) as usize];
            io::Read::read_exact(&mut self.inner, &mut text)
                .map_err(|e| context(&self.input, "reading", e))?;
            // The line end before `offset`, and a CR before it.
            text.pop();
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            let start = match text.iter().rposition(|&b| b == b'\n') {
                Some(end) => end + 1,
                None if from == 0 => 0,
                None => continue,
            };
            return Ok(Some(match text[start..].split_first() {
                Some((b'>', header)) => header.to_vec(),
                _ => Vec::new(),
            }));
        }
        Ok(None)
    }

    /// The byte at `offset` of the (decompressed) FASTA, leaving the reader just after it; `None` past the end.
    fn byte_at(&mut self, offset: u64) -> io::Result<Option<u8>> {
        self.inner
            .seek(SeekFrom::Start(offset))
            .map_err(|e| context(&self.input, "seeking", e))?;
        let buf = self
            .inner
            .fill_buf()
            .map_err(|e| context(&self.input, "reading", e))?;
        let byte = buf.first().copied();
        if byte.is_some() {
            self.inner.consume(1);
        }
        Ok(byte)
    }
}

impl SequenceSource for IndexedReader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        let Some(region) = self.queue.pop_front() else {
            self.current = None;
            return Ok(None);
        };
        let rec = self.record(&region.name)?.clone();
        let (start, end) = region
            .resolve(rec.length())
            .map_err(|e| invalid_data(&self.input, e))?;
        let lead = self.context.0.min(start);
        let trail = self.context.1.min(rec.length().saturating_sub(end));
        // Checked when the reader was made.
        let line_bases = rec.line_base_count().get();
        let line_width = rec.line_width().get();
        let first = start - lead;
        let pos = rec.position() + first / line_bases * line_width + first % line_bases;
        self.inner
            .seek(SeekFrom::Start(pos))
            .map_err(|e| context(&self.input, "seeking", e))?;
        self.state.at_line_start = first % line_bases == 0;
        let streamed = lead + (end - start) + trail;
        self.remaining = streamed;
        self.current = Some((region.name.clone(), streamed));
        Ok(Some(SequenceInfo {
            name: region.name,
            start,
            len: Some(end - start),
            alignment: None,
            lead,
            trail,
        }))
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(max);
        let n = read_body(&mut *self.inner, &mut self.state, Some(buf), want)?;
        if n == 0 && want > 0 {
            let (name, len) = self.current.clone().unwrap_or_default();
            let got = len - self.remaining;
            return Err(self.mismatch(
                &name,
                format_args!("the record ended after {got} of {len} bases"),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::Cursor, num::NonZero};

    fn idx(recs: &[(&str, u64, u64, u64, u64)]) -> Vec<fai::Record> {
        recs.iter()
            .map(|&(n, len, off, lb, lw)| {
                fai::Record::new(
                    n,
                    len,
                    off,
                    NonZero::new(lb).unwrap_or(NonZero::<u64>::MIN),
                    NonZero::new(lw).unwrap_or(NonZero::<u64>::MIN),
                )
            })
            .collect()
    }

    fn read_all(r: &mut IndexedReader) -> io::Result<Vec<(String, u64, Vec<u8>)>> {
        let mut out = Vec::new();
        while let Some(i) = r.next_sequence()? {
            let mut buf = Vec::new();
            while r.read_bases(&mut buf, 2)? > 0 {}
            out.push((i.name, i.start, buf));
        }
        Ok(out)
    }

    const DATA: &[u8] = b">a\nACGTA\nCG\n>b\r\nTTTGG\r\nC\r\n";

    #[test]
    fn test_regions_in_memory() -> io::Result<()> {
        let index = idx(&[("a", 7, 3, 5, 6), ("b", 6, 16, 5, 7)]);
        let regions = vec![
            Region::new("a", 3, Some(7)),
            Region::whole("b"),
            Region::new("a", 0, Some(1)),
        ];
        let mut r =
            IndexedReader::from_parts(Box::new(Cursor::new(DATA)), "m.fa".into(), index, regions)?;
        let got = read_all(&mut r)?;
        assert_eq!(got[0], ("a".into(), 3, b"TACG".to_vec()));
        assert_eq!(got[1], ("b".into(), 0, b"TTTGGC".to_vec()));
        assert_eq!(got[2], ("a".into(), 0, b"A".to_vec()));
        Ok(())
    }

    #[test]
    fn test_index_mismatch_and_bad_regions() {
        let open = |index, regions| {
            IndexedReader::from_parts(Box::new(Cursor::new(DATA)), "m.fa".into(), index, regions)
        };
        let error = |index, region: &str| {
            open(index, vec![Region::whole(region)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let stale = |name: &str, what: &str| {
            format!(
                "m.fa: record '{name}': the .fai index does not match the FASTA ({what}); re-create it with \
                 `samtools faidx`"
            )
        };
        // An index length longer than the record (the record was cut, or the index is another file's): the last
        // base falls on the next header, or past the end of the file. Found before any base is read.
        assert_eq!(
            error(idx(&[("a", 9, 3, 5, 6)]), "a"),
            stale("a", "the record ends before the index's 9 bases")
        );
        assert_eq!(
            error(idx(&[("b", 40, 16, 5, 7)]), "b"),
            stale("b", "the record ends before the index's 40 bases")
        );
        // Shorter (bases were added after `samtools faidx`): within a line, at a line's end, across CRLF.
        for (name, length, offset, width) in [("a", 5, 3, 6), ("a", 6, 3, 6), ("b", 5, 16, 7)] {
            assert_eq!(
                error(idx(&[(name, length, offset, 5, width)]), name),
                stale(
                    name,
                    &format!("the record goes on past the index's {length} bases")
                )
            );
        }
        // Wrong offset: no line end before it.
        assert_eq!(
            error(idx(&[("a", 7, 4, 5, 6)]), "a"),
            stale("a", "no line end before offset 4")
        );
        assert_eq!(
            error(idx(&[("a", 7, 0, 5, 6)]), "a"),
            stale("a", "offset 0")
        );
        // Records no region names are not checked.
        assert!(
            open(
                idx(&[("a", 9, 3, 5, 6), ("b", 6, 16, 5, 7)]),
                vec![Region::whole("b")]
            )
            .is_ok()
        );
        let e = open(
            idx(&[("a", 7, 3, 5, 6)]),
            vec![Region::new("a", 5, Some(8))],
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("m.fa: region a:6-8 is outside the record (length 7)")
        );
        let e = open(idx(&[("a", 7, 3, 5, 6)]), vec![Region::whole("zz")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("m.fa: unknown record name 'zz' (the index lists: a)")
        );
    }
}
