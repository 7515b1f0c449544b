//! Connect mode: resolve, connect (from `-s`/`--source-port`, within `-w`,
//! through `--proxy`), wrap in TLS (`--ssl`), then one session with
//! standard input/output or a child (`-e`/`-c`). `-z` connects to each
//! port of a list or range and reports which accepted.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use tokio::net::{TcpSocket, TcpStream, UnixStream};

use super::exec::ExecEnv;
use super::session::{Local, relay, relay_stdio};
use super::stream::NetStream;
use super::{Ctx, Mode, Notice, Proto, RelayError, show, tls};

/// `-z` probes in flight at once.
const ZERO_IO_PARALLEL: usize = 64;
/// `-z` per-port timeout when `-w` is not given (over UDP: how long a
/// port unreachable is waited for, ncat's 2 s).
const ZERO_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Addresses of `host` for `port`, restricted to the family.
pub(crate) async fn resolve(
    ctx: &Ctx,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, RelayError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| RelayError::Resolve(host.to_string()))?
        .filter(|a| ctx.cfg.family.allows(a.ip()))
        .collect();
    if addrs.is_empty() {
        return Err(RelayError::Resolve(host.to_string()));
    }
    Ok(addrs)
}

fn label(host: &str, port: u16) -> String {
    crate::target::endpoint::host_port(host, port)
}

/// Maps a connect error to its outcome.
fn connect_error(addr: String, e: std::io::Error) -> RelayError {
    match e.kind() {
        ErrorKind::ConnectionRefused => RelayError::Refused(addr),
        ErrorKind::TimedOut => RelayError::ConnectTimeout(addr),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => RelayError::Unreachable(addr),
        _ => RelayError::Connect { addr, source: e },
    }
}

/// One TCP connection attempt from the configured source, within `limit`.
async fn tcp_once(
    ctx: &Ctx,
    addr: SocketAddr,
    limit: Option<Duration>,
) -> Result<TcpStream, RelayError> {
    let fail = |e| connect_error(show(&addr), e);
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    let cfg = &ctx.cfg;
    if cfg.source.is_some() || cfg.source_port.is_some() {
        let ip = cfg.source.unwrap_or(if addr.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        });
        if cfg.source_port.is_some() {
            sock.set_reuseaddr(true).map_err(fail)?;
        }
        sock.bind(SocketAddr::new(ip, cfg.source_port.unwrap_or(0)))
            .map_err(fail)?;
    }
    let fut = sock.connect(addr);
    let stream = match limit {
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .map_err(|_| RelayError::ConnectTimeout(show(&addr)))?,
        None => fut.await,
    }
    .map_err(fail)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Connects to the first address of `host` that answers.
pub(crate) async fn tcp(ctx: &Ctx, host: &str, port: u16) -> Result<TcpStream, RelayError> {
    let addrs = resolve(ctx, host, port).await?;
    first_answering(ctx, host, addrs).await
}

/// Tries `addrs` in the resolver's order (IPv6 first where it prefers it),
/// each within `-w`, and keeps the first that accepts; fails as the last did.
async fn first_answering(
    ctx: &Ctx,
    host: &str,
    addrs: Vec<SocketAddr>,
) -> Result<TcpStream, RelayError> {
    let mut last = None;
    for addr in addrs {
        match tcp_once(ctx, addr, ctx.cfg.timing.connect).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| RelayError::Resolve(host.to_string())))
}

/// The network end of a connect-mode session, handshakes done.
pub(crate) async fn open(ctx: &Ctx, host: &str, port: u16) -> Result<NetStream, RelayError> {
    let cfg = &ctx.cfg;
    let mut stream = if let Some(path) = &cfg.unix {
        let s = UnixStream::connect(path)
            .await
            .map_err(|e| connect_error(path.display().to_string(), e))?;
        NetStream::Unix(s)
    } else if let Some(proxy) = &cfg.proxy {
        let dial = || tcp(ctx, &proxy.host, proxy.port);
        let s = super::proxy::open(proxy, host, port, cfg.timing.connect, dial).await?;
        NetStream::Tcp(s)
    } else {
        NetStream::Tcp(tcp(ctx, host, port).await?)
    };
    if let Some(opts) = &cfg.tls {
        let config = tls::client_config(opts)?;
        let hs = tls::connect(config, opts, host, stream);
        stream = match cfg.timing.connect {
            Some(d) => tokio::time::timeout(d, hs)
                .await
                .map_err(|_| RelayError::Tls {
                    peer: label(host, port),
                    why: "handshake timed out".into(),
                })??,
            None => hs.await?,
        };
        if let Some(p) = tls::alpn_of(&stream) {
            ctx.notice(Notice::Alpn(p)).await;
        }
    }
    Ok(stream)
}

/// Connect mode: one session.
pub(crate) async fn run(ctx: &Ctx) -> Result<(), RelayError> {
    let Mode::Connect { host, ports } = &ctx.cfg.mode else {
        return Err(RelayError::NothingOpen);
    };
    let port = ports.first().copied().unwrap_or(super::DEFAULT_PORT);
    let stream = open(ctx, host, port).await?;
    ctx.notice(Notice::Connected(stream.peer_label())).await;
    let Some(spec) = &ctx.cfg.exec else {
        return relay_stdio(ctx, stream).await;
    };
    let (remote_addr, remote_port) = stream.peer();
    let (local_addr, local_port) = stream.local();
    let local = Local::exec(
        spec,
        &ExecEnv {
            remote_addr,
            remote_port,
            local_addr,
            local_port,
            proto: "TCP",
        },
    )?;
    relay(ctx, stream, local).await
}

/// `-z`: which ports accept a connection (TLS and proxy are not used);
/// over UDP, which ports do not answer a datagram with "port unreachable".
pub(crate) async fn zero_io(ctx: &Ctx) -> Result<(), RelayError> {
    let Mode::Connect { host, ports } = &ctx.cfg.mode else {
        return Err(RelayError::NothingOpen);
    };
    if let Some(path) = &ctx.cfg.unix {
        UnixStream::connect(path)
            .await
            .map_err(|e| connect_error(path.display().to_string(), e))?;
        return Ok(());
    }
    let ip = resolve(ctx, host, 0).await?[0].ip();
    let limit = Some(ctx.cfg.timing.connect.unwrap_or(ZERO_IO_TIMEOUT));
    let results: Vec<(u16, Result<(), RelayError>)> = futures::stream::iter(ports.iter().copied())
        .map(|port| async move {
            let addr = SocketAddr::new(ip, port);
            let r = match ctx.cfg.proto {
                Proto::Tcp => tcp_once(ctx, addr, limit).await.map(drop),
                Proto::Udp => super::udp::probe(ctx, addr, limit).await,
            };
            (port, r)
        })
        .buffered(ZERO_IO_PARALLEL)
        .collect()
        .await;
    let mut any = false;
    let mut last_err = None;
    for (port, r) in results {
        match r {
            Ok(()) => {
                any = true;
                ctx.notice(Notice::PortOpen {
                    host: host.clone(),
                    port,
                })
                .await;
            }
            Err(e) => {
                ctx.notice(Notice::PortClosed {
                    host: host.clone(),
                    port,
                    why: e.to_string(),
                })
                .await;
                last_err = Some(e);
            }
        }
    }
    match (any, last_err) {
        (true, _) => Ok(()),
        (false, Some(e)) if ports.len() == 1 => Err(e),
        _ => Err(RelayError::NothingOpen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `localhost` with a listener on 127.0.0.1 only: the refused IPv6
    /// address is passed over for the IPv4 one.
    #[tokio::test]
    async fn connect_falls_back_to_the_next_address() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = open.local_addr().expect("address").port();
        // Nothing listens on [::1] at that port (it was free on 127.0.0.1;
        // a listener there would make the first try succeed, also fine).
        let addrs = vec![
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let ctx = Ctx::new(
            crate::relay::tests::chat_config(),
            crate::report::Emit::discard(),
            None,
            tokio_util::sync::CancellationToken::new(),
        );
        let s = first_answering(&ctx, "localhost", addrs)
            .await
            .expect("the IPv4 address answers");
        assert_eq!(
            s.peer_addr().expect("peer"),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
        drop(open);
        let refused = first_answering(
            &ctx,
            "localhost",
            vec![SocketAddr::from(([127, 0, 0, 1], port))],
        )
        .await;
        assert!(
            matches!(refused, Err(RelayError::Refused(_))),
            "{refused:?}"
        );
    }
}
