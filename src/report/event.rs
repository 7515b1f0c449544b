//! The event types every engine emits and every printer renders: a port's
//! verdict, a host's end, a target that could not be scanned, a service
//! check's result (in `service.rs`), and what a run's start and end say.
//! Engines depend on these types only, never on a printer.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::target::Proto;

use super::ServiceResult;

/// What a probe concluded about one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PortState {
    Open,
    Closed,
    Filtered,
    /// UDP only: no answer, which an open UDP service may also give.
    OpenFiltered,
}

impl PortState {
    /// The spelling of output.md and nmap.
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::OpenFiltered => "open|filtered",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a port got its state, in nmap's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    SynAck,
    ConnRefused,
    Rst,
    NoResponse,
    UdpResponse,
    PortUnreach,
    HostUnreach,
    NetUnreach,
    AdminProhibited,
    ProtoUnreach,
    /// Host discovery: the host answered an ARP request (IPv4 on a directly
    /// connected network).
    ArpResponse,
    /// Host discovery: the host answered a neighbor solicitation (IPv6 on a
    /// directly connected network).
    NdResponse,
    /// Host discovery: an ICMP (or ICMPv6) echo reply.
    EchoReply,
    /// Host discovery: an ICMP timestamp reply.
    TimestampReply,
    /// Host discovery: the address is this machine's own.
    LocalhostResponse,
    /// Any other ICMP destination-unreachable (or other) message.
    Icmp {
        kind: u8,
        code: u8,
    },
}

impl Reason {
    /// The spelling of output.md. Other ICMP messages are named plainly.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match self {
            Reason::SynAck => Borrowed("syn-ack"),
            Reason::ConnRefused => Borrowed("conn-refused"),
            Reason::Rst => Borrowed("reset"),
            Reason::NoResponse => Borrowed("no-response"),
            Reason::UdpResponse => Borrowed("udp-response"),
            Reason::PortUnreach => Borrowed("port-unreach"),
            Reason::HostUnreach => Borrowed("host-unreach"),
            Reason::NetUnreach => Borrowed("net-unreach"),
            Reason::AdminProhibited => Borrowed("admin-prohibited"),
            Reason::ProtoUnreach => Borrowed("proto-unreach"),
            Reason::ArpResponse => Borrowed("arp-response"),
            Reason::NdResponse => Borrowed("nd-response"),
            Reason::EchoReply => Borrowed("echo-reply"),
            Reason::TimestampReply => Borrowed("timestamp-reply"),
            Reason::LocalhostResponse => Borrowed("localhost-response"),
            Reason::Icmp { kind, code } => Owned(format!("icmp-type-{kind}-code-{code}")),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One scanned (host, port) and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortResult {
    /// Which target of the run this is (its index in the target set): the
    /// same address given twice is two hosts, reported apart.
    pub host_index: u64,
    pub addr: IpAddr,
    /// The name the user typed, when the target was a host name.
    pub host: Option<Arc<str>>,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// Round-trip time of the answer that decided the state, if any.
    pub rtt: Option<Duration>,
    /// How many probes were sent for this port (1 + retries used).
    pub tries: u8,
}

/// Everything known about a host once all its ports are decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostDone {
    /// Matches [`PortResult::host_index`].
    pub host_index: u64,
    pub addr: IpAddr,
    pub host: Option<Arc<str>>,
    pub started: SystemTime,
    pub ended: SystemTime,
    /// Ports per (protocol, state, reason), over every port of the host
    /// (open included).
    pub counts: Vec<PortCount>,
    /// Something the host itself sent answered a probe: a SYN-ACK, an RST,
    /// or an ICMP error from its own address. A router's or this machine's
    /// own unreachable, or silence, leaves it false: down, or unknown.
    pub up: bool,
    /// Smoothed RTT, RTT variance and the timeout in force at the end, when
    /// at least one answer was timed.
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    pub timeout: Duration,
    /// Set when host discovery found the host up: how.
    pub discovery: Option<Discovered>,
    /// Every probed TCP port answered open, and there were many of them: a
    /// SYN proxy or a tarpit answers for the host, so its TCP results say
    /// nothing. Its open TCP ports were counted in `counts` but not sent as
    /// ports (a UDP scan of the same run is reported as usual).
    pub answers_all: bool,
}

/// How many ports of a host share a protocol, a state and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortCount {
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    pub count: u32,
}

/// Adds `n` ports of (`proto`, `state`, `reason`) to a host's counts.
pub fn add_count(
    counts: &mut Vec<PortCount>,
    proto: Proto,
    state: PortState,
    reason: Reason,
    n: u32,
) {
    match counts
        .iter_mut()
        .find(|c| c.proto == proto && c.state == state && c.reason == reason)
    {
        Some(c) => c.count += n,
        None => counts.push(PortCount {
            proto,
            state,
            reason,
            count: n,
        }),
    }
}

/// How host discovery found a host up: the answer, and the host's MAC
/// address when it answered on the local link (ARP, NDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// `arp-response`, `nd-response`, `echo-reply`, `timestamp-reply`,
    /// `syn-ack`, `reset`, `port-unreach`, `conn-refused`...
    pub reason: Reason,
    pub mac: Option<[u8; 6]>,
}

impl Discovered {
    /// The MAC address as nmap writes it: `02:5E:C0:00:00:02`.
    pub fn mac_text(&self) -> Option<String> {
        self.mac.map(|m| {
            format!(
                "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        })
    }
}

impl HostDone {
    /// Folds another end of the same host into this one: two shards of a
    /// scan, or the TCP and the UDP scan of one run. Counts add up, the host
    /// is up when either saw it so, the faster timing is kept.
    pub fn absorb(&mut self, other: HostDone) {
        for c in other.counts {
            add_count(&mut self.counts, c.proto, c.state, c.reason, c.count);
        }
        self.counts.sort();
        self.up |= other.up;
        let other_faster = match (self.srtt, other.srtt) {
            (None, Some(_)) => true,
            (Some(x), Some(y)) => y < x,
            _ => false,
        };
        if other_faster {
            self.srtt = other.srtt;
            self.rttvar = other.rttvar;
        }
        self.timeout = self.timeout.max(other.timeout);
        self.started = self.started.min(other.started);
        self.ended = self.ended.max(other.ended);
        self.discovery = self.discovery.or(other.discovery);
        self.answers_all |= other.answers_all;
    }

    /// What the printers say of a host that answered on every TCP port.
    pub fn unreliable_note(&self) -> Option<String> {
        self.answers_all.then(|| {
            let total: u64 = self
                .counts
                .iter()
                .filter(|c| c.proto == Proto::Tcp)
                .map(|c| u64::from(c.count))
                .sum();
            format!("answers on all {total} probed ports: results for this host are unreliable")
        })
    }
}

/// A target that could not be scanned: a name that did not resolve, or an
/// address this machine cannot send to at all (no IPv6, a local error that
/// retrying will not fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetError {
    pub kind: TargetErrorKind,
    pub target: String,
    pub message: String,
}

/// What went wrong with a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TargetErrorKind {
    /// The host name did not resolve; nothing was sent.
    Resolve,
    /// Probes to this address failed on this machine before reaching the network.
    Probe,
}

impl TargetErrorKind {
    /// The name used in JSON (`"kind"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetErrorKind::Resolve => "resolve",
            TargetErrorKind::Probe => "probe",
        }
    }
}

impl TargetError {
    /// One line for people, without control characters escaped:
    /// `Failed to resolve "x": why` or `Cannot probe "x": why`.
    pub fn headline(&self) -> String {
        let what = match self.kind {
            TargetErrorKind::Resolve => "Failed to resolve",
            TargetErrorKind::Probe => "Cannot probe",
        };
        format!("{what} \"{}\": {}", self.target, self.message)
    }
}

impl From<crate::target::resolve::Unresolved> for TargetError {
    fn from(u: crate::target::resolve::Unresolved) -> Self {
        TargetError {
            kind: TargetErrorKind::Resolve,
            target: u.token,
            message: u.message,
        }
    }
}

/// What is known when a run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// "scan", "probe", ...
    pub command: &'static str,
    /// The command line as typed, for nmap XML's `args` and grepable headers.
    pub args: String,
    pub started: SystemTime,
    /// The port scans of the run, one per protocol, TCP first; none for
    /// host discovery alone (`-sn`).
    pub scans: Vec<ScanInfo>,
    /// Show every port, not only open ones (`--all-states`).
    pub all_states: bool,
    /// `--shard I/N`: which part of the work this run is, and what every
    /// part must share. JSON Lines then open with a `run` record and carry
    /// what `sockeye report merge` needs to put the parts back together.
    pub shard: Option<ShardRun>,
}

/// One protocol's port scan in a run: nmap's `<scaninfo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanInfo {
    /// nmap's scan type name: "connect", "syn", "udp".
    pub scan_type: &'static str,
    pub proto: Proto,
    /// The ports in nmap's compact syntax, e.g. "1-1024,8080".
    pub ports_spec: String,
    /// Number of ports per host.
    pub num_ports: u32,
}

impl RunInfo {
    /// The scan type of the run's first port scan ("ping" for host
    /// discovery alone), as a sharded run's header names it.
    pub fn scan_type(&self) -> &'static str {
        self.scans.first().map_or("ping", |s| s.scan_type)
    }
}

/// One shard of a scan split with `--shard I/N --seed S`, and the scan
/// parameters the shards of one scan share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRun {
    /// I, from 0.
    pub index: u32,
    /// N.
    pub count: u32,
    pub seed: u64,
    /// The targets as typed (and read with `-iL`), space-separated.
    pub targets: String,
    /// The exclusions, space-separated.
    pub excludes: String,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub command: &'static str,
    /// Hosts scanned (all of their ports decided).
    pub hosts: u64,
    /// (host, port) pairs decided.
    pub ports: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub open_filtered: u64,
    pub elapsed: Duration,
    pub ended: SystemTime,
    /// True when Ctrl-C stopped the run before it finished.
    pub interrupted: bool,
    /// Something about how the run went that its numbers do not say (a
    /// UDP scan slowed down to a target's ICMP rate limit), in words.
    pub note: Option<String>,
    /// Host discovery alone (`-sn`): how many of the `hosts` were up.
    pub hosts_up: Option<u64>,
}

/// What a run decided, counted as it went: the numbers of its [`Summary`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Hosts whose every port is decided.
    pub hosts: u64,
    /// (host, port) pairs decided.
    pub ports: u64,
    pub open: u64,
    pub closed: u64,
    /// Filtered, and for a TCP scan every other state.
    pub filtered: u64,
    /// Open|filtered (UDP: no answer after the retries).
    pub open_filtered: u64,
}

impl Tally {
    /// The summary of a run of `command` that ends now.
    pub fn summary(self, command: &'static str, elapsed: Duration, interrupted: bool) -> Summary {
        Summary {
            command,
            hosts: self.hosts,
            ports: self.ports,
            open: self.open,
            closed: self.closed,
            filtered: self.filtered,
            open_filtered: self.open_filtered,
            elapsed,
            ended: SystemTime::now(),
            interrupted,
            note: None,
            hosts_up: None,
        }
    }
}

/// The stream of results a run produces, in the order it produces them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Port(PortResult),
    /// A service check's result (`probe`, `scan --probe`).
    Service(Box<ServiceResult>),
    HostDone(HostDone),
    TargetError(TargetError),
}
