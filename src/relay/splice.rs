//! The fast stdio session over plain TCP: one thread per direction with
//! blocking system calls, and the bytes of a large transfer kept out of
//! user space where the descriptors allow it.
//!
//! The way up (stdin -> socket): `splice(2)` from a pipe, `sendfile(2)`
//! from a regular file, plain `read`/`write` from anything else (a
//! terminal, /dev/null, a socket). The way down (socket -> stdout):
//! `splice(2)` into a pipe directly, into a regular file or /dev/null
//! through a pipe of our own, plain `read`/`write` into anything else (a
//! terminal, a file opened for appending, a non-blocking descriptor).
//!
//! Taken whenever nothing needs to look at the bytes (no `-o`/`-x`, `-C`,
//! `-d`, `-i`, `-q`, TLS or exec), whatever stdin and stdout are. The
//! socket is taken out of tokio's reactor but stays non-blocking, so
//! "would block" on it is waited out with poll(2), as it is on a
//! non-blocking stdin or stdout.
//! The half-close contract is the session's: stdin's EOF sends FIN, the
//! peer's FIN ends the way down, the session ends when both directions
//! have, and a stdout that stopped taking bytes (EPIPE) does not stop the
//! draining of the socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::{Ctx, RelayError};

/// Bytes asked of one splice or sendfile call.
const CHUNK: usize = 1 << 20;
/// Buffer of the read/write paths (terminals, appended files, sockets).
const BUF: usize = 128 * 1024;
/// Pipe capacity asked for (the default 64 KiB means a wake-up per 64 KiB);
/// the kernel may refuse past /proc/sys/fs/pipe-max-size, which is fine.
const PIPE_SIZE: i32 = 1 << 20;

fn grow_pipe(fd: BorrowedFd<'_>) {
    let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// What stdin is, for the way up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A blocking pipe: spliced.
    Pipe,
    /// A regular file: sent with sendfile(2) from its current offset.
    File,
    /// Anything else: read and written.
    Read,
}

/// What stdout is, for the way down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// A blocking pipe: spliced into directly.
    Pipe,
    /// A regular file or /dev/null: spliced through a pipe of our own.
    Staged,
    /// Anything else: read and written.
    Write,
}

fn flags(fd: BorrowedFd<'_>) -> OFlag {
    fcntl(fd, FcntlArg::F_GETFL)
        .map(OFlag::from_bits_truncate)
        .unwrap_or(OFlag::O_NONBLOCK)
}

fn source(fd: BorrowedFd<'_>) -> Source {
    let Ok(st) = fstat(fd) else {
        return Source::Read;
    };
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFIFO if !flags(fd).contains(OFlag::O_NONBLOCK) => Source::Pipe,
        SFlag::S_IFREG => Source::File,
        _ => Source::Read,
    }
}

fn sink(fd: BorrowedFd<'_>) -> Sink {
    let Ok(st) = fstat(fd) else {
        return Sink::Write;
    };
    let fl = flags(fd);
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFIFO if !fl.contains(OFlag::O_NONBLOCK) => Sink::Pipe,
        // splice(2) refuses a file opened with O_APPEND (`>> file`).
        SFlag::S_IFREG if !fl.contains(OFlag::O_APPEND) => Sink::Staged,
        // /dev/null (1, 3) takes splices; a terminal does not.
        SFlag::S_IFCHR if st.st_rdev == nix::sys::stat::makedev(1, 3) => Sink::Staged,
        _ => Sink::Write,
    }
}

/// True when this session can take the fast path.
pub(crate) fn eligible(ctx: &Ctx) -> bool {
    let c = &ctx.cfg;
    ctx.tap.is_none()
        && !c.data.crlf
        && c.timing.delay.is_none()
        && c.timing.idle.is_none()
        && c.timing.quit_after_eof.is_none()
        && c.exec.is_none()
        && c.tls.is_none()
        && std::env::var_os("SOCKEYE_NO_SPLICE").is_none()
}

fn wait(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<()> {
    let mut fds = [PollFd::new(fd, flags)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One read(2); "would block" is waited out. 0 is EOF.
fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait(fd, PollFlags::POLLIN)?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// All of `data` with write(2); "would block" is waited out.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait(fd, PollFlags::POLLOUT)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// stdin -> socket until stdin's EOF, then FIN (unless --no-shutdown).
fn up(sock: OwnedFd, no_shutdown: bool) -> io::Result<()> {
    let stdin = io::stdin();
    let input = stdin.as_fd();
    let mut how = source(input);
    if how == Source::Pipe {
        grow_pipe(input);
    }
    let mut sent = 0usize;
    loop {
        let r = match how {
            Source::Pipe => splice(
                input,
                None,
                &sock,
                None,
                CHUNK,
                SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE,
            ),
            Source::File => nix::sys::sendfile::sendfile(&sock, input, None, CHUNK),
            Source::Read => break,
        };
        match r {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            // stdin blocks (or is a file), so this is the socket: wait
            // until it drains.
            Err(Errno::EAGAIN) => wait(sock.as_fd(), PollFlags::POLLOUT)?,
            // A file system that cannot feed sendfile(2): read it instead.
            Err(Errno::EINVAL | Errno::ENOSYS) if how == Source::File && sent == 0 => {
                how = Source::Read;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if how == Source::Read {
        let mut buf = vec![0u8; BUF];
        loop {
            let n = read_some(input, &mut buf)?;
            if n == 0 {
                break;
            }
            write_all(sock.as_fd(), &buf[..n])?;
        }
    }
    if !no_shutdown {
        socket2::SockRef::from(&sock).shutdown(std::net::Shutdown::Write)?;
    }
    Ok(())
}

/// Reads the socket to its end, keeping nothing: stdout is gone, but the
/// session still ends at the peer's FIN, as the buffered path does.
fn discard(sock: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    while read_some(sock, &mut buf)? > 0 {}
    Ok(())
}

/// socket -> stdout with read/write until the peer's FIN.
fn down_copy(sock: BorrowedFd<'_>, out: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = read_some(sock, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if write_all(out, &buf[..n]).is_err() {
            return discard(sock);
        }
    }
}

/// Moves `n` bytes from the staging pipe `r` to `out`. Err(true): splice
/// cannot write to `out` at all (first call, nothing moved); Err(false):
/// `out` failed.
fn unstage(r: BorrowedFd<'_>, out: BorrowedFd<'_>, n: usize, first: bool) -> Result<(), bool> {
    let mut left = n;
    while left > 0 {
        match splice(r, None, out, None, left, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Err(false),
            Ok(m) => left -= m,
            Err(Errno::EINTR) => {}
            Err(Errno::EINVAL) if first && left == n => return Err(true),
            Err(_) => return Err(false),
        }
    }
    Ok(())
}

/// socket -> stdout until the peer's FIN.
fn down(sock: OwnedFd, how: Sink) -> io::Result<()> {
    let stdout = io::stdout();
    let out = stdout.as_fd();
    let s = sock.as_fd();
    let staging = match how {
        Sink::Write => return down_copy(s, out),
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
    let mut first = true;
    loop {
        let target = match &staging {
            Some((_, w)) => w.as_fd(),
            None => out,
        };
        // The staging pipe is emptied after every call, so it never
        // blocks; stdout's pipe blocks when its reader is slow.
        let n = match splice(s, None, target, None, CHUNK, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            // Nothing to read yet (the socket is non-blocking).
            Err(Errno::EAGAIN) => {
                wait(s, PollFlags::POLLIN)?;
                continue;
            }
            // stdout's pipe has no reader left.
            Err(Errno::EPIPE) if staging.is_none() => return discard(s),
            Err(e) => return Err(e.into()),
        };
        if let Some((r, _)) = &staging {
            match unstage(r.as_fd(), out, n, first) {
                Ok(()) => {}
                Err(true) => {
                    // stdout takes no splices after all: pass these bytes
                    // on by hand and copy from now on.
                    let mut buf = vec![0u8; n];
                    let mut got = 0;
                    while got < n {
                        got += read_some(r.as_fd(), &mut buf[got..])?;
                    }
                    if write_all(out, &buf).is_err() {
                        return discard(s);
                    }
                    return down_copy(s, out);
                }
                Err(false) => return discard(s),
            }
        }
        first = false;
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
    // Out of tokio's reactor: the runtime is not woken by every edge of a
    // socket nobody polls there (a wake-up per burst of a fast transfer).
    // It stays non-blocking: a splice from the socket into stdout's pipe
    // holds the pipe's lock while it reads, so a blocking read waiting for
    // the peer would keep stdout's reader from what the pipe already holds.
    let stream = stream.into_std().map_err(RelayError::io("socket"))?;
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
    let mut down_rx = if ctx.cfg.data.send_only {
        None
    } else {
        let how = sink(io::stdout().as_fd());
        let s = dup()?;
        Some(thread(move || down(s, how)))
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
                if up_rx.is_none() || super::session::peer_done(ctx) {
                    return Ok(());
                }
                super::session::end_of_stdout(ctx);
            }
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    }
}
