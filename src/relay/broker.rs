//! The hub behind `--broker`, `--chat` and `-k` with standard
//! input/output: many clients, event-driven, each with its own bounded
//! queue.
//!
//! Every client has a reader task and a writer task. What a client sends
//! is fanned out by handing the same `Bytes` (reference-counted, not
//! copied) to the other clients' queues; a writer drains its own queue at
//! the pace its client reads. A sender faster than a reader waits for it,
//! but only while that reader is seen reading: every byte its socket takes
//! stamps the client's progress, and a client with nothing taken for
//! `STOPPED` (100 ms) while its TCP peer advertises a zero window has
//! stopped reading and is waited for no more (flow control, so a flood
//! cannot cut off a client that keeps up at its own pace, and a client that
//! stops reading costs a flooding sender at most `STOPPED`, once). A peer
//! whose window is open is reading over a slow path (a long round trip, a
//! retransmission): it is waited for up to `SLOW_PATH` (500 ms). Its queue
//! then grows until it passes `max_queue` bytes, and it is disconnected
//! with a notice. At chat rates nobody is ever waited for: a queue must
//! pass half of `max_queue` first.
//! Memory is bounded by the queues, and an
//! idle client costs two parked tasks and a channel (no read buffer: TCP
//! and Unix clients are read with readiness and a stack buffer).
//!
//! Kinds ([`HubKind`]): `Broker` (to every other client; standard input,
//! read while a client is connected, to every client; `--send-only` passes
//! on standard input only, `--recv-only` sends clients nothing), `Chat` (a broker that names
//! clients `<userN>`, prefixes their lines, standard input's as `<user0>`,
//! and announces arrivals and departures) and `Stdio` (`-k` without exec: standard input goes to every
//! client, what clients send goes to standard output).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hexdump::Dir;
use super::listener::{self, Listener, handshake};
use super::session::Activity;
use super::stream::NetStream;
use super::{Ctx, HubKind, Notice, RelayError};

/// Largest chunk read from a client at once.
const CHUNK: usize = 16 * 1024;
/// The chat name of the listener's own standard input (ncat's: clients
/// are numbered from 1 here, so nobody else has it).
const STDIN_NAME: &str = "<user0>";
/// A chat line longer than this is passed on in pieces.
const MAX_CHAT_LINE: usize = 4096;
/// Chunks of standard output waiting to be written (then readers wait).
const STDOUT_QUEUE: usize = 64;
/// A recipient with more than this share of `max_queue` waiting paces the
/// sender, as long as it keeps reading.
const SOFT_DIVISOR: usize = 2;
/// A recipient whose socket took no byte for this long, and whose peer
/// advertises no room (or whose window we cannot see: TLS, Unix sockets),
/// has stopped reading as far as senders are concerned: they no longer
/// wait for it. The longest a client that stops reading can hold up a
/// flooding sender; long enough that a reader merely descheduled on a busy
/// machine is not taken for one that stopped.
const STOPPED: Duration = Duration::from_millis(100);
/// A recipient whose peer still advertises room is reading, but its bytes
/// are slow to be acknowledged (a long round trip; a retransmission waits
/// 200 ms at least): senders wait for it this long before giving up.
const SLOW_PATH: Duration = Duration::from_millis(500);
/// From this many recipients on, a fan-out is shared by two threads.
const PARALLEL_FAN_OUT: usize = 2048;
/// How often a paced sender looks at its recipients again.
const PACE_POLL: Duration = Duration::from_millis(1);

/// A queued item: data, or the end of what will be sent (send FIN).
#[derive(Debug)]
enum Out {
    Data(Bytes),
    Fin,
}

#[derive(Debug)]
struct Client {
    peer: String,
    name: String,
    tx: mpsc::UnboundedSender<Out>,
    out: WriteSide,
    queued: AtomicUsize,
    /// When its socket last took bytes, in microseconds since
    /// [`Hub::epoch`]: its progress.
    progress_us: AtomicU64,
    kill: CancellationToken,
}

#[derive(Debug)]
struct Hub {
    mode: HubKind,
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    max_queue: usize,
    next_id: AtomicU64,
    /// The origin of every client's `progress_us`.
    epoch: std::time::Instant,
    /// Told when a client joins: a broker reads standard input only while
    /// it has clients, as ncat does.
    joined: tokio::sync::Notify,
    /// The last client or stdin read (or arrival), for `-i`.
    activity: Activity,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `data` for `c`; false when that overflowed its queue.
    fn push(&self, c: &Client, data: &Bytes) -> bool {
        let mut data = data.clone();
        // Nothing queued: the writer task is idle, so write straight into
        // the socket (no task wake-up per client on a fan-out). Senders
        // are serialised by the hub's lock, so bytes stay in order.
        if c.queued.load(Ordering::SeqCst) == 0
            && let Some(Ok(n)) = c.out.try_direct(&data)
        {
            if n > 0 {
                self.progressed(c);
            }
            if n == data.len() {
                return true;
            }
            data = data.slice(n..);
        }
        // Would block (or failed: the writer task meets the error and
        // removes the client): queue it.
        let now = c.queued.fetch_add(data.len(), Ordering::SeqCst) + data.len();
        if now > self.max_queue {
            return false;
        }
        c.tx.send(Out::Data(data)).is_ok()
    }

    /// Returns once at least one client is connected.
    async fn wait_for_a_client(&self) {
        loop {
            let joined = self.joined.notified();
            if !self.lock().is_empty() {
                return;
            }
            joined.await;
        }
    }

    /// Resolves when `-i` ran out: nothing arrived from anyone for `idle`
    /// while a client was connected (ncat does not time out a listener
    /// before its first client).
    async fn idle(&self, idle: Option<Duration>) {
        if idle.is_none() {
            return std::future::pending().await;
        }
        loop {
            self.wait_for_a_client().await;
            self.activity.expired(idle).await;
            // With nobody left, the clock starts again at the next arrival.
            if !self.lock().is_empty() {
                return;
            }
        }
    }

    fn soft(&self) -> usize {
        self.max_queue / SOFT_DIVISOR
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Stamps `c`'s progress: its socket just took bytes.
    fn progressed(&self, c: &Client) {
        c.progress_us.store(self.now_us(), Ordering::Relaxed);
    }

    /// Whether a sender should wait for `c` before sending more.
    fn waits_for(&self, c: &Client) -> bool {
        let since = Duration::from_micros(
            self.now_us()
                .saturating_sub(c.progress_us.load(Ordering::Relaxed)),
        );
        must_wait(
            c.queued.load(Ordering::Relaxed),
            self.soft(),
            since,
            c.kill.is_cancelled(),
            || c.out.peer_window().is_some_and(|w| w > 0),
        )
    }

    /// Sends `data` to every client but `from`; drops those that overflow.
    /// Returns the recipients past the soft mark that are still reading:
    /// the sender should wait for them ([`Hub::pace`]).
    fn fan_out(&self, ctx: &Ctx, from: Option<u64>, data: Bytes) -> Vec<Arc<Client>> {
        if data.is_empty() {
            return Vec::new();
        }
        let (behind, dropped) = {
            let clients = self.lock();
            let to: Vec<(u64, &Arc<Client>)> = clients
                .iter()
                .filter(|(id, _)| Some(**id) != from)
                .map(|(id, c)| (*id, c))
                .collect();
            if to.len() < PARALLEL_FAN_OUT {
                self.deliver(&to, &data)
            } else {
                // Each write into a socket costs the kernel's whole loopback
                // receive path (several microseconds); thousands of them go
                // faster on two threads. The lock is held throughout, so
                // every client still gets senders' bytes in order.
                let (a, b) = to.split_at(to.len() / 2);
                std::thread::scope(|s| {
                    let other = std::thread::Builder::new()
                        .name("fan-out".into())
                        .spawn_scoped(s, || self.deliver(b, &data));
                    let (mut behind, mut dropped) = self.deliver(a, &data);
                    let (b2, d2) = match other {
                        Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                        // No thread to be had: this one does both halves.
                        Err(_) => self.deliver(b, &data),
                    };
                    behind.extend(b2);
                    dropped.extend(d2);
                    (behind, dropped)
                })
            }
        };
        for id in dropped {
            if let Some(c) = self.remove(id) {
                let queued = c.queued.load(Ordering::Relaxed);
                ctx.notice_later(Notice::SlowClient {
                    peer: c.peer.clone(),
                    queued,
                });
                self.departed(ctx, &c);
            }
        }
        behind
    }

    /// Queues `data` for each of `to`: the recipients to wait for, and
    /// those that overflowed.
    fn deliver(&self, to: &[(u64, &Arc<Client>)], data: &Bytes) -> (Vec<Arc<Client>>, Vec<u64>) {
        let mut behind = Vec::new();
        let mut dropped = Vec::new();
        for (id, c) in to {
            if !self.push(c, data) {
                dropped.push(*id);
            } else if self.waits_for(c) {
                behind.push(Arc::clone(c));
            }
        }
        (behind, dropped)
    }

    /// Flow control for a fast sender: waits while recipients past the
    /// soft mark are still reading ([`Hub::waits_for`]). One that stopped
    /// is waited for at most [`STOPPED`] after its last byte, and never
    /// again unless it reads again.
    async fn pace(&self, mut behind: Vec<Arc<Client>>) {
        loop {
            behind.retain(|c| self.waits_for(c));
            if behind.is_empty() {
                return;
            }
            tokio::time::sleep(PACE_POLL).await;
        }
    }

    fn remove(&self, id: u64) -> Option<Arc<Client>> {
        let c = self.lock().remove(&id)?;
        c.kill.cancel();
        Some(c)
    }

    /// Tells the others that `c` left (chat only).
    fn departed(&self, ctx: &Ctx, c: &Client) {
        if self.mode == HubKind::Chat {
            let msg = format!("<announce> {} is disconnected.\n", c.name);
            // Announcements do not wait for anyone.
            let _ = self.fan_out(ctx, None, Bytes::from(msg));
        }
    }
}

/// The reading side of a client.
enum ReadSide {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    Unix(tokio::net::unix::OwnedReadHalf),
    Other(tokio::io::ReadHalf<NetStream>),
}

/// One read with a stack buffer: idle clients hold no read buffer.
macro_rules! ready_read {
    ($r:expr) => {
        loop {
            $r.readable().await?;
            let got = {
                let mut buf = [0u8; CHUNK];
                match $r.try_read(&mut buf) {
                    Ok(0) => Some(Ok(None)),
                    Ok(n) => Some(Ok(Some(Bytes::copy_from_slice(&buf[..n])))),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                    Err(e) => Some(Err(e)),
                }
            };
            if let Some(r) = got {
                return r;
            }
        }
    };
}

impl ReadSide {
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            ReadSide::Tcp(r) => ready_read!(r),
            ReadSide::Unix(r) => ready_read!(r),
            ReadSide::Other(r) => {
                let mut buf = vec![0u8; CHUNK];
                match r.read(&mut buf).await {
                    Ok(0) => Ok(None),
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(Some(Bytes::from(buf)))
                    }
                    Err(e) if super::stream::is_unclean_eof(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The writing side of a client. TCP and Unix sockets are written with
/// readiness and `try_write` through a shared reference, which lets a
/// sender write straight into an idle client's socket; TLS goes through
/// the writer task only.
enum WriteSide {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Unix(tokio::net::unix::OwnedWriteHalf),
    Other(tokio::sync::Mutex<tokio::io::WriteHalf<NetStream>>),
}

impl std::fmt::Debug for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteSide::Tcp(_) => "WriteSide::Tcp",
            WriteSide::Unix(_) => "WriteSide::Unix",
            WriteSide::Other(_) => "WriteSide::Other",
        })
    }
}

macro_rules! ready_write_all {
    ($w:expr, $buf:expr, $progress:expr) => {{
        let mut rest: &[u8] = $buf;
        while !rest.is_empty() {
            $w.writable().await?;
            match $w.try_write(rest) {
                Ok(n) => {
                    rest = &rest[n..];
                    $progress();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }};
}

impl WriteSide {
    /// The window the TCP peer advertises; `None` when not known (Unix
    /// sockets; TLS, whose socket sits inside the stream's lock).
    fn peer_window(&self) -> Option<u32> {
        match self {
            WriteSide::Tcp(w) => crate::sys::tcp_info::peer_window(w.as_ref()),
            WriteSide::Unix(_) | WriteSide::Other(_) => None,
        }
    }

    /// A non-blocking write, where the socket allows one.
    fn try_direct(&self, buf: &[u8]) -> Option<std::io::Result<usize>> {
        match self {
            WriteSide::Tcp(w) => Some(w.try_write(buf)),
            WriteSide::Unix(w) => Some(w.try_write(buf)),
            WriteSide::Other(_) => None,
        }
    }

    /// Writes all of `buf`, calling `progress` each time the socket takes
    /// some of it.
    async fn write_all(&self, buf: &[u8], progress: impl Fn()) -> std::io::Result<()> {
        match self {
            WriteSide::Tcp(w) => ready_write_all!(w, buf, progress),
            WriteSide::Unix(w) => ready_write_all!(w, buf, progress),
            WriteSide::Other(m) => {
                let mut w = m.lock().await;
                let mut rest = buf;
                while !rest.is_empty() {
                    match w.write(rest).await? {
                        0 => return Err(std::io::ErrorKind::WriteZero.into()),
                        n => rest = &rest[n..],
                    }
                    progress();
                }
                // TLS keeps records it could not write yet: out with them
                // now, not when the next message comes.
                w.flush().await?;
                progress();
                Ok(())
            }
        }
    }

    /// FIN (TLS: close_notify, then FIN).
    async fn fin(&self) -> std::io::Result<()> {
        match self {
            WriteSide::Tcp(w) => {
                socket2::SockRef::from(w.as_ref()).shutdown(std::net::Shutdown::Write)
            }
            WriteSide::Unix(w) => {
                socket2::SockRef::from(w.as_ref()).shutdown(std::net::Shutdown::Write)
            }
            WriteSide::Other(m) => m.lock().await.shutdown().await,
        }
    }
}

fn split(stream: NetStream) -> (ReadSide, WriteSide) {
    match stream {
        NetStream::Tcp(s) => {
            let (r, w) = s.into_split();
            (ReadSide::Tcp(r), WriteSide::Tcp(w))
        }
        NetStream::Unix(s) => {
            let (r, w) = s.into_split();
            (ReadSide::Unix(r), WriteSide::Unix(w))
        }
        other => {
            let (r, w) = tokio::io::split(other);
            (
                ReadSide::Other(r),
                WriteSide::Other(tokio::sync::Mutex::new(w)),
            )
        }
    }
}

/// Serves the hub until shutdown.
pub(crate) async fn serve(
    ctx: &Ctx,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mode: HubKind,
) -> Result<(), RelayError> {
    let hub = Arc::new(Hub {
        mode,
        clients: Mutex::new(HashMap::new()),
        max_queue: ctx.cfg.max_queue,
        next_id: AtomicU64::new(1),
        epoch: std::time::Instant::now(),
        joined: tokio::sync::Notify::new(),
        activity: Activity::new(),
    });
    // Clients accepted but not yet registered (TLS handshakes) count too.
    let pending = Arc::new(AtomicUsize::new(0));
    let stdout_tx = if mode == HubKind::Stdio {
        Some(spawn_stdout(ctx))
    } else {
        None
    };
    // A broker's standard input goes to every client too (ncat's; a chat
    // names it <user0>); with --recv-only nothing at all is sent to clients.
    let stdin_task = if !ctx.cfg.data.recv_only {
        Some(tokio::spawn(stdin_to_all(ctx.clone(), hub.clone())))
    } else {
        None
    };
    let idle = ctx.cfg.timing.idle;
    let mut result = Ok(());
    loop {
        let stream = tokio::select! {
            s = listener.next(ctx) => match s {
                Some(s) => s,
                None => break,
            },
            () = hub.idle(idle) => {
                result = Err(RelayError::Idle(idle.unwrap_or_default().as_millis()));
                break;
            }
        };
        hub.activity.touch();
        let count = hub.lock().len() + pending.load(Ordering::Relaxed);
        if !listener::room_for(ctx, count, &stream).await {
            continue;
        }
        pending.fetch_add(1, Ordering::Relaxed);
        let ctx2 = ctx.clone();
        let hub2 = hub.clone();
        let tls2 = tls.clone();
        let pending2 = pending.clone();
        let out = stdout_tx.clone();
        tokio::spawn(async move {
            let r = handshake(&ctx2, tls2.as_ref(), stream).await;
            pending2.fetch_sub(1, Ordering::Relaxed);
            match r {
                Ok(s) => join(ctx2, hub2, s, out).await,
                Err(e) => ctx2.notice(Notice::Warning(e.to_string())).await,
            }
        });
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    let ids: Vec<u64> = hub.lock().keys().copied().collect();
    for id in ids {
        hub.remove(id);
    }
    result
}

/// Registers a client and starts its reader and writer.
async fn join(ctx: Ctx, hub: Arc<Hub>, stream: NetStream, stdout: Option<mpsc::Sender<Bytes>>) {
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let peer = stream.peer_label();
    let (ip, _) = stream.peer();
    let (reader, writer) = split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Arc::new(Client {
        peer: peer.clone(),
        name: format!("<user{id}>"),
        tx,
        out: writer,
        queued: AtomicUsize::new(0),
        progress_us: AtomicU64::new(hub.now_us()),
        kill: ctx.shutdown.child_token(),
    });
    ctx.notice(Notice::Accepted(peer)).await;
    {
        // One critical section: the newcomer's greeting lists exactly the
        // clients that get its announcement, and nothing reaches it first.
        let mut clients = hub.lock();
        if hub.mode == HubKind::Chat {
            let others: Vec<String> = clients
                .values()
                .map(|c| format!("{} as {}", c.peer, c.name))
                .collect();
            let list = if others.is_empty() {
                "nobody".to_string()
            } else {
                others.join(", ")
            };
            let hello = Bytes::from(format!("<announce> already connected: {list}.\n"));
            hub.push(&client, &hello);
            let news = Bytes::from(format!(
                "<announce> {ip} is connected as {}.\n",
                client.name
            ));
            // Announcements are tiny: one that overflows a queue is
            // dropped for that client, whose turn to go comes at its
            // next message.
            for c in clients.values() {
                let _ = hub.push(c, &news);
            }
        }
        clients.insert(id, client.clone());
    }
    hub.activity.touch();
    hub.joined.notify_waiters();
    tokio::spawn(write_loop(hub.clone(), id, client.clone(), rx));
    tokio::spawn(read_loop(ctx, hub, id, client, reader, stdout));
}

async fn write_loop(
    hub: Arc<Hub>,
    id: u64,
    client: Arc<Client>,
    mut rx: mpsc::UnboundedReceiver<Out>,
) {
    loop {
        let item = tokio::select! {
            biased;
            () = client.kill.cancelled() => break,
            m = rx.recv() => m,
        };
        let r = match item {
            Some(Out::Data(b)) => {
                let r = tokio::select! {
                    biased;
                    () = client.kill.cancelled() => break,
                    r = client.out.write_all(&b, || hub.progressed(&client)) => r,
                };
                client.queued.fetch_sub(b.len(), Ordering::SeqCst);
                r
            }
            Some(Out::Fin) => {
                let r = client.out.fin().await;
                client.queued.fetch_sub(1, Ordering::SeqCst);
                r
            }
            None => break,
        };
        if let Err(e) = r {
            tracing::debug!(peer = %client.peer, %e, "write failed");
            hub.remove(id);
            break;
        }
    }
}

async fn read_loop(
    ctx: Ctx,
    hub: Arc<Hub>,
    id: u64,
    client: Arc<Client>,
    mut reader: ReadSide,
    stdout: Option<mpsc::Sender<Bytes>>,
) {
    let mut line = Vec::new();
    loop {
        let chunk = tokio::select! {
            () = client.kill.cancelled() => break,
            r = reader.next() => match r {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => break,
            },
        };
        hub.activity.touch();
        match hub.mode {
            // --send-only: clients are read only to see them leave;
            // --recv-only: nothing is sent to clients (both as ncat).
            HubKind::Broker if ctx.cfg.data.send_only || ctx.cfg.data.recv_only => {}
            HubKind::Broker => {
                let behind = hub.fan_out(&ctx, Some(id), chunk);
                hub.pace(behind).await;
            }
            HubKind::Chat => {
                for msg in chat_lines(&client.name, &mut line, &chunk) {
                    let behind = hub.fan_out(&ctx, Some(id), msg);
                    hub.pace(behind).await;
                }
            }
            HubKind::Stdio => {
                if let Some(t) = ctx.tap.as_ref() {
                    t.record(Dir::Received, &chunk);
                }
                if let Some(out) = stdout.as_ref() {
                    // Backpressure: a slow stdout slows the readers down.
                    let _ = out.send(chunk).await;
                }
            }
        }
    }
    if hub.mode == HubKind::Chat && !line.is_empty() {
        let mut msg = format!("{} ", client.name).into_bytes();
        msg.append(&mut line);
        msg.push(b'\n');
        let _ = hub.fan_out(&ctx, Some(id), Bytes::from(msg));
    }
    if let Some(c) = hub.remove(id) {
        ctx.notice(Notice::Closed(c.peer.clone())).await;
        hub.departed(&ctx, &c);
    }
}

/// Complete chat lines of `chunk` (with what was pending in `line`), each
/// prefixed with the sender's name; a line past [`MAX_CHAT_LINE`] bytes
/// goes out in pieces rather than growing without bound.
fn chat_lines(name: &str, line: &mut Vec<u8>, chunk: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    for &b in chunk {
        line.push(b);
        if b == b'\n' || line.len() >= MAX_CHAT_LINE {
            let mut msg = Vec::with_capacity(name.len() + 1 + line.len() + 1);
            msg.extend_from_slice(name.as_bytes());
            msg.push(b' ');
            msg.append(line);
            if msg.last() != Some(&b'\n') {
                msg.push(b'\n');
            }
            out.push(Bytes::from(msg));
        }
    }
    out
}

/// Standard output of the `Stdio` hub: one writer, bounded queue.
fn spawn_stdout(ctx: &Ctx) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(STDOUT_QUEUE);
    let send_only = ctx.cfg.data.send_only;
    tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(b) = rx.recv().await {
            if send_only {
                continue;
            }
            if out.write_all(&b).await.is_err() || out.flush().await.is_err() {
                // stdout is gone: keep draining so readers never block.
                continue;
            }
        }
    });
    tx
}

/// Standard input of a hub, to every client: as it comes (`Stdio`,
/// `Broker`) or as the chat lines of `<user0>` (`Chat`, as ncat names its
/// own stdin). At its EOF the `Stdio` hub sends every client FIN.
async fn stdin_to_all(ctx: Ctx, hub: Arc<Hub>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    let mut line = Vec::new();
    let mut crlf = ctx.cfg.data.crlf.then(super::session::Crlf::default);
    let mut converted = Vec::new();
    loop {
        hub.wait_for_a_client().await;
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        hub.activity.touch();
        let data = match crlf.as_mut() {
            Some(c) => c.convert(&buf[..n], &mut converted),
            None => &buf[..n],
        };
        if let Some(t) = ctx.tap.as_ref() {
            t.record(Dir::Sent, data);
        }
        if hub.mode == HubKind::Chat {
            for msg in chat_lines(STDIN_NAME, &mut line, data) {
                let behind = hub.fan_out(&ctx, None, msg);
                hub.pace(behind).await;
            }
            continue;
        }
        let behind = hub.fan_out(&ctx, None, Bytes::copy_from_slice(data));
        hub.pace(behind).await;
    }
    if !line.is_empty() {
        // A last chat line without its newline, as a client's at its end.
        let mut msg = format!("{STDIN_NAME} ").into_bytes();
        msg.append(&mut line);
        msg.push(b'\n');
        let _ = hub.fan_out(&ctx, None, Bytes::from(msg));
    }
    // A broker's or chat's clients still talk to each other after its
    // stdin's EOF.
    if hub.mode == HubKind::Stdio && !ctx.cfg.data.no_shutdown {
        for c in hub.lock().values() {
            // Counted as a byte, so nothing is written directly after it.
            c.queued.fetch_add(1, Ordering::SeqCst);
            let _ = c.tx.send(Out::Fin);
        }
    }
}

/// The pacing rule: a sender waits for a live recipient with more than
/// `soft` bytes queued whose socket took bytes less than [`STOPPED`] ago,
/// or less than [`SLOW_PATH`] ago while its peer's window is open.
/// `window_open` (a system call) is asked only of a recipient that is
/// behind and has been quiet for [`STOPPED`].
fn must_wait(
    queued: usize,
    soft: usize,
    since_progress: Duration,
    killed: bool,
    window_open: impl FnOnce() -> bool,
) -> bool {
    if killed || queued <= soft {
        return false;
    }
    since_progress < STOPPED || (since_progress < SLOW_PATH && window_open())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_waits_only_for_recipients_that_are_reading() {
        let ms = Duration::from_millis;
        let open = || true;
        let closed = || false;
        let never = || -> bool { panic!("the window was asked for needlessly") };
        // At or under the soft mark: never waited for.
        assert!(!must_wait(100, 100, ms(0), false, never));
        // Behind and reading: the sender waits, without asking the window.
        assert!(must_wait(101, 100, ms(0), false, never));
        assert!(must_wait(101, 100, STOPPED - ms(1), false, never));
        // Behind, silent for STOPPED, window closed (or unknown): it stopped
        // reading; nobody waits.
        assert!(!must_wait(101, 100, STOPPED, false, closed));
        assert!(!must_wait(usize::MAX, 100, ms(60_000), false, open));
        // Silent but the window is open: a slow path, waited for longer.
        assert!(must_wait(101, 100, STOPPED, false, open));
        assert!(must_wait(101, 100, SLOW_PATH - ms(1), false, open));
        assert!(!must_wait(101, 100, SLOW_PATH, false, open));
        // Being dropped: nobody waits.
        assert!(!must_wait(101, 100, ms(0), true, never));
    }

    #[test]
    fn chat_lines_prefix_and_pending() {
        let mut line = Vec::new();
        let out = chat_lines("<user1>", &mut line, b"hi\nthere");
        assert_eq!(out, vec![Bytes::from_static(b"<user1> hi\n")]);
        assert_eq!(line, b"there");
        let out = chat_lines("<user1>", &mut line, b" you\n");
        assert_eq!(out, vec![Bytes::from_static(b"<user1> there you\n")]);
        let long = vec![b'x'; MAX_CHAT_LINE + 10];
        let out = chat_lines("<u>", &mut line, &long);
        assert_eq!(out.len(), 1);
        assert_eq!(line.len(), 10);
    }
}
