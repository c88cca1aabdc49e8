//! FASTQ: reads streamed one record at a time (plain or gzip input), named as in the file (up to the first
//! space or tab), read by noodles-fastq. Each record is four lines; multi-line FASTQ is not read. noodles'
//! errors are reworded to say which record and what was expected (its own words are a bare "invalid
//! description prefix" or "failed to fill whole buffer").

use std::io::{self, BufRead};

use noodles::fastq;

use crate::source::{SequenceInfo, SequenceSource, invalid_data, read_error};

/// Streams the reads of a FASTQ file; each read is one sequence with a known length.
pub struct Reader {
    inner: fastq::io::Reader<Box<dyn BufRead + Send>>,
    input: String,
    record: fastq::Record,
    pos: usize,
    count: u64,
    active: bool,
}

impl Reader {
    /// A reader over decompressed FASTQ text; `input` names it in errors.
    pub fn new(inner: Box<dyn BufRead + Send>, input: impl Into<String>) -> Self {
        Self {
            inner: fastq::io::Reader::new(inner),
            input: input.into(),
            record: fastq::Record::default(),
            pos: 0,
            count: 0,
            active: false,
        }
    }

    /// `e`, from reading record `count + 1`, as a message naming the record (and the read, once its header
    /// line was read) and what was expected there.
    fn failed(&self, e: io::Error) -> io::Error {
        let number = self.count + 1;
        let place = match self.record.name() {
            name if name.is_empty() => format!("FASTQ record {number}"),
            name => format!(
                "FASTQ record {number} ('{}')",
                String::from_utf8_lossy(name)
            ),
        };
        // noodles-fastq 0.24's words for a line that does not start as the format requires.
        match e.to_string().as_str() {
            "invalid description prefix" => invalid_data(
                &self.input,
                format_args!(
                    "{place}: expected the '+' line after the bases (a FASTQ record is four lines; multi-line \
                     FASTQ is not read)"
                ),
            ),
            "invalid name prefix" => invalid_data(
                &self.input,
                format_args!("{place}: expected a '@' header line"),
            ),
            _ => read_error(&self.input, place, e),
        }
    }
}

impl Reader {
    /// Consumes blank lines before the next record (a blank line at the end of a file is common, and can be
    /// nothing else).
    fn skip_blank_lines(&mut self) -> io::Result<()> {
        let inner = self.inner.get_mut();
        loop {
            let buf = inner.fill_buf()?;
            match buf {
                [b'\n', ..] => inner.consume(1),
                [b'\r', b'\n', ..] => inner.consume(2),
                // A CRLF split where the buffer ends.
                [b'\r'] => {
                    inner.consume(1);
                    if inner.fill_buf()?.first() == Some(&b'\n') {
                        inner.consume(1);
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

impl SequenceSource for Reader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        self.active = false;
        if self.count == 0 {
            let head = self.inner.get_mut().fill_buf();
            if head.is_ok_and(crate::open::is_sam_text) {
                return Err(crate::open::sam_text_error(&self.input));
            }
        }
        self.skip_blank_lines()
            .map_err(|e| read_error(&self.input, format!("FASTQ record {}", self.count + 1), e))?;
        let n = self
            .inner
            .read_record(&mut self.record)
            .map_err(|e| self.failed(e))?;
        if n == 0 {
            if self.count == 0 {
                return Err(invalid_data(&self.input, "empty input: no FASTQ record"));
            }
            return Ok(None);
        }
        self.count += 1;
        if self.record.name().is_empty() {
            return Err(invalid_data(
                &self.input,
                format_args!(
                    "FASTQ record {}: the '@' header line has no read name",
                    self.count
                ),
            ));
        }
        let name = String::from_utf8(self.record.name().to_vec()).map_err(|_| {
            invalid_data(
                &self.input,
                format_args!("FASTQ record {}: name is not UTF-8", self.count),
            )
        })?;
        if self.record.sequence().len() != self.record.quality_scores().len() {
            return Err(invalid_data(
                &self.input,
                format_args!(
                    "read '{name}' (FASTQ record {}): {} bases but {} quality scores",
                    self.count,
                    self.record.sequence().len(),
                    self.record.quality_scores().len()
                ),
            ));
        }
        let name = match casava_mate(self.record.description()) {
            Some(mate) if !name.ends_with("/1") && !name.ends_with("/2") => {
                format!("{name}/{mate}")
            }
            _ => name,
        };
        self.pos = 0;
        self.active = true;
        let len = self.record.sequence().len() as u64;
        Ok(Some(SequenceInfo {
            name,
            start: 0,
            len: Some(len),
            alignment: None,
            ..Default::default()
        }))
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        if !self.active {
            return Ok(0);
        }
        let seq = self.record.sequence();
        let n = (seq.len() - self.pos).min(max);
        buf.extend_from_slice(&seq[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}

/// The mate number that Illumina's CASAVA 1.8+ writes at the start of a read's description (`@NAME 1:N:0:ATCACG`:
/// read 1, not filtered, control 0, index): 1 or 2, else `None`. The reader names such a read `NAME/1` or
/// `NAME/2`, as BAM and CRAM mates are named from their flags, so the mates of two FASTQ files get distinct keys
/// and a read has the same name in a FASTQ table and in an alignment table.
fn casava_mate(description: &[u8]) -> Option<char> {
    match description {
        [mate @ (b'1' | b'2'), b':', b'Y' | b'N', b':', ..] => Some(char::from(*mate)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reads_and_errors() -> io::Result<()> {
        let data: &[u8] = b"@r1 desc\nACGN\n+\nIIII\n@r2/1\nTT\n+\nII\n";
        let mut r = Reader::new(Box::new(data), "t.fq");
        let i = r.next_sequence()?.expect("r1");
        assert_eq!((i.name.as_str(), i.len), ("r1", Some(4)));
        let mut buf = Vec::new();
        assert_eq!(r.read_bases(&mut buf, 3)?, 3);
        assert_eq!(r.next_sequence()?.map(|i| i.name), Some("r2/1".into()));
        assert_eq!(r.read_bases(&mut buf, 9)?, 2);
        assert_eq!(buf, b"ACGTT");
        assert!(r.next_sequence()?.is_none());

        // Illumina's mate numbers name the mates as BAM's flags do; other descriptions leave the name alone.
        let data: &[u8] =
            b"@a 1:N:0:ATCACG\nA\n+\nI\n@a 2:Y:18:ATCACG\nA\n+\nI\n@b/1 1:N:0:1\nA\n+\nI\n\
                            @c 3:N:0:1\nA\n+\nI\n@d 1:X:0:1\nA\n+\nI\n@e 1\nA\n+\nI\n";
        let mut r = Reader::new(Box::new(data), "t.fq");
        let mut names = Vec::new();
        while let Some(i) = r.next_sequence()? {
            names.push(i.name);
        }
        assert_eq!(names, ["a/1", "a/2", "b/1", "c", "d", "e"]);

        let bad: &[u8] = b"@r1\nACGT\n+\nII\n";
        let e = Reader::new(Box::new(bad), "t.fq")
            .next_sequence()
            .unwrap_err();
        assert!(e.to_string().starts_with("t.fq: "), "{e}");
        let e = Reader::new(Box::new(&b""[..]), "t.fq")
            .next_sequence()
            .unwrap_err();
        assert_eq!(e.to_string(), "t.fq: empty input: no FASTQ record");
        Ok(())
    }

    /// The names of every read of `data`.
    fn names(data: &'static [u8]) -> io::Result<Vec<String>> {
        let mut r = Reader::new(Box::new(data), "t.fq");
        let mut names = Vec::new();
        while let Some(i) = r.next_sequence()? {
            names.push(i.name);
        }
        Ok(names)
    }

    #[test]
    fn test_blank_lines_between_and_after_records_are_skipped() -> io::Result<()> {
        for data in [
            &b"@r1\nACGT\n+\nIIII\n\n"[..],
            b"@r1\nACGT\n+\nIIII\n\n\n",
            b"@r1\r\nACGT\r\n+\r\nIIII\r\n\r\n",
            b"\n@r1\nACGT\n+\nIIII\n",
        ] {
            assert_eq!(names(data)?, ["r1"], "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(names(b"@r1\nA\n+\nI\n\n@r2\nC\n+\nI\n\n")?, ["r1", "r2"]);
        // A CRLF cut where the buffer ends.
        let data = io::BufReader::with_capacity(1, io::Cursor::new(b"@r1\nA\n+\nI\n\r\n".to_vec()));
        let mut r = Reader::new(Box::new(data), "t.fq");
        assert!(r.next_sequence()?.is_some());
        assert!(r.next_sequence()?.is_none());
        // Nothing but blank lines is no FASTQ.
        let e = names(b"\n\n").unwrap_err();
        assert_eq!(e.to_string(), "t.fq: empty input: no FASTQ record");
        Ok(())
    }

    #[test]
    fn test_a_read_needs_a_name() {
        let e = names(b"@r1\nA\n+\nI\n@\nACGT\n+\nIIII\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.fq: FASTQ record 2: the '@' header line has no read name"
        );
        let e = names(b"@ desc\nACGT\n+\nIIII\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("record 1: the '@' header line has no read name"),
            "{e}"
        );
    }
}
