//! The event sequence every printer's tests replay: two hosts whose ports
//! interleave as the scanner's permutation makes them, one named and one
//! not, every port state and several reasons, a target that did not resolve,
//! and the captured output.

use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    Event, HostDone, PortCount, PortResult, PortState, Proto, Reason, RunInfo, ScanInfo, Sink,
    SinkOptions, Summary, TargetError,
};

/// Tue Nov  3 18:01:25 2026 UTC.
pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_793_728_885)
}

pub(crate) fn opts(all_states: bool) -> SinkOptions {
    SinkOptions {
        color: false,
        all_states,
        version: "0.1.0",
    }
}

pub(crate) fn run_info() -> RunInfo {
    RunInfo {
        command: "scan",
        args: "sockeye scan -p 22,25,80,443,8080,40000,U:53 lab.test 198.18.0.3 nope.invalid"
            .to_owned(),
        started: t0(),
        scans: vec![
            ScanInfo {
                scan_type: "connect",
                proto: Proto::Tcp,
                ports_spec: "22,25,80,443,8080,40000".to_owned(),
                num_ports: 6,
            },
            ScanInfo {
                scan_type: "udp",
                proto: Proto::Udp,
                ports_spec: "53".to_owned(),
                num_ports: 1,
            },
        ],
        all_states: false,
        shard: None,
    }
}

pub(crate) const A1: &str = "198.18.0.2";
pub(crate) const A2: &str = "198.18.0.3";

fn count(proto: Proto, state: PortState, reason: Reason, count: u32) -> PortCount {
    PortCount {
        proto,
        state,
        reason,
        count,
    }
}

fn addr(a: &str) -> IpAddr {
    a.parse().expect("test address")
}

fn port(
    a: &str,
    name: Option<&str>,
    (port, proto): (u16, Proto),
    (state, reason): (PortState, Reason),
    rtt_us: Option<u64>,
    tries: u8,
) -> Event {
    Event::Port(PortResult {
        host_index: u64::from(a != A1),
        addr: addr(a),
        host: name.map(Arc::from),
        port,
        proto,
        state,
        reason,
        rtt: rtt_us.map(Duration::from_micros),
        tries,
    })
}

/// The whole run between `start` and `finish`, host 1 named `name`.
pub(crate) fn events(name: &str) -> Vec<Event> {
    use PortState::*;
    use Proto::*;
    use Reason::*;
    let n = Some(name);
    let h1 = HostDone {
        host_index: 0,
        addr: addr(A1),
        host: Some(Arc::from(name)),
        started: t0(),
        ended: t0() + Duration::from_millis(300),
        counts: vec![
            count(Tcp, Open, SynAck, 2),
            count(Tcp, Closed, ConnRefused, 2),
            count(Tcp, Filtered, NoResponse, 1),
            count(Tcp, Filtered, HostUnreach, 1),
        ],
        up: true,
        srtt: Some(Duration::from_micros(210)),
        rttvar: Some(Duration::from_micros(50)),
        timeout: Duration::from_millis(100),
        discovery: None,
        answers_all: false,
    };
    let h2 = HostDone {
        host_index: 1,
        addr: addr(A2),
        host: None,
        started: t0(),
        ended: t0() + Duration::from_millis(400),
        counts: vec![
            count(Tcp, Open, SynAck, 1),
            count(Tcp, Closed, ConnRefused, 3),
            count(Tcp, Filtered, NoResponse, 1),
            count(Tcp, Filtered, AdminProhibited, 1),
            count(Udp, OpenFiltered, NoResponse, 1),
        ],
        up: true,
        srtt: None,
        rttvar: None,
        timeout: Duration::from_secs(1),
        discovery: None,
        answers_all: false,
    };
    vec![
        port(A1, n, (22, Tcp), (Open, SynAck), Some(210), 1),
        port(A2, None, (443, Tcp), (Open, SynAck), Some(1500), 2),
        port(A1, n, (25, Tcp), (Closed, ConnRefused), Some(180), 1),
        port(A2, None, (22, Tcp), (Closed, ConnRefused), None, 1),
        port(A2, None, (53, Udp), (OpenFiltered, NoResponse), None, 2),
        port(A1, n, (8080, Tcp), (Filtered, NoResponse), None, 2),
        port(A2, None, (25, Tcp), (Filtered, NoResponse), None, 2),
        port(A1, n, (80, Tcp), (Open, SynAck), Some(350), 1),
        port(A2, None, (80, Tcp), (Filtered, AdminProhibited), None, 1),
        port(A1, n, (443, Tcp), (Closed, ConnRefused), Some(200), 1),
        port(A1, n, (40000, Tcp), (Filtered, HostUnreach), None, 1),
        Event::HostDone(h1),
        port(A2, None, (8080, Tcp), (Closed, ConnRefused), None, 1),
        Event::TargetError(TargetError {
            kind: crate::report::TargetErrorKind::Resolve,
            target: "nope.invalid".to_owned(),
            message: "Name or service not known".to_owned(),
        }),
        port(A2, None, (40000, Tcp), (Closed, ConnRefused), None, 1),
        Event::HostDone(h2),
    ]
}

pub(crate) fn summary() -> Summary {
    Summary {
        command: "scan",
        hosts: 2,
        ports: 13,
        open: 3,
        closed: 5,
        filtered: 4,
        open_filtered: 1,
        elapsed: Duration::from_millis(412),
        ended: t0() + Duration::from_millis(412),
        interrupted: false,
        note: None,
        hosts_up: None,
    }
}

/// Ctrl-C before anything was decided.
pub(crate) fn interrupted_summary() -> Summary {
    Summary {
        command: "scan",
        hosts: 0,
        ports: 0,
        open: 0,
        closed: 0,
        filtered: 0,
        open_filtered: 0,
        elapsed: Duration::from_millis(50),
        ended: t0() + Duration::from_millis(50),
        interrupted: true,
        note: None,
        hosts_up: None,
    }
}

/// A writer the test keeps a handle on after giving the sink its box.
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8 output")
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Replays `start`, `events`, `finish` and returns what the sink wrote.
pub(crate) fn replay<S: Sink>(
    make: impl FnOnce(Box<dyn Write + Send>) -> S,
    events: &[Event],
    summary: &Summary,
) -> String {
    let out = Captured::default();
    let mut sink = make(Box::new(out.clone()));
    sink.start(&run_info()).expect("start");
    for event in events {
        sink.event(event).expect("event");
    }
    sink.finish(summary).expect("finish");
    out.text()
}

/// Host discovery alone (`-sn`) of 256 addresses: one host up by ARP, with
/// its MAC address; the summary counts the addresses and the hosts up.
pub(crate) fn discovery() -> (Vec<Event>, Summary) {
    let done = HostDone {
        host_index: 2,
        addr: addr(A1),
        host: None,
        started: t0(),
        ended: t0(),
        counts: Vec::new(),
        up: true,
        srtt: Some(Duration::from_micros(210)),
        rttvar: Some(Duration::from_micros(105)),
        timeout: Duration::from_millis(100),
        discovery: Some(super::Discovered {
            reason: Reason::ArpResponse,
            mac: Some([0x02, 0x5e, 0xc0, 0x00, 0x00, 0x0a]),
        }),
        answers_all: false,
    };
    let summary = Summary {
        hosts: 256,
        ports: 0,
        open: 0,
        closed: 0,
        filtered: 0,
        open_filtered: 0,
        hosts_up: Some(1),
        ..summary()
    };
    (vec![Event::HostDone(done)], summary)
}
