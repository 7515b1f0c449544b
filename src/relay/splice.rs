//! Zero-copy stdio sessions over plain TCP: `splice(2)` moves pages from a
//! stdin pipe into the socket and from the socket into stdout (directly
//! when stdout is a pipe, through a pipe of our own when it is a file or
//! /dev/null), so the bytes of a large transfer never enter user space.
//!
//! Taken only when nothing needs to look at the bytes (no `-o`/`-x`, `-C`,
//! `-d`, `-i`, `-q`, TLS or exec) and the descriptors allow it (stdin a
//! blocking pipe; stdout a blocking pipe, a regular file or /dev/null).
//! Each direction runs on a thread of its own with blocking splices; the
//! socket is non-blocking (it belongs to tokio), so "would block" on it
//! is waited out with poll(2). The half-close contract is the session's:
//! stdin's EOF sends FIN, the peer's FIN ends the way down, and the session
//! ends when both directions have.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::{Ctx, RelayError};

/// Bytes asked of one splice call.
const CHUNK: usize = 1 << 20;
/// Pipe capacity asked for (the default 64 KiB means a wake-up per 64 KiB);
/// the kernel may refuse past /proc/sys/fs/pipe-max-size, which is fine.
const PIPE_SIZE: i32 = 1 << 20;

fn grow_pipe(fd: BorrowedFd<'_>) {
    let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// What stdout is, for the way down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Pipe,
    /// A file or /dev/null: through a pipe of our own.
    Staged,
}

fn blocking(fd: BorrowedFd<'_>) -> bool {
    fcntl(fd, FcntlArg::F_GETFL)
        .map(|f| !OFlag::from_bits_truncate(f).contains(OFlag::O_NONBLOCK))
        .unwrap_or(false)
}

fn kind(fd: BorrowedFd<'_>) -> Option<SFlag> {
    fstat(fd)
        .ok()
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    kind(fd) == Some(SFlag::S_IFIFO) && blocking(fd)
}

fn sink(fd: BorrowedFd<'_>) -> Option<Sink> {
    if !blocking(fd) {
        return None;
    }
    match kind(fd)? {
        SFlag::S_IFIFO => Some(Sink::Pipe),
        SFlag::S_IFREG => Some(Sink::Staged),
        SFlag::S_IFCHR => {
            // /dev/null (1, 3) takes splices; a terminal does not.
            let st = fstat(fd).ok()?;
            (st.st_rdev == nix::sys::stat::makedev(1, 3)).then_some(Sink::Staged)
        }
        _ => None,
    }
}

/// True when this session can be spliced.
pub(crate) fn eligible(ctx: &Ctx) -> bool {
    let c = &ctx.cfg;
    let plain = ctx.tap.is_none()
        && !c.data.crlf
        && c.timing.delay.is_none()
        && c.timing.idle.is_none()
        && c.timing.quit_after_eof.is_none()
        && c.exec.is_none()
        && c.tls.is_none();
    if !plain || std::env::var_os("SOCKEYE_NO_SPLICE").is_some() {
        return false;
    }
    let stdin_ok = c.data.recv_only || is_pipe(io::stdin().as_fd());
    let stdout_ok = c.data.send_only || sink(io::stdout().as_fd()).is_some();
    stdin_ok && stdout_ok
}

fn wait(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<()> {
    let mut fds = [PollFd::new(fd, flags)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// stdin -> socket until stdin's EOF, then FIN (unless --no-shutdown).
fn up(sock: OwnedFd, no_shutdown: bool) -> io::Result<()> {
    let stdin = io::stdin();
    let input = stdin.as_fd();
    grow_pipe(input);
    loop {
        match splice(
            input,
            None,
            &sock,
            None,
            CHUNK,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE,
        ) {
            Ok(0) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            // stdin blocks, so this is the socket: wait until it drains.
            Err(Errno::EAGAIN) => wait(sock.as_fd(), PollFlags::POLLOUT)?,
            Err(e) => return Err(e.into()),
        }
    }
    if !no_shutdown {
        socket2::SockRef::from(&sock).shutdown(std::net::Shutdown::Write)?;
    }
    Ok(())
}

/// socket -> stdout until the peer's FIN.
fn down(sock: OwnedFd, how: Sink) -> io::Result<()> {
    let stdout = io::stdout();
    let out = stdout.as_fd();
    let staging = match how {
        Sink::Pipe => {
            grow_pipe(out);
            None
        }
        Sink::Staged => {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            grow_pipe(w.as_fd());
            Some((r, w))
        }
    };
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        let target = match &staging {
            Some((_, w)) => w.as_fd(),
            None => out,
        };
        let n = match splice(&sock, None, target, None, CHUNK, flags) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            // Nothing to read yet (stdout blocks, the staging pipe was empty).
            Err(Errno::EAGAIN) => {
                wait(sock.as_fd(), PollFlags::POLLIN)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((r, _)) = &staging {
            let mut left = n;
            while left > 0 {
                match splice(r, None, out, None, left, SpliceFFlags::SPLICE_F_MOVE) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(m) => left -= m,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

fn thread<F>(f: F) -> oneshot::Receiver<io::Result<()>>
where
    F: FnOnce() -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    // Plain threads, not the runtime's blocking pool: a splice blocked on
    // stdin cannot be cancelled, and the runtime must not wait for it.
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn flatten(r: Result<io::Result<()>, oneshot::error::RecvError>) -> io::Result<()> {
    r.unwrap_or_else(|_| Err(io::Error::other("splice thread ended")))
}

/// The stdio session of [`super::session::relay`], spliced.
pub(crate) async fn relay(ctx: &Ctx, stream: TcpStream) -> Result<(), RelayError> {
    let dup = || {
        stream
            .as_fd()
            .try_clone_to_owned()
            .map_err(RelayError::io("socket"))
    };
    let mut up_rx = if ctx.cfg.data.recv_only {
        None
    } else {
        let s = dup()?;
        let no_shutdown = ctx.cfg.data.no_shutdown;
        Some(thread(move || up(s, no_shutdown)))
    };
    let mut down_rx = match sink(io::stdout().as_fd()) {
        Some(how) if !ctx.cfg.data.send_only => {
            let s = dup()?;
            Some(thread(move || down(s, how)))
        }
        _ => None,
    };
    loop {
        tokio::select! {
            r = async { up_rx.as_mut().expect("guarded").await }, if up_rx.is_some() => {
                up_rx = None;
                flatten(r).map_err(RelayError::io("sending"))?;
                if down_rx.is_none() {
                    // --send-only: done at stdin's EOF.
                    return Ok(());
                }
            }
            r = async { down_rx.as_mut().expect("guarded").await }, if down_rx.is_some() => {
                down_rx = None;
                flatten(r).map_err(RelayError::io("receiving"))?;
                if up_rx.is_none() {
                    return Ok(());
                }
                super::session::end_of_stdout(ctx);
            }
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    }
}
