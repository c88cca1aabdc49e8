//! Region reads from an indexed FASTA: plain text with `.fai`, or bgzip with `.fai` and `.gzi`.

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use noodles::{bgzf, fasta::fai};

use super::lines::{LineState, read_body};
use crate::{
    Region,
    source::{SequenceInfo, SequenceSource, context, invalid_data},
};

trait BufReadSeek: BufRead + Seek + Send {}
impl<T: BufRead + Seek + Send> BufReadSeek for T {}

/// Reads regions of an indexed FASTA in the order given; each region is one sequence whose `start` is its
/// 0-based offset in the record.
pub struct IndexedReader {
    inner: Box<dyn BufReadSeek>,
    input: String,
    index: Vec<fai::Record>,
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
                context(
                    &input,
                    format_args!("reading the index {}", fai_path.display()),
                    e,
                )
            })?
            .into();
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
        let mut r = Self {
            inner,
            input,
            index,
            queue: VecDeque::new(),
            remaining: 0,
            current: None,
            state: LineState::default(),
            context: (0, 0),
        };
        // Validate every region up front: fail before any output.
        for region in &regions {
            let rec = r.record(&region.name)?;
            region
                .resolve(rec.length())
                .map_err(|e| invalid_data(&r.input, e))?;
        }
        r.queue = regions.into();
        Ok(r)
    }

    fn record(&self, name: &str) -> io::Result<&fai::Record> {
        self.index
            .iter()
            .find(|r| r.name() == name.as_bytes())
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
        let line_bases = rec.line_base_count().get();
        let line_width = rec.line_width().get();
        if line_bases == 0 || line_width < line_bases {
            return Err(self.mismatch(&region.name, "line lengths"));
        }
        // The byte before the first base must end the header line.
        if rec.position() == 0 {
            return Err(self.mismatch(&region.name, "offset 0"));
        }
        self.inner
            .seek(SeekFrom::Start(rec.position() - 1))
            .map_err(|e| context(&self.input, "seeking", e))?;
        let mut b = [0u8; 1];
        self.inner
            .read_exact(&mut b)
            .map_err(|_| self.mismatch(&region.name, "offset past the end of the file"))?;
        if b[0] != b'\n' {
            return Err(self.mismatch(
                &region.name,
                format_args!("no line end before offset {}", rec.position()),
            ));
        }
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
        // Length in the index longer than the record: found while reading.
        let mut r =
            open(idx(&[("a", 9, 3, 5, 6)]), vec![Region::whole("a")]).expect("valid region");
        let e = read_all(&mut r).unwrap_err().to_string();
        assert!(
            e.contains("does not match") && e.contains("after 7 of 9 bases"),
            "{e}"
        );
        // Wrong offset: no line end before it.
        let mut r =
            open(idx(&[("a", 7, 4, 5, 6)]), vec![Region::whole("a")]).expect("valid region");
        assert!(
            read_all(&mut r)
                .unwrap_err()
                .to_string()
                .contains("no line end before offset 4")
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
