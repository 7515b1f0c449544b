//! `sockeye talk`'s report and how it prints: the steps a conversation
//! completed, the one that failed and why, the TLS session, as lines for
//! people or one JSON object. The talk engine fills it in; the plan runner
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

/// A report: a line per step done and `RESULT: Success` or `RESULT: Fail
/// <why>`, or the whole report as one JSON object.
pub fn print(out: &mut impl Write, report: &TalkReport, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, report)?;
        writeln!(out)?;
        return out.flush();
    }
    for s in &report.steps {
        match &s.matched {
            Some(m) => writeln!(out, "ok   {}  ({} ms) matched \"{m}\"", s.name, s.ms)?,
            None => writeln!(out, "ok   {}  ({} ms)", s.name, s.ms)?,
        }
    }
    if let Some(tls) = &report.tls {
        writeln!(out, "{}", tls_line(tls))?;
    }
    writeln!(out, "RESULT: {}", report.result_line())?;
    out.flush()
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
