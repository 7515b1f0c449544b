//! `-e PROG` and `-c CMD`: a child process per session whose standard
//! input is what the peer sends and whose standard output goes back to it.
//!
//! The child gets ncat's variables (NCAT_REMOTE_ADDR, NCAT_REMOTE_PORT,
//! NCAT_LOCAL_ADDR, NCAT_LOCAL_PORT, NCAT_PROTO) and its own process group,
//! so that when the session ends the whole pipeline (`cat | tail -f`) goes
//! with it instead of lingering. `--stderr` sends the child's stderr to the
//! peer too; `--pty` gives it a terminal.

use std::os::fd::OwnedFd;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::Command;

use super::RelayError;

/// Clients at once when `-e`/`-c` starts a child for each and `-m` is not
/// given: ncat's default `--max-conns` (the Ncat guide, "Access Control").
/// Without it, a crowd of connections is a crowd of shells.
pub const DEFAULT_MAX_CONNS: usize = 100;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecCommand {
    /// `-e`: a program and its arguments (split on whitespace, as ncat does).
    Program(Vec<String>),
    /// `-c`: a command line for `/bin/sh -c`.
    Shell(String),
}

/// The exec settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: ExecCommand,
    /// `--pty`: run the child on a pseudo-terminal.
    pub pty: bool,
    /// `--stderr`: the child's stderr goes to the peer too.
    pub stderr: bool,
}

impl ExecSpec {
    pub fn describe(&self) -> String {
        match &self.command {
            ExecCommand::Program(argv) => argv.join(" "),
            ExecCommand::Shell(line) => line.clone(),
        }
    }
}

/// The NCAT_* values of one session.
#[derive(Debug, Clone, Default)]
pub struct ExecEnv {
    pub remote_addr: String,
    pub remote_port: String,
    pub local_addr: String,
    pub local_port: String,
    pub proto: &'static str,
}

/// The running child: its output to read, its input to write, and a guard
/// that ends its process group when the session is over.
pub(crate) struct Spawned {
    pub(crate) output: Box<dyn AsyncRead + Unpin + Send>,
    pub(crate) input: Box<dyn AsyncWrite + Unpin + Send>,
    pub(crate) guard: ChildGuard,
}

/// Ends the child's process group on drop (SIGTERM), unless it is gone.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Option<tokio::process::Child>,
    pgid: Option<Pid>,
    // The pty's controller side must outlive the child's use of it.
    _pty: Option<Box<dyn std::any::Any + Send>>,
}

impl ChildGuard {
    /// Waits a little for the child to exit by itself (its output ended).
    pub(crate) async fn wait_briefly(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), child.wait()).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // ESRCH: the whole group is gone already, nothing to do.
            let _ = killpg(pgid, Signal::SIGTERM);
        }
        // The tokio child, dropped, is reaped by the runtime's orphan queue.
        self.child.take();
    }
}

fn command(spec: &ExecSpec, env: &ExecEnv) -> Command {
    let mut cmd = match &spec.command {
        ExecCommand::Program(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        ExecCommand::Shell(line) => {
            // As in ncat, the shell's parent is a process of its own per
            // client, so `$PPID` tells clients apart (seed chat example 5):
            // an outer shell runs the command in a child shell and waits
            // (the `; exit` keeps it from exec'ing the command in place).
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg("/bin/sh -c \"$1\"; exit $?")
                .arg("sh")
                .arg(line);
            c
        }
    };
    cmd.env("NCAT_REMOTE_ADDR", &env.remote_addr)
        .env("NCAT_REMOTE_PORT", &env.remote_port)
        .env("NCAT_LOCAL_ADDR", &env.local_addr)
        .env("NCAT_LOCAL_PORT", &env.local_port)
        .env("NCAT_PROTO", env.proto);
    cmd
}

/// Starts the child of one session.
pub(crate) fn spawn(spec: &ExecSpec, env: &ExecEnv) -> Result<Spawned, RelayError> {
    let fail = |source| RelayError::Exec {
        cmd: spec.describe(),
        source,
    };
    if spec.pty {
        return spawn_pty(spec, env).map_err(fail);
    }
    let mut cmd = command(spec, env);
    cmd.process_group(0).stdin(Stdio::piped());
    let merged = if spec.stderr {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| fail(std::io::Error::from(e)))?;
        let w2: OwnedFd = w.try_clone().map_err(fail)?;
        cmd.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
        Some(r)
    } else {
        cmd.stdout(Stdio::piped());
        None
    };
    let mut child = cmd.spawn().map_err(fail)?;
    // The parent's copies of the write end were moved into `cmd`; drop it
    // so that the child's exit is the reader's EOF.
    drop(cmd);
    let input = child.stdin.take().ok_or_else(|| fail(broken("stdin")))?;
    let output: Box<dyn AsyncRead + Unpin + Send> = match merged {
        Some(r) => Box::new(tokio::net::unix::pipe::Receiver::from_owned_fd(r).map_err(fail)?),
        None => Box::new(child.stdout.take().ok_or_else(|| fail(broken("stdout")))?),
    };
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    Ok(Spawned {
        output,
        input: Box::new(input),
        guard: ChildGuard {
            child: Some(child),
            pgid,
            _pty: None,
        },
    })
}

fn broken(what: &str) -> std::io::Error {
    std::io::Error::other(format!("no {what} pipe"))
}

fn spawn_pty(spec: &ExecSpec, env: &ExecEnv) -> std::io::Result<Spawned> {
    let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
    let _ = pty.resize(pty_process::Size::new(24, 80));
    let mut cmd = match &spec.command {
        ExecCommand::Program(argv) => pty_process::Command::new(&argv[0]).args(&argv[1..]),
        ExecCommand::Shell(line) => pty_process::Command::new("/bin/sh").arg("-c").arg(line),
    };
    cmd = cmd
        .env("NCAT_REMOTE_ADDR", &env.remote_addr)
        .env("NCAT_REMOTE_PORT", &env.remote_port)
        .env("NCAT_LOCAL_ADDR", &env.local_addr)
        .env("NCAT_LOCAL_PORT", &env.local_port)
        .env("NCAT_PROTO", env.proto);
    let child = cmd.spawn(pts).map_err(std::io::Error::other)?;
    // pty-process makes the child a session leader: its pid is its group.
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let (r, w) = pty.into_split();
    Ok(Spawned {
        output: Box::new(PtyReader(r)),
        input: Box::new(w),
        guard: ChildGuard {
            child: Some(child),
            pgid,
            _pty: None,
        },
    })
}

/// A pty reports the child's hang-up as EIO, not as EOF: make it an EOF.
struct PtyReader(pty_process::OwnedReadPty);

impl AsyncRead for PtyReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => {
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
