//! The one shape every reader hands on: [`SequenceSource`] yields sequences ([`SequenceInfo`]) and their bases.

use std::io;

/// Where a sequence comes from and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SequenceInfo {
    /// Record name (FASTA: up to the first whitespace) or read name (`name/1`, `name/2` for pairs).
    pub name: String,
    /// 0-based coordinate of its first base within the named record (non-zero for regions).
    pub start: u64,
    /// Length in bases when known up front (index, region, BAM read), else `None`.
    pub len: Option<u64>,
    /// Alignment fields (BAM/CRAM only).
    pub alignment: Option<Alignment>,
    /// Bases of context streamed before `start` (region reads with [`crate::OpenOptions::context`]): read,
    /// tokenized and run through the model as burn-in or flank, but not part of the sequence.
    pub lead: u64,
    /// Bases of context streamed after the sequence's last base (bidirectional flank); `len` is then `Some`.
    pub trail: u64,
}

/// Alignment fields of a BAM/CRAM record.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Alignment {
    /// Reference sequence name, `None` when unmapped.
    pub ref_name: Option<String>,
    /// 0-based leftmost aligned reference position, `None` when unmapped.
    pub ref_start: Option<i64>,
    /// Whether the read aligned to the reverse strand (its bases were reverse-complemented back to the
    /// sequencing orientation).
    pub reverse: bool,
    /// Mapping quality, `None` when unavailable (255) or the read is unmapped.
    pub mapq: Option<u8>,
    /// SAM flag.
    pub flag: u16,
}

impl Alignment {
    /// Whether the read is mapped (flag 0x4 unset); an unmapped read has no reference name, start, MAPQ or
    /// strand.
    pub fn is_mapped(&self) -> bool {
        self.flag & 0x4 == 0
    }

    /// The strand the read aligned to (`true`: reverse, `-`; `false`: forward, `+`), `None` when it is unmapped:
    /// what a strand column shows. ([`Alignment::reverse`] says only how the bases were turned.)
    pub fn strand(&self) -> Option<bool> {
        self.is_mapped().then_some(self.reverse)
    }
}

/// A stream of sequences, each read in slices of bases so that no sequence has to be held whole.
///
/// ```
/// use genomamba_seq::{open_reader, Format, OpenOptions, SequenceSource};
/// let data: &[u8] = b">a desc\nACGT\nAC\n>b\nTTTT\n";
/// let mut src = open_reader(Box::new(data), "-", &OpenOptions::default().with_format(Format::Fasta))?;
/// let info = src.next_sequence()?.expect("first record");
/// assert_eq!(info.name, "a");
/// let mut buf = Vec::new();
/// while src.read_bases(&mut buf, 4)? > 0 {}
/// assert_eq!(buf, b"ACGTAC");
/// assert_eq!(src.next_sequence()?.map(|i| i.name), Some("b".to_string()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait SequenceSource: Send {
    /// Advances to the next sequence; `None` after the last one. Unread bases of the current one are skipped.
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>>;
    /// Appends at most `max` raw bases (bytes as in the file, no newlines) of the current sequence to `buf`;
    /// returns how many were appended, 0 at the end of the sequence.
    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize>;
    /// The input's display name (path or `-`) for error messages.
    fn input_name(&self) -> &str;
}

impl<S: SequenceSource + ?Sized> SequenceSource for Box<S> {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        (**self).next_sequence()
    }
    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        (**self).read_bases(buf, max)
    }
    fn input_name(&self) -> &str {
        (**self).input_name()
    }
}

/// An `InvalidData` error whose message starts with the input name.
pub(crate) fn invalid_data(input: &str, msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{input}: {msg}"))
}

/// Re-wraps an error from a lower layer so its message names the input and context; keeps the kind.
pub(crate) fn context(input: &str, ctx: impl std::fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{input}: {ctx}: {e}"))
}

/// Like [`context`], but an input that ends early (`UnexpectedEof`) is said to be truncated inside `place`
/// ("record 3 ('r7')"), with the lower layer's words kept in parentheses.
pub(crate) fn read_error(input: &str, place: impl std::fmt::Display, e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            e.kind(),
            format!("{input}: the input ends inside {place}: the file is truncated ({e})"),
        )
    } else {
        context(input, place, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two(usize, usize);
    impl SequenceSource for Two {
        fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
            self.0 += 1;
            self.1 = 0;
            Ok((self.0 <= 2).then(|| SequenceInfo {
                name: format!("s{}", self.0),
                ..Default::default()
            }))
        }
        fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
            let n = max.min(3 - self.1);
            buf.extend(std::iter::repeat_n(b'A', n));
            self.1 += n;
            Ok(n)
        }
        fn input_name(&self) -> &str {
            "two"
        }
    }

    #[test]
    fn test_boxed_source_forwards() -> io::Result<()> {
        let mut b: Box<dyn SequenceSource> = Box::new(Two(0, 0));
        assert_eq!(b.next_sequence()?.map(|i| i.name), Some("s1".into()));
        let mut buf = Vec::new();
        assert_eq!(b.read_bases(&mut buf, 2)?, 2);
        assert_eq!(b.read_bases(&mut buf, 2)?, 1);
        assert_eq!(b.read_bases(&mut buf, 2)?, 0);
        assert_eq!(b.input_name(), "two");
        let e = context(
            "f.fa",
            "record 'x'",
            io::Error::new(io::ErrorKind::UnexpectedEof, "eof"),
        );
        assert_eq!(
            (e.kind(), e.to_string()),
            (io::ErrorKind::UnexpectedEof, "f.fa: record 'x': eof".into())
        );
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(
            read_error("f.fq", "record 2 ('r')", eof()).to_string(),
            "f.fq: the input ends inside record 2 ('r'): the file is truncated (eof)"
        );
        let bad = io::Error::new(io::ErrorKind::InvalidData, "bad");
        assert_eq!(
            read_error("f.fq", "record 2", bad).to_string(),
            "f.fq: record 2: bad"
        );
        Ok(())
    }
}
