//! `sockeye talk`'s report and how it prints: the steps a conversation
//! completed (each emitted as it completes), the one that failed and why,
//! the TLS session, as lines for people or one JSON object. The talk engine fills it in; the plan runner
//! reads it too.

use std::io::{self, Write};

use serde::Serialize;

use crate::tls::TlsFacts;

/// How a conversation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// The connection (or the child) could not be made.
    Connect,
    /// A TLS handshake failed (`--tls` or after STARTTLS).
    Tls,
    /// The server refused STARTTLS, or its reply was not understood.
    Starttls,
    Timeout,
    Eof,
    /// The buffer filled without a match (Tcl expect's `full_buffer`).
    FullBuffer,
    /// One of the step's `fail` patterns matched first.
    FailPattern,
    /// A read or write error.
    Io,
    /// Ctrl-C (or SIGTERM) stopped the conversation.
    Interrupted,
}

impl FailKind {
    /// The seed's word: `Timeout at <step>`, `Eof at <step>`.
    pub fn word(self) -> &'static str {
        match self {
            FailKind::Connect => "Connect failed",
            FailKind::Tls => "TLS failed",
            FailKind::Starttls => "STARTTLS refused",
            FailKind::Timeout => "Timeout",
            FailKind::Eof => "Eof",
            FailKind::FullBuffer => "Full buffer",
            FailKind::FailPattern => "Refused",
            FailKind::Io => "I/O error",
            FailKind::Interrupted => "Interrupted",
        }
    }
}

/// The step that failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TalkFailure {
    pub step: String,
    pub kind: FailKind,
    /// The pattern that was awaited (`/word:/`), if any.
    pub expected: Option<String>,
    /// More words: the error text, the `fail` pattern's match, the reply.
    pub detail: Option<String>,
    /// The last bytes received and not matched, escaped.
    pub last: String,
}

impl TalkFailure {
    /// "Timeout at Name prompt" (the seed's message).
    pub fn summary(&self) -> String {
        format!("{} at {}", self.kind.word(), self.step)
    }
}

impl std::fmt::Display for TalkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        if let Some(e) = &self.expected {
            write!(f, "; expected {e}")?;
        }
        if !self.last.is_empty() || self.expected.is_some() {
            write!(f, "; last bytes received: \"{}\"", self.last)?;
        }
        Ok(())
    }
}

/// A step that completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub name: String,
    /// What the pattern matched, escaped (none for a send-only step).
    pub matched: Option<String>,
    pub ms: u64,
}

/// What a conversation did.
#[derive(Debug, Clone, Serialize)]
pub struct TalkReport {
    pub endpoint: String,
    pub ok: bool,
    pub steps: Vec<StepRecord>,
    pub failure: Option<TalkFailure>,
    /// The TLS session (`--tls`, or the last `starttls` step).
    pub tls: Option<TlsFacts>,
    pub bytes_in: u64,
    pub elapsed_ms: u64,
}

impl TalkReport {
    /// `Success` or `Fail <message>`, as the seed's `RESULT:` line.
    pub fn result_line(&self) -> String {
        match &self.failure {
            None => "Success".into(),
            Some(f) => format!("Fail {f}"),
        }
    }
}

/// Prints a conversation as it goes: for people, a line per step as it
/// completes, then the TLS session and `RESULT: Success` or `RESULT: Fail
/// <why>`; for scripts, the whole report as one JSON object at the end.
/// Interrupted, it still writes what was done and where it stopped.
#[derive(Debug)]
pub struct TalkPrinter {
    json: bool,
    endpoint: String,
    /// The conversation's step names, to name the one that was cut.
    names: Vec<String>,
    done: Vec<StepRecord>,
}

impl TalkPrinter {
    pub fn new(json: bool, endpoint: String, names: Vec<String>) -> Self {
        TalkPrinter {
            json,
            endpoint,
            names,
            done: Vec::new(),
        }
    }

    /// A step completed.
    pub fn step(&mut self, out: &mut impl Write, step: StepRecord) -> io::Result<()> {
        if !self.json {
            step_line(out, &step)?;
            out.flush()?;
        }
        self.done.push(step);
        Ok(())
    }

    /// The end of the conversation: its report, or `None` when it was
    /// interrupted (the steps printed so far stand, and the result says
    /// which step was cut).
    pub fn finish(self, out: &mut impl Write, report: Option<&TalkReport>) -> io::Result<()> {
        let cut;
        let report = match report {
            Some(r) => r,
            None => {
                let step = self
                    .names
                    .get(self.done.len())
                    .cloned()
                    .unwrap_or_else(|| "the end".into());
                cut = TalkReport {
                    endpoint: self.endpoint.clone(),
                    ok: false,
                    steps: self.done.clone(),
                    failure: Some(TalkFailure {
                        step,
                        kind: FailKind::Interrupted,
                        expected: None,
                        detail: None,
                        last: String::new(),
                    }),
                    tls: None,
                    bytes_in: 0,
                    elapsed_ms: 0,
                };
                &cut
            }
        };
        if self.json {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
            return out.flush();
        }
        // Steps that were not emitted (none, unless a reader lagged) still print.
        for s in report.steps.iter().skip(self.done.len()) {
            step_line(out, s)?;
        }
        if let Some(tls) = &report.tls {
            writeln!(out, "{}", tls_line(tls))?;
        }
        writeln!(out, "RESULT: {}", report.result_line())?;
        out.flush()
    }
}

fn step_line(out: &mut impl Write, s: &StepRecord) -> io::Result<()> {
    match &s.matched {
        Some(m) => writeln!(out, "ok   {}  ({} ms) matched \"{m}\"", s.name, s.ms),
        None => writeln!(out, "ok   {}  ({} ms)", s.name, s.ms),
    }
}

/// The TLS session in one line, saying whether the certificate verified.
fn tls_line(tls: &TlsFacts) -> String {
    let verdict = if tls.verified {
        format!("certificate verified for {}", tls.name)
    } else {
        format!(
            "certificate NOT verified for {}: {}",
            tls.name,
            tls.verify_error.as_deref().unwrap_or("no reason given")
        )
    };
    format!("tls  {} {}, {verdict}", tls.version, tls.cipher)
}
