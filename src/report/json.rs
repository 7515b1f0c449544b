//! JSON Lines for scripts and the controller: one object per port, host,
//! unresolvable target and run summary, written as each event arrives.
//! Field names and their presence rules are output.md's contract.

use std::io::{self, Write};

use serde::Serialize;

use super::common::{count_state, is_shown, millis};
use super::{
    Event, HostDone, PortResult, PortState, RunInfo, ServiceResult, Sink, SinkOptions, Summary,
};

/// Writes output.md's JSON Lines records.
pub struct JsonSink {
    out: Box<dyn Write + Send>,
    all_states: bool,
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
    open: u64,
    closed: u64,
    filtered: u64,
    #[serde(skip_serializing_if = "is_zero")]
    open_filtered: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    srtt_ms: Option<f64>,
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
}

impl JsonSink {
    pub fn new(out: Box<dyn Write + Send>, opts: SinkOptions) -> Self {
        JsonSink {
            out,
            all_states: opts.all_states,
        }
    }

    fn line(&mut self, record: &impl Serialize) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)
    }

    fn port(&mut self, p: &PortResult) -> io::Result<()> {
        if !is_shown(p.state, self.all_states) {
            return Ok(());
        }
        self.line(&PortRecord {
            r#type: "port",
            addr: p.addr.to_string(),
            host: p.host.as_deref(),
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
            open: count_state(done, PortState::Open),
            closed: count_state(done, PortState::Closed),
            filtered: count_state(done, PortState::Filtered),
            open_filtered: count_state(done, PortState::OpenFiltered),
            srtt_ms: done.srtt.map(millis),
        })?;
        self.out.flush()
    }
}

impl Sink for JsonSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.all_states |= info.all_states;
        Ok(())
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
                       "open":2,"closed":2,"filtered":2,"srtt_ms":0.21}),
                json!({"type":"error","kind":"resolve","target":"nope.invalid","message":"Name or service not known"}),
                json!({"type":"host","addr":"198.18.0.3","up":true,
                       "open":1,"closed":3,"filtered":2,"open_filtered":1}),
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
