//! CRAM: decoded on a worker thread (noodles' record iterators borrow their reader), reads handed over a
//! bounded channel. Needs the reference FASTA (with `.fai`) the CRAM was written against.

use std::{
    io::{self, Read},
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
};

use noodles::{cram, fasta, sam};

use super::{Current, RawRead, ReadFilter, read_info};
use crate::{
    Region,
    source::{SequenceInfo, SequenceSource, context, invalid_data},
};

type Item = io::Result<(SequenceInfo, Vec<u8>)>;

/// Streams (or queries by region through `.crai`) the reads of a CRAM file.
pub struct Reader {
    rx: mpsc::Receiver<Item>,
    input: String,
    current: Current,
    done: bool,
}

fn repository(reference: &Path, input: &str) -> io::Result<fasta::Repository> {
    let reader = fasta::io::indexed_reader::Builder::default()
        .build_from_path(reference)
        .map_err(|e| {
            context(
                input,
                format_args!(
                    "opening the CRAM reference {} (it needs a .fai: `samtools faidx`)",
                    reference.display()
                ),
                e,
            )
        })?;
    Ok(fasta::Repository::new(
        fasta::repository::adapters::IndexedReader::new(reader),
    ))
}

fn send_record(
    tx: &mpsc::SyncSender<Item>,
    header: &sam::Header,
    filter: &ReadFilter,
    rec: &sam::alignment::RecordBuf,
) -> bool {
    let flag = u16::from(rec.flags());
    let mapq = rec.mapping_quality().map_or(255, u8::from);
    if !filter.keeps(flag, mapq) {
        return true;
    }
    let mut bases = rec.sequence().as_ref().to_vec();
    let raw = RawRead {
        name: rec.name().map_or(&b"*"[..], |n| n),
        flag,
        ref_id: rec.reference_sequence_id(),
        pos: rec.alignment_start().map(usize::from),
        mapq,
    };
    let info = read_info(header, raw, &mut bases);
    tx.send(Ok((info, bases))).is_ok()
}

impl Reader {
    /// Opens a CRAM stream (`inner` positioned at the start); `reference` is the FASTA it was written against.
    pub fn new(
        inner: Box<dyn Read + Send>,
        input: impl Into<String>,
        reference: Option<&Path>,
        filter: ReadFilter,
    ) -> io::Result<Self> {
        let input = input.into();
        let reference = reference.ok_or_else(|| {
            invalid_data(
                &input,
                "CRAM input needs the reference FASTA it was written against (--reference)",
            )
        })?;
        let repo = repository(reference, &input)?;
        let (tx, rx) = mpsc::sync_channel::<Item>(1024);
        let name = input.clone();
        thread::Builder::new()
            .name("genomamba-cram".into())
            .spawn(move || {
                let mut reader = cram::io::reader::Builder::default()
                    .set_reference_sequence_repository(repo)
                    .build_from_reader(inner);
                let header = match reader.read_header() {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = tx.send(Err(context(&name, "reading the CRAM header", e)));
                        return;
                    }
                };
                for (i, rec) in reader.records(&header).enumerate() {
                    match rec {
                        Ok(rec) => {
                            if !send_record(&tx, &header, &filter, &rec) {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(context(
                                &name,
                                format_args!("CRAM record {}", i + 1),
                                e,
                            )));
                            return;
                        }
                    }
                }
            })?;
        Ok(Self {
            rx,
            input,
            current: Current::default(),
            done: false,
        })
    }

    /// Opens a CRAM file with its `.crai` and reads the records overlapping each region in turn.
    pub fn query(
        path: &Path,
        regions: Vec<Region>,
        reference: Option<&Path>,
        filter: ReadFilter,
    ) -> io::Result<Self> {
        let input = path.display().to_string();
        let reference = reference.ok_or_else(|| {
            invalid_data(
                &input,
                "CRAM input needs the reference FASTA it was written against (--reference)",
            )
        })?;
        let repo = repository(reference, &input)?;
        let crai: PathBuf = super::super::fasta::indexed::with_suffix(path, ".crai");
        let index = cram::crai::fs::read(&crai).map_err(|e| {
            context(
                &input,
                format_args!("a region query needs {} (`samtools index`)", crai.display()),
                e,
            )
        })?;
        let mut reader = cram::io::indexed_reader::Builder::default()
            .set_reference_sequence_repository(repo)
            .set_index(index)
            .build_from_path(path)
            .map_err(|e| context(&input, "opening", e))?;
        let header = reader
            .read_header()
            .map_err(|e| context(&input, "reading the CRAM header", e))?;
        for r in &regions {
            if header
                .reference_sequences()
                .get(r.name.as_bytes())
                .is_none()
            {
                return Err(invalid_data(
                    &input,
                    format_args!("unknown reference name '{}' in region {r}", r.name),
                ));
            }
        }
        let (tx, rx) = mpsc::sync_channel::<Item>(1024);
        let name = input.clone();
        thread::Builder::new()
            .name("genomamba-cram".into())
            .spawn(move || {
                for r in regions {
                    let region = match noodles::core::Region::try_from(&r) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let query = match reader.query(&header, &region) {
                        Ok(q) => q,
                        Err(e) => {
                            let _ = tx.send(Err(context(&name, &r, e)));
                            return;
                        }
                    };
                    for rec in query.records() {
                        match rec {
                            Ok(rec) => {
                                if !send_record(&tx, &header, &filter, &rec) {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(context(&name, &r, e)));
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(Self {
            rx,
            input,
            current: Current::default(),
            done: false,
        })
    }
}

impl TryFrom<&Region> for noodles::core::Region {
    type Error = io::Error;

    fn try_from(r: &Region) -> io::Result<Self> {
        use noodles::core::Position;
        let p = |x: u64| {
            Position::try_from(x as usize)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        let start = p(r.start + 1)?;
        Ok(match r.end {
            Some(e) => noodles::core::Region::new(r.name.as_bytes(), start..=p(e)?),
            None => noodles::core::Region::new(r.name.as_bytes(), start..),
        })
    }
}

impl SequenceSource for Reader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Ok((info, bases))) => {
                self.current = Current { bases, pos: 0 };
                Ok(Some(info))
            }
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            Err(_) => {
                self.done = true;
                self.current = Current::default();
                Ok(None)
            }
        }
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        Ok(self.current.take(buf, max))
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}
