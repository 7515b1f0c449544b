//! The HTTP proxy server of listen mode (`sockeye cat -l --proxy-type http`, ncat's
//! `ncat_proxy.c`): every client the listener lets in (the `--allow`/`--deny` rules, `-m`,
//! `--ssl`) gets its own task, which reads one request head and serves it. CONNECT opens a
//! tunnel to `host:port` (bytes the client sent after its head go first), GET, HEAD and POST
//! are sent on to an `http://` origin as HTTP/1.0 without the hop-by-hop fields and their
//! answer comes back the same way, then the connection closes (one request per connection,
//! as ncat). With `--proxy-auth USER:PASS` a request without right Basic or Digest
//! credentials gets ncat's 407 challenge.
//!
//! The bytes are `sockeye_proto`'s: `http_request` reads the head and writes the heads sent
//! on, `chunked` re-chunks a chunked request body and unchunks a chunked answer, and
//! `proxy_auth` reads and checks credentials. Memory per client is bounded: a head is read
//! into at most [`http_request::MAX_HEAD_BYTES`] plus one read, bodies pass through a buffer
//! of [`CHUNK`] bytes, and every wait has a deadline ([`HEAD_TIMEOUT`],
//! [`CONNECT_TIMEOUT`] unless `-w` says otherwise, [`RESPONSE_HEAD_TIMEOUT`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockeye_proto::chunked::{ChunkedDecoder, LAST_CHUNK, Piece, encode_chunk};
use sockeye_proto::http;
use sockeye_proto::http_request::{
    self, Body, Method, ProxyRequest, ResponseBody, client_response_head, status_response,
};
use sockeye_proto::proxy_auth::{self, Verdict};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::listener::{self, Listener};
use super::stream::NetStream;
use super::{Ctx, LINGER, RelayError, connect};

/// Time a client has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to reach the origin when `-w` is not given.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the origin has to send its response head once the request is sent.
pub const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest read from either side at once (the body buffer).
pub const CHUNK: usize = 16 * 1024;
/// Bytes of a refused client's request read and dropped after the answer, so that closing
/// with unread bytes does not reset the connection before the client reads the answer.
const DRAIN_LIMIT: usize = 1 << 20;
/// Bytes of the nonce secret.
const SECRET_LEN: usize = 16;

/// What every client task shares.
struct Server {
    auth: Option<(String, String)>,
    /// The secret the Digest nonces are made with (new for every run, as ncat's).
    secret: [u8; SECRET_LEN],
    /// The port we listen on: a GET to it on one of our addresses would loop.
    port: Option<u16>,
}

/// How a request ended short of being served.
enum Fail {
    /// Answer with this status (ncat's text) and close.
    Status(u16),
    /// Answer with a 407 challenge (`stale=true` when only the nonce was too old).
    Challenge {
        stale: bool,
    },
    /// Close without an answer (the client went away, or the origin's answer was unusable
    /// once it was too late for a status of our own, as ncat).
    Close,
    Io(std::io::Error),
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// Serves proxy clients until the run is shut down.
pub(crate) async fn serve(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), RelayError> {
    let server = Arc::new(Server {
        auth: ctx.cfg.proxy_server.as_ref().and_then(|p| p.auth.clone()),
        secret: rand::random(),
        port: listener.local_port(),
    });
    listener::each_client(ctx, listener, tls, move |ctx, stream| {
        let server = server.clone();
        async move {
            tokio::select! {
                () = client(&ctx, &server, stream) => {}
                () = ctx.shutdown.cancelled() => {}
            }
            Ok(())
        }
    })
    .await;
    Ok(())
}

/// One client: one request, answered, then the connection closes.
async fn client(ctx: &Ctx, server: &Server, mut c: NetStream) {
    let mut buf = Vec::with_capacity(CHUNK);
    let outcome = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut c, &mut buf)).await {
        Err(_) => Err(Fail::Close),
        Ok(Err(f)) => Err(f),
        Ok(Ok((req, used))) => {
            let rest = buf.split_off(used);
            tracing::debug!(method = req.method.as_str(), target = %req.target.authority(), path = %req.target.path, "proxy request");
            match authorize(server, &req) {
                Err(f) => Err(f),
                Ok(()) if req.method == Method::Connect => tunnel(ctx, &mut c, &req, rest).await,
                Ok(()) => forward(ctx, server, &mut c, &req, rest).await,
            }
        }
    };
    let answer = match outcome {
        Ok(()) | Err(Fail::Close) => None,
        Err(Fail::Io(e)) => {
            tracing::debug!(%e, "proxy client");
            None
        }
        Err(Fail::Status(code)) => Some(status_response(code).to_string()),
        Err(Fail::Challenge { stale }) => {
            let (secs, micros) = now();
            let nonce = proxy_auth::make_nonce(&server.secret, secs, micros);
            Some(proxy_auth::challenge_response(&nonce, stale))
        }
    };
    if let Some(text) = answer {
        refuse(&mut c, text.as_bytes()).await;
    } else {
        let _ = c.shutdown().await;
    }
}

/// Reads until a whole request head is in `buf` (never past the head's cap and one read):
/// the head and its length. A bad or overlong head is its status; an end of input before
/// the head is whole is a 400, as ncat.
async fn read_head(c: &mut NetStream, buf: &mut Vec<u8>) -> Result<(ProxyRequest, usize), Fail> {
    read_decoded(c, buf, http_request::decode, |e| {
        Fail::Status(e.map_or(400, |e| e.status()))
    })
    .await
}

/// Reads onto `buf` until `decode` finds a whole message at its start (each codec caps
/// what it waits for, so `buf` stays within that cap and one read). `fail` makes the
/// outcome of the codec's error, or of the end of input (None) before the message is whole.
async fn read_decoded<R, T, E>(
    r: &mut R,
    buf: &mut Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Option<T>, E>,
    fail: impl Fn(Option<E>) -> Fail,
) -> Result<T, Fail>
where
    R: AsyncRead + Unpin,
    E: std::fmt::Display,
{
    loop {
        match decode(buf) {
            Ok(Some(x)) => return Ok(x),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(%e, "refused");
                return Err(fail(Some(e)));
            }
        }
        if read_more(r, buf).await? == 0 {
            return Err(fail(None));
        }
    }
}

/// Reads at most [`CHUNK`] more bytes onto `buf`; 0 at the end of input.
async fn read_more<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(CHUNK);
    let n = r.take(CHUNK as u64).read_buf(buf).await;
    match n {
        Err(e) if super::stream::is_unclean_eof(&e) => Ok(0),
        other => other,
    }
}

/// Writes a refusal, ends our side, and reads (and drops) what the client still sends for
/// a moment, so that its unread bytes do not turn our close into a reset that could destroy
/// the answer before the client reads it.
async fn refuse(c: &mut NetStream, answer: &[u8]) {
    if c.write_all(answer).await.is_err() || c.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < DRAIN_LIMIT {
            match c.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// `--proxy-auth`: the best `Proxy-Authorization` credentials (Digest over Basic) must be
/// right; none, malformed or wrong ones are challenged.
fn authorize(server: &Server, req: &ProxyRequest) -> Result<(), Fail> {
    let Some((user, pass)) = &server.auth else {
        return Ok(());
    };
    let values = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Proxy-Authorization"))
        .map(|(_, v)| v.as_str());
    let creds = match proxy_auth::best_credentials(values) {
        Ok(Some(c)) => c,
        Ok(None) | Err(_) => return Err(Fail::Challenge { stale: false }),
    };
    let method = req.method.as_str();
    match proxy_auth::check(&creds, user, pass, method, &server.secret, now()) {
        Verdict::Accepted => Ok(()),
        Verdict::Refused => Err(Fail::Challenge { stale: false }),
        Verdict::Stale => Err(Fail::Challenge { stale: true }),
    }
}

/// Connects to the request's target within the connect limit; any failure (no address of
/// the allowed family, refused, timed out) is ncat's 504.
async fn open(ctx: &Ctx, host: &str, port: u16) -> Result<TcpStream, Fail> {
    let limit = ctx.cfg.timing.connect.unwrap_or(CONNECT_TIMEOUT);
    match tokio::time::timeout(limit, connect::tcp(ctx, host, port)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            tracing::debug!(%e, "proxy connect failed");
            Err(Fail::Status(504))
        }
        Err(_) => Err(Fail::Status(504)),
    }
}

/// CONNECT: 200, then the client's early bytes, then bytes both ways until both sides
/// are done (each side's end of input is passed on as a half-close).
async fn tunnel(
    ctx: &Ctx,
    c: &mut NetStream,
    req: &ProxyRequest,
    early: Vec<u8>,
) -> Result<(), Fail> {
    let mut origin = open(ctx, &req.target.host, req.target.port).await?;
    c.write_all(status_response(200).as_bytes()).await?;
    if !early.is_empty() {
        origin.write_all(&early).await?;
    }
    let _ = tokio::io::copy_bidirectional(c, &mut origin).await;
    Ok(())
}

/// Whether `ip` is one of this machine's addresses (it can be bound to).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// GET, HEAD, POST: the request (and its body) on to the origin, its answer back.
async fn forward(
    ctx: &Ctx,
    server: &Server,
    c: &mut NetStream,
    req: &ProxyRequest,
    mut rest: Vec<u8>,
) -> Result<(), Fail> {
    let bad = |e: http_request::RequestError| {
        tracing::debug!(%e, "proxy request refused");
        Fail::Status(e.status())
    };
    let body = req.body().map_err(bad)?;
    let head = req.origin_head().map_err(bad)?;
    let t = &req.target;
    if Some(t.port) == server.port {
        // RFC 9110 7.3: a proxy must not send a request to itself.
        let addrs = connect::resolve(ctx, &t.host, t.port)
            .await
            .map_err(|_| Fail::Status(504))?;
        if addrs.iter().any(|a| is_local(a.ip())) {
            tracing::debug!(target = %t.authority(), "proxy loop refused");
            return Err(Fail::Status(403));
        }
    }
    let mut origin = open(ctx, &t.host, t.port).await?;
    origin
        .write_all(&head)
        .await
        .map_err(|_| Fail::Status(504))?;
    match body {
        Body::None => {}
        Body::Length(n) => {
            copy_exact(&mut rest, c, &mut origin, n).await?;
        }
        Body::Chunked => rechunk(&mut rest, c, &mut origin).await?,
    }
    answer(c, &mut origin, req.method).await
}

/// Passes `n` body bytes from `from` (after the ones already in `pending`) to `to`; an
/// early end of input just ends the body (ncat-test.pl's "long Content-Length").
async fn copy_exact<R, W>(
    pending: &mut Vec<u8>,
    from: &mut R,
    to: &mut W,
    mut n: u64,
) -> Result<(), Fail>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let take = usize::try_from(n).map_or(pending.len(), |n| n.min(pending.len()));
        to.write_all(&pending[..take]).await?;
        pending.drain(..take);
        n -= take as u64;
        if n == 0 || read_more(from, pending).await? == 0 {
            return Ok(());
        }
    }
}

/// A chunked request body: decoded from the client and written to the origin as fresh
/// chunks, then the last chunk (also when the client ends right after its last chunk,
/// before the trailer's blank line). A malformed body is a 400; a body cut short ends with
/// the client.
async fn rechunk<W>(pending: &mut Vec<u8>, c: &mut NetStream, origin: &mut W) -> Result<(), Fail>
where
    W: AsyncWrite + Unpin,
{
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::with_capacity(CHUNK + 32);
    loop {
        let mut at = 0;
        loop {
            match dec.decode(&pending[at..]) {
                Ok(Some((piece, used))) => {
                    if let Piece::Data(d) = piece {
                        encode_chunk(d, &mut out);
                    }
                    at += used;
                    if piece == Piece::End {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%e, "chunked request body refused");
                    return Err(Fail::Status(400));
                }
            }
        }
        pending.drain(..at);
        if !out.is_empty() {
            origin.write_all(&out).await?;
            out.clear();
        }
        if dec.is_done() {
            origin.write_all(LAST_CHUNK).await?;
            return Ok(());
        }
        if read_more(c, pending).await? == 0 {
            if dec.data_complete() {
                origin.write_all(LAST_CHUNK).await?;
            }
            return Ok(());
        }
    }
}

/// Reads the origin's answer head (1xx interim answers skipped) and sends the client its
/// HTTP/1.0 form and the body, unchunked if it came chunked. An origin that closes or
/// sends garbage before its head is whole gets the client nothing but a close, as ncat.
async fn answer(c: &mut NetStream, origin: &mut TcpStream, method: Method) -> Result<(), Fail> {
    let mut buf = Vec::with_capacity(CHUNK);
    let (head, used) = loop {
        let read = read_decoded(origin, &mut buf, http::decode_response_head, |_| {
            Fail::Close
        });
        let read = tokio::time::timeout(RESPONSE_HEAD_TIMEOUT, read);
        let (head, used) = read.await.map_err(|_| Fail::Close)??;
        if (100..200).contains(&head.status) && head.status != 101 {
            buf.drain(..used);
            continue;
        }
        break (head, used);
    };
    let mut rest = buf.split_off(used);
    let (bytes, body) = client_response_head(method, head.status, &head.reason, &head.headers)
        .map_err(|_| Fail::Close)?;
    c.write_all(&bytes).await?;
    match body {
        ResponseBody::None => {}
        ResponseBody::Length(n) => copy_exact(&mut rest, origin, c, n).await?,
        ResponseBody::UntilClose => copy_exact(&mut rest, origin, c, u64::MAX).await?,
        ResponseBody::Chunked => unchunk(&mut rest, origin, c).await?,
    }
    c.shutdown().await?;
    Ok(())
}

/// A chunked answer's data, passed on plain until its end (or the origin's).
async fn unchunk<R, W>(pending: &mut Vec<u8>, origin: &mut R, c: &mut W) -> Result<(), Fail>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut dec = ChunkedDecoder::new();
    loop {
        let mut at = 0;
        while let Some((piece, used)) = dec.decode(&pending[at..]).map_err(|_| Fail::Close)? {
            if let Piece::Data(d) = piece {
                c.write_all(d).await?;
            }
            at += used;
            if piece == Piece::End {
                return Ok(());
            }
        }
        pending.drain(..at);
        if read_more(origin, pending).await? == 0 {
            return Ok(());
        }
    }
}
