//! The UDP scan (`-sU`): a datagram to each port, and what came back.
//!
//! Without privilege: one unconnected UDP socket per address family sends
//! every probe (the payload of [`sockeye_proto::udp_payloads`] for a
//! well-known port, an empty datagram elsewhere). A datagram back from the
//! probed address and port means open (`udp-response`); one from anywhere
//! else is ignored. ICMP errors come through `IP_RECVERR`/`IPV6_RECVERR`:
//! the kernel queues each on the socket's error queue with the ICMP type
//! and code, the address that sent it, and the destination of the datagram
//! it is about, so one socket tells every port apart. Port unreachable is
//! closed (`port-unreach`); another unreachable is filtered, named by its
//! code; silence after the retries is open|filtered (`no-response`), as
//! nmap defines them.
//!
//! Linux (and most stacks) limit the ICMP errors they send to one
//! destination: on Linux a burst of 6, then one a second
//! (`net.ipv4.icmp_ratelimit`). Past the burst, a closed port is silent. The
//! scheduler sees it happen (a host that refused ports stops answering), stops
//! counting silence as an answer, measures the pace at which the host's
//! errors come, and from then on sends to that host at that pace, so each
//! probe meets a fresh token and silence means something again. A port
//! that was silent and later refused proves the limit (and lengthens the
//! pace); the run's [`UdpStats`] says which hosts were paced and how.
//!
//! The limit is per address the errors go to. With `--source A,B,...` each
//! source address has a socket of its own (a lane), a host's probes take
//! the lanes in turn, and each lane meets its own bucket at the target: the
//! pace is measured per lane and the host is probed N times as often.
//!
//! The scheduler is one task: a UDP scan waits on other hosts' clocks, not
//! on this machine, so one thread keeps up with any pace the targets allow.
//!
//! With `--resume`, the same task saves the UDP part of the checkpoint
//! ([`super::resume::UdpPart`]) every [`resume::CHECKPOINT_EVERY`] and when
//! it stops: hosts start in target order, so the first host not started,
//! and for each host in flight the ports it decided (a bitmap over the
//! port list), its counts and its learned pace, say where to go on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::connect::{reason_from_icmp4, reason_from_icmp6};
use super::engine::{GROUP_PROBES, HostEnd, Progress, ScanConfig, ScanStats, count_port};
use super::resume::{self, CountsSnap, DoneBits, Logged, Part, Resume, UdpHostSnap, UdpPart};
use super::timing::{RateLimiter, RttEstimator};
use crate::report::{
    Emit, Event, PortCount, PortResult, PortState, Proto, Reason, TargetError, TargetErrorKind,
};
use crate::target::permute::Permutation;
use crate::target::{Target, TargetSet};

/// Hosts scanned at once at most (fewer when they have many ports: about
/// [`GROUP_PROBES`] pairs are held in memory at a time).
const MAX_ACTIVE_HOSTS: u64 = 4096;

/// While measuring a host's ICMP pace: the spacing of the probes sent to it.
/// Much shorter than any pace worth measuring, so that every token the host
/// earns is spent by the next probe.
const MEASURE_GAP: Duration = Duration::from_millis(20);

/// ICMP errors to see (after the limit showed) before the pace is known
/// (see [`pace_from`]). Measuring costs nothing: the host answers at its
/// pace meanwhile, and each error decides a port.
const MEASURE_ARRIVALS: usize = 8;

/// Measuring gives up after this long without an ICMP error from the host:
/// the silent ports are silent for another reason than a rate limit.
const MEASURE_QUIET: Duration = Duration::from_secs(3);

/// The pace a host is probed at is never shorter or longer than these.
const MIN_PERIOD: Duration = Duration::from_millis(5);
const MAX_PERIOD: Duration = Duration::from_secs(5);

/// How long sending pauses when this machine is short of buffers.
const LOCAL_BACKOFF: Duration = Duration::from_millis(10);

/// Receive buffer asked for (as root beyond `net.core.rmem_max`, else
/// capped by it): every ICMP error of the probes in flight must fit in the
/// error queue, or the kernel drops errors and closed ports look silent.
const RECV_BUFFER: usize = 4 << 20;

/// Bytes of receive buffer a probe in flight may need: the kernel charges
/// an error queue entry one to two kilobytes (more on loopback), and a port
/// with two requests may get two errors.
const BUFFER_PER_PROBE: usize = 4096;

/// What a UDP scan found besides the port states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpStats {
    pub scan: ScanStats,
    /// Hosts whose ICMP errors proved rate limited: a port silent on one
    /// probe answered port-unreachable to a later one, and the pace of the
    /// host's errors could be measured.
    pub limited_hosts: u64,
    /// The longest pace a limited host was probed at.
    pub slowest_period: Option<Duration>,
    /// Closed ports of those hosts that answered only when sent again.
    pub recovered: u64,
}

/// How a host is being probed.
#[derive(Debug, Clone, PartialEq)]
enum Pace {
    /// As fast as the window allows; silence counts as a try.
    Free,
    /// The host's errors stopped coming: probes every [`MEASURE_GAP`],
    /// silence counts for nothing, ICMP arrival times are kept.
    Measuring {
        since: Instant,
        /// (lane, arrival) of each ICMP error.
        arrivals: Vec<(usize, Instant)>,
    },
    /// One probe per period, each expected to meet a token; silence counts.
    Paced { period: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Flight {
    sent: Instant,
    /// Counted probes of this port before this one that got no answer.
    silent: u8,
    /// Whether this probe's silence counts as a try.
    counted: bool,
    /// Some probe of this port went unanswered, counted or not.
    missed: bool,
    /// The lane it was sent from.
    lane: usize,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    port: u16,
    silent: u8,
    missed: bool,
    /// Never sent before (for the progress count).
    fresh: bool,
}

struct Host {
    index: u64,
    target: Target,
    started: SystemTime,
    /// Ports in probe order; `next` is the first never sent.
    order: Permutation,
    next: u64,
    /// Ports decided (or given up), by their place in the port list: a
    /// resumed host skips them.
    done: DoneBits,
    queue: VecDeque<Queued>,
    flights: HashMap<u16, Flight>,
    undecided: u64,
    counts: Vec<PortCount>,
    answered: bool,
    rtt: RttEstimator,
    pace: Pace,
    next_send: Instant,
    /// ICMP errors from the host so far (any port, any code).
    icmp: u64,
    recovered: u64,
    /// Measured once and found no limit: do not measure again without proof.
    cleared: bool,
    /// A pace was measured: the host limits its errors.
    paced: bool,
    /// A local error made the host unprobeable (reported once).
    failed: bool,
    /// The lanes (source sockets) of the host's address family, and the
    /// next to send from.
    lanes: usize,
    next_lane: usize,
}

impl Host {
    /// A host not probed yet: its ports in an order of its own.
    fn new(index: u64, target: Target, n_ports: u64, seed: u64, lanes: usize) -> Host {
        let key = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Host {
            index,
            target,
            started: SystemTime::now(),
            order: Permutation::new(n_ports, key),
            next: 0,
            done: DoneBits::with_len(n_ports),
            queue: VecDeque::new(),
            flights: HashMap::new(),
            undecided: n_ports,
            counts: Vec::new(),
            answered: false,
            rtt: RttEstimator::default(),
            pace: Pace::Free,
            next_send: Instant::now(),
            icmp: 0,
            recovered: 0,
            cleared: false,
            paced: false,
            failed: false,
            lanes,
            next_lane: 0,
        }
    }

    fn has_work(&self, n_ports: u64) -> bool {
        !self.queue.is_empty() || self.next < n_ports
    }

    fn pop(&mut self, ports: &[u16]) -> Option<Queued> {
        if let Some(q) = self.queue.pop_front() {
            return Some(q);
        }
        while self.next < ports.len() as u64 {
            let i = self.order.get(self.next);
            self.next += 1;
            if self.done.get(i) {
                // Decided by the run this one resumes.
                continue;
            }
            return Some(Queued {
                port: ports[i as usize],
                silent: 0,
                missed: false,
                fresh: true,
            });
        }
        None
    }
}

/// What one read from a socket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// A datagram from this address and port.
    Reply(SocketAddr),
    /// An ICMP error about a datagram sent to `dest` from lane `lane`.
    Icmp {
        dest: SocketAddr,
        state: PortState,
        reason: Reason,
        from: Option<IpAddr>,
        lane: usize,
    },
}

/// The scan's sockets: per address family, one per `--source` address of
/// that family (its lanes), or one bound to the wildcard; made when first
/// needed.
#[derive(Default)]
struct Sockets {
    sources: Vec<IpAddr>,
    v4: Vec<UdpSocket>,
    v6: Vec<UdpSocket>,
    /// Probes in flight whose errors the smallest receive buffer holds.
    room: Option<usize>,
}

fn open_socket(v6: bool, source: Option<IpAddr>) -> io::Result<UdpSocket> {
    let (domain, any) = if v6 {
        (Domain::IPV6, IpAddr::from(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::from(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    if v6 {
        socket.set_only_v6(true)?;
        setsockopt(&socket, sockopt::Ipv6RecvErr, &true).map_err(io::Error::from)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvErr, &true).map_err(io::Error::from)?;
    }
    // Best effort: the window shrinks to what the buffer holds.
    if setsockopt(&socket, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    socket.bind(&SocketAddr::new(source.unwrap_or(any), 0).into())?;
    UdpSocket::from_std(socket.into())
}

impl Sockets {
    fn new(sources: &[IpAddr]) -> Sockets {
        Sockets {
            sources: sources.to_vec(),
            ..Sockets::default()
        }
    }

    /// The `--source` addresses of a family.
    fn sources_of(&self, v6: bool) -> Vec<IpAddr> {
        self.sources
            .iter()
            .copied()
            .filter(|a| a.is_ipv6() == v6)
            .collect()
    }

    /// The socket of `lane` (taken modulo the family's lanes).
    fn get(&mut self, v6: bool, lane: usize) -> io::Result<&UdpSocket> {
        let sources = self.sources_of(v6);
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        if slot.is_empty() {
            let wanted: Vec<Option<IpAddr>> = if sources.is_empty() {
                vec![None]
            } else {
                sources.into_iter().map(Some).collect()
            };
            let mut opened = Vec::with_capacity(wanted.len());
            for source in wanted {
                opened.push(open_socket(v6, source)?);
            }
            for socket in &opened {
                let buffer = socket2::SockRef::from(socket)
                    .recv_buffer_size()
                    .unwrap_or(BUFFER_PER_PROBE);
                // Errors of the probes in flight may all queue on one lane.
                let room = (buffer / BUFFER_PER_PROBE).max(1);
                self.room = Some(self.room.map_or(room, |r| r.min(room)));
            }
            *slot = opened;
        }
        let n = slot.len();
        Ok(&slot[lane % n])
    }

    /// Waits until some socket has a datagram or an error queued.
    async fn ready(&self) {
        let waits: Vec<_> = self
            .v4
            .iter()
            .chain(&self.v6)
            .map(|s| Box::pin(s.ready(Interest::READABLE | Interest::ERROR)))
            .collect();
        if waits.is_empty() {
            return std::future::pending::<()>().await;
        }
        let _ = futures::future::select_all(waits).await;
    }

    /// Everything queued on every socket now, without waiting.
    fn drain(&self, out: &mut Vec<(Heard, Instant)>) {
        for lanes in [&self.v4, &self.v6] {
            for (lane, s) in lanes.iter().enumerate() {
                drain_socket(s, lane, out);
            }
        }
    }
}

/// Most reads per socket and per drain, so that a flood cannot keep the
/// scheduler from its timers.
const DRAIN_MAX: usize = 4096;

fn drain_socket(s: &UdpSocket, lane: usize, out: &mut Vec<(Heard, Instant)>) {
    let mut buf = [0u8; 2048];
    for _ in 0..DRAIN_MAX {
        match s.try_recv_from(&mut buf) {
            Ok((_, from)) => out.push((Heard::Reply(from), Instant::now())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // The pending ICMP error, reported once by a normal read; its
            // details are on the error queue, read below.
            Err(_) => {}
        }
    }
    for _ in 0..DRAIN_MAX {
        match s.try_io(Interest::ERROR, || read_error_queue(s.as_raw_fd())) {
            Ok(Some(mut heard)) => {
                if let Heard::Icmp { lane: l, .. } = &mut heard {
                    *l = lane;
                }
                out.push((heard, Instant::now()));
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

/// One entry of the error queue: `Ok(None)` for an entry that is not an
/// ICMP destination-unreachable, `WouldBlock` when the queue is empty.
fn read_error_queue(fd: std::os::fd::RawFd) -> io::Result<Option<Heard>> {
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let mut data = [0u8; 64];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let msg = recvmsg::<SockaddrStorage>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let Some(dest) = msg.address.as_ref().and_then(sockaddr) else {
        return Ok(None);
    };
    for c in msg.cmsgs().map_err(io::Error::from)? {
        let heard = match c {
            ControlMessageOwned::Ipv4RecvErr(err, from)
                if err.ee_origin == nix::libc::SO_EE_ORIGIN_ICMP =>
            {
                let from = from
                    .filter(|a| i32::from(a.sin_family) == nix::libc::AF_INET)
                    .map(|a| IpAddr::from(a.sin_addr.s_addr.to_ne_bytes()));
                classify(err.ee_type, err.ee_code, false, dest, from)
            }
            ControlMessageOwned::Ipv6RecvErr(err, from)
                if err.ee_origin == nix::libc::SO_EE_ORIGIN_ICMP6 =>
            {
                let from = from
                    .filter(|a| i32::from(a.sin6_family) == nix::libc::AF_INET6)
                    .map(|a| IpAddr::from(a.sin6_addr.s6_addr));
                classify(err.ee_type, err.ee_code, true, dest, from)
            }
            _ => continue,
        };
        return Ok(heard);
    }
    Ok(None)
}

fn sockaddr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((a.ip(), a.port())));
    }
    s.as_sockaddr_in6()
        .map(|a| SocketAddr::from((a.ip(), a.port())))
}

/// nmap's reading of an ICMP error about a UDP probe: port unreachable is
/// closed, another destination-unreachable is filtered; other types (time
/// exceeded, say) decide nothing.
fn classify(kind: u8, code: u8, v6: bool, dest: SocketAddr, from: Option<IpAddr>) -> Option<Heard> {
    let (unreach, reason) = if v6 {
        (kind == 1, reason_from_icmp6(kind, code))
    } else {
        (kind == 3, reason_from_icmp4(kind, code))
    };
    if !unreach {
        return None;
    }
    let state = if reason == Reason::PortUnreach {
        PortState::Closed
    } else {
        PortState::Filtered
    };
    Some(Heard::Icmp {
        dest,
        state,
        reason,
        from,
        lane: 0,
    })
}

/// What sending one probe did.
enum Sent {
    Ok,
    /// Short of buffers: try again shortly, nothing was learnt.
    Busy,
    /// A verdict without the network (this machine's firewall, no route).
    Verdict(PortState, Reason),
    /// This address cannot be probed from here at all.
    Fail(String),
}

fn send_probe(sockets: &mut Sockets, addr: SocketAddr, lane: usize) -> Sent {
    let socket = match sockets.get(addr.is_ipv6(), lane) {
        Ok(s) => s,
        Err(e) => return Sent::Fail(format!("cannot open a UDP socket: {e}")),
    };
    let payloads = sockeye_proto::udp_payloads::for_port(addr.port());
    let empty: [&[u8]; 1] = [&[]];
    let payloads = if payloads.is_empty() {
        &empty[..]
    } else {
        payloads
    };
    // Straight to the kernel: the socket is non-blocking, and a send needs
    // no readiness from the runtime (a full buffer is EAGAIN, read below).
    let sock = socket2::SockRef::from(socket);
    let to = socket2::SockAddr::from(addr);
    for p in payloads {
        // An ICMP error that came for an earlier probe is reported once by
        // the next call on the socket, this send included (the datagram is
        // then not sent; the error's details wait on the error queue). Only
        // an error that comes back on a second try is about this probe.
        let sent = sock.send_to(p, &to).or_else(|_| sock.send_to(p, &to));
        if let Err(e) = sent {
            return match e.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ENOBUFS | Errno::ENOMEM | Errno::EAGAIN) => Sent::Busy,
                // This machine's own firewall, as the connect scan reads it.
                Some(Errno::EPERM | Errno::EACCES) => {
                    Sent::Verdict(PortState::Filtered, Reason::AdminProhibited)
                }
                Some(Errno::EHOSTUNREACH) => {
                    Sent::Verdict(PortState::Filtered, Reason::HostUnreach)
                }
                Some(Errno::ENETUNREACH) => Sent::Verdict(PortState::Filtered, Reason::NetUnreach),
                // Errors of earlier probes, twice in a row: try again soon.
                Some(Errno::ECONNREFUSED | Errno::EHOSTDOWN | Errno::EPROTO) => Sent::Busy,
                _ => Sent::Fail(e.to_string()),
            };
        }
    }
    Sent::Ok
}

struct Scan {
    cfg: ScanConfig,
    targets: Arc<TargetSet>,
    progress: Arc<Progress>,
    hosts: HashMap<u64, Host>,
    by_addr: HashMap<IpAddr, Vec<u64>>,
    next_host: u64,
    active_max: u64,
    inflight: usize,
    /// Probe deadlines: (when, host, port, sent) — stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64, u16, Instant)>>,
    stats: UdpStats,
    out: Vec<Event>,
    /// Each port's place in `cfg.ports` (the bit of a host's `done`).
    port_index: HashMap<u16, u64>,
    /// Every event sent to the printers, in order (`--resume` only).
    journal: Option<Vec<Logged>>,
}

impl Scan {
    /// The lanes (source addresses) a host at `addr` is probed from.
    fn lanes_for(&self, addr: IpAddr) -> usize {
        self.cfg
            .sources
            .iter()
            .filter(|a| a.is_ipv6() == addr.is_ipv6())
            .count()
            .max(1)
    }

    fn activate(&mut self) {
        while (self.hosts.len() as u64) < self.active_max && self.next_host < self.targets.len() {
            let index = self.next_host;
            self.next_host += 1;
            let n = self.cfg.ports.len() as u64;
            let Some(target) = self.targets.get(index) else {
                // Excluded: its pairs are done without a probe.
                self.progress.done.fetch_add(n, Ordering::Relaxed);
                self.progress.sent.fetch_add(n, Ordering::Relaxed);
                continue;
            };
            let lanes = self.lanes_for(target.addr);
            self.by_addr.entry(target.addr).or_default().push(index);
            self.hosts
                .insert(index, Host::new(index, target, n, self.cfg.seed, lanes));
        }
    }

    /// Records a verdict and emits what the printers need.
    fn decide(&mut self, id: u64, port: u16, state: PortState, reason: Reason, tries: u8) {
        let Some(h) = self.hosts.get_mut(&id) else {
            return;
        };
        let rtt = h.flights.remove(&port).map(|f| {
            self.inflight -= 1;
            f.sent.elapsed()
        });
        h.queue.retain(|q| q.port != port);
        h.undecided -= 1;
        if let Some(&i) = self.port_index.get(&port) {
            h.done.set(i);
        }
        let st = &mut self.stats.scan;
        st.ports += 1;
        match state {
            PortState::Open => st.open += 1,
            PortState::Closed => st.closed += 1,
            PortState::Filtered => st.filtered += 1,
            PortState::OpenFiltered => st.open_filtered += 1,
        }
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        if state == PortState::Open {
            self.progress.open.fetch_add(1, Ordering::Relaxed);
        }
        if count_port(&mut h.counts, Proto::Udp, state, reason, self.cfg.emit_all) {
            self.out.push(Event::Port(PortResult {
                host_index: id,
                addr: h.target.addr,
                host: h.target.name.clone(),
                port,
                proto: Proto::Udp,
                state,
                reason,
                rtt: rtt.filter(|_| reason != Reason::NoResponse),
                tries,
            }));
        }
    }

    /// The host whose undecided `port` an answer from `addr` is about.
    fn owner(&self, addr: IpAddr, port: u16) -> Option<u64> {
        let ids = self.by_addr.get(&addr)?;
        let undecided = |id: &&u64| {
            self.hosts.get(id).is_some_and(|h| {
                h.flights.contains_key(&port) || h.queue.iter().any(|q| q.port == port)
            })
        };
        ids.iter().find(undecided).copied()
    }

    fn heard(&mut self, heard: Heard, at: Instant) {
        let (dest, state, reason, from, lane) = match heard {
            Heard::Reply(from) => (
                from,
                PortState::Open,
                Reason::UdpResponse,
                Some(from.ip()),
                0,
            ),
            Heard::Icmp {
                dest,
                state,
                reason,
                from,
                lane,
            } => (dest, state, reason, from, lane),
        };
        let Some(id) = self.owner(dest.ip(), dest.port()) else {
            return;
        };
        let retries = self.cfg.retries;
        let Some(h) = self.hosts.get_mut(&id) else {
            return;
        };
        let flight = h.flights.get(&dest.port()).copied();
        let (silent, missed) = flight.map_or_else(
            || {
                h.queue
                    .iter()
                    .find(|q| q.port == dest.port())
                    .map_or((0, false), |q| (q.silent, q.missed))
            },
            |f| (f.silent, f.missed),
        );
        if let Some(f) = flight {
            h.rtt.sample(at.saturating_duration_since(f.sent));
        }
        let icmp = matches!(heard, Heard::Icmp { .. });
        if from == Some(h.target.addr) {
            h.answered = true;
        }
        if icmp {
            h.icmp += 1;
            if let Pace::Measuring { arrivals, .. } = &mut h.pace {
                arrivals.push((lane, at));
            }
        }
        if let Pace::Paced { period } = h.pace {
            // The host's bucket as we model it: an error spends its token
            // and the next is due a period later; a reply spends none, so
            // its lane may send again at once.
            if icmp {
                h.next_send = at + period;
            } else {
                h.next_send = at.min(h.next_send);
                if let Some(f) = flight {
                    h.next_lane = f.lane;
                }
            }
        }
        if icmp && missed && state == PortState::Closed {
            // Silent before, refused now: the host's errors are limited.
            h.recovered += 1;
            match &mut h.pace {
                // A counted probe met no token: the pace is too quick.
                Pace::Paced { period } if silent > 0 => {
                    *period = (*period * 11 / 10).min(MAX_PERIOD);
                    tracing::debug!(host = %h.target.addr, period = ?*period, port = dest.port(), "a paced probe met no token; slower");
                }
                Pace::Paced { .. } => {}
                Pace::Free => {
                    h.pace = Pace::Measuring {
                        since: at,
                        arrivals: vec![(lane, at)],
                    };
                    uncount_flights(h);
                }
                Pace::Measuring { .. } => {}
            }
        }
        let tries = silent.saturating_add(1).min(retries.saturating_add(1));
        self.decide(id, dest.port(), state, reason, tries);
    }

    fn timeout(&mut self, id: u64, port: u16, sent: Instant, now: Instant) {
        let retries = self.cfg.retries;
        let Some(h) = self.hosts.get_mut(&id) else {
            return;
        };
        let Some(f) = h.flights.get(&port).copied() else {
            return;
        };
        if f.sent != sent {
            return;
        }
        if f.counted && matches!(h.pace, Pace::Paced { .. }) {
            // Silence spent no token: the next probe need not wait, on the
            // lane whose token it is.
            h.next_send = h.next_send.min(now);
            h.next_lane = f.lane;
        }
        if f.counted && h.pace == Pace::Free && h.icmp > 0 && !h.cleared {
            // Closed ports answered, now one is silent: measure the
            // host's ICMP pace before believing any more silence.
            h.pace = Pace::Measuring {
                since: now,
                arrivals: Vec::new(),
            };
            uncount_flights(h);
        }
        let f = h.flights.get(&port).copied().unwrap_or(f);
        h.flights.remove(&port);
        self.inflight -= 1;
        let silent = if f.counted {
            f.silent.saturating_add(1)
        } else {
            f.silent
        };
        if silent > retries {
            // Put it back for decide() to find.
            h.flights.insert(port, f);
            self.inflight += 1;
            self.decide(
                id,
                port,
                PortState::OpenFiltered,
                Reason::NoResponse,
                silent,
            );
        } else {
            h.queue.push_back(Queued {
                port,
                silent,
                missed: true,
                fresh: false,
            });
        }
    }

    /// Moves measuring hosts on once their pace is known (or shown not to
    /// be limited).
    fn settle(&mut self, now: Instant) {
        for h in self.hosts.values_mut() {
            let Pace::Measuring { since, arrivals } = &h.pace else {
                continue;
            };
            let last = arrivals.last().map_or(*since, |&(_, t)| t);
            let lanes = h.lanes.max(1);
            if arrivals.len() >= MEASURE_ARRIVALS * lanes {
                // Each lane is its own bucket at the target, probed every
                // `lanes` measuring gaps: its pace is measured alone, and
                // the host is probed `lanes` times as often.
                let lane_gap = MEASURE_GAP * lanes as u32;
                let mut periods = Vec::with_capacity(lanes);
                let mut unlimited = false;
                for lane in 0..lanes {
                    let times: Vec<Instant> = arrivals
                        .iter()
                        .filter(|&&(l, _)| l == lane)
                        .map(|&(_, t)| t)
                        .collect();
                    if times.len() < 2 {
                        continue;
                    }
                    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
                    gaps.sort_unstable();
                    let median = gaps[gaps.len() / 2];
                    if median <= lane_gap * 2 {
                        // Errors came as fast as we asked: no limit at this pace.
                        unlimited = true;
                    }
                    periods.push(pace_from(&times, median, lane_gap));
                }
                let Some(&slowest) = periods.iter().max() else {
                    continue;
                };
                if unlimited {
                    h.pace = Pace::Free;
                    h.cleared = true;
                    continue;
                }
                let period = (slowest / lanes as u32).clamp(MIN_PERIOD, MAX_PERIOD);
                tracing::debug!(host = %h.target.addr, ?period, lanes, "ICMP pace measured");
                // Each error spent its lane's token: the lane whose last
                // error came first has the first token again, a lane's
                // period after it; the others follow a host period apart.
                let (first_lane, first_at) = (0..lanes)
                    .filter_map(|lane| {
                        arrivals
                            .iter()
                            .rev()
                            .find(|&&(l, _)| l == lane)
                            .map(|&(_, t)| (lane, t))
                    })
                    .min_by_key(|&(_, t)| t)
                    .unwrap_or((0, last));
                h.next_lane = first_lane;
                h.next_send = first_at + slowest.clamp(MIN_PERIOD, MAX_PERIOD);
                h.pace = Pace::Paced { period };
                h.paced = true;
            } else if now.saturating_duration_since(last) >= MEASURE_QUIET {
                // The slowest gap between two errors of one lane.
                let slowest = (0..lanes)
                    .filter_map(|lane| {
                        let times: Vec<Instant> = arrivals
                            .iter()
                            .filter(|&&(l, _)| l == lane)
                            .map(|&(_, t)| t)
                            .collect();
                        times.windows(2).map(|w| w[1] - w[0]).max()
                    })
                    .max();
                if let Some(slowest) = slowest {
                    // Few errors but some: pace at the slowest gap seen.
                    h.pace = Pace::Paced {
                        period: (slowest * 51 / 50 / lanes as u32).clamp(MIN_PERIOD, MAX_PERIOD),
                    };
                    h.paced = true;
                } else {
                    // The silent ports stay silent however slowly they are
                    // asked: not a rate limit.
                    h.pace = Pace::Free;
                    h.cleared = true;
                }
            }
        }
    }

    /// Sends what is due; returns the next time something will be due.
    fn send_due(
        &mut self,
        sockets: &mut Sockets,
        limiter: &mut Option<RateLimiter>,
        now: Instant,
        backoff: &mut Option<Instant>,
    ) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let soonest = |t: Instant, wake: &mut Option<Instant>| {
            *wake = Some(wake.map_or(t, |w| w.min(t)));
        };
        if let Some(b) = *backoff {
            if b > now {
                return Some(b);
            }
            *backoff = None;
        }
        let ids: Vec<u64> = {
            let mut v: Vec<u64> = self.hosts.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let n_ports = self.cfg.ports.len() as u64;
        // Round-robin: one probe per host per round, so that one host with
        // many ports does not starve the others of the window.
        loop {
            let mut sent_any = false;
            for &id in &ids {
                if self.inflight
                    >= self
                        .cfg
                        .max_inflight
                        .min(sockets.room.unwrap_or(usize::MAX))
                {
                    return wake;
                }
                let Some(h) = self.hosts.get_mut(&id) else {
                    continue;
                };
                if h.failed || !h.has_work(n_ports) {
                    continue;
                }
                let (gap, counted) = match &h.pace {
                    Pace::Free => (None, true),
                    Pace::Measuring { .. } => (Some(MEASURE_GAP), false),
                    Pace::Paced { period } => (Some(*period), true),
                };
                if gap.is_some() {
                    if h.next_send > now {
                        soonest(h.next_send, &mut wake);
                        continue;
                    }
                    // A paced probe waits for the host's previous one: two
                    // at once would share one token.
                    if counted && !h.flights.is_empty() {
                        continue;
                    }
                }
                if let Some(l) = limiter.as_mut()
                    && let Err(at) = l.try_take(now)
                {
                    soonest(at, &mut wake);
                    return wake;
                }
                let Some(q) = h.pop(&self.cfg.ports) else {
                    continue;
                };
                if q.fresh {
                    self.progress.sent.fetch_add(1, Ordering::Relaxed);
                }
                let addr = SocketAddr::new(h.target.addr, q.port);
                let lane = h.next_lane % h.lanes.max(1);
                match send_probe(sockets, addr, lane) {
                    Sent::Ok => {
                        h.next_lane = lane + 1;
                        self.stats.scan.probes += 1;
                        let flight = Flight {
                            sent: now,
                            silent: q.silent,
                            counted,
                            missed: q.missed,
                            lane,
                        };
                        h.flights.insert(q.port, flight);
                        self.inflight += 1;
                        let timeout = h.rtt.timeout(&self.cfg.rtt);
                        self.timers.push(Reverse((now + timeout, id, q.port, now)));
                        if let Some(g) = gap {
                            h.next_send = now + g;
                            soonest(h.next_send, &mut wake);
                        }
                        sent_any = true;
                    }
                    Sent::Busy => {
                        h.queue.push_front(Queued { fresh: false, ..q });
                        *backoff = Some(now + LOCAL_BACKOFF);
                        return Some(now + LOCAL_BACKOFF);
                    }
                    Sent::Verdict(state, reason) => {
                        h.queue.push_front(q);
                        self.decide(id, q.port, state, reason, q.silent.saturating_add(1));
                        sent_any = true;
                    }
                    Sent::Fail(message) => {
                        h.failed = true;
                        self.out.push(Event::TargetError(TargetError {
                            kind: TargetErrorKind::Probe,
                            target: h.target.addr.to_string(),
                            message,
                        }));
                        // Its pairs are counted as unprobed, in no state.
                        let left = h.undecided;
                        self.stats.scan.unprobed += left;
                        self.progress.done.fetch_add(left, Ordering::Relaxed);
                        self.inflight -= h.flights.len();
                        h.flights.clear();
                        h.queue.clear();
                        h.next = n_ports;
                        h.undecided = 0;
                        for i in 0..n_ports {
                            h.done.set(i);
                        }
                    }
                }
            }
            if !sent_any {
                return wake;
            }
        }
    }

    /// Hosts with every port decided: their `HostDone`, in target order.
    fn finish_done(&mut self, all: bool) {
        let mut done: Vec<u64> = self
            .hosts
            .values()
            .filter(|h| all || h.undecided == 0)
            .map(|h| h.index)
            .collect();
        done.sort_unstable();
        for id in done {
            let Some(h) = self.hosts.remove(&id) else {
                continue;
            };
            if let Some(v) = self.by_addr.get_mut(&h.target.addr) {
                v.retain(|&x| x != id);
                if v.is_empty() {
                    self.by_addr.remove(&h.target.addr);
                }
            }
            self.inflight -= h.flights.len();
            if h.recovered > 0 && h.paced {
                self.stats.limited_hosts += 1;
                self.stats.recovered += h.recovered;
                if let Pace::Paced { period } = h.pace {
                    self.stats.slowest_period =
                        Some(self.stats.slowest_period.map_or(period, |p| p.max(period)));
                }
            }
            if h.failed && h.counts.is_empty() {
                continue;
            }
            self.stats.scan.hosts += 1;
            let end = HostEnd {
                counts: h.counts,
                up: h.answered,
                rtt: h.rtt,
                // A UDP port answers only when a service does: no tarpit
                // makes every port of a host open.
                answers_all: false,
            };
            let done = end.done(id, h.target, h.started, &self.cfg.rtt);
            self.out.push(Event::HostDone(done));
        }
    }

    fn finished(&self) -> bool {
        self.hosts.is_empty() && self.next_host >= self.targets.len()
    }
}

impl Scan {
    /// The events decided since the last call, noted in the journal.
    fn take_out(&mut self) -> Vec<Event> {
        let out = std::mem::take(&mut self.out);
        if let Some(journal) = self.journal.as_mut() {
            journal.extend(out.iter().filter_map(Logged::of));
        }
        out
    }

    /// Takes up where the run that saved `part` stopped: hosts it finished
    /// are not probed again, its hosts in flight keep their decided ports,
    /// counts and pace, and the counts of the run go on.
    fn restore(&mut self, part: &UdpPart) {
        part.counts.restore_into(&mut self.stats.scan);
        self.stats.limited_hosts = part.limited_hosts;
        self.stats.recovered = part.recovered;
        self.stats.slowest_period = part.slowest_period_ms.map(Duration::from_millis);
        if let Some(journal) = self.journal.as_mut() {
            journal.clone_from(&part.events);
        }
        let n = self.cfg.ports.len() as u64;
        let total = self.targets.len();
        self.next_host = if part.complete {
            total
        } else {
            part.next_host.min(total)
        };
        let mut undecided = 0u64;
        for snap in part.hosts.iter().filter(|_| !part.complete) {
            if snap.index >= self.next_host {
                continue;
            }
            let Some(target) = self.targets.get(snap.index) else {
                continue;
            };
            let lanes = self.lanes_for(target.addr);
            let mut h = Host::new(snap.index, target, n, self.cfg.seed, lanes);
            match DoneBits::from_hex(&snap.done, n) {
                Some(done) => {
                    h.undecided = n.saturating_sub(done.count());
                    h.done = done;
                    h.counts.clone_from(&snap.counts);
                    h.started = snap.started;
                    h.answered = snap.answered;
                    h.rtt = snap.rtt;
                    h.icmp = snap.icmp;
                    h.recovered = snap.recovered;
                    h.paced = snap.paced;
                    h.cleared = snap.cleared;
                    h.failed = snap.failed;
                    if let Some(ms) = snap.period_ms {
                        // Kept per source address: this run may have
                        // another number of them.
                        let lane_period =
                            Duration::from_millis(ms).min(MAX_PERIOD * lanes.max(1) as u32);
                        let period = (lane_period / lanes as u32).clamp(MIN_PERIOD, MAX_PERIOD);
                        h.pace = Pace::Paced { period };
                        // Each lane's last token may have been spent just
                        // before the stop: one is sure to be there a lane's
                        // period from now.
                        h.next_send = Instant::now() + lane_period;
                    }
                }
                None => {
                    tracing::warn!(
                        host = snap.index,
                        "checkpoint bitmap does not fit; rescanning the host"
                    );
                    forget_counts(&mut self.stats.scan, &snap.counts);
                    // Its results so far are found again: not twice.
                    let addr = h.target.addr.to_string();
                    if let Some(journal) = self.journal.as_mut() {
                        journal.retain(|ev| match ev {
                            Logged::Port(p) => p.host_index != snap.index,
                            Logged::Error(e) => e.target != addr,
                            Logged::Host(_) => true,
                        });
                    }
                }
            }
            undecided += h.undecided;
            self.by_addr
                .entry(h.target.addr)
                .or_default()
                .push(snap.index);
            self.hosts.insert(snap.index, h);
        }
        let resumed = self.next_host.saturating_mul(n).saturating_sub(undecided);
        // Added: a TCP engine may share the counters in the same run.
        self.progress.done.fetch_add(resumed, Ordering::Relaxed);
        self.progress.sent.fetch_add(resumed, Ordering::Relaxed);
        self.progress
            .open
            .fetch_add(self.stats.scan.open, Ordering::Relaxed);
    }

    /// The UDP part of the checkpoint, as the run stands (None without
    /// `--resume`).
    fn snapshot(&self, complete: bool) -> Option<UdpPart> {
        let journal = self.journal.as_ref()?;
        let mut hosts: Vec<UdpHostSnap> = self
            .hosts
            .values()
            .map(|h| UdpHostSnap {
                index: h.index,
                started: h.started,
                done: h.done.to_hex(),
                counts: h.counts.clone(),
                answered: h.answered,
                rtt: h.rtt,
                icmp: h.icmp,
                recovered: h.recovered,
                period_ms: match h.pace {
                    Pace::Paced { period } => Some(ceil_ms(period * h.lanes.max(1) as u32)),
                    _ => None,
                },
                paced: h.paced,
                cleared: h.cleared,
                failed: h.failed,
            })
            .collect();
        hosts.sort_by_key(|h| h.index);
        Some(UdpPart {
            complete,
            counts: CountsSnap::of(&self.stats.scan),
            next_host: self.next_host,
            hosts,
            limited_hosts: self.stats.limited_hosts,
            recovered: self.stats.recovered,
            slowest_period_ms: self.stats.slowest_period.map(ceil_ms),
            events: journal.clone(),
        })
    }
}

/// Whole milliseconds, rounded up (a pace a little long still meets a
/// token; a little short does not).
fn ceil_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Takes the ports of `counts` out of the run's counts (a host whose
/// checkpoint could not be used is scanned again).
fn forget_counts(stats: &mut ScanStats, counts: &[PortCount]) {
    for c in counts {
        let n = u64::from(c.count);
        stats.ports = stats.ports.saturating_sub(n);
        let slot = match c.state {
            PortState::Open => &mut stats.open,
            PortState::Closed => &mut stats.closed,
            PortState::Filtered => &mut stats.filtered,
            PortState::OpenFiltered => &mut stats.open_filtered,
        };
        *slot = slot.saturating_sub(n);
    }
    stats.resumed = stats.ports + stats.unprobed;
}

/// The UDP engine's checkpoint writer (`--resume`): one write at a time,
/// off the scheduler's thread, so that an fsync never holds up probes.
struct Saver {
    resume: Arc<Resume>,
    seed: u64,
    n_hosts: u64,
    writing: Option<tokio::task::JoinHandle<io::Result<()>>>,
    /// When the next periodic checkpoint is due.
    next: Instant,
}

impl Saver {
    /// Starts writing `part`; the caller has waited for the previous write.
    fn start(&mut self, part: UdpPart) {
        let (resume, seed, n_hosts) = (Arc::clone(&self.resume), self.seed, self.n_hosts);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            resume.save(seed, n_hosts, Part::Udp(part))
        }));
    }

    /// True while a write is under way.
    fn busy(&self) -> bool {
        self.writing.as_ref().is_some_and(|w| !w.is_finished())
    }

    /// Waits for the write under way, if any; a failure is logged and the
    /// scan goes on.
    async fn wait(&mut self) {
        let Some(writing) = self.writing.take() else {
            return;
        };
        match writing.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(
                path = %self.resume.path.display(),
                %err,
                "cannot write the checkpoint"
            ),
            Err(err) => tracing::warn!(%err, "the checkpoint writer failed"),
        }
    }

    /// Writes `part` and waits until it is on disk.
    async fn save_now(&mut self, part: Option<UdpPart>) {
        self.wait().await;
        if let Some(part) = part {
            self.start(part);
            self.wait().await;
        }
    }
}

/// The pace of a host's errors from their arrival times while it was probed
/// every `gap` (for one lane, [`MEASURE_GAP`] times the lanes): each error
/// came with the first probe after the host earned a token, so one gap is the period give or take a gap of
/// ours, but over a run of consecutive gaps those errors cancel (the host
/// keeps the remainder of a token): the run's length over its count, plus
/// the most it can be short by. Gaps far from the median (tokens saved up
/// before measuring began) are left out, from the start only, so the run
/// stays consecutive. A little over the host's period, so that each paced
/// probe finds a token waiting.
fn pace_from(arrivals: &[Instant], median: Duration, gap: Duration) -> Duration {
    let near = |g: Duration| g.abs_diff(median) <= gap * 2;
    let mut start = arrivals.len() - 1;
    while start > 0 && near(arrivals[start] - arrivals[start - 1]) {
        start -= 1;
    }
    let count = (arrivals.len() - 1 - start) as u32;
    if count == 0 {
        return median + gap;
    }
    let span = arrivals[arrivals.len() - 1] - arrivals[start];
    (span + gap) / count + Duration::from_millis(1)
}

/// Silence from probes already out no longer counts (they were sent before
/// the host's limit showed).
fn uncount_flights(h: &mut Host) {
    for f in h.flights.values_mut() {
        f.counted = false;
    }
}

/// Runs a UDP scan of `cfg.ports` on every host of `targets`, sending events
/// as ports are decided. Returns when every port is decided, or soon after
/// `cancel` fires (hosts started so far still get their `HostDone`).
/// `cfg.shard` and `cfg.workers` are not used: one task paces every host.
pub async fn udp_scan(
    targets: Arc<TargetSet>,
    cfg: ScanConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> UdpStats {
    let n_ports = cfg.ports.len() as u64;
    // Added: a TCP engine may share the counters in the same run.
    progress
        .total
        .fetch_add(targets.len().saturating_mul(n_ports), Ordering::Relaxed);
    let active_max = (GROUP_PROBES / n_ports.max(1)).clamp(1, MAX_ACTIVE_HOSTS);
    let mut limiter = cfg.rate.map(RateLimiter::new);
    let grace = cfg.grace;
    let resume = cfg.resume.clone();
    let port_index = (0u64..)
        .zip(cfg.ports.iter())
        .map(|(i, &p)| (p, i))
        .collect();
    let mut scan = Scan {
        journal: resume.as_ref().map(|_| Vec::new()),
        cfg,
        targets,
        progress,
        hosts: HashMap::new(),
        by_addr: HashMap::new(),
        next_host: 0,
        active_max,
        inflight: 0,
        timers: BinaryHeap::new(),
        stats: UdpStats::default(),
        out: Vec::new(),
        port_index,
    };
    let mut saver = None;
    if let Some(resume) = resume {
        if let Some(part) = resume.udp() {
            scan.restore(part);
            // The journal as restored: without the results of a host that
            // is scanned again.
            for ev in scan.journal.clone().unwrap_or_default() {
                let _ = events.send(ev.into_event()).await;
            }
        }
        let mut s = Saver {
            seed: scan.cfg.seed,
            n_hosts: scan.targets.len(),
            resume,
            writing: None,
            next: Instant::now() + resume::CHECKPOINT_EVERY,
        };
        // The file exists from the start: a kill at any moment resumes.
        s.save_now(scan.snapshot(false)).await;
        saver = Some(s);
    }
    let mut sockets = Sockets::new(&scan.cfg.sources);
    let mut heard = Vec::new();
    let mut backoff = None;
    let mut stop_at: Option<Instant> = None;
    if n_ports > 0 {
        loop {
            let now = Instant::now();
            if stop_at.is_none() && cancel.is_cancelled() {
                stop_at = Some(now + grace);
            }
            sockets.drain(&mut heard);
            for (h, at) in heard.drain(..) {
                scan.heard(h, at);
            }
            while let Some(Reverse((when, id, port, sent))) = scan.timers.peek().copied() {
                if when > now {
                    break;
                }
                scan.timers.pop();
                scan.timeout(id, port, sent, now);
            }
            scan.settle(now);
            let mut wake = None;
            if stop_at.is_none() {
                scan.activate();
                wake = scan.send_due(&mut sockets, &mut limiter, now, &mut backoff);
            }
            scan.finish_done(false);
            for ev in scan.take_out() {
                // A closed receiver means the printers are gone; the
                // summary is still right.
                let _ = events.send(ev).await;
            }
            if scan.finished() || stop_at.is_some_and(|t| t <= now || scan.inflight == 0) {
                break;
            }
            if let Some(s) = saver.as_mut()
                && now >= s.next
            {
                if s.busy() {
                    // The last write is slow: try again shortly.
                    s.next = now + LOCAL_BACKOFF;
                } else {
                    s.wait().await;
                    if let Some(part) = scan.snapshot(false) {
                        s.start(part);
                    }
                    s.next = now + resume::CHECKPOINT_EVERY;
                }
            }
            let timer = scan.timers.peek().map(|Reverse((t, ..))| *t);
            let checkpoint = saver.as_ref().map(|s| s.next);
            let next = [wake, timer, stop_at, backoff, checkpoint]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            tokio::select! {
                _ = sockets.ready() => {}
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = cancel.cancelled(), if stop_at.is_none() => {}
            }
        }
    }
    let interrupted = !scan.finished();
    if let Some(s) = saver.as_mut() {
        // Interrupted: the hosts in flight are kept as they are, not as
        // ended below.
        s.save_now(scan.snapshot(false).filter(|_| interrupted))
            .await;
    }
    scan.finish_done(true);
    let out = if interrupted {
        std::mem::take(&mut scan.out)
    } else {
        scan.take_out()
    };
    if !interrupted && let Some(s) = saver.as_mut() {
        s.save_now(scan.snapshot(true)).await;
    }
    for ev in out {
        let _ = events.send(ev).await;
    }
    scan.stats.scan.interrupted = interrupted;
    scan.stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_errors_read_as_nmap_does() {
        let dest: SocketAddr = "198.18.0.2:53".parse().unwrap();
        let at = |kind, code, v6| match classify(kind, code, v6, dest, None) {
            Some(Heard::Icmp { state, reason, .. }) => Some((state, reason)),
            _ => None,
        };
        let closed = Some((PortState::Closed, Reason::PortUnreach));
        let filtered = |r| Some((PortState::Filtered, r));
        let table = [
            (3, 3, false, closed),
            (3, 13, false, filtered(Reason::AdminProhibited)),
            (3, 1, false, filtered(Reason::HostUnreach)),
            (3, 2, false, filtered(Reason::ProtoUnreach)),
            // Time exceeded decides nothing.
            (11, 0, false, None),
            (1, 4, true, closed),
            (1, 1, true, filtered(Reason::AdminProhibited)),
        ];
        for (kind, code, v6, want) in table {
            assert_eq!(at(kind, code, v6), want, "type {kind} code {code} v6 {v6}");
        }
        assert_eq!(at(3, 0, true), None, "ICMPv6 type 3 is time exceeded");
    }

    #[test]
    fn pace_is_a_little_over_the_hosts_period() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // One saved-up token (the first two at once), then a 1 s limit
        // answered by 20 ms probes: each error up to 19 ms late.
        let late = [0, 5, 1010, 2000, 3019, 4003, 5015, 6000];
        let arrivals: Vec<Instant> = late.iter().map(|&d| t0 + ms(d)).collect();
        let mut gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        let pace = pace_from(&arrivals, gaps[gaps.len() / 2], MEASURE_GAP);
        assert!(pace >= ms(1000), "{pace:?}");
        assert!(pace <= ms(1010), "{pace:?}");
    }

    /// Loopback sends ICMP errors without a limit: a socket that echoes is
    /// heard from its own address and port, and a free port's
    /// port-unreachable names the port it is about.
    #[tokio::test]
    async fn loopback_open_and_closed() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let open = server.local_addr().expect("addr");
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
            }
        });
        let mut sockets = Sockets::default();
        assert!(matches!(send_probe(&mut sockets, open, 0), Sent::Ok));
        assert!(matches!(send_probe(&mut sockets, closed, 0), Sent::Ok));
        let mut heard = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while heard.len() < 2 && Instant::now() < deadline {
            tokio::select! {
                _ = sockets.ready() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            sockets.drain(&mut heard);
        }
        echo.join().expect("echo thread");
        let kinds: Vec<Heard> = heard.into_iter().map(|(h, _)| h).collect();
        assert!(kinds.contains(&Heard::Reply(open)), "{kinds:?}");
        assert!(
            kinds.iter().any(|h| matches!(h, Heard::Icmp { dest, state: PortState::Closed, reason: Reason::PortUnreach, .. } if *dest == closed)),
            "{kinds:?}"
        );
    }
}
