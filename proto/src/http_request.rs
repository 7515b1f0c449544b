//! The request head an HTTP proxy server reads (`sockeye cat -l --proxy-type http`, ncat's
//! proxy), without I/O: the request line with its method and target (CONNECT's
//! `host:port`, or an absolute `http://` URI), the header fields with their line folding
//! and white space normalized, how the body is framed, and the two heads the proxy writes
//! from it: the request towards the origin and the response back to the client, each
//! without the hop-by-hop fields (RFC 9110 7.6.1). The status lines the proxy answers with
//! are ncat's, word for word ([`status_response`]).
//!
//! As in ncat: methods are case-sensitive and only CONNECT, GET, HEAD and POST are served
//! (anything else is 405, as soon as the request line is in); a path-only or host-only
//! target is 400; repeated fields keep their order and are combined (comma-joined) when
//! read as one list; one request per connection, sent on as HTTP/1.0 with
//! `Connection: close`. Unlike ncat, a chunked request body is relayed (re-chunked, over
//! HTTP/1.1), not refused.
//!
//! Caps: the request line [`MAX_REQUEST_LINE`], the head [`MAX_HEAD_BYTES`] and
//! [`MAX_HEADERS`] fields; past any of them the request is 413, ncat's answer.

use std::fmt;

use crate::line::{self, LineError};

/// Longest request line, line end included (ncat: 1 KiB; servers commonly allow 8 KiB,
/// which long query strings need).
pub const MAX_REQUEST_LINE: usize = 8192;
/// Longest head: blank lines before the request line, the request line, every field and the
/// blank line (ncat: 10 KiB of fields).
pub const MAX_HEAD_BYTES: usize = 65536;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 128;
/// The fields that describe one connection, never forwarded (RFC 9110 7.6.1, and
/// RFC 2616 13.5.1's list, which ncat uses), besides the ones `Connection` names.
pub const HOP_BY_HOP: [&str; 9] = [
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
];

/// The methods the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Connect,
    Get,
    Head,
    Post,
}

impl Method {
    fn parse(token: &[u8]) -> Option<Method> {
        match token {
            b"CONNECT" => Some(Method::Connect),
            b"GET" => Some(Method::Get),
            b"HEAD" => Some(Method::Head),
            b"POST" => Some(Method::Post),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Connect => "CONNECT",
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// Where the request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, percent-decoded, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// For GET, HEAD and POST: path, query and fragment as sent (never percent-decoded:
    /// the origin decodes), `/` when the URI had none. Empty for CONNECT.
    pub path: String,
}

impl Target {
    /// `host:port` with brackets around an IPv6 address (the `Host` field and notices).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How the request's body is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A decoded proxy request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub method: Method,
    pub target: Target,
    /// Major and minor version (`HTTP/1.1`: (1, 1)).
    pub version: (u8, u8),
    /// Fields in order, names as sent, values with white space normalized (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

/// Why a request is refused; [`RequestError::status`] is the answer's status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The request line, the head or the field count is past its cap: 413.
    TooLarge,
    /// A method the proxy does not serve: 405.
    MethodNotAllowed { method: String },
    /// A malformed request line, target, field, length or `Connection` list: 400.
    BadRequest { why: String },
    /// A transfer coding other than chunked: 501.
    NotImplemented { why: String },
}

impl RequestError {
    fn bad(why: impl Into<String>) -> RequestError {
        RequestError::BadRequest { why: why.into() }
    }

    /// The status code ncat answers with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge => 413,
            RequestError::MethodNotAllowed { .. } => 405,
            RequestError::BadRequest { .. } => 400,
            RequestError::NotImplemented { .. } => 501,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::TooLarge => write!(
                f,
                "request line over {MAX_REQUEST_LINE} bytes, head over {MAX_HEAD_BYTES} bytes \
                 or more than {MAX_HEADERS} fields"
            ),
            RequestError::MethodNotAllowed { method } => {
                write!(f, "method \"{method}\" not served")
            }
            RequestError::BadRequest { why } => write!(f, "bad request: {why}"),
            RequestError::NotImplemented { why } => write!(f, "not implemented: {why}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// ncat's answer for a status code, status line and blank line (405 with its `Allow`),
/// HTTP/1.0 as all of ncat's proxy answers; an unknown code is ncat's 500.
pub fn status_response(code: u16) -> &'static str {
    match code {
        200 => "HTTP/1.0 200 OK\r\n\r\n",
        400 => "HTTP/1.0 400 Bad Request\r\n\r\n",
        403 => "HTTP/1.0 403 Forbidden\r\n\r\n",
        405 => "HTTP/1.0 405 Method Not Allowed\r\nAllow: CONNECT, GET, HEAD, POST\r\n\r\n",
        413 => "HTTP/1.0 413 Request Entity Too Large\r\n\r\n",
        501 => "HTTP/1.0 501 Not Implemented\r\n\r\n",
        504 => "HTTP/1.0 504 Gateway Timeout\r\n\r\n",
        _ => "HTTP/1.0 500 Internal Server Error\r\n\r\n",
    }
}

/// `tchar` of RFC 9110 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Decodes a proxy request head from the start of `buf`, up to and including its blank line.
/// `Ok(None)`: more bytes are needed. Blank lines before the request line are skipped
/// (RFC 9112 2.2). A request line that is bad, too long or names an unserved method is an
/// error as soon as it is in, before any field arrives. What follows the head (a body, or
/// CONNECT's first tunnelled bytes) is left in `buf`.
pub fn decode(buf: &[u8]) -> Result<Option<(ProxyRequest, usize)>, RequestError> {
    let mut at = 0;
    // Blank lines before the request line.
    let start = loop {
        let room = MAX_REQUEST_LINE.min(MAX_HEAD_BYTES - at);
        match line::decode_line(&buf[at..], room) {
            Ok(Some((l, used))) => {
                at += used;
                if !l.is_empty() {
                    break l;
                }
                if at >= MAX_HEAD_BYTES {
                    return Err(RequestError::TooLarge);
                }
            }
            Ok(None) => return Ok(None),
            Err(LineError::TooLong { .. }) => return Err(RequestError::TooLarge),
        }
    };
    let (method, target, version) = parse_request_line(start)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        if at >= MAX_HEAD_BYTES {
            return Err(RequestError::TooLarge);
        }
        let (l, used) = match line::decode_line(&buf[at..], MAX_HEAD_BYTES - at) {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(LineError::TooLong { .. }) => return Err(RequestError::TooLarge),
        };
        at += used;
        if l.is_empty() {
            break;
        }
        if matches!(l[0], b' ' | b'\t') {
            // Obsolete line folding: more of the previous field's value.
            let Some((_, value)) = headers.last_mut() else {
                return Err(RequestError::bad("a folded line before any field"));
            };
            append_words(value, l)?;
            continue;
        }
        let colon = l.iter().position(|&b| b == b':');
        let Some(c) = colon.filter(|&c| is_token(&l[..c])) else {
            return Err(RequestError::bad(format!(
                "not a header field: \"{}\"",
                line::excerpt(l)
            )));
        };
        if headers.len() == MAX_HEADERS {
            return Err(RequestError::TooLarge);
        }
        let mut value = String::new();
        append_words(&mut value, &l[c + 1..])?;
        headers.push((lossy(&l[..c]), value));
    }
    let target = parse_target(method, target)?;
    let req = ProxyRequest {
        method,
        target,
        version,
        headers,
    };
    Ok(Some((req, at)))
}

/// Appends the words of a field value (or a folded line of it) to `value`, each run of
/// spaces and tabs made one space, as ncat does; control characters are refused.
fn append_words(value: &mut String, bytes: &[u8]) -> Result<(), RequestError> {
    if bytes.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(RequestError::bad("a control character in a field value"));
    }
    for word in bytes
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
    {
        if !value.is_empty() {
            value.push(' ');
        }
        value.push_str(&String::from_utf8_lossy(word));
    }
    Ok(())
}

/// A request line's method, target and version.
type RequestLine<'a> = (Method, &'a [u8], (u8, u8));

fn parse_request_line(l: &[u8]) -> Result<RequestLine<'_>, RequestError> {
    let bad = || RequestError::bad(format!("bad request line \"{}\"", line::excerpt(l)));
    let mut parts = l.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !is_token(method) {
        return Err(bad());
    }
    let version = match version {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            (a - b'0', b - b'0')
        }
        _ => return Err(bad()),
    };
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(bad());
    }
    let method = Method::parse(method).ok_or_else(|| RequestError::MethodNotAllowed {
        method: line::excerpt(method),
    })?;
    Ok((method, target, version))
}

fn parse_target(method: Method, target: &[u8]) -> Result<Target, RequestError> {
    let text = std::str::from_utf8(target).map_err(|_| RequestError::bad("a non-UTF-8 target"))?;
    if method == Method::Connect {
        // authority-form, and the port is required.
        let (host, port) = parse_authority(text)?;
        let port = port.ok_or_else(|| RequestError::bad("CONNECT without a port"))?;
        return Ok(Target {
            host,
            port,
            path: String::new(),
        });
    }
    // absolute-form: scheme ":" "//" authority path-abempty [ "?" query ] [ "#" fragment ].
    let bad = || RequestError::bad(format!("not an absolute http:// URI: \"{text}\""));
    let colon = text.find(':').ok_or_else(bad)?;
    let scheme = &text[..colon];
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || !scheme.eq_ignore_ascii_case("http") {
        return Err(bad());
    }
    let rest = text[colon + 1..].strip_prefix("//").ok_or_else(bad)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, port) = parse_authority(&rest[..end])?;
    let path = match &rest[end..] {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    Ok(Target {
        host,
        port: port.unwrap_or(80),
        path,
    })
}

/// `host[:port]` or `[v6]:port`: the host percent-decoded, the port if there is one (an
/// empty one counts as none, as in ncat). User information (`user@`) is refused.
fn parse_authority(text: &str) -> Result<(String, Option<u16>), RequestError> {
    let bad = || RequestError::bad(format!("bad host:port \"{text}\""));
    if text.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    };
    let host = percent_decode(host).ok_or_else(bad)?;
    if host.is_empty() || host.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    Ok((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The values of every field called `name`, comma-joined (RFC 9110 5.3), or None.
pub fn combined(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .peekable();
    values.peek()?;
    Some(values.collect::<Vec<_>>().join(", "))
}

/// The comma-separated tokens of a list field (`Connection`, `Transfer-Encoding`); empty
/// elements are skipped (RFC 9110 5.6.1), anything that is not a token is an error.
fn token_list(value: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !is_token(item.as_bytes()) {
            return None;
        }
        out.push(item);
    }
    Some(out)
}

/// Removes the hop-by-hop fields ([`HOP_BY_HOP`] and every field `Connection` names, its
/// repeated fields combined). A `Connection` that is not a token list is an error.
pub fn strip_hop_by_hop(headers: &mut Vec<(String, String)>) -> Result<(), RequestError> {
    let named: Vec<String> = match combined(headers, "Connection") {
        Some(v) => token_list(&v)
            .ok_or_else(|| RequestError::bad(format!("bad Connection field \"{v}\"")))?
            .into_iter()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    headers.retain(|(n, _)| {
        !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h))
            && !named.iter().any(|h| n.eq_ignore_ascii_case(h))
    });
    Ok(())
}

impl ProxyRequest {
    /// How the body is delimited: `Transfer-Encoding: chunked` (the only coding served),
    /// else `Content-Length` (repeated values must agree), else none. Both at once is
    /// refused (a request smuggling vector, RFC 9112 6.1), and so is a POST with neither, as
    /// ncat does.
    pub fn body(&self) -> Result<Body, RequestError> {
        let te = combined(&self.headers, "Transfer-Encoding");
        let cl = combined(&self.headers, "Content-Length");
        let body = match (te, cl) {
            (Some(_), Some(_)) => {
                return Err(RequestError::bad(
                    "both Transfer-Encoding and Content-Length",
                ));
            }
            (Some(te), None) => {
                let codings = token_list(&te)
                    .ok_or_else(|| RequestError::bad(format!("bad Transfer-Encoding \"{te}\"")))?;
                match codings.as_slice() {
                    [c] if c.eq_ignore_ascii_case("chunked") => Body::Chunked,
                    _ => {
                        return Err(RequestError::NotImplemented {
                            why: format!("transfer coding \"{te}\""),
                        });
                    }
                }
            }
            (None, Some(cl)) => {
                let mut lens = cl.split(',').map(str::trim);
                let first = lens.next().unwrap_or_default();
                let n = first
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| first.parse::<u64>().ok())
                    .flatten()
                    .filter(|_| lens.all(|l| l == first))
                    .ok_or_else(|| RequestError::bad(format!("bad Content-Length \"{cl}\"")))?;
                Body::Length(n)
            }
            (None, None) if self.method == Method::Post => {
                return Err(RequestError::bad("POST without Content-Length"));
            }
            (None, None) => Body::None,
        };
        Ok(body)
    }

    /// The head sent to the origin for GET, HEAD and POST: the path alone as target, the
    /// fields minus hop-by-hop ones and minus `Host`, then `Host` (`host`, or `host:port` off
    /// port 80) and `Connection: close`. HTTP/1.0 as ncat, or HTTP/1.1 with
    /// `Transfer-Encoding: chunked` when the body is chunked (HTTP/1.0 has no chunks).
    pub fn origin_head(&self) -> Result<Vec<u8>, RequestError> {
        let body = self.body()?;
        let mut headers = self.headers.clone();
        strip_hop_by_hop(&mut headers)?;
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Host"));
        let t = &self.target;
        let host = match (t.host.contains(':'), t.port) {
            (true, 80) => format!("[{}]", t.host),
            (false, 80) => t.host.clone(),
            _ => t.authority(),
        };
        headers.push(("Host".into(), host));
        let version = if body == Body::Chunked {
            headers.push(("Transfer-Encoding".into(), "chunked".into()));
            "HTTP/1.1"
        } else {
            "HTTP/1.0"
        };
        headers.push(("Connection".into(), "close".into()));
        let mut out = format!("{} {} {version}\r\n", self.method.as_str(), t.path);
        push_fields(&mut out, &headers);
        Ok(out.into_bytes())
    }
}

fn push_fields(out: &mut String, headers: &[(String, String)]) {
    for (n, v) in headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
}

/// How an origin's response body is delimited, as the proxy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (a response to HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    /// Chunked: the proxy decodes it and the client reads until the connection closes.
    Chunked,
    /// Until the origin closes.
    UntilClose,
}

/// The response head sent back to the client for the origin's `status`, `reason` and
/// `headers`, and how to read the origin's body: HTTP/1.0 (as ncat), the hop-by-hop
/// fields removed, `Connection: close`. A chunked body is passed on decoded and delimited by
/// the close, so `Content-Length` goes too in that case; an unusable `Content-Length` makes
/// the body run until the close.
pub fn client_response_head(
    request: Method,
    status: u16,
    reason: &str,
    headers: &[(String, String)],
) -> Result<(Vec<u8>, ResponseBody), RequestError> {
    let chunked = combined(headers, "Transfer-Encoding").is_some_and(|te| {
        token_list(&te)
            .and_then(|l| l.last().map(|c| c.eq_ignore_ascii_case("chunked")))
            .unwrap_or(false)
    });
    let length = combined(headers, "Content-Length").and_then(|cl| {
        let mut lens = cl.split(',').map(str::trim);
        let first = lens.next()?;
        lens.all(|l| l == first)
            .then(|| first.parse::<u64>().ok())
            .flatten()
    });
    let body = if request == Method::Head || status < 200 || status == 204 || status == 304 {
        ResponseBody::None
    } else if chunked {
        ResponseBody::Chunked
    } else if let Some(n) = length {
        ResponseBody::Length(n)
    } else {
        ResponseBody::UntilClose
    };
    let mut out_headers = headers.to_vec();
    strip_hop_by_hop(&mut out_headers)?;
    if chunked {
        out_headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"));
    }
    out_headers.push(("Connection".into(), "close".into()));
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!("HTTP/1.0 {status} {reason}\r\n");
    push_fields(&mut out, &out_headers);
    Ok((out.into_bytes(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(wire: &[u8]) -> ProxyRequest {
        match decode(wire) {
            Ok(Some((r, used))) => {
                assert_eq!(used, wire.len(), "{wire:?}");
                r
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
        }
    }

    fn status(wire: &[u8]) -> u16 {
        match decode(wire) {
            Err(e) => e.status(),
            Ok(Some((r, _))) => r
                .body()
                .and_then(|_| r.origin_head())
                .map_or_else(|e| e.status(), |_| 200),
            Ok(None) => 0,
        }
    }

    #[test]
    fn targets() {
        let table: &[(&[u8], Method, &str, u16, &str)] = &[
            (
                b"CONNECT 127.0.0.1:80 HTTP/1.0\r\n\r\n",
                Method::Connect,
                "127.0.0.1",
                80,
                "",
            ),
            (
                b"CONNECT [::1]:8080 HTTP/1.1\r\n\r\n",
                Method::Connect,
                "::1",
                8080,
                "",
            ),
            (
                b"CONNECT ex%41mple.com:443 HTTP/1.1\r\n\r\n",
                Method::Connect,
                "exAmple.com",
                443,
                "",
            ),
            (
                b"GET http://h:8/ HTTP/1.0\r\n\r\n",
                Method::Get,
                "h",
                8,
                "/",
            ),
            (b"GET http://h HTTP/1.0\r\n\r\n", Method::Get, "h", 80, "/"),
            (b"GET http://h: HTTP/1.0\r\n\r\n", Method::Get, "h", 80, "/"),
            (
                b"GET HTTP://h/%41?q=1#f HTTP/1.1\r\n\r\n",
                Method::Get,
                "h",
                80,
                "/%41?q=1#f",
            ),
            (
                b"GET http://h?q HTTP/1.1\r\n\r\n",
                Method::Get,
                "h",
                80,
                "/?q",
            ),
            (
                b"HEAD http://[::1]:9/x HTTP/1.0\r\n\r\n",
                Method::Head,
                "::1",
                9,
                "/x",
            ),
            (
                b"POST http://h/ HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                Method::Post,
                "h",
                80,
                "/",
            ),
            (
                b"\r\n\nGET  http://h/  HTTP/1.0\n\n",
                Method::Get,
                "h",
                80,
                "/",
            ),
        ];
        for (wire, method, host, port, path) in table {
            let r = req(wire);
            assert_eq!(r.method, *method, "{wire:?}");
            assert_eq!(
                r.target,
                Target {
                    host: host.to_string(),
                    port: *port,
                    path: path.to_string()
                },
                "{wire:?}"
            );
        }
    }

    /// ncat's answers (checked against ncat 7.93 and ncat-test.pl).
    #[test]
    fn refusals() {
        let long_line = [
            b"CONNECT ".as_slice(),
            &[b'A'; 24000],
            b":80 HTTP/1.0\r\n\r\n",
        ]
        .concat();
        let mut long_head = b"CONNECT h:1 HTTP/1.0\r\n".to_vec();
        long_head.extend(std::iter::repeat_n(b"Header: Value\r\n", 10000).flatten());
        long_head.extend_from_slice(b"\r\n");
        let mut many = b"CONNECT h:1 HTTP/1.0\r\n".to_vec();
        many.extend(std::iter::repeat_n(b"A: b\r\n", MAX_HEADERS + 1).flatten());
        many.extend_from_slice(b"\r\n");
        let table: &[(&[u8], u16)] = &[
            (b"bad\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1 HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1: HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT [::1] HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT [::1]: HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT h:0 HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT h:65536 HTTP/1.0\r\n\r\n", 400),
            (b"CONNECT u@h:1 HTTP/1.0\r\n\r\n", 400),
            (&long_line, 413),
            (&long_head, 413),
            (&many, 413),
            (b"GET 127.0.0.1 HTTP/1.0\r\n\r\n", 400),
            (b"GET / HTTP/1.0\r\n\r\n", 400),
            (b"GET https://h/ HTTP/1.0\r\n\r\n", 400),
            (b"GET http:h HTTP/1.0\r\n\r\n", 400),
            (b"GET http:// HTTP/1.0\r\n\r\n", 400),
            (b"GET http://h/ HTTP/x\r\n\r\n", 400),
            (b"GET http://h/\r\n\r\n", 400),
            (b"NOTHING http://h/ HTTP/1.0\r\n\r\n", 405),
            (b"get http://h/ HTTP/1.0\r\n\r\n", 405),
            (b"CONNECT h:1 HTTP/1.0\r\nno colon\r\n\r\n", 400),
            (b"CONNECT h:1 HTTP/1.0\r\n folded first\r\n\r\n", 400),
            (b"CONNECT h:1 HTTP/1.0\r\nA: b\x01c\r\n\r\n", 400),
            (b"POST http://h/ HTTP/1.0\r\n\r\n", 400),
            (b"POST http://h/ HTTP/1.0\r\nContent-Length: x\r\n\r\n", 400),
            (b"POST http://h/ HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400),
            (b"POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"GET http://h/ HTTP/1.0\r\nConnection: a b\r\n\r\n", 400),
            (b"GET http://h/ HTTP/1.0\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", 200),
            (b"POST http://h/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", 200),
        ];
        for (wire, want) in table {
            let excerpt = String::from_utf8_lossy(&wire[..wire.len().min(60)]);
            assert_eq!(status(wire), *want, "{excerpt:?}");
        }
        // The method is refused before any field arrives.
        assert_eq!(
            decode(b"NOTHING http://h/ HTTP/1.0\r\n"),
            Err(RequestError::MethodNotAllowed {
                method: "NOTHING".into()
            })
        );
        // An overlong request line is refused before its end arrives.
        assert_eq!(
            decode(&[b'G'; MAX_REQUEST_LINE]),
            Err(RequestError::TooLarge)
        );
    }

    #[test]
    fn fields_are_normalized_and_combined() {
        let r = req(b"CONNECT h:1 HTTP/1.0\r\nProxy-Authorization:\t  Basic  \r\n\t  \n dXNlcjpwYXNz\r\nA: 1\r\na: 2\r\n\r\n");
        assert_eq!(
            r.headers,
            vec![
                ("Proxy-Authorization".into(), "Basic dXNlcjpwYXNz".into()),
                ("A".into(), "1".into()),
                ("a".into(), "2".into()),
            ]
        );
        assert_eq!(combined(&r.headers, "a").as_deref(), Some("1, 2"));
        assert_eq!(combined(&r.headers, "b"), None);
    }

    /// ncat-test.pl's "remove Connection header fields" and "combine multiple headers with
    /// the same name".
    #[test]
    fn origin_head_drops_hop_by_hop() {
        for wire in [
            &b"GET http://127.0.0.1:40000/ HTTP/1.0\r\nKeep-Alive: 300\r\nOne: 1\r\nConnection: keep-alive, two, close\r\nTwo: 2\r\nThree: 3\r\n\r\n"[..],
            b"GET http://127.0.0.1:40000/ HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nConnection: two\r\nOne: 1\r\nConnection: close\r\nTwo: 2\r\nThree: 3\r\n\r\n",
        ] {
            assert_eq!(
                String::from_utf8(req(wire).origin_head().unwrap()).unwrap(),
                "GET / HTTP/1.0\r\nOne: 1\r\nThree: 3\r\nHost: 127.0.0.1:40000\r\nConnection: close\r\n\r\n"
            );
        }
        let r = req(b"POST http://[::1]/a%20b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\nUpgrade: h2c\r\n\r\n");
        assert_eq!(r.body(), Ok(Body::Chunked));
        assert_eq!(
            String::from_utf8(r.origin_head().unwrap()).unwrap(),
            "POST /a%20b HTTP/1.1\r\nHost: [::1]\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let r = req(b"POST http://h/ HTTP/1.0\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(r.body(), Ok(Body::Length(4)));
        assert_eq!(
            req(b"GET http://h/ HTTP/1.0\r\n\r\n").body(),
            Ok(Body::None)
        );
    }

    #[test]
    fn response_heads() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (head, body) = client_response_head(
            Method::Get,
            200,
            "OK",
            &h(&[
                ("Connection", "keep-alive, X-A"),
                ("X-A", "1"),
                ("X-B", "1"),
                ("X-B", "2"),
                ("Content-Length", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.0 200 OK\r\nX-B: 1\r\nX-B: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(body, ResponseBody::Length(5));
        let (head, body) = client_response_head(
            Method::Get,
            200,
            "OK",
            &h(&[("Transfer-Encoding", "chunked"), ("Content-Length", "9")]),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(body, ResponseBody::Chunked);
        let none = client_response_head(Method::Head, 200, "OK", &h(&[("Content-Length", "5")]));
        assert_eq!(none.unwrap().1, ResponseBody::None);
        for status in [100, 204, 304] {
            assert_eq!(
                client_response_head(Method::Get, status, "", &[])
                    .unwrap()
                    .1,
                ResponseBody::None
            );
        }
        assert_eq!(
            client_response_head(Method::Get, 200, "", &[]).unwrap().1,
            ResponseBody::UntilClose
        );
    }

    #[test]
    fn status_texts_are_ncats() {
        assert_eq!(status_response(200), "HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(status_response(504), "HTTP/1.0 504 Gateway Timeout\r\n\r\n");
        assert_eq!(
            status_response(999),
            "HTTP/1.0 500 Internal Server Error\r\n\r\n"
        );
        assert!(status_response(405).contains("\r\nAllow: CONNECT, GET, HEAD, POST\r\n"));
    }

    /// Every prefix of a valid head is "need more bytes", never an error, and the whole
    /// head decodes with the bytes after it left alone.
    #[test]
    fn every_prefix() {
        let wire = b"\r\nPOST http://[::1]:8080/p?q HTTP/1.1\r\nHost: x\r\nA:  b\r\n  c\r\nContent-Length: 3\r\n\r\nabc";
        let head_len = wire.len() - 3;
        for cut in 0..head_len {
            assert_eq!(decode(&wire[..cut]), Ok(None), "{cut}");
        }
        let (r, used) = decode(wire).unwrap().unwrap();
        assert_eq!(used, head_len);
        assert_eq!(r.headers[1], ("A".into(), "b c".into()));
    }
}
