//! The network end of a session: a TCP or Unix stream, possibly wrapped in
//! TLS, behind one type so that sessions, hubs and exec do not care which.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A connected byte stream.
#[derive(Debug)]
pub enum NetStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    TlsClient(Box<tokio_rustls::client::TlsStream<NetStream>>),
    TlsServer(Box<tokio_rustls::server::TlsStream<NetStream>>),
}

impl NetStream {
    /// The peer as shown in notices and NCAT_REMOTE_*: address and port, or
    /// the Unix socket's path.
    pub fn peer(&self) -> (String, String) {
        match self {
            NetStream::Tcp(s) => tcp_end(s.peer_addr()),
            NetStream::Unix(s) => unix_end(s.peer_addr()),
            NetStream::TlsClient(s) => s.get_ref().0.peer(),
            NetStream::TlsServer(s) => s.get_ref().0.peer(),
        }
    }

    /// Our end, like [`NetStream::peer`].
    pub fn local(&self) -> (String, String) {
        match self {
            NetStream::Tcp(s) => tcp_end(s.local_addr()),
            NetStream::Unix(s) => unix_end(s.local_addr()),
            NetStream::TlsClient(s) => s.get_ref().0.local(),
            NetStream::TlsServer(s) => s.get_ref().0.local(),
        }
    }

    /// "addr:port" (or the path) of the peer, for notices.
    pub fn peer_label(&self) -> String {
        let (a, p) = self.peer();
        if p.is_empty() {
            if a.is_empty() { "unix peer".into() } else { a }
        } else if a.contains(':') {
            format!("[{a}]:{p}")
        } else {
            format!("{a}:{p}")
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, NetStream::TlsClient(_) | NetStream::TlsServer(_))
    }
}

/// One end of a TCP stream as (address, port); "?" when the socket
/// cannot say.
fn tcp_end(addr: io::Result<SocketAddr>) -> (String, String) {
    match addr.map(canonical) {
        Ok(a) => (a.ip().to_string(), a.port().to_string()),
        Err(_) => ("?".into(), "?".into()),
    }
}

/// The address a peer is reported as: an IPv4 peer of a dual-stack
/// socket (`::ffff:198.18.0.1`) as the IPv4 address it is, as ncat
/// reports it. Only for showing: the socket itself still needs the
/// mapped form to send to it.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// One end of a Unix stream as (path, ""); an unnamed end has no path.
pub(crate) fn unix_end(addr: io::Result<tokio::net::unix::SocketAddr>) -> (String, String) {
    let path = addr
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
        .unwrap_or_default();
    (path, String::new())
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            NetStream::Tcp($s) => $e,
            NetStream::Unix($s) => $e,
            NetStream::TlsClient($s) => $e,
            NetStream::TlsServer($s) => $e,
        }
    };
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetStream::Tcp(s) => s.is_write_vectored(),
            NetStream::Unix(s) => s.is_write_vectored(),
            NetStream::TlsClient(s) => s.is_write_vectored(),
            NetStream::TlsServer(s) => s.is_write_vectored(),
        }
    }
}

/// True for the errors that mean "the peer closed without a clean TLS
/// close_notify": treated as an ordinary EOF, as ncat and browsers do.
pub(crate) fn is_unclean_eof(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof
}
