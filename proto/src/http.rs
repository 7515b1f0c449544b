//! HTTP/1.x message heads (RFC 9112) without I/O: the `HEAD` request a prober sends, the
//! response head it reads back (status, reason, headers up to the blank line), and the
//! request head a test server or the netcat's HTTP responder reads.
//!
//! Only heads: bodies are not this module's business. Lines may end in CRLF or a bare LF
//! (RFC 9112 2.2 allows a recipient to accept LF). Obsolete line folding (a header line
//! starting with a space or tab, RFC 9112 5.2) is joined to the previous header with one
//! space. The head is capped at [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`].

use std::fmt;
use std::net::Ipv6Addr;

use crate::line::{self, LineError};

/// Longest head, status line and blank line included (hyper's default is 400 KiB for a
/// server's own clients; a prober reading strangers wants far less).
pub const MAX_HEAD_BYTES: usize = 65536;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 128;
/// The `User-Agent` sockeye sends.
pub const USER_AGENT: &str = "sockeye/0.1";

/// A response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `HTTP/1.1` or `HTTP/1.0`, as sent.
    pub version: String,
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase (possibly empty; lossy UTF-8).
    pub reason: String,
    /// Header fields in order, names as sent, values trimmed (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

/// A request's request line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`... as sent (methods are case-sensitive).
    pub method: String,
    /// The request target: `/path?q`, `*`, or an absolute URI.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`, as sent.
    pub version: String,
    /// Header fields in order, names as sent, values trimmed (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl ResponseHead {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The status line and headers as on the wire, ending with the blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.version, self.status, self.reason);
        encode_headers(&mut out, &self.headers);
        out.into_bytes()
    }
}

impl RequestHead {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The request line and headers as on the wire, ending with the blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        encode_headers(&mut out, &self.headers);
        out.into_bytes()
    }
}

fn encode_headers(out: &mut String, headers: &[(String, String)]) {
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
}

/// Why bytes are not an HTTP/1.x head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The head went past [`MAX_HEAD_BYTES`] without its blank line.
    HeadTooLong,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// The first line is not `HTTP/x.y NNN reason` (or, for a request, `METHOD target
    /// HTTP/x.y`). `excerpt`: its start, escaped.
    BadStartLine { excerpt: String },
    /// A header line is not `name: value` with a token name, or folds with nothing before it.
    BadHeader { excerpt: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLong => write!(f, "HTTP head longer than {MAX_HEAD_BYTES} bytes"),
            HttpError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} HTTP header fields"),
            HttpError::BadStartLine { excerpt } => {
                write!(f, "not an HTTP/1.x start line: \"{excerpt}\"")
            }
            HttpError::BadHeader { excerpt } => write!(f, "bad HTTP header line: \"{excerpt}\""),
        }
    }
}

impl std::error::Error for HttpError {}

/// `tchar` of RFC 9110 5.6.2: what a header name or a method is made of.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `HTTP/d.d`.
fn is_version(s: &[u8]) -> bool {
    matches!(s, [b'H', b'T', b'T', b'P', b'/', a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A start line, parsed.
type Head<T> = (T, Vec<(String, String)>, usize);

/// Splits a head into its start line (parsed by `parse_start` as soon as it is complete, so
/// that a server speaking something else is refused without waiting for a blank line) and
/// header fields; `Ok(None)` until the blank line.
fn split_head<T>(
    buf: &[u8],
    parse_start: fn(&[u8]) -> Result<T, HttpError>,
) -> Result<Option<Head<T>>, HttpError> {
    let mut at = 0;
    let mut start = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let line = match line::decode_line(&buf[at..], MAX_HEAD_BYTES - at) {
            Ok(Some((line, used))) => {
                at += used;
                line
            }
            Ok(None) => return Ok(None),
            Err(LineError::TooLong { .. }) => return Err(HttpError::HeadTooLong),
        };
        if start.is_none() {
            start = Some(parse_start(line)?);
            if at >= MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLong);
            }
            continue;
        }
        if line.is_empty() {
            return Ok(start.map(|s| (s, headers, at)));
        }
        if at >= MAX_HEAD_BYTES {
            // No room is left for the blank line.
            return Err(HttpError::HeadTooLong);
        }
        if matches!(line[0], b' ' | b'\t') {
            // Obsolete folding: the line continues the previous field's value.
            let Some((_, value)) = headers.last_mut() else {
                return Err(HttpError::BadHeader {
                    excerpt: line::excerpt(line),
                });
            };
            let more = lossy(line.trim_ascii());
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(&more);
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':');
        let (name, value) = match colon {
            Some(c) if is_token(&line[..c]) => (&line[..c], &line[c + 1..]),
            _ => {
                return Err(HttpError::BadHeader {
                    excerpt: line::excerpt(line),
                });
            }
        };
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        headers.push((lossy(name), lossy(value.trim_ascii())));
    }
}

fn bad_start(line: &[u8]) -> HttpError {
    HttpError::BadStartLine {
        excerpt: line::excerpt(line),
    }
}

fn parse_status_line(start: &[u8]) -> Result<(String, u16, String), HttpError> {
    // `HTTP/1.1 200 OK`; the reason may be empty, and some servers omit the space before it.
    let (version, rest) = match start.iter().position(|&b| b == b' ') {
        Some(sp) => (&start[..sp], &start[sp + 1..]),
        None => return Err(bad_start(start)),
    };
    let (code, reason) = match rest {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => ([*a, *b, *c], &[][..]),
        [
            a @ b'1'..=b'9',
            b @ b'0'..=b'9',
            c @ b'0'..=b'9',
            b' ',
            reason @ ..,
        ] => ([*a, *b, *c], reason),
        _ => return Err(bad_start(start)),
    };
    if !is_version(version) {
        return Err(bad_start(start));
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Ok((lossy(version), status, lossy(reason)))
}

fn parse_request_line(start: &[u8]) -> Result<(String, String, String), HttpError> {
    let mut parts = start.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_start(start));
    };
    let target_ok = !target.is_empty() && target.iter().all(|&b| b > b' ' && b != 0x7f);
    if !is_token(method) || !target_ok || !is_version(version) {
        return Err(bad_start(start));
    }
    Ok((lossy(method), lossy(target), lossy(version)))
}

/// Decodes a response head from the start of `buf`, up to and including the blank line.
/// `Ok(None)`: the blank line has not arrived yet. The body, if any, is left in `buf`. A
/// first line that is not a status line is an error as soon as it has arrived.
pub fn decode_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let Some(((version, status, reason), headers, used)) = split_head(buf, parse_status_line)?
    else {
        return Ok(None);
    };
    let head = ResponseHead {
        version,
        status,
        reason,
        headers,
    };
    Ok(Some((head, used)))
}

/// Decodes a request head from the start of `buf` (for test servers and the netcat's HTTP
/// responder): `METHOD target HTTP/x.y`, then headers up to the blank line.
pub fn decode_request_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let Some(((method, target, version), headers, used)) = split_head(buf, parse_request_line)?
    else {
        return Ok(None);
    };
    let head = RequestHead {
        method,
        target,
        version,
        headers,
    };
    Ok(Some((head, used)))
}

/// Percent-encodes every byte that may not appear raw in a request line or a header (space,
/// controls, DEL, non-ASCII), so no argument can end the line or inject a header.
fn escape(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b > b' ' && b < 0x7f {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `HEAD path HTTP/1.1` with `Host`, `User-Agent: sockeye/0.1` and `Connection: close`. An
/// IPv6 literal host gets its brackets (`[fd00::1]`); a path not starting with `/` gets one
/// (`*` stays); spaces, controls and non-ASCII bytes in either are percent-encoded, so a
/// host or path can never add a header.
pub fn head_request(host: &str, path: &str) -> Vec<u8> {
    let mut out = String::from("HEAD ");
    if !path.starts_with('/') && path != "*" {
        out.push('/');
    }
    escape(path, &mut out);
    out.push_str(" HTTP/1.1\r\nHost: ");
    if host.parse::<Ipv6Addr>().is_ok() {
        out.push('[');
        escape(host, &mut out);
        out.push(']');
    } else {
        escape(host, &mut out);
    }
    out.push_str("\r\nUser-Agent: ");
    out.push_str(USER_AGENT);
    out.push_str("\r\nConnection: close\r\n\r\n");
    out.into_bytes()
}
