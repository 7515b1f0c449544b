//! A scan shard run by an agent (`Action::Scan`): built here from typed
//! fields, never from a command line the controller wrote, checked against
//! this agent's `--allow-targets` (every target, names resolved first),
//! paced by its `--max-rate`, and run in-process by the scan engine. Its
//! records are those `sockeye scan --shard I/N --seed S -o json` writes,
//! sent to the controller in bounded batches as they come, so that a shard
//! of any size fits the protocol's frames, and a stopped or lost one has
//! already delivered what it found (a batch leaves when half full, or
//! after 250 ms).

use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{MAX_RECORDS_BYTES, ScanJob, ScanKind};
use crate::report::{self, Event, Format, RunInfo, ShardRun, SinkOptions};
use crate::scan::{Progress, RttLimits, ScanConfig, Shard, SynSetup, connect_scan, syn_scan};
use crate::target::ports::{compact_spec, parse_ports};
use crate::target::resolve::{resolve_excludes, resolve_targets};
use crate::target::set::Block;
use crate::target::spec::{HostSpec, parse_host_spec};
use crate::target::{TargetSet, parse_exclude_list};

/// Events buffered between the engine and the JSON printer.
const EVENT_QUEUE: usize = 4096;
/// How long found records wait for a batch to fill, at most.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// The in-flight window's ceiling, whatever the open-file limit.
const MAX_WINDOW: u64 = 65_536;

/// The JSON printer's output: kept until whole lines are taken.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The whole lines written so far, once there are at least `min` bytes
    /// of them, in batches of at most [`MAX_RECORDS_BYTES`] (a longer line
    /// goes alone).
    fn take(&self, min: usize) -> Vec<String> {
        let mut buf = self.lock();
        let Some(end) = buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1) else {
            return Vec::new();
        };
        if end < min.max(1) {
            return Vec::new();
        }
        let whole: Vec<u8> = buf.drain(..end).collect();
        drop(buf);
        let text = String::from_utf8_lossy(&whole);
        let mut batches = Vec::new();
        let mut batch = String::new();
        for line in text.split_inclusive('\n') {
            if !batch.is_empty() && batch.len() + line.len() > MAX_RECORDS_BYTES {
                batches.push(std::mem::take(&mut batch));
            }
            batch.push_str(line);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        batches
    }
}

/// Host specs with the tokens they were typed as.
type Specs = Vec<(String, HostSpec)>;

/// The targets and exclusions of `job`, parsed: a token that is not one is
/// named.
fn parse_specs(job: &ScanJob) -> Result<(Specs, Specs), String> {
    let mut specs = Vec::new();
    for token in &job.targets {
        let spec = parse_host_spec(token).map_err(|e| format!("target {token:?}: {e}"))?;
        specs.push((token.clone(), spec));
    }
    if specs.is_empty() {
        return Err("a scan needs at least one target".into());
    }
    let mut excludes = Vec::new();
    for token in &job.excludes {
        for spec in parse_exclude_list(token).map_err(|e| format!("exclude {token:?}: {e}"))? {
            excludes.push((token.clone(), spec));
        }
    }
    Ok((specs, excludes))
}

/// Every target of `block` must lie inside `nets` (the agent's
/// `--allow-targets`; `None`: anywhere); `may_send` words the refusal. A
/// network or an octet range is checked by its span, first to last
/// address, so a gap in the allowed networks inside it is found; a list
/// (resolved names) address by address.
fn check_block(
    block: &Block,
    nets: Option<&[IpNet]>,
    may_send: &dyn Fn(IpAddr) -> Result<(), String>,
) -> Result<(), String> {
    let Some(nets) = nets else { return Ok(()) };
    match block {
        Block::List(list) => list.iter().try_for_each(|t| may_send(t.addr)),
        b if b.is_empty() => Ok(()),
        b => match first_outside(b.get(0).addr, b.get(b.len() - 1).addr, nets) {
            Some(ip) => {
                may_send(ip).and(Err(format!("{ip} is outside this agent's --allow-targets")))
            }
            None => Ok(()),
        },
    }
}

/// An address of `first..=last` that no network of `nets` holds, if any.
fn first_outside(first: IpAddr, last: IpAddr, nets: &[IpNet]) -> Option<IpAddr> {
    let number = |ip: IpAddr| match ip.to_canonical() {
        IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (6, u128::from(a)),
    };
    let back = |family: u8, n: u128| -> IpAddr {
        if family == 4 {
            IpAddr::from(std::net::Ipv4Addr::from(n as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(n))
        }
    };
    let (family, mut at) = number(first);
    let (_, last) = number(last);
    let ranges: Vec<(u128, u128)> = nets
        .iter()
        .filter_map(|n| {
            let (f, lo) = number(n.network());
            let (_, hi) = number(n.broadcast());
            (f == family).then_some((lo, hi))
        })
        .collect();
    loop {
        let Some(&(_, hi)) = ranges.iter().find(|(lo, hi)| *lo <= at && at <= *hi) else {
            return Some(back(family, at));
        };
        if hi >= last {
            return None;
        }
        at = hi + 1;
    }
}

/// Runs `job` and hands its JSON Lines to `out` in batches; `Ok(true)`
/// when `stop` ended it early. Nothing is sent before every target is
/// resolved and found inside this agent's `--allow-targets`.
pub async fn run(
    job: ScanJob,
    allowed: Option<&[IpNet]>,
    may_send: &(dyn Fn(IpAddr) -> Result<(), String> + Sync),
    max_rate: u32,
    out: mpsc::Sender<String>,
    stop: &CancellationToken,
) -> Result<bool, String> {
    let clock = Instant::now();
    let started = SystemTime::now();
    if job.shards == 0 || job.shard >= job.shards {
        return Err(format!("shard {}/{} does not exist", job.shard, job.shards));
    }
    let (specs, excludes) = parse_specs(&job)?;
    let mut ports = parse_ports(&job.ports).map_err(|e| format!("ports {:?}: {e}", job.ports))?;
    if !ports.udp.is_empty() || ports.tcp.is_empty() {
        return Err(format!(
            "ports {:?}: a scan shard takes TCP ports only",
            job.ports
        ));
    }
    ports.tcp.sort_unstable();
    ports.tcp.dedup();
    let rtt = RttLimits {
        min: Duration::from_millis(job.min_rtt_ms),
        max: Duration::from_millis(job.max_rtt_ms),
        initial: Duration::from_millis(job.initial_rtt_ms),
    };
    if rtt.min > rtt.max {
        return Err("the RTT timeout's minimum is above its maximum".into());
    }
    let (blocks, target_errors) = resolve_targets(&specs, job.first_address).await;
    for block in &blocks {
        check_block(block, allowed, may_send)?;
    }
    let excludes = resolve_excludes(&excludes)
        .await
        .map_err(|e| e.to_string())?;
    let targets = Arc::new(TargetSet::new(blocks, excludes));

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let syn = match job.scan_type {
        ScanKind::Connect => None,
        ScanKind::Syn => Some(
            SynSetup::open(workers)
                .map_err(|e| format!("a SYN scan needs root or CAP_NET_RAW on the agent: {e}"))?,
        ),
    };
    let window = crate::sys::nofile_limit()
        .saturating_sub(crate::sys::RESERVED_FDS)
        .clamp(1, MAX_WINDOW);
    let max_rate = f64::from(max_rate.max(1));
    let cfg = ScanConfig {
        ports: ports.tcp.clone().into(),
        max_inflight: job
            .max_inflight
            .map_or(window, |n| u64::from(n.max(1)).min(window)) as usize,
        retries: job.retries.min(50),
        // The controller's retries, fixed (as a typed --retries is).
        retry_ceiling: job.retries.min(50),
        rtt,
        // This agent's --max-rate caps whatever the controller asked.
        rate: Some(
            job.rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map_or(max_rate, |r| r.min(max_rate)),
        ),
        seed: job.seed,
        shard: Shard {
            index: job.shard,
            count: job.shards,
        },
        workers,
        grace: rtt.max.min(Duration::from_secs(1)),
        emit_all: job.all_states,
        resume: None,
        sources: Arc::from([]),
    };
    let info = RunInfo {
        command: "scan",
        args: format!("sockeye agent: scan shard {}/{}", job.shard, job.shards),
        started,
        scans: vec![crate::report::ScanInfo {
            scan_type: job.scan_type.word(),
            proto: crate::target::Proto::Tcp,
            ports_spec: compact_spec(&ports.tcp),
            num_ports: ports.tcp.len() as u32,
        }],
        all_states: job.all_states,
        shard: Some(ShardRun {
            index: job.shard,
            count: job.shards,
            seed: job.seed,
            targets: job.targets.join(" "),
            excludes: job.excludes.join(" "),
        }),
    };
    let lines = Lines::default();
    let opts = SinkOptions {
        color: false,
        all_states: job.all_states,
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut sink = report::new_sink(Format::Json, Box::new(lines.clone()), opts);
    let failed = |e: io::Error| format!("cannot write the records: {e}");
    sink.start(&info).map_err(failed)?;
    for err in target_errors {
        sink.event(&Event::TargetError(err.into()))
            .map_err(failed)?;
    }
    let cancel = stop.child_token();
    let (tx, mut rx) = report::Emit::channel(EVENT_QUEUE);
    let progress = Arc::new(Progress::default());
    let engine = {
        let (targets, cancel) = (Arc::clone(&targets), cancel.clone());
        tokio::spawn(async move {
            if targets.is_empty() {
                drop(tx);
                return crate::scan::ScanStats::default();
            }
            match syn {
                Some(setup) => syn_scan(setup, targets, cfg, tx, progress, cancel).await,
                None => connect_scan(targets, cfg, tx, progress, cancel).await,
            }
        })
    };
    // Records leave in batches of half the bound, and at least every
    // FLUSH_EVERY: what an agent found is the controller's even if the
    // agent is lost later.
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let min = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => {
                    sink.event(&event).map_err(failed)?;
                    MAX_RECORDS_BYTES / 2
                }
                None => break,
            },
            _ = flush.tick() => 0,
        };
        for batch in lines.take(min) {
            if out.send(batch).await.is_err() {
                // The controller is gone: stop scanning for nobody.
                cancel.cancel();
            }
        }
    }
    let stats = engine
        .await
        .map_err(|e| format!("the scan engine failed: {e}"))?;
    let interrupted = stats.interrupted || cancel.is_cancelled();
    let summary = stats.tally().summary("scan", clock.elapsed(), interrupted);
    sink.finish(&summary).map_err(failed)?;
    drop(sink);
    for batch in lines.take(0) {
        let _ = out.send(batch).await;
    }
    Ok(interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_taken_whole_and_in_bounded_batches() {
        let mut l = Lines::default();
        l.write_all(b"{\"a\":1}\n{\"b\"").expect("write");
        assert!(l.take(100).is_empty(), "not enough yet");
        assert_eq!(l.take(0), vec!["{\"a\":1}\n".to_string()]);
        l.write_all(b":2}\n").expect("write");
        assert_eq!(l.take(0), vec!["{\"b\":2}\n".to_string()]);
        let line = format!("{}\n", "x".repeat(1000));
        for _ in 0..600 {
            l.write_all(line.as_bytes()).expect("write");
        }
        let batches = l.take(0);
        assert_eq!(batches.len(), 3);
        assert!(
            batches
                .iter()
                .all(|b| b.len() <= MAX_RECORDS_BYTES && b.ends_with('\n'))
        );
        assert_eq!(batches.concat(), line.repeat(600));
    }

    #[test]
    fn a_block_must_lie_inside_the_allowed_networks() {
        let allowed: Vec<ipnet::IpNet> = vec![
            "198.18.0.0/24".parse().expect("net"),
            "198.18.2.0/24".parse().expect("net"),
        ];
        let may = |ip: IpAddr| {
            if allowed.iter().any(|n| n.contains(&ip)) {
                Ok(())
            } else {
                Err(format!("{ip} is outside"))
            }
        };
        let net = |base: [u8; 4], len| Block::V4Net {
            base: u32::from(std::net::Ipv4Addr::from(base)),
            len,
        };
        let nets = Some(allowed.as_slice());
        assert!(check_block(&net([198, 18, 0, 0], 256), nets, &may).is_ok());
        assert_eq!(
            check_block(&net([198, 18, 0, 128], 129), nets, &may),
            Err("198.18.1.0 is outside".into())
        );
        // Both ends allowed, the middle /24 not.
        assert_eq!(
            check_block(&net([198, 18, 0, 0], 768), nets, &may),
            Err("198.18.1.0 is outside".into())
        );
        assert!(check_block(&net([10, 0, 0, 0], 1 << 24), None, &may).is_ok());
        let list = Block::List(vec![
            IpAddr::from([198, 18, 2, 9]).into(),
            IpAddr::from([198, 19, 0, 1]).into(),
        ]);
        assert_eq!(
            check_block(&list, nets, &may),
            Err("198.19.0.1 is outside".into())
        );
    }
}
