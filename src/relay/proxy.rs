//! `--proxy HOST:PORT --proxy-type http|socks4|socks4a|socks5 [--proxy-auth ...]`:
//! the client side of an HTTP CONNECT (RFC 9110 9.3.6), SOCKS4/4a or SOCKS5
//! (RFC 1928/1929) handshake, after which the stream leads to the target.
//!
//! As ncat: the CONNECT goes first without credentials; a 407 is answered
//! on a new connection with Digest when the proxy offers it, else Basic
//! (`sockeye_proto::proxy_auth`). SOCKS4 sends an IPv4 target as an
//! address and a name for the proxy to resolve (SOCKS4a), with
//! `--proxy-auth` as the user id.
//!
//! Replies are read with limits (an HTTP reply head of at most
//! [`MAX_HTTP_HEAD`] bytes); anything unexpected is one error line.

use std::future::Future;
use std::time::Duration;

use sockeye_proto::proxy_auth::{authorization, best_challenge};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::RelayError;

/// Longest HTTP proxy reply head accepted.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;
/// Longest SOCKS4 user id or SOCKS4a host name sent.
const MAX_SOCKS4_FIELD: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// SOCKS4, and SOCKS4a for a name (ncat's `socks4`).
    Socks4,
    Socks5,
    Http,
}

/// The proxy to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    pub kind: ProxyKind,
    /// `USER:PASS` split at the first colon; for SOCKS4 the whole
    /// `--proxy-auth` text is the user id, in the first.
    pub auth: Option<(String, String)>,
}

/// Opens the way to `host:port` through the proxy: `dial` makes a new
/// connection to the proxy (twice for an HTTP proxy that asks for
/// credentials), every exchange with it bounded by `limit`.
pub(crate) async fn open<S, F, Fut>(
    cfg: &ProxyConfig,
    host: &str,
    port: u16,
    limit: Option<Duration>,
    mut dial: F,
) -> Result<S, RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, RelayError>>,
{
    let fail = |why: String| RelayError::Proxy {
        proxy: crate::target::endpoint::host_port(&cfg.host, cfg.port),
        why,
    };
    let mut s = dial().await?;
    if cfg.kind != ProxyKind::Http {
        bounded(limit, handshake(&mut s, cfg, host, port))
            .await
            .map_err(fail)?;
        return Ok(s);
    }
    let mut reply = bounded(limit, http(&mut s, None, host, port))
        .await
        .map_err(fail)?;
    if let (407, Some((user, pass))) = (reply.code, &cfg.auth) {
        let challenge = best_challenge(reply.challenges.iter().map(String::as_str))
            .map_err(|e| fail(format!("407 challenge: {e}")))?;
        let uri = crate::target::endpoint::host_port(host, port);
        let value = authorization(challenge.as_ref(), user, pass, "CONNECT", &uri, &cnonce())
            .ok_or_else(|| fail("cannot answer the 407's Digest challenge".into()))?;
        // ncat's way: the answer goes on a new connection.
        drop(s);
        s = dial().await?;
        reply = bounded(limit, http(&mut s, Some(&value), host, port))
            .await
            .map_err(fail)?;
    }
    if !(200..300).contains(&reply.code) {
        return Err(fail(format!("refused the CONNECT: {}", reply.status)));
    }
    Ok(s)
}

async fn bounded<T>(
    limit: Option<Duration>,
    f: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match limit {
        Some(d) => tokio::time::timeout(d, f)
            .await
            .unwrap_or_else(|_| Err("handshake timed out".into())),
        None => f.await,
    }
}

/// 16 random bytes in hex: the Digest client nonce.
fn cnonce() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system's generator does not fail on Linux; a zero cnonce would
    // still be a valid (if predictable) answer.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs a SOCKS handshake asking for `host:port`; Err is a one-line reason.
async fn handshake<S>(s: &mut S, cfg: &ProxyConfig, host: &str, port: u16) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match cfg.kind {
        ProxyKind::Socks4 => socks4(s, cfg.auth.as_ref().map(|a| a.0.as_str()), host, port).await,
        ProxyKind::Socks5 => socks5(s, cfg.auth.as_ref(), host, port).await,
        ProxyKind::Http => Err("not a SOCKS proxy".into()),
    }
}

/// SOCKS4 CONNECT: an IPv4 address as is, a name as SOCKS4a (address
/// 0.0.0.1, the name after the user id), as ncat sends them.
async fn socks4<S>(s: &mut S, user: Option<&str>, host: &str, port: u16) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let user = user.unwrap_or("");
    if user.len() > MAX_SOCKS4_FIELD {
        return Err(format!(
            "--proxy-auth user id longer than {MAX_SOCKS4_FIELD} bytes"
        ));
    }
    let mut req = vec![0x04, 0x01];
    req.extend_from_slice(&port.to_be_bytes());
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            req.extend_from_slice(&a.octets());
            None
        }
        Ok(std::net::IpAddr::V6(_)) => {
            return Err("IPv6 addresses are not supported with SOCKS4".into());
        }
        Err(_) if host.len() > MAX_SOCKS4_FIELD => {
            return Err(format!("host name longer than {MAX_SOCKS4_FIELD} bytes"));
        }
        Err(_) => {
            req.extend_from_slice(&[0, 0, 0, 1]);
            Some(host)
        }
    };
    req.extend_from_slice(user.as_bytes());
    req.push(0);
    if let Some(n) = name {
        req.extend_from_slice(n.as_bytes());
        req.push(0);
    }
    s.write_all(&req).await.map_err(io)?;
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).await.map_err(io)?;
    let why = match reply[1] {
        0x5a => return Ok(()),
        0x5b => "request rejected or failed",
        0x5c => "the proxy could not reach our identd",
        0x5d => "identd reported another user id",
        _ => "unknown reply",
    };
    Err(format!("SOCKS4 reply {:#04x}: {why}", reply[1]))
}

fn io(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "closed the connection during the handshake".into()
    } else {
        e.to_string()
    }
}

async fn socks5<S>(
    s: &mut S,
    auth: Option<&(String, String)>,
    host: &str,
    port: u16,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let method = if auth.is_some() { 0x02 } else { 0x00 };
    s.write_all(&[0x05, 0x01, method]).await.map_err(io)?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 0x05 {
        return Err(format!(
            "not a SOCKS5 reply (version byte {:#04x})",
            reply[0]
        ));
    }
    match (reply[1], auth) {
        (0x00, _) => {}
        (0x02, Some((user, pass))) => {
            if user.len() > 255 || pass.len() > 255 {
                return Err("--proxy-auth user and password must be at most 255 bytes".into());
            }
            let mut msg = vec![0x01, user.len() as u8];
            msg.extend_from_slice(user.as_bytes());
            msg.push(pass.len() as u8);
            msg.extend_from_slice(pass.as_bytes());
            s.write_all(&msg).await.map_err(io)?;
            let mut r = [0u8; 2];
            s.read_exact(&mut r).await.map_err(io)?;
            if r[1] != 0x00 {
                return Err("authentication failed".into());
            }
        }
        (0xff, _) => return Err("no acceptable authentication method".into()),
        (m, _) => return Err(format!("unexpected authentication method {m:#04x}")),
    }
    let mut req = vec![0x05, 0x01, 0x00];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            req.push(0x01);
            req.extend_from_slice(&a.octets());
        }
        Ok(std::net::IpAddr::V6(a)) => {
            req.push(0x04);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            if host.len() > 255 {
                return Err("host name longer than 255 bytes".into());
            }
            req.push(0x03);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 0x05 {
        return Err(format!(
            "not a SOCKS5 reply (version byte {:#04x})",
            head[0]
        ));
    }
    if head[1] != 0x00 {
        return Err(socks_reply(head[1]));
    }
    let rest = match head[3] {
        0x01 => 4 + 2,
        0x04 => 16 + 2,
        0x03 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.map_err(io)?;
            usize::from(l[0]) + 2
        }
        t => return Err(format!("unknown address type {t:#04x} in the reply")),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).await.map_err(io)?;
    Ok(())
}

fn socks_reply(code: u8) -> String {
    let why = match code {
        0x01 => "general failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unknown reply",
    };
    format!("SOCKS5 reply {code:#04x}: {why}")
}

/// The parts of a proxy's reply the client acts on.
struct HttpReply {
    code: u16,
    /// The status line, for the error message.
    status: String,
    /// Every `Proxy-Authenticate` value.
    challenges: Vec<String>,
}

/// One CONNECT exchange, with `authorization` as the `Proxy-Authorization`
/// value if given; the reply's head is read and nothing after it.
async fn http<S>(
    s: &mut S,
    authorization: Option<&str>,
    host: &str,
    port: u16,
) -> Result<HttpReply, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = crate::target::endpoint::host_port(host, port);
    let mut req = format!("CONNECT {authority} HTTP/1.0\r\nHost: {authority}\r\n");
    if let Some(v) = authorization {
        req.push_str(&format!("Proxy-Authorization: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(io)?;
    // Read byte by byte: whatever follows the head belongs to the target.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_HTTP_HEAD {
            return Err(format!("reply head longer than {MAX_HTTP_HEAD} bytes"));
        }
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.map_err(io)?;
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let status = lines.next().unwrap_or("").trim().to_string();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let code = match code.parse::<u16>() {
        Ok(c) if version.starts_with("HTTP/") && code.len() == 3 => c,
        _ => return Err(format!("not an HTTP reply: {status:?}")),
    };
    let challenges = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("Proxy-Authenticate"))
        .map(|(_, v)| v.trim().to_string())
        .collect();
    Ok(HttpReply {
        code,
        status,
        challenges,
    })
}
