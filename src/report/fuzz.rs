//! `sockeye fuzz`'s results and how they print: a failure and the input
//! that caused it, a run's summary, a replay's outcome; lines for people
//! or JSON Lines records. The peer fuzzer (`peerfuzz`) emits the events and
//! fills in the rest.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a target failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The spawned target exited.
    Exited,
    /// It refused connections where it had accepted them: it died.
    Refused,
    /// It stopped accepting (connect timed out) or answering.
    Hang,
}

/// A failure and the input that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub seed: u64,
    pub case: u64,
    pub generator: String,
    pub target: String,
    pub message: String,
    pub bytes: usize,
    /// Where the input was saved (`.bin`, with a `.json` beside it).
    pub input: PathBuf,
}

/// The end of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FuzzSummary {
    pub cases: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub answered: u64,
    pub failures: Vec<Failure>,
    pub elapsed_ms: f64,
    pub cases_per_sec: f64,
    pub interrupted: bool,
}

/// What a replay saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayOutcome {
    pub bytes: usize,
    pub received: usize,
    /// The failure happened again, and how.
    pub reproduced: Option<FailureKind>,
    pub message: String,
}

/// What the peer fuzzer emits as it runs.
#[derive(Debug, Clone)]
pub enum Event {
    /// Client mode: a failure was found and its input saved.
    Failure(Failure),
    /// Server mode: case `case` (`bytes` long) was sent to the client `peer`.
    Served {
        case: u64,
        peer: SocketAddr,
        bytes: usize,
    },
}

/// Prints a run's events: each case served on stderr (not with `--json`),
/// and the failures with the summary at the end, where `sockeye fuzz` has
/// always written them (a run that ends in an error writes none).
#[derive(Debug)]
pub struct Printer {
    json: bool,
    /// The run's `--spawn` command, for the replay hint.
    spawn: Option<String>,
    failures: Vec<String>,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            spawn: None,
            failures: Vec::new(),
        }
    }

    /// The run's `--spawn` command: the replay hint gives it too.
    pub fn spawn(mut self, cmd: Option<String>) -> Printer {
        self.spawn = cmd;
        self
    }

    pub fn event(&mut self, event: Event) {
        match event {
            Event::Failure(f) => {
                let line = failure_line(self.json, &f, self.spawn.as_deref());
                self.failures.push(line);
            }
            Event::Served { case, peer, bytes } if !self.json => served(case, peer, bytes),
            Event::Served { .. } => {}
        }
    }

    /// The failures found, then the summary ([`print_summary`]).
    pub fn summary(
        &self,
        out: &mut impl Write,
        seed: u64,
        generator: &str,
        s: &FuzzSummary,
    ) -> io::Result<()> {
        for line in &self.failures {
            writeln!(out, "{line}")?;
        }
        print_summary(out, self.json, seed, generator, s)
    }
}

/// Server mode's first line, on stderr.
pub fn listening(local: SocketAddr, seed: u64, cases: u64, generator: &str) {
    let _ = writeln!(
        io::stderr(),
        "sockeye fuzz: listening on {local}, seed {seed}, {cases} cases ({generator})"
    );
}

/// Server mode: a case was sent to a client, on stderr.
fn served(case: u64, peer: SocketAddr, bytes: usize) {
    let _ = writeln!(io::stderr(), "case {case}: {bytes} bytes to {peer}");
}

/// A failure: two lines for people, or a JSON record (`"type": "failure"`).
/// The replay hint is a command that works as printed: the target, and the
/// `--spawn` command when the run had one.
fn failure_line(json: bool, f: &Failure, spawn: Option<&str>) -> String {
    if json {
        let mut v = serde_json::to_value(f).unwrap_or_default();
        v["type"] = "failure".into();
        return v.to_string();
    }
    let path = f.input.display().to_string();
    let mut replay = format!(
        "sockeye fuzz {} --replay {}",
        shell_word(&f.target),
        shell_word(&path)
    );
    if let Some(cmd) = spawn {
        replay.push_str(&format!(" --spawn {}", shell_word(cmd)));
    }
    format!(
        "FAIL {kind} at case {case} (seed {seed}): {msg}\n  input: {path} ({bytes} bytes); replay: {replay}",
        kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        case = f.case,
        seed = f.seed,
        msg = f.message,
        bytes = f.bytes,
    )
}

/// `text` as one POSIX shell word: as is when it has nothing a shell
/// reads specially, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The end of a run: one line, or a JSON record (`"type": "summary"`,
/// with the number of failures).
pub fn print_summary(
    out: &mut impl Write,
    json: bool,
    seed: u64,
    generator: &str,
    s: &FuzzSummary,
) -> io::Result<()> {
    if json {
        let mut v = serde_json::to_value(s).map_err(io::Error::other)?;
        v["type"] = "summary".into();
        v["seed"] = seed.into();
        v["generator"] = generator.into();
        if let Some(map) = v.as_object_mut() {
            map.remove("failures");
            map.insert("failures".into(), s.failures.len().into());
        }
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{} cases ({}, seed {seed}): {} bytes sent, {} received, {} answered, {} failure{}, {:.0} cases/s in {:.2} s{}",
            s.cases,
            generator,
            s.bytes_sent,
            s.bytes_received,
            s.answered,
            s.failures.len(),
            if s.failures.len() == 1 { "" } else { "s" },
            s.cases_per_sec,
            s.elapsed_ms / 1000.0,
            if s.interrupted { " (interrupted)" } else { "" },
        )?;
    }
    Ok(())
}

/// What a replay saw: one line, or a JSON record (`"type": "replay"`).
pub fn print_replay(
    out: &mut impl Write,
    json: bool,
    path: &Path,
    target: SocketAddr,
    o: &ReplayOutcome,
) -> io::Result<()> {
    if json {
        let mut v = serde_json::to_value(o).map_err(io::Error::other)?;
        v["type"] = "replay".into();
        v["input"] = path.display().to_string().into();
        v["target"] = target.to_string().into();
        writeln!(out, "{v}")?;
    } else {
        let verdict = if o.reproduced.is_some() {
            "REPRODUCED"
        } else {
            "not reproduced"
        };
        writeln!(
            out,
            "{verdict}: {} ({} bytes to {target}): {}",
            path.display(),
            o.bytes,
            o.message
        )?;
    }
    Ok(())
}
