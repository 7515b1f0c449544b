//! Host discovery (`-sn`, and before a port scan of many hosts): which
//! targets are up, and why, as nmap finds them.
//!
//! With raw sockets (root or CAP_NET_RAW), a target on a directly
//! connected network is asked by ARP (IPv4) or a neighbor solicitation
//! (IPv6): its answer is the `arp-response` / `nd-response` that nmap
//! trusts above any other. Any other target gets the IP probes chosen
//! (nmap's default: ICMP echo, TCP SYN to 443, TCP ACK to 80, ICMP
//! timestamp). Without the privilege, a TCP connect to ports 80 and 443:
//! a connection or a refusal both mean the host is there.
//!
//! A host is up only when it answered itself: an ICMP error from a router
//! on its behalf (host unreachable) says nothing of it. Replies are
//! validated without a table of what was sent where possible: ICMP
//! identifier and sequence number, TCP sequence and acknowledgement numbers
//! are a keyed hash (SipHash, key drawn per run) of the addresses, so a
//! stray or forged reply does not make a host up. ARP and NDP answers are
//! matched to the address asked about and the interface asked on.
//!
//! Bounds: at most `max_hosts` hosts in flight, each tried at most
//! `1 + retries` times with a timeout between the configured minimum and
//! maximum (from the RTT of the answers so far), packets paced by the rate
//! cap; a cancelled run stops sending and waits at most `grace`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage, recvfrom, sendto};
use socket2::Socket;
use sockeye_proto::packet::{
    self, IPV4_HEADER, PROTO_ICMP, PROTO_TCP, PROTO_UDP, SYN_LEN, Segment, SynProbe, TCP_HEADER,
    flags,
};
use sockeye_proto::ping::{self, ARP_FRAME, ARP_REPLY, Icmp4, Icmp6, NS_LEN};
use tokio_util::sync::CancellationToken;

use super::engine::Progress;
use super::syn::SynError;
// TTL, window and MSS of the probes: the SYN scan's (nmap's).
use super::syn::{PROBE_MSS, PROBE_TTL, PROBE_WINDOW};
use super::timing::{RateLimiter, RttEstimator, RttLimits};
use crate::net::link::{Interface, Routes, arp_socket, ethernet_interfaces, local_addresses};
use crate::net::raw::{FamilySockets, HeldPort, SourceAddrs, hold_port, udp_socket};
use crate::report::{Discovered, Emit, Event, HostDone, Reason};
use crate::target::{Target, TargetSet};

/// Room for one received packet or frame.
const RECV_SIZE: usize = 2048;
/// Packets read per socket per turn before sending more.
const READ_TURN: usize = 512;
/// Hosts asked per turn of the loop before the sockets are read.
const HOSTS_PER_TURN: usize = 64;
/// The longest the loop sleeps without looking at the cancellation token.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// Ports of the connect ping (nmap's, without privilege).
pub const CONNECT_PORTS: [u16; 2] = [80, 443];

/// Which IP probes a target off the local link gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probes {
    /// ICMP echo (`-PE`).
    pub echo: bool,
    /// ICMP timestamp (`-PP`; IPv4 only).
    pub timestamp: bool,
    /// TCP SYN to these ports (`-PS`).
    pub syn: Vec<u16>,
    /// TCP ACK to these ports (`-PA`).
    pub ack: Vec<u16>,
    /// UDP to these ports (`-PU`).
    pub udp: Vec<u16>,
}

impl Probes {
    /// nmap's default set when privileged: echo, SYN to 443, ACK to 80, timestamp.
    pub fn nmap_default() -> Probes {
        Probes {
            echo: true,
            timestamp: true,
            syn: vec![443],
            ack: vec![80],
            udp: Vec::new(),
        }
    }

    /// True when no probe is chosen.
    pub fn is_empty(&self) -> bool {
        !self.echo
            && !self.timestamp
            && self.syn.is_empty()
            && self.ack.is_empty()
            && self.udp.is_empty()
    }

    fn count(&self) -> usize {
        usize::from(self.echo)
            + usize::from(self.timestamp)
            + self.syn.len()
            + self.ack.len()
            + self.udp.len()
    }
}

/// How discovery runs.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The IP probes (raw sockets), for targets not asked by ARP/NDP.
    pub probes: Probes,
    /// Ask targets on a directly connected network by ARP / NDP (nmap's
    /// default; `--send-ip` turns it off).
    pub link_layer: bool,
    /// The ports of the connect ping (without privilege).
    pub connect_ports: Vec<u16>,
    /// Extra rounds for a host that did not answer.
    pub retries: u8,
    pub rtt: RttLimits,
    /// Packets (connects) per second at most.
    pub rate: Option<f64>,
    /// Hosts in flight at once.
    pub max_hosts: usize,
    /// After cancellation, how long answers are still awaited.
    pub grace: Duration,
}

/// What a discovery run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Targets looked at.
    pub hosts: u64,
    /// Targets found up.
    pub up: u64,
    /// Targets that could not be probed at all (no route, no IPv6).
    pub unprobed: u64,
    pub interrupted: bool,
}

/// The raw sockets of a discovery, opened before anything is sent.
pub struct RawSetup {
    port: HeldPort,
    v4: FamilySockets,
    v6: Option<FamilySockets>,
    udp4: Option<Socket>,
    udp6: Option<Socket>,
}

impl std::fmt::Debug for RawSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSetup")
            .field("port", &self.port.port)
            .finish_non_exhaustive()
    }
}

impl RawSetup {
    /// Opens the raw sockets `probes` need. Fails without privilege.
    pub fn open(probes: &Probes) -> Result<RawSetup, SynError> {
        let port = hold_port().map_err(SynError::Port)?;
        let v4 = FamilySockets::v4(port.port).map_err(SynError::Sockets)?;
        let v6 = FamilySockets::v6(port.port).ok();
        if let Some(v6) = &v6 {
            // Neighbor solicitations must carry hop limit 255 (RFC 4861);
            // echo requests may as well.
            let _ = v6.icmp.set_multicast_hops_v6(255);
            let _ = v6.icmp.set_unicast_hops_v6(255);
        }
        let udp = !probes.udp.is_empty();
        let udp4 = if udp {
            Some(udp_socket(false, port.port).map_err(SynError::Sockets)?)
        } else {
            None
        };
        let udp6 = if udp && v6.is_some() {
            udp_socket(true, port.port).ok()
        } else {
            None
        };
        Ok(RawSetup {
            port,
            v4,
            v6,
            udp4,
            udp6,
        })
    }
}

/// The keyed hash replies are checked against.
struct Cookie {
    key: std::collections::hash_map::RandomState,
}

impl Cookie {
    /// ICMP identifier and sequence number of the echo/timestamp probes
    /// from `local` to `target`.
    fn icmp(&self, local: IpAddr, target: IpAddr) -> (u16, u16) {
        let h = self.key.hash_one((0u8, local, target));
        ((h >> 16) as u16, h as u16)
    }

    /// The sequence number of a SYN ping, or the acknowledgement number of
    /// an ACK ping (`ack`), to `target` port `port`.
    fn tcp(&self, local: IpAddr, target: IpAddr, port: u16, ack: bool) -> u32 {
        self.key
            .hash_one((1u8 + u8::from(ack), local, target, port)) as u32
    }
}

/// How a host is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// ARP on the interface of this index.
    Arp(usize),
    /// A neighbor solicitation on the interface of this index.
    Ndp(usize),
    /// The IP probes.
    Ip,
}

/// A host awaiting an answer.
struct Pending {
    index: u64,
    target: Target,
    local: IpAddr,
    way: Way,
    tries: u8,
    sent: Instant,
    started: SystemTime,
}

/// Runs raw-socket discovery of every host of `targets`, emitting a
/// [`HostDone`] (with [`HostDone::discovery`] set) for each host found up.
pub async fn discover_raw(
    setup: RawSetup,
    targets: Arc<TargetSet>,
    cfg: DiscoveryConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> DiscoveryStats {
    progress.total.store(targets.len(), Ordering::Relaxed);
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        let mut pinger = Pinger::new(setup, cfg, events, progress, cancel);
        pinger.run(&handle, &targets);
        pinger.stats
    });
    match task.await {
        Ok(stats) => stats,
        Err(err) => {
            tracing::error!(%err, "host discovery failed");
            DiscoveryStats {
                interrupted: true,
                ..DiscoveryStats::default()
            }
        }
    }
}

struct Pinger {
    setup: RawSetup,
    cfg: DiscoveryConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    cookie: Cookie,
    sources: SourceAddrs,
    routes: Routes,
    interfaces: HashMap<String, Interface>,
    /// This machine's own addresses.
    own: std::collections::HashSet<IpAddr>,
    /// Packet sockets by interface index, opened when first needed.
    arp: HashMap<usize, Socket>,
    inflight: HashMap<IpAddr, Pending>,
    /// (time sent, address, try): a host whose entry still has that try
    /// when the timeout has passed since went unanswered.
    sent: BinaryHeap<Reverse<(Instant, IpAddr, u8)>>,
    /// Targets whose address was already in flight (the same address
    /// given twice): asked after the others.
    deferred: Vec<(u64, Target)>,
    rtt: RttEstimator,
    limiter: Option<RateLimiter>,
    found: Vec<Event>,
    stats: DiscoveryStats,
    ip_id: u16,
    buf: Vec<u8>,
}

impl Pinger {
    fn new(
        setup: RawSetup,
        cfg: DiscoveryConfig,
        events: Emit<Event>,
        progress: Arc<Progress>,
        cancel: CancellationToken,
    ) -> Pinger {
        let interfaces = if cfg.link_layer {
            ethernet_interfaces().unwrap_or_else(|err| {
                tracing::debug!(%err, "cannot list interfaces: no ARP");
                HashMap::new()
            })
        } else {
            HashMap::new()
        };
        Pinger {
            limiter: cfg.rate.map(RateLimiter::new),
            setup,
            cfg,
            events,
            progress,
            cancel,
            cookie: Cookie {
                key: std::collections::hash_map::RandomState::new(),
            },
            sources: SourceAddrs::default(),
            routes: Routes::read(),
            interfaces,
            own: local_addresses(),
            arp: HashMap::new(),
            inflight: HashMap::new(),
            sent: BinaryHeap::new(),
            deferred: Vec::new(),
            rtt: RttEstimator::default(),
            found: Vec::new(),
            stats: DiscoveryStats::default(),
            ip_id: rand::random(),
            buf: vec![0u8; RECV_SIZE],
        }
    }

    fn run(&mut self, rt: &tokio::runtime::Handle, targets: &TargetSet) {
        let mut iter = targets.iter().enumerate();
        let mut exhausted = false;
        let mut grace_end: Option<Instant> = None;
        // A host waiting for a rate token: sent on the next turn.
        let mut next: Option<(u64, Target)> = None;
        loop {
            if grace_end.is_none() && self.cancel.is_cancelled() {
                grace_end = Some(Instant::now() + self.cfg.grace);
                self.stats.interrupted = true;
            }
            let mut rate_wait = None;
            let mut sent_any = false;
            // New hosts while the window allows, a turn's worth at a time
            // (replies are read between turns, so their RTTs stay true).
            let mut started = 0;
            while grace_end.is_none()
                && self.inflight.len() < self.cfg.max_hosts.max(1)
                && started < HOSTS_PER_TURN
            {
                started += 1;
                let item = match next.take() {
                    Some(item) => Some(item),
                    None if !exhausted => match iter.next() {
                        Some((i, t)) => Some((i as u64, t)),
                        None => {
                            exhausted = true;
                            continue;
                        }
                    },
                    None => self.take_deferred(),
                };
                let Some((index, target)) = item else { break };
                if self.inflight.contains_key(&target.addr) {
                    self.deferred.push((index, target));
                    continue;
                }
                match self.start(index, target, Instant::now()) {
                    Ok(()) => sent_any = true,
                    Err(Some((index, target, at))) => {
                        next = Some((index, target));
                        rate_wait = Some(at);
                        break;
                    }
                    Err(None) => {}
                }
            }
            let read = self.read_all();
            self.expire(Instant::now(), grace_end.is_some(), &mut rate_wait);
            if !self.found.is_empty() {
                for ev in self.found.drain(..) {
                    if rt.block_on(self.events.send(ev)).is_err() {
                        self.cancel.cancel();
                    }
                }
            }
            let idle = self.inflight.is_empty() && next.is_none();
            if let Some(end) = grace_end
                && (self.inflight.is_empty() || Instant::now() >= end)
            {
                break;
            }
            if idle && exhausted && self.deferred.is_empty() {
                break;
            }
            if sent_any || read > 0 {
                continue;
            }
            let timeout = self.timeout();
            let wait = [
                self.sent.peek().map(|Reverse((t, _, _))| *t + timeout),
                rate_wait,
                grace_end,
            ]
            .into_iter()
            .flatten()
            .min()
            .map_or(IDLE_POLL, |t| t.saturating_duration_since(Instant::now()))
            .min(IDLE_POLL);
            self.wait_readable(wait);
        }
        self.progress
            .done
            .fetch_add(self.inflight.len() as u64, Ordering::Relaxed);
    }

    fn take_deferred(&mut self) -> Option<(u64, Target)> {
        let at = self
            .deferred
            .iter()
            .position(|(_, t)| !self.inflight.contains_key(&t.addr))?;
        Some(self.deferred.swap_remove(at))
    }

    /// The timeout of a try: from the answers so far (all hosts share it:
    /// they are mostly on one network), else the initial one.
    fn timeout(&self) -> Duration {
        self.rtt.timeout(&self.cfg.rtt)
    }

    /// Asks a new host. `Err(Some(..))`: the rate cap says wait until the
    /// instant given; `Err(None)`: it cannot be asked (no route), counted.
    #[allow(clippy::result_large_err)]
    fn start(
        &mut self,
        index: u64,
        target: Target,
        now: Instant,
    ) -> Result<(), Option<(u64, Target, Instant)>> {
        let local = match self.sources.get(target.addr) {
            Ok(a) => a,
            Err(errno) => {
                tracing::debug!(addr = %target.addr, errno, "no route: not probed");
                self.stats.hosts += 1;
                self.stats.unprobed += 1;
                self.progress.sent.fetch_add(1, Ordering::Relaxed);
                self.progress.done.fetch_add(1, Ordering::Relaxed);
                return Err(None);
            }
        };
        let way = self.way(target.addr);
        let packets = match way {
            Way::Ip => self.cfg.probes.count(),
            _ => 1,
        };
        if let Some(limiter) = self.limiter.as_mut() {
            // One token per host-try; the probes of a try go out together
            // and the limiter's debt spaces the next ones.
            if let Err(at) = limiter.try_take(now) {
                return Err(Some((index, target, at)));
            }
            limiter.charge(packets.saturating_sub(1) as u32);
        }
        self.stats.hosts += 1;
        self.progress.sent.fetch_add(1, Ordering::Relaxed);
        let p = Pending {
            index,
            target,
            local,
            way,
            tries: 1,
            sent: now,
            started: SystemTime::now(),
        };
        let addr = p.target.addr;
        if self.own.contains(&addr) {
            // This machine: up without asking, as nmap says.
            self.inflight.insert(addr, p);
            self.up(addr, Reason::LocalhostResponse, None);
            return Ok(());
        }
        self.send(&p);
        self.sent.push(Reverse((now, addr, 1)));
        self.inflight.insert(addr, p);
        Ok(())
    }

    /// How `addr` is asked: by ARP/NDP when it is on the link of an
    /// Ethernet interface and that is allowed, else by IP probes.
    fn way(&self, addr: IpAddr) -> Way {
        if !self.cfg.link_layer {
            return Way::Ip;
        }
        let Some(iface) = self
            .routes
            .on_link(addr)
            .and_then(|name| self.interfaces.get(name))
        else {
            return Way::Ip;
        };
        match addr {
            IpAddr::V4(_) => Way::Arp(iface.index),
            IpAddr::V6(_) if self.setup.v6.is_some() => Way::Ndp(iface.index),
            IpAddr::V6(_) => Way::Ip,
        }
    }

    /// Sends one try's packets. A send that fails is logged: the host then
    /// simply does not answer that try.
    fn send(&mut self, p: &Pending) {
        let target = p.target.addr;
        let result = match (p.way, p.local, target) {
            (Way::Arp(index), IpAddr::V4(local), IpAddr::V4(dst)) => {
                self.send_arp(index, local, dst)
            }
            (Way::Ndp(index), IpAddr::V6(local), IpAddr::V6(dst)) => {
                self.send_ns(index, local, dst)
            }
            (_, IpAddr::V4(local), IpAddr::V4(dst)) => self.send_ip4(local, dst),
            (_, IpAddr::V6(local), IpAddr::V6(dst)) => self.send_ip6(local, dst),
            _ => Ok(()),
        };
        if let Err(err) = result {
            tracing::debug!(addr = %target, %err, "discovery probe not sent");
        }
    }

    fn send_arp(&mut self, index: usize, local: Ipv4Addr, dst: Ipv4Addr) -> io::Result<()> {
        let Some(iface) = self.interfaces.values().find(|i| i.index == index) else {
            return Ok(());
        };
        let mac = iface.mac;
        if let std::collections::hash_map::Entry::Vacant(e) = self.arp.entry(index) {
            e.insert(arp_socket(iface)?);
        }
        let mut frame = [0u8; ARP_FRAME];
        let n = ping::write_arp_request(&mut frame, mac, local, dst);
        if let Some(s) = self.arp.get(&index) {
            s.send(&frame[..n])?;
        }
        Ok(())
    }

    fn send_ns(&mut self, index: usize, local: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        let Some(mac) = self
            .interfaces
            .values()
            .find(|i| i.index == index)
            .map(|i| i.mac)
        else {
            return Ok(());
        };
        let Some(v6) = &self.setup.v6 else {
            return Ok(());
        };
        let mut m = [0u8; NS_LEN];
        let n = ping::write_neighbor_solicitation(&mut m, local, mac, dst);
        let to = SockaddrIn6::from(SocketAddrV6::new(
            ping::solicited_node(dst),
            0,
            0,
            index as u32,
        ));
        sendto(v6.icmp.as_raw_fd(), &m[..n], &to, MsgFlags::empty())?;
        Ok(())
    }

    fn send_ip4(&mut self, local: Ipv4Addr, dst: Ipv4Addr) -> io::Result<()> {
        let (src, to) = (IpAddr::V4(local), IpAddr::V4(dst));
        let fd = match &self.setup.v4.send {
            Some(s) => s.as_raw_fd(),
            None => return Ok(()),
        };
        let addr = SockaddrIn::from(SocketAddrV4::new(dst, 0));
        let mut pkt = [0u8; IPV4_HEADER + 64];
        let (id, seq) = self.cookie.icmp(src, to);
        let out = |this: &mut Self, proto: u8, len: usize, pkt: &mut [u8]| {
            this.ip_id = this.ip_id.wrapping_add(1);
            packet::write_ipv4(pkt, local, dst, proto, PROBE_TTL, this.ip_id, len);
            sendto(fd, &pkt[..IPV4_HEADER + len], &addr, MsgFlags::empty()).map(|_| ())
        };
        let probes = self.cfg.probes.clone();
        if probes.echo {
            let n = ping::write_icmp_echo(&mut pkt[IPV4_HEADER..], id, seq);
            out(self, PROTO_ICMP, n, &mut pkt)?;
        }
        for &port in &probes.syn {
            self.write_syn(&mut pkt[IPV4_HEADER..], src, to, port);
            out(self, PROTO_TCP, SYN_LEN, &mut pkt)?;
        }
        for &port in &probes.ack {
            self.write_ack(&mut pkt[IPV4_HEADER..], src, to, port);
            out(self, PROTO_TCP, TCP_HEADER, &mut pkt)?;
        }
        if probes.timestamp {
            let n = ping::write_icmp_timestamp(&mut pkt[IPV4_HEADER..], id, seq, ms_today());
            out(self, PROTO_ICMP, n, &mut pkt)?;
        }
        for &port in &probes.udp {
            let n = packet::write_udp(
                &mut pkt[IPV4_HEADER..],
                src,
                to,
                self.setup.port.port,
                port,
                &[],
            );
            out(self, PROTO_UDP, n, &mut pkt)?;
        }
        Ok(())
    }

    fn send_ip6(&mut self, local: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        let (src, to) = (IpAddr::V6(local), IpAddr::V6(dst));
        let Some(v6) = &self.setup.v6 else {
            return Ok(());
        };
        let (icmp, tcp) = (v6.icmp.as_raw_fd(), v6.tcp.as_raw_fd());
        let udp = self.setup.udp6.as_ref().map(|s| s.as_raw_fd());
        let addr = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, 0));
        let mut m = [0u8; 64];
        let probes = self.cfg.probes.clone();
        if probes.echo {
            let (id, seq) = self.cookie.icmp(src, to);
            let n = ping::write_icmpv6_echo(&mut m, local, dst, id, seq);
            sendto(icmp, &m[..n], &addr, MsgFlags::empty())?;
        }
        for &port in &probes.syn {
            self.write_syn(&mut m, src, to, port);
            sendto(tcp, &m[..SYN_LEN], &addr, MsgFlags::empty())?;
        }
        for &port in &probes.ack {
            self.write_ack(&mut m, src, to, port);
            sendto(tcp, &m[..TCP_HEADER], &addr, MsgFlags::empty())?;
        }
        if let Some(udp) = udp {
            for &port in &probes.udp {
                let n = packet::write_udp(&mut m, src, to, self.setup.port.port, port, &[]);
                sendto(udp, &m[..n], &addr, MsgFlags::empty())?;
            }
        }
        Ok(())
    }

    fn write_syn(&self, out: &mut [u8], src: IpAddr, dst: IpAddr, port: u16) {
        let probe = SynProbe {
            src_port: self.setup.port.port,
            dst_port: port,
            seq: self.cookie.tcp(src, dst, port, false),
            window: PROBE_WINDOW,
            mss: PROBE_MSS,
        };
        packet::write_syn(out, src, dst, &probe);
    }

    fn write_ack(&self, out: &mut [u8], src: IpAddr, dst: IpAddr, port: u16) {
        let seg = Segment {
            src_port: self.setup.port.port,
            dst_port: port,
            seq: 0,
            ack: self.cookie.tcp(src, dst, port, true),
            flags: flags::ACK,
            window: PROBE_WINDOW,
        };
        packet::write_tcp(out, src, dst, &seg);
    }

    /// Hosts whose try timed out: tried again, or given up on (down).
    fn expire(&mut self, now: Instant, stopping: bool, rate_wait: &mut Option<Instant>) {
        let timeout = self.timeout();
        while let Some(Reverse((at, addr, tries))) = self.sent.peek().copied() {
            if at + timeout > now {
                break;
            }
            self.sent.pop();
            let Some(p) = self.inflight.get(&addr) else {
                continue;
            };
            if p.tries != tries {
                continue;
            }
            if tries > self.cfg.retries || stopping {
                self.inflight.remove(&addr);
                self.progress.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(limiter) = self.limiter.as_mut()
                && let Err(wait) = limiter.try_take(now)
            {
                // Not yet: look again when a token is due.
                self.sent.push(Reverse((wait - timeout, addr, tries)));
                *rate_wait = Some(rate_wait.map_or(wait, |w| w.min(wait)));
                break;
            }
            if let Some(limiter) = self.limiter.as_mut()
                && let Some(p) = self.inflight.get(&addr)
                && p.way == Way::Ip
            {
                limiter.charge(self.cfg.probes.count().saturating_sub(1) as u32);
            }
            let Some(mut p) = self.inflight.remove(&addr) else {
                continue;
            };
            p.tries += 1;
            p.sent = now;
            self.send(&p);
            self.sent.push(Reverse((now, addr, p.tries)));
            self.inflight.insert(addr, p);
        }
    }

    /// A host answered itself: it is up.
    fn up(&mut self, addr: IpAddr, reason: Reason, mac: Option<[u8; 6]>) {
        let Some(p) = self.inflight.remove(&addr) else {
            return;
        };
        let now = Instant::now();
        // Only a first try's answer is an unambiguous RTT sample (Karn).
        let rtt = (p.tries == 1).then(|| now.saturating_duration_since(p.sent));
        if let Some(rtt) = rtt {
            self.rtt.sample(rtt);
        }
        let mut est = RttEstimator::default();
        if let Some(rtt) = rtt {
            est.sample(rtt);
        }
        self.stats.up += 1;
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        self.progress.open.fetch_add(1, Ordering::Relaxed);
        self.found.push(Event::HostDone(HostDone {
            host_index: p.index,
            addr,
            host: p.target.name,
            started: p.started,
            ended: SystemTime::now(),
            counts: Vec::new(),
            up: true,
            srtt: est.srtt(),
            rttvar: est.rttvar(),
            timeout: est.timeout(&self.cfg.rtt),
            discovery: Some(Discovered { reason, mac }),
            answers_all: false,
        }));
    }

    fn wait_readable(&self, wait: Duration) {
        let mut fds: Vec<BorrowedFd<'_>> =
            vec![self.setup.v4.tcp.as_fd(), self.setup.v4.icmp.as_fd()];
        if let Some(v6) = &self.setup.v6 {
            fds.push(v6.tcp.as_fd());
            fds.push(v6.icmp.as_fd());
        }
        for s in [&self.setup.udp4, &self.setup.udp6].into_iter().flatten() {
            fds.push(s.as_fd());
        }
        for s in self.arp.values() {
            fds.push(s.as_fd());
        }
        let mut polls: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        let ms = wait.as_millis().clamp(1, 1000) as u16;
        let _ = poll(&mut polls, PollTimeout::from(ms));
    }

    /// Reads every socket without blocking, at most [`READ_TURN`] packets
    /// each; returns how many were read.
    fn read_all(&mut self) -> usize {
        let mut n = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let fd4 = [
            self.setup.v4.tcp.as_raw_fd(),
            self.setup.v4.icmp.as_raw_fd(),
        ];
        for fd in fd4
            .into_iter()
            .chain(self.setup.udp4.as_ref().map(|s| s.as_raw_fd()))
        {
            for _ in 0..READ_TURN {
                let Ok((len, _)) = recvfrom::<SockaddrStorage>(fd, &mut buf) else {
                    break;
                };
                n += 1;
                self.on_ipv4(&buf[..len.min(buf.len())]);
            }
        }
        let fd6: Vec<(i32, u8)> = self
            .setup
            .v6
            .as_ref()
            .map(|v6| {
                vec![
                    (v6.tcp.as_raw_fd(), PROTO_TCP),
                    (v6.icmp.as_raw_fd(), packet::PROTO_ICMPV6),
                ]
            })
            .unwrap_or_default()
            .into_iter()
            .chain(self.setup.udp6.as_ref().map(|s| (s.as_raw_fd(), PROTO_UDP)))
            .collect();
        for (fd, proto) in fd6 {
            for _ in 0..READ_TURN {
                let Ok((len, from)) = recvfrom::<SockaddrStorage>(fd, &mut buf) else {
                    break;
                };
                n += 1;
                let Some(from) = from.and_then(|a| a.as_sockaddr_in6().map(|a| a.ip())) else {
                    continue;
                };
                self.on_ipv6(IpAddr::V6(from), proto, &buf[..len.min(buf.len())]);
            }
        }
        let arp: Vec<(usize, i32)> = self.arp.iter().map(|(i, s)| (*i, s.as_raw_fd())).collect();
        for (index, fd) in arp {
            for _ in 0..READ_TURN {
                let Ok((len, _)) = recvfrom::<SockaddrStorage>(fd, &mut buf) else {
                    break;
                };
                n += 1;
                self.on_arp(index, &buf[..len.min(buf.len())]);
            }
        }
        self.buf = buf;
        n
    }

    fn on_arp(&mut self, index: usize, frame: &[u8]) {
        let Ok(arp) = ping::parse_arp_frame(frame) else {
            return;
        };
        if arp.op != ARP_REPLY {
            return;
        }
        let addr = IpAddr::V4(arp.sender_ip);
        let asked_here = self
            .inflight
            .get(&addr)
            .is_some_and(|p| p.way == Way::Arp(index) && p.local == IpAddr::V4(arp.target_ip));
        if asked_here {
            self.up(addr, Reason::ArpResponse, Some(arp.sender_mac));
        }
    }

    fn on_ipv4(&mut self, pkt: &[u8]) {
        let Ok((ip, payload)) = packet::parse_ipv4(pkt) else {
            return;
        };
        if ip.frag_offset != 0 {
            return;
        }
        let from = IpAddr::V4(ip.src);
        let to = IpAddr::V4(ip.dst);
        match ip.protocol {
            PROTO_TCP => {
                if let Ok(tcp) = packet::parse_tcp(payload) {
                    self.on_tcp(from, to, tcp);
                }
            }
            PROTO_ICMP => match ping::parse_icmpv4(payload) {
                Ok(Icmp4::EchoReply { id, seq }) => {
                    self.on_icmp_reply(from, to, id, seq, Reason::EchoReply)
                }
                Ok(Icmp4::TimestampReply { id, seq }) => {
                    self.on_icmp_reply(from, to, id, seq, Reason::TimestampReply)
                }
                Ok(Icmp4::Error(err)) => self.on_icmp_error(from, err, false),
                _ => {}
            },
            PROTO_UDP => {
                if let Ok(udp) = packet::parse_udp(payload) {
                    self.on_udp(from, udp);
                }
            }
            _ => {}
        }
    }

    fn on_ipv6(&mut self, from: IpAddr, proto: u8, msg: &[u8]) {
        match proto {
            PROTO_TCP => {
                if let Ok(tcp) = packet::parse_tcp(msg) {
                    let local = self.inflight.get(&from).map(|p| p.local);
                    if let Some(local) = local {
                        self.on_tcp(from, local, tcp);
                    }
                }
            }
            PROTO_UDP => {
                if let Ok(udp) = packet::parse_udp(msg) {
                    self.on_udp(from, udp);
                }
            }
            _ => match ping::parse_icmpv6(msg) {
                Ok(Icmp6::EchoReply { id, seq }) => {
                    let local = self.inflight.get(&from).map(|p| p.local);
                    if let Some(local) = local {
                        self.on_icmp_reply(from, local, id, seq, Reason::EchoReply);
                    }
                }
                Ok(Icmp6::NeighborAdvert { target, mac }) => {
                    let addr = IpAddr::V6(target);
                    // The advertisement must come from the address asked
                    // about (or its link-local twin on the same link).
                    let asked = self
                        .inflight
                        .get(&addr)
                        .is_some_and(|p| matches!(p.way, Way::Ndp(_)));
                    let own =
                        from == addr || matches!(from, IpAddr::V6(f) if f.is_unicast_link_local());
                    if asked && own {
                        self.up(addr, Reason::NdResponse, mac);
                    }
                }
                Ok(Icmp6::Error(err)) => self.on_icmp_error(from, err, true),
                _ => {}
            },
        }
    }

    fn on_icmp_reply(&mut self, from: IpAddr, to: IpAddr, id: u16, seq: u16, reason: Reason) {
        let Some(p) = self.inflight.get(&from) else {
            return;
        };
        if p.local != to || self.cookie.icmp(p.local, from) != (id, seq) {
            return;
        }
        self.up(from, reason, None);
    }

    fn on_tcp(&mut self, from: IpAddr, to: IpAddr, tcp: packet::TcpHeader) {
        if tcp.dst_port != self.setup.port.port {
            return;
        }
        let Some(p) = self.inflight.get(&from) else {
            return;
        };
        if p.local != to || p.way != Way::Ip {
            return;
        }
        let port = tcp.src_port;
        let probes = &self.cfg.probes;
        // An answer to a SYN ping acknowledges its sequence number.
        if probes.syn.contains(&port)
            && tcp.has(flags::ACK)
            && tcp.ack == self.cookie.tcp(p.local, from, port, false).wrapping_add(1)
        {
            let reason = if tcp.has(flags::SYN) {
                Reason::SynAck
            } else if tcp.has(flags::RST) {
                Reason::Rst
            } else {
                return;
            };
            self.up(from, reason, None);
            return;
        }
        // The reset an ACK ping draws carries the ACK's number as its own
        // sequence number (RFC 9293 section 3.10.7.1).
        if probes.ack.contains(&port)
            && tcp.has(flags::RST)
            && tcp.seq == self.cookie.tcp(p.local, from, port, true)
        {
            self.up(from, Reason::Rst, None);
        }
    }

    fn on_udp(&mut self, from: IpAddr, udp: packet::UdpHeader) {
        if udp.dst_port != self.setup.port.port || !self.cfg.probes.udp.contains(&udp.src_port) {
            return;
        }
        if self.inflight.get(&from).is_some_and(|p| p.way == Way::Ip) {
            self.up(from, Reason::UdpResponse, None);
        }
    }

    /// An ICMP error quoting one of our probes makes its target up only
    /// when the target itself sent it (a closed UDP port's port
    /// unreachable); a router's error on its behalf is ignored.
    fn on_icmp_error(&mut self, from: IpAddr, err: packet::IcmpError, v6: bool) {
        let q = err.quoted;
        if from != q.dst {
            return;
        }
        let Some(p) = self.inflight.get(&q.dst) else {
            return;
        };
        if p.local != q.src || p.way != Way::Ip {
            return;
        }
        let ours = match q.protocol {
            PROTO_UDP => {
                q.src_port == self.setup.port.port && self.cfg.probes.udp.contains(&q.dst_port)
            }
            PROTO_TCP => {
                q.src_port == self.setup.port.port
                    && (q.seq == self.cookie.tcp(p.local, q.dst, q.dst_port, false)
                        || self.cfg.probes.ack.contains(&q.dst_port))
            }
            _ => false,
        };
        if !ours {
            return;
        }
        let reason = if v6 {
            super::connect::reason_from_icmp6(err.kind, err.code)
        } else {
            super::connect::reason_from_icmp4(err.kind, err.code)
        };
        self.up(q.dst, reason, None);
    }
}

/// Milliseconds since midnight UT, for the timestamp request.
fn ms_today() -> u32 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_millis() % 86_400_000) as u32
}

/// Runs connect-ping discovery (no privilege needed): a connect to each of
/// `cfg.connect_ports` per host; a connection or a refusal makes the host
/// up (`syn-ack`, `conn-refused`).
pub async fn discover_connect(
    targets: Arc<TargetSet>,
    cfg: DiscoveryConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> DiscoveryStats {
    use tokio::task::JoinSet;
    progress.total.store(targets.len(), Ordering::Relaxed);
    let ports = if cfg.connect_ports.is_empty() {
        CONNECT_PORTS.to_vec()
    } else {
        cfg.connect_ports.clone()
    };
    let mut stats = DiscoveryStats::default();
    let mut limiter = cfg.rate.map(RateLimiter::new);
    let mut tasks: JoinSet<Option<HostDone>> = JoinSet::new();
    let window = cfg.max_hosts.max(1);
    let mut iter = targets.iter().enumerate();
    let tries = u32::from(cfg.retries) + 1;
    let timeout = cfg
        .rtt
        .initial
        .clamp(cfg.rtt.min, cfg.rtt.max.max(cfg.rtt.min));
    loop {
        while tasks.len() < window && !cancel.is_cancelled() {
            let Some((index, target)) = iter.next() else {
                break;
            };
            if let Some(l) = limiter.as_mut() {
                while let Err(at) = l.try_take(Instant::now()) {
                    tokio::time::sleep_until(at.into()).await;
                }
            }
            stats.hosts += 1;
            progress.sent.fetch_add(1, Ordering::Relaxed);
            let ports = ports.clone();
            let limits = cfg.rtt;
            tasks.spawn(connect_ping(
                index as u64,
                target,
                ports,
                tries,
                timeout,
                limits,
            ));
        }
        let next = tokio::select! {
            r = tasks.join_next() => r,
            () = cancel.cancelled(), if !tasks.is_empty() => {
                stats.interrupted = true;
                tokio::time::sleep(cfg.grace).await;
                tasks.abort_all();
                None
            }
        };
        let Some(res) = next else { break };
        progress.done.fetch_add(1, Ordering::Relaxed);
        if let Ok(Some(done)) = res {
            stats.up += 1;
            progress.open.fetch_add(1, Ordering::Relaxed);
            if events.send(Event::HostDone(done)).await.is_err() {
                cancel.cancel();
            }
        }
    }
    if cancel.is_cancelled() {
        stats.interrupted = true;
    }
    stats
}

/// One host's connect ping: every port at once, each tried up to `tries`
/// times until an answer.
async fn connect_ping(
    index: u64,
    target: Target,
    ports: Vec<u16>,
    tries: u32,
    timeout: Duration,
    limits: RttLimits,
) -> Option<HostDone> {
    let started = SystemTime::now();
    for _ in 0..tries {
        let mut set = tokio::task::JoinSet::new();
        for &port in &ports {
            let addr = SocketAddr::new(target.addr, port);
            set.spawn(async move {
                let t0 = Instant::now();
                let r = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await;
                let rtt = t0.elapsed();
                match r {
                    Ok(Ok(_)) => Some((Reason::SynAck, rtt)),
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        Some((Reason::ConnRefused, rtt))
                    }
                    _ => None,
                }
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(Some((reason, rtt))) = r {
                let mut est = RttEstimator::default();
                est.sample(rtt);
                return Some(HostDone {
                    host_index: index,
                    addr: target.addr,
                    host: target.name,
                    started,
                    ended: SystemTime::now(),
                    counts: Vec::new(),
                    up: true,
                    srtt: est.srtt(),
                    rttvar: est.rttvar(),
                    timeout: est.timeout(&limits),
                    discovery: Some(Discovered { reason, mac: None }),
                    answers_all: false,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_differ_by_probe_kind_and_target() {
        let c = Cookie {
            key: std::collections::hash_map::RandomState::new(),
        };
        let (a, b): (IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        assert_eq!(c.icmp(a, b), c.icmp(a, b));
        assert_ne!(c.icmp(a, b), c.icmp(a, "198.18.0.3".parse().unwrap()));
        assert_ne!(c.tcp(a, b, 80, false), c.tcp(a, b, 80, true));
        assert_ne!(c.tcp(a, b, 80, false), c.tcp(a, b, 443, false));
    }

    #[test]
    fn nmap_default_probes() {
        let p = Probes::nmap_default();
        assert_eq!(p.count(), 4);
        assert!(!p.is_empty());
        assert!(Probes::default().is_empty());
    }
}
