//! Reading sockeye's own JSON Lines back: the records `scan`, `probe` and
//! `exercise run` write with `-o json`, typed, for `sockeye report merge`
//! and `sockeye report html`.
//!
//! Reading is tolerant where the writers may grow (fields added later are
//! ignored, fields a record may lack default) and strict where a record
//! cannot be understood: a line that is not JSON, or a record without the
//! fields its type needs, is an error naming the line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

/// The longest line read; a results file has no reason for longer ones (a
/// service record with a certificate chain is a few KiB).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One record of a results file, by its `type`.
#[derive(Debug, Clone)]
pub enum Record {
    /// A shard's first record (`scan --shard I/N`).
    Run(RunRecord),
    Port(PortRecord),
    Host(HostRecord),
    /// A target that could not be scanned.
    Error(ErrorRecord),
    /// A service check's result (`probe`, `scan --probe`), kept as written.
    Service(Value),
    /// The end of a scan or probe.
    Summary(ScanSummary),
    /// A plan's check.
    Check(Box<CheckRecord>),
    /// The end of a plan's run.
    PlanSummary(PlanSummaryRecord),
    /// The first line of a run log (`exercise run --run-log`), whose other
    /// lines are check records.
    RunLog(PlanSummaryRecord),
}

/// What every shard of one scan shares, and which shard a file is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunRecord {
    pub command: String,
    #[serde(default)]
    pub version: String,
    pub scan_type: String,
    pub proto: String,
    pub ports: String,
    pub targets: String,
    #[serde(default)]
    pub excludes: String,
    #[serde(default)]
    pub all_states: bool,
    pub seed: u64,
    pub shard: ShardIndex,
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ShardIndex {
    pub index: u32,
    pub count: u32,
}

/// A port's verdict.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PortRecord {
    pub addr: IpAddr,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub host_index: Option<u64>,
    pub port: u16,
    pub proto: String,
    pub state: String,
    pub reason: String,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    #[serde(default)]
    pub tries: Option<u8>,
}

/// A host's end: its counts per state (and, from a shard, per reason).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HostRecord {
    pub addr: IpAddr,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub host_index: Option<u64>,
    #[serde(default)]
    pub up: bool,
    /// Ports per state.
    #[serde(flatten)]
    pub states: StateCounts,
    #[serde(default)]
    pub srtt_ms: Option<f64>,
    #[serde(default)]
    pub rttvar_ms: Option<f64>,
    #[serde(default)]
    pub timeout_ms: Option<f64>,
    #[serde(default)]
    pub counts: Option<Vec<CountRecord>>,
    /// Set when the host answered open on every probed port.
    #[serde(default)]
    pub unreliable: Option<String>,
}

/// Ports per state, of a host or a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct StateCounts {
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub open_filtered: u64,
}

/// Ports of a host in one protocol and state, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CountRecord {
    /// Absent in records written before scans mixed protocols: TCP then.
    #[serde(default = "tcp")]
    pub proto: String,
    pub state: String,
    pub reason: String,
    pub count: u32,
}

fn tcp() -> String {
    "tcp".to_owned()
}

/// A target that could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorRecord {
    pub kind: String,
    pub target: String,
    pub message: String,
}

/// The end of a scan or probe.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScanSummary {
    pub command: String,
    #[serde(default)]
    pub hosts: u64,
    #[serde(default)]
    pub ports: u64,
    /// Ports per state.
    #[serde(flatten)]
    pub states: StateCounts,
    #[serde(default)]
    pub elapsed_ms: f64,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// A plan's check, as `exercise run -o json` writes it. Only what every
/// check has is required; the rest is read when present.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckRecord {
    #[serde(default)]
    pub index: usize,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub target: String,
    pub passed: bool,
    #[serde(default)]
    pub expected: String,
    #[serde(default)]
    pub actual: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub elapsed_ms: u64,
    #[serde(default)]
    pub flow: Option<super::check::FlowRecord>,
    /// Everything else the check carries (a talk transcript, a probe's
    /// findings, a mail session, fields added later), shown as evidence.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The end of a plan's run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlanSummaryRecord {
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub checks: usize,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub failed: usize,
    #[serde(default)]
    pub elapsed_ms: u64,
}

/// A line that could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadLine {
    /// From 1.
    pub line: usize,
    pub message: String,
}

impl Record {
    /// The record of one JSON object, by its `type`.
    pub fn from_value(value: Value) -> Result<Record, String> {
        fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, String> {
            serde_json::from_value(v).map_err(|e| format!("not a valid {what} record: {e}"))
        }
        let kind = match value.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err("\"type\" is not a string".into()),
            None => return Err("a JSON object without \"type\"".into()),
        };
        Ok(match kind.as_str() {
            "run" => Record::Run(typed(value, "run")?),
            "port" => Record::Port(typed(value, "port")?),
            "host" => Record::Host(typed(value, "host")?),
            "error" => Record::Error(typed(value, "error")?),
            "service" => {
                for field in ["addr", "port"] {
                    if value.get(field).is_none() {
                        return Err(format!("a service record without \"{field}\""));
                    }
                }
                Record::Service(value)
            }
            "check" => Record::Check(Box::new(typed(value, "check")?)),
            "run-log" => Record::RunLog(typed(value, "run-log")?),
            // A plan's summary names its plan; a scan's names its command.
            "summary" if value.get("plan").is_some() => {
                Record::PlanSummary(typed(value, "summary")?)
            }
            "summary" => Record::Summary(typed(value, "summary")?),
            other => return Err(format!("unknown record type {other:?}")),
        })
    }
}

/// Every record of a results file, in order. Blank lines are skipped.
pub fn read(mut input: impl BufRead) -> Result<Vec<Record>, BadLine> {
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        number += 1;
        let bad = |message: String| BadLine {
            line: number,
            message,
        };
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE {
            return Err(bad(format!("longer than {MAX_LINE} bytes")));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| bad("not UTF-8".into()))?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if !value.is_object() {
            return Err(bad("not a JSON object".into()));
        }
        records.push(Record::from_value(value).map_err(bad)?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_recognised_and_bad_lines_are_named() {
        let text = concat!(
            "{\"type\":\"port\",\"addr\":\"198.18.0.2\",\"port\":22,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"new\":1}\n",
            "\n",
            "{\"type\":\"summary\",\"command\":\"scan\",\"hosts\":1,\"ports\":3,\"open\":1}\n",
            "{\"type\":\"check\",\"name\":\"a\",\"kind\":\"flow\",\"passed\":true,\"flow\":{\"from\":\"a\",\"verdict\":\"allowed\",\"later\":true}}\n",
            "{\"type\":\"summary\",\"plan\":\"p\",\"checks\":1,\"passed\":1,\"failed\":0}\n",
            "{\"type\":\"run-log\",\"version\":1,\"plan\":\"p\",\"checks\":1}\n",
        );
        let records = read(text.as_bytes()).expect("valid");
        assert_eq!(records.len(), 5);
        assert!(matches!(&records[0], Record::Port(p) if p.port == 22 && p.host_index.is_none()));
        assert!(matches!(&records[1], Record::Summary(s) if s.states.open == 1));
        let Record::Check(check) = &records[2] else {
            panic!("{:?}", records[2]);
        };
        let flow = check.flow.as_ref().expect("flow");
        assert_eq!(flow.verdict, "allowed");
        assert_eq!(flow.other.get("later"), Some(&Value::Bool(true)));
        assert!(matches!(&records[3], Record::PlanSummary(s) if s.checks == 1));
        assert!(matches!(&records[4], Record::RunLog(s) if s.plan == "p"));

        for (text, line, words) in [
            ("{\"type\":\"port\"}\n", 1, "not a valid port record"),
            ("\n{\"type\":\"port\",\"addr\":\"x\"", 2, "not JSON"),
            ("[1]\n", 1, "not a JSON object"),
            ("{\"type\":\"weird\"}\n", 1, "unknown record type"),
            ("{\"a\":1}\n", 1, "without \"type\""),
        ] {
            let err = read(text.as_bytes()).expect_err(text);
            assert_eq!(err.line, line, "{text}: {err}");
            assert!(err.message.contains(words), "{text}: {err}");
        }
    }
}
