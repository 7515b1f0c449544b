//! `--proxy HOST:PORT --proxy-type socks5|http [--proxy-auth USER:PASS]`:
//! the client side of a SOCKS5 (RFC 1928/1929) or HTTP CONNECT handshake
//! on an open stream, after which the stream leads to the target.
//!
//! Replies are read with limits (an HTTP reply head of at most
//! [`MAX_HTTP_HEAD`] bytes); anything unexpected is one error line.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest HTTP proxy reply head accepted.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Socks5,
    Http,
}

/// The proxy to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    pub kind: ProxyKind,
    /// `USER:PASS`.
    pub auth: Option<(String, String)>,
}

/// Runs the handshake asking for `host:port`; Err is a one-line reason.
pub async fn handshake<S>(s: &mut S, cfg: &ProxyConfig, host: &str, port: u16) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match cfg.kind {
        ProxyKind::Socks5 => socks5(s, cfg.auth.as_ref(), host, port).await,
        ProxyKind::Http => http(s, cfg.auth.as_ref(), host, port).await,
    }
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

/// Standard base64 (RFC 4648) for the Basic credentials.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

async fn http<S>(
    s: &mut S,
    auth: Option<&(String, String)>,
    host: &str,
    port: u16,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = crate::target::endpoint::host_port(host, port);
    let mut req = format!("CONNECT {authority} HTTP/1.0\r\nHost: {authority}\r\n");
    if let Some((u, p)) = auth {
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64(format!("{u}:{p}").as_bytes())
        ));
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
    let status = text.lines().next().unwrap_or("").trim();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("not an HTTP reply: {status:?}"));
    }
    if !code.starts_with('2') {
        return Err(format!("refused the CONNECT: {status}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
