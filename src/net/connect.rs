//! Opening a TCP connection, with one typed outcome for every engine that
//! opens one (probe, mail, talk, exercise's connect checks): the name did
//! not resolve, the port refused, nothing answered in time, the host or
//! network is unreachable (or a filter prohibits it), or another OS error.
//! Each engine maps the outcome to its own states and words; the
//! [`Display`](std::fmt::Display) texts are the one-line reasons `talk`
//! and `mail` show.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::secs_text;

/// Why the OS says a destination cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// EHOSTUNREACH: no route to the host, or no ARP answer.
    Host,
    /// ENETUNREACH.
    Net,
    /// EACCES or EPERM: a local filter refused the connection.
    AdminProhibited,
}

/// A connection that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name did not resolve in time, or at all, or has no address.
    #[error("{0}")]
    Resolve(String),
    /// The port answered with a reset.
    #[error("connection refused")]
    Refused { addr: SocketAddr },
    /// Nothing answered within the connect timeout.
    #[error("connect timed out after {}", secs_text(*timeout))]
    TimedOut { addr: SocketAddr, timeout: Duration },
    #[error("{}", unreachable_text(*why, err))]
    Unreachable {
        addr: SocketAddr,
        why: Unreachable,
        err: std::io::Error,
    },
    #[error("{err}")]
    Other {
        addr: SocketAddr,
        err: std::io::Error,
    },
}

fn unreachable_text(why: Unreachable, err: &std::io::Error) -> String {
    match why {
        Unreachable::Host => "host unreachable".into(),
        Unreachable::Net => "network unreachable".into(),
        Unreachable::AdminProhibited => err.to_string(),
    }
}

impl ConnectError {
    /// The address that failed (none when the name did not resolve).
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            ConnectError::Resolve(_) => None,
            ConnectError::Refused { addr }
            | ConnectError::TimedOut { addr, .. }
            | ConnectError::Unreachable { addr, .. }
            | ConnectError::Other { addr, .. } => Some(*addr),
        }
    }

    /// The text with the OS's own words for an unreachable destination
    /// ("No route to host (os error 113)"), as `probe` and `mail` report it.
    pub fn os_text(&self) -> String {
        match self {
            ConnectError::Unreachable { err, .. } | ConnectError::Other { err, .. } => {
                err.to_string()
            }
            other => other.to_string(),
        }
    }
}

/// The addresses of `host` (a name, an IP literal, or `[v6]`), resolution
/// bounded by `timeout`.
pub async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ConnectError> {
    use crate::target::resolve::{LookupError, lookup};
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    lookup(bare, port, Some(timeout)).await.map_err(|e| {
        ConnectError::Resolve(match e {
            LookupError::TimedOut(_) => format!("resolving {host} timed out"),
            LookupError::NoAddress => format!("{host} has no address"),
            other => format!("cannot resolve {host}: {other}"),
        })
    })
}

/// Connects to the first address of `host:port` that answers, each
/// attempt (and the resolution) bounded by `timeout`; the error is the
/// last address's.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    for addr in resolve(host, port, timeout).await? {
        match connect_addr(addr, timeout).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::Resolve(format!("{host} has no address"))))
}

/// Connects to `addr` within `timeout`, with Nagle off (every engine sends
/// a command and waits for its reply).
pub async fn connect_addr(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(_) => Err(ConnectError::TimedOut { addr, timeout }),
        Ok(Err(err)) => {
            use nix::errno::Errno;
            let why = match err.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ECONNREFUSED) => return Err(ConnectError::Refused { addr }),
                Some(Errno::EHOSTUNREACH) => Unreachable::Host,
                Some(Errno::ENETUNREACH) => Unreachable::Net,
                Some(Errno::EACCES | Errno::EPERM) => Unreachable::AdminProhibited,
                _ => return Err(ConnectError::Other { addr, err }),
            };
            Err(ConnectError::Unreachable { addr, why, err })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_refused_and_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = connect("127.0.0.1", addr.port(), Duration::from_secs(2))
            .await
            .expect_err("closed");
        assert!(matches!(err, ConnectError::Refused { .. }), "{err:?}");
        assert_eq!(err.to_string(), "connection refused");
        assert_eq!(err.addr(), Some(addr));
    }
}
