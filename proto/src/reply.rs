//! Numbered replies of SMTP (RFC 5321 4.2) and FTP (RFC 959 4.2), sans-IO.
//!
//! A reply is one or more lines that start with the same three-digit code: `250-first`,
//! `250-second`, `250 last`. The last line has a space after the code, or nothing at all
//! (`220` alone). FTP also lets a multi-line reply carry lines that do not start with the
//! code (RFC 959 4.2: "text"); they are kept whole as text. Everything is capped: a line at
//! [`MAX_LINE`], a reply at [`MAX_REPLY_BYTES`] and [`MAX_REPLY_LINES`], so a server that
//! floods is reported rather than followed.

use std::fmt;

use crate::line::{self, LineError};

/// Longest reply line, terminator included.
pub const MAX_LINE: usize = line::MAX_LINE;
/// Longest reply, every line and terminator included: 64 KiB is far beyond any EHLO or
/// FTP `HELP` reply a real server sends.
pub const MAX_REPLY_BYTES: usize = 65536;
/// Most lines in one reply.
pub const MAX_REPLY_LINES: usize = 512;

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 100 to 599.
    pub code: u16,
    /// The text of each line after `NNN-` or `NNN ` (lossy UTF-8, no terminator), one entry
    /// per line; an FTP text line without the code is kept whole. Never empty once decoded.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply with the given code and lines (for test servers).
    pub fn new(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The first line as the server sent it, code included: `220 mail.lab.test ESMTP`, or
    /// `220` when the line has no text.
    pub fn first_line(&self) -> String {
        match self.lines.first().map(String::as_str) {
            Some(text) if !text.is_empty() => format!("{} {text}", self.code),
            _ => self.code.to_string(),
        }
    }

    /// Every line's text, joined by `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The first digit: 1 preliminary (FTP), 2 success, 3 intermediate, 4 transient failure,
    /// 5 permanent failure.
    pub fn class(&self) -> u8 {
        (self.code / 100) as u8
    }
}

impl fmt::Display for Reply {
    /// The reply's lines as on the wire, joined by `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        if self.lines.is_empty() {
            return write!(f, "{}", self.code);
        }
        for (i, text) in self.lines.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let sep = if i == last { ' ' } else { '-' };
            write!(f, "{}{sep}{text}", self.code)?;
        }
        Ok(())
    }
}

/// Why bytes are not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line reached [`MAX_LINE`] bytes without a newline.
    LineTooLong { max: usize },
    /// The reply went past [`MAX_REPLY_BYTES`] or [`MAX_REPLY_LINES`] without its last line.
    ReplyTooLong,
    /// A reply must start here but the line does not start with a code (three digits, the
    /// first 1 to 5, then a space, a `-` or the end of the line). `excerpt` is the start of
    /// the line, escaped.
    BadCode { excerpt: String },
    /// A multi-line reply that started with `first` ended with a line coded `last`.
    CodeMismatch { first: u16, last: u16 },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong { max } => write!(f, "reply line longer than {max} bytes"),
            ReplyError::ReplyTooLong => write!(
                f,
                "reply longer than {MAX_REPLY_BYTES} bytes or {MAX_REPLY_LINES} lines"
            ),
            ReplyError::BadCode { excerpt } => {
                write!(f, "not a numbered reply: \"{excerpt}\"")
            }
            ReplyError::CodeMismatch { first, last } => {
                write!(
                    f,
                    "multi-line reply began with {first} but ended with {last}"
                )
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// How a line starts: a code and what follows it.
enum Start {
    /// `NNN-`: more lines follow.
    More(u16),
    /// `NNN ` or `NNN` alone: the last line.
    Last(u16),
    /// Anything else.
    NoCode,
}

fn start(line: &[u8]) -> Start {
    let code = match line {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Start::NoCode,
    };
    match line.get(3) {
        None | Some(b' ') => Start::Last(code),
        Some(b'-') => Start::More(code),
        Some(_) => Start::NoCode,
    }
}

/// The text after `NNN-` or `NNN `.
fn text_after_code(line: &[u8]) -> String {
    String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned()
}

/// Decodes one reply from the start of `buf`: `Ok(None)` until its last line has arrived,
/// then the reply and the bytes it took. Bytes after it (a pipelined next reply) are left.
pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut at = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let line = match line::decode_line(&buf[at..], MAX_LINE) {
            Ok(Some((line, used))) => {
                at += used;
                line
            }
            Ok(None) => {
                if buf.len() > MAX_REPLY_BYTES {
                    return Err(ReplyError::ReplyTooLong);
                }
                return Ok(None);
            }
            Err(LineError::TooLong { max }) => return Err(ReplyError::LineTooLong { max }),
        };
        if at > MAX_REPLY_BYTES {
            return Err(ReplyError::ReplyTooLong);
        }
        match (code, start(line)) {
            (None, Start::Last(c)) => {
                lines.push(text_after_code(line));
                return Ok(Some((Reply { code: c, lines }, at)));
            }
            (None, Start::More(c)) => {
                code = Some(c);
                lines.push(text_after_code(line));
            }
            (None, Start::NoCode) => {
                return Err(ReplyError::BadCode {
                    excerpt: line::excerpt(line),
                });
            }
            (Some(first), Start::Last(last)) if last == first => {
                lines.push(text_after_code(line));
                return Ok(Some((Reply { code: first, lines }, at)));
            }
            (Some(first), Start::Last(last)) => {
                return Err(ReplyError::CodeMismatch { first, last });
            }
            (Some(first), Start::More(c)) if c == first => lines.push(text_after_code(line)),
            // An FTP text line: another code followed by `-`, or no code at all.
            (Some(_), Start::More(_) | Start::NoCode) => {
                lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::ReplyTooLong);
        }
    }
}

/// Encodes a reply: `NNN-text\r\n` for every line but the last, `NNN text\r\n` for the last
/// (`NNN\r\n` for a reply without lines). For test servers and round trips; the text is
/// written as given, so it must hold no `\n`.
pub fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    let code = reply.code.to_string();
    if reply.lines.is_empty() {
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let last = reply.lines.len().saturating_sub(1);
    for (i, text) in reply.lines.iter().enumerate() {
        out.extend_from_slice(code.as_bytes());
        out.push(if i == last { b' ' } else { b'-' });
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}
