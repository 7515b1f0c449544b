//! The probe pipelines: checks run concurrently and emitted as report
//! events, for `sockeye probe` (every port of every host, a host's
//! `HostDone` when its last check is done) and for `scan --probe` (the
//! stage between the scan engine and the printers that checks each open
//! port by content).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Job, ProbeConfig, Service, check};
use crate::report::{
    Emit, Event, HostDone, PortCount, PortState, Proto, Reason, ServiceResult, Tally,
};
use crate::target::TargetSet;

/// Checks running at once under `scan --probe`.
pub const SCAN_PROBE_CONCURRENCY: usize = 64;

/// Per-host bookkeeping until its last check is done.
struct HostState {
    left: usize,
    started: SystemTime,
    counts: HashMap<(PortState, Reason), u32>,
}

/// `sockeye probe`: checks every `(port, expected service)` of `ports` on
/// every host of `targets`, at most `concurrency` at once, emitting each
/// result as it completes and a host's `HostDone` after its last check.
/// `cancel` stops starting checks and abandons the running ones.
pub async fn probe_hosts(
    cfg: Arc<ProbeConfig>,
    targets: &TargetSet,
    ports: &[(u16, Option<Service>)],
    concurrency: usize,
    cancel: CancellationToken,
    events: &Emit<Event>,
) -> Tally {
    let per_host = ports.len();
    let mut hosts: HashMap<u64, HostState> = HashMap::new();
    let mut stats = Tally::default();
    let mut pending = targets.iter().enumerate().flat_map(|(i, t)| {
        ports.iter().map(move |&(port, expect)| Job {
            host_index: i as u64,
            addr: t.addr,
            host: t.name.clone(),
            port,
            expect,
        })
    });
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < concurrency.max(1) {
            let Some(job) = pending.next() else { break };
            if cancel.is_cancelled() {
                break;
            }
            let cfg = Arc::clone(&cfg);
            set.spawn(async move { check(&cfg, &job).await });
        }
        let next = tokio::select! {
            r = set.join_next() => r,
            _ = cancel.cancelled() => {
                set.abort_all();
                break;
            }
        };
        match next {
            Some(Ok(result)) => {
                let done = count(&mut hosts, &mut stats, per_host, &result);
                let _ = events.send(Event::Service(Box::new(result))).await;
                if let Some(done) = done {
                    let _ = events.send(Event::HostDone(done)).await;
                }
            }
            Some(Err(err)) => tracing::error!(%err, "a check panicked"),
            None => break,
        }
    }
    stats
}

/// Counts a finished check; after a host's last one, its `HostDone`.
fn count(
    hosts: &mut HashMap<u64, HostState>,
    stats: &mut Tally,
    per_host: usize,
    result: &ServiceResult,
) -> Option<HostDone> {
    let host = hosts.entry(result.host_index).or_insert_with(|| HostState {
        left: per_host,
        started: SystemTime::now(),
        counts: HashMap::new(),
    });
    *host
        .counts
        .entry((result.state, result.reason))
        .or_default() += 1;
    host.left -= 1;
    stats.ports += 1;
    match result.state {
        PortState::Open => stats.open += 1,
        PortState::Closed => stats.closed += 1,
        _ => stats.filtered += 1,
    }
    if host.left > 0 {
        return None;
    }
    stats.hosts += 1;
    Some(HostDone {
        host_index: result.host_index,
        addr: result.addr,
        host: result.host.clone(),
        started: host.started,
        ended: SystemTime::now(),
        counts: host
            .counts
            .iter()
            .map(|(&(state, reason), &count)| PortCount {
                proto: Proto::Tcp,
                state,
                reason,
                count,
            })
            .collect(),
        // A probed port answered by the host is open or closed; filtered
        // says nothing of who answered.
        up: host
            .counts
            .keys()
            .any(|(s, _)| matches!(s, PortState::Open | PortState::Closed)),
        srtt: None,
        rttvar: None,
        timeout: Duration::ZERO,
        discovery: None,
        answers_all: false,
    })
}

/// `scan --probe`: sits between the scan engine and the printers. Every
/// open TCP port is passed on at once and checked by content; its service
/// result follows it, and a host's `HostDone` waits until its last check
/// is done, so each host's report has every fact.
pub async fn relay(
    cfg: Arc<ProbeConfig>,
    mut from_engine: mpsc::Receiver<Event>,
    to_printer: Emit<Event>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(SCAN_PROBE_CONCURRENCY));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut pending: HashMap<u64, usize> = HashMap::new();
    let mut held: HashMap<u64, HostDone> = HashMap::new();
    let mut engine_open = true;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if !engine_open && pending.is_empty() {
            break;
        }
        tokio::select! {
            event = from_engine.recv(), if engine_open => match event {
                None => engine_open = false,
                Some(Event::Port(p)) if p.state == PortState::Open && p.proto == Proto::Tcp => {
                    *pending.entry(p.host_index).or_default() += 1;
                    let job = Job {
                        host_index: p.host_index,
                        addr: p.addr,
                        host: p.host.clone(),
                        port: p.port,
                        expect: Service::for_port(p.port),
                    };
                    let _ = to_printer.send(Event::Port(p)).await;
                    let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                        break;
                    };
                    let cfg = Arc::clone(&cfg);
                    let done = done_tx.clone();
                    tasks.spawn(async move {
                        let result = check(&cfg, &job).await;
                        drop(permit);
                        let _ = done.send(result);
                    });
                }
                Some(Event::HostDone(d)) => {
                    if pending.contains_key(&d.host_index) {
                        held.insert(d.host_index, d);
                    } else {
                        let _ = to_printer.send(Event::HostDone(d)).await;
                    }
                }
                Some(other) => {
                    let _ = to_printer.send(other).await;
                }
            },
            Some(result) = done_rx.recv() => {
                let host = result.host_index;
                let _ = to_printer.send(Event::Service(Box::new(result))).await;
                if let Some(n) = pending.get_mut(&host) {
                    *n -= 1;
                    if *n == 0 {
                        pending.remove(&host);
                        if let Some(d) = held.remove(&host) {
                            let _ = to_printer.send(Event::HostDone(d)).await;
                        }
                    }
                }
            }
            _ = cancel.cancelled() => {
                tasks.abort_all();
                break;
            }
        }
    }
}
