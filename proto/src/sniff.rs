//! Which service is this? Guessed from the first bytes a server sends, so that `sockeye
//! probe` reports what answers on a port rather than what the port number usually means.
//!
//! Two moments: [`sniff_banner`] reads what a server volunteers right after the connect
//! (SSH, SMTP, FTP, POP3, IMAP and telnet speak first), and [`sniff_reply`] reads what a
//! server that stayed silent sends back after a harmless `HEAD / HTTP/1.1` (an HTTP
//! response, a TLS alert, an LDAP notice of disconnection...). Both are pure, total
//! functions: any bytes give an answer, [`Sniffed::Unknown`] when nothing fits.

use std::fmt;

/// A service recognised from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniffed {
    Ssh,
    Smtp,
    Ftp,
    Pop3,
    Imap,
    Telnet,
    Http,
    Tls,
    Ldap,
    /// A `220` reply that names neither an SMTP nor an FTP server: both greet this way.
    Numbered220,
    Unknown,
}

impl Sniffed {
    /// The service's usual name: `ssh`, `smtp`, `ftp`, `pop3`, `imap`, `telnet`, `http`,
    /// `tls`, `ldap`, `smtp-or-ftp`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Sniffed::Ssh => "ssh",
            Sniffed::Smtp => "smtp",
            Sniffed::Ftp => "ftp",
            Sniffed::Pop3 => "pop3",
            Sniffed::Imap => "imap",
            Sniffed::Telnet => "telnet",
            Sniffed::Http => "http",
            Sniffed::Tls => "tls",
            Sniffed::Ldap => "ldap",
            Sniffed::Numbered220 => "smtp-or-ftp",
            Sniffed::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Sniffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much of a banner is looked at: the first line of any real greeting fits.
pub const SNIFF_WINDOW: usize = 1024;

/// Words in a 220 greeting that name an SMTP server.
const SMTP_WORDS: &[&str] = &[
    "SMTP",
    "ESMTP",
    "POSTFIX",
    "EXIM",
    "SENDMAIL",
    "OPENSMTPD",
    "QMAIL",
];

/// Words in a 220 greeting that name an FTP server (and any word ending in `FTPD`, which
/// covers vsFTPd, ProFTPD, Pure-FTPd, wu-ftpd).
const FTP_WORDS: &[&str] = &["FTP", "FILEZILLA", "SERV-U", "FTPD"];

/// A TLS record header: content type alert (21) or handshake (22), then major version 3 and
/// a minor version 0 to 4 (SSL 3.0 to TLS 1.3's legacy field).
fn is_tls_record(b: &[u8]) -> bool {
    matches!(b, [0x15 | 0x16, 0x03, minor, ..] if *minor <= 0x04)
}

fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `SSH-2.0-`, `SSH-1.99-`, `SSH-1.5-`: "SSH-", a digit.
fn is_ssh(b: &[u8]) -> bool {
    matches!(b, [b'S', b'S', b'H', b'-', d, ..] if d.is_ascii_digit())
}

/// `HTTP/1.0` or `HTTP/1.1` and the like.
fn is_http(b: &[u8]) -> bool {
    matches!(b, [b'H', b'T', b'T', b'P', b'/', d, ..] if d.is_ascii_digit())
}

/// A 220 greeting (single- or multi-line): SMTP, FTP, or either.
fn sniff_220(b: &[u8]) -> Sniffed {
    let window = &b[..b.len().min(SNIFF_WINDOW)];
    let mut text = String::new();
    for line in String::from_utf8_lossy(window).to_ascii_uppercase().lines() {
        // The reply code and its `-` are not part of the words (`220-FileZilla`).
        let digits = line.bytes().take(3).filter(u8::is_ascii_digit).count();
        let rest = if digits == 3 {
            line.get(4..).unwrap_or("")
        } else {
            line
        };
        text.push_str(rest);
        text.push(' ');
    }
    // Words keep their dots and dashes, so `ftp.lab.test` (a host name) is not `FTP` while
    // `(vsFTPd` and `Pure-FTPd` are still found.
    let words = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty());
    let (mut smtp, mut ftp) = (false, false);
    for w in words {
        smtp |= SMTP_WORDS.contains(&w);
        ftp |= FTP_WORDS.contains(&w) || w.ends_with("FTPD");
    }
    match (smtp, ftp) {
        (true, false) => Sniffed::Smtp,
        (false, true) => Sniffed::Ftp,
        _ => Sniffed::Numbered220,
    }
}

/// The service that sent `first`, the bytes it volunteered before we said anything.
pub fn sniff_banner(first: &[u8]) -> Sniffed {
    let b = first;
    if is_ssh(b) {
        Sniffed::Ssh
    } else if is_tls_record(b) {
        Sniffed::Tls
    } else if b.first() == Some(&0xff) && b.get(1).is_some_and(|&c| c >= 0xf0) {
        // IAC and a command: a telnet server opening its negotiation.
        Sniffed::Telnet
    } else if is_http(b) {
        Sniffed::Http
    } else if starts_with_ci(b, b"+OK") {
        Sniffed::Pop3
    } else if starts_with_ci(b, b"* OK") || starts_with_ci(b, b"* PREAUTH") {
        Sniffed::Imap
    } else if starts_with_ci(b, b"* BYE") {
        // An IMAP server refusing the connection still says who it is.
        Sniffed::Imap
    } else if matches!(b, [b'2', b'2', b'0', b' ' | b'-' | b'\r' | b'\n', ..]) || b == b"220" {
        sniff_220(b)
    } else {
        Sniffed::Unknown
    }
}

/// An LDAPMessage: a SEQUENCE (0x30) with a definite length, then the INTEGER messageID.
fn is_ldap(b: &[u8]) -> bool {
    let rest = match b {
        [0x30, len @ 0..=0x7f, rest @ ..] if *len >= 3 => rest,
        [0x30, n @ 0x81..=0x84, rest @ ..] => match rest.get(usize::from(n & 0x7f)..) {
            Some(rest) => rest,
            None => return false,
        },
        _ => return false,
    };
    matches!(rest, [0x02, 1..=4, ..])
}

/// The service that sent `after_http_probe`, the bytes a server that had stayed silent sent
/// back after our `HEAD / HTTP/1.1` request: an HTTP status line, a TLS alert or handshake
/// record (a TLS server reading our text as a broken ClientHello), an LDAP message (a
/// notice of disconnection), or anything a speaking-first service would have sent.
pub fn sniff_reply(after_http_probe: &[u8]) -> Sniffed {
    let b = after_http_probe;
    if is_http(b) {
        Sniffed::Http
    } else if is_tls_record(b) {
        Sniffed::Tls
    } else if is_ldap(b) {
        Sniffed::Ldap
    } else if starts_with_ci(b, b"-ERR") {
        // A POP3 server that greets late answers our HEAD with an error.
        Sniffed::Pop3
    } else if starts_with_ci(b, b"* BAD") {
        Sniffed::Imap
    } else {
        sniff_banner(b)
    }
}
