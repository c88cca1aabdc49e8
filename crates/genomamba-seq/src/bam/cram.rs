//! CRAM: decoded on a worker thread (noodles' record iterators borrow their reader), reads handed over a
//! bounded channel. Needs the reference FASTA (with `.fai`) the CRAM was written against.

use std::{
    collections::HashMap,
    io::{self, Read},
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
};

use noodles::{cram, fasta, sam};

use super::{Current, RawRead, ReadFilter, read_info};
use crate::{
    Region,
    source::{SequenceInfo, SequenceSource, context, invalid_data, read_error},
};

/// What the decoding thread hands over. The end of the input is said explicitly: a channel that closes without
/// [`Msg::End`] means the thread died, which is an error, never a short input.
enum Msg {
    Read(SequenceInfo, Vec<u8>),
    Fail(io::Error),
    End,
}

/// Streams (or queries by region through `.crai`) the reads of a CRAM file.
pub struct Reader {
    rx: mpsc::Receiver<Msg>,
    worker: Option<thread::JoinHandle<()>>,
    input: String,
    current: Current,
    done: bool,
}

/// The reference FASTA the CRAM is decoded against, and its record lengths from the `.fai`.
struct Reference {
    repository: fasta::Repository,
    path: PathBuf,
    lengths: HashMap<Vec<u8>, u64>,
}

fn reference(path: Option<&Path>, input: &str) -> io::Result<Reference> {
    let path = path.ok_or_else(|| {
        invalid_data(
            input,
            "CRAM input needs the reference FASTA it was written against (--reference)",
        )
    })?;
    let opening = |e| {
        context(
            input,
            format_args!(
                "opening the CRAM reference {} (it needs a .fai: `samtools faidx`)",
                path.display()
            ),
            e,
        )
    };
    let reader = fasta::io::indexed_reader::Builder::default()
        .build_from_path(path)
        .map_err(opening)?;
    let fai = crate::fasta::indexed::with_suffix(path, ".fai");
    let index: Vec<fasta::fai::Record> = fasta::fai::fs::read(&fai).map_err(opening)?.into();
    let lengths = index
        .iter()
        .map(|r| (<&[u8]>::from(r.name()).to_vec(), r.length()))
        .collect();
    Ok(Reference {
        repository: fasta::Repository::new(fasta::repository::adapters::IndexedReader::new(reader)),
        path: path.to_path_buf(),
        lengths,
    })
}

impl Reference {
    /// `e`, from decoding a record against this reference, in words that name the reference: noodles says a
    /// missing sequence is an "invalid reference sequence name" and prints a mismatched MD5 as decimal bytes.
    fn decoding_error(&self, e: io::Error) -> io::Error {
        let text = e.to_string();
        let reference = self.path.display();
        if let Some(name) = text.strip_prefix("invalid reference sequence name: ") {
            return io::Error::new(
                e.kind(),
                format!(
                    "the reads are aligned to '{name}', which the reference {reference} does not have: is \
                     --reference the FASTA the CRAM was written against?"
                ),
            );
        }
        if let Some(sums) = text.strip_prefix("reference sequence checksum mismatch: ") {
            // "expected [94, 181, ...], got [199, 79, ...]"
            let hex: Vec<String> = sums
                .split(']')
                .filter_map(|part| part.split_once('['))
                .map(|(_, bytes)| {
                    (bytes.split(", "))
                        .filter_map(|b| b.trim().parse::<u8>().ok())
                        .map(|b| format!("{b:02x}"))
                        .collect()
                })
                .collect();
            if let [expected, got] = &hex[..] {
                return io::Error::new(
                    e.kind(),
                    format!(
                        "the bases of the reference {reference} differ from those the CRAM was written against \
                         (MD5 of the slice's reference span: the CRAM has {expected}, the FASTA gives {got}): is \
                         --reference the FASTA the CRAM was written against?"
                    ),
                );
            }
        }
        e
    }

    /// Refuses a reference whose sequences differ in length from the CRAM header's (`@SQ LN`): decoding against
    /// the wrong reference gives wrong bases or fails part way. A sequence the FASTA lacks is left to the decoder
    /// (a CRAM header may list sequences no read is on).
    fn check(&self, header: &sam::Header, input: &str) -> io::Result<()> {
        for (name, map) in header.reference_sequences() {
            let want = map.length().get() as u64;
            let key: &[u8] = name.as_ref();
            let Some(&have) = self.lengths.get(key) else {
                continue;
            };
            if have != want {
                return Err(invalid_data(
                    input,
                    format_args!(
                        "reference sequence '{name}' is {want} bases long in the CRAM header (@SQ LN) but {have} \
                         in the reference {}: is --reference the FASTA the CRAM was written against?",
                        self.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The end-of-file container that ends every CRAM 3 file (CRAM spec §9).
const EOF_CONTAINER_3: [u8; 38] = [
    0x0f, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xe0, 0x45, 0x4f, 0x46, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x05, 0xbd, 0xd9, 0x4f, 0x00, 0x01, 0x00, 0x06, 0x06, 0x01, 0x00, 0x01, 0x00,
    0x01, 0x00, 0xee, 0x63, 0x01, 0x4b,
];

/// Checks that a CRAM 3 file read by region ends with its end-of-file container (a streamed one is checked by
/// the decoder, which fails where the input ends without it).
fn check_eof_container(path: &Path, input: &str) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| context(input, "opening", e))?;
    let mut head = [0u8; 6];
    file.read_exact(&mut head)
        .map_err(|e| context(input, "reading the CRAM file definition", e))?;
    if head[4] != 3 {
        return Ok(());
    }
    let mut tail = [0u8; 38];
    let whole = file
        .seek(SeekFrom::End(-(tail.len() as i64)))
        .and_then(|_| file.read_exact(&mut tail))
        .is_ok_and(|()| tail == EOF_CONTAINER_3);
    if whole {
        Ok(())
    } else {
        Err(invalid_data(
            input,
            "ends without the CRAM end-of-file container: the file is truncated (or was written by a tool \
             that omits it: re-write it with `samtools view -C`)",
        ))
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".into()
    }
}

/// The error for a decoder that panicked after handing over `count` records.
fn decode_panic(input: &str, count: u64, text: &str) -> io::Error {
    let place = if count == 0 {
        "before the first record".to_string()
    } else {
        format!("after record {count}")
    };
    invalid_data(
        input,
        format_args!(
            "decoding a CRAM container against the reference failed {place} (is --reference the FASTA the CRAM \
             was written against?): {text}"
        ),
    )
}

/// Hands over reads through a channel, counting the records decoded.
struct Sender {
    tx: mpsc::SyncSender<Msg>,
    filter: ReadFilter,
    count: u64,
}

impl Sender {
    /// Sends the read if the filter keeps it; `false` when the receiver is gone.
    fn record(&mut self, header: &sam::Header, rec: &sam::alignment::RecordBuf) -> bool {
        self.count += 1;
        let flag = u16::from(rec.flags());
        let mapq = rec.mapping_quality().map_or(255, u8::from);
        if !self.filter.keeps(flag, mapq) {
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
        self.tx.send(Msg::Read(info, bases)).is_ok()
    }
}

/// Runs `decode` on a thread. Whatever way it ends is said on the channel: [`Msg::End`], the error it
/// returned, or (caught here) its panic as an error naming the input and the records decoded before it.
fn spawn(
    input: &str,
    filter: ReadFilter,
    decode: impl FnOnce(&mut Sender) -> io::Result<()> + Send + 'static,
) -> io::Result<(mpsc::Receiver<Msg>, thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel::<Msg>(1024);
    let name = input.to_string();
    let worker = thread::Builder::new()
        .name("genomamba-cram".into())
        .spawn(move || {
            let mut sender = Sender {
                tx,
                filter,
                count: 0,
            };
            // noodles panics on some inconsistent input (a reference shorter than the CRAM's slices).
            let result = panic::catch_unwind(AssertUnwindSafe(|| decode(&mut sender)));
            let last = match result {
                Ok(Ok(())) => Msg::End,
                Ok(Err(e)) => Msg::Fail(e),
                Err(payload) => {
                    Msg::Fail(decode_panic(&name, sender.count, &panic_text(&*payload)))
                }
            };
            let _ = sender.tx.send(last);
        })
        .map_err(|e| context(input, "starting the CRAM decoding thread", e))?;
    Ok((rx, worker))
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
        let refs = self::reference(reference, &input)?;
        let name = input.clone();
        let (rx, worker) = spawn(&input, filter, move |sender| {
            let mut reader = cram::io::reader::Builder::default()
                .set_reference_sequence_repository(refs.repository.clone())
                .build_from_reader(inner);
            let header = reader
                .read_header()
                .map_err(|e| context(&name, "reading the CRAM header", e))?;
            refs.check(&header, &name)?;
            for rec in reader.records(&header) {
                let rec = rec.map_err(|e| {
                    let e = refs.decoding_error(e);
                    read_error(&name, format_args!("CRAM record {}", sender.count + 1), e)
                })?;
                if !sender.record(&header, &rec) {
                    return Ok(());
                }
            }
            Ok(())
        })?;
        Ok(Self {
            rx,
            worker: Some(worker),
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
        let refs = self::reference(reference, &input)?;
        check_eof_container(path, &input)?;
        let crai: PathBuf = super::super::fasta::indexed::with_suffix(path, ".crai");
        let index = cram::crai::fs::read(&crai).map_err(|e| {
            context(
                &input,
                format_args!("a region query needs {} (`samtools index`)", crai.display()),
                e,
            )
        })?;
        let mut reader = cram::io::indexed_reader::Builder::default()
            .set_reference_sequence_repository(refs.repository.clone())
            .set_index(index)
            .build_from_path(path)
            .map_err(|e| context(&input, "opening", e))?;
        let header = reader
            .read_header()
            .map_err(|e| context(&input, "reading the CRAM header", e))?;
        refs.check(&header, &input)?;
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
        let name = input.clone();
        let (rx, worker) = spawn(&input, filter, move |sender| {
            for r in regions {
                let region = noodles::core::Region::try_from(&r)?;
                let query = reader
                    .query(&header, &region)
                    .map_err(|e| context(&name, &r, e))?;
                for rec in query.records() {
                    let rec = rec.map_err(|e| context(&name, &r, refs.decoding_error(e)))?;
                    if !sender.record(&header, &rec) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })?;
        Ok(Self {
            rx,
            worker: Some(worker),
            input,
            current: Current::default(),
            done: false,
        })
    }

    /// The error for a decoding thread that closed its channel without saying how it ended.
    fn died(&mut self) -> io::Error {
        let why = match self.worker.take().map(thread::JoinHandle::join) {
            Some(Err(payload)) => panic_text(&*payload),
            _ => "it stopped without finishing".into(),
        };
        invalid_data(&self.input, format_args!("decoding the CRAM failed: {why}"))
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
        let msg = self.rx.recv();
        if !matches!(msg, Ok(Msg::Read(..))) {
            self.done = true;
            self.current = Current::default();
        }
        match msg {
            Ok(Msg::Read(info, bases)) => {
                self.current = Current { bases, pos: 0 };
                Ok(Some(info))
            }
            Ok(Msg::End) => Ok(None),
            Ok(Msg::Fail(e)) => Err(e),
            Err(mpsc::RecvError) => Err(self.died()),
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

    fn reader(rx: mpsc::Receiver<Msg>, worker: thread::JoinHandle<()>) -> Reader {
        Reader {
            rx,
            worker: Some(worker),
            input: "x.cram".into(),
            current: Current::default(),
            done: false,
        }
    }

    fn read(n: usize) -> Msg {
        let info = SequenceInfo {
            name: format!("r{n}"),
            ..Default::default()
        };
        Msg::Read(info, b"ACGT".to_vec())
    }

    /// A decoder that panics part way: the reads before it, then an error naming the input and the record,
    /// never a clean end.
    #[test]
    fn test_decoder_panic_is_an_error() -> io::Result<()> {
        let (rx, worker) = spawn("x.cram", ReadFilter::default(), |sender| {
            for n in 1..=2 {
                sender.count += 1;
                let _ = sender.tx.send(read(n));
            }
            panic!("range end index 48499 out of range for slice of length 1899");
        })?;
        let mut r = reader(rx, worker);
        assert_eq!(r.next_sequence()?.map(|i| i.name), Some("r1".into()));
        assert_eq!(r.next_sequence()?.map(|i| i.name), Some("r2".into()));
        let e = r.next_sequence().unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.cram: decoding a CRAM container against the reference failed after record 2 (is --reference \
             the FASTA the CRAM was written against?): range end index 48499 out of range for slice of length \
             1899"
        );
        assert!(r.next_sequence()?.is_none());
        // A decoder that ends well ends the input.
        let (rx, worker) = spawn("x.cram", ReadFilter::default(), |_| Ok(()))?;
        assert!(reader(rx, worker).next_sequence()?.is_none());
        Ok(())
    }

    /// A channel closed without its end message (the thread died outside the caught part) is an error that
    /// carries the panic's text.
    #[test]
    fn test_closed_channel_is_an_error() {
        let (tx, rx) = mpsc::sync_channel::<Msg>(4);
        let worker = thread::spawn(move || {
            let _ = tx.send(read(1));
            panic!("boom");
        });
        let mut r = reader(rx, worker);
        assert!(r.next_sequence().is_ok_and(|i| i.is_some()));
        let e = r.next_sequence().unwrap_err();
        assert_eq!(e.to_string(), "x.cram: decoding the CRAM failed: boom");
    }
}
