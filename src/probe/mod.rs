//! `sockeye probe`: what is listening, what it says, and whether it speaks
//! TLS (services.md).
//!
//! Every check is one task with its own error scope: connect, then (for
//! implicit TLS) a handshake, then the service's dialogue, each step under
//! its own timeout, each failure recorded as that step's error while the
//! facts found before it stand. The service is recognised from what the
//! server says, not from the port number: a check that waits for a greeting
//! sniffs it first and runs the dialogue of what answered.
//!
//! The dialogues are thin loops around `sockeye_proto`'s sans-IO codecs;
//! TLS comes from [`crate::tls`]; [`pipeline`] runs checks concurrently and
//! emits their results as report events.

mod dialogue;
pub mod pipeline;
pub mod registry;
mod versions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

pub use registry::{CLASSIC, Dialogue, Service};

use crate::net::{CheckError, Conn, ConnectError, Unreachable, connect_addr, secs_text};
use crate::report::{Method, PortState, Reason, ServiceResult, Step, StepError, TlsOutcome};
use crate::tls::Scanner;

/// The message when a check runs out of its overall time.
pub const CHECK_DEADLINE: &str =
    "the check ran out of time (--check-timeout): the server sends too slowly";

/// Timeouts and options of a probe run, validated.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub connect_timeout: Duration,
    /// Each read (a greeting, a reply) waits at most this long.
    pub read_timeout: Duration,
    pub tls_timeout: Duration,
    /// On a port of no known service, how long to wait for a greeting
    /// before asking the way an HTTP client would.
    pub banner_wait: Duration,
    /// Every check ends within this long, whatever the server does.
    pub check_timeout: Duration,
    /// Overrides the name sent as SNI and checked against the certificate.
    pub sni: Option<String>,
    /// Also send raw hellos for TLS 1.0 to 1.3 and report which are accepted.
    pub tls_versions: bool,
    pub scanner: Scanner,
}

impl ProbeConfig {
    /// The defaults of `sockeye probe` (also `scan --probe` and `exercise`'s
    /// probe checks), with `scanner` for TLS.
    pub fn new(scanner: Scanner) -> ProbeConfig {
        ProbeConfig {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(3),
            tls_timeout: Duration::from_secs(5),
            banner_wait: Duration::from_secs(1),
            check_timeout: Duration::from_secs(20),
            sni: None,
            tls_versions: false,
            scanner,
        }
    }
}

/// One port to check on one host.
#[derive(Debug, Clone)]
pub struct Job {
    pub host_index: u64,
    pub addr: IpAddr,
    pub host: Option<Arc<str>>,
    pub port: u16,
    /// The service the caller expects there (the classic set's port), or
    /// `None` to recognise it by content alone.
    pub expect: Option<Service>,
}

impl Job {
    /// The name used for SNI, the certificate check and the HTTP Host.
    fn name(&self, cfg: &ProbeConfig) -> String {
        if let Some(sni) = &cfg.sni {
            return sni.clone();
        }
        match &self.host {
            Some(h) => h.to_string(),
            None => self.addr.to_string(),
        }
    }
}

/// A check under way: the result it fills in, and the clock.
struct Check<'a> {
    cfg: &'a ProbeConfig,
    job: &'a Job,
    result: ServiceResult,
    /// This side's address of the connection (for SMTP's EHLO literal).
    local_addr: IpAddr,
    /// The plain HTTP request got a TLS alert, or nothing: worth trying TLS.
    tls_hint: bool,
    /// The HTTP request was answered by another protocol (a greeting that
    /// came late, an LDAP notice): check again with that dialogue.
    retry_as: Option<Dialogue>,
    started: Instant,
    step_started: Instant,
}

impl<'a> Check<'a> {
    fn new(cfg: &'a ProbeConfig, job: &'a Job) -> Self {
        let now = Instant::now();
        let service = match job.expect {
            Some(s) => s.name().to_string(),
            None => crate::target::tcp_service_name(job.port)
                .unwrap_or("unknown")
                .to_string(),
        };
        Check {
            cfg,
            job,
            result: ServiceResult {
                host_index: job.host_index,
                addr: job.addr,
                host: job.host.clone(),
                port: job.port,
                state: PortState::Open,
                reason: Reason::SynAck,
                service,
                method: Method::Table,
                product: None,
                banner: None,
                greeting: Vec::new(),
                telnet: Vec::new(),
                capabilities: Vec::new(),
                tls: None,
                starttls: None,
                http: None,
                tls_versions: Vec::new(),
                notes: Vec::new(),
                error: None,
                steps: Vec::new(),
                elapsed: Duration::ZERO,
            },
            local_addr: job.addr,
            tls_hint: false,
            retry_as: None,
            started: now,
            step_started: now,
        }
    }

    /// The connection of this check over `stream`: reads bounded by the
    /// read timeout and by the check's deadline.
    fn conn(&self, stream: TcpStream) -> Conn {
        Conn::new(Box::new(stream), self.cfg.read_timeout)
            .with_deadline(self.started + self.cfg.check_timeout, CHECK_DEADLINE)
    }

    /// Closes the current step: records its name and duration.
    fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        self.result.steps.push(Step {
            step: name,
            ms: now - self.step_started,
        });
        self.step_started = now;
    }

    fn fail(&mut self, err: CheckError) {
        self.step(err.step);
        self.result.error = Some(StepError {
            step: err.step,
            message: err.message,
        });
    }

    /// Names the service from what answered; notes a port that usually
    /// means something else.
    fn recognised(&mut self, name: &str) {
        self.result.method = Method::Probed;
        if self.result.service != name {
            if let Some(expected) = self.job.expect
                && expected.name() != name
                && expected.dialogue().generic_name() != name
            {
                self.result.notes.push(format!(
                    "port {} usually means {}, but {} answered",
                    self.job.port,
                    expected.name(),
                    name
                ));
            }
            // A submission or smtps port keeps its own name when SMTP answers.
            let keep = self
                .job
                .expect
                .is_some_and(|e| e.dialogue().generic_name() == name);
            if !keep {
                self.result.service = name.to_string();
            }
        }
    }

    fn finish(mut self) -> ServiceResult {
        self.result.elapsed = self.started.elapsed();
        self.result
    }
}

/// Runs one check. Never fails: every failure is in the result.
pub async fn check(cfg: &ProbeConfig, job: &Job) -> ServiceResult {
    let mut c = Check::new(cfg, job);
    let target = SocketAddr::new(job.addr, job.port);
    let stream = match connect_addr(target, cfg.connect_timeout).await {
        Ok(s) => s,
        Err(err) => {
            let (state, reason, message) = connect_failure(&err);
            c.result.state = state;
            c.result.reason = reason;
            c.fail(CheckError::new("connect", message));
            return c.finish();
        }
    };
    if let Ok(local) = stream.local_addr() {
        c.local_addr = local.ip();
    }
    c.step("connect");
    let mut conn = c.conn(stream);
    let name = job.name(cfg);
    if let Some(service) = job.expect
        && service.implicit_tls()
    {
        match cfg.scanner.upgrade(conn, &name, cfg.tls_timeout).await {
            Ok((tls_conn, facts)) => {
                c.step("tls");
                c.result.tls = Some(TlsOutcome::Ok(facts));
                c.result.method = Method::Probed;
                conn = tls_conn;
            }
            Err((err, _)) => {
                c.result.tls = Some(TlsOutcome::Failed {
                    failed: err.to_string(),
                    chain: Vec::new(),
                });
                c.fail(CheckError::new("tls", err.to_string()));
                if cfg.tls_versions {
                    versions::probe(&mut c, target).await;
                }
                return c.finish();
            }
        }
        let outcome = dialogue::run(&mut c, conn, Some(service.dialogue()), &name).await;
        if let Err(mut err) = outcome {
            if err.step != "tls" {
                err.message = format!("after TLS: {}", err.message);
            }
            c.fail(err);
        }
    } else {
        let expect = job.expect.map(Service::dialogue);
        if let Err(err) = dialogue::run(&mut c, conn, expect, &name).await {
            c.fail(err);
        }
        if let Some(dialogue) = c.retry_as.take() {
            retry_as(&mut c, target, &name, dialogue).await;
        } else if job.expect.is_none() && c.tls_hint {
            retry_with_tls(&mut c, target, &name).await;
        }
    }
    if cfg.tls_versions && c.result.tls.is_some() {
        versions::probe(&mut c, target).await;
    }
    c.finish()
}

/// The HTTP request was answered in another protocol: check again, on a
/// fresh connection, with that protocol's dialogue.
async fn retry_as(c: &mut Check<'_>, target: SocketAddr, name: &str, dialogue: Dialogue) {
    let Ok(stream) = connect_addr(target, c.cfg.connect_timeout).await else {
        return;
    };
    c.step("reconnect");
    c.result.error = None;
    let conn = c.conn(stream);
    if let Err(err) = dialogue::run(c, conn, Some(dialogue), name).await {
        c.fail(err);
    }
}

/// An unknown port that did not answer plain HTTP: maybe it wants TLS
/// first. On success the check starts over inside TLS (sniffing again).
async fn retry_with_tls(c: &mut Check<'_>, target: SocketAddr, name: &str) {
    let Ok(stream) = connect_addr(target, c.cfg.connect_timeout).await else {
        return;
    };
    let conn = c.conn(stream);
    match c.cfg.scanner.upgrade(conn, name, c.cfg.tls_timeout).await {
        Ok((tls_conn, facts)) => {
            c.step("tls");
            c.result.error = None;
            c.result.notes.clear();
            c.result.tls = Some(TlsOutcome::Ok(facts));
            if let Err(mut err) = dialogue::run(c, tls_conn, None, name).await {
                err.message = format!("after TLS: {}", err.message);
                c.fail(err);
            }
        }
        Err((err, _)) => {
            if matches!(
                err,
                crate::tls::HandshakeError::Failed {
                    spoke_tls: true,
                    ..
                }
            ) {
                // It speaks TLS, only not a version or suite rustls accepts
                // (TLS 1.0 on an old printer): that is the finding.
                c.step("tls");
                c.result.error = None;
                c.result.notes.clear();
                c.recognised("tls");
                c.result.tls = Some(TlsOutcome::Failed {
                    failed: err.to_string(),
                    chain: Vec::new(),
                });
                c.fail(CheckError::new("tls", err.to_string()));
            } else {
                c.result.notes.push(format!("not TLS either: {err}"));
            }
        }
    }
}

/// A connect failure as services.md's state, reason and message (also
/// `exercise`'s connect checks): refused is closed, anything else filtered.
pub(crate) fn connect_failure(err: &ConnectError) -> (PortState, Reason, String) {
    let reason = match err {
        ConnectError::Refused { .. } => {
            return (PortState::Closed, Reason::ConnRefused, err.to_string());
        }
        ConnectError::TimedOut { timeout, .. } => {
            let text = format!("timed out after {}", secs_text(*timeout));
            return (PortState::Filtered, Reason::NoResponse, text);
        }
        ConnectError::Unreachable { why, .. } => match why {
            Unreachable::Host => Reason::HostUnreach,
            Unreachable::Net => Reason::NetUnreach,
            Unreachable::AdminProhibited => Reason::AdminProhibited,
        },
        ConnectError::Resolve(_) | ConnectError::Other { .. } => Reason::NoResponse,
    };
    (PortState::Filtered, reason, err.os_text())
}
