//! Line framing shared by the text protocols (SMTP, FTP, POP3, IMAP, HTTP heads), sans-IO.
//!
//! A line ends in `\r\n`, or in a bare `\n` from sloppy servers (RFC 5321 4.1.1.4 asks for
//! CRLF; services.md asks us to accept LF too). A server that never sends a newline is cut
//! off at a caller-chosen cap instead of being buffered forever. This module also owns the
//! small helpers the text codecs share: the escaped excerpt that error messages quote, the
//! check that keeps CR, LF and NUL out of command arguments, and the dot-terminated block
//! reader used by SMTP DATA and POP3 multi-line responses.

use std::fmt;

/// Default longest line, terminator included: 4 KiB, eight times RFC 5321's 512-octet reply
/// line, so that real servers with long capability lines fit and a flood is still cut.
pub const MAX_LINE: usize = 4096;

/// Longest excerpt of untrusted bytes quoted in an error message.
pub const MAX_EXCERPT: usize = 40;

/// A line that did not end in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// `max` bytes arrived and none of them was a newline.
    TooLong { max: usize },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { max } => write!(f, "line longer than {max} bytes"),
        }
    }
}

impl std::error::Error for LineError {}

/// Decodes one line from the start of `buf`. Returns the line without its `\r\n` (or bare
/// `\n`) and the bytes it took, terminator included. `Ok(None)` means more bytes are needed.
///
/// `max` bounds the whole line, terminator included: once `max` bytes are in `buf` without
/// a newline among them the line is [`LineError::TooLong`]. A bare `\r` inside a line is
/// kept as data.
pub fn decode_line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, LineError> {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = &buf[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((line, nl + 1)))
        }
        None if !buf.is_empty() && buf.len() >= max => Err(LineError::TooLong { max }),
        None => Ok(None),
    }
}

/// Escapes untrusted bytes for an error message, at most [`MAX_EXCERPT`] of them, with `...`
/// when cut: a server's garbage must not put control characters on the user's terminal.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len() > MAX_EXCERPT;
    let mut s = bytes[..bytes.len().min(MAX_EXCERPT)]
        .escape_ascii()
        .to_string();
    if cut {
        s.push_str("...");
    }
    s
}

/// The first byte of `arg` that must never reach a command line (CR, LF, NUL: they would end
/// the command early and let the rest be read as a second, injected command).
pub(crate) fn forbidden_byte(arg: &str) -> Option<u8> {
    arg.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Where a dot-terminated block ended: its lines (dot-unstuffed, terminators removed) and
/// the bytes taken, terminator line included.
pub(crate) type DotBlock<'a> = (Vec<&'a [u8]>, usize);

/// Why a dot-terminated block could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DotError {
    /// The block (terminator included) is longer than the cap.
    TooLong,
}

/// Reads lines up to the line that is a single `.` (RFC 5321 4.5.2, RFC 1939 3), removing the
/// leading dot that the sender doubled. Accepts bare `\n` like [`decode_line`]. `max` bounds
/// the whole block, terminator line included.
pub(crate) fn dot_block(buf: &[u8], max: usize) -> Result<Option<DotBlock<'_>>, DotError> {
    let mut lines = Vec::new();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let room = max - at;
        match decode_line(rest, room) {
            Ok(Some((line, used))) => {
                at += used;
                if line == b"." {
                    return Ok(Some((lines, at)));
                }
                lines.push(line.strip_prefix(b".").unwrap_or(line));
            }
            Ok(None) => return Ok(None),
            Err(LineError::TooLong { .. }) => return Err(DotError::TooLong),
        }
        if at >= max {
            // The cap is spent and the terminator has not come: even an empty `.` line
            // would not fit.
            return Err(DotError::TooLong);
        }
    }
}
