//! `sockeye mail`'s events and report, and how they print: a swaks-style
//! transcript on stderr and, with `-o json`, one JSON record per step and a
//! summary on stdout. The SMTP client (`mail`) emits the events and fills
//! in the report; the step names and exit statuses are its vocabulary.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use sockeye_proto::reply::Reply;
use sockeye_proto::smtp::{Outcome, Stage};

use crate::tls::client::Negotiated;

/// The step that failed: each has its exit status (see [`FailStage::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStage {
    Connect,
    Banner,
    Ehlo,
    Tls,
    Auth,
    Mail,
    Rcpt,
    Data,
}

impl FailStage {
    /// Every step, in the order a session reaches them.
    pub const ALL: [FailStage; 8] = [
        FailStage::Connect,
        FailStage::Banner,
        FailStage::Ehlo,
        FailStage::Tls,
        FailStage::Auth,
        FailStage::Mail,
        FailStage::Rcpt,
        FailStage::Data,
    ];

    /// The exit status of a run that failed here (the table in `--help` and the README).
    pub fn exit_code(self) -> u8 {
        match self {
            FailStage::Connect => 3,
            FailStage::Banner => 4,
            FailStage::Ehlo => 5,
            FailStage::Tls => 6,
            FailStage::Auth => 7,
            FailStage::Mail => 8,
            FailStage::Rcpt => 9,
            FailStage::Data => 10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailStage::Connect => "connect",
            FailStage::Banner => "banner",
            FailStage::Ehlo => "ehlo",
            FailStage::Tls => "tls",
            FailStage::Auth => "auth",
            FailStage::Mail => "mail",
            FailStage::Rcpt => "rcpt",
            FailStage::Data => "data",
        }
    }
}

/// A step's name in the transcript and the JSON records.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Greeting => "banner",
        Stage::Ehlo => "ehlo",
        Stage::Helo => "helo",
        Stage::StartTls => "starttls",
        Stage::Auth => "auth",
        Stage::MailFrom => "mail",
        Stage::RcptTo(_) => "rcpt",
        Stage::Data => "data",
        Stage::Message => "message",
        Stage::Rset => "rset",
        Stage::Quit => "quit",
    }
}

/// What the engine reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// The TCP connection is up.
    Connected {
        peer: SocketAddr,
        local: SocketAddr,
        elapsed: Duration,
    },
    /// A TLS handshake completed (implicit or after STARTTLS).
    Tls {
        negotiated: Negotiated,
        elapsed: Duration,
    },
    /// Lines written (secrets masked unless asked), `tls`: inside TLS.
    Sent { lines: Vec<String>, tls: bool },
    /// A reply and the step it answered; `elapsed` since the write it answers.
    Reply {
        stage: Stage,
        /// The recipient of a RCPT step.
        rcpt: Option<String>,
        /// Which message (1-based) of `--count`.
        message: u32,
        reply: Reply,
        elapsed: Duration,
        tls: bool,
    },
    /// Something went wrong (also in the [`Report`]).
    Error { text: String },
    /// Something worth knowing that is not a failure.
    Warning { text: String },
}

/// How the run went.
#[derive(Debug, Clone)]
pub struct Report {
    /// The dialogue's outcome (recipients, TLS, AUTH mechanism, messages delivered).
    pub outcome: Outcome,
    /// The step that failed and why.
    pub failure: Option<(FailStage, String)>,
    /// The TLS handshake, if one completed.
    pub tls: Option<Negotiated>,
    pub peer: Option<SocketAddr>,
    pub elapsed: Duration,
}

impl Report {
    /// 0, or the failed step's status.
    pub fn exit_code(&self) -> u8 {
        self.failure.as_ref().map_or(0, |(s, _)| s.exit_code())
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// One JSON step record.
#[derive(Serialize)]
struct StepRecord<'a> {
    r#type: &'static str,
    stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcpt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    tls: bool,
    ms: f64,
}

/// The JSON summary record.
#[derive(Serialize)]
struct SummaryRecord<'a> {
    r#type: &'static str,
    ok: bool,
    exit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'static str>,
    quit_early: bool,
    messages_sent: u32,
    accepted: &'a [String],
    rejected: &'a [String],
    elapsed_ms: f64,
}

/// Prints the transcript on stderr (unless quiet: then only errors) and the JSON records.
#[derive(Debug)]
pub struct Printer {
    quiet: bool,
    json: bool,
    stderr: std::io::Stderr,
    stdout: std::io::Stdout,
}

impl Printer {
    /// `json`: a record per step and a summary on stdout (else one line).
    pub fn new(quiet: bool, json: bool) -> Printer {
        Printer {
            quiet,
            json,
            stderr: std::io::stderr(),
            stdout: std::io::stdout(),
        }
    }

    /// The transcript's first line, before connecting.
    pub fn trying(&mut self, server: &str) {
        let _ = writeln!(self.stderr.lock(), "=== Trying {server}...");
    }

    /// One event: transcript lines, and its JSON record if it has one.
    pub fn event(&mut self, e: Event) {
        let mut err = self.stderr.lock();
        let mut line = |prefix: &str, text: &str| {
            let _ = writeln!(err, "{prefix}{text}");
        };
        match &e {
            Event::Connected { peer, local, .. } if !self.quiet => {
                line("=== ", &format!("Connected to {peer} from {local}"));
            }
            Event::Tls { negotiated, .. } if !self.quiet => {
                let verdict = if negotiated.verified {
                    "certificate verified".to_owned()
                } else {
                    format!(
                        "certificate NOT verified: {}",
                        negotiated.verify_error.as_deref().unwrap_or("unknown")
                    )
                };
                line(
                    "=== ",
                    &format!(
                        "TLS started: {} {}, {verdict}",
                        negotiated.version, negotiated.cipher
                    ),
                );
            }
            Event::Sent { lines, tls } if !self.quiet => {
                let p = if *tls { " ~> " } else { " -> " };
                for l in lines {
                    line(p, l);
                }
            }
            Event::Reply { reply, tls, .. } if !self.quiet => {
                let p = if *tls { "<~  " } else { "<-  " };
                for l in reply.to_string().lines() {
                    line(p, l);
                }
            }
            Event::Error { text } => line("*** ", text),
            Event::Warning { text } if !self.quiet => line("*** ", text),
            _ => {}
        }
        drop(err);
        if self.json {
            self.json_step(&e);
        }
    }

    fn json_step(&mut self, e: &Event) {
        let blank = StepRecord {
            r#type: "step",
            stage: "",
            message: None,
            rcpt: None,
            code: None,
            reply: None,
            peer: None,
            version: None,
            cipher: None,
            verified: None,
            tls: false,
            ms: 0.0,
        };
        let record = match e {
            Event::Connected { peer, elapsed, .. } => StepRecord {
                stage: "connect",
                peer: Some(peer.to_string()),
                ms: ms(*elapsed),
                ..blank
            },
            Event::Tls {
                negotiated,
                elapsed,
            } => StepRecord {
                stage: "tls",
                version: Some(&negotiated.version),
                cipher: Some(&negotiated.cipher),
                verified: Some(negotiated.verified),
                tls: true,
                ms: ms(*elapsed),
                ..blank
            },
            Event::Reply {
                stage,
                rcpt,
                message,
                reply,
                elapsed,
                tls,
            } => StepRecord {
                stage: stage_name(*stage),
                message: Some(*message),
                rcpt: rcpt.as_deref(),
                code: Some(reply.code),
                reply: Some(&reply.lines),
                tls: *tls,
                ms: ms(*elapsed),
                ..blank
            },
            _ => return,
        };
        if let Ok(text) = serde_json::to_string(&record) {
            let _ = writeln!(self.stdout.lock(), "{text}");
        }
    }

    /// The end: one line, or the JSON summary record; flushed.
    pub fn summary(&mut self, report: &Report, server: &str) -> std::io::Result<()> {
        let o = &report.outcome;
        let mut out = self.stdout.lock();
        if self.json {
            let record = SummaryRecord {
                r#type: "summary",
                ok: report.failure.is_none(),
                exit: report.exit_code(),
                failed_stage: report.failure.as_ref().map(|(s, _)| s.name()),
                error: report.failure.as_ref().map(|(_, t)| t.as_str()),
                server,
                peer: report.peer.map(|p| p.to_string()),
                tls: o.tls || report.tls.is_some(),
                tls_version: report.tls.as_ref().map(|t| t.version.as_str()),
                auth: o.auth_mechanism,
                quit_early: o.quit_early,
                messages_sent: o.messages_delivered,
                accepted: &o.accepted,
                rejected: &o.rejected,
                elapsed_ms: ms(report.elapsed),
            };
            let text = serde_json::to_string(&record).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else if let Some((stage, _)) = &report.failure {
            writeln!(
                out,
                "failed at {} (exit {}): {} message(s) sent to {server}",
                stage.name(),
                stage.exit_code(),
                o.messages_delivered
            )?;
        } else if o.quit_early {
            writeln!(out, "stopped as asked, nothing sent ({server})")?;
        } else {
            let mut how = Vec::new();
            if let Some(t) = &report.tls {
                how.push(t.version.clone());
            }
            if let Some(m) = o.auth_mechanism {
                how.push(format!("AUTH {m}"));
            }
            writeln!(
                out,
                "sent {} message(s) to {} via {server}{} in {}",
                o.messages_delivered,
                o.accepted.join(", "),
                if how.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", how.join(", "))
                },
                crate::net::secs_text(report.elapsed)
            )?;
        }
        out.flush()
    }
}
