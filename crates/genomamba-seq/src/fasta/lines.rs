//! Line-level FASTA body scanning shared by the streaming and the indexed reader.

use std::io::{self, BufRead};

/// Where the scanner stands inside a FASTA body.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LineState {
    /// The next byte starts a line (so a `>` there begins the next record).
    pub at_line_start: bool,
}

/// Moves at most `max` base bytes of the current record from `inner` into `sink` (or drops them when `sink` is
/// `None`), skipping `\n` and `\r`. Returns the count; 0 means the record ended (next byte is a line-initial `>`,
/// or EOF). Bytes are not validated here: the tokenizer does that.
pub(crate) fn read_body(
    inner: &mut dyn BufRead,
    state: &mut LineState,
    mut sink: Option<&mut Vec<u8>>,
    max: usize,
) -> io::Result<usize> {
    let mut n = 0;
    while n < max {
        let src = inner.fill_buf()?;
        let Some(&first) = src.first() else {
            break;
        };
        if state.at_line_start && first == b'>' {
            break;
        }
        match first {
            b'\n' => {
                inner.consume(1);
                state.at_line_start = true;
                continue;
            }
            b'\r' => {
                inner.consume(1);
                continue;
            }
            _ => {}
        }
        let line_end = memchr::memchr2(b'\n', b'\r', src).unwrap_or(src.len());
        let take = line_end.min(max - n);
        if let Some(buf) = sink.as_deref_mut() {
            buf.extend_from_slice(&src[..take]);
        }
        inner.consume(take);
        state.at_line_start = false;
        n += take;
    }
    Ok(n)
}

/// Skips blank lines; returns the next byte without consuming it (`None` at EOF).
pub(crate) fn peek_after_blank_lines(
    inner: &mut dyn BufRead,
    state: &mut LineState,
) -> io::Result<Option<u8>> {
    loop {
        let src = inner.fill_buf()?;
        match src.first() {
            None => return Ok(None),
            Some(b'\n') => {
                inner.consume(1);
                state.at_line_start = true;
            }
            Some(b'\r') => inner.consume(1),
            Some(&b) => return Ok(Some(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_read_body_strips_crlf_and_stops_at_header() -> io::Result<()> {
        // A tiny BufReader capacity forces lines to straddle buffer refills.
        let data: &[u8] = b"ACG\r\nTT\r\n\r\nGa\n>next\nCC\n";
        let mut r = io::BufReader::with_capacity(3, data);
        let mut st = LineState {
            at_line_start: true,
        };
        let mut buf = Vec::new();
        assert_eq!(read_body(&mut r, &mut st, Some(&mut buf), 4)?, 4);
        assert_eq!(read_body(&mut r, &mut st, Some(&mut buf), 100)?, 3);
        assert_eq!(buf, b"ACGTTGa");
        assert_eq!(read_body(&mut r, &mut st, Some(&mut buf), 100)?, 0);
        assert_eq!(peek_after_blank_lines(&mut r, &mut st)?, Some(b'>'));
        Ok(())
    }

    #[test]
    fn test_gt_inside_a_line_is_a_base_byte() -> io::Result<()> {
        let mut r: &[u8] = b"AC>G\n";
        let mut st = LineState {
            at_line_start: true,
        };
        let mut buf = Vec::new();
        assert_eq!(read_body(&mut r, &mut st, Some(&mut buf), 10)?, 4);
        assert_eq!(buf, b"AC>G", "left for the tokenizer to reject");
        Ok(())
    }
}
