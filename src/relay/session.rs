//! One session: bytes between a network stream and the local end (standard
//! input/output, or a child process), in both directions at once, with the
//! half-close contract of the README.
//!
//! - Local EOF (stdin, or the child's output): send FIN (TLS: close_notify
//!   then FIN) unless `--no-shutdown`. A stdio session goes on receiving; an
//!   exec session ends, after briefly draining what the peer still sends so
//!   that closing does not reset the connection under unread bytes.
//! - Peer FIN: a listener's stdio session ends (its client is done); a
//!   client's closes stdout and goes on sending standard input until its
//!   EOF (both as ncat 7.9x); an exec session closes the child's input and
//!   keeps sending its output.
//! - Peer RST: the session fails with "connection reset by peer".
//! - `-q SECS`: SECS after stdin's EOF the session ends; `-i`: it ends
//!   when nothing moved in either direction for that long; `--send-only`
//!   ends at stdin's EOF.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::exec::{ChildGuard, ExecEnv, ExecSpec};
use super::hexdump::{Dir, Tap};
use super::stream::NetStream;
use super::{Ctx, LINGER, RelayError};

/// Copy buffer for stdio sessions (one per run: large moves fewer chunks).
const STDIO_BUF: usize = 256 * 1024;
/// Copy buffer for exec sessions (one per client with `-k`).
const EXEC_BUF: usize = 32 * 1024;

/// Standard input/output or a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalKind {
    Stdio,
    Exec,
}

/// The local end of a session.
pub(crate) struct Local {
    pub(crate) reader: Option<Box<dyn AsyncRead + Unpin + Send>>,
    pub(crate) writer: Box<dyn AsyncWrite + Unpin + Send>,
    pub(crate) kind: LocalKind,
    pub(crate) guard: Option<ChildGuard>,
}

impl Local {
    /// Standard input and output, as `--send-only`/`--recv-only` allow.
    pub(crate) fn stdio(ctx: &Ctx) -> Local {
        let data = ctx.cfg.data;
        let reader: Option<Box<dyn AsyncRead + Unpin + Send>> = if data.recv_only {
            None
        } else {
            Some(Box::new(tokio::io::stdin()))
        };
        let writer: Box<dyn AsyncWrite + Unpin + Send> = if data.send_only {
            Box::new(tokio::io::sink())
        } else {
            Box::new(tokio::io::stdout())
        };
        Local {
            reader,
            writer,
            kind: LocalKind::Stdio,
            guard: None,
        }
    }

    /// A new child for this session.
    pub(crate) fn exec(spec: &ExecSpec, env: &ExecEnv) -> Result<Local, RelayError> {
        let s = super::exec::spawn(spec, env)?;
        Ok(Local {
            reader: Some(s.output),
            writer: s.input,
            kind: LocalKind::Exec,
            guard: Some(s.guard),
        })
    }
}

/// Time of the last byte moved, for `-i`.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`; never without a limit (a
    /// `select!` arm that is off).
    pub(crate) async fn expired(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let last = self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Sleeps until `at` (`-q`'s deadline once set); never without one.
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// A read from a reader that may be gone (its EOF seen); without one it
/// never returns.
pub(crate) async fn read_if<R: AsyncRead + Unpin + ?Sized>(
    reader: Option<&mut R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// `-C`: LF becomes CRLF (an LF already preceded by CR is left alone).
#[derive(Debug, Default)]
pub(crate) struct Crlf {
    last_cr: bool,
}

impl Crlf {
    pub(crate) fn convert<'a>(&mut self, data: &'a [u8], out: &'a mut Vec<u8>) -> &'a [u8] {
        out.clear();
        for &b in data {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_cr = b == b'\r';
        }
        out
    }
}

fn tap(t: Option<&Arc<Tap>>, dir: Dir, data: &[u8]) {
    if let Some(t) = t {
        t.record(dir, data);
    }
}

/// Local -> network. Ends with the FIN unless `--no-shutdown`.
async fn up<W: AsyncWrite + Unpin>(
    ctx: &Ctx,
    mut reader: Box<dyn AsyncRead + Unpin + Send>,
    nw: &mut W,
    bufsize: usize,
    activity: &Activity,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; bufsize];
    let mut crlf = ctx.cfg.data.crlf.then(Crlf::default);
    let mut converted = Vec::new();
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        activity.touch();
        let data = match crlf.as_mut() {
            Some(c) => c.convert(&buf[..n], &mut converted),
            None => &buf[..n],
        };
        tap(ctx.tap.as_ref(), Dir::Sent, data);
        nw.write_all(data).await?;
        if let Some(d) = ctx.cfg.timing.delay {
            tokio::time::sleep(d).await;
        }
    }
    if !ctx.cfg.data.no_shutdown {
        nw.shutdown().await?;
    }
    Ok(())
}

/// Network -> local. A local end that stopped reading (a child that
/// exited, a closed stdout) does not stop the draining of the socket.
async fn down<R: AsyncRead + Unpin>(
    ctx: &Ctx,
    nr: &mut R,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    bufsize: usize,
    activity: &Activity,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; bufsize];
    let mut writer = Some(writer);
    loop {
        let n = match nr.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if super::stream::is_unclean_eof(&e) => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        activity.touch();
        tap(ctx.tap.as_ref(), Dir::Received, &buf[..n]);
        if let Some(w) = writer.as_mut() {
            let r = async {
                w.write_all(&buf[..n]).await?;
                w.flush().await
            }
            .await;
            if r.is_err() {
                // EPIPE from a gone child or stdout: keep reading, discard.
                writer = None;
            }
        }
    }
    // Dropping the writer closes the child's stdin (the peer's FIN passed on).
    if let Some(mut w) = writer {
        let _ = w.flush().await;
    }
    Ok(())
}

/// A stdio session: spliced when it can be (see `relay::splice`).
pub(crate) async fn relay_stdio(ctx: &Ctx, stream: NetStream) -> Result<(), RelayError> {
    match stream {
        NetStream::Tcp(tcp) if super::splice::eligible(ctx) => super::splice::relay(ctx, tcp).await,
        other => relay(ctx, other, Local::stdio(ctx)).await,
    }
}

/// Whether the peer's FIN ends a stdio session, as in ncat 7.9x: yes for a
/// listener (its client is done: `sockeye cat -l PORT > file` ends when the
/// file has arrived, its stdin a terminal); no for a client, which goes on
/// sending standard input to its EOF, as a FIN is only the end of what the
/// peer sends (a listener in the background, its stdin /dev/null, sends its
/// FIN first, and a client that stopped there would cut its own upload).
pub(crate) fn peer_done(ctx: &Ctx) -> bool {
    matches!(ctx.cfg.mode, super::Mode::Listen { .. })
}

/// The peer's FIN, passed on to whoever reads standard output (not with
/// `--send-only`, where stdout was never the peer's).
pub(crate) fn end_of_stdout(ctx: &Ctx) {
    if !ctx.cfg.data.send_only
        && let Err(e) = crate::sys::close_stdout()
    {
        tracing::debug!(%e, "could not close standard output");
    }
}

/// Runs one session to its end.
pub(crate) async fn relay<S>(ctx: &Ctx, net: S, mut local: Local) -> Result<(), RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bufsize = match local.kind {
        LocalKind::Stdio => STDIO_BUF,
        LocalKind::Exec => EXEC_BUF,
    };
    let activity = Activity::new();
    let (mut nr, mut nw) = tokio::io::split(net);
    let reader = local.reader.take();
    let writer = local.writer;
    let mut guard = local.guard.take();
    let mut up_done = reader.is_none();
    let up_fut = async {
        match reader {
            Some(r) => up(ctx, r, &mut nw, bufsize, &activity).await,
            None => std::future::pending().await,
        }
    };
    let down_fut = down(ctx, &mut nr, writer, bufsize, &activity);
    tokio::pin!(up_fut, down_fut);
    let mut down_done = false;
    let mut quit_at: Option<Instant> = None;
    let idle = ctx.cfg.timing.idle;
    let kind = local.kind;
    let result = loop {
        tokio::select! {
            r = &mut up_fut, if !up_done => {
                up_done = true;
                if let Err(e) = r {
                    if kind == LocalKind::Exec {
                        // The peer went away while the child was talking.
                        break Ok(());
                    }
                    break Err(RelayError::io("sending")(e));
                }
                match kind {
                    LocalKind::Stdio => {
                        if ctx.cfg.data.send_only || down_done {
                            break Ok(());
                        }
                        if let Some(q) = ctx.cfg.timing.quit_after_eof {
                            quit_at = Some(Instant::now() + q);
                        }
                    }
                    LocalKind::Exec => {
                        if !down_done {
                            let _ = tokio::time::timeout(LINGER, &mut down_fut).await;
                        }
                        break Ok(());
                    }
                }
            }
            r = &mut down_fut, if !down_done => {
                down_done = true;
                if let Err(e) = r {
                    break Err(RelayError::io("receiving")(e));
                }
                // See `peer_done`: a listener's session ends; a client's
                // stdin may still have bytes for the peer.
                if kind == LocalKind::Stdio {
                    if up_done || peer_done(ctx) {
                        break Ok(());
                    }
                    end_of_stdout(ctx);
                }
            }
            () = sleep_until(quit_at) => break Ok(()),
            () = activity.expired(idle) => break Err(RelayError::Idle(idle.unwrap_or_default().as_millis())),
            () = ctx.shutdown.cancelled() => break Ok(()),
        }
    };
    if let Some(g) = guard.as_mut() {
        g.wait_briefly().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_across_chunks() {
        let mut c = Crlf::default();
        let mut out = Vec::new();
        assert_eq!(c.convert(b"a\nb\r", &mut out), b"a\r\nb\r");
        assert_eq!(c.convert(b"\nc\n", &mut out), b"\nc\r\n");
    }
}
