//! The chunked transfer coding of HTTP/1.1 (RFC 9112 7.1) without I/O: a decoder that turns
//! a chunked body into its data, piece by piece as bytes arrive, and the encoder that writes
//! data back as chunks. The HTTP proxy server (`sockeye cat -l --proxy-type http`) decodes a
//! client's chunked request body to re-encode it towards the origin, and decodes an origin's
//! chunked response to hand the client plain bytes; neither side is ever held whole.
//!
//! A chunk-size line (size, extensions and line end) is capped at [`MAX_CHUNK_LINE`] and the
//! trailer section at [`MAX_TRAILER_BYTES`]; a chunk's data is never buffered: the decoder
//! hands out slices of its input. Lines may end in CRLF or a bare LF, as for heads.

use std::fmt;

use crate::line::{self, LineError};

/// Longest chunk-size line, extensions and line end included. RFC 9112 sets no limit; a
/// size needs at most 16 hex digits, and extensions are rare and short.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Longest trailer section (the header lines after the last chunk, blank line included).
pub const MAX_TRAILER_BYTES: usize = 16384;
/// The end of a chunked body: the last (empty) chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What one call to [`ChunkedDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Body data (never empty).
    Data(&'a [u8]),
    /// Framing only: a chunk-size line, the line end after a chunk's data, a trailer line.
    Framing,
    /// The blank line ending the trailer section: the body is complete.
    End,
}

/// Why bytes are not a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`].
    LineTooLong,
    /// A chunk-size line that does not start with hex digits, or a size past `u64`.
    BadSize { excerpt: String },
    /// A chunk's data not followed by a line end.
    MissingLineEnd,
    /// Trailer section longer than [`MAX_TRAILER_BYTES`].
    TrailerTooLong,
    /// Bytes after the end of the body were offered to a finished decoder.
    AfterEnd,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::LineTooLong => {
                write!(f, "chunk-size line longer than {MAX_CHUNK_LINE} bytes")
            }
            ChunkError::BadSize { excerpt } => write!(f, "bad chunk size: \"{excerpt}\""),
            ChunkError::MissingLineEnd => write!(f, "chunk data not followed by CRLF"),
            ChunkError::TrailerTooLong => {
                write!(f, "chunked trailer longer than {MAX_TRAILER_BYTES} bytes")
            }
            ChunkError::AfterEnd => write!(f, "bytes after the end of a chunked body"),
        }
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes remain.
    Data(u64),
    /// After a chunk's data: expecting its line end (`\n`, or `\r` then `\n`).
    DataEnd {
        saw_cr: bool,
    },
    /// After the last chunk: trailer lines until a blank one; `used` bytes so far.
    Trailer {
        used: usize,
    },
    Done,
}

/// A streaming decoder of one chunked body. Feed it the unread bytes; each call consumes a
/// piece of them (see [`ChunkedDecoder::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder { state: State::Size }
    }

    /// True once the last (empty) chunk was read: all the data is out, only the trailer
    /// section (often empty) remains. A peer that closes here sent its whole body.
    pub fn data_complete(&self) -> bool {
        matches!(self.state, State::Trailer { .. } | State::Done)
    }

    /// True once [`Piece::End`] was returned.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes the next piece from the start of `buf`: `Ok(Some((piece, used)))` with
    /// `used > 0` bytes consumed, or `Ok(None)` when `buf` holds no whole piece yet (nothing
    /// is consumed; call again with more bytes). Data comes out as slices of `buf`, as much
    /// of the current chunk as `buf` holds.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Piece<'a>, usize)>, ChunkError> {
        match self.state {
            State::Size => {
                let Some((line, used)) = chunk_line(buf)? else {
                    return Ok(None);
                };
                let size = parse_size(line)?;
                self.state = if size == 0 {
                    State::Trailer { used: 0 }
                } else {
                    State::Data(size)
                };
                Ok(Some((Piece::Framing, used)))
            }
            State::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataEnd { saw_cr: false }
                } else {
                    State::Data(left)
                };
                Ok(Some((Piece::Data(&buf[..n]), n)))
            }
            State::DataEnd { saw_cr } => match (saw_cr, buf.first()) {
                (_, None) => Ok(None),
                (_, Some(b'\n')) => {
                    self.state = State::Size;
                    Ok(Some((Piece::Framing, 1)))
                }
                (false, Some(b'\r')) => {
                    self.state = State::DataEnd { saw_cr: true };
                    Ok(Some((Piece::Framing, 1)))
                }
                _ => Err(ChunkError::MissingLineEnd),
            },
            State::Trailer { used } => {
                let room = MAX_TRAILER_BYTES - used;
                let (line, n) = match line::decode_line(buf, room) {
                    Ok(Some(l)) => l,
                    Ok(None) => return Ok(None),
                    Err(LineError::TooLong { .. }) => return Err(ChunkError::TrailerTooLong),
                };
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(Some((Piece::End, n)));
                }
                if used + n >= MAX_TRAILER_BYTES {
                    // No room is left for the blank line.
                    return Err(ChunkError::TrailerTooLong);
                }
                self.state = State::Trailer { used: used + n };
                Ok(Some((Piece::Framing, n)))
            }
            State::Done if buf.is_empty() => Ok(None),
            State::Done => Err(ChunkError::AfterEnd),
        }
    }
}

fn chunk_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ChunkError> {
    line::decode_line(buf, MAX_CHUNK_LINE).map_err(|_| ChunkError::LineTooLong)
}

/// `1*HEXDIG [ BWS ";" extensions ]`: the size; extensions are skipped (RFC 9112 7.1.1: a
/// recipient ignores the ones it does not understand, and we understand none).
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let bad = || ChunkError::BadSize {
        excerpt: line::excerpt(line),
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad());
    }
    let rest = &line[digits..];
    let rest = rest.trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&b| b < b' ' && b != b'\t') {
        return Err(bad());
    }
    let mut size: u64 = 0;
    for &d in &line[..digits] {
        let v = char::from(d).to_digit(16).ok_or_else(bad)?;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(v)))
            .ok_or_else(bad)?;
    }
    Ok(size)
}

/// Appends `data` as one chunk (nothing for empty data: an empty chunk would end the body).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes all of `buf`; the data, and whether the body ended (and where).
    fn decode_all(buf: &[u8]) -> Result<(Vec<u8>, Option<usize>), ChunkError> {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut at = 0;
        while let Some((piece, used)) = dec.decode(&buf[at..])? {
            assert!(used > 0);
            at += used;
            match piece {
                Piece::Data(d) => {
                    assert!(!d.is_empty());
                    data.extend_from_slice(d);
                }
                Piece::Framing => {}
                Piece::End => return Ok((data, Some(at))),
            }
        }
        Ok((data, None))
    }

    #[test]
    fn bodies() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"4\r\nabc\n\r\n0\r\n\r\n", b"abc\n"),
            (b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"a;ext=1\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"3 ; name=\"v\"\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3\nabc\n0\n\n", b"abc"),
            (
                b"0003\r\nabc\r\n0\r\nExpires: never\r\nX: y\r\n\r\n",
                b"abc",
            ),
        ];
        for (wire, data) in ok {
            let (got, end) = decode_all(wire).unwrap_or_else(|e| panic!("{wire:?}: {e}"));
            assert_eq!(got, *data, "{wire:?}");
            assert_eq!(end, Some(wire.len()), "{wire:?}");
        }
        let bad: &[(&[u8], ChunkError)] = &[
            (
                b"x\r\n",
                ChunkError::BadSize {
                    excerpt: "x".into(),
                },
            ),
            (b"\r\n", ChunkError::BadSize { excerpt: "".into() }),
            (
                b"-1\r\n",
                ChunkError::BadSize {
                    excerpt: "-1".into(),
                },
            ),
            (
                b"3x\r\n",
                ChunkError::BadSize {
                    excerpt: "3x".into(),
                },
            ),
            (
                b"10000000000000000\r\n",
                ChunkError::BadSize {
                    excerpt: "10000000000000000".into(),
                },
            ),
            (b"3\r\nabcX", ChunkError::MissingLineEnd),
            (b"3\r\nabc\rX", ChunkError::MissingLineEnd),
            // ncat-test.pl's "chunked transfer encoding" body: its data has no line end.
            (b"4\r\nabc\n0\r\n", ChunkError::MissingLineEnd),
        ];
        for (wire, err) in bad {
            assert_eq!(decode_all(wire), Err(err.clone()), "{wire:?}");
        }
        // The largest size is fine (its data just never ends here).
        assert_eq!(
            decode_all(b"ffffffffffffffff\r\nab"),
            Ok((b"ab".to_vec(), None))
        );
    }

    #[test]
    fn caps() {
        let long = vec![b'1'; MAX_CHUNK_LINE];
        assert_eq!(decode_all(&long), Err(ChunkError::LineTooLong));
        let mut ext = b"1;".to_vec();
        ext.resize(MAX_CHUNK_LINE - 2, b'x');
        ext.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
        assert_eq!(decode_all(&ext), Ok((b"z".to_vec(), Some(ext.len()))));
        let mut trailer = b"0\r\n".to_vec();
        trailer.extend(std::iter::repeat_n(b"X: y\r\n", MAX_TRAILER_BYTES / 6 + 1).flatten());
        assert_eq!(decode_all(&trailer), Err(ChunkError::TrailerTooLong));
    }

    #[test]
    fn bytes_after_the_end_are_refused() {
        let mut dec = ChunkedDecoder::new();
        assert_eq!(dec.decode(b"0\r\n"), Ok(Some((Piece::Framing, 3))));
        assert!(dec.data_complete() && !dec.is_done());
        assert_eq!(dec.decode(b"\r\nGET"), Ok(Some((Piece::End, 2))));
        assert!(dec.is_done());
        assert_eq!(dec.decode(b""), Ok(None));
        assert_eq!(dec.decode(b"GET"), Err(ChunkError::AfterEnd));
    }

    /// Every prefix of a valid body decodes without error to a prefix of its data, and
    /// the body ends only once it is whole; fed one byte at a time it decodes the same.
    #[test]
    fn every_prefix() {
        let wire = b"5;x=y\r\nhello\r\n1\nX\n0\r\nTrailer: t\r\n\r\n";
        for cut in 0..wire.len() {
            let (data, end) = decode_all(&wire[..cut]).expect("a prefix is not an error");
            assert!(b"helloX".starts_with(&data), "{cut}");
            assert_eq!(end, None, "{cut}");
        }
        assert_eq!(decode_all(wire), Ok((b"helloX".to_vec(), Some(wire.len()))));
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pending = Vec::new();
        for &b in wire {
            pending.push(b);
            while let Some((piece, used)) = dec.decode(&pending).expect("valid") {
                if let Piece::Data(d) = piece {
                    data.extend_from_slice(d);
                }
                pending.drain(..used);
            }
        }
        assert!(dec.is_done() && pending.is_empty());
        assert_eq!(data, b"helloX");
    }

    #[test]
    fn encode_round_trip() {
        let mut out = Vec::new();
        encode_chunk(b"", &mut out);
        assert!(out.is_empty());
        encode_chunk(b"abc", &mut out);
        encode_chunk(&[7u8; 300], &mut out);
        out.extend_from_slice(LAST_CHUNK);
        assert!(out.starts_with(b"3\r\nabc\r\n12c\r\n"));
        let mut want = b"abc".to_vec();
        want.extend_from_slice(&[7u8; 300]);
        assert_eq!(decode_all(&out), Ok((want, Some(out.len()))));
    }
}
