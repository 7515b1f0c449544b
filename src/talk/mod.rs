//! `sockeye talk`: expect-style conversations over any byte stream — TCP,
//! TLS (`--tls`), a stream upgraded mid-way by a `starttls` step, or a
//! child process on a pty (`--spawn`).
//!
//! A conversation ([`script::Conversation`]) is a list of steps, each the
//! seed's challenge/response: wait for a pattern, then send a response. The
//! first step that fails ends it, and the failure names the step, what was
//! expected and the last bytes received ("Timeout at Name prompt"). The
//! matching is [`engine`]'s; this module connects, runs the steps and
//! reports a typed [`TalkReport`]. It never prints: `report/talk.rs` and the
//! plan runner render reports.

pub mod engine;
pub mod script;

use std::time::Duration;

use tokio::time::Instant;

use crate::net::{Conn, Io, secs_text};
use crate::report::Emit;
use crate::tls::starttls::Protocol as StartTls;
use crate::tls::{Scanner, TlsFacts};
use engine::{Expect, Failure, Pattern, TAIL};
use script::{Conversation, Eol, Vars};

pub use crate::report::talk::{FailKind, StepRecord, TalkFailure, TalkReport};

/// Where a conversation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP connection to `host:port`, optionally TLS from the first byte.
    Tcp {
        host: String,
        port: u16,
        tls: bool,
        /// Name sent as SNI (default: the host as given).
        sni: Option<String>,
    },
    /// A child process on a pty: program and arguments (never a shell line).
    Spawn { argv: Vec<String> },
}

impl Endpoint {
    /// The end of line a `send` gets unless the conversation says otherwise.
    pub fn default_eol(&self) -> Eol {
        match self {
            Endpoint::Tcp { .. } => Eol::Crlf,
            Endpoint::Spawn { .. } => Eol::Cr,
        }
    }

    /// As shown in reports: `198.18.0.2:21`, `tls://host:993`, `spawn ftp`.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Tcp {
                host, port, tls, ..
            } => {
                let hp = crate::target::endpoint::host_port(host, *port);
                if *tls { format!("tls://{hp}") } else { hp }
            }
            Endpoint::Spawn { argv } => format!("spawn {}", argv.join(" ")),
        }
    }
}

/// Timeouts and TLS of a talk run.
#[derive(Debug, Clone)]
pub struct TalkConfig {
    pub connect_timeout: Duration,
    pub tls_timeout: Duration,
    /// The TLS client for `--tls` and `starttls` steps (records any
    /// certificate; the report says whether it verified).
    pub scanner: Option<Scanner>,
    /// The name SMTP's STARTTLS step sends in EHLO.
    pub ehlo_name: String,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Runs `conv` against `endpoint` with `vars`, emitting each step as it
/// completes. Never fails: every failure is in the report. A reader of the
/// steps that went away does not stop the conversation (a plan discards
/// them and reads the report).
pub async fn talk(
    endpoint: &Endpoint,
    conv: &Conversation,
    vars: &Vars,
    cfg: &TalkConfig,
    emit: &Emit<StepRecord>,
) -> TalkReport {
    let started = Instant::now();
    let mut report = TalkReport {
        endpoint: endpoint.describe(),
        ok: false,
        steps: Vec::new(),
        failure: None,
        tls: None,
        bytes_in: 0,
        elapsed_ms: 0,
    };
    let fail_now = |report: &mut TalkReport, step: &str, kind, detail: String| {
        report.failure = Some(TalkFailure {
            step: step.to_string(),
            kind,
            expected: None,
            detail: Some(detail),
            last: String::new(),
        });
    };
    let (stream, child) = match open(endpoint, cfg).await {
        Ok(pair) => pair,
        Err((kind, detail)) => {
            fail_now(&mut report, "connect", kind, detail);
            report.elapsed_ms = ms(started.elapsed());
            return report;
        }
    };
    let stream = match endpoint {
        Endpoint::Tcp {
            tls: true,
            host,
            sni,
            ..
        } => {
            let Some(scanner) = &cfg.scanner else {
                fail_now(&mut report, "tls", FailKind::Tls, "no TLS client".into());
                return report;
            };
            let name = sni.as_deref().unwrap_or(host);
            match scanner.handshake(stream, name, cfg.tls_timeout).await {
                Ok((s, facts)) => {
                    report.tls = Some(facts);
                    Box::new(s) as Box<dyn Io>
                }
                Err(err) => {
                    fail_now(&mut report, "tls", FailKind::Tls, err.to_string());
                    report.elapsed_ms = ms(started.elapsed());
                    return report;
                }
            }
        }
        _ => stream,
    };
    let eol = conv.eol.unwrap_or_else(|| endpoint.default_eol());
    let mut session = Some(Expect::new(stream, conv.max_buffer));
    let mut out = Vec::new();
    let mut patterns: Vec<&Pattern> = Vec::new();
    for step in &conv.steps {
        let step_started = Instant::now();
        let timeout = step.timeout.unwrap_or(conv.timeout);
        let Some(e) = session.as_mut() else { break };
        let mut matched = None;
        if let Some(expect) = &step.expect {
            patterns.clear();
            patterns.push(expect);
            patterns.extend(step.fail.iter());
            match e.expect(&patterns, timeout).await {
                Ok((hit, text)) if hit.index == 0 => matched = Some(escaped(&text)),
                Ok((hit, text)) => {
                    report.failure = Some(TalkFailure {
                        step: step.name.clone(),
                        kind: FailKind::FailPattern,
                        expected: Some(expect.describe()),
                        detail: Some(format!(
                            "{} matched \"{}\"",
                            patterns[hit.index].describe(),
                            escaped(&text)
                        )),
                        last: escaped(e.matcher().tail(TAIL)),
                    });
                    break;
                }
                Err(why) => {
                    report.failure = Some(TalkFailure {
                        step: step.name.clone(),
                        kind: match &why {
                            Failure::Timeout => FailKind::Timeout,
                            Failure::Eof => FailKind::Eof,
                            Failure::FullBuffer => FailKind::FullBuffer,
                            Failure::Io(_) => FailKind::Io,
                        },
                        expected: Some(expect.describe()),
                        detail: match why {
                            Failure::Timeout => {
                                Some(format!("nothing matched within {}", secs_text(timeout)))
                            }
                            Failure::FullBuffer => {
                                Some(format!("{} bytes without a match", e.matcher().max()))
                            }
                            Failure::Io(text) => Some(text),
                            Failure::Eof => None,
                        },
                        last: escaped(e.matcher().tail(TAIL)),
                    });
                    break;
                }
            }
        }
        if let Some(proto) = step.starttls {
            let Some(current) = session.take() else { break };
            match starttls(current, proto, endpoint, conv, cfg, timeout).await {
                Ok((next, facts)) => {
                    report.tls = Some(facts);
                    session = Some(next);
                }
                Err((kind, detail, rest)) => {
                    report.failure = Some(TalkFailure {
                        step: step.name.clone(),
                        kind,
                        expected: None,
                        detail: Some(detail),
                        last: escaped(&rest[rest.len().saturating_sub(TAIL)..]),
                    });
                    break;
                }
            }
        }
        if let Some(send) = &step.send {
            let Some(e) = session.as_mut() else { break };
            out.clear();
            if let Err(why) = send.render(vars, &mut out) {
                fail_now(&mut report, &step.name, FailKind::Io, why);
                break;
            }
            out.extend_from_slice(eol.bytes());
            if let Err(why) = e.send(&out, timeout).await {
                report.failure = Some(TalkFailure {
                    step: step.name.clone(),
                    kind: match why {
                        Failure::Eof => FailKind::Eof,
                        Failure::Timeout => FailKind::Timeout,
                        _ => FailKind::Io,
                    },
                    expected: None,
                    detail: Some(format!("sending: {why}")),
                    last: escaped(e.matcher().tail(TAIL)),
                });
                break;
            }
        }
        let done = StepRecord {
            name: step.name.clone(),
            matched,
            ms: ms(step_started.elapsed()),
        };
        let _ = emit.send(done.clone()).await;
        report.steps.push(done);
    }
    report.ok = report.failure.is_none();
    if let Some(mut e) = session {
        report.bytes_in += e.bytes_in();
        e.shutdown().await;
    }
    if let Some(mut child) = child {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    }
    report.elapsed_ms = ms(started.elapsed());
    report
}

/// Connects (or spawns): the stream, and the child to reap.
async fn open(
    endpoint: &Endpoint,
    cfg: &TalkConfig,
) -> Result<(Box<dyn Io>, Option<tokio::process::Child>), (FailKind, String)> {
    match endpoint {
        Endpoint::Tcp { host, port, .. } => {
            match crate::net::connect(host, *port, cfg.connect_timeout).await {
                Ok(s) => Ok((Box::new(s), None)),
                Err(err) => Err((FailKind::Connect, err.to_string())),
            }
        }
        Endpoint::Spawn { argv } => {
            let spawn = || -> Result<_, String> {
                let (pty, pts) = pty_process::open().map_err(|e| e.to_string())?;
                let _ = pty.resize(pty_process::Size::new(24, 80));
                let (program, args) = argv.split_first().ok_or("nothing to spawn")?;
                let child = pty_process::Command::new(program)
                    .args(args)
                    .kill_on_drop(true)
                    .spawn(pts)
                    .map_err(|e| format!("cannot run {program}: {e}"))?;
                Ok((Box::new(pty) as Box<dyn Io>, Some(child)))
            };
            spawn().map_err(|e| (FailKind::Connect, e))
        }
    }
}

type Upgraded = (Expect<Box<dyn Io>>, TlsFacts);
type UpgradeFailed = (FailKind, String, Vec<u8>);

/// A `starttls` step: the protocol's command and reply (shared with
/// `probe` through [`crate::tls::starttls`]), then the handshake.
async fn starttls(
    e: Expect<Box<dyn Io>>,
    proto: StartTls,
    endpoint: &Endpoint,
    conv: &Conversation,
    cfg: &TalkConfig,
    timeout: Duration,
) -> Result<Upgraded, UpgradeFailed> {
    let (stream, rest) = e.into_parts();
    let Some(scanner) = &cfg.scanner else {
        return Err((FailKind::Tls, "no TLS client".into(), rest));
    };
    let name = match endpoint {
        Endpoint::Tcp { host, sni, .. } => sni.clone().unwrap_or_else(|| host.clone()),
        Endpoint::Spawn { .. } => {
            return Err((
                FailKind::Starttls,
                "starttls needs a network connection, not --spawn".into(),
                rest,
            ));
        }
    };
    // What the conversation left unmatched ends the lines it already
    // matched into (the rest of a greeting): drop it through the last line end.
    let keep = match rest.iter().rposition(|&b| b == b'\n') {
        Some(i) => rest[i + 1..].to_vec(),
        None => rest,
    };
    let mut conn = Conn::with_buffered(stream, keep, timeout);
    match crate::tls::starttls::request(&mut conn, proto, &cfg.ehlo_name).await {
        Ok(answer) if answer.accepted => {}
        Ok(answer) => {
            let rest = conn.buffered().to_vec();
            return Err((FailKind::Starttls, answer.reply, rest));
        }
        Err(err) => {
            let rest = conn.buffered().to_vec();
            return Err((FailKind::Starttls, err.message, rest));
        }
    }
    match scanner.upgrade(conn, &name, cfg.tls_timeout).await {
        Ok((tls_conn, facts)) => {
            let (stream, rest) = tls_conn.into_parts();
            let mut next = Expect::new(stream, conv.max_buffer);
            next.preload(&rest);
            Ok((next, facts))
        }
        Err((err, rest)) => {
            let rest = rest.map(|c| c.buffered().to_vec()).unwrap_or_default();
            Err((FailKind::Tls, err.to_string(), rest))
        }
    }
}
