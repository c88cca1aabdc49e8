//! FASTA: a streaming reader (plain, gzip or bgzip input, any record length in bounded memory) and an indexed
//! reader for regions ([`indexed`]).

pub mod indexed;
pub(crate) mod lines;

use std::{
    collections::{HashMap, HashSet},
    io::{self, BufRead},
    path::Path,
};

use self::lines::{LineState, peek_after_blank_lines, read_body};
use crate::source::{SequenceInfo, SequenceSource, invalid_data, read_error};
use crate::{Format, OpenOptions};

/// Bases read per call while [`scan_lengths`] counts a record.
const SCAN_SLICE: usize = 1 << 20;

/// The records (name, length in bases) of the FASTA at `path` (plain, gzip or bgzip), in file order, found by
/// reading it through once with the streaming reader (so with its checks and errors). For a FASTA that cannot
/// be read by region: it costs one decompression of the file, far less than running a model over it.
pub fn scan_lengths(path: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut source = crate::open(path, &OpenOptions::default().with_format(Format::Fasta))?;
    let mut lengths = Vec::new();
    let mut buf = Vec::with_capacity(SCAN_SLICE);
    while let Some(info) = source.next_sequence()? {
        let mut len = 0u64;
        loop {
            buf.clear();
            match source.read_bases(&mut buf, SCAN_SLICE)? {
                0 => break,
                n => len += n as u64,
            }
        }
        lengths.push((info.name, len));
    }
    Ok(lengths)
}

/// Streams the records of a FASTA file in order, optionally keeping only the records named in `names`.
///
/// Errors (as `InvalidData`, message naming the input and record): no `>` header at the start, a duplicate record
/// name, a requested name missing from the file. A record with no bases is a sequence of length 0.
pub struct Reader {
    inner: Box<dyn BufRead + Send>,
    input: String,
    state: LineState,
    in_record: Option<String>,
    started: bool,
    /// The records' names, each with its 1-based number in the file.
    seen: HashMap<String, u64>,
    wanted: Option<HashSet<String>>,
    found: HashSet<String>,
    header: Vec<u8>,
    /// The name of the last header read, for messages.
    last: Option<String>,
}

impl Reader {
    /// A reader over decompressed FASTA text; `input` names it in errors; `names` (if non-empty) selects records.
    pub fn new(inner: Box<dyn BufRead + Send>, input: impl Into<String>, names: &[String]) -> Self {
        Self {
            inner,
            input: input.into(),
            state: LineState {
                at_line_start: true,
            },
            in_record: None,
            started: false,
            seen: HashMap::new(),
            wanted: (!names.is_empty()).then(|| names.iter().cloned().collect()),
            found: HashSet::new(),
            header: Vec::new(),
            last: None,
        }
    }

    fn skip_rest(&mut self, name: &str) -> io::Result<()> {
        while read_body(&mut *self.inner, &mut self.state, None, usize::MAX)
            .map_err(|e| read_error(&self.input, format_args!("record '{name}'"), e))?
            > 0
        {}
        Ok(())
    }

    /// Where the reader stands between records, for messages.
    fn between(&self) -> String {
        match &self.last {
            Some(name) => format!("the record after '{name}'"),
            None => "the first record".into(),
        }
    }

    /// Reads the next header line; `None` at EOF.
    fn read_header(&mut self) -> io::Result<Option<String>> {
        let first = peek_after_blank_lines(&mut *self.inner, &mut self.state)
            .map_err(|e| read_error(&self.input, self.between(), e))?;
        match first {
            None => {
                if !self.started {
                    return Err(invalid_data(&self.input, "empty input: no FASTA record"));
                }
                return Ok(None);
            }
            Some(b'>') => {}
            Some(b) => {
                let what = if self.started {
                    "unexpected data between records"
                } else {
                    "not FASTA"
                };
                return Err(invalid_data(
                    &self.input,
                    format_args!(
                        "{what}: expected a '>' header line, found {:?}",
                        char::from(b)
                    ),
                ));
            }
        }
        self.started = true;
        self.header.clear();
        self.inner
            .read_until(b'\n', &mut self.header)
            .map_err(|e| read_error(&self.input, self.between(), e))?;
        self.state.at_line_start = true;
        let line = self.header.trim_ascii_end();
        let name_bytes = line[1..]
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or_default();
        let number = self.seen.len() as u64 + 1;
        if name_bytes.is_empty() {
            return Err(invalid_data(
                &self.input,
                format_args!(
                    "record {number} ({}): its '>' header line has no record name",
                    self.between()
                ),
            ));
        }
        let name = String::from_utf8(name_bytes.to_vec()).map_err(|_| {
            invalid_data(
                &self.input,
                format_args!(
                    "record {number} ({}): its name is not valid UTF-8",
                    self.between()
                ),
            )
        })?;
        self.last = Some(name.clone());
        if let Some(first) = self.seen.insert(name.clone(), number) {
            return Err(invalid_data(
                &self.input,
                format_args!(
                    "record {number}: duplicate record name '{name}' (record {first} has it too)"
                ),
            ));
        }
        Ok(Some(name))
    }

    fn check_missing(&self) -> io::Result<()> {
        if let Some(w) = &self.wanted {
            let mut missing: Vec<&str> = w
                .iter()
                .filter(|n| !self.found.contains(*n))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                missing.sort_unstable();
                return Err(invalid_data(
                    &self.input,
                    format_args!("unknown record name(s): {}", missing.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

impl SequenceSource for Reader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        if let Some(name) = self.in_record.take() {
            self.skip_rest(&name)?;
        }
        loop {
            let Some(name) = self.read_header()? else {
                self.check_missing()?;
                return Ok(None);
            };
            // A record with no bases (a header followed by the next header or the end) is a sequence of
            // length 0, whose first `read_bases` gives 0: no rows, as for an empty read.
            if let Some(w) = &self.wanted {
                if !w.contains(&name) {
                    self.skip_rest(&name)?;
                    continue;
                }
                self.found.insert(name.clone());
            }
            self.in_record = Some(name.clone());
            return Ok(Some(SequenceInfo {
                name,
                start: 0,
                len: None,
                alignment: None,
                ..Default::default()
            }));
        }
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let Some(name) = &self.in_record else {
            return Ok(0);
        };
        read_body(&mut *self.inner, &mut self.state, Some(buf), max)
            .map_err(|e| read_error(&self.input, format_args!("record '{name}'"), e))
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(data: &'static [u8], names: &[&str]) -> Reader {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Reader::new(Box::new(data), "t.fa", &names)
    }

    fn all(r: &mut Reader) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        while let Some(info) = r.next_sequence()? {
            let mut buf = Vec::new();
            while r.read_bases(&mut buf, 3)? > 0 {}
            out.push((info.name, buf));
        }
        Ok(out)
    }

    #[test]
    fn test_records_and_selection() -> io::Result<()> {
        let data = b"\n>a x y\nAC\nGT\n\n>b\r\nNN\r\nn\r\n>c\nT";
        let got = all(&mut reader(data, &[]))?;
        assert_eq!(
            got,
            vec![
                ("a".into(), b"ACGT".to_vec()),
                ("b".into(), b"NNn".to_vec()),
                ("c".into(), b"T".to_vec())
            ]
        );
        let got = all(&mut reader(data, &["c", "a"]))?;
        assert_eq!(
            got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        // Skipping a half-read record works.
        let mut r = reader(data, &[]);
        r.next_sequence()?;
        r.read_bases(&mut Vec::new(), 1)?;
        assert_eq!(r.next_sequence()?.map(|i| i.name), Some("b".into()));
        Ok(())
    }

    #[test]
    fn test_empty_records_have_no_bases() -> io::Result<()> {
        let got = all(&mut reader(b">a\n>b\nAC\n>c\n\n>d\r\n", &[]))?;
        assert_eq!(
            got,
            vec![
                ("a".into(), Vec::new()),
                ("b".into(), b"AC".to_vec()),
                ("c".into(), Vec::new()),
                ("d".into(), Vec::new())
            ]
        );
        let got = all(&mut reader(b">a\n>b\nAC\n", &["a"]))?;
        assert_eq!(got, vec![("a".into(), Vec::new())]);
        Ok(())
    }

    #[test]
    fn test_bad_inputs() {
        let err =
            |d: &'static [u8], names: &[&str]| all(&mut reader(d, names)).unwrap_err().to_string();
        assert_eq!(
            err(b"ACGT\n", &[]),
            "t.fa: not FASTA: expected a '>' header line, found 'A'"
        );
        assert_eq!(
            err(b">a\nAC\n>b\nA\n>a\nAC\n", &[]),
            "t.fa: record 3: duplicate record name 'a' (record 1 has it too)"
        );
        assert_eq!(
            err(b">a\nAC\n", &["z", "a"]),
            "t.fa: unknown record name(s): z"
        );
        assert_eq!(err(b"", &[]), "t.fa: empty input: no FASTA record");
        assert_eq!(
            err(b"> x\nAC\n", &[]),
            "t.fa: record 1 (the first record): its '>' header line has no record name"
        );
        assert_eq!(
            err(b">a\nAC\n>\xff\nAC\n", &[]),
            "t.fa: record 2 (the record after 'a'): its name is not valid UTF-8"
        );
    }
}
