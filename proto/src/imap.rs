//! IMAP (RFC 9051, RFC 3501) without I/O, as far as a prober and a STARTTLS upgrade need it:
//! response lines (untagged `*`, continuation `+`, tagged `a1 OK ...`), the greeting's status,
//! the CAPABILITY list, and the commands `STARTTLS`, `LOGIN` and `LOGOUT`.
//!
//! An untagged line that ends in a literal announcement `{N}` (RFC 9051 4.3) carries N more
//! bytes and then the rest of the line; the decoder follows it so that a literal never reads
//! as a broken line. Everything is capped: a line at [`MAX_LINE`], a response with its
//! literals at [`MAX_RESPONSE_BYTES`].

use std::fmt;

use crate::line::{self, LineError};

/// Longest line, terminator included (literals are counted separately).
pub const MAX_LINE: usize = line::MAX_LINE;
/// Longest response, literals and every line included: a prober reads greetings and
/// CAPABILITY, never message bodies.
pub const MAX_RESPONSE_BYTES: usize = 65536;
/// Longest tag this crate writes or accepts.
pub const MAX_TAG: usize = 64;

/// The status of a tagged response (RFC 9051 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapStatus {
    Ok,
    No,
    Bad,
}

impl ImapStatus {
    /// `OK`, `NO` or `BAD`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImapStatus::Ok => "OK",
            ImapStatus::No => "NO",
            ImapStatus::Bad => "BAD",
        }
    }
}

impl fmt::Display for ImapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One response line from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapLine {
    /// `* text`: untagged status or data, text after `* ` (lossy UTF-8). With literals, the
    /// text holds them raw: `FETCH 1 (BODY[] {5}\r\nhello)`.
    Untagged(String),
    /// `+ text`: the server waits for more from the client.
    Continuation(String),
    /// `tag OK|NO|BAD text`: the end of the command with that tag.
    Tagged {
        tag: String,
        status: ImapStatus,
        text: String,
    },
}

/// How a server greets (RFC 9051 7.1): ready, already authenticated, or going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapGreeting {
    /// `* OK`: not authenticated yet.
    Ok,
    /// `* PREAUTH`: already authenticated (STARTTLS is then no longer possible).
    Preauth,
    /// `* BYE`: the server refuses the connection.
    Bye,
}

impl ImapLine {
    /// The greeting status, if this is an untagged `OK`, `PREAUTH` or `BYE`.
    pub fn greeting(&self) -> Option<ImapGreeting> {
        greeting(self)
    }

    /// The CAPABILITY list this line carries, if any (see [`capabilities`]).
    pub fn capabilities(&self) -> Option<Vec<String>> {
        match self {
            ImapLine::Untagged(text) => capabilities(text),
            ImapLine::Tagged { text, .. } => capabilities(text),
            ImapLine::Continuation(_) => None,
        }
    }
}

/// Why bytes are not an IMAP response line, or a command could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapError {
    /// A line reached [`MAX_LINE`] bytes without a newline.
    LineTooLong,
    /// A response with its literals went past [`MAX_RESPONSE_BYTES`].
    ResponseTooLong,
    /// Not `* ...`, `+ ...` or `tag OK|NO|BAD ...` (`excerpt`: its start, escaped).
    BadLine { excerpt: String },
    /// A command argument cannot be sent: `reason` says why.
    BadArgument {
        what: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImapError::LineTooLong => write!(f, "IMAP line longer than {MAX_LINE} bytes"),
            ImapError::ResponseTooLong => {
                write!(f, "IMAP response longer than {MAX_RESPONSE_BYTES} bytes")
            }
            ImapError::BadLine { excerpt } => write!(f, "not an IMAP response: \"{excerpt}\""),
            ImapError::BadArgument { what, reason } => write!(f, "bad {what}: {reason}"),
        }
    }
}

impl std::error::Error for ImapError {}

/// A tag: printable ASCII without space and the atom-specials (RFC 9051 `tag`), not `+`.
fn valid_tag(tag: &[u8]) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && !b"(){%*\"\\+".contains(&b))
}

/// The literal length announced at the end of a line: `{N}` or `{N+}` (LITERAL+).
fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_status(word: &[u8]) -> Option<ImapStatus> {
    if word.eq_ignore_ascii_case(b"OK") {
        Some(ImapStatus::Ok)
    } else if word.eq_ignore_ascii_case(b"NO") {
        Some(ImapStatus::No)
    } else if word.eq_ignore_ascii_case(b"BAD") {
        Some(ImapStatus::Bad)
    } else {
        None
    }
}

fn bad(line: &[u8]) -> ImapError {
    ImapError::BadLine {
        excerpt: line::excerpt(line),
    }
}

/// Decodes one response line from the start of `buf` (an untagged one with its literals).
/// `Ok(None)`: it has not all arrived yet.
pub fn decode_line(buf: &[u8]) -> Result<Option<(ImapLine, usize)>, ImapError> {
    let (first, mut at) = match line::decode_line(buf, MAX_LINE) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(LineError::TooLong { .. }) => return Err(ImapError::LineTooLong),
    };
    if let Some(text) = first.strip_prefix(b"* ") {
        // Follow literals: `... {N}\r\n` N bytes, then the line goes on.
        let mut raw = text.to_vec();
        let mut tail = first;
        while let Some(n) = literal_len(tail) {
            if at.saturating_add(n) > MAX_RESPONSE_BYTES {
                return Err(ImapError::ResponseTooLong);
            }
            let Some(literal) = buf.get(at..at + n) else {
                return Ok(None);
            };
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(literal);
            at += n;
            let (more, used) = match line::decode_line(&buf[at..], MAX_LINE) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(None),
                Err(LineError::TooLong { .. }) => return Err(ImapError::LineTooLong),
            };
            raw.extend_from_slice(more);
            at += used;
            if at > MAX_RESPONSE_BYTES {
                return Err(ImapError::ResponseTooLong);
            }
            tail = more;
        }
        return Ok(Some((ImapLine::Untagged(lossy(&raw)), at)));
    }
    if first == b"+" {
        return Ok(Some((ImapLine::Continuation(String::new()), at)));
    }
    if let Some(text) = first.strip_prefix(b"+ ") {
        return Ok(Some((ImapLine::Continuation(lossy(text)), at)));
    }
    let mut words = first.splitn(3, |&b| b == b' ');
    let tag = words.next().unwrap_or_default();
    let status = words.next().and_then(parse_status);
    let text = words.next().unwrap_or_default();
    match status {
        Some(status) if valid_tag(tag) => {
            let line = ImapLine::Tagged {
                tag: lossy(tag),
                status,
                text: lossy(text),
            };
            Ok(Some((line, at)))
        }
        _ => Err(bad(first)),
    }
}

/// Strips `word` (ASCII case-insensitive) and what follows it: a space, or nothing.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(' ')
    }
}

/// The status of a greeting line: `* OK`, `* PREAUTH` or `* BYE` (case-insensitive).
pub fn greeting(line: &ImapLine) -> Option<ImapGreeting> {
    let ImapLine::Untagged(text) = line else {
        return None;
    };
    if strip_word(text, "OK").is_some() {
        Some(ImapGreeting::Ok)
    } else if strip_word(text, "PREAUTH").is_some() {
        Some(ImapGreeting::Preauth)
    } else if strip_word(text, "BYE").is_some() {
        Some(ImapGreeting::Bye)
    } else {
        None
    }
}

/// The capabilities in an untagged line's text or a tagged line's text: the response code of
/// `OK [CAPABILITY IMAP4rev1 STARTTLS ...] ready` (greetings, tagged OKs), or the untagged
/// data `CAPABILITY IMAP4rev1 ...`. Names are returned as the server wrote them.
pub fn capabilities(text: &str) -> Option<Vec<String>> {
    let mut t = text.trim_start();
    for status in ["OK", "NO", "BAD", "PREAUTH", "BYE"] {
        if let Some(rest) = strip_word(t, status) {
            t = rest.trim_start();
            break;
        }
    }
    let list = if let Some(code) = t.strip_prefix('[') {
        let inner = strip_word(code, "CAPABILITY")?;
        &inner[..inner.find(']').unwrap_or(inner.len())]
    } else {
        strip_word(t, "CAPABILITY")?
    };
    Some(list.split_ascii_whitespace().map(str::to_owned).collect())
}

fn check_tag(tag: &str) -> Result<(), ImapError> {
    if valid_tag(tag.as_bytes()) {
        Ok(())
    } else {
        Err(ImapError::BadArgument {
            what: "tag",
            reason: "not 1 to 64 printable characters without space, +, *, %, quotes or brackets",
        })
    }
}

fn check_text(what: &'static str, arg: &str) -> Result<(), ImapError> {
    if line::forbidden_byte(arg).is_some() {
        return Err(ImapError::BadArgument {
            what,
            reason: "contains CR, LF or NUL",
        });
    }
    Ok(())
}

/// `tag command\r\n`, e.g. `command("a1", "STARTTLS")` or `command("a2", "CAPABILITY")`.
pub fn command(tag: &str, command: &str) -> Result<Vec<u8>, ImapError> {
    check_tag(tag)?;
    check_text("command", command)?;
    if command.is_empty() {
        return Err(ImapError::BadArgument {
            what: "command",
            reason: "empty",
        });
    }
    Ok(format!("{tag} {command}\r\n").into_bytes())
}

/// An IMAP quoted string: `"` and `\` escaped with `\` (RFC 9051 4.3). CR, LF and NUL cannot
/// be quoted at all.
pub fn quote(what: &'static str, s: &str) -> Result<String, ImapError> {
    check_text(what, s)?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// `tag LOGIN "user" "pass"\r\n` with both quoted.
pub fn login(tag: &str, user: &str, pass: &str) -> Result<Vec<u8>, ImapError> {
    check_tag(tag)?;
    let user = quote("user name", user)?;
    let pass = quote("password", pass)?;
    Ok(format!("{tag} LOGIN {user} {pass}\r\n").into_bytes())
}

/// `tag LOGOUT\r\n`.
pub fn logout(tag: &str) -> Result<Vec<u8>, ImapError> {
    command(tag, "LOGOUT")
}

/// Encodes a response line, for test servers and round trips: `* text`, `+ text`,
/// `tag STATUS text`, each ending in CRLF (`tag STATUS` alone when the text is empty).
pub fn encode_line(line: &ImapLine) -> Vec<u8> {
    let mut s = match line {
        ImapLine::Untagged(text) => format!("* {text}"),
        ImapLine::Continuation(text) => format!("+ {text}"),
        ImapLine::Tagged { tag, status, text } if text.is_empty() => format!("{tag} {status}"),
        ImapLine::Tagged { tag, status, text } => format!("{tag} {status} {text}"),
    };
    s.push_str("\r\n");
    s.into_bytes()
}
