//! A connection to a server that is being checked or talked to: a byte
//! stream (plain TCP, or TLS over it after an implicit or STARTTLS
//! handshake) with a bounded read buffer, and reads that drive a sans-IO
//! decoder from `sockeye_proto` under a per-read timeout and, for a check,
//! an overall deadline. Every way a read can end is a typed [`ReadError`];
//! [`Conn::read_msg`] names it as a one-line [`CheckError`] of a step.
//! The TLS upgrade lives in `tls`, which takes the stream out
//! ([`Conn::detach`]) and puts the TLS stream back ([`Detached::attach`]).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::secs_text;

/// Bytes kept from a server at most (services.md: cap a whole reply at
/// 64 KiB); the decoders have their own, smaller, caps per line.
pub const MAX_BUFFER: usize = 64 * 1024;
/// Bytes read per system call.
const READ_CHUNK: usize = 4096;

/// A byte stream we can read, write and upgrade.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A failed step of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub step: &'static str,
    pub message: String,
}

impl CheckError {
    pub fn new(step: &'static str, message: impl Into<String>) -> Self {
        CheckError {
            step,
            message: message.into(),
        }
    }
}

/// How a read for a message ended without one.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The decoder refused the bytes (its own words).
    #[error("{0}")]
    Invalid(String),
    /// The buffer's cap was reached without a complete message.
    #[error("the server sent {0} bytes without a complete reply")]
    Full(usize),
    /// The server closed the connection; `partial`: the start of an
    /// incomplete message it left behind, escaped.
    #[error("{}", closed_text(partial.as_deref()))]
    Closed { partial: Option<String> },
    /// One read waited its whole timeout.
    #[error("timed out after {}", secs_text(*.0))]
    TimedOut(Duration),
    /// The overall deadline passed (the text is the owner's).
    #[error("{0}")]
    Deadline(&'static str),
    #[error("{}", io_text(.0))]
    Io(std::io::Error),
}

fn closed_text(partial: Option<&str>) -> String {
    match partial {
        None => "the server closed the connection".to_string(),
        Some(p) => format!("the server closed the connection mid-reply after {p:?}"),
    }
}

/// When a whole exchange must end, and what to say when it does.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    text: &'static str,
}

/// A connection to a server.
pub struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    /// Bytes kept at most while a message is incomplete.
    cap: usize,
    read_timeout: Duration,
    /// The whole exchange ends by then, however slowly a server dribbles.
    deadline: Option<Deadline>,
    /// Whether the stream is TLS now (for step names and notes).
    pub tls: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.buf.len())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A connection whose stream is out for an upgrade (a TLS handshake): its
/// timeouts, deadline and cap wait for the new stream.
#[derive(Debug)]
pub struct Detached {
    cap: usize,
    read_timeout: Duration,
    deadline: Option<Deadline>,
}

impl Detached {
    /// The connection again, over `stream` (TLS now), nothing buffered.
    pub fn attach(self, stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            cap: self.cap,
            read_timeout: self.read_timeout,
            deadline: self.deadline,
            tls: true,
        }
    }

    /// `wait`, or less if the deadline comes first.
    pub fn bounded(&self, wait: Duration) -> Duration {
        match self.deadline {
            Some(d) => wait.min(d.at.saturating_duration_since(Instant::now())),
            None => wait,
        }
    }
}

impl Conn {
    /// Each read (and write) waits at most `read_timeout`; the buffer holds
    /// [`MAX_BUFFER`] bytes; no overall deadline.
    pub fn new(stream: Box<dyn Io>, read_timeout: Duration) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            cap: MAX_BUFFER,
            read_timeout,
            deadline: None,
            tls: false,
        }
    }

    /// The whole exchange ends at `at`: a read then fails with `text`.
    pub fn with_deadline(mut self, at: Instant, text: &'static str) -> Conn {
        self.deadline = Some(Deadline { at, text });
        self
    }

    /// Keeps up to `cap` bytes of an incomplete message (default
    /// [`MAX_BUFFER`]).
    pub fn with_cap(mut self, cap: usize) -> Conn {
        self.cap = cap;
        self
    }

    /// A connection whose first bytes were already read by someone else
    /// (`talk` hands over what its conversation left unmatched).
    pub fn with_buffered(stream: Box<dyn Io>, buffered: Vec<u8>, read_timeout: Duration) -> Conn {
        let mut conn = Conn::new(stream, read_timeout);
        conn.buf = buffered;
        conn
    }

    /// The stream back, with the bytes received and not consumed.
    pub fn into_parts(self) -> (Box<dyn Io>, Vec<u8>) {
        (self.stream, self.buf)
    }

    /// The stream out for an upgrade, with the bytes received and not
    /// consumed (an upgrade must refuse them) and the settings to
    /// [`attach`](Detached::attach) the upgraded stream with.
    pub fn detach(self) -> (Box<dyn Io>, Vec<u8>, Detached) {
        let rest = Detached {
            cap: self.cap,
            read_timeout: self.read_timeout,
            deadline: self.deadline,
        };
        (self.stream, self.buf, rest)
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` buffered bytes (decoded by the caller).
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Reads until `decode` finds a complete message at the start of the
    /// buffer, and consumes it. Each read waits at most the read timeout.
    pub async fn read_msg<T, E: std::fmt::Display>(
        &mut self,
        step: &'static str,
        decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
    ) -> Result<T, CheckError> {
        self.read_decoded(decode)
            .await
            .map_err(|err| CheckError::new(step, err.to_string()))
    }

    /// [`read_msg`](Conn::read_msg) with the typed reason, for callers
    /// that word it their own way.
    pub async fn read_decoded<T, E: std::fmt::Display>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
    ) -> Result<T, ReadError> {
        loop {
            match decode(&self.buf) {
                Ok(Some((msg, used))) => {
                    self.buf.drain(..used);
                    return Ok(msg);
                }
                Ok(None) => {}
                Err(err) => return Err(ReadError::Invalid(err.to_string())),
            }
            if self.buf.len() >= self.cap {
                return Err(ReadError::Full(self.cap));
            }
            if self.fill(self.read_timeout).await? == 0 {
                return Err(ReadError::Closed {
                    partial: (!self.buf.is_empty()).then(|| excerpt(&self.buf)),
                });
            }
        }
    }

    /// Waits up to `wait` for the server to volunteer something, then
    /// returns what arrived (possibly nothing) without consuming it. Stops
    /// early once `enough` says the bytes so far tell what they are.
    pub async fn peek_volunteered(
        &mut self,
        wait: Duration,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<Volunteered, CheckError> {
        let deadline = Instant::now() + wait;
        loop {
            if !self.buf.is_empty() && enough(&self.buf) {
                return Ok(Volunteered::Bytes);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.buf.len() >= self.cap {
                return Ok(if self.buf.is_empty() {
                    Volunteered::Silent
                } else {
                    Volunteered::Bytes
                });
            }
            match self.fill(left).await {
                Ok(0) => {
                    return Ok(if self.buf.is_empty() {
                        Volunteered::Closed
                    } else {
                        Volunteered::Bytes
                    });
                }
                Ok(_) => {}
                Err(ReadError::TimedOut(_)) => {
                    return Ok(if self.buf.is_empty() {
                        Volunteered::Silent
                    } else {
                        Volunteered::Bytes
                    });
                }
                Err(err) => return Err(CheckError::new("read", err.to_string())),
            }
        }
    }

    /// Reads once (up to the timeout, and the deadline) into the buffer:
    /// the byte count, 0 at EOF.
    async fn fill(&mut self, wait: Duration) -> Result<usize, ReadError> {
        if let Some(d) = self.deadline {
            let left = d.at.saturating_duration_since(Instant::now());
            if left < wait {
                if left.is_zero() {
                    return Err(ReadError::Deadline(d.text));
                }
                return match self.fill_for(left).await {
                    Err(ReadError::TimedOut(_)) => Err(ReadError::Deadline(d.text)),
                    other => other,
                };
            }
        }
        self.fill_for(wait).await
    }

    async fn fill_for(&mut self, wait: Duration) -> Result<usize, ReadError> {
        let room = self.cap.saturating_sub(self.buf.len()).min(READ_CHUNK);
        if room == 0 {
            return Ok(0);
        }
        let start = self.buf.len();
        self.buf.resize(start + room, 0);
        let read = tokio::time::timeout(wait, self.stream.read(&mut self.buf[start..])).await;
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(err)) => {
                self.buf.truncate(start);
                return Err(ReadError::Io(err));
            }
            Err(_) => {
                self.buf.truncate(start);
                return Err(ReadError::TimedOut(wait));
            }
        };
        self.buf.truncate(start + n);
        Ok(n)
    }

    /// Sends `bytes` (bounded by the read timeout, as a stalled peer must
    /// not hold the check).
    pub async fn send(&mut self, step: &'static str, bytes: &[u8]) -> Result<(), CheckError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.read_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(CheckError::new(step, io_text(&err))),
            Err(_) => Err(CheckError::new(
                step,
                format!("sending timed out after {}", secs_text(self.read_timeout)),
            )),
        }
    }

    /// Closes politely (TLS close_notify, FIN), bounded.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.stream.shutdown()).await;
    }
}

/// What a server did when given the chance to speak first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volunteered {
    Bytes,
    Silent,
    Closed,
}

/// An I/O error in plain words.
pub fn io_text(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::ConnectionReset => "the server reset the connection".into(),
        K::ConnectionAborted => "the connection was aborted".into(),
        K::BrokenPipe => "the server closed the connection".into(),
        K::UnexpectedEof => "the server closed the connection".into(),
        _ => err.to_string(),
    }
}

/// The first bytes of `buf` as escaped text, for messages.
pub fn excerpt(buf: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = &buf[..buf.len().min(MAX)];
    let mut s = shown.escape_ascii().to_string();
    if buf.len() > MAX {
        s.push_str("...");
    }
    s
}
