//! POP3 (RFC 1939) without I/O: `+OK`/`-ERR` status lines, the dot-terminated multi-line
//! responses of `CAPA` (RFC 2449) and friends, and the few commands a prober or a STLS
//! upgrade (RFC 2595) sends.
//!
//! A status line is decoded only once its newline has arrived, so a prefix is never an error.
//! Multi-line bodies are dot-unstuffed and capped at [`MAX_MULTILINE_BYTES`].

use std::fmt;

use crate::line::{self, DotError, LineError};

/// Longest status line, terminator included (RFC 1939 says 512; real banners stay far
/// below this shared cap).
pub const MAX_LINE: usize = line::MAX_LINE;
/// Longest multi-line response, status line and terminating `.` line included.
pub const MAX_MULTILINE_BYTES: usize = 65536;

/// A status line: `+OK text` or `-ERR text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Status {
    /// `+OK` (true) or `-ERR` (false).
    pub ok: bool,
    /// The text after the indicator and its space (lossy UTF-8), possibly empty.
    pub text: String,
}

impl fmt::Display for Pop3Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.ok { "+OK" } else { "-ERR" };
        if self.text.is_empty() {
            f.write_str(word)
        } else {
            write!(f, "{word} {}", self.text)
        }
    }
}

/// A status line and, when it is `+OK`, the lines that followed it up to the `.` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Multiline {
    /// The status line.
    pub status: Pop3Status,
    /// The body's lines, dot-unstuffed, without terminators (lossy UTF-8). Empty after `-ERR`,
    /// which has no body.
    pub lines: Vec<String>,
}

/// Why bytes are not a POP3 response, or a command could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Error {
    /// A line reached [`MAX_LINE`] bytes without a newline.
    LineTooLong,
    /// A multi-line response went past [`MAX_MULTILINE_BYTES`] without its `.` line.
    ResponseTooLong,
    /// The line is neither `+OK` nor `-ERR` (`excerpt`: its start, escaped).
    BadStatus { excerpt: String },
    /// A command argument holds CR, LF or NUL (`byte`), or is empty (`byte` is `None`).
    BadArgument {
        what: &'static str,
        byte: Option<u8>,
    },
}

impl fmt::Display for Pop3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pop3Error::LineTooLong => write!(f, "POP3 line longer than {MAX_LINE} bytes"),
            Pop3Error::ResponseTooLong => write!(
                f,
                "POP3 multi-line response longer than {MAX_MULTILINE_BYTES} bytes"
            ),
            Pop3Error::BadStatus { excerpt } => {
                write!(f, "not a POP3 status line (+OK or -ERR): \"{excerpt}\"")
            }
            Pop3Error::BadArgument {
                what,
                byte: Some(b),
            } => write!(
                f,
                "{what} contains the byte {:?}, which would end the POP3 command",
                char::from(*b)
            ),
            Pop3Error::BadArgument { what, byte: None } => write!(f, "{what} is empty"),
        }
    }
}

impl std::error::Error for Pop3Error {}

/// Reads the indicator of a complete line: `+OK` or `-ERR` (case-insensitive, as some servers
/// answer `+ok`), then a space or the end of the line.
fn parse_status(line: &[u8]) -> Result<Pop3Status, Pop3Error> {
    let (ok, rest) = if line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"+OK") {
        (true, &line[3..])
    } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"-ERR") {
        (false, &line[4..])
    } else {
        return Err(Pop3Error::BadStatus {
            excerpt: line::excerpt(line),
        });
    };
    let text = match rest {
        [] => &[][..],
        [b' ', text @ ..] => text,
        _ => {
            return Err(Pop3Error::BadStatus {
                excerpt: line::excerpt(line),
            });
        }
    };
    Ok(Pop3Status {
        ok,
        text: String::from_utf8_lossy(text).into_owned(),
    })
}

/// Decodes one status line (`+OK ...` or `-ERR ...`) from the start of `buf`; anything else
/// is [`Pop3Error::BadStatus`]. `Ok(None)`: the line has not ended yet.
pub fn decode_status(buf: &[u8]) -> Result<Option<(Pop3Status, usize)>, Pop3Error> {
    match line::decode_line(buf, MAX_LINE) {
        Ok(Some((line, used))) => Ok(Some((parse_status(line)?, used))),
        Ok(None) => Ok(None),
        Err(LineError::TooLong { .. }) => Err(Pop3Error::LineTooLong),
    }
}

/// Decodes a multi-line response (`CAPA`, `LIST`, `UIDL`...): a status line, then after
/// `+OK` the body up to the line `.`, dot-unstuffed. After `-ERR` there is no body and only
/// the status line is taken.
pub fn decode_multiline(buf: &[u8]) -> Result<Option<(Pop3Multiline, usize)>, Pop3Error> {
    let Some((status, head)) = decode_status(buf)? else {
        return Ok(None);
    };
    if !status.ok {
        let lines = Vec::new();
        return Ok(Some((Pop3Multiline { status, lines }, head)));
    }
    if head >= MAX_MULTILINE_BYTES {
        return Err(Pop3Error::ResponseTooLong);
    }
    match line::dot_block(&buf[head..], MAX_MULTILINE_BYTES - head) {
        Ok(Some((lines, used))) => {
            let lines = lines
                .into_iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            Ok(Some((Pop3Multiline { status, lines }, head + used)))
        }
        Ok(None) => Ok(None),
        Err(DotError::TooLong) => Err(Pop3Error::ResponseTooLong),
    }
}

fn command(verb: &str, what: &'static str, arg: &str) -> Result<Vec<u8>, Pop3Error> {
    if arg.is_empty() {
        return Err(Pop3Error::BadArgument { what, byte: None });
    }
    if let Some(byte) = line::forbidden_byte(arg) {
        return Err(Pop3Error::BadArgument {
            what,
            byte: Some(byte),
        });
    }
    let mut out = Vec::with_capacity(verb.len() + arg.len() + 3);
    out.extend_from_slice(verb.as_bytes());
    out.push(b' ');
    out.extend_from_slice(arg.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn bare(verb: &str) -> Vec<u8> {
    let mut out = verb.as_bytes().to_vec();
    out.extend_from_slice(b"\r\n");
    out
}

/// `STLS` (RFC 2595 4): supported iff the answer is `+OK`.
pub fn stls() -> Vec<u8> {
    bare("STLS")
}

/// `CAPA` (RFC 2449): answered by a multi-line response.
pub fn capa() -> Vec<u8> {
    bare("CAPA")
}

/// `USER name`.
pub fn user(name: &str) -> Result<Vec<u8>, Pop3Error> {
    command("USER", "user name", name)
}

/// `PASS secret`.
pub fn pass(secret: &str) -> Result<Vec<u8>, Pop3Error> {
    command("PASS", "password", secret)
}

/// `QUIT`.
pub fn quit() -> Vec<u8> {
    bare("QUIT")
}

/// Encodes a status line, for test servers and round trips: `+OK text\r\n`, or `+OK\r\n`
/// when the text is empty.
pub fn encode_status(status: &Pop3Status) -> Vec<u8> {
    let mut out = status.to_string().into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// Encodes a multi-line response: the status line, then (after `+OK`) each line with a
/// leading `.` doubled, then `.\r\n`.
pub fn encode_multiline(response: &Pop3Multiline) -> Vec<u8> {
    let mut out = encode_status(&response.status);
    if response.status.ok {
        for l in &response.lines {
            if l.starts_with('.') {
                out.push(b'.');
            }
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
    out
}
