//! `sockeye report merge`: the JSON Lines of the shards of one scan
//! (`scan --shard I/N --seed S -o json`, run by any scheduler) put back
//! together into the events one unsharded run would have sent, so that
//! every printer renders the merged scan as it renders a scan.
//!
//! The shards must belong together: each opens with a `run` record, all
//! share the seed, the shard count and the scan's parameters, and every
//! index from 0 to N-1 is there exactly once. What does not fit is an
//! error naming the files, before anything is written.
//!
//! The merged events come in a fixed order: unscannable targets first (as
//! a scan reports them before it starts), then each host in target order,
//! its ports sorted, then its end. A host's counts are the sums of its
//! shards' counts; its RTT figures are those of the shard with the
//! smallest smoothed RTT.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::records::{HostRecord, PortRecord, Record, RunRecord};
use super::{
    Event, HostDone, PortCount, PortResult, PortState, Proto, Reason, RunInfo, ScanInfo, Summary,
    Tally, TargetError, TargetErrorKind,
};

/// One shard's file, read.
#[derive(Debug, Clone)]
pub struct ShardFile {
    /// How the file is named in messages (its path as typed).
    pub name: String,
    pub records: Vec<Record>,
}

/// The whole scan, ready to replay into printers: `start(info)`, each
/// event, `finish(summary)`.
#[derive(Debug, Clone)]
pub struct Merged {
    pub info: RunInfo,
    pub events: Vec<Event>,
    pub summary: Summary,
    /// Shards that were interrupted (their summaries say so), by file.
    pub interrupted: Vec<String>,
}

/// Why the files cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("no files to merge")]
    NoFiles,
    #[error(
        "{file}: no run record first: shards are written by `sockeye scan --shard I/N --seed S -o json=FILE`"
    )]
    NoRun { file: String },
    #[error("{file}: {what}")]
    Bad { file: String, what: String },
    #[error(
        "{file}: {field} is {found} but {first} has {expected}: these are not shards of one scan"
    )]
    Differs {
        file: String,
        field: &'static str,
        found: String,
        first: String,
        expected: String,
    },
    #[error("shard {index}/{count} given twice: {a} and {b}")]
    Duplicate {
        index: u32,
        count: u32,
        a: String,
        b: String,
    },
    #[error("missing {}: every shard 0/{count} to {}/{count} is needed", missing_list(.missing, *.count), .count.saturating_sub(1))]
    Missing { missing: Vec<u32>, count: u32 },
}

fn missing_list(missing: &[u32], count: u32) -> String {
    let names: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
    format!(
        "shard{} {}",
        if missing.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// The parameters shards must share, by the name messages give them.
fn parameters(run: &RunRecord) -> [(&'static str, String); 8] {
    [
        ("command", run.command.clone()),
        ("seed", run.seed.to_string()),
        ("shard count", run.shard.count.to_string()),
        ("scan type", run.scan_type.clone()),
        ("ports", format!("{:?}", run.ports)),
        ("targets", format!("{:?}", run.targets)),
        ("exclusions", format!("{:?}", run.excludes)),
        ("--all-states", run.all_states.to_string()),
    ]
}

/// Checks that `files` are the shards of one scan and merges them. `args`
/// is the merge's own command line, for the printers that name one.
pub fn merge(files: &[ShardFile], args: String) -> Result<Merged, MergeError> {
    let first = files.first().ok_or(MergeError::NoFiles)?;
    let runs: Vec<&RunRecord> = files
        .iter()
        .map(|f| match f.records.first() {
            Some(Record::Run(run)) => Ok(run),
            _ => Err(MergeError::NoRun {
                file: f.name.clone(),
            }),
        })
        .collect::<Result<_, _>>()?;
    let base = runs[0];
    if base.command != "scan" {
        return Err(MergeError::Bad {
            file: first.name.clone(),
            what: format!("a {:?} run: only scans are merged", base.command),
        });
    }
    let expected = parameters(base);
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    for (file, run) in files.iter().zip(&runs) {
        for ((field, want), (_, got)) in expected.iter().zip(parameters(run)) {
            if *want != got {
                return Err(MergeError::Differs {
                    file: file.name.clone(),
                    field,
                    found: got,
                    first: first.name.clone(),
                    expected: want.clone(),
                });
            }
        }
        if run.shard.index >= run.shard.count {
            return Err(MergeError::Bad {
                file: file.name.clone(),
                what: format!(
                    "shard {}/{} does not exist",
                    run.shard.index, run.shard.count
                ),
            });
        }
        if let Some(a) = by_index.insert(run.shard.index, &file.name) {
            return Err(MergeError::Duplicate {
                index: run.shard.index,
                count: run.shard.count,
                a: a.to_owned(),
                b: file.name.clone(),
            });
        }
    }
    let count = base.shard.count;
    let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }

    let mut book = Book::default();
    for file in files {
        book.add(file)?;
    }
    book.finish(base, args)
}

/// One host's share of the shards.
#[derive(Debug, Default)]
struct HostParts {
    ports: Vec<PortResult>,
    done: Option<HostDone>,
}

/// The merge in progress.
#[derive(Debug, Default)]
struct Book {
    hosts: BTreeMap<u64, HostParts>,
    errors: Vec<TargetError>,
    seen_errors: HashSet<(String, String)>,
    summary: Option<Summary>,
    interrupted: Vec<String>,
}

impl Book {
    fn add(&mut self, file: &ShardFile) -> Result<(), MergeError> {
        let bad = |what: String| MergeError::Bad {
            file: file.name.clone(),
            what,
        };
        let mut summary = None;
        for record in &file.records[1..] {
            match record {
                Record::Run(_) => return Err(bad("a second run record".into())),
                Record::Port(p) => {
                    let port = port_result(p).map_err(bad)?;
                    self.hosts
                        .entry(port.host_index)
                        .or_default()
                        .ports
                        .push(port);
                }
                Record::Host(h) => {
                    let done = host_done(h).map_err(bad)?;
                    let parts = self.hosts.entry(done.host_index).or_default();
                    parts.done = Some(match parts.done.take() {
                        None => done,
                        Some(mut before) => {
                            before.absorb(done);
                            before
                        }
                    });
                }
                Record::Error(e) => {
                    // Every shard resolves every name: report each once.
                    if self.seen_errors.insert((e.kind.clone(), e.target.clone())) {
                        self.errors.push(TargetError {
                            kind: match e.kind.as_str() {
                                "resolve" => TargetErrorKind::Resolve,
                                _ => TargetErrorKind::Probe,
                            },
                            target: e.target.clone(),
                            message: e.message.clone(),
                        });
                    }
                }
                Record::Service(_) => {
                    return Err(bad(
                        "service records (scan --probe) cannot be merged yet; merge the scans without --probe and probe the open ports".into(),
                    ));
                }
                Record::Summary(s) => {
                    if summary.is_some() {
                        return Err(bad("a second summary record".into()));
                    }
                    summary = Some(s.clone());
                }
                Record::Check(_) | Record::PlanSummary(_) | Record::RunLog(_) => {
                    return Err(bad("a plan's record: merge takes scan shards".into()));
                }
            }
        }
        let s = summary.ok_or_else(|| {
            bad("no summary record: the shard did not finish (run it again)".into())
        })?;
        if s.interrupted {
            self.interrupted.push(file.name.clone());
        }
        let elapsed = Duration::from_secs_f64(s.elapsed_ms.max(0.0) / 1000.0);
        let total = self
            .summary
            .get_or_insert_with(|| Tally::default().summary("scan", elapsed, false));
        total.ports += s.ports;
        total.open += s.states.open;
        total.closed += s.states.closed;
        total.filtered += s.states.filtered;
        total.open_filtered += s.states.open_filtered;
        total.elapsed = total.elapsed.max(elapsed);
        total.interrupted |= s.interrupted;
        if total.note.is_none() {
            total.note = s.note;
        }
        Ok(())
    }

    fn finish(self, run: &RunRecord, args: String) -> Result<Merged, MergeError> {
        let mut summary = self.summary.ok_or(MergeError::NoFiles)?;
        let ended = summary.ended;
        let started = ended.checked_sub(summary.elapsed).unwrap_or(ended);
        let mut events: Vec<Event> = self.errors.into_iter().map(Event::TargetError).collect();
        let mut hosts = 0;
        for (_, parts) in self.hosts {
            let mut ports = parts.ports;
            ports.sort_by_key(|p| (p.proto, p.port));
            events.extend(ports.into_iter().map(Event::Port));
            if let Some(mut done) = parts.done {
                hosts += 1;
                done.started = started;
                done.ended = ended;
                events.push(Event::HostDone(done));
            }
        }
        summary.hosts = hosts;
        let (scan_type, proto) = match run.scan_type.as_str() {
            "connect" => ("connect", Proto::Tcp),
            "syn" => ("syn", Proto::Tcp),
            "udp" => ("udp", Proto::Udp),
            other => {
                return Err(MergeError::Bad {
                    file: "the run record".into(),
                    what: format!("unknown scan type {other:?}"),
                });
            }
        };
        let num_ports = crate::target::ports::parse_ports(&run.ports)
            .map(|p| (p.tcp.len() + p.udp.len()) as u32)
            .unwrap_or(0);
        Ok(Merged {
            info: RunInfo {
                command: "scan",
                args,
                started,
                scans: vec![ScanInfo {
                    scan_type,
                    proto,
                    ports_spec: run.ports.clone(),
                    num_ports,
                }],
                all_states: run.all_states,
                shard: None,
            },
            events,
            summary,
            interrupted: self.interrupted,
        })
    }
}

fn ms(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.0, 1e12) / 1000.0)
}

fn host_name(name: &Option<String>) -> Option<Arc<str>> {
    name.as_deref().map(Arc::from)
}

fn port_result(p: &PortRecord) -> Result<PortResult, String> {
    let what = format!("port record {}:{}", p.addr, p.port);
    Ok(PortResult {
        host_index: p
            .host_index
            .ok_or_else(|| format!("{what} has no host_index (not a shard's record)"))?,
        addr: p.addr,
        host: host_name(&p.host),
        port: p.port,
        proto: parse_proto(&p.proto).ok_or_else(|| format!("{what}: proto {:?}", p.proto))?,
        state: parse_state(&p.state).ok_or_else(|| format!("{what}: state {:?}", p.state))?,
        reason: parse_reason(&p.reason).ok_or_else(|| format!("{what}: reason {:?}", p.reason))?,
        rtt: p.rtt_ms.map(ms),
        tries: p.tries.unwrap_or(1),
    })
}

fn host_done(h: &HostRecord) -> Result<HostDone, String> {
    let what = format!("host record {}", h.addr);
    let host_index = h
        .host_index
        .ok_or_else(|| format!("{what} has no host_index (not a shard's record)"))?;
    let counts = h
        .counts
        .as_ref()
        .ok_or_else(|| format!("{what} has no counts (not a shard's record)"))?
        .iter()
        .map(|c| {
            Ok(PortCount {
                proto: parse_proto(&c.proto)
                    .ok_or_else(|| format!("{what}: proto {:?}", c.proto))?,
                state: parse_state(&c.state)
                    .ok_or_else(|| format!("{what}: state {:?}", c.state))?,
                reason: parse_reason(&c.reason)
                    .ok_or_else(|| format!("{what}: reason {:?}", c.reason))?,
                count: c.count,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let now = SystemTime::now();
    Ok(HostDone {
        host_index,
        addr: h.addr,
        host: host_name(&h.host),
        started: now,
        ended: now,
        counts,
        up: h.up,
        srtt: h.srtt_ms.map(ms),
        rttvar: h.rttvar_ms.map(ms),
        timeout: h.timeout_ms.map(ms).unwrap_or_default(),
        // A sharded scan runs no host discovery.
        discovery: None,
        answers_all: h.unreliable.is_some(),
    })
}

fn parse_proto(text: &str) -> Option<Proto> {
    match text {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    }
}

fn parse_state(text: &str) -> Option<PortState> {
    [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::OpenFiltered,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

/// The inverse of [`Reason::name`].
fn parse_reason(text: &str) -> Option<Reason> {
    let named = [
        Reason::SynAck,
        Reason::ConnRefused,
        Reason::Rst,
        Reason::NoResponse,
        Reason::UdpResponse,
        Reason::PortUnreach,
        Reason::HostUnreach,
        Reason::NetUnreach,
        Reason::AdminProhibited,
        Reason::ProtoUnreach,
    ];
    if let Some(r) = named.into_iter().find(|r| r.name() == text) {
        return Some(r);
    }
    let rest = text.strip_prefix("icmp-type-")?;
    let (kind, code) = rest.split_once("-code-")?;
    Some(Reason::Icmp {
        kind: kind.parse().ok()?,
        code: code.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, Captured};
    use crate::report::records::read;
    use crate::report::{JsonSink, ShardRun, Sink};

    /// The fixture's events split into `n` shards by port position, each
    /// written by the JSON printer as a shard run would.
    fn shards(n: u32) -> Vec<ShardFile> {
        let events = fixture::events("lab.test");
        (0..n)
            .map(|i| {
                let out = Captured::default();
                let mut sink = JsonSink::new(Box::new(out.clone()), fixture::opts(true));
                let info = RunInfo {
                    shard: Some(ShardRun {
                        index: i,
                        count: n,
                        seed: 7,
                        targets: "lab.test 198.18.0.3".into(),
                        excludes: String::new(),
                    }),
                    ..fixture::run_info()
                };
                sink.start(&info).expect("start");
                let mut ports = 0;
                for e in &events {
                    match e {
                        Event::Port(_) => {
                            if ports % n == i {
                                sink.event(e).expect("port");
                            }
                            ports += 1;
                        }
                        Event::HostDone(done) => {
                            // Each shard's end of the host counts its own ports only:
                            // give shard 0 everything, the others nothing.
                            let mut mine = done.clone();
                            if i != 0 {
                                mine.counts.clear();
                            }
                            sink.event(&Event::HostDone(mine)).expect("host");
                        }
                        other => sink.event(other).expect("event"),
                    }
                }
                sink.finish(&fixture::summary()).expect("finish");
                ShardFile {
                    name: format!("shard-{i}.jsonl"),
                    records: read(out.text().as_bytes()).expect("records"),
                }
            })
            .collect()
    }

    #[test]
    fn shards_merge_back_into_the_scan() {
        let merged = merge(&shards(3), "sockeye report merge".into()).expect("merge");
        let ports: Vec<(u64, Proto, u16)> = merged
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Port(p) => Some((p.host_index, p.proto, p.port)),
                _ => None,
            })
            .collect();
        let mut sorted = ports.clone();
        sorted.sort();
        assert_eq!(ports, sorted, "hosts in target order, ports sorted");
        let all = fixture::events("lab.test")
            .iter()
            .filter(|e| matches!(e, Event::Port(_)))
            .count();
        assert_eq!(ports.len(), all);
        let errors = merged
            .events
            .iter()
            .filter(|e| matches!(e, Event::TargetError(_)))
            .count();
        assert_eq!(errors, 1, "one error, not one per shard");
        assert_eq!(merged.summary.hosts, 2);
        assert_eq!(merged.summary.ports, 3 * fixture::summary().ports);
        assert!(merged.info.shard.is_none());
    }

    #[test]
    fn shards_that_do_not_belong_together_are_named() {
        let mut files = shards(3);
        files.remove(1);
        let err = merge(&files, String::new()).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "missing shard 1/3: every shard 0/3 to 2/3 is needed"
        );

        let mut files = shards(3);
        files[2] = files[0].clone();
        files[2].name = "copy.jsonl".into();
        let err = merge(&files, String::new()).expect_err("twice");
        assert_eq!(
            err.to_string(),
            "shard 0/3 given twice: shard-0.jsonl and copy.jsonl"
        );

        let mut files = shards(2);
        if let Some(Record::Run(run)) = files[1].records.first_mut() {
            run.ports = "1-100".into();
        }
        let err = merge(&files, String::new()).expect_err("differs");
        assert!(
            err.to_string().starts_with(
                "shard-1.jsonl: ports is \"1-100\" but shard-0.jsonl has \"22,25,80,443,8080,40000\""
            ),
            "{err}"
        );

        let mut files = shards(2);
        files[0].records.remove(0);
        let err = merge(&files, String::new()).expect_err("no run");
        assert!(err.to_string().starts_with("shard-0.jsonl: no run record"));

        let mut files = shards(2);
        files[1].records.pop();
        let err = merge(&files, String::new()).expect_err("unfinished");
        assert!(err.to_string().contains("no summary record"), "{err}");
    }

    #[test]
    fn reasons_read_back_as_written() {
        for r in [
            Reason::SynAck,
            Reason::Rst,
            Reason::AdminProhibited,
            Reason::Icmp { kind: 3, code: 9 },
        ] {
            assert_eq!(parse_reason(&r.name()), Some(r));
        }
        assert_eq!(parse_reason("icmp-type-x-code-1"), None);
    }
}
