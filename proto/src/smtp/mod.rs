//! SMTP (RFC 5321) without I/O: what an EHLO reply offers, the commands a client sends, and
//! the DATA transparency rule (dot-stuffing), for `sockeye probe`, `sockeye mail` and the
//! test servers.
//!
//! Replies themselves are decoded by [`crate::reply`]. Every command encoder that takes an
//! argument refuses CR, LF and NUL in it: a recipient like `a@b\r\nRCPT TO:<c@d>` must be an
//! error, not a second command. SMTP AUTH's base64 (RFC 4648 with padding) is written out here
//! so that the crate keeps no dependencies. The whole client dialogue (greeting to QUIT) is
//! [`Client`], in `client.rs`.

use std::fmt;
use std::net::IpAddr;

use crate::line::{self, DotError};
use crate::reply::Reply;

mod client;
pub use client::{
    Action, AuthMechanism, Client, ClientOptions, Credentials, Envelope, Failure, Outcome,
    QuitAfter, Stage, TlsMode,
};

/// Longest DATA body [`dot_unstuff`] accepts, terminator included: 10 MiB, Postfix's default
/// `message_size_limit`.
pub const MAX_DATA_BYTES: usize = 10 * 1024 * 1024;

/// What a server offers in its EHLO reply (RFC 5321 4.1.1.1, each extension's RFC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eightbitmime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// SIZE (RFC 1870): `Some(0)` when offered without a fixed limit.
    pub size: Option<u64>,
    /// AUTH mechanisms (RFC 4954), uppercase, each once, from `AUTH` and the old `AUTH=` form.
    pub auth: Vec<String>,
    /// Every other extension line as the server sent it (trimmed), e.g. `ENHANCEDSTATUSCODES`.
    pub other: Vec<String>,
}

impl Capabilities {
    /// Reads an EHLO reply: the first line is the server's domain and greeting, each further
    /// line an extension keyword (case-insensitive) with its parameters.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        for text in reply.lines.iter().skip(1) {
            let text = text.trim();
            let mut words = text.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            // `AUTH=LOGIN PLAIN`: the form some servers still send for old Outlook clients.
            if let Some(first) = keyword.strip_prefix("AUTH=") {
                caps.add_auth(std::iter::once(first).chain(words));
                continue;
            }
            match keyword.as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "AUTH" => caps.add_auth(words),
                "SIZE" => match words.next().map(str::parse::<u64>) {
                    None => caps.size = Some(0),
                    Some(Ok(n)) => caps.size = Some(n),
                    Some(Err(_)) => caps.other.push(text.to_owned()),
                },
                _ => caps.other.push(text.to_owned()),
            }
        }
        caps
    }

    fn add_auth<'a>(&mut self, mechanisms: impl Iterator<Item = &'a str>) {
        for m in mechanisms {
            let m = m.to_ascii_uppercase();
            if !m.is_empty() && !self.auth.contains(&m) {
                self.auth.push(m);
            }
        }
    }
}

/// Why a command could not be written, or a DATA block or base64 text not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpError {
    /// `what` holds a CR, LF or NUL (`byte`), which would end the command early.
    Injection { what: &'static str, byte: u8 },
    /// `what` is not acceptable for another reason (empty domain, `<` in an address...).
    BadArgument {
        what: &'static str,
        reason: &'static str,
    },
    /// A DATA block went past [`MAX_DATA_BYTES`] without its `.` line.
    DataTooLong,
    /// Text that should be base64 (a 334 challenge) is not.
    BadBase64,
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::Injection { what, byte } => write!(
                f,
                "{what} contains the byte {:?}, which would end the SMTP command",
                char::from(*byte)
            ),
            SmtpError::BadArgument { what, reason } => write!(f, "bad {what}: {reason}"),
            SmtpError::DataTooLong => write!(
                f,
                "message data longer than {MAX_DATA_BYTES} bytes without its final \".\" line"
            ),
            SmtpError::BadBase64 => write!(f, "not valid base64"),
        }
    }
}

impl std::error::Error for SmtpError {}

fn check(what: &'static str, arg: &str) -> Result<(), SmtpError> {
    match line::forbidden_byte(arg) {
        Some(byte) => Err(SmtpError::Injection { what, byte }),
        None => Ok(()),
    }
}

fn check_word(what: &'static str, arg: &str) -> Result<(), SmtpError> {
    check(what, arg)?;
    if arg.is_empty() {
        return Err(SmtpError::BadArgument {
            what,
            reason: "empty",
        });
    }
    if arg.contains([' ', '\t']) {
        return Err(SmtpError::BadArgument {
            what,
            reason: "contains a space",
        });
    }
    Ok(())
}

/// An address goes between `<` and `>`; one of those inside it would let the rest be read as
/// parameters.
fn check_address(what: &'static str, addr: &str) -> Result<(), SmtpError> {
    check(what, addr)?;
    if addr.contains(['<', '>']) {
        return Err(SmtpError::BadArgument {
            what,
            reason: "contains '<' or '>'",
        });
    }
    Ok(())
}

fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An address literal for EHLO/HELO (RFC 5321 4.1.3): `[198.18.0.1]`, `[IPv6:fd00:5ec::1]`.
pub fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// `EHLO [198.18.0.1]` or `EHLO [IPv6:fd00:5ec::1]`: what a client without a name of its
/// own sends, with the local address of its socket.
pub fn ehlo_literal(ip: IpAddr) -> Vec<u8> {
    command(&["EHLO ", &address_literal(ip)])
}

/// `EHLO domain`.
pub fn ehlo(domain: &str) -> Result<Vec<u8>, SmtpError> {
    check_word("EHLO domain", domain)?;
    Ok(command(&["EHLO ", domain]))
}

/// `HELO domain`, the fallback when a server answers EHLO with 5xx.
pub fn helo(domain: &str) -> Result<Vec<u8>, SmtpError> {
    check_word("HELO domain", domain)?;
    Ok(command(&["HELO ", domain]))
}

/// `STARTTLS` (RFC 3207).
pub fn starttls() -> Vec<u8> {
    command(&["STARTTLS"])
}

/// `MAIL FROM:<addr>` followed by ESMTP parameters such as `SIZE=1234` or `SMTPUTF8`. An
/// empty `addr` is the null reverse path `<>` (bounces).
pub fn mail_from(addr: &str, params: &[&str]) -> Result<Vec<u8>, SmtpError> {
    check_address("sender address", addr)?;
    let mut parts = vec!["MAIL FROM:<", addr, ">"];
    for p in params {
        check_word("MAIL parameter", p)?;
        parts.push(" ");
        parts.push(p);
    }
    Ok(command(&parts))
}

/// `RCPT TO:<addr>`.
pub fn rcpt_to(addr: &str) -> Result<Vec<u8>, SmtpError> {
    check_address("recipient address", addr)?;
    if addr.is_empty() {
        return Err(SmtpError::BadArgument {
            what: "recipient address",
            reason: "empty",
        });
    }
    Ok(command(&["RCPT TO:<", addr, ">"]))
}

/// `DATA`.
pub fn data() -> Vec<u8> {
    command(&["DATA"])
}

/// `RSET`.
pub fn rset() -> Vec<u8> {
    command(&["RSET"])
}

/// `QUIT`.
pub fn quit() -> Vec<u8> {
    command(&["QUIT"])
}

/// `AUTH PLAIN` with its initial response, base64 of `\0user\0pass` (RFC 4616, RFC 4954).
pub fn auth_plain(user: &str, pass: &str) -> Result<Vec<u8>, SmtpError> {
    check("user name", user)?;
    check("password", pass)?;
    let mut raw = Vec::with_capacity(user.len() + pass.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(pass.as_bytes());
    Ok(command(&["AUTH PLAIN ", &base64_encode(&raw)]))
}

/// `AUTH LOGIN`: the server then asks for the user name and the password, each in a 334
/// reply, and each is answered with a [`base64_line`].
pub fn auth_login_start() -> Vec<u8> {
    command(&["AUTH LOGIN"])
}

/// A line of base64 (an answer to a 334 challenge): base64 never holds CR or LF, so any
/// bytes are safe.
pub fn base64_line(bytes: &[u8]) -> Vec<u8> {
    command(&[&base64_encode(bytes)])
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding (a 334 challenge such as `VXNlcm5hbWU6`). Surrounding
/// spaces are ignored; anything else that is not base64 is [`SmtpError::BadBase64`].
pub fn base64_decode(text: &str) -> Result<Vec<u8>, SmtpError> {
    let text = text.trim().as_bytes();
    if !text.len().is_multiple_of(4) {
        return Err(SmtpError::BadBase64);
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let chunks = text.len() / 4;
    for (i, chunk) in text.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return Err(SmtpError::BadBase64);
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = BASE64
                .iter()
                .position(|&a| a == c)
                .ok_or(SmtpError::BadBase64)?;
            n = (n << 6) | v as u32;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits beyond the last whole byte must be zero (RFC 4648 3.5: canonical encoding).
        if bytes[3 - pad..].iter().any(|&b| b != 0) {
            return Err(SmtpError::BadBase64);
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// A message body ready to follow `DATA`'s 354 reply (RFC 5321 4.5.2): bare `\n` and bare
/// `\r` become CRLF, a line starting with `.` gets a second one, the last line ends in CRLF,
/// and `.\r\n` ends the data.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            b => {
                if line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The inverse of [`dot_stuff`], for test servers: reads DATA lines up to the `.` line,
/// removes the doubled dots, and returns the body (each line ending in CRLF) and the bytes
/// taken. `Ok(None)`: the `.` line has not arrived yet. Accepts bare `\n` line ends.
pub fn dot_unstuff(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, SmtpError> {
    match line::dot_block(buf, MAX_DATA_BYTES) {
        Ok(Some((lines, used))) => {
            let mut body = Vec::with_capacity(used);
            for l in lines {
                body.extend_from_slice(l);
                body.extend_from_slice(b"\r\n");
            }
            Ok(Some((body, used)))
        }
        Ok(None) => Ok(None),
        Err(DotError::TooLong) => Err(SmtpError::DataTooLong),
    }
}
