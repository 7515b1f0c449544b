//! JSON Lines for scripts and the controller: one object per port, host,
//! unresolvable target and run summary, written as each event arrives.
//! Field names and their presence rules are output.md's contract.

use std::io::{self, Write};

use serde::Serialize;

use super::common::{count_state, host_reason, is_shown, millis};
use super::{
    Event, HostDone, PortResult, PortState, RunInfo, ServiceResult, Sink, SinkOptions, Summary,
};

/// Writes output.md's JSON Lines records.
pub struct JsonSink {
    out: Box<dyn Write + Send>,
    all_states: bool,
    /// A shard of a split scan: records carry what `report merge` needs
    /// (host indices, each host's counts by reason, a `run` record first,
    /// every port the engine sent).
    sharded: bool,
    version: &'static str,
}

impl std::fmt::Debug for JsonSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSink")
            .field("all_states", &self.all_states)
            .finish_non_exhaustive()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct PortRecord<'a> {
    r#type: &'static str,
    addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    /// Shards only: the target's position in the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    host_index: Option<u64>,
    port: u16,
    proto: &'static str,
    state: &'static str,
    reason: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    /// Only when a retry was needed: one try is the norm.
    #[serde(skip_serializing_if = "Option::is_none")]
    tries: Option<u8>,
}

#[derive(Serialize)]
struct HostRecord<'a> {
    r#type: &'static str,
    addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    /// Something the host itself sent answered (see `HostDone::up`).
    up: bool,
    /// "up" or "down", and why, in nmap's words: what host discovery heard
    /// (`arp-response`, `echo-reply`...), else the best answer of a port.
    status: &'static str,
    reason: std::borrow::Cow<'static, str>,
    /// The host's MAC address, when it answered on the local link.
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    open: u64,
    closed: u64,
    filtered: u64,
    #[serde(skip_serializing_if = "is_zero")]
    open_filtered: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    srtt_ms: Option<f64>,
    /// Set when the host answered open on every probed port (a SYN proxy,
    /// a tarpit): its open ports are counted but not listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreliable: Option<String>,
    /// Shards only: the target's position, the RTT variance and timeout,
    /// and the ports per (state, reason), which the table and XML print.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    detail: Option<HostDetail>,
}

#[derive(Serialize)]
struct HostDetail {
    host_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rttvar_ms: Option<f64>,
    timeout_ms: f64,
    counts: Vec<CountRecord>,
}

/// Ports of a host in one state for one reason.
#[derive(Serialize)]
struct CountRecord {
    proto: &'static str,
    state: &'static str,
    reason: std::borrow::Cow<'static, str>,
    count: u32,
}

/// The first record of a shard's JSON Lines: what every shard of one scan
/// shares, and which shard this is.
#[derive(Serialize)]
struct RunRecord<'a> {
    r#type: &'static str,
    command: &'static str,
    version: &'static str,
    scan_type: &'static str,
    proto: &'static str,
    ports: &'a str,
    targets: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    excludes: &'a str,
    all_states: bool,
    seed: u64,
    shard: ShardRecord,
}

#[derive(Serialize)]
struct ShardRecord {
    index: u32,
    count: u32,
}

#[derive(Serialize)]
struct ServiceRecord<'a> {
    r#type: &'static str,
    proto: &'static str,
    state: &'static str,
    reason: std::borrow::Cow<'static, str>,
    #[serde(flatten)]
    result: &'a ServiceResult,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct ErrorRecord<'a> {
    r#type: &'static str,
    kind: &'static str,
    target: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct SummaryRecord<'a> {
    r#type: &'static str,
    command: &'static str,
    hosts: u64,
    ports: u64,
    open: u64,
    closed: u64,
    filtered: u64,
    #[serde(skip_serializing_if = "is_zero")]
    open_filtered: u64,
    elapsed_ms: f64,
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    /// Host discovery alone (`-sn`): hosts found up.
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts_up: Option<u64>,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write + Send>, opts: SinkOptions) -> Self {
        JsonSink {
            out,
            all_states: opts.all_states,
            sharded: false,
            version: opts.version,
        }
    }

    fn line(&mut self, record: &impl Serialize) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)
    }

    fn port(&mut self, p: &PortResult) -> io::Result<()> {
        // A shard keeps every port the engine sent (closed and filtered ones
        // only while their state is small on the host), so that the merged
        // table and XML can list them as a whole run's would.
        if !self.sharded && !is_shown(p.state, self.all_states) {
            return Ok(());
        }
        self.line(&PortRecord {
            r#type: "port",
            addr: p.addr.to_string(),
            host: p.host.as_deref(),
            host_index: self.sharded.then_some(p.host_index),
            port: p.port,
            proto: p.proto.as_str(),
            state: p.state.as_str(),
            reason: p.reason.name(),
            rtt_ms: p.rtt.map(millis),
            tries: (p.tries > 1).then_some(p.tries),
        })?;
        // An open port is what a reader of a partial file wants most; closed
        // and filtered ones (with --all-states) wait for the next host flush.
        if matches!(p.state, PortState::Open | PortState::OpenFiltered) {
            self.out.flush()?;
        }
        Ok(())
    }

    fn host(&mut self, done: &HostDone) -> io::Result<()> {
        self.line(&HostRecord {
            r#type: "host",
            addr: done.addr.to_string(),
            host: done.host.as_deref(),
            up: done.up,
            status: if done.up { "up" } else { "down" },
            reason: if done.up {
                host_reason(done)
            } else {
                std::borrow::Cow::Borrowed("no-response")
            },
            mac: done.discovery.as_ref().and_then(|d| d.mac_text()),
            open: count_state(done, PortState::Open),
            closed: count_state(done, PortState::Closed),
            filtered: count_state(done, PortState::Filtered),
            open_filtered: count_state(done, PortState::OpenFiltered),
            srtt_ms: done.srtt.map(millis),
            unreliable: done.unreliable_note(),
            detail: self.sharded.then(|| HostDetail {
                host_index: done.host_index,
                rttvar_ms: done.rttvar.map(millis),
                timeout_ms: millis(done.timeout),
                counts: done
                    .counts
                    .iter()
                    .map(|c| CountRecord {
                        proto: c.proto.as_str(),
                        state: c.state.as_str(),
                        reason: c.reason.name(),
                        count: c.count,
                    })
                    .collect(),
            }),
        })?;
        self.out.flush()
    }
}

impl Sink for JsonSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.all_states |= info.all_states;
        let Some(shard) = &info.shard else {
            return Ok(());
        };
        self.sharded = true;
        self.line(&RunRecord {
            r#type: "run",
            command: info.command,
            version: self.version,
            scan_type: info.scan_type(),
            proto: info.scans.first().map_or("tcp", |s| s.proto.as_str()),
            ports: info.scans.first().map_or("", |s| s.ports_spec.as_str()),
            targets: &shard.targets,
            excludes: &shard.excludes,
            all_states: self.all_states,
            seed: shard.seed,
            shard: ShardRecord {
                index: shard.index,
                count: shard.count,
            },
        })
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Port(p) => self.port(p),
            Event::Service(s) => {
                self.line(&ServiceRecord {
                    r#type: "service",
                    proto: "tcp",
                    state: s.state.as_str(),
                    reason: s.reason.name(),
                    result: s,
                    elapsed_ms: millis(s.elapsed),
                })?;
                self.out.flush()
            }
            Event::HostDone(done) => self.host(done),
            Event::TargetError(err) => {
                self.line(&ErrorRecord {
                    r#type: "error",
                    kind: err.kind.as_str(),
                    target: &err.target,
                    message: &err.message,
                })?;
                self.out.flush()
            }
        }
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        self.line(&SummaryRecord {
            r#type: "summary",
            command: s.command,
            hosts: s.hosts,
            ports: s.ports,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            open_filtered: s.open_filtered,
            elapsed_ms: millis(s.elapsed),
            interrupted: s.interrupted,
            note: s.note.as_deref(),
            hosts_up: s.hosts_up,
        })?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::report::fixture::{self, replay};

    fn records(all_states: bool, name: &str) -> Vec<Value> {
        let text = replay(
            |out| JsonSink::new(out, fixture::opts(all_states)),
            &fixture::events(name),
            &fixture::summary(),
        );
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|line| serde_json::from_str(line).expect("every line is one JSON value"))
            .collect()
    }

    #[test]
    fn open_ports_hosts_errors_and_summary() {
        assert_eq!(
            records(false, "lab.test"),
            vec![
                json!({"type":"port","addr":"198.18.0.2","host":"lab.test","port":22,"proto":"tcp",
                       "state":"open","reason":"syn-ack","rtt_ms":0.21}),
                json!({"type":"port","addr":"198.18.0.3","port":443,"proto":"tcp",
                       "state":"open","reason":"syn-ack","rtt_ms":1.5,"tries":2}),
                json!({"type":"port","addr":"198.18.0.3","port":53,"proto":"udp",
                       "state":"open|filtered","reason":"no-response","tries":2}),
                json!({"type":"port","addr":"198.18.0.2","host":"lab.test","port":80,"proto":"tcp",
                       "state":"open","reason":"syn-ack","rtt_ms":0.35}),
                json!({"type":"host","addr":"198.18.0.2","host":"lab.test","up":true,
                       "status":"up","reason":"syn-ack","open":2,"closed":2,"filtered":2,"srtt_ms":0.21}),
                json!({"type":"error","kind":"resolve","target":"nope.invalid","message":"Name or service not known"}),
                json!({"type":"host","addr":"198.18.0.3","up":true,
                       "status":"up","reason":"syn-ack","open":1,"closed":3,"filtered":2,"open_filtered":1}),
                json!({"type":"summary","command":"scan","hosts":2,"ports":13,"open":3,"closed":5,
                       "filtered":4,"open_filtered":1,"elapsed_ms":412.0,"interrupted":false}),
            ]
        );
    }

    #[test]
    fn all_states_carries_every_port() {
        let all = records(true, "lab.test");
        let ports: Vec<&Value> = all.iter().filter(|r| r["type"] == "port").collect();
        assert_eq!(ports.len(), 13);
        assert!(ports.iter().any(|p| p["state"] == "closed"));
        assert!(ports.iter().any(|p| p["state"] == "filtered"));
        let unreachable = ports
            .iter()
            .find(|p| p["port"] == 40000)
            .expect("port 40000");
        assert_eq!(
            **unreachable,
            json!({"type":"port","addr":"198.18.0.2","host":"lab.test","port":40000,
                   "proto":"tcp","state":"filtered","reason":"host-unreach"})
        );
    }

    #[test]
    fn a_shard_says_which_it_is_and_carries_what_a_merge_needs() {
        let out = fixture::Captured::default();
        let mut sink = JsonSink::new(Box::new(out.clone()), fixture::opts(false));
        let info = RunInfo {
            shard: Some(crate::report::ShardRun {
                index: 1,
                count: 4,
                seed: 42,
                targets: "lab.test 198.18.0.3".into(),
                excludes: String::new(),
            }),
            ..fixture::run_info()
        };
        sink.start(&info).expect("start");
        for event in fixture::events("lab.test") {
            sink.event(&event).expect("event");
        }
        sink.finish(&fixture::summary()).expect("finish");
        let records: Vec<Value> = out
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(
            records[0],
            json!({"type":"run","command":"scan","version":"0.1.0","scan_type":"connect",
                   "proto":"tcp","ports":"22,25,80,443,8080,40000",
                   "targets":"lab.test 198.18.0.3","all_states":false,"seed":42,
                   "shard":{"index":1,"count":4}})
        );
        // Closed and filtered ports too: the merged table lists them.
        assert!(records.iter().any(|r| r["state"] == "closed"));
        assert!(
            records
                .iter()
                .filter(|r| r["type"] == "port" || r["type"] == "host")
                .all(|r| r["host_index"].is_u64())
        );
        let host = records
            .iter()
            .find(|r| r["type"] == "host")
            .expect("a host record");
        let counted: u64 = host["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| c["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(counted, 6, "{host}");
        assert!(host["timeout_ms"].is_f64(), "{host}");
    }

    #[test]
    fn host_discovery_alone() {
        let (events, summary) = fixture::discovery();
        let text = replay(
            |out| JsonSink::new(out, fixture::opts(false)),
            &events,
            &summary,
        );
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(
            records,
            vec![
                json!({"type":"host","addr":"198.18.0.2","up":true,"status":"up",
                       "reason":"arp-response","mac":"02:5E:C0:00:00:0A",
                       "open":0,"closed":0,"filtered":0,"srtt_ms":0.21}),
                json!({"type":"summary","command":"scan","hosts":256,"ports":0,"open":0,
                       "closed":0,"filtered":0,"elapsed_ms":412.0,"interrupted":false,
                       "hosts_up":1}),
            ]
        );
    }

    #[test]
    fn text_is_escaped_by_serde() {
        let all = records(false, "la\"b\\<&\n.test");
        assert_eq!(all[0]["host"], "la\"b\\<&\n.test");
    }

    #[test]
    fn interrupted_right_after_start() {
        let text = replay(
            |out| JsonSink::new(out, fixture::opts(false)),
            &[],
            &fixture::interrupted_summary(),
        );
        assert_eq!(
            text,
            "{\"type\":\"summary\",\"command\":\"scan\",\"hosts\":0,\"ports\":0,\"open\":0,\
             \"closed\":0,\"filtered\":0,\"elapsed_ms\":50.0,\"interrupted\":true}\n"
        );
    }

    #[test]
    fn key_order_is_stable() {
        let text = replay(
            |out| JsonSink::new(out, fixture::opts(false)),
            &fixture::events("lab.test")[..1],
            &fixture::summary(),
        );
        assert!(text.starts_with(
            "{\"type\":\"port\",\"addr\":\"198.18.0.2\",\"host\":\"lab.test\",\"port\":22,\
             \"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"rtt_ms\":0.21}\n"
        ));
    }
}
