//! The SYN scan (`-sS`): half-open probes written and read on raw sockets.
//!
//! The scheduler is the connect scan's ([`super::engine`]): the same
//! permutation and shards, host groups, per-host RTT timeouts, retries,
//! rate cap and events. What differs is the probe: one task writes SYN
//! segments to raw sockets and reads SYN-ACKs, RSTs and ICMP errors back.
//!
//! Replies are validated without a table of what was sent: a probe's
//! sequence number is a keyed hash (SipHash, with a key drawn per scan) of
//! its addresses and ports, and a reply counts only when it acknowledges
//! that number plus one (an ICMP error: when the segment it quotes carries
//! it). A forged or stale reply cannot name a port's state. The in-flight
//! map below exists for the scheduler's sake only: a probe's send time (the
//! RTT sample) and its deadline (the retry).
//!
//! SYN-ACK -> open (`syn-ack`), RST -> closed (`reset`), ICMP destination
//! unreachable -> filtered (named by type and code), silence after the
//! retries -> filtered (`no-response`). The kernel answers a SYN-ACK with a
//! reset by itself (it has no socket for the connection), as under nmap.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6, SockaddrLike, SockaddrStorage,
    recvmmsg, sendmmsg,
};
use sockeye_proto::packet::{
    self, IPV4_HEADER, IcmpError, Ipv4Reply, PROTO_TCP, SYN_LEN, SynProbe, flags,
};
use std::io::{IoSlice, IoSliceMut};
use tokio_util::sync::CancellationToken;

use super::connect::{LocalError, Outcome, reason_from_icmp4, reason_from_icmp6};
use super::engine::{Progress, ScanConfig, ScanStats, Shared, Ticket};
use super::timing::{DeadlineWheel, RateLimiter};
use crate::net::raw::{FamilySockets, HeldPort, SourceAddrs, hold_port};
use crate::report::{Emit, Event, PortState, Reason};
use crate::target::TargetSet;

/// Probes taken from the scheduler per lock.
const BATCH: usize = 256;
/// Packets read from the sockets per turn, before sending more.
const READ_TURN: usize = 1024;
/// Probes sent per `sendmmsg` call.
const SEND_BATCH: usize = 64;
/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 64;
/// Room for one received packet: headers and an ICMP error's quote fit
/// with room to spare (a longer datagram is cut, and fails to parse).
const RECV_SIZE: usize = 1536;
/// The MSS option of the probe (nmap's, and what most SYNs carry).
pub(super) const PROBE_MSS: u16 = 1460;
/// The probe's receive window (nmap's default).
pub(super) const PROBE_WINDOW: u16 = 1024;
/// TTL / hop limit of probes.
pub(super) const PROBE_TTL: u8 = 64;
/// Pause after the kernel ran out of buffers for sending.
const LOCAL_BACKOFF: Duration = Duration::from_millis(5);
/// The longest the prober sleeps without looking at the scheduler and the
/// cancellation token.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// Why a SYN scan (or raw host discovery) could not start.
#[derive(Debug, thiserror::Error)]
pub enum SynError {
    #[error("cannot open raw sockets: {0}")]
    Sockets(io::Error),
    #[error("cannot hold a source port: {0}")]
    Port(io::Error),
}

impl SynError {
    /// True when the error is the lack of privilege (root or CAP_NET_RAW):
    /// the caller falls back to connects.
    pub fn is_permission(&self) -> bool {
        match self {
            SynError::Sockets(e) | SynError::Port(e) => {
                matches!(e.raw_os_error(), Some(nix::libc::EPERM | nix::libc::EACCES))
            }
        }
    }
}

/// The per-scan key of the sequence cookie, and the source port.
struct Cookie {
    key: std::collections::hash_map::RandomState,
    port: u16,
}

impl Cookie {
    /// The sequence number of the probe from `local` to `target`.
    fn seq(&self, local: IpAddr, target: SocketAddr) -> u32 {
        self.key
            .hash_one((local, self.port, target.ip(), target.port())) as u32
    }
}

/// A probe on the wire.
struct Sent {
    ticket: Ticket,
    local: IpAddr,
    at: Instant,
}

/// Raw sockets of both families.
struct Sockets {
    v4: Option<FamilySockets>,
    v6: Option<FamilySockets>,
}

/// What a SYN scan opens before anything is sent: per lane (a thread that
/// sends probes and reads their replies), a source port and the raw
/// sockets filtered to it. IPv4 must work; IPv6 may be missing, and its
/// targets then fail as unreachable.
pub struct SynSetup {
    lanes: Vec<Lane>,
}

struct Lane {
    sockets: Sockets,
    port: HeldPort,
}

impl std::fmt::Debug for SynSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<u16> = self.lanes.iter().map(|l| l.port.port).collect();
        f.debug_struct("SynSetup")
            .field("ports", &ports)
            .finish_non_exhaustive()
    }
}

impl SynSetup {
    /// Opens `lanes` (at least one) lanes. Fails without privilege (EPERM)
    /// or when no source port is free.
    pub fn open(lanes: usize) -> Result<SynSetup, SynError> {
        let mut out = Vec::with_capacity(lanes.max(1));
        for _ in 0..lanes.max(1) {
            let port = hold_port().map_err(SynError::Port)?;
            let v4 = FamilySockets::v4(port.port).map_err(SynError::Sockets)?;
            let v6 = FamilySockets::v6(port.port).ok();
            out.push(Lane {
                sockets: Sockets { v4: Some(v4), v6 },
                port,
            });
        }
        Ok(SynSetup { lanes: out })
    }
}

/// Runs a SYN scan of every port in `cfg.ports` on every host of `targets`,
/// as [`super::connect_scan`] does with connects: same events, same
/// statistics, same handling of cancellation.
pub async fn syn_scan(
    setup: SynSetup,
    targets: Arc<TargetSet>,
    cfg: ScanConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> ScanStats {
    // Each lane is a thread, and each sends on a core of its own: on a
    // nearby target the kernel does most of the exchange (route, the
    // target's reset, the reply's delivery) inside the sending call.
    let n = cfg.parallel_workers().clamp(1, setup.lanes.len().max(1));
    let shared = Shared::begin(targets, cfg, events, progress, cancel).await;
    let window = (shared.cfg.max_inflight / n).max(1);
    let rate = shared.cfg.rate.map(|r| r / n as f64);
    let handle = tokio::runtime::Handle::current();
    let mut tasks = tokio::task::JoinSet::new();
    let mut held = Vec::new();
    let sources = Arc::new(Mutex::new(SourceAddrs::default()));
    for lane in setup.lanes.into_iter().take(n) {
        let mut prober = Prober {
            shared: Arc::clone(&shared),
            sockets: lane.sockets,
            cookie: Cookie {
                key: std::collections::hash_map::RandomState::new(),
                port: lane.port.port,
            },
            sources: Arc::clone(&sources),
            lane_sources: AddrMap::default(),
            inflight: AddrMap::default(),
            deadlines: DeadlineWheel::new(Instant::now()),
            done: Vec::new(),
            events: Vec::new(),
            queued: [Vec::new(), Vec::new()],
            recv: vec![0u8; RECV_SIZE * RECV_BATCH],
            ip_id: rand::random(),
        };
        held.push(lane.port);
        // Each prober has a thread of its own, and its sockets are not
        // registered with the runtime: a reactor woken for every reply (a
        // thread switch per packet) would cost more than the scan itself.
        // It reads without blocking while probes go out, and polls only
        // when it has nothing to send.
        let handle = handle.clone();
        tasks.spawn_blocking(move || prober.run(&handle, window, rate));
    }
    while let Some(res) = tasks.join_next().await {
        if let Err(err) = res {
            tracing::error!(%err, "a SYN prober failed; stopping the scan");
            shared.cancel.cancel();
        }
    }
    drop(held);
    shared.finish().await
}

struct Prober {
    shared: Arc<Shared>,
    sockets: Sockets,
    cookie: Cookie,
    /// Source addresses by destination, shared by the lanes (each host is
    /// looked up once, not once per lane).
    sources: Arc<Mutex<SourceAddrs>>,
    /// This lane's copy of the answers it needed from `sources`: no lock
    /// per probe.
    lane_sources: AddrMap<IpAddr, Result<IpAddr, i32>>,
    /// Probes awaiting an answer, by target address and port.
    inflight: AddrMap<SocketAddr, Sent>,
    /// (target, tries at sending) at its deadline: a probe whose entry
    /// still has that try count then went unanswered.
    deadlines: DeadlineWheel<(SocketAddr, u8)>,
    done: Vec<(Ticket, Outcome)>,
    events: Vec<Event>,
    /// Probes written and not yet sent: IPv4, IPv6.
    queued: [Vec<Queued>; 2],
    recv: Vec<u8>,
    ip_id: u16,
}

/// Destinations a lane remembers the source address of; past this it
/// starts over (the shared cache still has them).
const LANE_SOURCES: usize = 1 << 16;

/// A map keyed by addresses this scan chose to probe (so no peer can
/// choose keys that collide): hashed by [`AddrHasher`], a multiply per word
/// rather than SipHash's rounds.
type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

/// FxHash's mixing (as rustc's own maps use): each word rotated into the
/// state and multiplied by a constant; the last multiply leaves the low
/// bits depending on the input's low bits only, and hashbrown buckets by
/// the low bits, so `finish` rotates the well-mixed high bits down (as
/// rustc-hash 2 does).
#[derive(Debug, Default, Clone, Copy)]
struct AddrHasher(u64);

impl AddrHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// What writing a probe came to.
enum SendResult {
    /// In its family's send queue.
    Queued,
    /// Decided without the network (no route).
    Done(Outcome),
}

/// A probe written, waiting for its batch to be sent.
struct Queued {
    ticket: Ticket,
    local: IpAddr,
    len: usize,
    bytes: [u8; IPV4_HEADER + SYN_LEN],
}

impl Prober {
    fn run(&mut self, rt: &tokio::runtime::Handle, window: usize, rate: Option<f64>) {
        let shared = Arc::clone(&self.shared);
        let mut limiter = rate.map(RateLimiter::new);
        let mut tickets: Vec<Ticket> = Vec::with_capacity(BATCH);
        let mut grace_end: Option<Instant> = None;
        let mut backoff_until: Option<Instant> = None;
        let mut rate_wait: Option<Instant>;
        loop {
            if grace_end.is_none() && self.shared.cancel.is_cancelled() {
                grace_end = Some(Instant::now() + self.shared.cfg.grace);
                tickets.clear();
            }
            let now = Instant::now();
            rate_wait = None;
            if backoff_until.is_some_and(|t| t <= now) {
                backoff_until = None;
            }
            // Send while the window and the rate allow.
            let mut sent = 0;
            while grace_end.is_none()
                && backoff_until.is_none()
                && self.inflight.len() < window
                && sent < BATCH
            {
                let room = window - self.inflight.len();
                let Some(ticket) =
                    shared.next_ticket(limiter.as_mut(), now, room, &mut tickets, &mut rate_wait)
                else {
                    break;
                };
                match self.send(ticket) {
                    SendResult::Queued => sent += 1,
                    SendResult::Done(outcome) => self.done.push((ticket, outcome)),
                }
            }
            if self.flush(Instant::now(), &mut tickets) {
                backoff_until = Some(Instant::now() + LOCAL_BACKOFF);
            }
            let read = self.read_all(Instant::now());
            self.expire(Instant::now());
            // Recording may queue retries: look for work again at once.
            let recorded = !self.done.is_empty();
            if recorded {
                rt.block_on(self.shared.record(&mut self.done, &mut self.events));
            }

            if let Some(end) = grace_end
                && (self.inflight.is_empty() || Instant::now() >= end)
            {
                break;
            }
            if self.inflight.is_empty() && tickets.is_empty() && self.shared.all_done() {
                break;
            }
            if sent > 0 || read > 0 || recorded {
                continue;
            }
            // Nothing to do now: wait for a reply, the next deadline, the
            // rate limiter, a back-off, or at most IDLE_POLL (the scheduler
            // may have retries, or the scan may have been cancelled).
            let wait = [
                self.deadlines.next_due(),
                rate_wait,
                backoff_until,
                grace_end,
            ]
            .into_iter()
            .flatten()
            .min()
            .map_or(IDLE_POLL, |t| t.saturating_duration_since(Instant::now()))
            .min(IDLE_POLL);
            self.sockets.wait_readable(wait);
        }
        // Whatever is still in flight is abandoned: those pairs stay undecided.
        self.shared
            .pending
            .fetch_sub(self.inflight.len(), Ordering::Relaxed);
    }

    /// Writes one probe.
    /// Writes one probe into the send queue of its family.
    fn send(&mut self, ticket: Ticket) -> SendResult {
        let target = ticket.addr;
        let looked_up = match self.lane_sources.get(&target.ip()) {
            Some(r) => *r,
            None => {
                if self.lane_sources.len() >= LANE_SOURCES {
                    self.lane_sources.clear();
                }
                let r = self
                    .sources
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(target.ip());
                self.lane_sources.insert(target.ip(), r);
                r
            }
        };
        let local = match looked_up {
            Ok(a) => a,
            Err(errno) => return SendResult::Done(route_error(errno)),
        };
        let v6 = target.is_ipv6();
        let open = if v6 {
            self.sockets.v6.is_some()
        } else {
            self.sockets.v4.is_some()
        };
        if !open {
            return SendResult::Done(Outcome::Local(LocalError::Other(
                Errno::EAFNOSUPPORT as i32,
            )));
        }
        let probe = SynProbe {
            src_port: self.cookie.port,
            dst_port: target.port(),
            seq: self.cookie.seq(local, target),
            window: PROBE_WINDOW,
            mss: PROBE_MSS,
        };
        let mut q = Queued {
            ticket,
            local,
            len: 0,
            bytes: [0; IPV4_HEADER + SYN_LEN],
        };
        q.len = match (local, target.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                self.ip_id = self.ip_id.wrapping_add(1);
                packet::write_ipv4(
                    &mut q.bytes,
                    src,
                    dst,
                    PROTO_TCP,
                    PROBE_TTL,
                    self.ip_id,
                    SYN_LEN,
                );
                packet::write_syn(&mut q.bytes[IPV4_HEADER..], local, target.ip(), &probe);
                IPV4_HEADER + SYN_LEN
            }
            _ => {
                packet::write_syn(&mut q.bytes, local, target.ip(), &probe);
                SYN_LEN
            }
        };
        self.queued[usize::from(v6)].push(q);
        SendResult::Queued
    }

    /// Sends the queued probes of both families, [`SEND_BATCH`] per system
    /// call. Returns true when the kernel ran out of buffers: the probes not
    /// sent go back to `tickets`.
    fn flush(&mut self, now: Instant, tickets: &mut Vec<Ticket>) -> bool {
        let mut busy = false;
        for v6 in [false, true] {
            let mut queue = std::mem::take(&mut self.queued[usize::from(v6)]);
            let family = if v6 {
                self.sockets.v6.as_ref()
            } else {
                self.sockets.v4.as_ref()
            };
            let Some(fd) = family.map(|f| f.sender().as_raw_fd()) else {
                continue;
            };
            let mut at = 0;
            while at < queue.len() {
                let chunk = &queue[at..queue.len().min(at + SEND_BATCH)];
                let sent = if v6 {
                    send_batch(fd, chunk, |ip, port| {
                        SockaddrIn6::from(std::net::SocketAddrV6::new(as_v6(ip), port, 0, 0))
                    })
                } else {
                    send_batch(fd, chunk, |ip, port| {
                        SockaddrIn::from(std::net::SocketAddrV4::new(as_v4(ip), port))
                    })
                };
                match sent {
                    Ok(0) => {
                        busy = true;
                        break;
                    }
                    Ok(n) => {
                        for q in &chunk[..n] {
                            self.register(q.ticket, q.local, now);
                        }
                        at += n;
                    }
                    Err(Errno::ENOBUFS | Errno::EAGAIN | Errno::ENOMEM) => {
                        busy = true;
                        break;
                    }
                    Err(e) => {
                        // The first of the chunk failed: this machine's own
                        // firewall dropped it (EPERM: as for a connect, whose
                        // SYN the same rule drops, nothing answered and the
                        // retries decide), or there is no route.
                        let outcome = match e {
                            Errno::EPERM | Errno::EACCES => Outcome::NoResponse,
                            e => route_error(e as i32),
                        };
                        self.done.push((chunk[0].ticket, outcome));
                        at += 1;
                    }
                }
            }
            tickets.extend(queue.drain(at..).rev().map(|q| q.ticket));
            queue.clear();
            self.queued[usize::from(v6)] = queue;
        }
        busy
    }

    /// A probe is on the wire: wait for its answer until its deadline.
    fn register(&mut self, ticket: Ticket, local: IpAddr, now: Instant) {
        let target = ticket.addr;
        let tries = ticket.work.tries;
        let deadline = now + ticket.timeout;
        self.inflight.insert(
            target,
            Sent {
                ticket,
                local,
                at: now,
            },
        );
        self.deadlines.push(deadline, (target, tries));
        self.shared.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads what the sockets hold, up to about [`READ_TURN`] packets;
    /// returns how many were read.
    fn read_all(&mut self, now: Instant) -> usize {
        let mut n = 0;
        let mut got = Vec::with_capacity(RECV_BATCH);
        for v6 in [false, true] {
            for icmp in [false, true] {
                while n < READ_TURN {
                    let family = if v6 {
                        self.sockets.v6.as_ref()
                    } else {
                        self.sockets.v4.as_ref()
                    };
                    let Some(family) = family else { break };
                    let sock = if icmp { &family.icmp } else { &family.tcp };
                    let mut recv = std::mem::take(&mut self.recv);
                    recv_batch(sock.as_raw_fd(), &mut recv, &mut got);
                    n += got.len();
                    for (i, &(len, from)) in got.iter().enumerate() {
                        let buf = &recv[i * RECV_SIZE..i * RECV_SIZE + len];
                        match (v6, icmp) {
                            (false, _) => self.on_ipv4(buf, now),
                            (true, false) => {
                                if let Ok(tcp) = packet::parse_tcp(buf) {
                                    self.on_tcp(from, tcp, now);
                                }
                            }
                            (true, true) => {
                                if let Ok(Some(err)) = packet::parse_icmpv6_error(buf) {
                                    self.on_icmp(from, err, true, now);
                                }
                            }
                        }
                    }
                    self.recv = recv;
                    if got.len() < RECV_BATCH {
                        break;
                    }
                }
            }
        }
        n
    }

    fn on_ipv4(&mut self, buf: &[u8], now: Instant) {
        match packet::parse_ipv4_reply(buf) {
            Ok(Ipv4Reply::Tcp { src, tcp, .. }) => self.on_tcp(IpAddr::V4(src), tcp, now),
            Ok(Ipv4Reply::Icmp { from, error }) => {
                self.on_icmp(IpAddr::V4(from), error, false, now)
            }
            _ => {}
        }
    }

    fn on_tcp(&mut self, from: IpAddr, tcp: packet::TcpHeader, now: Instant) {
        if tcp.dst_port != self.cookie.port {
            return;
        }
        let (state, reason) = if tcp.has(flags::SYN | flags::ACK) {
            (PortState::Open, Reason::SynAck)
        } else if tcp.has(flags::RST) {
            (PortState::Closed, Reason::Rst)
        } else {
            return;
        };
        let target = SocketAddr::new(from, tcp.src_port);
        let Some(sent) = self.inflight.get(&target) else {
            return;
        };
        if tcp.ack != self.cookie.seq(sent.local, target).wrapping_add(1) {
            return;
        }
        self.answer(target, state, reason, Some(from), now);
    }

    fn on_icmp(&mut self, from: IpAddr, err: IcmpError, v6: bool, now: Instant) {
        let q = err.quoted;
        let unreachable = if v6 { err.kind == 1 } else { err.kind == 3 };
        if !unreachable || q.protocol != PROTO_TCP || q.src_port != self.cookie.port {
            return;
        }
        let target = SocketAddr::new(q.dst, q.dst_port);
        let Some(sent) = self.inflight.get(&target) else {
            return;
        };
        if q.seq != self.cookie.seq(sent.local, target) {
            return;
        }
        let reason = if v6 {
            reason_from_icmp6(err.kind, err.code)
        } else {
            reason_from_icmp4(err.kind, err.code)
        };
        self.answer(target, PortState::Filtered, reason, Some(from), now);
    }

    fn answer(
        &mut self,
        target: SocketAddr,
        state: PortState,
        reason: Reason,
        from: Option<IpAddr>,
        now: Instant,
    ) {
        if let Some(sent) = self.inflight.remove(&target) {
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            let outcome = Outcome::Answer {
                state,
                reason,
                rtt: now.saturating_duration_since(sent.at),
                from,
            };
            self.done.push((sent.ticket, outcome));
        }
    }

    /// Probes past their deadline went unanswered.
    fn expire(&mut self, now: Instant) {
        let (inflight, done, shared) = (&mut self.inflight, &mut self.done, &self.shared);
        self.deadlines.expire(now, |(target, tries)| {
            if inflight
                .get(&target)
                .is_some_and(|s| s.ticket.work.tries == tries)
                && let Some(sent) = inflight.remove(&target)
            {
                shared.pending.fetch_sub(1, Ordering::Relaxed);
                done.push((sent.ticket, Outcome::NoResponse));
            }
        });
    }
}

impl Sockets {
    /// Waits at most `wait` for any receiving socket to have something.
    fn wait_readable(&self, wait: Duration) {
        let fds: Vec<BorrowedFd<'_>> = [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .flat_map(|f| [f.tcp.as_fd(), f.icmp.as_fd()])
            .collect();
        let mut polls: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        let ms = wait.as_millis().clamp(1, 1000) as u16;
        let _ = poll(&mut polls, PollTimeout::from(ms));
    }
}

/// Reads up to [`RECV_BATCH`] datagrams from `fd` without blocking, each
/// into its [`RECV_SIZE`] slot of `bufs`; `got` receives (length, sender)
/// of each (the sender matters for IPv6 only: an IPv4 packet carries its
/// header). One `recvmmsg` call instead of one `recvfrom` per packet.
fn recv_batch(fd: std::os::fd::RawFd, bufs: &mut [u8], got: &mut Vec<(usize, IpAddr)>) {
    got.clear();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_BATCH, None);
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
        .chunks_mut(RECV_SIZE)
        .take(RECV_BATCH)
        .map(|b| [IoSliceMut::new(b)])
        .collect();
    let Ok(results) = recvmmsg(
        fd,
        &mut headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    ) else {
        return;
    };
    for r in results {
        let from = r
            .address
            .and_then(|a| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
            .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        // A datagram longer than its slot is cut (MSG_TRUNC is not asked
        // for, so `bytes` is what was copied).
        got.push((r.bytes.min(RECV_SIZE), from));
    }
}

/// Sends `chunk` (at most [`SEND_BATCH`] probes) with one `sendmmsg`;
/// returns how many went out (the first that failed, if any, is the
/// error of the next call, or of this one when it is the first).
fn send_batch<S: SockaddrLike + Copy>(
    fd: std::os::fd::RawFd,
    chunk: &[Queued],
    addr: impl Fn(IpAddr, u16) -> S,
) -> Result<usize, Errno> {
    let mut headers = MultiHeaders::<S>::preallocate(chunk.len(), None);
    let iovs: Vec<[IoSlice<'_>; 1]> = chunk
        .iter()
        .map(|q| [IoSlice::new(&q.bytes[..q.len])])
        .collect();
    // Raw sockets want port 0 (the port is in the TCP header).
    let addrs: Vec<Option<S>> = chunk
        .iter()
        .map(|q| Some(addr(q.ticket.addr.ip(), 0)))
        .collect();
    let cmsgs: [ControlMessage<'_>; 0] = [];
    let results = sendmmsg(fd, &mut headers, &iovs, &addrs, cmsgs, MsgFlags::empty())?;
    Ok(results.count())
}

fn as_v4(ip: IpAddr) -> std::net::Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a
            .to_ipv4_mapped()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

fn as_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// A send that failed for a reason of routing: nothing was learnt about
/// the port, and the engine reports it once per host.
fn route_error(errno: i32) -> Outcome {
    Outcome::Local(LocalError::Other(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_depends_on_every_part_of_the_four_tuple_and_the_key() {
        let key = std::collections::hash_map::RandomState::new();
        let cookie = Cookie { key, port: 40000 };
        let local: IpAddr = "198.18.0.1".parse().unwrap();
        let target: SocketAddr = "198.18.0.2:80".parse().unwrap();
        let seq = cookie.seq(local, target);
        assert_eq!(seq, cookie.seq(local, target), "stable within a scan");
        let others = [
            cookie.seq("198.18.0.3".parse().unwrap(), target),
            cookie.seq(local, "198.18.0.4:80".parse().unwrap()),
            cookie.seq(local, "198.18.0.2:81".parse().unwrap()),
            Cookie {
                key: cookie.key.clone(),
                port: 40001,
            }
            .seq(local, target),
            Cookie {
                key: std::collections::hash_map::RandomState::new(),
                port: 40000,
            }
            .seq(local, target),
        ];
        // Each differs from the probe's (a 32-bit collision is a 1-in-4-billion event
        // per comparison: the test would need to be astonishingly unlucky).
        for (i, other) in others.iter().enumerate() {
            assert_ne!(*other, seq, "variant {i}");
        }
    }

    #[test]
    fn the_address_hash_spreads_a_16_over_the_low_bits() {
        use std::collections::HashSet;
        let build = BuildHasherDefault::<AddrHasher>::default();
        let mut addrs = HashSet::new();
        let mut addr_ports = HashSet::new();
        for host in 0..65_536u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0xC612_0000 | host));
            addrs.insert(build.hash_one(ip) & 0xffff);
            addr_ports.insert(build.hash_one(SocketAddr::new(ip, 80)) & 0xffff);
        }
        // A /16 over 65,536 buckets: a good hash fills most of them.
        assert!(addrs.len() > 40_000, "{} buckets of 65,536", addrs.len());
        assert!(addr_ports.len() > 40_000, "{} buckets", addr_ports.len());
    }
}
