//! TCP and UDP in one run (`-sS -sU`, `-p T:22,U:53`): both engines run at
//! once over the same targets, and their events meet here on the way to the
//! printers, so that each host gets one report with both protocols' ports.
//!
//! Port results pass through as they come (a JSON reader sees an open port
//! at once); a host's end waits until both engines have ended it, and the
//! two ends become one ([`HostDone::absorb`]): counts of both protocols,
//! the faster timing, up when either saw it. A target error both engines
//! report (an address this machine cannot send to) is passed on once.
//! A host only one engine ended (the other could not probe it, or the run
//! was interrupted before it began the host) is ended once both engines are
//! done, with what that one found: as an interrupted single-protocol run
//! ends the hosts it had begun.

use std::collections::{HashMap, HashSet};

use tokio::sync::mpsc;

use super::engine::ScanStats;
use crate::report::{Emit, Event, HostDone, TargetErrorKind};

/// The two engines' senders, and the task that joins their events into
/// `out`. The task ends when both senders (and their clones) are dropped;
/// it returns how many hosts it ended.
pub fn join_protocols(
    out: Emit<Event>,
    queue: usize,
) -> (Emit<Event>, Emit<Event>, tokio::task::JoinHandle<u64>) {
    let (tcp_tx, tcp_rx) = Emit::channel(queue);
    let (udp_tx, udp_rx) = Emit::channel(queue);
    let task = tokio::spawn(join(tcp_rx, udp_rx, out));
    (tcp_tx, udp_tx, task)
}

async fn join(
    mut tcp: mpsc::Receiver<Event>,
    mut udp: mpsc::Receiver<Event>,
    out: Emit<Event>,
) -> u64 {
    let mut joiner = Joiner::default();
    let (mut tcp_open, mut udp_open) = (true, true);
    while tcp_open || udp_open {
        let event = tokio::select! {
            ev = tcp.recv(), if tcp_open => match ev {
                Some(ev) => ev,
                None => { tcp_open = false; continue; }
            },
            ev = udp.recv(), if udp_open => match ev {
                Some(ev) => ev,
                None => { udp_open = false; continue; }
            },
        };
        if let Some(ev) = joiner.take(event)
            && out.send(ev).await.is_err()
        {
            // The printers are gone; the engines still finish their count.
        }
    }
    for done in joiner.left() {
        let _ = out.send(Event::HostDone(done)).await;
    }
    joiner.ended
}

/// The joining, apart from the channels.
#[derive(Default)]
struct Joiner {
    /// Hosts one engine has ended, waiting for the other's end.
    waiting: HashMap<u64, HostDone>,
    /// Target errors passed on, so that the second engine's copy is not.
    errors: HashSet<(TargetErrorKind, String, String)>,
    ended: u64,
}

impl Joiner {
    /// What to pass on for `event`, if anything yet.
    fn take(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::HostDone(done) => match self.waiting.remove(&done.host_index) {
                None => {
                    self.waiting.insert(done.host_index, done);
                    None
                }
                Some(mut first) => {
                    first.absorb(done);
                    self.ended += 1;
                    Some(Event::HostDone(first))
                }
            },
            Event::TargetError(err) => self
                .errors
                .insert((err.kind, err.target.clone(), err.message.clone()))
                .then_some(Event::TargetError(err)),
            other => Some(other),
        }
    }

    /// Hosts only one engine ended, once both are done, in target order.
    fn left(&mut self) -> Vec<HostDone> {
        let mut left: Vec<HostDone> = self.waiting.drain().map(|(_, d)| d).collect();
        left.sort_by_key(|d| d.host_index);
        self.ended += left.len() as u64;
        left
    }
}

/// The counts of a run of both engines: ports add up, hosts are those
/// ended with both protocols (`hosts`, from [`join_protocols`]).
pub fn add_stats(tcp: ScanStats, udp: ScanStats, hosts: u64) -> ScanStats {
    ScanStats {
        hosts,
        ports: tcp.ports + udp.ports,
        open: tcp.open + udp.open,
        closed: tcp.closed + udp.closed,
        filtered: tcp.filtered + udp.filtered,
        open_filtered: tcp.open_filtered + udp.open_filtered,
        answers_all: tcp.answers_all,
        local_retries: tcp.local_retries + udp.local_retries,
        unprobed: tcp.unprobed + udp.unprobed,
        probes: tcp.probes + udp.probes,
        resumed: tcp.resumed + udp.resumed,
        interrupted: tcp.interrupted || udp.interrupted,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::report::{PortCount, PortResult, PortState, Proto, Reason, TargetError, add_count};

    fn done(index: u64, proto: Proto, state: PortState, reason: Reason, n: u32) -> HostDone {
        let mut counts = Vec::new();
        add_count(&mut counts, proto, state, reason, n);
        HostDone {
            host_index: index,
            addr: IpAddr::from([198, 18, 0, 2]),
            host: None,
            started: SystemTime::UNIX_EPOCH,
            ended: SystemTime::UNIX_EPOCH,
            counts,
            up: proto == Proto::Tcp,
            srtt: (proto == Proto::Udp).then(|| Duration::from_millis(3)),
            rttvar: None,
            timeout: Duration::from_millis(100),
            discovery: None,
            answers_all: false,
        }
    }

    fn port(index: u64, port: u16, proto: Proto) -> Event {
        Event::Port(PortResult {
            host_index: index,
            addr: IpAddr::from([198, 18, 0, 2]),
            host: None,
            port,
            proto,
            state: PortState::Open,
            reason: Reason::SynAck,
            rtt: None,
            tries: 1,
        })
    }

    #[test]
    fn a_host_ends_once_with_both_protocols() {
        let mut j = Joiner::default();
        assert_eq!(
            j.take(port(0, 22, Proto::Tcp)),
            Some(port(0, 22, Proto::Tcp))
        );
        let tcp = done(0, Proto::Tcp, PortState::Closed, Reason::Rst, 999);
        assert_eq!(j.take(Event::HostDone(tcp)), None);
        assert_eq!(
            j.take(port(0, 53, Proto::Udp)),
            Some(port(0, 53, Proto::Udp))
        );
        let udp = done(0, Proto::Udp, PortState::Closed, Reason::PortUnreach, 999);
        let Some(Event::HostDone(both)) = j.take(Event::HostDone(udp)) else {
            panic!("the second end makes the host's one end");
        };
        let closed = |proto, reason| PortCount {
            proto,
            state: PortState::Closed,
            reason,
            count: 999,
        };
        assert_eq!(
            both.counts,
            vec![
                closed(Proto::Tcp, Reason::Rst),
                closed(Proto::Udp, Reason::PortUnreach)
            ]
        );
        assert!(both.up, "TCP saw it up");
        assert_eq!(both.srtt, Some(Duration::from_millis(3)), "UDP's timing");
        assert_eq!(j.ended, 1);
        assert!(j.left().is_empty());
    }

    #[test]
    fn a_lone_end_waits_for_both_engines_to_be_done() {
        let lone = |i| done(i, Proto::Tcp, PortState::Open, Reason::SynAck, 1);
        let mut j = Joiner::default();
        assert_eq!(j.take(Event::HostDone(lone(3))), None);
        assert_eq!(j.take(Event::HostDone(lone(1))), None);
        assert_eq!(j.left(), vec![lone(1), lone(3)]);
        assert_eq!(j.ended, 2);
    }

    #[test]
    fn both_engines_errors_pass_once() {
        let err = || {
            Event::TargetError(TargetError {
                kind: TargetErrorKind::Probe,
                target: "::1".into(),
                message: "cannot send".into(),
            })
        };
        let mut j = Joiner::default();
        assert_eq!(j.take(err()), Some(err()));
        assert_eq!(j.take(err()), None);
    }
}
