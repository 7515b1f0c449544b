//! The run log of a plan (`--run-log FILE`, `--resume FILE`): one JSON
//! object per line, a header first, then every check's verdict as `-o json`
//! writes it, each carrying its check's ID. A verdict counts as received
//! only once its line is on disk (written and `fdatasync`ed): a controller
//! killed at any moment loses at most checks that had not been recorded, and
//! `--resume` runs exactly those again.
//!
//! A check's ID is its position in the expanded plan and its name
//! (`"7:ssh from a to b"`). A resumed run refuses a log whose recorded
//! checks are not the plan's (another plan, or one edited since), naming the
//! first that differs. A torn last line (the controller killed while
//! writing it) is cut off; the check it described runs again.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CheckResult;
use super::plan::{Check, Plan};
use crate::report::check::FlowRecord;

/// The first line of a run log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    /// Always `run-log`.
    #[serde(rename = "type")]
    kind: String,
    version: u32,
    /// The plan's name and its number of checks (after matrices).
    plan: String,
    checks: usize,
}

const LOG_VERSION: u32 = 1;

/// A run log open for appending.
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    file: File,
}

/// Why a run log cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: {why}")]
    Bad {
        path: String,
        line: usize,
        why: String,
    },
    #[error(
        "{path} is the run log of another plan: {difference} (run the plan without --resume, or resume with its own plan)"
    )]
    OtherPlan { path: String, difference: String },
}

/// The ID of a check in a run log.
pub fn check_id(check: &Check) -> String {
    format!("{}:{}", check.index, check.name)
}

/// One verdict as the run log holds it.
#[derive(Debug, Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    check_id: String,
    #[serde(flatten)]
    result: &'a CheckResult,
}

/// A verdict read back: the fields of [`CheckResult`], the kind as text,
/// the engine's report kept as JSON.
#[derive(Debug, Deserialize)]
struct Logged {
    #[serde(rename = "type", default)]
    kind_of_line: String,
    #[serde(default)]
    check_id: String,
    index: usize,
    name: String,
    kind: String,
    target: String,
    #[serde(default)]
    on: Option<String>,
    passed: bool,
    expected: String,
    actual: String,
    result: String,
    elapsed_ms: u64,
    #[serde(default)]
    flow: Option<FlowRecord>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl RunLog {
    /// Starts a new log at `path` (replacing a file there) for `plan`.
    pub fn create(path: &Path, plan: &Plan) -> Result<RunLog, LogError> {
        let io_err = |source| LogError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let mut log = RunLog {
            path: path.to_path_buf(),
            file,
        };
        let header = Header {
            kind: "run-log".into(),
            version: LOG_VERSION,
            plan: plan.name.clone(),
            checks: plan.checks.len(),
        };
        let mut line = serde_json::to_vec(&header).map_err(|e| io_err(e.into()))?;
        line.push(b'\n');
        log.write_synced(&line).map_err(io_err)?;
        Ok(log)
    }

    /// Opens the log at `path` to go on with `plan`: the verdicts it holds
    /// (each check once, in log order) and the log, ready to append. A
    /// missing file starts a new log.
    pub fn resume(path: &Path, plan: &Plan) -> Result<(RunLog, Vec<CheckResult>), LogError> {
        let shown = path.display().to_string();
        let io_err = |source| LogError::Io {
            path: shown.clone(),
            source,
        };
        let file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((RunLog::create(path, plan)?, Vec::new()));
            }
            Err(e) => return Err(io_err(e)),
        };
        let mut reader = BufReader::new(&file);
        let mut results = Vec::new();
        let mut seen = HashSet::new();
        let mut good_len: u64 = 0;
        let mut buf = Vec::new();
        let mut number = 0;
        let bad = |line: usize, why: String| LogError::Bad {
            path: shown.clone(),
            line,
            why,
        };
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            number += 1;
            if buf.last() != Some(&b'\n') {
                // Torn by a kill mid-write: this verdict was never received.
                tracing::info!(line = number, "a run log's last line was cut; dropping it");
                break;
            }
            if number == 1 {
                let h: Header = serde_json::from_slice(&buf)
                    .ok()
                    .filter(|h: &Header| h.kind == "run-log")
                    .ok_or_else(|| bad(1, "not a sockeye run log (no header line)".into()))?;
                if h.version != LOG_VERSION {
                    return Err(bad(
                        1,
                        format!(
                            "run log version {}, this sockeye writes version {LOG_VERSION}",
                            h.version
                        ),
                    ));
                }
                if h.checks != plan.checks.len() {
                    return Err(LogError::OtherPlan {
                        path: shown.clone(),
                        difference: format!(
                            "it has {} checks, this plan {}",
                            h.checks,
                            plan.checks.len()
                        ),
                    });
                }
                good_len += n as u64;
                continue;
            }
            let logged: Logged = serde_json::from_slice(&buf)
                .map_err(|e| bad(number, format!("not a verdict: {e}")))?;
            if logged.kind_of_line != "check" {
                good_len += n as u64;
                continue;
            }
            let result = into_result(logged, plan).map_err(|difference| LogError::OtherPlan {
                path: shown.clone(),
                difference: format!("line {number}: {difference}"),
            })?;
            // A verdict written twice (cannot happen, but a log is a file
            // anyone may edit) counts once.
            if seen.insert(result.index) {
                results.push(result);
            }
            good_len += n as u64;
        }
        drop(reader);
        let mut file = file;
        if file.metadata().map_err(io_err)?.len() != good_len {
            file.set_len(good_len).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok((
            RunLog {
                path: path.to_path_buf(),
                file,
            },
            results,
        ))
    }

    /// Appends `results` and waits until they are on disk.
    pub fn append(&mut self, results: &[CheckResult], checks: &[Check]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for r in results {
            let check_id = checks
                .get(r.index)
                .map_or_else(|| format!("{}:{}", r.index, r.name), check_id);
            serde_json::to_writer(
                &mut bytes,
                &Line {
                    kind: "check",
                    check_id,
                    result: r,
                },
            )?;
            bytes.push(b'\n');
        }
        self.write_synced(&bytes)
    }

    fn write_synced(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }

    /// The log's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A logged verdict as a result, if it is the plan's check at its index.
fn into_result(l: Logged, plan: &Plan) -> Result<CheckResult, String> {
    let check = plan.checks.get(l.index).ok_or_else(|| {
        format!(
            "check {:?} is number {} there; this plan has {}",
            l.name,
            l.index + 1,
            plan.checks.len()
        )
    })?;
    if l.check_id != check_id(check) {
        return Err(format!(
            "check {} is {:?} there, {:?} in this plan",
            l.index + 1,
            l.name,
            check.name
        ));
    }
    as_result(l, check)
}

/// A verdict an agent sent (`on:`), as the result of `check`: it must be
/// that check's (its name, kind, target and expectation).
pub(super) fn from_agent(record: serde_json::Value, check: &Check) -> Result<CheckResult, String> {
    let mut l: Logged = serde_json::from_value(record)
        .map_err(|e| format!("the agent's verdict is not a check record: {e}"))?;
    l.index = check.index;
    as_result(l, check).map_err(|e| format!("the agent answered another check: {e}"))
}

/// The verdict `l` as `check`'s result, if it describes that check.
fn as_result(l: Logged, check: &Check) -> Result<CheckResult, String> {
    if l.name != check.name || l.kind != check.kind.word() || l.target != check.kind.target() {
        return Err(format!(
            "check {} is {:?} ({} {}) there, {:?} ({} {}) in this plan",
            l.index + 1,
            l.name,
            l.kind,
            l.target,
            check.name,
            check.kind.word(),
            check.kind.target()
        ));
    }
    let expected = super::describe_expect(&check.expect);
    if l.expected != expected {
        return Err(format!(
            "check {:?} expected {:?} there, {expected:?} in this plan",
            l.name, l.expected
        ));
    }
    let mut recorded = l.rest;
    // What the outputs write themselves is not carried twice.
    recorded.retain(|k, _| matches!(k.as_str(), "talk" | "service" | "mail"));
    Ok(CheckResult {
        index: l.index,
        name: l.name,
        kind: check.kind.word(),
        target: l.target,
        on: l.on,
        passed: l.passed,
        expected: l.expected,
        actual: l.actual,
        result: l.result,
        elapsed_ms: l.elapsed_ms,
        talk: None,
        service: None,
        mail: None,
        flow: l.flow,
        recorded,
    })
}
