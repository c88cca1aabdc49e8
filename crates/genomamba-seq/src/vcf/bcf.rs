//! BCF, VCF's binary form (`bcftools view -Ob`, or `-Ou` uncompressed), read by noodles-bcf into the same
//! [`VcfRecord`]s as VCF text.
//!
//! BCF has no lines: errors name the record by its 1-based number (`record 12: ...`), and
//! [`VcfRecord::line`] holds that number. noodles checks the header (the BCF magic and version, then the VCF
//! header text inside); the contig of a record is looked up in the header's contig list.
//!
//! Between the input and noodles sits [`Framed`]: noodles sizes its buffer by a record's length fields before
//! reading it, so a corrupt length would make it allocate up to 8 GiB first; `Framed` reads each length-prefixed
//! unit (the header, then each record) as far as the input goes, and fails as a truncated record when the input
//! holds fewer bytes than the lengths claim.

use std::io::{self, Read};
use std::sync::Arc;

use noodles::{bcf, vcf as nv};

use super::{VcfRecord, chain};
use crate::{open::read_up_to, source::invalid_data};

/// The magic bytes of a BCF stream (after decompression).
pub(super) const MAGIC: &[u8] = b"BCF";

/// Opens the decompressed BCF stream `inner` and reads its header; `source` names it in errors.
pub(super) fn open<R: Read>(
    inner: R,
    source: &str,
) -> io::Result<(bcf::io::Reader<Framed<R>>, nv::Header)> {
    let mut reader = bcf::io::Reader::from(Framed::new(inner));
    let header = reader
        .read_header()
        .map_err(|e| io::Error::new(e.kind(), format!("{source}: BCF header: {}", chain(&e))))?;
    Ok((reader, header))
}

/// The next record of `reader` (of `header`), or `None` after the last; `n` counts the records read.
pub(super) fn next<R: Read>(
    reader: &mut bcf::io::Reader<Framed<R>>,
    header: &nv::Header,
    record: &mut bcf::Record,
    n: &mut u64,
    source: &str,
    chrom: &mut Option<Arc<str>>,
) -> io::Result<Option<VcfRecord>> {
    let number = *n + 1;
    match reader.read_record(record) {
        Ok(0) => Ok(None),
        Ok(_) => {
            *n = number;
            site(record, header, number, chrom)
                .map(Some)
                .map_err(|msg| invalid_data(source, format_args!("record {number}: {msg}")))
        }
        Err(e) => {
            let hint = if e.kind() == io::ErrorKind::UnexpectedEof {
                " (truncated file?)"
            } else {
                ""
            };
            Err(io::Error::new(
                e.kind(),
                format!("{source}: record {number}: {}{hint}", chain(&e)),
            ))
        }
    }
}

/// The fields we keep of BCF record number `n`; the error is the message after `record {n}: `.
fn site(
    record: &bcf::Record,
    header: &nv::Header,
    n: u64,
    last: &mut Option<Arc<str>>,
) -> Result<VcfRecord, String> {
    let chrom = nv::variant::Record::reference_sequence_name(record, header)
        .map_err(|e| format!("CHROM: {} (the header lists no such contig)", chain(&e)))?;
    let pos = match record.variant_start() {
        None => 0,
        Some(Ok(p)) => p.get() as u64,
        Some(Err(e)) => return Err(format!("POS: {}", chain(&e))),
    };
    let ids = nv::variant::Record::ids(record);
    let id = ids.iter().collect::<Vec<_>>().join(";");
    let reference = nv::variant::Record::reference_bases(record)
        .iter()
        .collect::<io::Result<Vec<u8>>>()
        .map_err(|e| format!("REF: {}", chain(&e)))?;
    let reference =
        String::from_utf8(reference).map_err(|_| "REF is not valid UTF-8".to_string())?;
    let alts = nv::variant::Record::alternate_bases(record)
        .iter()
        .map(|alt| alt.map(str::to_string))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("ALT: {}", chain(&e)))?;
    Ok(VcfRecord {
        chrom: super::shared_chrom(chrom, last),
        pos,
        id: Some(id).filter(|id| !id.is_empty()),
        reference,
        alts,
        line: n,
    })
}

/// `inner`, a decompressed BCF stream, for noodles to read one length-prefixed unit at a time ([`Framed`]).
pub(super) fn framed<R: Read>(inner: R) -> Framed<R> {
    Framed::new(inner)
}

/// A reader of a decompressed BCF stream that hands on one length-prefixed unit at a time (the header: magic,
/// version, text length and text; then each record: its two lengths and their bytes), each read whole from the
/// input first, in memory bounded by what the input holds.
pub(super) struct Framed<R> {
    inner: R,
    /// The current unit; `pos` bytes of it handed on.
    unit: Vec<u8>,
    pos: usize,
    /// Whether the header has been framed.
    past_header: bool,
}

impl<R: Read> Framed<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            unit: Vec::new(),
            pos: 0,
            past_header: false,
        }
    }

    /// Reads the next unit into `unit`: empty at the end of the input; a short prefix is handed on as it is
    /// (noodles then reports the input's end).
    fn next_unit(&mut self) -> io::Result<()> {
        // Header: "BCF", major and minor version, u32 text length. Record: u32 shared and u32 sample lengths.
        let prefix = if self.past_header { 8 } else { 9 };
        self.unit.clear();
        self.unit.resize(prefix, 0);
        self.pos = 0;
        let n = read_up_to(&mut self.inner, &mut self.unit)?;
        self.unit.truncate(n);
        if n < prefix {
            return Ok(());
        }
        let len =
            |at: usize| u64::from(u32::from_le_bytes([0, 1, 2, 3].map(|i| self.unit[at + i])));
        let claimed = if self.past_header {
            len(0) + len(4)
        } else {
            len(5)
        };
        self.past_header = true;
        let got = (&mut self.inner)
            .take(claimed)
            .read_to_end(&mut self.unit)? as u64;
        if got < claimed {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("its length fields claim {claimed} bytes, and the input ends after {got}"),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for Framed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.unit.len() {
            self.next_unit()?;
        }
        let n = (self.unit.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.unit[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
