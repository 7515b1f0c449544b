//! Listen mode without a hub, over TCP and Unix sockets: one session with
//! the first client the rules let in (the default), or one child per
//! client (`-k` with `-e`/`-c`). Clients come from [`super::listener`];
//! the hubs (`--broker`, `--chat`, `-k` with standard input/output) are
//! `broker.rs`.

use std::sync::Arc;

use super::exec::ExecEnv;
use super::listener::{self, Listener, handshake};
use super::session::{Local, relay, relay_stdio};
use super::stream::NetStream;
use super::{Ctx, Notice, RelayError};

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

/// Serves one client, or (`-k`) one child per client, until done or shut
/// down.
pub(crate) async fn serve(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), RelayError> {
    let cfg = &ctx.cfg;
    if cfg.keep_open {
        return exec_many(ctx, listener, tls).await;
    }
    // One client: the first one the rules let in.
    let Some(stream) = listener.next(ctx).await else {
        return Ok(());
    };
    // ncat stops listening once its one client is in.
    drop(listener);
    ctx.notice(Notice::Accepted(stream.peer_label())).await;
    let stream = handshake(ctx, tls.as_ref(), stream).await?;
    match &cfg.exec {
        Some(spec) => {
            let local = Local::exec(spec, &exec_env(&stream, "TCP"))?;
            relay(ctx, stream, local).await
        }
        None => relay_stdio(ctx, stream).await,
    }
}

/// `-k` with `-e`/`-c`: every client gets its own child, at most `-m` at once.
async fn exec_many(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), RelayError> {
    listener::each_client(ctx, listener, tls, |ctx, stream| async move {
        let spec = ctx.cfg.exec.as_ref().ok_or(RelayError::NothingOpen)?;
        let local = Local::exec(spec, &exec_env(&stream, "TCP"))?;
        relay(&ctx, stream, local).await
    })
    .await;
    Ok(())
}
