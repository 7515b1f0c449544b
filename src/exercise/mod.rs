//! `sockeye exercise run PLAN`: test plans whose checks (connect, probe,
//! talk, calc, mail, flow, and matrices of them) each carry an expectation; a check
//! passes when reality matched the expectation ("a bad password must be
//! refused" passes when the login fails).
//!
//! - [`plan`]: the written plan (YAML or TOML) and its validation into
//!   checks, with file:line:column errors before anything runs.
//! - this module: the runner (checks concurrently, bounded, in the order
//!   the plan asks with `after:` or `sequential:`), and the verdicts.
//! - [`crate::report::check`] holds the verdicts, and [`crate::report::plan`]
//!   their printers: table, JSON Lines, JUnit XML, TAP.
//!
//! Checks run on this machine; flow checks run between the plan's agents
//! ([`flow`], reached through [`crate::agent::link`]).

pub mod flow;
pub mod plan;
pub mod remote;
pub mod runlog;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::probe::{Job, ProbeConfig};
use crate::report::Emit;
use crate::report::calc::CalcEvent;
use crate::report::check::MailResult;
use crate::report::{PortState, ServiceResult, TlsOutcome};
use crate::talk::{TalkConfig, TalkReport};
use plan::{Check, CheckKind, ExpectSpec, Outcome, Plan, PortWord};

/// The verdict on one check, a talk check's transcript being the talk
/// engine's report.
pub type CheckResult = crate::report::check::CheckResult<TalkReport>;

/// What every check shares while a plan runs.
#[derive(Debug, Clone)]
pub struct Context {
    pub talk: TalkConfig,
    pub probe: Arc<ProbeConfig>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The plan's agents, connected (none for a plan without agents).
    pub agents: Arc<flow::Agents>,
    /// What the run's flows saw so far.
    pub flows: Arc<flow::History>,
}

impl Context {
    /// From a plan's defaults: a TLS client trusting the system's roots and
    /// the plan's CA files.
    pub fn for_plan(plan: &Plan) -> Result<Context, crate::tls::SetupError> {
        let roots = crate::tls::root_store(&plan.ca_files)?;
        let scanner = crate::tls::Scanner::new(roots, Vec::new())?;
        Ok(Context {
            talk: TalkConfig {
                connect_timeout: plan.connect_timeout,
                tls_timeout: plan.timeout.max(Duration::from_secs(5)),
                scanner: Some(scanner.clone()),
                ehlo_name: "sockeye.invalid".into(),
            },
            probe: Arc::new(ProbeConfig {
                connect_timeout: plan.connect_timeout,
                read_timeout: plan.timeout,
                tls_timeout: plan.timeout.max(Duration::from_secs(5)),
                ..ProbeConfig::new(scanner)
            }),
            connect_timeout: plan.connect_timeout,
            timeout: plan.timeout,
            agents: Arc::new(flow::Agents::new()),
            flows: Arc::default(),
        })
    }
}

/// Runs every check of `plan` but those in `skip` (their verdicts are
/// known: a resumed run), at most `plan.concurrency` at once, a check
/// starting only after those it waits for (`after`) have finished; each
/// verdict is emitted as it completes. `cancel` (Ctrl-C), or a reader of
/// the verdicts that went away, stops starting checks and abandons the
/// running ones.
pub async fn run(
    plan: Arc<Plan>,
    ctx: Arc<Context>,
    skip: &std::collections::HashSet<usize>,
    cancel: tokio_util::sync::CancellationToken,
    emit: Emit<CheckResult>,
) {
    let n = plan.checks.len();
    let mut done: Vec<bool> = (0..n).map(|i| skip.contains(&i)).collect();
    let mut started = done.clone();
    // Checks not started yet, in plan order; the front is scanned first.
    let mut pending: std::collections::VecDeque<usize> =
        (0..n).filter(|i| !skip.contains(i)).collect();
    let mut set = tokio::task::JoinSet::new();
    loop {
        // Start what is ready, in plan order, while there is room.
        let mut i = 0;
        while set.len() < plan.concurrency && i < pending.len() {
            let idx = pending[i];
            let ready = plan.checks[idx].after.iter().all(|&a| done[a]);
            if ready {
                pending.remove(i);
                started[idx] = true;
                let plan = Arc::clone(&plan);
                let ctx = Arc::clone(&ctx);
                set.spawn(async move { run_check(&plan.checks[idx], &ctx).await });
            } else {
                i += 1;
            }
        }
        let next = tokio::select! {
            next = set.join_next() => next,
            () = cancel.cancelled() => {
                set.abort_all();
                return;
            }
        };
        match next {
            Some(Ok(result)) => {
                done[result.index] = true;
                if emit.send(result).await.is_err() {
                    set.abort_all();
                    return;
                }
            }
            Some(Err(err)) => {
                tracing::error!(%err, "a check panicked");
                // Unblock what waited on it: it will not finish otherwise.
                for (i, s) in started.iter().enumerate() {
                    if *s {
                        done[i] = true;
                    }
                }
            }
            None => {
                if pending.is_empty() {
                    return;
                }
                // Nothing runs and nothing is ready: cannot happen, as
                // `after` only names earlier checks; refuse to spin.
                tracing::error!("checks left that can never start");
                return;
            }
        }
    }
}

/// Runs `check` on its agent and reads back the verdict it sends; a check
/// the agent could not run fails with the agent's reason.
async fn run_remote(check: &Check, remote: &plan::Remote, ctx: &Context) -> CheckResult {
    let started = Instant::now();
    let names = [remote.agent.as_str()];
    let (outcome, lost) =
        with_restarts(&ctx.agents, &names, || remote_once(check, remote, ctx)).await;
    let mut r = match outcome {
        Ok((r, _)) => r,
        Err(why) if lost => CheckResult {
            actual: "inconclusive".into(),
            result: format!("Fail inconclusive: {why}"),
            ..blank(check)
        },
        Err(why) => CheckResult {
            actual: "error".into(),
            result: format!("Fail {why}"),
            ..blank(check)
        },
    };
    r.on = Some(remote.agent.clone());
    r.elapsed_ms = ms(started.elapsed());
    r
}

/// How many times a check is run again after its agents went away.
const CHECK_RETRIES: u32 = 2;

/// Runs `attempt`; when it fails and one of the agents `names` has gone
/// away (its pipe ended), starts those agents again (with backoff) and runs
/// it again, at most [`CHECK_RETRIES`] times. Gives the last outcome with
/// what was done (one line per restart), and whether an agent was lost.
async fn with_restarts<T, F, Fut>(
    agents: &flow::Agents,
    names: &[&str],
    mut attempt: F,
) -> (Result<(T, Vec<String>), String>, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut notes = Vec::new();
    let mut lost = false;
    for tried in 0..=CHECK_RETRIES {
        let error = match attempt().await {
            Ok(found) => return (Ok((found, notes)), lost),
            Err(e) => e,
        };
        // The pipe's end may trail a request that failed on it by a little
        // (the link's own words for that: "went away", "the pipe to it
        // broke"); any other failure is looked at once.
        let link_failed = error.contains("went away") || error.contains("the pipe to it broke");
        let mut gone = Vec::new();
        for _ in 0..if link_failed { 25 } else { 1 } {
            gone = names
                .iter()
                .copied()
                .filter(|n| agents.get(*n).is_some_and(|a| a.link().is_closed()))
                .collect();
            if !gone.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if gone.is_empty() {
            return (Err(error), lost);
        }
        lost = true;
        if tried == CHECK_RETRIES {
            return (
                Err(format!("{error}; its agents went away {} times", tried + 1)),
                lost,
            );
        }
        for name in gone {
            let Some(agent) = agents.get(name) else {
                continue;
            };
            match agent.restart().await {
                Ok(n) => notes.push(format!(
                    "agent {name} went away during the check ({error}); it was started again (restart {n}) and the check run again"
                )),
                Err(e) => {
                    return (
                        Err(format!("{error}; agent {name} could not be started again: {e}")),
                        lost,
                    );
                }
            }
        }
    }
    (Err("no attempt".into()), lost)
}

/// One try of a check on its agent.
async fn remote_once(
    check: &Check,
    remote: &plan::Remote,
    ctx: &Context,
) -> Result<CheckResult, String> {
    match ctx.agents.get(&remote.agent).map(|a| a.link()) {
        None => Err(format!("agent {} is not connected", remote.agent)),
        Some(link) => link
            .call(&crate::agent::wire::Action::Check {
                plan: remote.plan.clone(),
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|o| match o {
                crate::agent::wire::Outcome::Checked { result } => {
                    runlog::from_agent(result, check)
                }
                crate::agent::wire::Outcome::Refused { reason } => {
                    Err(format!("agent {}: {reason}", remote.agent))
                }
                other => Err(format!(
                    "agent {}: answered the check with {other:?}",
                    remote.agent
                )),
            }),
    }
}

/// A verdict on `check` with nothing found yet: not passed.
fn blank(check: &Check) -> CheckResult {
    CheckResult {
        index: check.index,
        name: check.name.clone(),
        kind: check.kind.word(),
        target: check.kind.target(),
        on: None,
        passed: false,
        expected: describe_expect(&check.expect),
        actual: String::new(),
        result: String::new(),
        elapsed_ms: 0,
        talk: None,
        service: None,
        mail: None,
        flow: None,
        recorded: Default::default(),
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Runs one check and judges it.
pub async fn run_check(check: &Check, ctx: &Context) -> CheckResult {
    if let Some(remote) = &check.remote {
        return run_remote(check, remote, ctx).await;
    }
    let started = Instant::now();
    let mut r = blank(check);
    match &check.kind {
        CheckKind::Connect { host, port } => {
            let state = match crate::net::connect(host, *port, ctx.connect_timeout).await {
                Ok(_stream) => Ok((PortState::Open, "connected".to_string())),
                Err(e @ crate::net::ConnectError::Resolve(_)) => Err(e.to_string()),
                Err(e) => {
                    let (state, reason, text) = crate::probe::connect_failure(&e);
                    Ok((state, format!("{} ({text})", reason.name())))
                }
            };
            match state {
                Err(e) => {
                    r.actual = "error".into();
                    r.result = format!("Fail {e}");
                }
                Ok((state, text)) => {
                    r.actual = state.as_str().to_string();
                    let want = match check.expect.state {
                        Some(PortWord::Closed) => PortState::Closed,
                        Some(PortWord::Filtered) => PortState::Filtered,
                        _ => PortState::Open,
                    };
                    r.passed = state == want;
                    r.result = if state == PortState::Open {
                        "Success".into()
                    } else {
                        format!("Fail {text}")
                    };
                }
            }
        }
        CheckKind::Talk {
            endpoint,
            conversation,
            vars,
        } => {
            let report =
                crate::talk::talk(endpoint, conversation, vars, &ctx.talk, &Emit::discard()).await;
            r.result = report.result_line();
            let e = &check.expect;
            let want_ok = e.outcome != Some(Outcome::Fail);
            r.actual = match &report.failure {
                None => "success".into(),
                Some(f) => format!("fail at {}", f.step),
            };
            r.passed = report.ok == want_ok
                && match (&e.fail_at, &report.failure) {
                    (Some(step), Some(f)) => &f.step == step,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
            r.talk = Some(report);
        }
        CheckKind::Probe {
            host,
            port,
            service,
            sni,
        } => match resolve(host, *port, ctx.connect_timeout).await {
            Err(e) => {
                r.actual = "error".into();
                r.result = format!("Fail {e}");
            }
            Ok(addr) => {
                let cfg;
                let cfg_ref = match sni {
                    Some(name) => {
                        let mut c = (*ctx.probe).clone();
                        c.sni = Some(name.clone());
                        cfg = c;
                        &cfg
                    }
                    None => &*ctx.probe,
                };
                let job = Job {
                    host_index: 0,
                    addr: addr.ip(),
                    host: (host.parse::<std::net::IpAddr>().is_err()).then(|| host.as_str().into()),
                    port: *port,
                    expect: *service,
                };
                let found = crate::probe::check(cfg_ref, &job).await;
                let (passed, actual) = judge_probe(&check.expect, &found);
                r.passed = passed;
                r.actual = actual;
                r.result = match &found.error {
                    None => "Success".into(),
                    Some(e) => format!("Fail {} at {}", e.message, e.step),
                };
                r.service = Some(found);
            }
        },
        CheckKind::Calc {
            host,
            port,
            op,
            args,
            little_endian,
        } => {
            let outcome = run_calc(host, *port, op, args, *little_endian, ctx).await;
            let e = &check.expect;
            match outcome {
                Ok(value) => {
                    r.actual = format!("result {value}");
                    r.result = "Success".into();
                    r.passed = e.outcome != Some(Outcome::Fail)
                        && e.result.is_none_or(|want| want == i64::from(value));
                }
                Err(text) => {
                    r.actual = "fail".into();
                    r.result = format!("Fail {text}");
                    r.passed = e.outcome == Some(Outcome::Fail);
                }
            }
        }
        CheckKind::Flow(f) => {
            let names = f.agents();
            let (outcome, lost) = with_restarts(&ctx.agents, &names, || {
                flow::run(f, check.index, &ctx.agents, &ctx.flows, ctx.timeout)
            })
            .await;
            match outcome {
                Err(e) if lost => {
                    // Not the firewall's doing: the agents could not see it through.
                    r.actual = plan::FlowVerdict::Inconclusive.word().into();
                    r.passed = check.expect.verdict == Some(plan::FlowVerdict::Inconclusive);
                    r.result = if r.passed {
                        "Success".into()
                    } else {
                        format!("Fail inconclusive: {e}")
                    };
                }
                Err(e) => {
                    r.actual = "error".into();
                    r.result = format!("Fail {e}");
                }
                Ok((mut found, notes)) => {
                    found.evidence.extend(notes);
                    let (passed, actual) = judge_flow(&check.expect, &found);
                    r.passed = passed;
                    r.result = if passed {
                        "Success".into()
                    } else {
                        format!(
                            "Fail expected {}, got {actual} (sender saw {})",
                            describe_expect(&check.expect),
                            found.sender_saw
                        )
                    };
                    r.actual = actual;
                    r.flow = Some(found);
                }
            }
        }
        CheckKind::Mail { host, port, mail } => {
            let (found, reached) = run_mail(host, *port, mail, ctx).await;
            let e = &check.expect;
            let failure = found.failed_at.zip(found.detail.clone());
            r.mail = Some(found);
            match failure {
                None => {
                    r.actual = format!("success ({reached})");
                    r.result = "Success".into();
                    r.passed = e.outcome != Some(Outcome::Fail);
                }
                Some((stage, text)) => {
                    r.actual = format!("fail at {stage}: {text}");
                    r.result = format!("Fail {text} at {stage}");
                    r.passed = e.outcome == Some(Outcome::Fail)
                        && e.fail_at.as_ref().is_none_or(|want| want == stage);
                }
            }
        }
    }
    // The step itself may have gone well while the check failed (STARTTLS
    // not offered, a port open that should be closed): the result line
    // then says what failed, not the step's "Success".
    if !r.passed && !r.result.starts_with("Fail") {
        r.result = format!("Fail expected {}, got {}", r.expected, r.actual);
    }
    r.elapsed_ms = ms(started.elapsed());
    r
}

/// The first address of `host`, as a connect would try it (the texts of
/// [`crate::net::resolve`]).
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    match crate::net::resolve(host, port, timeout).await {
        Ok(addrs) => Ok(addrs[0]),
        Err(e) => Err(e.to_string()),
    }
}

async fn run_calc(
    host: &str,
    port: u16,
    op: &str,
    args: &[String],
    little_endian: bool,
    ctx: &Context,
) -> Result<i32, String> {
    let server = resolve(host, port, ctx.connect_timeout).await?;
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let job = crate::calc::client::make_job(1, op, &refs)?;
    let cfg = crate::calc::client::ClientConfig {
        server,
        order: if little_endian {
            sockeye_proto::calc::ByteOrder::Little
        } else {
            sockeye_proto::calc::ByteOrder::Big
        },
        connect_timeout: ctx.connect_timeout,
        reply_timeout: ctx.timeout,
    };
    // Room for the one answer: the client never waits for this reader.
    let (emit, mut answers) = Emit::channel(1);
    crate::calc::client::run_tcp(&cfg, std::slice::from_ref(&job), &emit)
        .await
        .map_err(|e| e.to_string())?;
    match answers.try_recv() {
        Ok(CalcEvent::Answers(got)) if !got.is_empty() => Ok(got[0].result),
        _ => Err("no answer".to_string()),
    }
}

/// One SMTP session as a plan's mail check asks: the failed step's name and
/// why, or where it stopped.
async fn run_mail(
    host: &str,
    port: u16,
    mail: &plan::MailCheck,
    ctx: &Context,
) -> (MailResult, String) {
    let config = crate::mail::MailConfig::new(
        host.to_owned(),
        port,
        mail.dialogue.clone(),
        mail.insecure,
        mail.ca_files.clone(),
    );
    let mut config = match config {
        Ok(c) => c,
        // Checked when the plan was read; a CA file gone since lands here.
        Err(text) => {
            let found = MailResult {
                peer: None,
                tls: None,
                verified: None,
                auth_mechanism: None,
                accepted: Vec::new(),
                rejected: Vec::new(),
                messages_delivered: 0,
                failed_at: Some("setup"),
                detail: Some(text),
            };
            return (found, String::new());
        }
    };
    config.quit_after = mail.quit_after;
    config.connect_timeout = ctx.connect_timeout;
    config.timeout = ctx.timeout;
    config.tls_timeout = ctx.talk.tls_timeout;
    let report = crate::mail::send(&config, crate::report::Emit::discard()).await;
    let reached = match mail.quit_after {
        Some(q) => format!("quit after {}", q.name()),
        None => format!(
            "{} message{} accepted",
            report.outcome.messages_delivered,
            if report.outcome.messages_delivered == 1 {
                ""
            } else {
                "s"
            }
        ),
    };
    let (failed_at, detail) = match report.failure {
        Some((stage, text)) => (Some(stage.name()), Some(text)),
        None => (None, None),
    };
    let found = MailResult {
        peer: report.peer.map(|p| p.to_string()),
        verified: report.tls.as_ref().map(|t| t.verified),
        tls: report.tls.map(|t| t.version),
        auth_mechanism: report.outcome.auth_mechanism,
        accepted: report.outcome.accepted,
        rejected: report.outcome.rejected,
        messages_delivered: report.outcome.messages_delivered,
        failed_at,
        detail,
    };
    (found, reached)
}

/// The expectation in words.
pub fn describe_expect(e: &ExpectSpec) -> String {
    let mut parts = Vec::new();
    if let Some(s) = e.state {
        parts.push(
            match s {
                PortWord::Open => "open",
                PortWord::Closed => "closed",
                PortWord::Filtered => "filtered",
            }
            .to_string(),
        );
    }
    match (&e.fail_at, e.outcome) {
        (Some(step), _) => parts.push(format!("fail at {step}")),
        (None, Some(Outcome::Fail)) => parts.push("fail".into()),
        (None, Some(Outcome::Success)) => parts.push("success".into()),
        (None, None) => {}
    }
    if let Some(s) = &e.service {
        parts.push(format!("service {s}"));
    }
    if let Some(b) = e.starttls {
        parts.push(format!("starttls {}", yes_no(b)));
    }
    if let Some(b) = e.tls {
        parts.push(format!("tls {}", yes_no(b)));
    }
    if let Some(b) = e.verified {
        parts.push(format!("verified {}", yes_no(b)));
    }
    if let Some(d) = e.cert_days_left {
        parts.push(format!("cert valid >= {d} days"));
    }
    if let Some(v) = e.result {
        parts.push(format!("result {v}"));
    }
    if let Some(v) = e.verdict {
        parts.push(v.word().to_string());
    }
    if let Some(a) = &e.arrived_at {
        parts.push(format!("arrived at {a}"));
    }
    if let Some(s) = e.source_seen {
        parts.push(format!("source {s}"));
    }
    if let Some(b) = e.blocked_by {
        parts.push(format!("blocked by {}", b.word()));
    }
    parts.join(", ")
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Judges a flow: every field the expectation names must hold; the actual
/// text says the same fields of what was found.
fn judge_flow(e: &ExpectSpec, found: &crate::report::check::FlowRecord) -> (bool, String) {
    let want = e.verdict.unwrap_or(plan::FlowVerdict::Allowed);
    let mut passed = found.verdict == want.word();
    let mut actual = vec![found.verdict.clone()];
    if let Some(a) = &e.arrived_at {
        let at = found.arrived_at.as_deref().unwrap_or("nowhere");
        passed &= at == a;
        actual.push(format!("arrived at {at}"));
    }
    if let Some(s) = e.source_seen {
        let seen = found.source_seen.as_deref().unwrap_or("none");
        passed &= seen == s.to_string();
        actual.push(format!("source {seen}"));
    }
    if let Some(b) = e.blocked_by {
        passed &= found.blocked_by == b.word();
        actual.push(format!("blocked by {}", found.blocked_by));
    }
    (passed, actual.join(", "))
}

/// Judges a probe's findings: every field the expectation names must hold.
fn judge_probe(e: &ExpectSpec, found: &ServiceResult) -> (bool, String) {
    let mut ok = true;
    let mut actual = Vec::new();
    let worked = found.error.is_none() && found.state == PortState::Open;
    match e.outcome {
        Some(Outcome::Fail) => {
            ok &= !worked;
            actual.push(if worked { "success" } else { "fail" }.to_string());
        }
        _ => {
            ok &= worked;
            actual.push(if worked {
                "success".to_string()
            } else {
                match &found.error {
                    Some(err) => format!("fail at {}", err.step),
                    None => found.state.as_str().to_string(),
                }
            });
        }
    }
    if let Some(want) = &e.service {
        ok &= &found.service == want;
        actual.push(format!("service {}", found.service));
    }
    let accepted = found.starttls.as_ref().is_some_and(|s| s.accepted);
    if let Some(want) = e.starttls {
        ok &= accepted == want;
        actual.push(format!("starttls {}", yes_no(accepted)));
    }
    // The TLS session, implicit or after STARTTLS.
    let facts = match (
        &found.tls,
        found.starttls.as_ref().and_then(|s| s.tls.as_ref()),
    ) {
        (Some(TlsOutcome::Ok(f)), _) | (_, Some(TlsOutcome::Ok(f))) => Some(f),
        _ => None,
    };
    if let Some(want) = e.tls {
        ok &= facts.is_some() == want;
        actual.push(format!("tls {}", yes_no(facts.is_some())));
    }
    if let Some(want) = e.verified {
        let v = facts.is_some_and(|f| f.verified);
        ok &= v == want;
        actual.push(format!("verified {}", yes_no(v)));
    }
    if let Some(min) = e.cert_days_left {
        match facts.and_then(|f| f.chain.first()) {
            Some(leaf) => {
                ok &= leaf.days_left >= min;
                actual.push(format!("cert valid {} more days", leaf.days_left));
            }
            None => {
                ok = false;
                actual.push("no certificate".into());
            }
        }
    }
    (ok, actual.join(", "))
}
