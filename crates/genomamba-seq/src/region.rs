//! Regions: 0-based half-open inside, parsed from samtools-style strings (1-based inclusive) and BED (0-based).

use std::{fmt, io::BufRead, str::FromStr};

use crate::Error;

/// A span of one named record, 0-based half-open `[start, end)`; `end: None` means "to the end of the record".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// Record (chromosome, contig) name.
    pub name: String,
    /// 0-based first base.
    pub start: u64,
    /// 0-based exclusive end, or `None` for the end of the record.
    pub end: Option<u64>,
}

impl Region {
    /// A region of bases `[start, end)` (0-based half-open).
    pub fn new(name: impl Into<String>, start: u64, end: Option<u64>) -> Self {
        Self {
            name: name.into(),
            start,
            end,
        }
    }

    /// The whole record `name`.
    pub fn whole(name: impl Into<String>) -> Self {
        Self::new(name, 0, None)
    }

    /// Parses `text` as samtools does once it knows the input's record names (`is_record`): a text that is itself
    /// a record's name is that whole record even where its end reads as a range (GRCh38's `HLA-A*01:01:01:01`
    /// is not bases 1.. of `HLA-A*01:01:01`), and a text that names a record both ways is refused as ambiguous.
    /// `{name}` and `{name}:range` are never ambiguous.
    ///
    /// ```
    /// use genomamba_seq::Region;
    /// let names = ["chr1", "HLA-A*01:01:01:01", "x", "x:5"];
    /// let is_record = |n: &str| names.contains(&n);
    /// assert_eq!(Region::parse_with_names("chr1:11-20", is_record)?, Region::new("chr1", 10, Some(20)));
    /// assert_eq!(
    ///     Region::parse_with_names("HLA-A*01:01:01:01", is_record)?,
    ///     Region::whole("HLA-A*01:01:01:01")
    /// );
    /// assert!(Region::parse_with_names("x:5", is_record).is_err());
    /// assert_eq!(Region::parse_with_names("{x}:5", is_record)?, Region::new("x", 4, None));
    /// # Ok::<(), genomamba_seq::Error>(())
    /// ```
    pub fn parse_with_names(text: &str, is_record: impl Fn(&str) -> bool) -> Result<Self, Error> {
        let parsed = text.parse::<Region>();
        if text.starts_with('{') || !is_record(text) {
            return parsed;
        }
        match parsed {
            Ok(range) if range.name != text && is_record(&range.name) => {
                Err(Error::InvalidRegion {
                    text: text.to_string(),
                    reason: format!(
                        "ambiguous: it is the name of a record, and a range of record '{0}'; write {{{text}}} \
                         for the whole record or {{{0}}}:{1} for the range",
                        range.name,
                        &text[range.name.len() + 1..]
                    ),
                })
            }
            _ => Ok(Self::whole(text)),
        }
    }

    /// Resolves `end` against the record length and checks the bounds: returns a non-empty `[start, end)`.
    pub fn resolve(&self, record_len: u64) -> Result<(u64, u64), Error> {
        let end = self.end.unwrap_or(record_len);
        if end > record_len || self.start >= end {
            return Err(Error::RegionOutOfBounds {
                region: self.to_string(),
                length: record_len,
            });
        }
        Ok((self.start, end))
    }
}

/// Prints samtools style: `name`, `name:start-` or `name:start-end` (1-based inclusive).
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.start, self.end) {
            (0, None) => write!(f, "{}", self.name),
            (s, None) => write!(f, "{}:{}-", self.name, s + 1),
            (s, Some(e)) => write!(f, "{}:{}-{}", self.name, s + 1, e),
        }
    }
}

/// Parses `chr`, `chr:start`, `chr:start-` or `chr:start-end`, 1-based inclusive as samtools (commas allowed in
/// numbers). A name that itself contains `:` is taken whole when its suffix is not a range; write `{name}` or
/// `{name}:start-end` when it is (`{HLA-A*01:01}`).
///
/// ```
/// use genomamba_seq::Region;
/// let r: Region = "chr1:1,001-2000".parse()?;
/// assert_eq!(r, Region::new("chr1", 1000, Some(2000)));
/// assert_eq!("chrM".parse::<Region>()?, Region::whole("chrM"));
/// assert_eq!("chr2:5-".parse::<Region>()?, Region::new("chr2", 4, None));
/// assert!("chr1:0-10".parse::<Region>().is_err());
/// # Ok::<(), genomamba_seq::Error>(())
/// ```
impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidRegion {
            text: s.to_string(),
            reason: why.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        // samtools' `{name}` and `{name}:range` forms, for names that contain ':'.
        let split = match s.strip_prefix('{').and_then(|t| t.split_once('}')) {
            Some((name, "")) => return Ok(Self::whole(name)),
            Some((name, rest)) => Some((
                name,
                rest.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':' after '}'"))?,
            )),
            None => s.rsplit_once(':'),
        };
        let Some((name, range)) = split else {
            return Ok(Self::whole(s));
        };
        let num = |t: &str| -> Option<u64> {
            let t: String = t.chars().filter(|&c| c != ',').collect();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                t.parse().ok()
            }
        };
        let (start, end) = match range.split_once('-') {
            Some((a, "")) => (num(a), None),
            Some((a, b)) => match num(b) {
                Some(e) => (num(a), Some(e)),
                None => (None, None),
            },
            None => (num(range), None),
        };
        let Some(start) = start else {
            // `HLA-A*01:01` and the like: the whole string is a name.
            return Ok(Self::whole(s));
        };
        if name.is_empty() {
            return Err(bad("missing record name"));
        }
        if start == 0 {
            return Err(bad("positions are 1-based, start must be >= 1"));
        }
        if let Some(e) = end
            && e < start
        {
            return Err(bad("end is before start"));
        }
        Ok(Self::new(name, start - 1, end))
    }
}

/// Reads regions from BED text (0-based half-open; `#`, `track` and `browser` lines and blank lines skipped;
/// columns after the third ignored). `source` names the input in error messages.
///
/// ```
/// use genomamba_seq::region;
/// let bed = b"# comment\nchr1\t0\t100\tname\nchr2 10 20\n";
/// let regions = region::read_bed(&bed[..], "x.bed")?;
/// assert_eq!(regions[1], genomamba_seq::Region::new("chr2", 10, Some(20)));
/// # Ok::<(), genomamba_seq::Error>(())
/// ```
pub fn read_bed<R: BufRead>(mut reader: R, source: &str) -> Result<Vec<Region>, Error> {
    let mut out = Vec::new();
    let mut bytes = Vec::new();
    for i in 1.. {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::Io {
                path: format!("{source}: line {i}"),
                source: e,
            })?;
        if n == 0 {
            break;
        }
        let bad = |why: &str| Error::InvalidBed {
            path: source.to_string(),
            line: i,
            reason: why.to_string(),
        };
        let line = std::str::from_utf8(&bytes)
            .map_err(|_| bad("not text (a binary file, or not UTF-8)"))?
            .trim_end_matches(['\n', '\r']);
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("track") || t.starts_with("browser")
        {
            continue;
        }
        let mut cols = t.split(['\t', ' ']).filter(|c| !c.is_empty());
        let (Some(name), Some(s), Some(e)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(bad("expected at least 3 columns: chrom, start, end"));
        };
        let s: u64 = s
            .parse()
            .map_err(|_| bad("start is not a non-negative integer"))?;
        let e: u64 = e
            .parse()
            .map_err(|_| bad("end is not a non-negative integer"))?;
        if e <= s {
            return Err(bad("end must be greater than start"));
        }
        out.push(Region::new(name, s, Some(e)));
    }
    Ok(out)
}

/// Reads a BED file from a path, plain, gzip or bgzip (`.bed.gz`, told by its first bytes; see [`read_bed`]).
pub fn read_bed_path(path: &std::path::Path) -> Result<Vec<Region>, Error> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| Error::Io {
        path: name.clone(),
        source: e,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let head = file.fill_buf().map_err(io)?;
    if let Some(why) = crate::open::foreign_reason(head, &name) {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            why,
        )));
    }
    match crate::open::compression(head) {
        crate::open::Compression::None => read_bed(file, &name),
        crate::open::Compression::Gzip => read_bed(
            std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)),
            &name,
        ),
        // A bgzip file cut at a block boundary decompresses cleanly: the end-of-file marker tells it is whole.
        crate::open::Compression::Bgzf => read_bed(
            std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
                crate::bgzf_eof::EofChecked::new(file),
            )),
            &name,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_from_str() -> Result<(), Error> {
        let t = |s: &str| s.parse::<Region>();
        assert_eq!(
            t("NC_001416.1:1-10")?,
            Region::new("NC_001416.1", 0, Some(10))
        );
        assert_eq!(t("x:7")?, Region::new("x", 6, None));
        assert_eq!(t("x:7-7")?, Region::new("x", 6, Some(7)));
        assert_eq!(t("chrUn:ab")?, Region::whole("chrUn:ab"));
        assert_eq!(t("{HLA-A*01:01}")?, Region::whole("HLA-A*01:01"));
        assert_eq!(
            t("{HLA-A*01:01}:5-6")?,
            Region::new("HLA-A*01:01", 4, Some(6))
        );
        assert_eq!(
            t("HLA-A*01:01:5-6")?,
            Region::new("HLA-A*01:01", 4, Some(6))
        );
        assert!(t("{x}5").is_err());
        assert!(matches!(t("x:10-9"), Err(Error::InvalidRegion { .. })));
        assert!(matches!(t(":1-2"), Err(Error::InvalidRegion { .. })));
        assert!(t("").is_err());
        Ok(())
    }

    #[test]
    fn test_display_round_trips() -> Result<(), Error> {
        for s in ["chr1", "chr1:5-", "chr1:5-9"] {
            assert_eq!(s.parse::<Region>()?.to_string(), s);
        }
        Ok(())
    }

    #[test]
    fn test_resolve() {
        let r = Region::new("x", 10, Some(20));
        assert_eq!(r.resolve(20).ok(), Some((10, 20)));
        assert!(matches!(
            r.resolve(19),
            Err(Error::RegionOutOfBounds { length: 19, .. })
        ));
        assert_eq!(Region::new("x", 5, None).resolve(6).ok(), Some((5, 6)));
        assert!(Region::new("x", 6, None).resolve(6).is_err());
    }

    #[test]
    fn test_read_bed_errors_name_line() {
        let err = read_bed(&b"chr1\t0\t10\nchr1\t5\n"[..], "r.bed").unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.bed:2: invalid BED line: expected at least 3 columns: chrom, start, end"
        );
        assert!(read_bed(&b"chr1\t10\t10\n"[..], "r.bed").is_err());
        let err = read_bed(&b"chr1\t0\t10\n\x1f\x8b\x08\xff\n"[..], "r.bed").unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.bed:2: invalid BED line: not text (a binary file, or not UTF-8)"
        );
    }

    #[test]
    fn test_read_bed_path_reads_gzip_and_bgzip() -> Result<(), Box<dyn std::error::Error>> {
        use std::io::Write as _;
        let text = b"track name=t\nchr1\t0\t10\nchr2 5 20 x\n";
        let want = read_bed(&text[..], "r.bed")?;
        assert_eq!(want.len(), 2);
        let dir = tempfile::tempdir()?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text)?;
        let mut bgz = noodles::bgzf::io::Writer::new(Vec::new());
        bgz.write_all(text)?;
        let bgz = bgz.finish()?;
        for (name, bytes) in [
            ("r.bed", text.to_vec()),
            ("r.bed.gz", gz.finish()?),
            ("r.bgz.bed.gz", bgz.clone()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes)?;
            assert_eq!(read_bed_path(&path)?, want, "{name}");
        }
        // Without its end-of-file marker the bgzip file decompresses cleanly, yet it may have lost blocks.
        let cut = dir.path().join("cut.bed.gz");
        std::fs::write(&cut, &bgz[..bgz.len() - 28])?;
        let e = read_bed_path(&cut).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}", cut.display()))
                && e.contains("ends without the BGZF end-of-file marker: the file is truncated"),
            "{e}"
        );
        Ok(())
    }
}
