//! The connect-scan scheduler.
//!
//! Work is every (host, port) pair of the target set, visited in the order of
//! a seeded [`Permutation`], so that no host sees a burst of consecutive
//! probes and `--shard I/N` runs with one seed split the work exactly.
//! Hosts are taken in groups of about [`GROUP_PROBES`] pairs: the permutation
//! runs within a group, and per-host state lives only while its group is in
//! flight, so memory stays flat however large the target set is. A host's
//! results are complete, and its [`HostDone`] is emitted, when its group is.
//!
//! One worker task per runtime thread owns a `FuturesUnordered` of probes
//! (the kernel's connect path is most of the cost of a probe, so using every
//! core matters more than anything done in user space). Workers take work in
//! small batches from shared state behind one mutex, which is held only for
//! bookkeeping, never across an await.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::connect::{self, Outcome, Started};
use super::resume::{
    self, CountsSnap, DoneBits, GroupSnap, HostBook, HostSnap, Logged, Part, Resume, TcpPart,
};
use super::timing::{Congestion, LossEstimate, RateLimiter, RttEstimator, RttLimits};
use crate::report::{
    Emit, Event, HostDone, LIST_MAX, PortCount, PortResult, PortState, Proto, Reason, Tally,
    TargetError, TargetErrorKind, add_count,
};
use crate::target::permute::Permutation;
use crate::target::{Target, TargetSet};

/// Pairs per host group: bounds per-host state to about this many pairs'
/// worth of hosts while still spreading each host's probes over time.
pub const GROUP_PROBES: u64 = 1 << 20;

/// Work items a worker takes per lock acquisition.
const BATCH: usize = 64;

/// How long a worker backs off after the machine ran out of something.
const LOCAL_BACKOFF: Duration = Duration::from_millis(10);

/// A host whose every probed port answered open is flagged as unreliable
/// (a SYN proxy or a tarpit answers for it) once it has at least this many
/// ports. nmap has no such check; a real host with 100 ports, all open and
/// none closed or filtered, is far rarer than a firewall answering for
/// every port, and a scan of a few ports (all open) stays as it was.
pub const ANSWERS_ALL_MIN: u32 = 100;

/// `--shard I/N`: this run covers positions I, I+N, I+2N, ... of every
/// group's permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// Everything the engine needs, validated.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub ports: Arc<[u16]>,
    /// Probes in flight at once, over all workers.
    pub max_inflight: usize,
    /// Extra probes for a port that did not answer.
    pub retries: u8,
    /// The most extra probes a host that loses probes gets (see
    /// [`LossEstimate`]); `retries` keeps them fixed.
    pub retry_ceiling: u8,
    pub rtt: RttLimits,
    /// Connects per second, over all workers.
    pub rate: Option<f64>,
    pub seed: u64,
    pub shard: Shard,
    /// Worker tasks; one per runtime thread is right.
    pub workers: usize,
    /// After cancellation, how long in-flight probes may still finish.
    pub grace: Duration,
    /// Emit `Event::Port` for every closed and filtered port too
    /// (`--all-states`); otherwise open ports, and those of a state with at
    /// most [`LIST_MAX`] ports on the host, are sent and the rest only counted.
    pub emit_all: bool,
    /// `--resume FILE`: where checkpoints go and what an earlier run left.
    pub resume: Option<Arc<Resume>>,
    /// `--source`: local addresses the UDP scan sends from, each a lane of
    /// its own (empty: the routing table chooses). TCP scans ignore it.
    pub sources: Arc<[IpAddr]>,
}

impl ScanConfig {
    /// How many workers (or SYN lanes) to run: a slow rate or a window
    /// smaller than the worker count is not CPU work, and one worker then
    /// keeps both exactly (-T0..-T2 mean one probe at a time, on any number
    /// of cores).
    pub fn parallel_workers(&self) -> usize {
        let slow = self.rate.is_some_and(|r| r < 20_000.0);
        if slow || self.max_inflight < self.workers {
            1
        } else {
            self.workers.max(1)
        }
    }
}

/// Live counters for a progress bar; updated by the workers.
#[derive(Debug, Default)]
pub struct Progress {
    /// Pairs this run is expected to decide (before exclusions).
    pub total: AtomicU64,
    /// Pairs decided or skipped so far.
    pub done: AtomicU64,
    /// Pairs whose first probe went out (or skipped): moves while probes
    /// wait for an answer that may never come.
    pub sent: AtomicU64,
    pub open: AtomicU64,
}

/// Counts at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub hosts: u64,
    pub ports: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    /// UDP ports that never answered (a TCP scan counts none).
    pub open_filtered: u64,
    /// Hosts that answered open on every probed port (at least
    /// [`ANSWERS_ALL_MIN`]): their ports are counted but not listed.
    pub answers_all: u64,
    /// Probes that had to be re-sent because this machine ran out of
    /// something (never a port state).
    pub local_retries: u64,
    /// Pairs that could not be probed at all (a local error that retrying
    /// does not fix); reported as a target error, counted in no state.
    pub unprobed: u64,
    /// Probes handed to the network by this run (retries included).
    pub probes: u64,
    /// Pairs an earlier run had decided (`--resume`): not probed again.
    pub resumed: u64,
    pub interrupted: bool,
}

impl ScanStats {
    /// The counts a summary shows.
    pub fn tally(&self) -> Tally {
        Tally {
            hosts: self.hosts,
            ports: self.ports,
            open: self.open,
            closed: self.closed,
            filtered: self.filtered,
            open_filtered: self.open_filtered,
        }
    }
}

/// One (host, port) to probe.
#[derive(Debug, Clone, Copy)]
pub(super) struct Work {
    pub(super) host: u64,
    pub(super) port: u16,
    /// The port's index in the port list (its place in the permutation).
    port_idx: u32,
    /// When the pair's first probe was handed out.
    first: Instant,
    /// Probes already sent for this pair.
    pub(super) tries: u8,
    /// Local exhaustion met while nothing else was in flight, which no
    /// amount of waiting for our own probes can cure.
    stuck: u8,
}

/// How many times in a row a pair may meet local exhaustion with nothing in
/// flight before it is given up as unprobeable (a permanent EADDRNOTAVAIL,
/// say: `::1` in a container without IPv6 loopback).
const MAX_STUCK: u8 = 5;

/// A host of a group in flight: its books (the shape a checkpoint keeps)
/// and its flow control.
struct HostState {
    book: HostBook<Target>,
    flow: HostFlow,
}

impl std::ops::Deref for HostState {
    type Target = HostBook<Target>;
    fn deref(&self) -> &Self::Target {
        &self.book
    }
}

impl std::ops::DerefMut for HostState {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.book
    }
}

/// A host's share of the congestion control.
struct HostFlow {
    cc: Congestion,
    loss: LossEstimate,
    /// Probes to it handed out and not yet recorded.
    inflight: usize,
    /// New pairs of it held back while its window is full.
    waiting: VecDeque<Work>,
    /// It is in `State::ready`.
    ready: bool,
}

/// Linux re-sends an unanswered SYN after 1 s: a connect answered after
/// that, from a host that answers much faster, came to the second SYN.
const KERNEL_SYN_RTO: Duration = Duration::from_secs(1);

impl HostFlow {
    /// A host's window starts open: silence is no sign of congestion (a
    /// firewall may drop most probes), lost probes are; after a cut it grows
    /// back by slow start.
    fn new(max_window: usize) -> HostFlow {
        HostFlow {
            cc: Congestion::new(max_window as f64, max_window as f64),
            loss: LossEstimate::default(),
            inflight: 0,
            waiting: VecDeque::new(),
            ready: false,
        }
    }
}

/// New pairs held back over all hosts whose windows are full, at most: the
/// scheduler stops drawing from the permutation past this.
const WAITING_MAX: usize = 4096;

struct Group {
    id: u64,
    hosts: Vec<u64>,
    /// Pairs taken from the permutation and not yet decided.
    outstanding: u64,
    issued_all: bool,
}

/// The permutation walk over host groups.
struct Source {
    n_hosts: u64,
    n_ports: u64,
    group_hosts: u64,
    seed: u64,
    shard: Shard,
    group: u64,
    group_start: u64,
    g_hosts: u64,
    perm: Permutation,
    pos: u64,
    size: u64,
    /// Pairs an earlier run decided, per group (`--resume`): skipped.
    skip: HashMap<u64, DoneBits>,
}

impl Source {
    fn new(n_hosts: u64, n_ports: u64, seed: u64, shard: Shard) -> Source {
        let group_hosts = (GROUP_PROBES / n_ports.max(1)).max(1);
        let mut s = Source {
            n_hosts,
            n_ports,
            group_hosts,
            seed,
            shard,
            group: 0,
            group_start: 0,
            g_hosts: 0,
            perm: Permutation::new(0, seed),
            pos: 0,
            size: 0,
            skip: HashMap::new(),
        };
        s.enter_group(0);
        s
    }

    /// Hosts in group `group`.
    fn hosts_in(&self, group: u64) -> u64 {
        self.group_hosts.min(
            self.n_hosts
                .saturating_sub(group.saturating_mul(self.group_hosts)),
        )
    }

    /// Pairs in group `group` (all shards).
    fn pairs_in(&self, group: u64) -> u64 {
        self.hosts_in(group) * self.n_ports
    }

    /// The permutation index of (host, port index) within its group.
    fn index_of(&self, group: u64, host: u64, port_idx: u32) -> u64 {
        u64::from(port_idx) * self.hosts_in(group) + (host - group * self.group_hosts)
    }

    fn enter_group(&mut self, group: u64) {
        self.group = group;
        self.group_start = group.saturating_mul(self.group_hosts);
        self.g_hosts = self
            .group_hosts
            .min(self.n_hosts.saturating_sub(self.group_start));
        self.size = self.g_hosts * self.n_ports;
        // Each group has its own order; mixing the group number into the seed
        // keeps shards of the same seed aligned group by group.
        let key = self.seed ^ group.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.perm = Permutation::new(self.size, key);
        self.pos = u64::from(self.shard.index);
    }

    /// Pairs this shard covers over the whole run: every full group holds
    /// `group_hosts * n_ports` positions, the last one fewer; a shard takes
    /// the positions congruent to its index.
    fn shard_total(&self) -> u64 {
        let per_shard = |size: u64| {
            let (i, n) = (
                u64::from(self.shard.index),
                u64::from(self.shard.count.max(1)),
            );
            if size > i { (size - i).div_ceil(n) } else { 0 }
        };
        let full_groups = self.n_hosts / self.group_hosts;
        let last_hosts = self.n_hosts % self.group_hosts;
        full_groups
            .saturating_mul(per_shard(self.group_hosts * self.n_ports))
            .saturating_add(per_shard(last_hosts * self.n_ports))
    }

    fn exhausted(&self) -> bool {
        self.group_start >= self.n_hosts || self.n_ports == 0
    }

    /// The next pair as (group, host, port index), or None at the end.
    fn next(&mut self) -> Option<(u64, u64, u64)> {
        loop {
            if self.exhausted() {
                return None;
            }
            if self.pos < self.size {
                let k = self.perm.get(self.pos);
                self.pos += u64::from(self.shard.count);
                if self.skip.get(&self.group).is_some_and(|d| d.get(k)) {
                    continue;
                }
                return Some((
                    self.group,
                    self.group_start + k % self.g_hosts,
                    k / self.g_hosts,
                ));
            }
            self.enter_group(self.group + 1);
        }
    }
}

struct State {
    source: Source,
    retry: VecDeque<Work>,
    hosts: HashMap<u64, HostState>,
    groups: VecDeque<Group>,
    /// Pairs issued and not yet decided, over all groups.
    outstanding: u64,
    stats: ScanStats,
    /// The group whose pairs were issued last.
    issuing: Option<u64>,
    /// The group after the last one finished.
    next_group: u64,
    /// Decided pairs and sent results, kept for checkpoints (`--resume`).
    books: Option<Books>,
    /// The scan's congestion window over all hosts.
    cc: Congestion,
    /// Probes handed out and not yet recorded, over all hosts.
    inflight: usize,
    /// Hosts with held-back pairs and room in their window again.
    ready: VecDeque<u64>,
    /// Pairs held back, over all hosts.
    waiting: usize,
}

impl State {
    /// A held-back pair of a host that has room again.
    fn next_waiting(&mut self) -> Option<Work> {
        while let Some(id) = self.ready.pop_front() {
            let Some(h) = self.hosts.get_mut(&id) else {
                continue;
            };
            let work = h.flow.waiting.pop_front();
            if work.is_some() {
                self.waiting -= 1;
            }
            // The host stays ready while it has pairs and room for more.
            if !h.flow.waiting.is_empty() && h.flow.cc.has_room(h.flow.inflight + 1) {
                self.ready.push_front(id);
            } else {
                h.flow.ready = false;
            }
            if work.is_some() {
                return work;
            }
        }
        None
    }

    /// Takes up where the run that saved `cp` stopped: its finished groups
    /// and decided pairs are skipped, its hosts in flight and counts go on.
    fn restore(&mut self, cp: &TcpPart, targets: &TargetSet, max_window: usize) {
        cp.counts.restore_into(&mut self.stats);
        if cp.complete {
            let groups = self.source.n_hosts.div_ceil(self.source.group_hosts);
            self.source.enter_group(groups);
            self.next_group = groups;
            return;
        }
        self.source.enter_group(cp.next_group);
        self.next_group = cp.next_group;
        for g in &cp.groups {
            let pairs = self.source.pairs_in(g.id);
            let Some(bits) = DoneBits::from_hex(&g.done, pairs) else {
                tracing::warn!(
                    group = g.id,
                    "checkpoint bitmap does not fit; rescanning the group"
                );
                continue;
            };
            self.source.skip.insert(g.id, bits.clone());
            if let Some(books) = self.books.as_mut() {
                books.done.insert(g.id, bits);
            }
            self.groups.push_back(Group {
                id: g.id,
                hosts: g.hosts.clone(),
                outstanding: 0,
                issued_all: false,
            });
        }
        for h in &cp.hosts {
            let Some(target) = targets.get(h.target) else {
                continue;
            };
            self.hosts.insert(
                h.target,
                HostState {
                    book: h.with_target(target),
                    flow: HostFlow::new(max_window),
                },
            );
        }
        if let Some(books) = self.books.as_mut() {
            books.journal = cp.events.clone();
        }
    }
}

/// What a checkpoint needs that the scan itself does not keep.
#[derive(Default)]
struct Books {
    /// Decided pairs of the groups in flight.
    done: HashMap<u64, DoneBits>,
    /// Every event sent to the printers, in order.
    journal: Vec<Logged>,
}

/// The engine's books, shared by the workers of a connect scan or by the
/// sender of a SYN scan ([`super::syn`]): what to probe next, per-host
/// state, and the events decided.
pub(super) struct Shared {
    pub(super) cfg: ScanConfig,
    targets: Arc<TargetSet>,
    state: Mutex<State>,
    /// Woken when retries were queued or the last pair was decided.
    pub(super) idle: Notify,
    events: Emit<Event>,
    /// Taken before the state lock and held while the events of that
    /// update are sent, so that events reach the printers in the order
    /// they were decided (a host's ports before its HostDone). A tokio
    /// mutex: a full queue (a slow printer) parks the task, not the thread.
    send_lock: tokio::sync::Mutex<()>,
    /// Probes waiting on the network, over all workers.
    pub(super) pending: AtomicUsize,
    progress: Arc<Progress>,
    pub(super) cancel: CancellationToken,
    /// Fired when the probers stopped: ends the checkpoint writer.
    stopped: CancellationToken,
    /// The periodic checkpoint writer (`--resume`).
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What a worker needs to run one probe.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) work: Work,
    pub(super) addr: SocketAddr,
    pub(super) timeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked mid-update leaves counts that are still
        // usable for a summary; do not cascade the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes up to `max` probes to run: retries first, then new pairs.
    pub(super) fn take(&self, max: usize, out: &mut Vec<Ticket>) {
        let mut st = self.lock();
        let st = &mut *st;
        let mut skipped = 0u64;
        let mut excluded = 0u64;
        let now = Instant::now();
        while out.len() < max && st.cc.has_room(st.inflight) {
            let work = if let Some(w) = st.retry.pop_front() {
                w
            } else if let Some(w) = st.next_waiting() {
                w
            } else {
                if st.waiting >= WAITING_MAX {
                    break;
                }
                let Some((group, host, port_idx)) = st.source.next() else {
                    for g in st.groups.iter_mut() {
                        g.issued_all = true;
                    }
                    break;
                };
                // Entering a new group closes the issue of the earlier ones
                // (a resumed run starts with the groups it had in flight).
                if st.issuing != Some(group) {
                    st.issuing = Some(group);
                    for g in st.groups.iter_mut().filter(|g| g.id < group) {
                        g.issued_all = true;
                    }
                    if !st.groups.iter().any(|g| g.id == group) {
                        st.groups.push_back(Group {
                            id: group,
                            hosts: Vec::new(),
                            outstanding: 0,
                            issued_all: false,
                        });
                    }
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = st.hosts.entry(host) {
                    let Some(target) = self.targets.get(host) else {
                        skipped += 1;
                        excluded += 1;
                        continue;
                    };
                    slot.insert(HostState {
                        book: HostBook {
                            target,
                            group,
                            rtt: RttEstimator::default(),
                            counts: Vec::new(),
                            started: SystemTime::now(),
                            failed: false,
                            answered: false,
                            held: Vec::new(),
                            mixed: false,
                        },
                        flow: HostFlow::new(self.cfg.max_inflight),
                    });
                    if let Some(g) = st.groups.iter_mut().rev().find(|g| g.id == group) {
                        g.hosts.push(host);
                    }
                }
                if let Some(g) = st.groups.iter_mut().rev().find(|g| g.id == group) {
                    g.outstanding += 1;
                }
                st.outstanding += 1;
                self.progress.sent.fetch_add(1, Ordering::Relaxed);
                let work = Work {
                    host,
                    port: self.cfg.ports[port_idx as usize],
                    port_idx: port_idx as u32,
                    first: now,
                    tries: 0,
                    stuck: 0,
                };
                // A host whose window is full keeps its new pairs back.
                if let Some(h) = st.hosts.get_mut(&host)
                    && !h.flow.cc.has_room(h.flow.inflight)
                {
                    h.flow.waiting.push_back(work);
                    st.waiting += 1;
                    continue;
                }
                work
            };
            let Some(h) = st.hosts.get_mut(&work.host) else {
                continue;
            };
            if h.failed {
                // Already reported as unprobeable: the rest of its pairs
                // are counted without sending anything.
                let group = h.group;
                unprobed(st, group, &work);
                skipped += 1;
                continue;
            }
            let base = h.rtt.timeout(&self.cfg.rtt);
            // Until the host's round trip is known, each retry waits twice
            // as long, up to the maximum; once it is, the timeout follows it.
            let timeout = if h.rtt.srtt().is_some() {
                base
            } else {
                (base * (1u32 << work.tries.min(4))).min(self.cfg.rtt.max.max(base))
            };
            h.flow.inflight += 1;
            st.inflight += 1;
            st.stats.probes += 1;
            out.push(Ticket {
                work,
                addr: SocketAddr::new(h.target.addr, work.port),
                timeout,
            });
        }
        if skipped > 0 {
            self.progress.done.fetch_add(skipped, Ordering::Relaxed);
        }
        if excluded > 0 {
            self.progress.sent.fetch_add(excluded, Ordering::Relaxed);
        }
    }

    /// The next probe to send, if the rate cap allows one now (else None,
    /// and `rate_wait` says when it will): from `tickets`, refilled from the
    /// scheduler with at most `room` probes (one at a time under a rate cap,
    /// so that none waits for its turn with a stale timeout). None as well
    /// when there is no work now.
    pub(super) fn next_ticket(
        &self,
        limiter: Option<&mut RateLimiter>,
        now: Instant,
        room: usize,
        tickets: &mut Vec<Ticket>,
        rate_wait: &mut Option<Instant>,
    ) -> Option<Ticket> {
        let capped = limiter.is_some();
        if let Some(l) = limiter
            && let Err(at) = l.try_take(now)
        {
            *rate_wait = Some(at);
            return None;
        }
        if tickets.is_empty() {
            let want = if capped { 1 } else { BATCH.min(room) };
            self.take(want, tickets);
            tickets.reverse();
        }
        tickets.pop()
    }

    /// True when every pair is decided.
    pub(super) fn all_done(&self) -> bool {
        let st = self.lock();
        st.outstanding == 0 && st.retry.is_empty() && st.source.exhausted()
    }

    /// Records what probes found under one lock, and sends the resulting
    /// events in order. `done` and `out` are left empty. Returns true when
    /// every pair is decided.
    pub(super) async fn record(
        &self,
        done: &mut Vec<(Ticket, Outcome)>,
        out: &mut Vec<Event>,
    ) -> bool {
        let sending = self.send_lock.lock().await;
        let all_done = self.decide(done, out);
        for ev in out.drain(..) {
            // A closed receiver means the printers are gone; keep scanning
            // so the summary is still right.
            let _ = self.events.send(ev).await;
        }
        drop(sending);
        all_done
    }

    /// The bookkeeping of [`Shared::record`], under the state lock: the
    /// events go to `out`.
    fn decide(&self, done: &mut Vec<(Ticket, Outcome)>, out: &mut Vec<Event>) -> bool {
        let mut guard = self.lock();
        let st = &mut *guard;
        for (ticket, outcome) in done.drain(..) {
            self.record_one(st, &ticket, outcome, out);
        }
        // Groups can finish out of order (retries); a later one waits for
        // the ones before it, so hosts are reported in target order.
        while st
            .groups
            .front()
            .is_some_and(|g| g.issued_all && g.outstanding == 0)
        {
            if let Some(mut g) = st.groups.pop_front() {
                g.hosts.sort_unstable();
                finish_hosts(&mut st.hosts, &mut st.stats, &g.hosts, &self.cfg.rtt, out);
                st.next_group = g.id + 1;
                if let Some(books) = st.books.as_mut() {
                    books.done.remove(&g.id);
                }
            }
        }
        if let Some(books) = st.books.as_mut() {
            books.journal.extend(out.iter().filter_map(Logged::of));
        }
        st.outstanding == 0 && st.retry.is_empty() && st.source.exhausted()
    }

    fn record_one(&self, st: &mut State, ticket: &Ticket, outcome: Outcome, out: &mut Vec<Event>) {
        let work = Work {
            tries: ticket.work.tries.saturating_add(1),
            ..ticket.work
        };
        st.inflight = st.inflight.saturating_sub(1);
        let mut retries = self.cfg.retries;
        if let Some(h) = st.hosts.get_mut(&work.host) {
            h.flow.inflight = h.flow.inflight.saturating_sub(1);
            if !h.flow.ready && !h.flow.waiting.is_empty() && h.flow.cc.has_room(h.flow.inflight) {
                h.flow.ready = true;
                st.ready.push_back(work.host);
            }
            retries = h
                .flow
                .loss
                .retries(self.cfg.retries, self.cfg.retry_ceiling);
        }
        let (state, reason, rtt) = match outcome {
            Outcome::Answer {
                state,
                reason,
                rtt,
                from,
            } => {
                let now = Instant::now();
                let mut lost_since = None;
                if let Some(h) = st.hosts.get_mut(&work.host) {
                    // Karn's rule: a round trip that may be the kernel's
                    // second SYN's is not measured; its first SYN was lost.
                    let resent = rtt >= KERNEL_SYN_RTO
                        && h.rtt.srtt().is_some_and(|s| s < KERNEL_SYN_RTO / 2);
                    if !resent {
                        h.rtt.sample(rtt);
                    }
                    let sent = work.tries.saturating_add(u8::from(resent));
                    // An answer to a retry: the probes before it were lost.
                    lost_since = (sent > 1).then_some(work.first);
                    h.answered |= from == Some(h.target.addr);
                    h.flow.loss.answered(sent);
                    h.flow.cc.answered(lost_since, now);
                }
                st.cc.answered(lost_since, now);
                (state, reason, Some(rtt))
            }
            Outcome::NoResponse if work.tries <= retries => {
                st.retry.push_back(work);
                return;
            }
            Outcome::NoResponse => (PortState::Filtered, Reason::NoResponse, None),
            Outcome::Local(err)
                if err.is_transient()
                    && (self.pending.load(Ordering::Relaxed) > 0
                        || ticket.work.stuck < MAX_STUCK) =>
            {
                // Not a probe that reached the network: same try count again,
                // once probes in flight have given their resources back.
                st.stats.local_retries += 1;
                let stuck = if self.pending.load(Ordering::Relaxed) == 0 {
                    ticket.work.stuck + 1
                } else {
                    0
                };
                st.retry.push_back(Work {
                    stuck,
                    ..ticket.work
                });
                return;
            }
            Outcome::Local(err) => {
                // This machine cannot send to this address at all (no IPv6,
                // say): say so once per host and count the pair as done,
                // with no state, since nothing was learnt about the port.
                self.progress.done.fetch_add(1, Ordering::Relaxed);
                if let Some(h) = st.hosts.get_mut(&work.host) {
                    if !h.failed {
                        h.failed = true;
                        out.push(Event::TargetError(TargetError {
                            kind: TargetErrorKind::Probe,
                            target: h.target.addr.to_string(),
                            message: err.describe(),
                        }));
                    }
                    let group = h.group;
                    unprobed(st, group, &work);
                }
                return;
            }
        };
        if let Some(group) = st.hosts.get(&work.host).map(|h| h.group) {
            mark_done(st, group, &work);
        }
        st.outstanding -= 1;
        st.stats.ports += 1;
        match state {
            PortState::Open => st.stats.open += 1,
            PortState::Closed => st.stats.closed += 1,
            PortState::Filtered | PortState::OpenFiltered => st.stats.filtered += 1,
        }
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        if state == PortState::Open {
            self.progress.open.fetch_add(1, Ordering::Relaxed);
        }
        let Some(h) = st.hosts.get_mut(&work.host) else {
            return;
        };
        if count_port(&mut h.counts, Proto::Tcp, state, reason, self.cfg.emit_all) {
            let port = PortResult {
                host_index: work.host,
                addr: h.target.addr,
                host: h.target.name.clone(),
                port: work.port,
                proto: Proto::Tcp,
                state,
                reason,
                rtt,
                tries: work.tries,
            };
            if state == PortState::Open && !h.mixed {
                h.held.push(port);
            } else {
                release_held(h, out);
                out.push(Event::Port(port));
            }
        } else {
            release_held(h, out);
        }
        let group_id = h.group;
        if let Some(g) = st.groups.iter_mut().find(|g| g.id == group_id) {
            g.outstanding -= 1;
        }
    }
}

/// Counts a decided port in its host's `counts` and says whether its
/// `Event::Port` goes out: open and open|filtered ports always, closed and filtered ones while
/// their state has few enough on this host for the table to list them, and
/// every one with `--all-states`.
pub(super) fn count_port(
    counts: &mut Vec<PortCount>,
    proto: Proto,
    state: PortState,
    reason: Reason,
    emit_all: bool,
) -> bool {
    add_count(counts, proto, state, reason, 1);
    // An open|filtered UDP port may be open: every one is sent, and the
    // printers decide which to list (nmap counts them when they are many).
    if emit_all || matches!(state, PortState::Open | PortState::OpenFiltered) {
        return true;
    }
    let in_state: u32 = counts
        .iter()
        .filter(|c| c.proto == proto && c.state == state)
        .map(|c| c.count)
        .sum();
    in_state <= LIST_MAX
}

/// Notes a decided pair in the checkpoint's books, when there are books.
fn mark_done(st: &mut State, group: u64, work: &Work) {
    let Some(books) = st.books.as_mut() else {
        return;
    };
    let k = st.source.index_of(group, work.host, work.port_idx);
    let pairs = st.source.pairs_in(group);
    books
        .done
        .entry(group)
        .or_insert_with(|| DoneBits::with_len(pairs))
        .set(k);
}

/// A port of `h` was decided other than open: the open ports held back
/// so far go out, and later ones go out at once.
fn release_held(h: &mut HostState, out: &mut Vec<Event>) {
    if !h.mixed {
        h.mixed = true;
        out.extend(h.held.drain(..).map(Event::Port));
    }
}

/// True when every one of at least [`ANSWERS_ALL_MIN`] decided ports is
/// open: something answers for the host on every port.
pub(super) fn answers_all(counts: &[PortCount]) -> bool {
    let total: u64 = counts.iter().map(|c| u64::from(c.count)).sum();
    total >= u64::from(ANSWERS_ALL_MIN) && counts.iter().all(|c| c.state == PortState::Open)
}

fn finish_hosts(
    hosts: &mut HashMap<u64, HostState>,
    stats: &mut ScanStats,
    ids: &[u64],
    limits: &RttLimits,
    out: &mut Vec<Event>,
) {
    for id in ids {
        if let Some(mut h) = hosts.remove(id) {
            stats.hosts += 1;
            let flagged = !h.mixed && answers_all(&h.counts);
            if flagged {
                stats.answers_all += 1;
            } else {
                out.extend(h.held.drain(..).map(Event::Port));
            }
            out.push(Event::HostDone(host_done(*id, h, flagged, limits)));
        }
    }
}

/// A pair given up without a state: it leaves the books of its group.
fn unprobed(st: &mut State, group: u64, work: &Work) {
    mark_done(st, group, work);
    st.outstanding -= 1;
    st.stats.unprobed += 1;
    if let Some(g) = st.groups.iter_mut().find(|g| g.id == group) {
        g.outstanding -= 1;
    }
}

fn host_done(index: u64, h: HostState, answers_all: bool, limits: &RttLimits) -> HostDone {
    let h = h.book;
    let ended = HostEnd {
        counts: h.counts,
        up: h.answered,
        rtt: h.rtt,
        answers_all,
    };
    ended.done(index, h.target, h.started, limits)
}

/// What a host's `HostDone` says besides who and when.
pub(super) struct HostEnd {
    pub(super) counts: Vec<PortCount>,
    pub(super) up: bool,
    pub(super) rtt: RttEstimator,
    /// See [`HostDone::answers_all`].
    pub(super) answers_all: bool,
}

impl HostEnd {
    /// The `HostDone` of host `index`, ending now.
    pub(super) fn done(
        self,
        index: u64,
        target: Target,
        started: SystemTime,
        limits: &RttLimits,
    ) -> HostDone {
        let mut counts = self.counts;
        counts.sort();
        HostDone {
            host_index: index,
            addr: target.addr,
            host: target.name,
            started,
            ended: SystemTime::now(),
            counts,
            up: self.up,
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            timeout: self.rtt.timeout(limits),
            discovery: None,
            answers_all: self.answers_all,
        }
    }
}

/// Runs a TCP connect scan of every port in `cfg.ports` on every host of
/// `targets`, sending events to `events` as results are decided. Returns
/// when every pair is decided, or soon after `cancel` fires (in-flight
/// probes get `cfg.grace` to finish; hosts started so far still get their
/// `HostDone`).
pub async fn connect_scan(
    targets: Arc<TargetSet>,
    cfg: ScanConfig,
    events: Emit<Event>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> ScanStats {
    let workers = cfg.parallel_workers();
    let shared = Shared::begin(targets, cfg, events, progress, cancel).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(Arc::clone(&shared), workers));
    }
    while let Some(res) = tasks.join_next().await {
        if let Err(err) = res {
            // The others would wait forever for its pairs: stop them too.
            tracing::error!(%err, "scan worker failed; stopping the scan");
            shared.cancel.cancel();
        }
    }
    shared.finish().await
}

impl Shared {
    /// The books of a new run over `targets`, with the progress total set;
    /// with `--resume`, the results of the earlier run sent again, a first
    /// checkpoint written and the periodic writer started. Probers start
    /// after this.
    pub(super) async fn begin(
        targets: Arc<TargetSet>,
        cfg: ScanConfig,
        events: Emit<Event>,
        progress: Arc<Progress>,
        cancel: CancellationToken,
    ) -> Arc<Shared> {
        let n_hosts = targets.len();
        let n_ports = cfg.ports.len() as u64;
        let source = Source::new(n_hosts, n_ports, cfg.seed, cfg.shard);
        // Added: the UDP engine may share the counters in the same run.
        progress
            .total
            .fetch_add(source.shard_total(), Ordering::Relaxed);
        let mut state = State {
            source,
            retry: VecDeque::new(),
            hosts: HashMap::new(),
            groups: VecDeque::new(),
            outstanding: 0,
            stats: ScanStats::default(),
            issuing: None,
            next_group: 0,
            books: cfg.resume.as_ref().map(|_| Books::default()),
            cc: Congestion::new(cfg.max_inflight as f64, cfg.max_inflight as f64),
            inflight: 0,
            ready: VecDeque::new(),
            waiting: 0,
        };
        if let Some(cp) = cfg.resume.as_ref().and_then(|r| r.tcp()) {
            state.restore(cp, &targets, cfg.max_inflight);
            let resumed = state.stats.resumed;
            progress.done.fetch_add(resumed, Ordering::Relaxed);
            progress.sent.fetch_add(resumed, Ordering::Relaxed);
            progress.open.fetch_add(state.stats.open, Ordering::Relaxed);
        }
        let shared = Arc::new(Shared {
            cfg,
            targets,
            state: Mutex::new(state),
            idle: Notify::new(),
            events,
            send_lock: tokio::sync::Mutex::new(()),
            pending: AtomicUsize::new(0),
            progress,
            cancel,
            stopped: CancellationToken::new(),
            writer: Mutex::new(None),
        });
        let Some(resume) = shared.cfg.resume.clone() else {
            return shared;
        };
        if let Some(cp) = resume.tcp() {
            let _sending = shared.send_lock.lock().await;
            for ev in &cp.events {
                let _ = shared.events.send(ev.clone().into_event()).await;
            }
        }
        shared.checkpoint(false).await;
        let s = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = s.stopped.cancelled() => break,
                    _ = tokio::time::sleep(resume::CHECKPOINT_EVERY) => s.checkpoint(false).await,
                }
            }
        });
        *shared.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        shared
    }

    /// Writes the checkpoint now (`--resume`); a failure is logged, and the
    /// scan goes on.
    async fn checkpoint(&self, complete: bool) {
        let Some(resume) = &self.cfg.resume else {
            return;
        };
        let Some(part) = self.snapshot(complete) else {
            return;
        };
        let path = resume.path.clone();
        let (resume, seed, n_hosts) = (Arc::clone(resume), self.cfg.seed, self.targets.len());
        let written =
            tokio::task::spawn_blocking(move || resume.save(seed, n_hosts, Part::Tcp(part))).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(
                path = %path.display(),
                %err,
                "cannot write the checkpoint"
            ),
            Err(err) => tracing::warn!(%err, "the checkpoint writer failed"),
        }
    }

    /// This engine's part of the checkpoint, as the run stands.
    fn snapshot(&self, complete: bool) -> Option<TcpPart> {
        self.cfg.resume.as_ref()?;
        let st = self.lock();
        let books = st.books.as_ref()?;
        let mut cp = TcpPart {
            complete,
            ..TcpPart::default()
        };
        cp.counts = CountsSnap::of(&st.stats);
        cp.next_group = st.groups.front().map_or(st.next_group, |g| g.id);
        cp.groups = st
            .groups
            .iter()
            .map(|g| GroupSnap {
                id: g.id,
                hosts: g.hosts.clone(),
                done: books.done.get(&g.id).map_or_else(
                    || DoneBits::with_len(st.source.pairs_in(g.id)).to_hex(),
                    DoneBits::to_hex,
                ),
            })
            .collect();
        let mut hosts: Vec<HostSnap> = st
            .hosts
            .iter()
            .map(|(&index, h)| h.with_target(index))
            .collect();
        hosts.sort_by_key(|h| h.target);
        cp.hosts = hosts;
        cp.events = books.journal.clone();
        Some(cp)
    }

    /// Ends a run once its probers stopped: hosts of unfinished groups
    /// (after Ctrl-C) still get their HostDone, with the ports decided so
    /// far. Returns the counts.
    pub(super) async fn finish(&self) -> ScanStats {
        let complete = self.all_done();
        let interrupted = self.cancel.is_cancelled() && !complete;
        self.stopped.cancel();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = writer {
            let _ = task.await;
        }
        if !complete {
            // The hosts in flight are kept as they are, not as ended.
            self.checkpoint(false).await;
        }
        let mut out = Vec::new();
        let mut stats = {
            let mut st = self.lock();
            let st = &mut *st;
            let mut rest: Vec<u64> = st.hosts.keys().copied().collect();
            rest.sort_unstable();
            finish_hosts(&mut st.hosts, &mut st.stats, &rest, &self.cfg.rtt, &mut out);
            if complete && let Some(books) = st.books.as_mut() {
                books.journal.extend(out.iter().filter_map(Logged::of));
                st.groups.clear();
            }
            st.stats.clone()
        };
        if complete {
            self.checkpoint(true).await;
        }
        for ev in out {
            let _ = self.events.send(ev).await;
        }
        stats.interrupted = interrupted;
        stats
    }
}

/// Probes a worker starts per turn before it looks at completions, timers
/// and cancellation again: bounds how long a run of immediately decided
/// probes can keep the worker from everything else.
const TURN: usize = 256;

async fn worker(shared: Arc<Shared>, workers: usize) {
    let full_window = (shared.cfg.max_inflight / workers).max(1);
    let mut window = full_window;
    let mut limiter = shared
        .cfg
        .rate
        .map(|r| RateLimiter::new((r / workers as f64).max(1e-3)));
    let mut inflight = FuturesUnordered::new();
    let mut pool = connect::SocketPool::default();
    let mut tickets: Vec<Ticket> = Vec::with_capacity(BATCH);
    let mut done: Vec<(Ticket, Outcome)> = Vec::with_capacity(TURN);
    let mut events = Vec::new();
    let mut rate_wait: Option<Instant> = None;
    let mut grace_end: Option<tokio::time::Instant> = None;
    let mut backoff_until: Option<Instant> = None;

    loop {
        if grace_end.is_none() && shared.cancel.is_cancelled() {
            grace_end = Some(tokio::time::Instant::now() + shared.cfg.grace);
        }
        let cancelled = grace_end.is_some();
        let mut started = 0;
        if !cancelled {
            let now = Instant::now();
            if backoff_until.is_some_and(|t| t <= now) {
                backoff_until = None;
            }
            while started < TURN && backoff_until.is_none() && inflight.len() < window {
                let room = window - inflight.len();
                let Some(ticket) =
                    shared.next_ticket(limiter.as_mut(), now, room, &mut tickets, &mut rate_wait)
                else {
                    break;
                };
                started += 1;
                match pool.start(ticket.addr) {
                    Started::Done(outcome) => {
                        if matches!(outcome, Outcome::Local(e) if e.is_exhaustion()) {
                            // Out of sockets or buffers: pause before sending more.
                            backoff_until = Some(Instant::now() + LOCAL_BACKOFF);
                        }
                        done.push((ticket, outcome));
                    }
                    Started::Pending(pending) => {
                        let timeout = ticket.timeout;
                        shared.pending.fetch_add(1, Ordering::Relaxed);
                        inflight.push(async move { (ticket, pending.finish(timeout).await) });
                    }
                }
            }
        }
        // Collect what finished meanwhile without waiting.
        while done.len() < TURN {
            match inflight.next().now_or_never() {
                Some(Some(item)) => {
                    shared.pending.fetch_sub(1, Ordering::Relaxed);
                    done.push(item);
                }
                _ => break,
            }
        }
        if !done.is_empty() {
            handle(
                &shared,
                &mut done,
                &mut events,
                &mut window,
                full_window,
                &mut backoff_until,
            )
            .await;
        }
        if started > 0 {
            // Let timers, I/O and the other tasks of this thread run.
            tokio::task::yield_now().await;
            continue;
        }

        if inflight.is_empty() {
            if cancelled || shared.all_done() {
                break;
            }
            // Another worker's probes may still turn into retries: wait for
            // a wake-up, the rate limiter, or a short poll interval.
            let wait = rate_wait
                .or(backoff_until)
                .map_or(Duration::from_millis(20), |t| {
                    t.saturating_duration_since(Instant::now())
                });
            tokio::select! {
                _ = shared.idle.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shared.cancel.cancelled(), if !cancelled => {}
            }
            rate_wait = None;
            continue;
        }

        let rate_sleep = rate_wait
            .or(backoff_until)
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            Some(item) = inflight.next() => {
                shared.pending.fetch_sub(1, Ordering::Relaxed);
                done.push(item);
                handle(&shared, &mut done, &mut events, &mut window, full_window, &mut backoff_until).await;
            }
            _ = shared.cancel.cancelled(), if !cancelled => {}
            _ = tokio::time::sleep_until(grace_end.unwrap_or_else(tokio::time::Instant::now)), if cancelled => {
                break;
            }
            _ = tokio::time::sleep_until(rate_sleep.unwrap_or_else(tokio::time::Instant::now)), if rate_sleep.is_some() && !cancelled => {
                rate_wait = None;
            }
        }
    }
    // Whatever is still in flight is abandoned: those pairs stay undecided.
    shared.pending.fetch_sub(inflight.len(), Ordering::Relaxed);
    shared.idle.notify_waiters();
}

/// Records finished probes, adjusts the window (halved when this machine
/// ran out of sockets or buffers, grown back by one per answer), and emits
/// the resulting events.
async fn handle(
    shared: &Shared,
    done: &mut Vec<(Ticket, Outcome)>,
    events: &mut Vec<Event>,
    window: &mut usize,
    full_window: usize,
    backoff_until: &mut Option<Instant>,
) {
    for (_, outcome) in done.iter() {
        match outcome {
            Outcome::Local(err) if err.is_exhaustion() => {
                if *window == full_window {
                    tracing::warn!(error = %err.describe(), "local resource exhausted; backing off");
                }
                *window = (*window / 2).max(1);
                *backoff_until = Some(Instant::now() + LOCAL_BACKOFF);
            }
            Outcome::Local(_) | Outcome::NoResponse => {}
            Outcome::Answer { .. } => {
                if *window < full_window {
                    *window += 1;
                }
            }
        }
    }
    shared.record(done, events).await;
    // Retries, and room made in a congestion window, are work for idle
    // workers; the end lets them stop at once.
    shared.idle.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_all_needs_every_port_open_and_enough_of_them() {
        let c = |state, reason, count| PortCount {
            proto: Proto::Tcp,
            state,
            reason,
            count,
        };
        let open = |n| vec![c(PortState::Open, Reason::SynAck, n)];
        assert!(answers_all(&open(ANSWERS_ALL_MIN)));
        assert!(!answers_all(&open(ANSWERS_ALL_MIN - 1)));
        let mut mixed = open(5000);
        mixed.push(c(PortState::Closed, Reason::ConnRefused, 1));
        assert!(!answers_all(&mixed));
        assert!(!answers_all(&[]));
    }
}
