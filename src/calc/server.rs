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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::peers::{Peers, Slot};

/// Batches a busy connection answers before letting others run.
const YIELD_EVERY: u32 = 8;
/// Bytes read per system call on a busy connection.
const READ_CHUNK: usize = 16 * 1024;
/// Largest datagram we accept (anything longer is invalid anyway, but must
/// be received whole to be told apart from a valid one).
const MAX_DATAGRAM: usize = 65_536;
/// After a graceful shutdown starts, how long connections get to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Closing with unread bytes in the receive queue makes the kernel send a
/// reset that destroys answers not yet delivered. So before closing we send
/// our FIN and read (and discard) what the peer still sends, until it
/// closes or this long has passed.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// ... or until this many bytes were discarded.
const LINGER_MAX_BYTES: usize = 4 << 20;
/// Rejected-request log lines per second; the rest are counted and the
/// count is logged when the next second opens (a flood of bad requests must
/// not stall the server on a slow stderr).
const REJECT_LOGS_PER_SEC: u32 = 20;
/// A connection quiet for this long releases its buffers.
const RELEASE_AFTER: Duration = Duration::from_millis(50);
/// Connections accepted while every slot is taken, each waiting for one (a
/// newcomer whose slot an idle connection is giving up waits here a
/// moment); past this, clients wait in the listen backlog.
const MAX_WAITING: usize = 64;
/// Datagrams answered after shutdown from what is already queued.
const UDP_SHUTDOWN_DRAIN: usize = 10_000;

/// Limits and options, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub order: ByteOrder,
    /// TCP connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// TCP connections one peer address may hold (served or waiting).
    pub max_per_address: usize,
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
    let max = cfg.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    // Accepted connections: those served, and a few waiting for a slot.
    let admitted = Arc::new(Semaphore::new(max + MAX_WAITING));
    let peers = Peers::new(cfg.max_per_address);
    loop {
        // Past the limit, clients wait in the kernel's backlog instead of
        // being accepted and dropped.
        let ticket = tokio::select! {
            p = Arc::clone(&admitted).acquire_owned() => match p {
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
                let entry = match peers.admit(peer.ip()) {
                    Ok(entry) => entry,
                    Err(held) => {
                        if PEER_CAP_LOG.admit() {
                            tracing::warn!(
                                %peer,
                                held,
                                "refused: this address holds {held} connections already (--max-per-address)"
                            );
                        }
                        continue;
                    }
                };
                let free = Arc::clone(&slots).try_acquire_owned().ok();
                // Full: the longest-idle connection of the heaviest other
                // address makes room, so one host cannot lock others out.
                let handoff = match free {
                    Some(_) => None,
                    None => peers.reclaim_for(peer.ip()),
                };
                let (cfg, shutdown, slots, peers) = (
                    Arc::clone(&cfg),
                    shutdown.clone(),
                    Arc::clone(&slots),
                    Arc::clone(&peers),
                );
                tracker.spawn(async move {
                    let permit = match free {
                        Some(p) => p,
                        None => match wait_for_slot(slots, handoff, &shutdown).await {
                            Some(p) => p,
                            None => return,
                        },
                    };
                    let slot = peers.serving(&entry);
                    if let Err(err) =
                        serve_connection(stream, peer, &cfg, shutdown, &slot, &peers).await
                    {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                    drop(entry);
                    slot.hand_over(permit);
                    drop(ticket);
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

/// A slot for a connection accepted while the server was full: the one an
/// idle connection hands over (`handoff`), or the next to free up.
async fn wait_for_slot(
    slots: Arc<Semaphore>,
    handoff: Option<oneshot::Receiver<OwnedSemaphorePermit>>,
    shutdown: &CancellationToken,
) -> Option<OwnedSemaphorePermit> {
    let mut handoff = handoff;
    loop {
        tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => return p.ok(),
            p = async { handoff.as_mut().expect("checked").await }, if handoff.is_some() => {
                match p {
                    Ok(p) => return Some(p),
                    // The idle connection went without handing over.
                    Err(_) => handoff = None,
                }
            }
            _ = shutdown.cancelled() => return None,
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
    slot: &Slot,
    peers: &Peers,
) -> io::Result<Close> {
    let _ = stream.set_nodelay(true);
    // Both buffers are empty (unallocated) while the connection waits, so
    // an idle connection costs no buffer memory, whatever it sent before.
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    // When the oldest incomplete request started arriving.
    let mut partial_since: Option<Instant> = None;
    let mut batches: u32 = 0;
    let mut idle = false;
    loop {
        if idle != partial_since.is_none() {
            idle = partial_since.is_none();
            slot.set_idle(idle, peers);
        }
        let deadline = match partial_since {
            Some(t) => t + cfg.request_timeout,
            None => Instant::now() + cfg.idle_timeout,
        };
        // A connection that goes quiet gives back its buffers after a short
        // while; a pipelining one (readable again at once) keeps them.
        if buf.capacity() > 0 || out.capacity() > 0 {
            tokio::select! {
                // Readable first: a pipelining connection (readable at once)
                // never even arms the timer.
                biased;
                _ = stream.readable() => {}
                _ = tokio::time::sleep(RELEASE_AFTER) => release_idle(&mut buf, &mut out),
            }
        }
        let ready = tokio::select! {
            r = stream.readable() => r,
            _ = slot.reclaimed.cancelled(), if partial_since.is_none() => {
                // No request in progress, so nothing is lost; no lingering
                // either, as the newcomer waits for this slot.
                tracing::debug!(%peer, "closing an idle connection: the server is full");
                let _ = stream.shutdown().await;
                return Ok(Close::Other);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if partial_since.is_some() {
                    if SLOW_LOG.admit() {
                        tracing::warn!(%peer, "closing: a request took longer than {:?} to arrive", cfg.request_timeout);
                    }
                } else {
                    tracing::debug!(%peer, "closing idle connection");
                }
                close_gracefully(&mut stream).await;
                return Ok(Close::Other);
            }
            _ = shutdown.cancelled() => {
                // Answer what already arrived, then close.
                return finish_on_shutdown(&mut stream, &mut buf, peer, cfg).await;
            }
        };
        ready?;
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
                if TRUNCATED_LOG.admit() {
                    tracing::warn!(
                        %peer,
                        bytes = buf.len(),
                        "peer closed in the middle of a request (truncated request dropped)"
                    );
                }
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
        if !out.is_empty() {
            match tokio::time::timeout(cfg.write_timeout, stream.write_all(&out)).await {
                Ok(r) => r?,
                Err(_) => {
                    // It does not read: a reset is what it has earned.
                    if SLOW_LOG.admit() {
                        tracing::warn!(%peer, "closing: the client has not read its answers for {:?}", cfg.write_timeout);
                    }
                    return Ok(Close::Other);
                }
            }
            out.clear();
        }
        if rejected {
            close_gracefully(&mut stream).await;
            return Ok(Close::Rejected);
        }
        if shutdown.is_cancelled() {
            return finish_on_shutdown(&mut stream, &mut buf, peer, cfg).await;
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

/// Frees the buffers of a connection that is about to wait: `out` is empty
/// between batches, and `buf` holds at most one partial request (under
/// 1,028 bytes), which moves into an allocation of its own size.
fn release_idle(buf: &mut Vec<u8>, out: &mut Vec<u8>) {
    if buf.capacity() > 0 {
        *buf = if buf.is_empty() {
            Vec::new()
        } else {
            buf.as_slice().to_vec()
        };
    }
    if out.is_empty() && out.capacity() > 0 {
        *out = Vec::new();
    }
}

/// On shutdown: answer every complete request the peer already sent
/// (reading what is queued, without waiting for more, a chunk at a time),
/// then close gracefully. Bounded by [`SHUTDOWN_GRACE`].
async fn finish_on_shutdown(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    cfg: &ServerConfig,
) -> io::Result<Close> {
    let give_up = Instant::now() + SHUTDOWN_GRACE;
    let mut out = Vec::new();
    loop {
        // What is left in `buf` from before is answered first.
        let (consumed, rejected) = answer_all(buf, cfg.order, peer, &mut out);
        buf.drain(..consumed);
        if !out.is_empty() {
            let left = give_up.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left.min(cfg.write_timeout), stream.write_all(&out)).await {
                Ok(Ok(())) => out.clear(),
                _ => return Ok(Close::Other),
            }
        }
        if rejected || Instant::now() >= give_up {
            break;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        match stream.try_read_buf(buf) {
            Ok(0) => return Ok(Close::Eof),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    close_gracefully(stream).await;
    Ok(Close::Other)
}

/// Closes without a reset: sends our FIN after the answers already
/// written, then reads and discards until the peer closes too (bounded by
/// [`LINGER_TIMEOUT`] and [`LINGER_MAX_BYTES`]). Closing with unread bytes
/// queued would make the kernel reset the connection and drop answers the
/// client has not received yet.
async fn close_gracefully(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut discarded = 0usize;
    let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
        while discarded < LINGER_MAX_BYTES {
            match tokio::io::AsyncReadExt::read(stream, &mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
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
    if !REJECT_LOG.admit() {
        return;
    }
    let count = (len - calc::HEADER_LEN) / 4;
    tracing::warn!(
        %peer,
        id,
        reason = invalid.reason(),
        // The peer's bytes, escaped: a newline or ESC must not forge a
        // log line or drive a terminal.
        op = %op.escape_ascii(),
        numbers = count,
        "rejected request: {invalid}"
    );
}

/// The rejection log's rate limit: [`REJECT_LOGS_PER_SEC`] lines per
/// second, shared by every connection and datagram.
static REJECT_LOG: LogLimiter = LogLimiter::new(REJECT_LOGS_PER_SEC, "rejected requests");
/// Every other line a peer can cause at will has a budget of its own.
static TRUNCATED_LOG: LogLimiter = LogLimiter::new(REJECT_LOGS_PER_SEC, "truncated requests");
static SLOW_LOG: LogLimiter = LogLimiter::new(REJECT_LOGS_PER_SEC, "slow clients");
static PEER_CAP_LOG: LogLimiter = LogLimiter::new(
    REJECT_LOGS_PER_SEC,
    "connections refused over --max-per-address",
);

/// A per-second budget of log lines; what goes over is counted and the
/// count is logged once the next second opens.
#[derive(Debug)]
struct LogLimiter {
    per_sec: u32,
    /// What is counted, for the line that says how many were not logged.
    what: &'static str,
    state: std::sync::Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    window: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    const fn new(per_sec: u32, what: &'static str) -> Self {
        LogLimiter {
            per_sec,
            what,
            state: std::sync::Mutex::new(LimiterState {
                window: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether this line may be logged now.
    fn admit(&self) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        let fresh = st
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1));
        if fresh {
            if st.suppressed > 0 {
                tracing::warn!(
                    suppressed = st.suppressed,
                    "{} more {} were not logged (over {} per second)",
                    st.suppressed,
                    self.what,
                    self.per_sec
                );
            }
            st.window = Some(now);
            st.logged = 0;
            st.suppressed = 0;
        }
        if st.logged < self.per_sec {
            st.logged += 1;
            true
        } else {
            st.suppressed += 1;
            false
        }
    }
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
            _ = shutdown.cancelled() => break,
        };
        answer_datagram(&socket, &buf[..len], peer, cfg.order, &mut out).await;
    }
    // Datagrams that arrived before the shutdown are answered too (bounded:
    // new ones keep arriving while we answer).
    for _ in 0..UDP_SHUTDOWN_DRAIN {
        match socket.try_recv_from(&mut buf) {
            Ok((len, peer)) => {
                answer_datagram(&socket, &buf[..len], peer, cfg.order, &mut out).await;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => continue,
        }
    }
}

async fn answer_datagram(
    socket: &UdpSocket,
    datagram: &[u8],
    peer: SocketAddr,
    order: ByteOrder,
    out: &mut Vec<u8>,
) {
    let request = match calc::decode_datagram(datagram, order) {
        Ok(r) => r,
        Err(err) => {
            let id = match err {
                calc::DatagramError::WrongLength { id, .. } => Some(id),
                calc::DatagramError::TooShort { .. } => None,
            };
            if REJECT_LOG.admit() {
                tracing::warn!(%peer, id, reason = "bad-length", "rejected datagram: {err}");
            }
            return;
        }
    };
    match request.evaluate() {
        Ok(result) => {
            out.clear();
            Response {
                id: request.id,
                result,
            }
            .encode(order, out);
            if let Err(err) = socket.send_to(out, peer).await {
                tracing::debug!(%peer, %err, "udp send failed");
            }
        }
        Err(invalid) => log_rejected(peer, request.id, request.op, datagram.len(), invalid),
    }
}
