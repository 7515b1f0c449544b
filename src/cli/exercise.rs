//! `sockeye exercise run PLAN`: the clap arguments, the plan loaded and
//! validated (a bad plan: file:line:column and exit 2, nothing run), the
//! run, and the printers (table, JSON Lines, JUnit XML, TAP, to stdout or
//! files).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::{UsageError, exit};
use crate::exercise::plan;
use crate::exercise::{CheckResult, Context};
use crate::report::Emit;
use crate::report::check::PlanSummary;
use crate::report::plan::{ListedCheck, PlanFormat, listing, write};

pub const EXERCISE_AFTER: &str = "\
A plan (YAML, or TOML for a .toml file) lists checks, each with an expectation;
a check passes when reality matched it (\"a bad password must be refused\"
passes when the login fails). The schema (the README has a longer example):

  name: TEXT                        # optional
  concurrency: N | sequential: true # optional (default 32)
  defaults: {connect_timeout: 3s, timeout: 5s, ca_file: [ca.crt]}
  vars: {lab: 198.18.0.2}           # {{lab}} anywhere a check takes text
  checks:
    - name: TEXT                    # may use the matrix's variables
      after: [NAME, ...]            # start when these earlier checks are done
      <one kind of check, below>
      matrix: [{VAR: VALUE, ..., expect: ...}, ...]   # one check per row
      expect: WORD or {FIELD: VALUE, ...}

  check                                  expect (word, or map of these fields)
  connect: HOST:PORT                     open (default), closed, filtered (state:)
  probe: {target, service, sni}          success|fail (outcome:), service, starttls,
                                         tls, verified, cert_days_left
  talk: {target | spawn, tls, sni, eol,  success|fail, fail_at: STEP
         timeout, max_buffer, steps | script}
      steps: [{name, expect: REGEX, fail: [REGEX], send: TEXT}, ...]
  calc: {server, op, args, little_endian}             success|fail, result: N
  mail: {server, from, to, tls, auth_user, auth_password, quit_after, insecure,
         ca_file}                                     success|fail, fail_at: STAGE
  flow: {from: AGENT, to: AGENT|ADDR:PORT, port,      allowed|blocked|inconclusive
         proto, listen_on: [AGENT:PORT]}              (verdict:), arrived_at, source_seen,
                                                      blocked_by
  on: AGENT                              any kind but flow runs on that agent
  (agents: {NAME: {via: local|netns:NS|exec:CMD|ssh://HOST, allow_listen, ...}})

Examples:
  sockeye exercise run ftp-logins.yaml
  sockeye exercise run plan.yaml -o junit=report.xml -o tap
  sockeye exercise run zones.yaml -o html=report.html   (open it in any browser)
  sockeye exercise run plan.toml --concurrency 8 -o json
  sockeye exercise run firewall.yaml --run-log run.jsonl   # then, after a crash:
  sockeye exercise run firewall.yaml --resume run.jsonl

Exit status: 0 every expectation held, 1 one did not, 2 a bad plan (nothing ran),
130 interrupted (the verdicts so far are written).";

#[derive(Debug, Args)]
pub struct ExerciseArgs {
    #[command(subcommand)]
    pub command: ExerciseCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExerciseCommand {
    /// Run a plan here, on this machine.
    #[command(after_help = EXERCISE_AFTER)]
    Run(RunArgs),
    /// Validate a plan and list its checks (after matrices), running nothing.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,

    /// Output FORMAT (table, json, junit, tap, html) on stdout, or FORMAT=PATH to a file; repeatable.
    #[arg(short, long = "output", value_name = "FORMAT[=PATH]", action = clap::ArgAction::Append)]
    pub output: Vec<String>,

    /// Checks running at once (overrides the plan's `concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Append every verdict to FILE (JSON Lines), each on disk before it
    /// counts: after a crash, --resume FILE runs only what is missing.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub run_log: Option<PathBuf>,

    /// Send this sockeye binary to every ssh:// and exec: agent (into the far
    /// user's cache folder, checked by its SHA-256) and run it there, whatever
    /// sockeye the far side has; same OS and architecture only.
    #[arg(long)]
    pub push: bool,

    /// Go on with the run logged in FILE: run only the checks without a
    /// verdict there, append theirs, and report every check (a missing FILE
    /// starts a new log).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
}

struct Output {
    format: PlanFormat,
    path: Option<PathBuf>,
}

fn parse_outputs(values: &[String]) -> Result<Vec<Output>, UsageError> {
    let mut outs = Vec::new();
    for v in values {
        let (name, path) = match v.split_once('=') {
            Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
            Some(_) => {
                return Err(UsageError::new(format!(
                    "output {v:?}: missing file name after '='"
                )));
            }
            None => (v.as_str(), None),
        };
        let format: PlanFormat = name
            .parse()
            .map_err(|e| UsageError::new(format!("output {v:?}: {e}")))?;
        outs.push(Output { format, path });
    }
    let on_stdout = outs.iter().filter(|o| o.path.is_none()).count();
    if on_stdout > 1 {
        return Err(UsageError::new(
            "only one output format can go to stdout; write the others to files with -o FORMAT=PATH",
        ));
    }
    if on_stdout == 0 {
        outs.insert(
            0,
            Output {
                format: PlanFormat::Table,
                path: None,
            },
        );
    }
    Ok(outs)
}

pub fn run(args: ExerciseArgs) -> anyhow::Result<u8> {
    match args.command {
        ExerciseCommand::Run(a) => run_plan(a),
        ExerciseCommand::Check(a) => check_plan(a),
    }
}

fn load(path: &std::path::Path) -> Result<plan::Plan, UsageError> {
    plan::load(path).map_err(|e| UsageError::new(format!("bad plan: {e}")))
}

fn check_plan(args: CheckArgs) -> anyhow::Result<u8> {
    let plan = load(&args.plan)?;
    let listed: Vec<(String, String)> = plan
        .checks
        .iter()
        .map(|c| (c.kind.target(), crate::exercise::describe_expect(&c.expect)))
        .collect();
    let checks = plan
        .checks
        .iter()
        .zip(&listed)
        .map(|(c, (target, expect))| ListedCheck {
            name: &c.name,
            kind: c.kind.word(),
            target,
            expect,
        });
    let written = listing(&mut std::io::stdout().lock(), checks);
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write output"))
        }
        _ => Ok(exit::OK),
    }
}

/// Says bye to every agent, once the checks are done.
fn close_agents(agents: Arc<crate::exercise::flow::Agents>, runtime: &super::run::Runtime) {
    runtime.block_on(async {
        let links: Vec<_> = match Arc::try_unwrap(agents) {
            Ok(map) => map.into_values().collect(),
            Err(_) => return,
        };
        for agent in links {
            if let Ok(agent) = Arc::try_unwrap(agent) {
                agent.close().await;
            }
        }
    });
}

/// Verdicts waiting for the collector at most.
const VERDICT_QUEUE: usize = 256;

fn run_plan(args: RunArgs) -> anyhow::Result<u8> {
    let outputs = parse_outputs(&args.output)?;
    let mut plan = load(&args.plan)?;
    if args.push {
        for a in &mut plan.agents {
            a.push = true;
        }
    }
    if let Some(n) = args.concurrency {
        if n == 0 {
            return Err(UsageError::new("--concurrency: must be at least 1").into());
        }
        plan.concurrency = n;
    }
    crate::sys::raise_nofile_limit();
    // Each check holds one socket (or a pty): stay inside the file limit.
    let limit = crate::sys::nofile_limit() as usize;
    plan.concurrency = plan.concurrency.min(limit.saturating_sub(64).max(1));
    let mut ctx =
        Context::for_plan(&plan).map_err(|e| UsageError::new(format!("bad plan: {e}")))?;
    // Open output files before anything runs: a bad path is found first.
    let mut files = Vec::new();
    for o in &outputs {
        if let Some(p) = &o.path {
            let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
            files.push((o.format, Some(BufWriter::new(f))));
        } else {
            files.push((o.format, None));
        }
    }
    let mut results: Vec<CheckResult> = Vec::with_capacity(plan.checks.len());
    let mut log = match (&args.run_log, &args.resume) {
        (Some(path), _) => Some(
            crate::exercise::runlog::RunLog::create(path, &plan)
                .map_err(|e| anyhow::anyhow!("cannot start the run log: {e}"))?,
        ),
        (None, Some(path)) => {
            use crate::exercise::runlog::LogError;
            let (log, done) =
                crate::exercise::runlog::RunLog::resume(path, &plan).map_err(|e| match e {
                    e @ (LogError::OtherPlan { .. } | LogError::Bad { .. }) => {
                        anyhow::Error::new(UsageError::new(format!("--resume: {e}")))
                    }
                    e => anyhow::anyhow!("--resume: {e}"),
                })?;
            let _ = writeln!(
                std::io::stderr().lock(),
                "sockeye: resuming {}: {} of {} checks have a verdict; running the other {}",
                path.display(),
                done.len(),
                plan.checks.len(),
                plan.checks.len() - done.len()
            );
            results.extend(done);
            Some(log)
        }
        (None, None) => None,
    };
    let skip: std::collections::HashSet<usize> = results.iter().map(|r| r.index).collect();
    let runtime = super::run::runtime(super::run::Threads::Many(None))?;
    let started = Instant::now();
    let name = plan.name.clone();
    let plan = Arc::new(plan);
    let cancel = tokio_util::sync::CancellationToken::new();
    // Every agent is reached (and shakes hands) before any check runs.
    if !plan.agents.is_empty() {
        let agents = runtime
            .block_on(crate::exercise::flow::start(&plan.agents))
            .map_err(anyhow::Error::msg)?;
        let bad = crate::exercise::flow::listen_limits(&plan.checks, &agents);
        if !bad.is_empty() {
            close_agents(Arc::new(agents), &runtime);
            let mut err = std::io::stderr().lock();
            for line in &bad {
                let _ = writeln!(err, "sockeye: bad plan: {line}");
            }
            return Ok(exit::USAGE);
        }
        ctx.agents = Arc::new(agents);
    }
    let agents = Arc::clone(&ctx.agents);
    let mut log_failed = None;
    runtime.block_on(async {
        super::run::cancel_on_signals(cancel.clone(), super::run::Notice::Results);
        let (emit, mut verdicts) = Emit::channel(VERDICT_QUEUE);
        let checks = crate::exercise::run(
            Arc::clone(&plan),
            Arc::new(ctx),
            &skip,
            cancel.clone(),
            emit,
        );
        let collect = async {
            while let Some(first) = verdicts.recv().await {
                // Group commit: every verdict that is ready, one fsync.
                let mut batch = vec![first];
                while let Ok(r) = verdicts.try_recv() {
                    batch.push(r);
                }
                if let Some(log) = log.as_mut()
                    && log_failed.is_none()
                    && let Err(e) = log.append(&batch, &plan.checks)
                {
                    log_failed = Some(anyhow::Error::new(e).context(format!(
                        "cannot write the run log {}: the run stops",
                        log.path().display()
                    )));
                    cancel.cancel();
                }
                for r in batch {
                    tracing::info!(check = %r.name, passed = r.passed, result = %r.result, "check done");
                    results.push(r);
                }
            }
        };
        tokio::join!(checks, collect);
    });
    // Each agent is told bye and exits (a dropped link would kill it).
    close_agents(agents, &runtime);
    results.sort_by_key(|r| r.index);
    let summary = PlanSummary::new(&name, &results, started.elapsed());
    for (format, file) in &mut files {
        let written = match file {
            Some(f) => write(*format, f, &results, &summary),
            None => {
                let mut out = std::io::stdout().lock();
                write(*format, &mut out, &results, &summary)
            }
        };
        if let Err(e) = written
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(anyhow::Error::new(e).context("cannot write output"));
        }
    }
    if let Some(e) = log_failed {
        return Err(e);
    }
    if cancel.is_cancelled() {
        // Interrupted: the verdicts so far were written; the rest never ran.
        return Ok(exit::INTERRUPTED);
    }
    Ok(
        if summary.failed == 0 && summary.checks == plan.checks.len() {
            exit::OK
        } else {
            exit::FAILURE
        },
    )
}
