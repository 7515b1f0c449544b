//! `-u`: UDP in connect and listen mode.
//!
//! A read from the local end becomes one datagram; a datagram becomes one
//! write. UDP has no FIN: local EOF sends nothing, and the session goes on
//! receiving until `-q`, `-i` or a signal ends it (`--send-only` ends at
//! EOF). An ICMP port-unreachable reported on the socket ends a connected
//! session as "connection refused". Listen mode without `-k` serves the
//! first peer only (the socket is connected to it, as ncat does); with
//! `-k` every peer is served: standard input goes to all of them, or each
//! gets its own child with `-e`/`-c`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connect::resolve;
use super::exec::ExecEnv;
use super::hexdump::Dir;
use super::listener;
use super::session::{Activity, Crlf, Local, LocalKind, read_if, sleep_until};
use super::stream::canonical;
use super::{Ctx, Mode, Notice, RelayError, show};

/// Largest datagram.
pub(crate) const MAX_DATAGRAM: usize = 65_535;
/// Datagrams queued for one peer's child before new ones are dropped.
const PEER_QUEUE: usize = 256;

fn exec_env(sock: &UdpSocket, peer: SocketAddr) -> ExecEnv {
    let local = sock.local_addr().ok().map(canonical);
    let peer = canonical(peer);
    ExecEnv {
        remote_addr: peer.ip().to_string(),
        remote_port: peer.port().to_string(),
        local_addr: local.map(|a| a.ip().to_string()).unwrap_or_default(),
        local_port: local.map(|a| a.port().to_string()).unwrap_or_default(),
        proto: "UDP",
    }
}

fn local_for(ctx: &Ctx, sock: &UdpSocket, peer: SocketAddr) -> Result<Local, RelayError> {
    match &ctx.cfg.exec {
        Some(spec) => Local::exec(spec, &exec_env(sock, peer)),
        None => Ok(Local::stdio(ctx)),
    }
}

/// Connect mode.
pub(crate) async fn connect(ctx: &Ctx) -> Result<(), RelayError> {
    let Mode::Connect { host, ports } = &ctx.cfg.mode else {
        return Err(RelayError::NothingOpen);
    };
    if let Some(path) = &ctx.cfg.unix {
        return super::unix_dgram::connect(ctx, path).await;
    }
    let port = ports.first().copied().unwrap_or(super::DEFAULT_PORT);
    let addr = resolve(ctx, host, port).await?[0];
    let sock = connected(ctx, addr).await?;
    ctx.notice(Notice::Connected(addr.to_string())).await;
    let local = local_for(ctx, &sock, addr)?;
    session(ctx, &sock, None, local, &addr.to_string()).await
}

/// The datagram `-z` sends: one NUL byte, as ncat's `-z -u` does.
const PROBE: &[u8] = b"\0";

/// A UDP socket for `addr`, bound where `-s` and `-p` say (or anywhere of
/// its family), and connected to it.
async fn connected(ctx: &Ctx, addr: SocketAddr) -> Result<UdpSocket, RelayError> {
    let bind_ip = ctx.cfg.source.unwrap_or(if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    });
    let fail = |e| RelayError::Connect {
        addr: addr.to_string(),
        source: e,
    };
    let sock = UdpSocket::bind(SocketAddr::new(bind_ip, ctx.cfg.source_port.unwrap_or(0)))
        .await
        .map_err(fail)?;
    sock.connect(addr).await.map_err(fail)?;
    Ok(sock)
}

/// `-z -u`: sends [`PROBE`] to `addr` and waits up to `limit` for the
/// port unreachable that means closed; silence or an answer means open
/// (as ncat, which cannot tell an open port from a filtered one either).
pub(crate) async fn probe(
    ctx: &Ctx,
    addr: SocketAddr,
    limit: Option<std::time::Duration>,
) -> Result<(), RelayError> {
    let sock = connected(ctx, addr).await?;
    sock.send(PROBE).await.map_err(|e| refused_or(e, addr))?;
    let mut buf = [0u8; 1];
    let answer = sock.recv(&mut buf);
    let r = match limit {
        Some(d) => match tokio::time::timeout(d, answer).await {
            Ok(r) => r,
            Err(_) => return Ok(()),
        },
        None => answer.await,
    };
    r.map(drop).map_err(|e| refused_or(e, addr))
}

/// A connected datagram socket: UDP, or a Unix datagram socket (`-U -u`).
pub(crate) trait Dgram {
    fn send(&self, buf: &[u8]) -> impl Future<Output = std::io::Result<usize>>;
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>>;
}

impl Dgram for UdpSocket {
    fn send(&self, buf: &[u8]) -> impl Future<Output = std::io::Result<usize>> {
        UdpSocket::send(self, buf)
    }
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>> {
        UdpSocket::recv(self, buf)
    }
}

impl Dgram for tokio::net::UnixDatagram {
    fn send(&self, buf: &[u8]) -> impl Future<Output = std::io::Result<usize>> {
        tokio::net::UnixDatagram::send(self, buf)
    }
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>> {
        tokio::net::UnixDatagram::recv(self, buf)
    }
}

/// One connected datagram session between `sock` and the local end.
pub(crate) async fn session<S: Dgram>(
    ctx: &Ctx,
    sock: &S,
    first: Option<Bytes>,
    mut local: Local,
    peer: &str,
) -> Result<(), RelayError> {
    let activity = Activity::new();
    let mut writer = Some(local.writer);
    let mut reader = local.reader.take();
    let _guard = local.guard.take();
    let mut rbuf = vec![0u8; MAX_DATAGRAM];
    let mut lbuf = vec![0u8; MAX_DATAGRAM];
    let mut crlf = ctx.cfg.data.crlf.then(Crlf::default);
    let mut converted = Vec::new();
    let mut quit_at: Option<Instant> = None;
    if let (Some(data), Some(w)) = (first, writer.as_mut()) {
        if let Some(t) = ctx.tap.as_ref() {
            t.record(Dir::Received, &data);
        }
        if w.write_all(&data).await.and(w.flush().await).is_err() {
            writer = None;
        }
    }
    let idle = ctx.cfg.timing.idle;
    loop {
        tokio::select! {
            r = read_if(reader.as_mut(), &mut lbuf) => {
                let n = r.unwrap_or(0);
                if n == 0 {
                    reader = None;
                    if local.kind == LocalKind::Exec || ctx.cfg.data.send_only {
                        return Ok(());
                    }
                    if let Some(q) = ctx.cfg.timing.quit_after_eof {
                        quit_at = Some(Instant::now() + q);
                    }
                    continue;
                }
                activity.touch();
                let data = match crlf.as_mut() {
                    Some(c) => c.convert(&lbuf[..n], &mut converted),
                    None => &lbuf[..n],
                };
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Sent, data);
                }
                if let Err(e) = sock.send(data).await {
                    return Err(refused_or(e, peer));
                }
                if let Some(d) = ctx.cfg.timing.delay {
                    tokio::time::sleep(d).await;
                }
            }
            r = sock.recv(&mut rbuf) => {
                let n = r.map_err(|e| refused_or(e, peer))?;
                activity.touch();
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Received, &rbuf[..n]);
                }
                if let Some(w) = writer.as_mut()
                    && w.write_all(&rbuf[..n]).await.and(w.flush().await).is_err()
                {
                    writer = None;
                }
            }
            () = sleep_until(quit_at) => return Ok(()),
            () = activity.expired(idle) => return Err(RelayError::Idle(idle.unwrap_or_default().as_millis())),
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    }
}

fn refused_or(e: std::io::Error, peer: impl ToString) -> RelayError {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        RelayError::Refused(peer.to_string())
    } else {
        RelayError::Io {
            what: "UDP",
            source: e,
        }
    }
}

/// Listen mode.
pub(crate) async fn listen(ctx: &Ctx) -> Result<(), RelayError> {
    if let Some(path) = &ctx.cfg.unix {
        return super::unix_dgram::listen(ctx, path).await;
    }
    let sock = listener::bind_udp(&ctx.cfg).await?;
    let local = sock
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    ctx.notice(Notice::Listening(format!("{local} (UDP)")))
        .await;
    let sock = Arc::new(sock);
    if ctx.cfg.keep_open {
        return many(ctx, sock).await;
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (n, peer) = loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => r.map(|(n, p)| (n, canonical(p))).map_err(RelayError::io("UDP"))?,
            () = ctx.shutdown.cancelled() => return Ok(()),
        };
        if ctx.cfg.access.permits(peer.ip()) {
            break (n, peer);
        }
        ctx.notice(Notice::Denied(show(&peer))).await;
    };
    sock.connect(peer).await.map_err(RelayError::io("UDP"))?;
    ctx.notice(Notice::Accepted(show(&peer))).await;
    let local = local_for(ctx, &sock, peer)?;
    session(
        ctx,
        sock.as_ref(),
        Some(Bytes::copy_from_slice(&buf[..n])),
        local,
        &peer.to_string(),
    )
    .await
}

type Peers = Mutex<HashMap<SocketAddr, Option<mpsc::Sender<Bytes>>>>;

/// The peer table; never held across an await (each use takes what it
/// needs and lets go).
fn lock(p: &Peers) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Option<mpsc::Sender<Bytes>>>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// `-k`: every peer served on the one socket. `-i` ends the run (status 2,
/// as ncat's) once nothing came from any peer or stdin for that long; as
/// in ncat, the clock starts with the first peer.
async fn many(ctx: &Ctx, sock: Arc<UdpSocket>) -> Result<(), RelayError> {
    let idle = ctx.cfg.timing.idle;
    let activity = Activity::new();
    let mut first_peer = false;
    // Per peer: the queue into its child (exec), or nothing (stdio).
    let peers: Arc<Peers> = Arc::new(Mutex::new(HashMap::new()));
    let mut stdout = tokio::io::stdout();
    let mut stdin = (ctx.cfg.exec.is_none() && !ctx.cfg.data.recv_only).then(tokio::io::stdin);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut inbuf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                // An IPv4 peer of the dual-stack socket is named (and, Linux
                // allows it, answered) as IPv4.
                let Ok((n, peer)) = r.map(|(n, p)| (n, canonical(p))) else { continue };
                if ctx.cfg.access.permits(peer.ip()) {
                    first_peer = true;
                    activity.touch();
                }
                let known = lock(&peers).get(&peer).cloned();
                let queue = match known {
                    Some(q) => q,
                    None => {
                        if !ctx.cfg.access.permits(peer.ip()) {
                            ctx.notice(Notice::Denied(show(&peer))).await;
                            continue;
                        }
                        if lock(&peers).len() >= ctx.cfg.max_conns {
                            ctx.notice(Notice::TooManyClients(show(&peer))).await;
                            continue;
                        }
                        ctx.notice(Notice::Accepted(show(&peer))).await;
                        let q = match &ctx.cfg.exec {
                            Some(_) => match start_peer_child(ctx, &sock, peer, peers.clone()) {
                                Ok(q) => Some(q),
                                Err(e) => {
                                    ctx.notice(Notice::Warning(e.to_string())).await;
                                    continue;
                                }
                            },
                            None => None,
                        };
                        lock(&peers).insert(peer, q.clone());
                        q
                    }
                };
                let data = Bytes::copy_from_slice(&buf[..n]);
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Received, &data);
                }
                match queue {
                    // A child that cannot keep up loses datagrams, as UDP may.
                    Some(q) => { let _ = q.try_send(data); }
                    None => {
                        if !ctx.cfg.data.send_only {
                            let _ = stdout.write_all(&data).await;
                            let _ = stdout.flush().await;
                        }
                    }
                }
            }
            r = read_if(stdin.as_mut(), &mut inbuf) => {
                let n = r.unwrap_or(0);
                if n == 0 {
                    stdin = None;
                    continue;
                }
                activity.touch();
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Sent, &inbuf[..n]);
                }
                let targets: Vec<SocketAddr> = lock(&peers).keys().copied().collect();
                for peer in targets {
                    let _ = sock.send_to(&inbuf[..n], peer).await;
                }
            }
            () = activity.expired(idle), if first_peer => {
                return Err(RelayError::Idle(idle.unwrap_or_default().as_millis()));
            }
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// A child for one UDP peer: datagrams in through a queue, its output out
/// as datagrams; the peer is forgotten when the child's output ends.
fn start_peer_child(
    ctx: &Ctx,
    sock: &Arc<UdpSocket>,
    peer: SocketAddr,
    peers: Arc<Peers>,
) -> Result<mpsc::Sender<Bytes>, RelayError> {
    let mut local = local_for(ctx, sock, peer)?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(PEER_QUEUE);
    let mut writer = local.writer;
    tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            if writer
                .write_all(&d)
                .await
                .and(writer.flush().await)
                .is_err()
            {
                break;
            }
        }
    });
    let sock = sock.clone();
    let mut reader = local.reader.take();
    let guard = local.guard.take();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        if let Some(r) = reader.as_mut() {
            loop {
                let n = tokio::select! {
                    r = r.read(&mut buf) => r.unwrap_or(0),
                    () = ctx.shutdown.cancelled() => 0,
                };
                if n == 0 {
                    break;
                }
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Sent, &buf[..n]);
                }
                let _ = sock.send_to(&buf[..n], peer).await;
            }
        }
        lock(&peers).remove(&peer);
        ctx.notice(Notice::Closed(show(&peer))).await;
    });
    Ok(tx)
}
