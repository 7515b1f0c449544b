//! What the printers share: which ports a sink shows, the per-host buffer
//! that holds a host's shown ports until its `HostDone`, the ignored-state
//! groups built from a host's counts, and the small formatting rules (nmap's
//! times, thousands separators, two significant digits) that several formats
//! must spell the same way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, UtcOffset};

use super::{
    Event, HostDone, PortCount, PortResult, PortState, Proto, Reason, ServiceResult, TargetError,
};

/// A closed, filtered or open|filtered state with more ports than this on a host is only
/// counted in the table, as nmap does; engines send the ports of a state
/// only while it has at most this many, so the table can list the rest.
pub const LIST_MAX: u32 = 25;

/// What the table only counts for a host (see [`table_hidden`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hidden {
    states: Vec<PortState>,
    /// The host answered on every TCP port: its open TCP ports were never
    /// sent, only counted.
    tcp_open: bool,
}

impl Hidden {
    pub(crate) fn hides(&self, proto: Proto, state: PortState) -> bool {
        self.states.contains(&state)
            || (self.tcp_open && proto == Proto::Tcp && state == PortState::Open)
    }
}

/// What the table only counts for a host: as nmap, the most common of the
/// closed, filtered and open|filtered states, and any of them with more
/// than [`LIST_MAX`] ports. Open ones are listed, except the open TCP ports
/// of a host that answered on every one (a tarpit); nothing else is hidden
/// with `--all-states`.
pub(crate) fn table_hidden(done: &HostDone, all_states: bool) -> Hidden {
    let tcp_open = done.answers_all;
    if all_states {
        return Hidden {
            states: Vec::new(),
            tcp_open,
        };
    }
    let mut per_state: Vec<(PortState, u64)> = Vec::new();
    for &PortCount { state, count, .. } in &done.counts {
        if state == PortState::Open {
            continue;
        }
        match per_state.iter_mut().find(|(s, _)| *s == state) {
            Some((_, n)) => *n += u64::from(count),
            None => per_state.push((state, u64::from(count))),
        }
    }
    let most = per_state
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(s, _)| *s);
    let states = per_state
        .iter()
        .filter(|(s, n)| Some(*s) == most || *n > u64::from(LIST_MAX))
        .map(|(s, _)| *s)
        .collect();
    Hidden { states, tcp_open }
}

/// Whether a port is printed line by line rather than only counted.
pub(crate) fn is_shown(state: PortState, all_states: bool) -> bool {
    all_states || matches!(state, PortState::Open | PortState::OpenFiltered)
}

/// The service name column: the built-in table, else "unknown" as nmap says.
pub(crate) fn service(port: u16, proto: Proto) -> &'static str {
    crate::target::ports::service_name(port, proto).unwrap_or("unknown")
}

/// A host as the engines name it: its index in the run, then address and
/// name (the same address given twice is scanned, and reported, twice).
pub(crate) type HostKey = (u64, IpAddr, Option<Arc<str>>);

/// The shown ports of hosts whose `HostDone` has not arrived yet.
///
/// Ports of different hosts interleave, so a per-host printer must wait; only
/// shown ports are kept (closed and filtered ones are counted by the engine in
/// `HostDone::counts`), which keeps memory proportional to what will be
/// printed anyway.
#[derive(Debug, Default)]
pub(crate) struct HostBuffer {
    pending: HashMap<HostKey, Vec<PortResult>>,
    /// Service checks by (host index, port), shown with their port.
    services: HashMap<(u64, u16), Arc<ServiceResult>>,
}

/// What a per-host printer still has to write for an event once the
/// buffer has kept its share.
#[derive(Debug)]
pub(crate) enum Routed<'a> {
    /// A port or service result, held until its host is done.
    Held,
    /// A host is done: print it with [`HostBuffer::take`].
    HostDone(&'a HostDone),
    TargetError(&'a TargetError),
}

impl HostBuffer {
    /// Keeps ports and service results until their host is done; says what
    /// is left to print of any other event.
    pub(crate) fn route<'a>(&mut self, event: &'a Event, all_states: bool) -> Routed<'a> {
        match event {
            Event::Port(p) => {
                self.push(p, all_states);
                Routed::Held
            }
            Event::Service(sv) => {
                self.push_service(sv, all_states);
                Routed::Held
            }
            Event::HostDone(done) => Routed::HostDone(done),
            Event::TargetError(err) => Routed::TargetError(err),
        }
    }

    /// A service check: its port is shown (added if the scan did not emit
    /// it already), and its facts are kept for the port's row.
    fn push_service(&mut self, s: &ServiceResult, all_states: bool) {
        let key = (s.host_index, s.port);
        if self.services.insert(key, Arc::new(s.clone())).is_some() {
            return;
        }
        let ports = self
            .pending
            .entry((s.host_index, s.addr, s.host.clone()))
            .or_default();
        if ports
            .iter()
            .any(|p| p.port == s.port && p.proto == Proto::Tcp)
        {
            return;
        }
        if is_shown(s.state, all_states) {
            ports.push(PortResult {
                host_index: s.host_index,
                addr: s.addr,
                host: s.host.clone(),
                port: s.port,
                proto: Proto::Tcp,
                state: s.state,
                reason: s.reason,
                rtt: None,
                tries: 1,
            });
        }
    }

    /// The service check of a shown port, if one ran.
    pub(crate) fn service_of(&self, p: &PortResult) -> Option<Arc<ServiceResult>> {
        if p.proto != Proto::Tcp {
            return None;
        }
        self.services.get(&(p.host_index, p.port)).cloned()
    }

    /// Forgets the service checks of a printed host.
    pub(crate) fn forget_services(&mut self, host_index: u64) {
        self.services.retain(|(h, _), _| *h != host_index);
    }

    fn push(&mut self, port: &PortResult, all_states: bool) {
        if is_shown(port.state, all_states) {
            self.pending
                .entry((port.host_index, port.addr, port.host.clone()))
                .or_default()
                .push(port.clone());
        }
    }

    /// The shown ports of a finished host, sorted by (proto, port).
    pub(crate) fn take(&mut self, done: &HostDone) -> Vec<PortResult> {
        let mut ports = self
            .pending
            .remove(&(done.host_index, done.addr, done.host.clone()))
            .unwrap_or_default();
        sort_ports(&mut ports);
        ports
    }

    /// Hosts that never got their `HostDone` (the run was interrupted), in
    /// address order, each with its sorted shown ports: printing them keeps
    /// the open ports found before Ctrl-C.
    pub(crate) fn drain_unfinished(&mut self) -> Vec<(HostKey, Vec<PortResult>)> {
        let mut hosts: Vec<_> = self.pending.drain().collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, ports) in &mut hosts {
            sort_ports(ports);
        }
        hosts
    }
}

fn sort_ports(ports: &mut [PortResult]) {
    ports.sort_by_key(|p| (p.proto, p.port));
}

/// One group of ports that are counted instead of listed: nmap's
/// "Not shown: 65521 closed tcp ports (conn-refused)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ignored {
    pub(crate) proto: Proto,
    pub(crate) state: PortState,
    pub(crate) reason: Reason,
    pub(crate) count: u64,
}

/// The ignored (state, reason) groups of a host, largest first as nmap sorts
/// them. Empty when every state is shown. The open ports of a host that
/// answered on every port are counted here too (they were never sent).
pub(crate) fn ignored_groups(done: &HostDone, all_states: bool) -> Vec<Ignored> {
    ignored_groups_where(done, |proto, state| {
        !is_shown(state, all_states)
            || (done.answers_all && proto == Proto::Tcp && state == PortState::Open)
    })
}

/// The groups of the states `hidden` says are only counted, largest first.
pub(crate) fn ignored_groups_where(
    done: &HostDone,
    hidden: impl Fn(Proto, PortState) -> bool,
) -> Vec<Ignored> {
    let mut groups: Vec<Ignored> = Vec::new();
    for &PortCount {
        proto,
        state,
        reason,
        count,
    } in &done.counts
    {
        if count == 0 || !hidden(proto, state) {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| g.proto == proto && g.state == state && g.reason == reason)
        {
            Some(g) => g.count += u64::from(count),
            None => groups.push(Ignored {
                proto,
                state,
                reason,
                count: u64::from(count),
            }),
        }
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.state.cmp(&b.state))
            .then(a.proto.cmp(&b.proto))
            .then(a.reason.cmp(&b.reason))
    });
    groups
}

/// The ignored groups merged per state (nmap's `<extraports>` and grepable
/// "Ignored State"), largest first, each with its reasons largest first.
pub(crate) fn ignored_states(groups: &[Ignored]) -> Vec<(PortState, u64, Vec<&Ignored>)> {
    let mut states: Vec<(PortState, u64, Vec<&Ignored>)> = Vec::new();
    for g in groups {
        match states.iter_mut().find(|s| s.0 == g.state) {
            Some(s) => {
                s.1 += g.count;
                s.2.push(g);
            }
            None => states.push((g.state, g.count, vec![g])),
        }
    }
    states.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    states
}

/// Every port of a host, whatever its state.
pub(crate) fn total_ports(done: &HostDone) -> u64 {
    done.counts.iter().map(|c| u64::from(c.count)).sum()
}

/// Ports of a host in one state.
pub(crate) fn count_state(done: &HostDone, state: PortState) -> u64 {
    done.counts
        .iter()
        .filter(|c| c.state == state)
        .map(|c| u64::from(c.count))
        .sum()
}

/// Why a host is called up, for nmap XML's `<status reason>`: what host
/// discovery heard from it, or else the best answer
/// the host itself gave on any port, or "user-set" (nmap's word under `-Pn`)
/// when nothing answered. Derived from the counts rather than from the first
/// answering port, so that no per-host state is kept for hosts without shown
/// ports; the order puts the most telling answer first.
pub(crate) fn host_reason(done: &HostDone) -> Cow<'static, str> {
    if let Some(d) = &done.discovery {
        return d.reason.name();
    }
    const ANSWERS: [Reason; 6] = [
        Reason::SynAck,
        Reason::ConnRefused,
        Reason::Rst,
        Reason::UdpResponse,
        Reason::PortUnreach,
        Reason::ProtoUnreach,
    ];
    ANSWERS
        .iter()
        .find(|r| done.counts.iter().any(|c| c.reason == **r && c.count > 0))
        .map_or(Cow::Borrowed("user-set"), |r| r.name())
}

/// The same choice for a host whose run was interrupted: only its shown
/// ports are known.
pub(crate) fn host_reason_of_ports(ports: &[PortResult]) -> Cow<'static, str> {
    ports
        .iter()
        .find(|p| p.reason != Reason::NoResponse)
        .map_or(Cow::Borrowed("user-set"), |p| p.reason.name())
}

/// The local UTC offset for nmap's human-readable times, UTC when it cannot
/// be known (the `time` crate refuses to read it once the process has
/// several threads, so this is asked once, when a sink is built).
pub(crate) fn local_offset() -> UtcOffset {
    UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC)
}

/// Seconds since the epoch, for nmap's `start`, `starttime`, `time`.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// nmap's `startstr`/`timestr`: C's ctime() without the newline,
/// "Mon Nov  3 18:01:25 2026", in local time.
pub(crate) fn ctime(t: SystemTime, offset: UtcOffset) -> String {
    let dt = OffsetDateTime::from(t).to_offset(offset);
    let weekday = dt.weekday().to_string();
    let month = dt.month().to_string();
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        weekday.get(..3).unwrap_or(&weekday),
        month.get(..3).unwrap_or(&month),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.year()
    )
}

/// Seconds with two decimals, as nmap prints elapsed times.
pub(crate) fn secs2(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// A duration in milliseconds rounded to at most three decimals (whole
/// microseconds), for JSON's `*_ms` fields.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// nmap's latency: seconds to two significant digits ("0.00021s", "1.5s").
pub(crate) fn latency(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return "0".to_owned();
    }
    let magnitude = secs.log10().floor() as i32;
    let decimals = (1 - magnitude).max(0) as usize;
    format!("{secs:.decimals$}")
}

/// An integer with thousands separators: 65,535.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 host", "2 hosts".
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text from outside (a typed name, a resolver message) made safe for a line
/// based format: control characters become `\xNN`, as nmap does for the
/// screen, so a name cannot break a line or send terminal escapes.
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(65535), "65,535");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn latency_has_two_significant_digits() {
        assert_eq!(latency(Duration::from_micros(210)), "0.00021");
        assert_eq!(latency(Duration::from_micros(92)), "0.000092");
        assert_eq!(latency(Duration::from_millis(12)), "0.012");
        assert_eq!(latency(Duration::from_millis(1500)), "1.5");
        assert_eq!(latency(Duration::from_secs(12)), "12");
        assert_eq!(latency(Duration::ZERO), "0");
    }

    #[test]
    fn millis_keeps_three_decimals() {
        assert_eq!(millis(Duration::from_micros(210)), 0.21);
        assert_eq!(millis(Duration::from_nanos(1_234_567)), 1.235);
        assert_eq!(millis(Duration::from_millis(412)), 412.0);
    }

    #[test]
    fn ctime_pads_the_day_with_a_space() {
        // 2026-11-03T18:01:25Z, a Tuesday.
        let t = UNIX_EPOCH + Duration::from_secs(1_793_728_885);
        assert_eq!(ctime(t, UtcOffset::UTC), "Tue Nov  3 18:01:25 2026");
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("lab.test"), "lab.test");
        assert_eq!(printable("a\tb\nc\x1b"), "a\\x09b\\x0Ac\\x1B");
    }
}
