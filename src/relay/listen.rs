//! Listen mode over TCP and Unix sockets: bind, accept (checking
//! `--allow`/`--deny` and `-m`), TLS handshakes, then either one session
//! (the default), one child per client (`-k` with `-e`/`-c`), or a hub
//! (`--broker`, `--chat`, and `-k` with standard input/output).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

use super::broker::{self, HubMode};
use super::exec::ExecEnv;
use super::session::{Local, relay, relay_stdio};
use super::stream::NetStream;
use super::{Ctx, Family, HubKind, Mode, Notice, RelayError, tls};

/// Time a client has to finish its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error such as EMFILE before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        _unlink: UnlinkOnDrop,
    },
}

/// Removes the Unix socket file we created when the listener goes away.
#[derive(Debug)]
pub(crate) struct UnlinkOnDrop(PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    /// Accepts the next connection; Ok(None) for one refused by the rules.
    pub(crate) async fn accept(&self, ctx: &Ctx) -> std::io::Result<Option<NetStream>> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                if !ctx.cfg.access.permits(peer.ip()) {
                    ctx.notice(Notice::Denied(peer.to_string()));
                    return Ok(None);
                }
                let _ = s.set_nodelay(true);
                Ok(Some(NetStream::Tcp(s)))
            }
            Listener::Unix { listener, .. } => {
                let (s, _) = listener.accept().await?;
                Ok(Some(NetStream::Unix(s)))
            }
        }
    }
}

fn listen_err(addr: String) -> impl FnOnce(std::io::Error) -> RelayError {
    move |source| RelayError::Listen { addr, source }
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
    // A deep backlog: a hub may see thousands of clients arrive at once.
    sock.listen(4096)?;
    TcpListener::from_std(sock.into())
}

/// Binds what the configuration asks for.
pub(crate) async fn bind(ctx: &Ctx) -> Result<Listener, RelayError> {
    let cfg = &ctx.cfg;
    if let Some(path) = &cfg.unix {
        let l = UnixListener::bind(path).map_err(listen_err(path.display().to_string()))?;
        ctx.notice(Notice::Listening(path.display().to_string()));
        return Ok(Listener::Unix {
            listener: l,
            _unlink: UnlinkOnDrop(path.clone()),
        });
    }
    let Mode::Listen { addr, port } = cfg.mode else {
        return Err(listen_err("?".into())(std::io::Error::other(
            "not listen mode",
        )));
    };
    let l = match (addr, cfg.family) {
        (Some(ip), _) => bind_tcp(SocketAddr::new(ip, port), true),
        (None, Family::V4) => bind_tcp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), false),
        (None, Family::V6) => bind_tcp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), true),
        // Dual stack, falling back to IPv4 where IPv6 is off.
        (None, Family::Any) => bind_tcp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), false)
            .or_else(|_| bind_tcp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), false)),
    }
    .map_err(listen_err(match addr {
        Some(ip) => SocketAddr::new(ip, port).to_string(),
        None => format!("port {port}"),
    }))?;
    let local = l
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    ctx.notice(Notice::Listening(local));
    Ok(Listener::Tcp(l))
}

/// TLS configuration for listen mode (and the generated certificate's
/// fingerprint, told to the user).
pub(crate) fn tls_config(ctx: &Ctx) -> Result<Option<Arc<rustls::ServerConfig>>, RelayError> {
    let Some(opts) = &ctx.cfg.tls else {
        return Ok(None);
    };
    let (config, fp) = tls::server_config(opts)?;
    if let Some(fp) = fp {
        ctx.notice(Notice::Fingerprint(fp));
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
        ctx.notice(Notice::Alpn(p));
    }
    Ok(s)
}

fn exec_env(stream: &NetStream, proto: &'static str) -> ExecEnv {
    let (remote_addr, remote_port) = stream.peer();
    let (local_addr, local_port) = stream.local();
    ExecEnv {
        remote_addr,
        remote_port,
        local_addr,
        local_port,
        proto,
    }
}

/// Listen mode entry point.
pub(crate) async fn run(ctx: &Ctx) -> Result<(), RelayError> {
    let listener = bind(ctx).await?;
    let tls = tls_config(ctx)?;
    let cfg = &ctx.cfg;
    match cfg.hub {
        HubKind::Broker => return broker::serve(ctx, listener, tls, HubMode::Broker).await,
        HubKind::Chat => return broker::serve(ctx, listener, tls, HubMode::Chat).await,
        HubKind::None => {}
    }
    if cfg.keep_open && cfg.exec.is_none() {
        return broker::serve(ctx, listener, tls, HubMode::Stdio).await;
    }
    if cfg.keep_open {
        return exec_many(ctx, listener, tls).await;
    }
    // One client: the first one the rules let in.
    let stream = loop {
        tokio::select! {
            r = listener.accept(ctx) => match r {
                Ok(Some(s)) => break s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(%e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    };
    // ncat stops listening once its one client is in.
    drop_listener(listener);
    ctx.notice(Notice::Accepted(stream.peer_label()));
    let stream = handshake(ctx, tls.as_ref(), stream).await?;
    match &cfg.exec {
        Some(spec) => {
            let local = Local::exec(spec, &exec_env(&stream, "TCP"))?;
            relay(ctx, stream, local).await
        }
        None => relay_stdio(ctx, stream).await,
    }
}

fn drop_listener(l: Listener) {
    drop(l);
}

/// `-k` with `-e`/`-c`: every client gets its own child, at most `-m` at once.
async fn exec_many(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), RelayError> {
    let active = Arc::new(AtomicUsize::new(0));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            r = listener.accept(ctx) => match r {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(%e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = ctx.shutdown.cancelled() => break,
        };
        let peer = stream.peer_label();
        if active.load(Ordering::Relaxed) >= ctx.cfg.max_conns {
            ctx.notice(Notice::TooManyClients(peer));
            continue;
        }
        ctx.notice(Notice::Accepted(peer.clone()));
        active.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let tls = tls.clone();
        let active = active.clone();
        tracker.spawn(async move {
            let r = async {
                let stream = handshake(&ctx, tls.as_ref(), stream).await?;
                let spec = ctx.cfg.exec.as_ref().ok_or(RelayError::NothingOpen)?;
                let local = Local::exec(spec, &exec_env(&stream, "TCP"))?;
                relay(&ctx, stream, local).await
            }
            .await;
            active.fetch_sub(1, Ordering::Relaxed);
            match r {
                Ok(()) => ctx.notice(Notice::Closed(peer)),
                Err(e) => ctx.notice(Notice::Warning(format!("{peer}: {e}"))),
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
    Ok(())
}
