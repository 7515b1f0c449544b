//! The calculator server: TCP and UDP on the same port.
//!
//! Each TCP connection is one task that reads what the network delivers,
//! answers every complete request in the buffer in order, and writes the
//! answers in one go, so pipelined clients get large batches through with
//! few system calls. Memory per connection is bounded: nothing is
//! allocated until a peer sends something, a partial request is at most
//! 1,028 bytes, and the task stops reading while its answers cannot be
//! written (a client that never reads is dropped after the write timeout).
//!
//! An invalid request has no error response in this protocol: on TCP the
//! answers to every earlier request are sent and the connection is closed;
//! on UDP nothing is sent. Both log the peer, the ID and the reason.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sockeye_proto::calc::{self, ByteOrder, Invalid, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches a busy connection answers before letting others run.
const YIELD_EVERY: u32 = 8;
/// Bytes read per system call on a busy connection.
const READ_CHUNK: usize = 16 * 1024;
/// Largest datagram we accept (anything longer is invalid anyway, but must
/// be received whole to be told apart from a valid one).
const MAX_DATAGRAM: usize = 65_536;
/// After a graceful shutdown starts, how long connections get to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Limits and options, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub order: ByteOrder,
    /// TCP connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// A request that started arriving must be complete within this long.
    pub request_timeout: Duration,
    /// Answers that cannot be written for this long (the client does not
    /// read) end the connection.
    pub write_timeout: Duration,
    /// UDP receive tasks (one per core is right).
    pub udp_workers: usize,
}

/// Serves until `shutdown` fires, then stops accepting, lets connections
/// answer what they already received (for up to [`SHUTDOWN_GRACE`]) and
/// returns. Either transport may be absent (`--tcp-only`, `--udp-only`).
pub async fn serve(
    tcp: Option<TcpListener>,
    udp: Option<UdpSocket>,
    cfg: ServerConfig,
    shutdown: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let tracker = TaskTracker::new();
    if let Some(udp) = udp {
        let udp = Arc::new(udp);
        for _ in 0..cfg.udp_workers.max(1) {
            tracker.spawn(serve_udp(
                Arc::clone(&udp),
                Arc::clone(&cfg),
                shutdown.clone(),
            ));
        }
    }
    if let Some(listener) = tcp {
        accept_loop(listener, Arc::clone(&cfg), shutdown.clone(), &tracker).await;
    } else {
        shutdown.cancelled().await;
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = tracker.len(),
            "connections still busy after the shutdown grace period; closing them"
        );
    }
}

async fn accept_loop(
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    loop {
        // Take a slot before accepting: past the limit, clients wait in
        // the kernel's backlog instead of being accepted and dropped.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let cfg = Arc::clone(&cfg);
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    if let Err(err) = serve_connection(stream, peer, &cfg, shutdown).await {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            Err(err) => {
                // EMFILE and friends: wait for connections to close rather
                // than spin or die (axum and mini-redis do the same).
                tracing::warn!(%err, "accept failed; retrying shortly");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Why a connection was closed by us.
#[derive(Debug, PartialEq, Eq)]
enum Close {
    /// The peer closed (cleanly, between requests).
    Eof,
    /// A rejected request; the earlier answers were sent.
    Rejected,
    /// Shutdown, idle, slow request, truncated request, client not reading.
    Other,
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: &ServerConfig,
    shutdown: CancellationToken,
) -> io::Result<Close> {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    // When the oldest incomplete request started arriving.
    let mut partial_since: Option<Instant> = None;
    let mut batches: u32 = 0;
    loop {
        let deadline = match partial_since {
            Some(t) => t + cfg.request_timeout,
            None => Instant::now() + cfg.idle_timeout,
        };
        let ready = tokio::select! {
            r = stream.readable() => r,
            _ = tokio::time::sleep_until(deadline) => {
                if partial_since.is_some() {
                    tracing::warn!(%peer, "closing: a request took longer than {:?} to arrive", cfg.request_timeout);
                } else {
                    tracing::debug!(%peer, "closing idle connection");
                }
                return Ok(Close::Other);
            }
            _ = shutdown.cancelled() => {
                // Answer what already arrived, then close.
                return finish_on_shutdown(&mut stream, &mut buf, peer, cfg).await;
            }
        };
        ready?;
        // Allocate only once the peer has something to say: idle
        // connections cost no buffer.
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let n = match stream.try_read_buf(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        };
        if n == 0 {
            if !buf.is_empty() {
                tracing::warn!(
                    %peer,
                    bytes = buf.len(),
                    "peer closed in the middle of a request (truncated request dropped)"
                );
                return Ok(Close::Other);
            }
            return Ok(Close::Eof);
        }
        let (consumed, rejected) = answer_all(&buf, cfg.order, peer, &mut out);
        if consumed > 0 {
            buf.drain(..consumed);
            partial_since = None;
        }
        if !buf.is_empty() && partial_since.is_none() {
            partial_since = Some(Instant::now());
        }
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            buf = Vec::new();
        }
        if !out.is_empty() {
            match tokio::time::timeout(cfg.write_timeout, stream.write_all(&out)).await {
                Ok(r) => r?,
                Err(_) => {
                    tracing::warn!(%peer, "closing: the client has not read its answers for {:?}", cfg.write_timeout);
                    return Ok(Close::Other);
                }
            }
            out.clear();
            if out.capacity() > 4 * READ_CHUNK {
                out = Vec::new();
            }
        }
        if rejected {
            let _ = stream.shutdown().await;
            return Ok(Close::Rejected);
        }
        if shutdown.is_cancelled() {
            return Ok(Close::Other);
        }
        // A pipelining client keeps this socket readable without pause, and
        // tokio's own budget lets a task run 128 reads before it must yield
        // (milliseconds here). Yield every few batches instead, so one busy
        // client cannot add milliseconds to everyone's answers, without
        // paying a reschedule per batch.
        batches += 1;
        if batches.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
    }
}

/// On shutdown: read whatever the peer already sent (without waiting for
/// more), answer every complete request, write the answers and close.
async fn finish_on_shutdown(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    cfg: &ServerConfig,
) -> io::Result<Close> {
    loop {
        buf.reserve(READ_CHUNK);
        match stream.try_read_buf(buf) {
            Ok(0) => break,
            Ok(_) => {
                // Bounded: a peer cannot keep us here longer than the
                // grace period, and the buffer is answered in slices.
                if buf.len() > 1 << 20 {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    let mut out = Vec::new();
    answer_all(buf, cfg.order, peer, &mut out);
    if !out.is_empty() {
        let _ = tokio::time::timeout(
            cfg.write_timeout.min(SHUTDOWN_GRACE),
            stream.write_all(&out),
        )
        .await;
    }
    let _ = stream.shutdown().await;
    Ok(Close::Other)
}

/// Answers every complete request at the start of `buf` into `out`.
/// Returns the bytes consumed and whether a request was rejected (answering
/// stops there; the caller closes the connection after writing `out`).
fn answer_all(buf: &[u8], order: ByteOrder, peer: SocketAddr, out: &mut Vec<u8>) -> (usize, bool) {
    let mut at = 0;
    while let Some((answer, len)) = calc::with_request(&buf[at..], order, |id, op, numbers| {
        (id, op, evaluate_iter(op, numbers))
    }) {
        at += len;
        match answer {
            (id, _, Ok(result)) => Response { id, result }.encode(order, out),
            (id, op, Err(invalid)) => {
                log_rejected(peer, id, op, len, invalid);
                return (at, true);
            }
        }
    }
    (at, false)
}

fn log_rejected(peer: SocketAddr, id: u32, op: [u8; 3], len: usize, invalid: Invalid) {
    let count = (len - calc::HEADER_LEN) / 4;
    tracing::warn!(
        %peer,
        id,
        reason = invalid.reason(),
        op = %String::from_utf8_lossy(&op),
        numbers = count,
        "rejected request: {invalid}"
    );
}

/// Evaluates without collecting the numbers: sums and extremes fold over
/// the iterator; only a product that overflows i64 needs to look again.
fn evaluate_iter(op: [u8; 3], numbers: &mut dyn Iterator<Item = i32>) -> Result<i32, Invalid> {
    use sockeye_proto::calc::Op;
    match Op::from_code(op) {
        Some(Op::Sum) => {
            let total: i64 = numbers.map(i64::from).sum();
            i32::try_from(total).map_err(|_| Invalid::Overflow)
        }
        Some(Op::Min) => numbers.min().ok_or(Invalid::Empty),
        Some(Op::Max) => numbers.max().ok_or(Invalid::Empty),
        // Products are rare and short; the codec's exact rules apply.
        _ => {
            let collected: Vec<i32> = numbers.collect();
            calc::evaluate(op, &collected)
        }
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, cfg: Arc<ServerConfig>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(calc::RESPONSE_LEN);
    loop {
        let (len, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(err) => {
                    // ICMP errors from earlier replies surface here
                    // (ECONNREFUSED); they are about a peer, not us.
                    tracing::debug!(%err, "udp receive error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let datagram = &buf[..len];
        let request = match calc::decode_datagram(datagram, cfg.order) {
            Ok(r) => r,
            Err(err) => {
                let id = match err {
                    calc::DatagramError::WrongLength { id, .. } => Some(id),
                    calc::DatagramError::TooShort { .. } => None,
                };
                tracing::warn!(%peer, id, reason = "bad-length", "rejected datagram: {err}");
                continue;
            }
        };
        match request.evaluate() {
            Ok(result) => {
                out.clear();
                Response {
                    id: request.id,
                    result,
                }
                .encode(cfg.order, &mut out);
                if let Err(err) = socket.send_to(&out, peer).await {
                    tracing::debug!(%peer, %err, "udp send failed");
                }
            }
            Err(invalid) => log_rejected(peer, request.id, request.op, len, invalid),
        }
    }
}
