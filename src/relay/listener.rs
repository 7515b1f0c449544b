//! The listening socket of listen mode and everything done at its door:
//! binding (TCP with ncat's address-family rules, a Unix socket, or a UDP
//! socket for `-u`), accepting (the `--allow`/`--deny` rules and the `-m`
//! limit), and the TLS handshake of each accepted client. The one-client
//! and exec servers (`listen.rs`) and the hubs (`broker.rs`) both take
//! their clients from here, so neither needs the other.
//!
//! A [`Listener`] can also be made from a socket the caller bound itself
//! (`From<tokio::net::TcpListener>`, `TryFrom<std::net::TcpListener>`): a
//! test binds 127.0.0.1:0 and hands it to [`super::serve`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket, UnixListener};

use super::stream::NetStream;
use super::{Config, Ctx, Family, Mode, Notice, RelayError, show, tls};

/// Time a client has to finish its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error that is not one connection's own (EMFILE
/// and other shortages), so that the loop does not spin while clients
/// leave and free what it lacks.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a shut-down multi-client server waits for its clients' tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pending connections the kernel keeps for us: a hub may see thousands of
/// clients arrive at once.
const BACKLOG: i32 = 4096;

/// A bound listening socket (TCP or Unix), ready to accept.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    /// What the "listening on" notice names: the address or the path.
    label: String,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        _unlink: Option<UnlinkOnDrop>,
    },
}

/// Removes the Unix socket file we created when the listener goes away.
#[derive(Debug)]
pub(crate) struct UnlinkOnDrop(pub(crate) PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        let label = l
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string());
        Listener {
            socket: Socket::Tcp(l),
            label,
        }
    }
}

impl TryFrom<std::net::TcpListener> for Listener {
    type Error = std::io::Error;

    /// Needs a tokio runtime (the socket is registered with its reactor).
    fn try_from(l: std::net::TcpListener) -> std::io::Result<Self> {
        l.set_nonblocking(true)?;
        Ok(TcpListener::from_std(l)?.into())
    }
}

impl From<UnixListener> for Listener {
    /// The caller's socket file stays when the listener goes away.
    fn from(l: UnixListener) -> Self {
        let label = l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_default();
        Listener {
            socket: Socket::Unix {
                listener: l,
                _unlink: None,
            },
            label,
        }
    }
}

impl Listener {
    /// Binds what the configuration asks for (TCP or `-U`); the one place
    /// listen mode binds a stream socket.
    pub fn bind(cfg: &Config) -> Result<Listener, RelayError> {
        if let Some(path) = &cfg.unix {
            let l = UnixListener::bind(path).map_err(listen_err(path.display().to_string()))?;
            return Ok(Listener {
                socket: Socket::Unix {
                    listener: l,
                    _unlink: Some(UnlinkOnDrop(path.clone())),
                },
                label: path.display().to_string(),
            });
        }
        let (addr, port) = listen_addr(cfg)?;
        let l = match (addr, cfg.family) {
            (Some(ip), _) => bind_tcp(SocketAddr::new(ip, port), true),
            (None, Family::V4) => {
                bind_tcp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), false)
            }
            (None, Family::V6) => {
                bind_tcp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), true)
            }
            // Dual stack, falling back to IPv4 where IPv6 is off.
            (None, Family::Any) => {
                bind_tcp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), false).or_else(|_| {
                    bind_tcp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), false)
                })
            }
        }
        .map_err(listen_err(match addr {
            Some(ip) => SocketAddr::new(ip, port).to_string(),
            None => format!("port {port}"),
        }))?;
        Ok(l.into())
    }

    /// The TCP port it listens on (None for a Unix socket).
    pub fn local_port(&self) -> Option<u16> {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Socket::Unix { .. } => None,
        }
    }

    /// The address (or path) it listens on, as notices show it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next client the `--allow`/`--deny` rules let in; None once the
    /// run is shut down. Accept errors never end the loop: see
    /// [`pause_after`].
    pub(crate) async fn next(&self, ctx: &Ctx) -> Option<NetStream> {
        loop {
            tokio::select! {
                r = self.accept(ctx) => match r {
                    Ok(Some(s)) => return Some(s),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(%e, "accept failed");
                        let pause = pause_after(&e);
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                },
                () = ctx.shutdown.cancelled() => return None,
            }
        }
    }

    /// Accepts one connection; Ok(None) for one refused by the rules.
    async fn accept(&self, ctx: &Ctx) -> std::io::Result<Option<NetStream>> {
        match &self.socket {
            Socket::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                if !ctx.cfg.access.permits(peer.ip()) {
                    ctx.notice(Notice::Denied(show(&peer))).await;
                    return Ok(None);
                }
                let _ = s.set_nodelay(true);
                Ok(Some(NetStream::Tcp(s)))
            }
            Socket::Unix { listener, .. } => {
                let (s, _) = listener.accept().await?;
                Ok(Some(NetStream::Unix(s)))
            }
        }
    }
}

/// How long to pause after a failed accept. An error that belongs to one
/// connection (reset or aborted before we took it, a signal) says nothing
/// about the next: try again at once. Anything else, above all EMFILE and
/// ENFILE (out of descriptors), would fail again at once: wait a little
/// for clients to leave.
fn pause_after(e: &std::io::Error) -> Duration {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    match e.kind() {
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted => Duration::ZERO,
        _ => ACCEPT_BACKOFF,
    }
}

/// Serves every client the rules let in with `serve`, each in its own task after its TLS
/// handshake, at most `-m` at once, until the run is shut down (then waits a moment for the
/// tasks). The multi-client servers without a hub (`-k` with exec, the HTTP proxy) share
/// this door; each client's end or failure is told as a notice.
pub(crate) async fn each_client<F, Fut>(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    serve: F,
) where
    F: Fn(Ctx, NetStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), RelayError>> + Send + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    let tracker = tokio_util::task::TaskTracker::new();
    while let Some(stream) = listener.next(ctx).await {
        if !room_for(ctx, active.load(Ordering::Relaxed), &stream).await {
            continue;
        }
        let peer = stream.peer_label();
        ctx.notice(Notice::Accepted(peer.clone())).await;
        active.fetch_add(1, Ordering::Relaxed);
        let (ctx, tls, active, serve) = (ctx.clone(), tls.clone(), active.clone(), serve.clone());
        tracker.spawn(async move {
            let r = match handshake(&ctx, tls.as_ref(), stream).await {
                Ok(s) => serve(ctx.clone(), s).await,
                Err(e) => Err(e),
            };
            active.fetch_sub(1, Ordering::Relaxed);
            match r {
                Ok(()) => ctx.notice(Notice::Closed(peer)).await,
                Err(e) => ctx.notice(Notice::Warning(format!("{peer}: {e}"))).await,
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await;
}

/// Whether `-m` leaves room for one more client besides the `in_use`
/// ones; tells the user when it does not.
pub(crate) async fn room_for(ctx: &Ctx, in_use: usize, stream: &NetStream) -> bool {
    if in_use >= ctx.cfg.max_conns {
        ctx.notice(Notice::TooManyClients(stream.peer_label()))
            .await;
        return false;
    }
    true
}

fn listen_err(addr: String) -> impl FnOnce(std::io::Error) -> RelayError {
    move |source| RelayError::Listen { addr, source }
}

fn listen_addr(cfg: &Config) -> Result<(Option<std::net::IpAddr>, u16), RelayError> {
    match cfg.mode {
        Mode::Listen { addr, port } => Ok((addr, port)),
        Mode::Connect { .. } => Err(listen_err("?".into())(std::io::Error::other(
            "not listen mode",
        ))),
    }
}

fn bind_tcp(addr: SocketAddr, v6only: bool) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(v6only)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    TcpListener::from_std(sock.into())
}

/// Binds the UDP socket of `-u` listen mode. As ncat: `-4` IPv4, `-6` IPv6
/// only, neither both families (ncat binds 0.0.0.0 and [::] apart; one
/// dual-stack socket serves the same peers, and falls back to IPv4 where
/// IPv6 is off).
pub(crate) async fn bind_udp(cfg: &Config) -> Result<UdpSocket, RelayError> {
    let (addr, port) = listen_addr(cfg)?;
    let fail = |source| RelayError::Listen {
        addr: format!("UDP port {port}"),
        source,
    };
    let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
    let any4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    match (addr, cfg.family) {
        (Some(ip), _) => bind_dgram(SocketAddr::new(ip, port), true),
        (None, Family::V6) => bind_dgram(any6, true),
        (None, Family::V4) => bind_dgram(any4, false),
        (None, Family::Any) => bind_dgram(any6, false).or_else(|_| bind_dgram(any4, false)),
    }
    .map_err(fail)
}

fn bind_dgram(addr: SocketAddr, v6only: bool) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(v6only)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// TLS configuration for listen mode (and the generated certificate's
/// fingerprint, told to the user).
pub(crate) async fn tls_config(ctx: &Ctx) -> Result<Option<Arc<rustls::ServerConfig>>, RelayError> {
    let Some(opts) = &ctx.cfg.tls else {
        return Ok(None);
    };
    let (config, fp) = tls::server_config(opts)?;
    if let Some(fp) = fp {
        ctx.notice(Notice::Fingerprint(fp)).await;
    }
    Ok(Some(config))
}

/// The TLS handshake of an accepted client (if TLS is on), within a limit.
pub(crate) async fn handshake(
    ctx: &Ctx,
    tls: Option<&Arc<rustls::ServerConfig>>,
    stream: NetStream,
) -> Result<NetStream, RelayError> {
    let Some(config) = tls else {
        return Ok(stream);
    };
    let peer = stream.peer_label();
    let s = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls::accept(config.clone(), stream))
        .await
        .map_err(|_| RelayError::Tls {
            peer,
            why: "handshake timed out".into(),
        })??;
    if let Some(p) = tls::alpn_of(&s) {
        ctx.notice(Notice::Alpn(p)).await;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
    use std::io::{Error, ErrorKind};

    #[test]
    fn accept_errors_by_kind() {
        // One connection's trouble: straight on to the next.
        for kind in [ErrorKind::ConnectionAborted, ErrorKind::ConnectionReset] {
            assert_eq!(pause_after(&Error::from(kind)), Duration::ZERO);
        }
        // Out of descriptors (EMFILE, ENFILE) or memory: wait it out.
        for errno in [EMFILE, ENFILE, ENOBUFS, ENOMEM] {
            assert_eq!(
                pause_after(&Error::from_raw_os_error(errno)),
                ACCEPT_BACKOFF
            );
        }
    }
}
