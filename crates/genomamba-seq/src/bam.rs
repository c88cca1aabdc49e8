//! BAM (and, in [`cram`], CRAM): reads in their original sequencing orientation, filtered by flags and MAPQ,
//! streamed or queried by region through a `.bai`/`.csi` index.

pub mod cram;
mod query;

use std::io::{self, BufRead};

use noodles::{bam, sam};

use crate::{
    alphabet::reverse_complement_bases,
    source::{Alignment, SequenceInfo, SequenceSource, context, invalid_data, read_error},
};

pub use self::query::QueryReader;

/// Which reads to keep (samtools semantics: `-f include -F exclude -q min_mapq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadFilter {
    /// Keep reads with MAPQ >= this (255, "unavailable", passes every threshold).
    pub min_mapq: u8,
    /// Keep only reads with all of these flag bits set.
    pub include_flags: u16,
    /// Drop reads with any of these flag bits set.
    pub exclude_flags: u16,
}

impl ReadFilter {
    /// Default exclusions: secondary (0x100), QC-fail (0x200), duplicate (0x400), supplementary (0x800).
    pub const DEFAULT_EXCLUDE: u16 = 0xF00;

    /// Whether a read with this flag and raw MAPQ passes (an unmapped read counts as MAPQ 0, as in BAM; CRAM
    /// does not store it).
    pub fn keeps(&self, flag: u16, mapq: u8) -> bool {
        let mapq = if flag & UNMAPPED != 0 { 0 } else { mapq };
        flag & self.include_flags == self.include_flags
            && flag & self.exclude_flags == 0
            && mapq >= self.min_mapq
    }
}

impl Default for ReadFilter {
    fn default() -> Self {
        Self {
            min_mapq: 0,
            include_flags: 0,
            exclude_flags: Self::DEFAULT_EXCLUDE,
        }
    }
}

const UNMAPPED: u16 = 0x4;
const REVERSE: u16 = 0x10;
const READ1: u16 = 0x40;
const READ2: u16 = 0x80;

/// The fields of one alignment record that a read sequence needs.
pub(crate) struct RawRead<'a> {
    pub name: &'a [u8],
    pub flag: u16,
    pub ref_id: Option<usize>,
    pub pos: Option<usize>,
    pub mapq: u8,
}

/// Builds the [`SequenceInfo`] of a read and turns `bases` back to sequencing orientation.
pub(crate) fn read_info(header: &sam::Header, raw: RawRead<'_>, bases: &mut [u8]) -> SequenceInfo {
    let mut name = String::from_utf8_lossy(raw.name).into_owned();
    if raw.flag & READ1 != 0 && raw.flag & READ2 == 0 {
        name.push_str("/1");
    } else if raw.flag & READ2 != 0 && raw.flag & READ1 == 0 {
        name.push_str("/2");
    }
    let reverse = raw.flag & REVERSE != 0;
    if reverse {
        reverse_complement_bases(bases);
    }
    // An unmapped read placed beside its mate carries the mate's RNAME and POS (SAM §2.4): not an alignment of
    // its own, so no reference fields; MAPQ means nothing for it either (BAM stores 0, CRAM nothing).
    let mapped = raw.flag & UNMAPPED == 0;
    let ref_name = (raw.ref_id.filter(|_| mapped))
        .and_then(|id| header.reference_sequences().get_index(id))
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned());
    SequenceInfo {
        name,
        start: 0,
        len: Some(bases.len() as u64),
        alignment: Some(Alignment {
            ref_name,
            ref_start: raw.pos.filter(|_| mapped).map(|p| p as i64 - 1),
            reverse,
            mapq: (raw.mapq != 255 && mapped).then_some(raw.mapq),
            flag: raw.flag,
        }),
        ..Default::default()
    }
}

/// Extracts a BAM record's read fields and bases (`bases` is cleared first).
pub(crate) fn decode(record: &bam::Record, bases: &mut Vec<u8>) -> io::Result<(u16, u8)> {
    bases.clear();
    bases.extend(record.sequence().iter());
    let flag = u16::from(record.flags());
    let mapq = record.mapping_quality().map_or(255, u8::from);
    Ok((flag, mapq))
}

pub(crate) fn raw_of(record: &bam::Record, flag: u16, mapq: u8) -> io::Result<RawRead<'_>> {
    Ok(RawRead {
        name: record.name().map_or(&b"*"[..], |n| n),
        flag,
        ref_id: record.reference_sequence_id().transpose()?,
        pos: record.alignment_start().transpose()?.map(usize::from),
        mapq,
    })
}

/// A queue of bases of the current read, served in slices.
#[derive(Default)]
pub(crate) struct Current {
    pub bases: Vec<u8>,
    pub pos: usize,
}

impl Current {
    pub(crate) fn take(&mut self, buf: &mut Vec<u8>, max: usize) -> usize {
        let n = (self.bases.len() - self.pos).min(max);
        buf.extend_from_slice(&self.bases[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

/// Streams every record of a BAM (already BGZF-decompressed or not: see [`Reader::new`]) through a filter.
pub struct Reader {
    inner: bam::io::Reader<Box<dyn BufRead + Send>>,
    header: sam::Header,
    input: String,
    filter: ReadFilter,
    record: bam::Record,
    current: Current,
    count: u64,
}

impl Reader {
    /// A reader over *decompressed* BAM bytes (`BAM\1` first); reads the header.
    pub fn new(
        inner: Box<dyn BufRead + Send>,
        input: impl Into<String>,
        filter: ReadFilter,
    ) -> io::Result<Self> {
        let input = input.into();
        let mut inner = bam::io::Reader::from(inner);
        let header = inner
            .read_header()
            .map_err(|e| context(&input, "reading the BAM header", e))?;
        Ok(Self {
            inner,
            header,
            input,
            filter,
            record: bam::Record::default(),
            current: Current::default(),
            count: 0,
        })
    }

    /// The SAM header.
    pub fn header(&self) -> &sam::Header {
        &self.header
    }
}

impl SequenceSource for Reader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        loop {
            let n = self.inner.read_record(&mut self.record).map_err(|e| {
                read_error(
                    &self.input,
                    format_args!("BAM record {}", self.count + 1),
                    e,
                )
            })?;
            if n == 0 {
                self.current = Current::default();
                return Ok(None);
            }
            self.count += 1;
            let (flag, mapq) = decode(&self.record, &mut self.current.bases)?;
            if !self.filter.keeps(flag, mapq) {
                continue;
            }
            let raw = raw_of(&self.record, flag, mapq).map_err(|e| {
                invalid_data(&self.input, format_args!("BAM record {}: {e}", self.count))
            })?;
            self.current.pos = 0;
            return Ok(Some(read_info(&self.header, raw, &mut self.current.bases)));
        }
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        Ok(self.current.take(buf, max))
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_filter() {
        let f = ReadFilter::default();
        assert!(f.keeps(0x1 | 0x40, 0));
        assert!(!f.keeps(0x100, 60));
        assert!(!f.keeps(0x800, 60));
        assert!(!f.keeps(0x400, 60));
        let f = ReadFilter {
            min_mapq: 30,
            include_flags: 0x2,
            exclude_flags: 0x4,
        };
        assert!(f.keeps(0x3, 30));
        assert!(f.keeps(0x3, 255));
        assert!(!f.keeps(0x1, 60));
        assert!(!f.keeps(0x3, 29));
    }

    #[test]
    fn test_read_info_orientation_and_names() {
        let header = sam::Header::default();
        let mut bases = b"AACGt".to_vec();
        let raw = RawRead {
            name: b"q",
            flag: 0x1 | 0x10 | 0x80,
            ref_id: None,
            pos: Some(10),
            mapq: 255,
        };
        let info = read_info(&header, raw, &mut bases);
        assert_eq!(bases, b"aCGTT");
        assert_eq!(info.name, "q/2");
        let a = info.alignment.expect("alignment");
        assert_eq!(
            (a.reverse, a.mapq, a.ref_start, a.flag),
            (true, None, Some(9), 0x91)
        );
        assert_eq!(a.strand(), Some(true));
    }

    #[test]
    fn test_unmapped_read_has_no_alignment_fields() {
        let mut header = sam::Header::default();
        let mut refs = sam::header::ReferenceSequences::default();
        refs.insert(
            b"chr1".into(),
            sam::header::record::value::Map::<
                sam::header::record::value::map::ReferenceSequence,
            >::new(std::num::NonZero::<usize>::MIN),
        );
        *header.reference_sequences_mut() = refs;
        let raw = |flag, mapq| RawRead {
            name: b"q",
            flag,
            ref_id: Some(0),
            pos: Some(10),
            mapq,
        };
        // Placed beside its mate (RNAME and POS set), but unmapped: no alignment fields, no strand.
        let a = read_info(&header, raw(0x1 | 0x4 | 0x40, 0), &mut Vec::new())
            .alignment
            .expect("alignment");
        assert_eq!(
            (
                a.ref_name.as_deref(),
                a.ref_start,
                a.mapq,
                a.reverse,
                a.flag
            ),
            (None, None, None, false, 0x45)
        );
        assert_eq!((a.strand(), a.is_mapped()), (None, false));
        let a = read_info(&header, raw(0x1 | 0x40, 42), &mut Vec::new())
            .alignment
            .expect("alignment");
        assert_eq!(
            (a.ref_name.as_deref(), a.ref_start, a.mapq, a.strand()),
            (Some("chr1"), Some(9), Some(42), Some(false))
        );
        let a = read_info(&header, raw(0, 255), &mut Vec::new())
            .alignment
            .expect("alignment");
        assert_eq!(a.mapq, None, "255 is 'unavailable'");
    }
}
