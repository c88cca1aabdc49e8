//! The BGZF end-of-file marker (SAM spec §4.1.2): an empty block that bgzip, samtools and htslib write last. A
//! BGZF file cut exactly at a block boundary still decompresses cleanly, so the marker is the only sign that it
//! is whole: streamed input is checked when it ends ([`EofChecked`]), a file read by region once when it is
//! opened ([`check_file`]).

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use crate::source::{context, invalid_data};

/// The 28 bytes of the BGZF end-of-file marker block.
pub(crate) const MARKER: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// What is wrong with a BGZF input whose last block is not the marker.
pub(crate) const MISSING: &str = "ends without the BGZF end-of-file marker: the file is truncated (or was \
     written by a tool that omits the marker: re-compress it with bgzip)";

/// Passes a compressed BGZF stream through, remembering its last 28 bytes; where the stream ends it fails
/// (`InvalidData`, [`MISSING`]) unless they are the end-of-file marker. The decompressor above it hands the
/// error on after the data of the blocks before it.
pub(crate) struct EofChecked<R> {
    inner: R,
    tail: [u8; 28],
    seen: u64,
}

impl<R> EofChecked<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            tail: [0; 28],
            seen: 0,
        }
    }

    fn remember(&mut self, data: &[u8]) {
        let (n, t) = (data.len(), MARKER.len());
        if n >= t {
            self.tail.copy_from_slice(&data[n - t..]);
        } else {
            self.tail.copy_within(n.., 0);
            self.tail[t - n..].copy_from_slice(data);
        }
        self.seen += n as u64;
    }
}

impl<R: Read> Read for EofChecked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if self.seen < MARKER.len() as u64 || self.tail != MARKER {
                return Err(io::Error::new(io::ErrorKind::InvalidData, MISSING));
            }
        } else {
            self.remember(&buf[..n]);
        }
        Ok(n)
    }
}

/// Checks that the BGZF file at `path` ends with the end-of-file marker (for files read by region, which
/// never reach the end in order); the error names `input`.
pub(crate) fn check_file(path: &Path, input: &str) -> io::Result<()> {
    let mut file = File::open(path).map_err(|e| context(input, "opening", e))?;
    let len = file
        .metadata()
        .map_err(|e| context(input, "reading", e))?
        .len();
    let mut tail = [0u8; 28];
    if len >= tail.len() as u64 {
        file.seek(SeekFrom::End(-(tail.len() as i64)))
            .and_then(|_| file.read_exact(&mut tail))
            .map_err(|e| context(input, "reading its last block", e))?;
        if tail == MARKER {
            return Ok(());
        }
    }
    Err(invalid_data(input, MISSING))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(data: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        // Reads in small pieces so that the marker straddles reads.
        let mut r = EofChecked::new(io::BufReader::with_capacity(chunk, data));
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn test_marker_checked_where_the_stream_ends() -> io::Result<()> {
        let mut whole = b"block data".to_vec();
        whole.extend_from_slice(&MARKER);
        for chunk in [1, 5, 27, 28, 29, 4096] {
            assert_eq!(drain(&whole, chunk)?, whole, "chunk {chunk}");
            let cut = drain(&whole[..whole.len() - 1], chunk).unwrap_err();
            assert_eq!(
                (cut.kind(), cut.to_string()),
                (io::ErrorKind::InvalidData, MISSING.to_string())
            );
            assert!(drain(&whole[..10], chunk).is_err());
        }
        assert!(drain(&MARKER, 3).is_ok());
        assert!(drain(&MARKER[1..], 3).is_err());
        Ok(())
    }
}
