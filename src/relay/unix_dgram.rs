//! `-U -u`: Unix datagram sockets, as ncat's. Listen mode binds the path
//! (removed again at the end) and serves the first peer that sends, the
//! socket connected to it; connect mode binds a source socket of its own
//! in the temporary directory, so that the listener has an address to
//! answer to, and removes it at the end. The session itself is UDP's
//! (`udp::session`): a datagram per read, no FIN.

use std::path::Path;

use bytes::Bytes;
use tokio::net::UnixDatagram;

use super::exec::ExecEnv;
use super::listener::UnlinkOnDrop;
use super::session::Local;
use super::stream::unix_end;
use super::udp::{MAX_DATAGRAM, session};
use super::{Ctx, Notice, RelayError};

fn bind(path: &Path) -> Result<(UnixDatagram, UnlinkOnDrop), RelayError> {
    let sock = UnixDatagram::bind(path).map_err(|source| RelayError::Listen {
        addr: path.display().to_string(),
        source,
    })?;
    Ok((sock, UnlinkOnDrop(path.to_path_buf())))
}

/// The local end: standard input/output, or a child told both paths.
fn local_for(ctx: &Ctx, sock: &UnixDatagram) -> Result<Local, RelayError> {
    match &ctx.cfg.exec {
        Some(spec) => {
            let (remote_addr, remote_port) = unix_end(sock.peer_addr());
            let (local_addr, local_port) = unix_end(sock.local_addr());
            let env = ExecEnv {
                remote_addr,
                remote_port,
                local_addr,
                local_port,
                proto: "UDP",
            };
            Local::exec(spec, &env)
        }
        None => Ok(Local::stdio(ctx)),
    }
}

/// Connect mode: from a source socket of our own to `path`.
pub(crate) async fn connect(ctx: &Ctx, path: &Path) -> Result<(), RelayError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let source = std::env::temp_dir().join(format!("sockeye.{}.{nanos:08x}", std::process::id()));
    let (sock, _unlink) = bind(&source)?;
    sock.connect(path).map_err(|source| RelayError::Connect {
        addr: path.display().to_string(),
        source,
    })?;
    let label = path.display().to_string();
    ctx.notice(Notice::Connected(label.clone())).await;
    let local = local_for(ctx, &sock)?;
    session(ctx, &sock, None, local, &label).await
}

/// Listen mode: the first peer that sends (from a bound socket) is served.
pub(crate) async fn listen(ctx: &Ctx, path: &Path) -> Result<(), RelayError> {
    let (sock, _unlink) = bind(path)?;
    ctx.notice(Notice::Listening(format!("{} (datagrams)", path.display())))
        .await;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (n, peer) = loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => r.map_err(RelayError::io("Unix datagram"))?,
            () = ctx.shutdown.cancelled() => return Ok(()),
        };
        match from.as_pathname() {
            Some(p) => break (n, p.to_path_buf()),
            // An unbound sender cannot be answered (ncat's clients bind).
            None => {
                ctx.notice(Notice::Warning(
                    "a datagram from an unbound Unix socket was dropped".into(),
                ))
                .await
            }
        }
    };
    sock.connect(&peer)
        .map_err(RelayError::io("Unix datagram"))?;
    let label = peer.display().to_string();
    ctx.notice(Notice::Accepted(label.clone())).await;
    let local = local_for(ctx, &sock)?;
    session(
        ctx,
        &sock,
        Some(Bytes::copy_from_slice(&buf[..n])),
        local,
        &label,
    )
    .await
}
