//! Proxy authentication on the server side (RFC 7617 Basic, RFC 2617 Digest with MD5), as
//! ncat's proxy does it, without I/O: reading `Proxy-Authorization` credentials, the 407
//! challenge offering both schemes, ncat's stateless nonces (`secs.micros-MD5(secret:time)`,
//! good for [`NONCE_EXPIRY_SECS`]) and the check of either kind of credentials. The caller
//! supplies the secret and the clock, so everything here is a pure function.
//!
//! The client half, as ncat's `--proxy-auth` does it: reading the challenges of a 407's
//! `Proxy-Authenticate` values ([`parse_challenges`], [`best_challenge`]: Digest preferred
//! over Basic, schemes without auth-params and comma-separated lists read as ncat reads
//! them) and writing the `Proxy-Authorization` value that answers one ([`authorization`]).
//!
//! MD5 (RFC 1321) is written out below: Digest needs nothing else from a hash crate, and the
//! proto crate stays dependency-free. It is not used for anything but this legacy scheme.

use std::fmt;

use crate::smtp::base64_encode;

/// The realm offered and required (ncat's).
pub const REALM: &str = "Ncat";
/// Seconds a nonce is honoured; older ones get a 407 with `stale=true` (ncat's 10 s).
pub const NONCE_EXPIRY_SECS: u64 = 10;
/// Longest credentials value read (the head's own cap is higher; credentials are short).
pub const MAX_CREDENTIALS: usize = 4096;

/// One `Proxy-Authorization` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The base64 token as sent.
    Basic(String),
    Digest(Box<DigestCredentials>),
}

/// The parameters of Digest credentials (RFC 2617 3.2.2); absent ones are None.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: Option<String>,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub uri: Option<String>,
    pub response: Option<String>,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

/// Why a credentials value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Longer than [`MAX_CREDENTIALS`].
    TooLong,
    /// Not `Basic token` or `Digest param=value, ...`: an unknown scheme, bytes after the
    /// token, a repeated parameter, an unterminated quoted string.
    Malformed,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::TooLong => write!(f, "credentials longer than {MAX_CREDENTIALS} bytes"),
            AuthError::Malformed => write!(f, "malformed Proxy-Authorization credentials"),
        }
    }
}

impl std::error::Error for AuthError {}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A token at the start of `s` and the rest.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c| !is_tchar(c)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// A quoted string (RFC 9110 5.6.4) at the start of `s`, unescaped, and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => out.push(chars.next()?.1),
            c if c.is_control() && c != '\t' => return None,
            c => out.push(c),
        }
    }
    None
}

/// Reads one credentials value: `Basic <token68>` or `Digest name=value, ...` (values
/// tokens or quoted strings). Scheme and parameter names are case-insensitive; anything
/// after a Basic token, an unknown scheme or a parameter given twice is
/// [`AuthError::Malformed`] (ncat's "broken" and "extra" credentials).
pub fn parse_credentials(value: &str) -> Result<Credentials, AuthError> {
    if value.len() > MAX_CREDENTIALS {
        return Err(AuthError::TooLong);
    }
    let (scheme, rest) = token(value.trim()).ok_or(AuthError::Malformed)?;
    let rest = rest.trim_start_matches([' ', '\t']);
    if scheme.eq_ignore_ascii_case("Basic") {
        let b64 = rest.trim_end_matches([' ', '\t']);
        let ok = !b64.is_empty()
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        return if ok {
            Ok(Credentials::Basic(b64.to_string()))
        } else {
            Err(AuthError::Malformed)
        };
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::Malformed);
    }
    let mut d = DigestCredentials::default();
    let mut rest = rest;
    while !rest.is_empty() {
        let (name, after) = token(rest).ok_or(AuthError::Malformed)?;
        let after = after.trim_start_matches([' ', '\t']);
        let after = after
            .strip_prefix('=')
            .ok_or(AuthError::Malformed)?
            .trim_start_matches([' ', '\t']);
        let (value, after) = if after.starts_with('"') {
            quoted(after).ok_or(AuthError::Malformed)?
        } else {
            let (t, a) = token(after).ok_or(AuthError::Malformed)?;
            (t.to_string(), a)
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "username" => &mut d.username,
            "realm" => &mut d.realm,
            "nonce" => &mut d.nonce,
            "uri" => &mut d.uri,
            "response" => &mut d.response,
            "algorithm" => &mut d.algorithm,
            "qop" => &mut d.qop,
            "nc" => &mut d.nc,
            "cnonce" => &mut d.cnonce,
            "opaque" => &mut d.opaque,
            // Unknown parameters are ignored (RFC 2617 3.2.2).
            _ => &mut None,
        };
        if slot.is_some() {
            return Err(AuthError::Malformed);
        }
        *slot = Some(value);
        let after = after.trim_start_matches([' ', '\t']);
        rest = match after.strip_prefix(',') {
            Some(more) => {
                let more = more.trim_start_matches([' ', '\t']);
                if more.is_empty() {
                    return Err(AuthError::Malformed);
                }
                more
            }
            None if after.is_empty() => after,
            None => return Err(AuthError::Malformed),
        };
    }
    Ok(Credentials::Digest(Box::new(d)))
}

/// The credentials to check among every `Proxy-Authorization` value: Digest preferred over
/// Basic, the first of a kind kept (as ncat). Any malformed value spoils them all.
pub fn best_credentials<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Credentials>, AuthError> {
    let mut best = None;
    for v in values {
        let c = parse_credentials(v)?;
        match (&best, &c) {
            (None, _) | (Some(Credentials::Basic(_)), Credentials::Digest(_)) => best = Some(c),
            _ => {}
        }
    }
    Ok(best)
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A nonce for the time `secs.micros`: `secs.micros-MD5(secret:secs.micros)` in hex, so the
/// server can tell its own nonces, and their age, without keeping them.
pub fn make_nonce(secret: &[u8], secs: u64, micros: u32) -> String {
    let time = format!("{secs}.{micros:06}");
    let mut input = secret.to_vec();
    input.push(b':');
    input.extend_from_slice(time.as_bytes());
    format!("{time}-{}", hex(&md5(&input)))
}

/// The issue time written at the front of a nonce (not checked for being ours).
pub fn nonce_time(nonce: &str) -> Option<(u64, u32)> {
    let (time, _) = nonce.split_once('-')?;
    let (s, us) = time.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(s) || !digits(us) {
        return None;
    }
    Some((s.parse().ok()?, us.parse().ok()?))
}

/// The 407 answer: ncat's, offering Basic and Digest (realm [`REALM`], this `nonce`,
/// `qop="auth"`, and `stale=true` when the client's nonce had only expired), plus
/// `Connection: close`: the server closes after it, and without the field curl (7.88) tries
/// its answer on the closed connection and fails ("Proxy CONNECT aborted"), as it does
/// against ncat.
pub fn challenge_response(nonce: &str, stale: bool) -> String {
    format!(
        "HTTP/1.0 407 Proxy Authentication Required\r\n\
         Proxy-Authenticate: Basic realm=\"{REALM}\"\r\n\
         Proxy-Authenticate: Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\"{}\r\n\
         Connection: close\r\n\r\n",
        if stale { ", stale=true" } else { "" }
    )
}

/// The Digest `response` value (RFC 2617 3.2.2.1, MD5, `qop` absent or `auth`):
/// `KD(H(user:realm:pass), nonce[:nc:cnonce:qop]:H(method:uri))`.
pub fn digest_response(
    user: &str,
    realm: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop_auth: Option<(&str, &str)>,
) -> String {
    let ha1 = hex(&md5(format!("{user}:{realm}:{pass}").as_bytes()));
    let ha2 = hex(&md5(format!("{method}:{uri}").as_bytes()));
    let kd = match qop_auth {
        Some((nc, cnonce)) => format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    hex(&md5(kd.as_bytes()))
}

/// What the server makes of credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// Digest credentials right but for an expired nonce: challenge again with `stale=true`.
    Stale,
}

/// Equal without an early exit, so timing does not tell how much of a secret matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks credentials against `user:pass` for a request with `method`, at time `now`
/// (seconds and microseconds), with the nonce `secret`. Basic: the token must be base64 of
/// `user:pass`, as ncat compares it. Digest: username, realm, nonce, uri and response must be
/// there, the algorithm MD5 (or absent), qop absent or `auth` (then with nc and cnonce),
/// the realm [`REALM`], the nonce one we made, not from the future, and the response right;
/// a right response on a nonce older than [`NONCE_EXPIRY_SECS`] is [`Verdict::Stale`].
pub fn check(
    creds: &Credentials,
    user: &str,
    pass: &str,
    method: &str,
    secret: &[u8],
    now: (u64, u32),
) -> Verdict {
    let d = match creds {
        Credentials::Basic(token) => {
            let want = base64_encode(format!("{user}:{pass}").as_bytes());
            return if same(token.as_bytes(), want.as_bytes()) {
                Verdict::Accepted
            } else {
                Verdict::Refused
            };
        }
        Credentials::Digest(d) => d,
    };
    let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
        (&d.username, &d.realm, &d.nonce, &d.uri, &d.response)
    else {
        return Verdict::Refused;
    };
    if d.algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
    {
        return Verdict::Refused;
    }
    let qop_auth = match (&d.qop, &d.nc, &d.cnonce) {
        (None, _, _) => None,
        (Some(q), Some(nc), Some(cnonce)) if q.eq_ignore_ascii_case("auth") => {
            Some((nc.as_str(), cnonce.as_str()))
        }
        _ => return Verdict::Refused,
    };
    if username != user || realm != REALM {
        return Verdict::Refused;
    }
    let Some(issued) = nonce_time(nonce) else {
        return Verdict::Refused;
    };
    if !same(
        make_nonce(secret, issued.0, issued.1).as_bytes(),
        nonce.as_bytes(),
    ) {
        return Verdict::Refused;
    }
    let want = digest_response(user, REALM, pass, method, uri, nonce, qop_auth);
    if !same(want.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Verdict::Refused;
    }
    if issued > now {
        return Verdict::Refused;
    }
    if now.0 - issued.0 > NONCE_EXPIRY_SECS {
        return Verdict::Stale;
    }
    Verdict::Accepted
}

/// The scheme of a challenge; any other (NTLM, Negotiate, ...) is [`Scheme::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Digest,
    Other,
}

/// One challenge of a `Proxy-Authenticate` value: what answering it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: Scheme,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub opaque: Option<String>,
    /// `algorithm` absent or `MD5`: the only one Digest is answered with.
    pub md5: bool,
    /// `qop` lists `auth`.
    pub qop_auth: bool,
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Reads the challenges of one `Proxy-Authenticate` value (RFC 7235 `1#challenge`), as ncat
/// does: a scheme with no auth-params is allowed (NTLM), the next challenge starts at a token
/// not followed by `=`, and a Digest `nonce` or `opaque` given twice, a trailing comma or an
/// unterminated quoted string is [`AuthError::Malformed`].
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, AuthError> {
    if value.len() > MAX_CREDENTIALS {
        return Err(AuthError::TooLong);
    }
    let mut out = Vec::new();
    let mut rest = skip_ws(value.trim_end_matches([' ', '\t']));
    while !rest.is_empty() {
        let (scheme, after) = token(rest).ok_or(AuthError::Malformed)?;
        let mut c = Challenge {
            scheme: if scheme.eq_ignore_ascii_case("Basic") {
                Scheme::Basic
            } else if scheme.eq_ignore_ascii_case("Digest") {
                Scheme::Digest
            } else {
                Scheme::Other
            },
            realm: None,
            nonce: None,
            opaque: None,
            md5: true,
            qop_auth: false,
        };
        rest = skip_ws(after);
        if let Some(more) = rest.strip_prefix(',') {
            rest = skip_ws(more);
            if rest.is_empty() {
                return Err(AuthError::Malformed);
            }
            out.push(c);
            continue;
        }
        while !rest.is_empty() {
            let (name, after) = token(rest).ok_or(AuthError::Malformed)?;
            let Some(after) = skip_ws(after).strip_prefix('=') else {
                // A token without `=`: the next challenge's scheme.
                break;
            };
            let after = skip_ws(after);
            let (value, after) = if after.starts_with('"') {
                quoted(after).ok_or(AuthError::Malformed)?
            } else {
                let (t, a) = token(after).ok_or(AuthError::Malformed)?;
                (t.to_string(), a)
            };
            let digest = c.scheme == Scheme::Digest;
            match name.to_ascii_lowercase().as_str() {
                "realm" => c.realm = Some(value),
                "nonce" | "opaque" if digest => {
                    let slot = if name.eq_ignore_ascii_case("nonce") {
                        &mut c.nonce
                    } else {
                        &mut c.opaque
                    };
                    if slot.replace(value).is_some() {
                        return Err(AuthError::Malformed);
                    }
                }
                "algorithm" if digest => c.md5 = value.eq_ignore_ascii_case("MD5"),
                "qop" if digest => {
                    c.qop_auth = value
                        .split(',')
                        .any(|q| q.trim_matches([' ', '\t']).eq_ignore_ascii_case("auth"));
                }
                _ => {}
            }
            rest = skip_ws(after);
            if let Some(more) = rest.strip_prefix(',') {
                rest = skip_ws(more);
                if rest.is_empty() {
                    return Err(AuthError::Malformed);
                }
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// The challenge to answer among every `Proxy-Authenticate` value: Digest over Basic over
/// any other, the first of a kind kept (ncat's order). Any malformed value spoils them all.
pub fn best_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Challenge>, AuthError> {
    let rank = |s: Scheme| match s {
        Scheme::Digest => 2,
        Scheme::Basic => 1,
        Scheme::Other => 0,
    };
    let mut best: Option<Challenge> = None;
    for v in values {
        for c in parse_challenges(v)? {
            if best
                .as_ref()
                .is_none_or(|b| rank(c.scheme) > rank(b.scheme))
            {
                best = Some(c);
            }
        }
    }
    Ok(best)
}

/// `"text"` with `"` and `\` escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The `Proxy-Authorization` value answering `challenge` for `method uri`: Basic for a Basic
/// challenge (or none known: a proxy that asked without saying how), Digest with MD5 for a
/// Digest one (`qop=auth` with `nc=00000001` and this `cnonce` when offered, `opaque` echoed),
/// the field order ncat's. None for a Digest challenge that cannot be answered (no realm or
/// nonce, an algorithm other than MD5).
pub fn authorization(
    challenge: Option<&Challenge>,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Option<String> {
    let Some(c) = challenge.filter(|c| c.scheme == Scheme::Digest) else {
        return Some(format!(
            "Basic {}",
            base64_encode(format!("{user}:{pass}").as_bytes())
        ));
    };
    let (Some(realm), Some(nonce), true) = (&c.realm, &c.nonce, c.md5) else {
        return None;
    };
    const NC: &str = "00000001";
    let qop = c.qop_auth.then_some((NC, cnonce));
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri)
    );
    if qop.is_some() {
        v.push_str(&format!(", qop=auth, cnonce={}, nc={NC}", quote(cnonce)));
    }
    let response = digest_response(user, realm, pass, method, uri, nonce, qop);
    v.push_str(&format!(", response={}", quote(&response)));
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque={}", quote(o)));
    }
    Some(v)
}

/// Per-round left-rotation amounts of MD5 (RFC 1321 3.4).
const MD5_SHIFT: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
/// floor(abs(sin(i + 1)) * 2^32), RFC 1321 3.4.
const MD5_K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// MD5 of `data` (RFC 1321).
pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in msg.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, b) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(MD5_K[i])
                .wrapping_add(m[g])
                .rotate_left(MD5_SHIFT[(i / 16) * 4 + i % 4]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_vectors() {
        // RFC 1321 A.5.
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "{input:?}");
        }
    }

    /// RFC 2617 3.5's example (the WWW-Authenticate one; the computation is the same).
    #[test]
    fn rfc2617_example() {
        assert_eq!(
            digest_response(
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                Some(("00000001", "0a4f113b")),
            ),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn credentials() {
        let basic = |s: &str| Ok(Credentials::Basic(s.into()));
        assert_eq!(
            parse_credentials("Basic dXNlcjpwYXNz"),
            basic("dXNlcjpwYXNz")
        );
        assert_eq!(
            parse_credentials("BASIC  dXNlcjpwYXNz \t"),
            basic("dXNlcjpwYXNz")
        );
        assert_eq!(
            parse_credentials("basic dXNlcjpwYXNz"),
            basic("dXNlcjpwYXNz")
        );
        for bad in [
            "",
            "Basic",
            "Basic ",
            "Basic dXNlcjpwYXNz extra",
            "Basic dXNlcjpwYXNz, Basic dXNlcjpwYXNz",
            "French fries",
            "Digest username",
            "Digest username=",
            "Digest username=\"a",
            "Digest username=a,",
            "Digest username=a username=b",
            "Digest username=a, username=b",
            "Digest username=a; realm=b",
        ] {
            assert_eq!(parse_credentials(bad), Err(AuthError::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse_credentials(&format!("Basic {}", "A".repeat(MAX_CREDENTIALS))),
            Err(AuthError::TooLong)
        );
        let Ok(Credentials::Digest(d)) = parse_credentials(
            "digest USERNAME=\"us\\\"er\", realm=Ncat,nonce=\"1.000002-ab\" , uri=\"h:1\", \
             qop=auth, nc=00000001, cnonce=\"c\", response=\"R\", opaque=\"o\", x=\"y\"",
        ) else {
            panic!("not Digest");
        };
        assert_eq!(d.username.as_deref(), Some("us\"er"));
        assert_eq!(d.realm.as_deref(), Some("Ncat"));
        assert_eq!(d.nonce.as_deref(), Some("1.000002-ab"));
        assert_eq!(
            (d.qop.as_deref(), d.nc.as_deref()),
            (Some("auth"), Some("00000001"))
        );
        assert_eq!(
            (d.cnonce.as_deref(), d.response.as_deref()),
            (Some("c"), Some("R"))
        );
        assert_eq!(d.opaque.as_deref(), Some("o"));
        assert_eq!(nonce_time("1.000002-ab"), Some((1, 2)));
        for bad in ["", "1-ab", "x.1-ab", "1.-ab", "1.2"] {
            assert_eq!(nonce_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digest_preferred() {
        let got = best_credentials(["Basic QQ==", "Digest username=a", "Basic Qg=="]);
        assert!(matches!(got, Ok(Some(Credentials::Digest(_)))));
        let got = best_credentials(["Basic QQ==", "Basic Qg=="]);
        assert_eq!(got, Ok(Some(Credentials::Basic("QQ==".into()))));
        assert_eq!(best_credentials([]), Ok(None));
        assert_eq!(
            best_credentials(["Basic QQ==", "nope"]),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn verdicts() {
        let secret = b"0123456789abcdef";
        let now = (1_000_000, 500);
        let nonce = make_nonce(secret, now.0, now.1);
        assert!(nonce.starts_with("1000000.000500-") && nonce.len() == 15 + 32);
        let digest = |user: &str, pass: &str, realm: &str, nonce: &str, qop: bool| {
            let qa = qop.then_some(("00000001", "abcdefg"));
            let r = digest_response(user, realm, pass, "CONNECT", "h:1", nonce, qa);
            let mut d = DigestCredentials {
                username: Some(user.into()),
                realm: Some(realm.into()),
                nonce: Some(nonce.into()),
                uri: Some("h:1".into()),
                response: Some(r),
                ..Default::default()
            };
            if qop {
                d.qop = Some("auth".into());
                d.nc = Some("00000001".into());
                d.cnonce = Some("abcdefg".into());
            }
            Credentials::Digest(Box::new(d))
        };
        let v = |c: &Credentials, at: (u64, u32)| check(c, "user", "pass", "CONNECT", secret, at);
        use Verdict::*;
        assert_eq!(v(&Credentials::Basic("dXNlcjpwYXNz".into()), now), Accepted);
        assert_eq!(
            v(&Credentials::Basic("bm9ib2R5OnBhc3M=".into()), now),
            Refused
        );
        assert_eq!(v(&Credentials::Basic("dXNlcjp3b3Jk".into()), now), Refused);
        assert_eq!(
            v(&digest("user", "pass", REALM, &nonce, true), now),
            Accepted
        );
        assert_eq!(
            v(&digest("user", "pass", REALM, &nonce, false), now),
            Accepted
        );
        assert_eq!(
            v(&digest("xxx", "pass", REALM, &nonce, false), now),
            Refused
        );
        assert_eq!(
            v(&digest("user", "xxx", REALM, &nonce, false), now),
            Refused
        );
        assert_eq!(
            v(&digest("user", "pass", "other", &nonce, false), now),
            Refused
        );
        let forged = make_nonce(b"another secret!!", now.0, now.1);
        assert_eq!(
            v(&digest("user", "pass", REALM, &forged, false), now),
            Refused
        );
        let later = (now.0 + NONCE_EXPIRY_SECS, 0);
        assert_eq!(
            v(&digest("user", "pass", REALM, &nonce, false), later),
            Accepted
        );
        let too_late = (now.0 + NONCE_EXPIRY_SECS + 1, 0);
        assert_eq!(
            v(&digest("user", "pass", REALM, &nonce, false), too_late),
            Stale
        );
        let earlier = (now.0 - 1, 0);
        assert_eq!(
            v(&digest("user", "pass", REALM, &nonce, false), earlier),
            Refused
        );
        // Missing fields (ncat-test.pl: no realm, no uri).
        let Credentials::Digest(mut d) = digest("user", "pass", REALM, &nonce, true) else {
            unreachable!()
        };
        d.realm = None;
        d.uri = None;
        assert_eq!(v(&Credentials::Digest(d.clone()), now), Refused);
        d.realm = Some(REALM.into());
        d.uri = Some("h:1".into());
        assert_eq!(v(&Credentials::Digest(d.clone()), now), Accepted);
        d.nc = None;
        assert_eq!(v(&Credentials::Digest(d.clone()), now), Refused);
        d.nc = Some("00000001".into());
        d.algorithm = Some("SHA-256".into());
        assert_eq!(v(&Credentials::Digest(d), now), Refused);
    }

    #[test]
    fn challenge_is_ncats() {
        assert_eq!(
            challenge_response("1.000002-ab", false),
            "HTTP/1.0 407 Proxy Authentication Required\r\n\
             Proxy-Authenticate: Basic realm=\"Ncat\"\r\n\
             Proxy-Authenticate: Digest realm=\"Ncat\", nonce=\"1.000002-ab\", qop=\"auth\"\r\n\
             Connection: close\r\n\r\n"
        );
        assert!(challenge_response("n", true).contains("qop=\"auth\", stale=true\r\n"));
    }

    /// Every prefix of valid credentials is either valid credentials or refused: never a
    /// panic (prefixes cut quoted strings and escapes anywhere).
    #[test]
    fn every_prefix() {
        let full = "Digest username=\"u\\\\s\", realm=\"Ncat\", nonce=\"1.2-ab\", uri=\"h:1\", \
                    response=\"r\"";
        for cut in 0..=full.len() {
            let _ = parse_credentials(&full[..cut]);
        }
        assert!(matches!(
            parse_credentials(full),
            Ok(Credentials::Digest(_))
        ));
    }

    fn ch(scheme: Scheme, realm: Option<&str>, nonce: Option<&str>) -> Challenge {
        Challenge {
            scheme,
            realm: realm.map(str::to_string),
            nonce: nonce.map(str::to_string),
            opaque: None,
            md5: true,
            qop_auth: false,
        }
    }

    /// ncat-test.pl's 407s and the edges of the grammar, value by value.
    #[test]
    fn challenge_table() {
        use Scheme::*;
        let digest = |qop| Challenge {
            qop_auth: qop,
            ..ch(Digest, Some("realm"), Some("0123456789abcdef"))
        };
        let table: Vec<(&str, Vec<Challenge>)> = vec![
            (
                "Basic realm=\"realm\"",
                vec![ch(Basic, Some("realm"), None)],
            ),
            ("NTLM", vec![ch(Other, None, None)]),
            ("  NTLM  ", vec![ch(Other, None, None)]),
            (
                "Digest realm=\"realm\", nonce=\"0123456789abcdef\", qop=\"auth\"",
                vec![digest(true)],
            ),
            (
                "Digest realm=\"realm\", nonce=\"0123456789abcdef\", qop=\"auth-int, auth\"",
                vec![digest(true)],
            ),
            (
                "Digest realm=\"realm\", nonce=\"0123456789abcdef\", qop=\"auth-int\"",
                vec![digest(false)],
            ),
            (
                "Basic realm=\"realm\", NTLM, Digest realm=\"realm\", nonce=\"0123456789abcdef\", qop=\"auth\"",
                vec![
                    ch(Basic, Some("realm"), None),
                    ch(Other, None, None),
                    digest(true),
                ],
            ),
            (
                "DIGEST REALM=realm,NONCE=0123456789abcdef",
                vec![digest(false)],
            ),
            (
                "Basic realm=\"a\\\"b\" NTLM",
                vec![ch(Basic, Some("a\"b"), None), ch(Other, None, None)],
            ),
            ("", vec![]),
        ];
        for (value, want) in table {
            assert_eq!(parse_challenges(value), Ok(want), "{value:?}");
        }
        let Ok(c) = parse_challenges("Digest realm=r, nonce=n, opaque=\"abcd\", algorithm=SHA-256")
        else {
            panic!("not read");
        };
        assert_eq!((c[0].opaque.as_deref(), c[0].md5), (Some("abcd"), false));
        for bad in [
            "Basic realm=\"a",
            "NTLM,",
            "Basic realm=a,",
            "Basic realm=a,, NTLM",
            "Digest nonce=a, nonce=b",
            "Digest opaque=a, opaque=b",
            "Basic \"x\"",
            ", Basic",
        ] {
            assert_eq!(parse_challenges(bad), Err(AuthError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn digest_challenge_preferred() {
        let both = [
            "Basic realm=\"realm\"",
            "NTLM",
            "Digest realm=\"realm\", nonce=\"n\", qop=\"auth\"",
        ];
        let got = best_challenge(both).unwrap().unwrap();
        assert_eq!(got.scheme, Scheme::Digest);
        let got = best_challenge(["NTLM, Basic realm=\"a\", Basic realm=\"b\""]).unwrap();
        assert_eq!(got, Some(ch(Scheme::Basic, Some("a"), None)));
        assert_eq!(best_challenge([]), Ok(None));
        assert_eq!(
            best_challenge(["Basic realm=a", "Basic realm=\"a"]),
            Err(AuthError::Malformed)
        );
    }

    /// The answers, byte for byte, against ncat-test.pl's checks (RFC 2617 response).
    #[test]
    fn authorization_values() {
        assert_eq!(
            authorization(None, "user", "pass", "CONNECT", "h:1", "c").as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
        let basic = ch(Scheme::Basic, Some("r"), None);
        assert_eq!(
            authorization(Some(&basic), "", "", "CONNECT", "h:1", "c").as_deref(),
            Some("Basic Og==")
        );
        let mut d = ch(
            Scheme::Digest,
            Some("testrealm@host.com"),
            Some("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
        );
        d.qop_auth = true;
        d.opaque = Some("5ccc069c403ebaf9f0171e9517f40e41".into());
        assert_eq!(
            authorization(
                Some(&d),
                "Mufasa",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "0a4f113b"
            )
            .as_deref(),
            Some(
                "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
                 cnonce=\"0a4f113b\", nc=00000001, response=\"6629fae49393a05397450978507c4ef1\", \
                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
            )
        );
        let plain = ch(Scheme::Digest, Some("r\"q"), Some("n"));
        let want = digest_response("u", "r\"q", "p", "CONNECT", "h:1", "n", None);
        assert_eq!(
            authorization(Some(&plain), "u", "p", "CONNECT", "h:1", "c"),
            Some(format!(
                "Digest username=\"u\", realm=\"r\\\"q\", nonce=\"n\", uri=\"h:1\", response=\"{want}\""
            ))
        );
        // Unanswerable Digest challenges.
        for c in [
            ch(Scheme::Digest, None, Some("n")),
            ch(Scheme::Digest, Some("r"), None),
            Challenge {
                md5: false,
                ..ch(Scheme::Digest, Some("r"), Some("n"))
            },
        ] {
            assert_eq!(
                authorization(Some(&c), "u", "p", "CONNECT", "h:1", "c"),
                None
            );
        }
    }

    /// Every prefix of a 407's challenges is read or refused, never a panic; the whole
    /// value, and a reading of it sent back as credentials, round-trips through the server
    /// half (our own 407 answered by our own client is accepted).
    #[test]
    fn every_challenge_prefix() {
        let full = "Basic realm=\"Ncat\", NTLM, Digest realm=\"Nc\\\\at\", nonce=\"1.2-ab\", \
                    qop=\"auth\", opaque=abc";
        for cut in 0..=full.len() {
            let _ = parse_challenges(&full[..cut]);
        }
        assert_eq!(parse_challenges(full).map(|c| c.len()), Ok(3));
        let secret = b"0123456789abcdef";
        let now = (1_000_000, 7);
        let ours = challenge_response(&make_nonce(secret, now.0, now.1), false);
        let values: Vec<&str> = ours
            .lines()
            .filter_map(|l| l.strip_prefix("Proxy-Authenticate: "))
            .collect();
        let c = best_challenge(values).unwrap();
        let value = authorization(c.as_ref(), "user", "pass", "CONNECT", "h:1", "cn").unwrap();
        let creds = parse_credentials(&value).unwrap();
        assert!(matches!(creds, Credentials::Digest(_)));
        assert_eq!(
            check(&creds, "user", "pass", "CONNECT", secret, now),
            Verdict::Accepted
        );
    }
}
