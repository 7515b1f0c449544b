//! `sockeye probe`: the clap arguments, their validation into a
//! [`ProbeConfig`] and the job list, and the run (targets resolved, checks
//! run concurrently, results printed as they complete, a host's report
//! when its last check is done).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::args::ColorChoice;
use super::output::{OutputSpec, parse_outputs};
use super::run::{self, Notice, Threads};
use super::scan::make_sinks;
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::probe::pipeline::probe_hosts;
use crate::probe::{CLASSIC, ProbeConfig, Service};
use crate::report::{Event, Proto, RunInfo, ScanInfo};
use crate::target::ports::{compact_spec, parse_ports};
use crate::target::resolve::resolve_targets;
use crate::target::{Excludes, HostSpec, TargetSet, parse_host_spec};

pub const PROBE_AFTER: &str = "\
Without -p, the 17 classic checks run on each host (telnet 23, ssh 22, smtp 25, submission 587,
smtps 465, pop2 109, pop3 110, imap 143, imaps 993, pop3s 995, ftp 21, http 80, https 443,
ipp 631, kerberos 88, ldap 389, ldaps 636). With -p, the given ports are checked by content:
what the server says decides the service (an SSH banner on port 110 is ssh, with a note).

Certificates are never refused: self-signed, expired and misnamed ones are shown, with
whether the chain verifies for the name used (system roots, plus --ca-file).

Examples:
  sockeye probe mail.example.test
  sockeye probe -p 25,587,465 --json 198.18.0.2
  sockeye probe -p 443 --tls-versions --sni www.example.test 198.18.0.2
  sockeye probe -p 1-1024 -o xml=probe.xml 198.18.0.0/28

Exit status: 0 done, 1 nothing could be checked or output failed, 2 bad usage,
130 interrupted (results so far are written).";

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Hosts to check: addresses, names, CIDR, octet ranges.
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,

    /// Ports to check by content (nmap syntax). Default: the 17 classic services.
    #[arg(short, long, value_name = "PORTS", allow_hyphen_values = true)]
    pub ports: Option<String>,

    /// Name sent as SNI and checked against certificates (default: the target as typed).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// Also report which of TLS 1.0, 1.1, 1.2, 1.3 each TLS port accepts (raw hellos).
    #[arg(long)]
    pub tls_versions: bool,

    /// Trust the CA certificates in FILE (PEM) too when verifying chains; repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub ca_file: Vec<PathBuf>,

    /// Connect timeout per check.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub connect_timeout: String,

    /// How long each read waits (a greeting, a reply).
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub read_timeout: String,

    /// On a port of no known service: how long to wait for a greeting before sending HEAD /.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub banner_wait: String,

    /// Each check ends within this long, however slowly a server sends.
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    pub check_timeout: String,

    /// TLS handshake timeout.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub tls_timeout: String,

    /// Checks running at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub concurrency: usize,

    /// Output FORMAT (table, json, xml, grep, html) on stdout, or FORMAT=PATH to a file; repeatable.
    #[arg(short, long = "output", value_name = "FORMAT[=PATH]", action = clap::ArgAction::Append)]
    pub output: Vec<String>,

    /// Same as -o json.
    #[arg(long)]
    pub json: bool,
}

/// What `probe` will do, validated before anything is sent.
struct ProbePlan {
    specs: Vec<(String, HostSpec)>,
    /// (port, expected service) per host.
    ports: Vec<(u16, Option<Service>)>,
    outputs: Vec<OutputSpec>,
    config: ProbeConfig,
    concurrency: usize,
}

fn duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let d = parse_duration(flag, text)?;
    if d.is_zero() {
        return Err(UsageError::new(format!("{flag}: must be more than 0")));
    }
    Ok(d)
}

impl ProbePlan {
    fn from_args(args: ProbeArgs) -> anyhow::Result<ProbePlan> {
        let mut specs = Vec::new();
        for token in &args.targets {
            let spec = parse_host_spec(token).map_err(|e| UsageError::new(e.to_string()))?;
            specs.push((token.clone(), spec));
        }
        let ports: Vec<(u16, Option<Service>)> = match &args.ports {
            None => CLASSIC.iter().map(|s| (s.port(), Some(*s))).collect(),
            Some(text) => {
                let list = parse_ports(text).map_err(|e| UsageError::new(e.to_string()))?;
                if !list.udp.is_empty() {
                    return Err(UsageError::new(
                        "probe checks TCP services; U: ports are not supported",
                    )
                    .into());
                }
                list.tcp
                    .iter()
                    .map(|&p| (p, Service::for_port(p)))
                    .collect()
            }
        };
        if ports.is_empty() {
            return Err(UsageError::new("no ports to check").into());
        }
        if args.concurrency == 0 {
            return Err(UsageError::new("--concurrency: must be at least 1").into());
        }
        let outputs = parse_outputs(&args.output, args.json)?;
        let defaults = default_config(&args.ca_file)?;
        let config = ProbeConfig {
            connect_timeout: duration("--connect-timeout", &args.connect_timeout)?,
            read_timeout: duration("--read-timeout", &args.read_timeout)?,
            tls_timeout: duration("--tls-timeout", &args.tls_timeout)?,
            banner_wait: duration("--banner-wait", &args.banner_wait)?,
            check_timeout: duration("--check-timeout", &args.check_timeout)?,
            sni: args.sni.clone(),
            tls_versions: args.tls_versions,
            ..defaults
        };
        // Each check holds one socket (two during --tls-versions); stay well
        // inside the open-file limit.
        let limit = crate::sys::nofile_limit() as usize;
        let concurrency = args.concurrency.min((limit.saturating_sub(64) / 2).max(1));
        Ok(ProbePlan {
            specs,
            ports,
            outputs,
            config,
            concurrency,
        })
    }
}

pub fn run(args: ProbeArgs, quiet: bool, color: ColorChoice) -> anyhow::Result<u8> {
    let command_line = run::command_line();
    let started = SystemTime::now();
    let clock = Instant::now();
    crate::sys::raise_nofile_limit();
    let plan = ProbePlan::from_args(args)?;
    let bar = super::progress::new_bar(quiet);
    let sink = make_sinks(&plan.outputs, true, color, bar.clone())?;
    let port_list: Vec<u16> = plan.ports.iter().map(|(p, _)| *p).collect();
    let info = RunInfo {
        command: "probe",
        args: command_line,
        started,
        scans: vec![ScanInfo {
            scan_type: "connect",
            proto: Proto::Tcp,
            ports_spec: {
                let mut sorted = port_list.clone();
                sorted.sort_unstable();
                compact_spec(&sorted)
            },
            num_ports: port_list.len() as u32,
        }],
        all_states: true,
        shard: None,
    };
    let runtime = run::runtime(Threads::Many(None))?;
    runtime.block_on(probe_main(plan, sink, info, clock, bar))
}

async fn probe_main(
    plan: ProbePlan,
    sink: crate::report::MultiSink,
    info: RunInfo,
    clock: Instant,
    bar: Option<indicatif::ProgressBar>,
) -> anyhow::Result<u8> {
    let cancel = CancellationToken::new();
    run::cancel_on_signals(cancel.clone(), Notice::Results);
    let (blocks, target_errors) = resolve_targets(&plan.specs, false).await;
    let targets = TargetSet::new(blocks, Excludes::new(Vec::new()));
    let progress = Arc::new(crate::scan::Progress::default());
    progress.total.store(
        targets.len().saturating_mul(plan.ports.len() as u64),
        std::sync::atomic::Ordering::Relaxed,
    );
    let (tx, printer) = run::start_printer(sink, &info, 1024, bar, &progress, &cancel)?;
    for err in &target_errors {
        let _ = tx.send(Event::TargetError(err.clone().into())).await;
    }
    let stats = probe_hosts(
        Arc::new(plan.config),
        &targets,
        &plan.ports,
        plan.concurrency,
        cancel.clone(),
        &tx,
    )
    .await;
    drop(tx);
    let hosts = stats.hosts;
    let cancelled = cancel.clone();
    let ended = printer
        .finish(move || stats.summary("probe", clock.elapsed(), cancelled.is_cancelled()))
        .await?;
    if let Some(code) = ended {
        return Ok(code);
    }
    if hosts == 0 {
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// The defaults of `sockeye probe` (and the checks of `scan --probe`),
/// trusting the system's roots and `ca_files`.
pub(crate) fn default_config(ca_files: &[PathBuf]) -> Result<ProbeConfig, UsageError> {
    let roots = crate::tls::root_store(ca_files).map_err(|e| UsageError::new(e.to_string()))?;
    let scanner =
        crate::tls::Scanner::new(roots, Vec::new()).map_err(|e| UsageError::new(e.to_string()))?;
    Ok(ProbeConfig::new(scanner))
}
