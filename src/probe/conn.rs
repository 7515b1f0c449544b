//! One check's connection: a byte stream (plain TCP, or TLS over it after
//! an implicit or STARTTLS handshake) with a bounded read buffer, and reads
//! that drive a sans-IO decoder from `sockeye_proto` under a per-read
//! timeout. Every way a read can end is a typed, one-line [`CheckError`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::report::secs_text;
use crate::tls::{HandshakeError, Scanner, TlsFacts};

/// Bytes kept from a server at most (services.md: cap a whole reply at
/// 64 KiB); the decoders have their own, smaller, caps per line.
pub const MAX_BUFFER: usize = 64 * 1024;
/// The message when a check runs out of its overall time.
pub const CHECK_DEADLINE: &str =
    "the check ran out of time (--check-timeout): the server sends too slowly";
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

/// The connection of one check.
pub struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    read_timeout: Duration,
    /// The whole check ends by then, however slowly a server dribbles.
    deadline: Instant,
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

impl Conn {
    pub fn new(stream: Box<dyn Io>, read_timeout: Duration, deadline: Instant) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            read_timeout,
            deadline,
            tls: false,
        }
    }

    /// A connection whose first bytes were already read by someone else
    /// (`talk` hands over what its conversation left unmatched).
    pub fn with_buffered(stream: Box<dyn Io>, buffered: Vec<u8>, read_timeout: Duration) -> Conn {
        Conn {
            stream,
            buf: buffered,
            read_timeout,
            // The caller bounds the whole exchange; each read is still
            // bounded by the read timeout.
            deadline: Instant::now() + Duration::from_secs(24 * 3600),
            tls: false,
        }
    }

    /// The stream back, with the bytes received and not consumed.
    pub fn into_parts(self) -> (Box<dyn Io>, Vec<u8>) {
        (self.stream, self.buf)
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
        loop {
            match decode(&self.buf) {
                Ok(Some((msg, used))) => {
                    self.buf.drain(..used);
                    return Ok(msg);
                }
                Ok(None) => {}
                Err(err) => return Err(CheckError::new(step, err.to_string())),
            }
            if self.buf.len() >= MAX_BUFFER {
                return Err(CheckError::new(
                    step,
                    format!("the server sent {MAX_BUFFER} bytes without a complete reply"),
                ));
            }
            match self.fill(self.read_timeout).await {
                Ok(0) => return Err(CheckError::new(step, self.closed_text())),
                Ok(_) => {}
                Err(err) => return Err(CheckError::new(step, err)),
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
            if left.is_zero() || self.buf.len() >= MAX_BUFFER {
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
                Err(err) if err.starts_with("timed out") => {
                    return Ok(if self.buf.is_empty() {
                        Volunteered::Silent
                    } else {
                        Volunteered::Bytes
                    });
                }
                Err(err) => return Err(CheckError::new("read", err)),
            }
        }
    }

    /// Reads once (up to the timeout) into the buffer: the byte count, 0 at
    /// EOF, or a message.
    async fn fill(&mut self, wait: Duration) -> Result<usize, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < wait {
            if left.is_zero() {
                return Err(CHECK_DEADLINE.to_string());
            }
            return match self.fill_for(left).await {
                Err(e) if e.starts_with("timed out") => Err(CHECK_DEADLINE.to_string()),
                other => other,
            };
        }
        self.fill_for(wait).await
    }

    async fn fill_for(&mut self, wait: Duration) -> Result<usize, String> {
        let room = MAX_BUFFER.saturating_sub(self.buf.len()).min(READ_CHUNK);
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
                return Err(io_text(&err));
            }
            Err(_) => {
                self.buf.truncate(start);
                return Err(format!("timed out after {}", secs_text(wait)));
            }
        };
        self.buf.truncate(start + n);
        Ok(n)
    }

    fn closed_text(&self) -> String {
        if self.buf.is_empty() {
            "the server closed the connection".to_string()
        } else {
            format!(
                "the server closed the connection mid-reply after {:?}",
                excerpt(&self.buf)
            )
        }
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

    /// Runs a TLS handshake over this connection (after a STARTTLS reply,
    /// or at once for implicit TLS). Bytes the server sent before the
    /// handshake are an error: a server (or a man in the middle) must not
    /// inject plaintext that would later read as protected.
    pub async fn upgrade(
        self,
        scanner: &Scanner,
        sni: &str,
        timeout: Duration,
    ) -> Result<(Conn, TlsFacts), (HandshakeError, Option<Conn>)> {
        if !self.buf.is_empty() {
            let reason = format!(
                "the server sent {:?} before the handshake",
                excerpt(&self.buf)
            );
            return Err((
                HandshakeError::Failed {
                    reason,
                    offered: "TLSv1.3, TLSv1.2".into(),
                    spoke_tls: false,
                },
                Some(self),
            ));
        }
        let read_timeout = self.read_timeout;
        let deadline = self.deadline;
        let timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        match scanner.handshake(self.stream, sni, timeout).await {
            Ok((stream, facts)) => {
                let mut conn = Conn::new(Box::new(stream), read_timeout, deadline);
                conn.tls = true;
                Ok((conn, facts))
            }
            Err(err) => Err((err, None)),
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
