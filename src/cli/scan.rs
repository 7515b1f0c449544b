//! `sockeye scan`: validate, resolve, scan, print.
//!
//! Everything the user typed is checked before the first packet: targets,
//! ports, durations, output files. Then host names are resolved (a name that
//! fails is reported and the others are scanned), the engine runs with the
//! printers on their own thread, and Ctrl-C stops sending, lets in-flight
//! probes finish briefly, and still writes every result and the summary.

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::args::{ColorChoice, ScanArgs};
use super::output::{OutputSpec, open_file, parse_outputs};
use super::progress::{self, Suspending};
use super::run::{self, Notice, Threads};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::report::{
    self, Discovered, Event, Format, MultiSink, RunInfo, ScanInfo, Sink, SinkOptions,
};
use crate::scan::resume;
use crate::scan::{
    DiscoveryConfig, DiscoveryStats, Probes, Progress, RawSetup, RttLimits, ScanConfig, ScanStats,
    Shard, SynSetup, Template, UdpStats, add_stats, connect_scan, discover_connect, discover_raw,
    join_protocols, syn_scan, udp_scan,
};
use crate::target::ports::{PortList, compact_spec, parse_ports, top_ports};
use crate::target::resolve::{resolve_excludes, resolve_targets};
use crate::target::{
    Block, ExcludeItem, Excludes, HostSpec, Proto, SpecError, Target, TargetSet,
    parse_exclude_list, parse_host_spec, parse_target_file,
};

/// The largest default in-flight window, whatever the open-file limit.
const MAX_WINDOW: u64 = 65_536;

/// The most retries `--retries` accepts (nmap's own ceiling is 50).
const MAX_RETRIES: u8 = 50;

/// Hosts host discovery has in flight at most (each a few packets, or two
/// sockets for a connect ping).
const MAX_DISCOVERY_HOSTS: usize = 4096;

/// Events buffered between the engine and the printers; a slow printer
/// (a pipe nobody reads) slows the scan rather than growing memory.
const EVENT_QUEUE: usize = 16 * 1024;

/// The validated form of `ScanArgs`.
#[derive(Debug)]
pub struct ScanPlan {
    pub specs: Vec<(String, HostSpec)>,
    pub excludes: Vec<(String, HostSpec)>,
    pub first_address: bool,
    /// The TCP ports (the engine's `ports` too); empty when only UDP is
    /// scanned.
    pub ports: Vec<u16>,
    /// The UDP ports: the UDP engine runs when there are any.
    pub udp_ports: Vec<u16>,
    /// `--shard` was typed: the JSON carries what `report merge` needs.
    pub sharded: bool,
    pub list_only: bool,
    pub outputs: Vec<OutputSpec>,
    pub all_states: bool,
    pub engine: ScanConfig,
    /// The seed was chosen by us, not typed.
    pub random_seed: bool,
    /// `--probe`: check open ports by content.
    pub probe: Option<crate::probe::ProbeConfig>,
    /// `-sS` typed (true), `-sT` typed (false), or neither: SYN when privileged.
    pub syn: Option<bool>,
    /// Host discovery: when it runs and how.
    pub discovery: DiscoveryPlan,
    /// `--resume FILE`.
    pub resume: Option<std::path::PathBuf>,
}

/// When host discovery runs, and its configuration.
#[derive(Debug, Clone)]
pub struct DiscoveryPlan {
    /// `-sn`: discovery only, no port scan.
    pub only: bool,
    /// `-Pn`: no discovery.
    pub skip: bool,
    /// A `-P` probe was typed: discovery runs even for a single host.
    pub asked: bool,
    pub cfg: DiscoveryConfig,
}

impl DiscoveryPlan {
    /// Whether discovery runs before (or instead of) the port scan of
    /// `hosts` targets: as nmap, always under -sn, never under -Pn, and
    /// otherwise for more than one host or when a -P flag asks.
    pub fn runs(&self, hosts: u64) -> bool {
        self.only || (!self.skip && (self.asked || hosts > 1))
    }
}

/// Ports of a `-PS`/`-PA`/`-PU` list (nmap syntax, no protocol prefixes).
fn ping_ports(flag: &str, spec: &Option<String>) -> Result<Vec<u16>, UsageError> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let list = parse_ports(spec).map_err(|e| UsageError::new(format!("{flag}={spec}: {e}")))?;
    let mut ports: Vec<u16> = list.tcp.into_iter().chain(list.udp).collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return Err(UsageError::new(format!("{flag}={spec}: no port given")));
    }
    Ok(ports)
}

fn usage(err: SpecError) -> UsageError {
    UsageError::new(err.to_string())
}

impl ScanPlan {
    /// Checks everything that can be checked without the network.
    pub fn from_args(args: ScanArgs) -> Result<ScanPlan, anyhow::Error> {
        let mut specs = Vec::new();
        for token in &args.targets {
            specs.push((token.clone(), parse_host_spec(token).map_err(usage)?));
        }
        if let Some(path) = &args.input_list {
            let text = read_text(path)?;
            for spec in parse_target_file(&text).map_err(usage)? {
                specs.push((spec_token(&spec), spec));
            }
        }
        if specs.is_empty() {
            return Err(UsageError::new(
                "no targets given (e.g. `sockeye scan 127.0.0.1`; see --help)",
            )
            .into());
        }
        let mut excludes = Vec::new();
        for list in &args.exclude {
            for spec in parse_exclude_list(list).map_err(usage)? {
                excludes.push((spec_token(&spec), spec));
            }
        }
        if let Some(path) = &args.exclude_file {
            let text = read_text(path)?;
            for spec in parse_exclude_list(&text).map_err(usage)? {
                excludes.push((spec_token(&spec), spec));
            }
        }

        let (scan_tcp, scan_udp) = protocols(&args);
        let mut ports = match (&args.ports, args.top_ports) {
            (Some(spec), _) => ports_for(spec, scan_tcp, scan_udp)?,
            (None, Some(0)) => {
                return Err(UsageError::new("--top-ports 0: must be at least 1").into());
            }
            (None, n) => {
                let n = n.unwrap_or(1000);
                let tcp = if scan_tcp {
                    top_ports(Proto::Tcp, n)
                } else {
                    Vec::new()
                };
                if scan_tcp && tcp.len() < n {
                    tracing::warn!(
                        "--top-ports {n}: the table has {} TCP ports; scanning all {}",
                        tcp.len(),
                        tcp.len()
                    );
                }
                PortList {
                    tcp: sorted(tcp),
                    udp: if scan_udp {
                        sorted(top_ports(Proto::Udp, n))
                    } else {
                        Vec::new()
                    },
                }
            }
        };
        if let Some(spec) = &args.exclude_ports {
            ports.exclude(&ports_for(spec, scan_tcp, scan_udp)?);
        }
        if scan_udp {
            if args.shard.is_some() {
                return Err(
                    UsageError::new("--shard is not available with UDP ports (-sU, U:)").into(),
                );
            }
            if args.probe && ports.tcp.is_empty() {
                return Err(UsageError::new(
                    "--probe checks TCP services: a UDP scan alone has none to check",
                )
                .into());
            }
        }
        let sources = check_sources(&args.source)?;
        if !sources.is_empty() && ports.udp.is_empty() {
            return Err(UsageError::new(
                "--source spreads UDP probes over addresses: this scan has no UDP ports (add -sU)",
            )
            .into());
        }
        if !sources.is_empty() && !ports.tcp.is_empty() {
            tracing::warn!(
                "--source spreads the UDP probes; TCP probes go from the address the routing table picks"
            );
        }
        if args.no_port_scan {
            ports = PortList::default();
        }
        if ports.tcp.is_empty() && ports.udp.is_empty() && !args.list && !args.no_port_scan {
            return Err(UsageError::new("no ports left to scan after --exclude-ports").into());
        }

        let timing = Template::level(args.timing.unwrap_or(3));
        let min = opt_duration("--min-rtt-timeout", &args.min_rtt_timeout)?;
        let max = opt_duration("--max-rtt-timeout", &args.max_rtt_timeout)?;
        // A bound typed alone moves the other default out of its way:
        // `--max-rtt-timeout 50ms` must not trip over the default minimum.
        let rtt = RttLimits {
            min: min.unwrap_or(match max {
                Some(m) => timing.min.min(m),
                None => timing.min,
            }),
            max: max.unwrap_or(match min {
                Some(m) => timing.max.max(m),
                None => timing.max,
            }),
            initial: opt_duration("--initial-rtt-timeout", &args.initial_rtt_timeout)?
                .unwrap_or(timing.initial),
        };
        if rtt.min > rtt.max {
            return Err(UsageError::new(format!(
                "--min-rtt-timeout ({:?}) is larger than --max-rtt-timeout ({:?})",
                rtt.min, rtt.max
            ))
            .into());
        }
        let rate = match args.rate.or(timing.rate) {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                return Err(
                    UsageError::new(format!("--rate {r}: must be a positive number")).into(),
                );
            }
            r => r,
        };
        // The caller raised the soft limit to the hard one already. Some
        // systems allow a billion files; past MAX_WINDOW more sockets in
        // flight only cost memory.
        let fd_window = crate::sys::nofile_limit()
            .saturating_sub(crate::sys::RESERVED_FDS)
            .clamp(1, MAX_WINDOW);
        let max_inflight = match args.max_inflight.or(timing.inflight) {
            Some(0) => return Err(UsageError::new("--max-inflight 0: must be at least 1").into()),
            Some(n) => {
                if n as u64 > fd_window {
                    tracing::warn!(
                        requested = n,
                        limit = fd_window,
                        "--max-inflight is above the open-file limit; using the limit"
                    );
                }
                (n as u64).min(fd_window) as usize
            }
            None => fd_window as usize,
        };
        let shard = match &args.shard {
            Some(s) => parse_shard(s)?,
            None => Shard::default(),
        };
        if shard.count > 1 && args.seed.is_none() {
            return Err(UsageError::new(
                "--shard needs --seed: every shard must use the same seed to split the work exactly",
            )
            .into());
        }
        let random_seed = args.seed.is_none();
        let seed = args.seed.unwrap_or_else(rand::random);
        let outputs = parse_outputs(&args.output, args.json)?;
        let probe = if args.probe {
            Some(super::probe::default_config(&args.ca_file)?)
        } else {
            None
        };
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let typed = Probes {
            echo: args.ping_echo,
            timestamp: args.ping_timestamp,
            syn: ping_ports("--ping-syn", &args.ping_syn)?,
            ack: ping_ports("--ping-ack", &args.ping_ack)?,
            udp: ping_ports("--ping-udp", &args.ping_udp)?,
        };
        let asked = !typed.is_empty() || args.ping_arp;
        if args.no_ping && asked {
            tracing::warn!("-Pn skips host discovery: the -P probes typed are not sent");
        } else if shard.count > 1 && asked {
            tracing::warn!(
                "--shard runs no host discovery (every shard must scan the same hosts): the -P probes typed are not sent"
            );
        }
        let connect_ports: Vec<u16> = {
            let mut p: Vec<u16> = typed.syn.iter().chain(&typed.ack).copied().collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let discovery = DiscoveryPlan {
            only: args.no_port_scan,
            // Shards must scan the same hosts to split the work exactly:
            // a sharded scan runs no discovery, as under -Pn.
            skip: args.no_ping || shard.count > 1,
            asked,
            cfg: DiscoveryConfig {
                probes: if typed.is_empty() {
                    Probes::nmap_default()
                } else {
                    typed
                },
                link_layer: !args.no_arp,
                connect_ports,
                // nmap retries a ping once by default; --retries overrides.
                retries: args.retries.unwrap_or(1).min(MAX_RETRIES),
                rtt,
                rate,
                max_hosts: max_inflight.clamp(1, MAX_DISCOVERY_HOSTS),
                grace: rtt.max.min(Duration::from_secs(1)),
            },
        };
        // A UDP scan alone opens no raw socket, even with -sS typed (as in
        // `-sS -p U:53`: no TCP port to send a SYN to).
        let syn = match (args.syn, args.connect || ports.tcp.is_empty()) {
            (_, true) => Some(false),
            (true, false) => Some(true),
            (false, false) => None,
        };
        Ok(ScanPlan {
            specs,
            excludes,
            first_address: args.first_address,
            ports: ports.tcp.clone(),
            udp_ports: ports.udp,
            sharded: args.shard.is_some(),
            list_only: args.list,
            outputs,
            all_states: args.all_states,
            engine: ScanConfig {
                ports: ports.tcp.into(),
                max_inflight,
                retries: match args.retries {
                    Some(n) if n > MAX_RETRIES => {
                        return Err(UsageError::new(format!(
                            "--retries {n}: at most {MAX_RETRIES}"
                        ))
                        .into());
                    }
                    Some(n) => n,
                    None => timing.retries,
                },
                retry_ceiling: match args.retries {
                    Some(n) => n,
                    None => timing.retry_ceiling,
                },
                rtt,
                rate,
                seed,
                shard,
                workers,
                grace: rtt.max.min(Duration::from_secs(1)),
                emit_all: args.all_states,
                resume: None,
                sources: sources.into(),
            },
            random_seed,
            probe,
            syn,
            discovery,
            resume: args.resume,
        })
    }
}

/// `--source`: every address must be this machine's (a UDP socket binds
/// to it), and each is used once.
fn check_sources(sources: &[IpAddr]) -> Result<Vec<IpAddr>, UsageError> {
    let mut seen = Vec::new();
    for &addr in sources {
        if seen.contains(&addr) {
            return Err(UsageError::new(format!("--source {addr}: given twice")));
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(UsageError::new(format!(
                "--source {addr}: not an address to send from"
            )));
        }
        if let Err(err) = std::net::UdpSocket::bind((addr, 0)) {
            return Err(UsageError::new(format!(
                "--source {addr}: cannot send from it ({err}); is it an address of this machine?"
            )));
        }
        seen.push(addr);
    }
    Ok(seen)
}

/// Which protocols a scan covers: TCP when -sS or -sT is typed, or T:
/// ports, or nothing says UDP; UDP when -sU is typed or U: ports.
/// `-p U:53` alone is a UDP scan, `-p T:22,U:53` scans both.
fn protocols(args: &ScanArgs) -> (bool, bool) {
    let (t_typed, u_typed, plain) = args.ports.as_deref().map_or((false, false, true), prefixes);
    let udp = args.udp || u_typed;
    let tcp = args.syn || args.connect || t_typed || (!args.udp && (plain || !u_typed));
    (tcp, udp)
}

/// Whether a `-p` list has T: items, U: items, and items before any prefix.
fn prefixes(spec: &str) -> (bool, bool, bool) {
    let prefix = |item: &str| item.trim().get(..2).map(str::to_ascii_lowercase);
    let mut items = spec.split(',');
    let plain = items
        .clone()
        .next()
        .is_some_and(|first| !matches!(prefix(first).as_deref(), Some("t:" | "u:")));
    let (mut t, mut u) = (false, false);
    for item in items.by_ref() {
        match prefix(item).as_deref() {
            Some("t:") => t = true,
            Some("u:") => u = true,
            _ => {}
        }
    }
    (t, u, plain)
}

/// A `-p` list (or `--exclude-ports`) for the protocols scanned, as nmap
/// reads it: items before the first T: or U: belong to every protocol
/// scanned; a prefix holds until the next.
fn ports_for(spec: &str, tcp: bool, udp: bool) -> Result<PortList, UsageError> {
    let items: Vec<&str> = spec.split(',').collect();
    let first_prefixed = items
        .iter()
        .position(|item| {
            item.trim()
                .get(..2)
                .is_some_and(|p| p.eq_ignore_ascii_case("t:") || p.eq_ignore_ascii_case("u:"))
        })
        .unwrap_or(items.len());
    let (head, tail) = items.split_at(first_prefixed);
    let mut list = if tail.is_empty() {
        PortList::default()
    } else {
        parse_ports(&tail.join(",")).map_err(usage)?
    };
    if !head.is_empty() {
        let head = head.join(",");
        if tcp {
            list.tcp.extend(parse_ports(&head).map_err(usage)?.tcp);
        }
        if udp {
            list.udp
                .extend(parse_ports(&format!("U:{head}")).map_err(usage)?.udp);
        }
    }
    list.tcp.sort_unstable();
    list.tcp.dedup();
    list.udp.sort_unstable();
    list.udp.dedup();
    Ok(list)
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

/// The token a spec read from a file stands for, for error messages.
fn spec_token(spec: &HostSpec) -> String {
    match spec {
        HostSpec::Addr(a) => a.to_string(),
        HostSpec::Net(n) => n.to_string(),
        HostSpec::Name(n) => n.clone(),
        HostSpec::Octets(r) => r.to_string(),
    }
}

fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .context("cannot read targets from stdin")?;
        return Ok(s);
    }
    // A file named on the command line that cannot be read is bad usage
    // (status 2), as a bad target is: nothing was sent.
    std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())).into())
}

fn opt_duration(flag: &str, text: &Option<String>) -> Result<Option<Duration>, UsageError> {
    text.as_deref().map(|t| parse_duration(flag, t)).transpose()
}

/// `I/N` with 0 <= I < N.
pub fn parse_shard(text: &str) -> Result<Shard, UsageError> {
    let bad = |why: &str| UsageError::new(format!("--shard {text:?}: {why}"));
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| bad("expected I/N, e.g. 0/4"))?;
    let index: u32 = i.trim().parse().map_err(|_| bad("I must be a number"))?;
    let count: u32 = n.trim().parse().map_err(|_| bad("N must be a number"))?;
    if count == 0 {
        return Err(bad("N must be at least 1"));
    }
    if index >= count {
        return Err(bad("I must be smaller than N (shards count from 0)"));
    }
    Ok(Shard { index, count })
}

/// Runs `sockeye scan`.
pub fn run(args: ScanArgs, quiet: bool, color: ColorChoice) -> anyhow::Result<u8> {
    if args.agents.is_some() {
        return super::scan_agents::run(args, color);
    }
    let command_line = run::command_line();
    let started = SystemTime::now();
    let clock = Instant::now();
    // First, so that the in-flight window is sized from the raised limit.
    crate::sys::raise_nofile_limit();
    let plan = ScanPlan::from_args(args)?;
    if plan.list_only {
        return list_targets(&plan);
    }
    let progress = Arc::new(Progress::default());
    let bar = progress::new_bar(quiet);
    // Printers are made before the runtime starts its threads: the local
    // time zone (for nmap's human-readable times) can only be read while
    // the process has one thread. Every output file is opened here, before
    // anything is sent.
    let sink = make_sinks(&plan.outputs, plan.all_states, color, bar.clone())?;
    let syn = if plan.discovery.only {
        None
    } else {
        open_syn(plan.syn, plan.engine.workers)
    };
    let mut plan = plan;
    if let Some(path) = plan.resume.clone() {
        let scan_type = resume_scan_type(&plan, syn.is_some());
        plan.engine.resume = Some(Arc::new(open_checkpoint(&mut plan, path, &scan_type)?));
    }
    let info = RunInfo {
        command: "scan",
        args: command_line,
        started,
        scans: scan_infos(&plan, syn.is_some()),
        all_states: plan.all_states,
        shard: plan.sharded.then(|| report::ShardRun {
            index: plan.engine.shard.index,
            count: plan.engine.shard.count,
            seed: plan.engine.seed,
            targets: tokens(&plan.specs),
            excludes: tokens(&plan.excludes),
        }),
    };
    let runtime = run::runtime(Threads::Many(Some(plan.engine.workers)))?;
    runtime.block_on(scan_main(plan, syn, sink, info, progress, bar, clock))
}

/// What each protocol's scan of the run is, for the printers' headers.
fn scan_infos(plan: &ScanPlan, syn: bool) -> Vec<ScanInfo> {
    let mut scans = Vec::new();
    if plan.discovery.only {
        return scans;
    }
    if !plan.ports.is_empty() {
        scans.push(ScanInfo {
            scan_type: if syn { "syn" } else { "connect" },
            proto: Proto::Tcp,
            ports_spec: compact_spec(&plan.ports),
            num_ports: plan.ports.len() as u32,
        });
    }
    if !plan.udp_ports.is_empty() {
        scans.push(ScanInfo {
            scan_type: "udp",
            proto: Proto::Udp,
            ports_spec: compact_spec(&plan.udp_ports),
            num_ports: plan.udp_ports.len() as u32,
        });
    }
    scans
}

/// Targets or exclusions as typed, one space between them.
pub(crate) fn tokens(specs: &[(String, HostSpec)]) -> String {
    let words: Vec<&str> = specs.iter().map(|(token, _)| token.as_str()).collect();
    words.join(" ")
}

/// The parameters that define a scan's work and output, as a checkpoint
/// records them: a checkpoint is only resumed by the same command line.
fn scan_params(plan: &ScanPlan, scan_type: &str) -> Vec<resume::Param> {
    use resume::Param;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let shard = plan.engine.shard;
    vec![
        Param::new("targets", tokens(&plan.specs)),
        Param::new("--exclude", tokens(&plan.excludes)),
        Param::new("--first-address", yes_no(plan.first_address)),
        Param::new("--ports", resume_ports(plan)),
        Param::new("scan type", scan_type),
        Param::new("--shard", format!("{}/{}", shard.index, shard.count)),
        Param::new("--all-states", yes_no(plan.all_states)),
    ]
}

/// The scan type a checkpoint records: the TCP engine's, `udp`, or both
/// (`syn+udp`), so that a checkpoint of one protocol is refused for another.
fn resume_scan_type(plan: &ScanPlan, syn: bool) -> String {
    let tcp = if syn { "syn" } else { "connect" };
    match (plan.ports.is_empty(), plan.udp_ports.is_empty()) {
        (_, true) => tcp.to_owned(),
        (true, false) => "udp".to_owned(),
        (false, false) => format!("{tcp}+udp"),
    }
}

/// The ports a checkpoint records: one protocol's as a list, both as
/// `T:...,U:...`.
fn resume_ports(plan: &ScanPlan) -> String {
    match (plan.ports.is_empty(), plan.udp_ports.is_empty()) {
        (_, true) => compact_spec(&plan.ports),
        (true, false) => compact_spec(&plan.udp_ports),
        (false, false) => format!(
            "T:{},U:{}",
            compact_spec(&plan.ports),
            compact_spec(&plan.udp_ports)
        ),
    }
}

/// `--resume FILE`: reads what an earlier run left there, if anything, and
/// refuses a checkpoint of another command line (status 2, nothing sent).
/// Without `--seed`, the checkpoint's seed is the run's.
fn open_checkpoint(
    plan: &mut ScanPlan,
    path: std::path::PathBuf,
    scan_type: &str,
) -> anyhow::Result<resume::Resume> {
    let params = scan_params(plan, scan_type);
    let restored = resume::load(&path).map_err(|e| UsageError::new(format!("--resume: {e}")))?;
    if let Some(cp) = &restored {
        let differs = |difference: String| {
            UsageError::new(format!(
                "--resume: {} is the checkpoint of another scan: {difference}",
                path.display()
            ))
        };
        resume::compare(&cp.params, &params).map_err(differs)?;
        if plan.random_seed {
            plan.engine.seed = cp.seed;
            plan.random_seed = false;
        } else if plan.engine.seed != cp.seed {
            return Err(differs(format!(
                "--seed differs: {} in the checkpoint, {} now",
                cp.seed, plan.engine.seed
            ))
            .into());
        }
    }
    Ok(resume::Resume::new(path, params, restored))
}

/// The SYN scan's sockets, when it was asked for (or nothing was) and this
/// process may open raw sockets; otherwise the connect scan runs, with a
/// note when `-sS` was typed.
fn open_syn(choice: Option<bool>, lanes: usize) -> Option<SynSetup> {
    if choice == Some(false) {
        return None;
    }
    match SynSetup::open(lanes) {
        Ok(setup) => Some(setup),
        Err(err) if err.is_permission() => {
            if choice == Some(true) {
                tracing::warn!("SYN scan needs root or CAP_NET_RAW: doing a connect scan");
            }
            None
        }
        Err(err) => {
            tracing::warn!("{err}: doing a connect scan");
            None
        }
    }
}

pub(crate) fn make_sinks(
    outputs: &[OutputSpec],
    all_states: bool,
    color: ColorChoice,
    bar: Option<indicatif::ProgressBar>,
) -> anyhow::Result<MultiSink> {
    let version = env!("CARGO_PKG_VERSION");
    let use_color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for spec in outputs {
        let (out, color): (Box<dyn Write + Send>, bool) = match &spec.path {
            Some(path) => (open_file(path)?, false),
            None => {
                let out = BufWriter::with_capacity(
                    64 * 1024,
                    Suspending {
                        bar: bar.clone(),
                        inner: io::stdout(),
                    },
                );
                (Box::new(out), use_color && spec.format == Format::Table)
            }
        };
        let opts = SinkOptions {
            color,
            all_states,
            version,
        };
        sinks.push(report::new_sink(spec.format, out, opts));
    }
    Ok(MultiSink::new(sinks))
}

async fn scan_main(
    plan: ScanPlan,
    syn: Option<SynSetup>,
    sink: MultiSink,
    info: RunInfo,
    progress: Arc<Progress>,
    bar: Option<indicatif::ProgressBar>,
    clock: Instant,
) -> anyhow::Result<u8> {
    let cancel = CancellationToken::new();
    run::cancel_on_signals(cancel.clone(), Notice::Results);
    if plan.random_seed {
        tracing::info!(seed = plan.engine.seed, "probe order seed");
    }

    // Resolve names (targets and exclusions) concurrently.
    let (blocks, target_errors) = resolve_targets(&plan.specs, plan.first_address).await;
    let excludes = resolve_excludes(&plan.excludes).await?;
    let targets = Arc::new(TargetSet::new(blocks, excludes));
    if let Some(cp) = plan
        .engine
        .resume
        .as_ref()
        .and_then(|r| r.restored.as_ref())
        && cp.n_hosts != targets.len()
    {
        return Err(UsageError::new(format!(
            "--resume: the checkpoint is of another scan: the targets stood for {} hosts then, {} now",
            cp.n_hosts,
            targets.len()
        ))
        .into());
    }
    if plan.engine.resume.is_some() && plan.discovery.runs(targets.len()) {
        // The checkpoint names hosts by their place among the targets scanned:
        // a second discovery may find other hosts up.
        return Err(UsageError::new(
            "--resume needs the same hosts every run: add -Pn (no host discovery), or scan one host",
        )
        .into());
    }

    let (tx, printer) = run::start_printer(sink, &info, EVENT_QUEUE, bar, &progress, &cancel)?;
    for err in &target_errors {
        let _ = tx.send(Event::TargetError(err.clone().into())).await;
    }

    // With --probe the engine's events pass through the prober on their way
    // to the printers.
    let (engine_tx, relay) = match plan.probe.clone() {
        None => (tx, None),
        Some(cfg) => {
            let (etx, erx) = crate::report::Emit::channel(EVENT_QUEUE);
            let relay = crate::probe::pipeline::relay(Arc::new(cfg), erx, tx, cancel.clone());
            (etx, Some(tokio::spawn(relay)))
        }
    };
    let mut note: Option<String> = None;
    let mut engine_tx = engine_tx;
    let mut tag = None;
    let mut targets = targets;
    let mut discovered: Option<DiscoveryStats> = None;
    if !targets.is_empty() && plan.discovery.runs(targets.len()) {
        if plan.discovery.only {
            let stats = discover(
                &plan.discovery,
                Arc::clone(&targets),
                engine_tx,
                &progress,
                &cancel,
            )
            .await;
            discovered = Some(stats);
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            return finish_discovery(printer, discovered, clock, &cancel, &target_errors).await;
        }
        // Discovery first: its answers stay here; the port scan gets the
        // hosts found up.
        let (tx_up, mut rx_up) = crate::report::Emit::channel(EVENT_QUEUE);
        let collect = tokio::spawn(async move {
            let mut up = Vec::new();
            while let Some(ev) = rx_up.recv().await {
                if let Event::HostDone(done) = ev
                    && let Some(how) = done.discovery
                {
                    up.push((
                        done.host_index,
                        Target {
                            addr: done.addr,
                            name: done.host,
                        },
                        how,
                    ));
                }
            }
            up.sort_by_key(|(i, _, _)| *i);
            up
        });
        let stats = discover(
            &plan.discovery,
            Arc::clone(&targets),
            tx_up,
            &progress,
            &cancel,
        )
        .await;
        let (up, how): (Vec<Target>, Vec<Discovered>) = collect
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(_, t, how)| (t, how))
            .unzip();
        note = Some(format!(
            "host discovery: {} up of {}; {}",
            plural(stats.up, "host", "hosts"),
            plural(stats.hosts, "address", "addresses"),
            if stats.up == 0 {
                "nothing scanned (if a host is up but blocks ping probes, try -Pn)"
            } else {
                "only they were scanned"
            },
        ));
        discovered = Some(stats);
        // The port scan starts its counts afresh.
        progress
            .total
            .store(0, std::sync::atomic::Ordering::Relaxed);
        progress.done.store(0, std::sync::atomic::Ordering::Relaxed);
        progress.sent.store(0, std::sync::atomic::Ordering::Relaxed);
        progress.open.store(0, std::sync::atomic::Ordering::Relaxed);
        targets = Arc::new(TargetSet::new(vec![Block::List(up)], Excludes::default()));
        // The port scan's host records say how discovery found each host
        // (host `i` of the scan is `how[i]`), and call it up even when no
        // port answered: as nmap, whose hosts are up once discovered.
        let (etx, mut erx) = crate::report::Emit::channel(EVENT_QUEUE);
        let out = engine_tx;
        tag = Some(tokio::spawn(async move {
            while let Some(mut ev) = erx.recv().await {
                if let Event::HostDone(done) = &mut ev
                    && let Some(h) = usize::try_from(done.host_index)
                        .ok()
                        .and_then(|i| how.get(i))
                {
                    done.discovery = Some(*h);
                    done.up = true;
                }
                if out.send(ev).await.is_err() {
                    break;
                }
            }
        }));
        engine_tx = etx;
    }
    let stats = if targets.is_empty() || discovered.as_ref().is_some_and(|d| d.up == 0) {
        drop(engine_tx); // lets the printer thread see the end of the events
        ScanStats::default()
    } else {
        let (stats, limited) = run_engines(
            &plan,
            syn,
            Arc::clone(&targets),
            engine_tx,
            &progress,
            &cancel,
        )
        .await;
        if let Some(limited) = limited {
            note = Some(match note {
                Some(n) => format!("{n}; {limited}"),
                None => limited,
            });
        }
        stats
    };
    if let Some(tag) = tag {
        let _ = tag.await;
    }
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    if stats.answers_all > 0 {
        let all = answers_all_note(stats.answers_all);
        note = Some(match note {
            Some(n) => format!("{n}; {all}"),
            None => all,
        });
    }
    tracing::info!(
        probes = stats.probes,
        resumed = stats.resumed,
        "probes sent (pairs decided by an earlier run are not probed again)"
    );
    if stats.local_retries > 0 {
        tracing::info!(
            probes = stats.local_retries,
            "probes re-sent after this machine ran out of sockets or buffers"
        );
    }
    let interrupted = stats.interrupted || cancel.is_cancelled();
    let tally = stats.tally();
    let ended = printer
        .finish(move || {
            let mut summary = tally.summary("scan", clock.elapsed(), interrupted);
            summary.note = note;
            summary
        })
        .await?;
    if let Some(code) = ended {
        return Ok(code);
    }
    let nothing_probed = stats.ports == 0 && stats.unprobed > 0;
    if discovered.is_some() && !nothing_probed && target_errors.is_empty() {
        return Ok(exit::OK);
    }
    if targets.is_empty() || nothing_probed || (stats.hosts == 0 && !target_errors.is_empty()) {
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// Runs the port scan: the TCP engine (SYN when `syn` is there, else
/// connect), the UDP engine, or both at once with their events joined so
/// that each host gets one report. Returns the run's counts and, when a
/// target's ICMP errors were rate limited, the note that says so.
async fn run_engines(
    plan: &ScanPlan,
    syn: Option<SynSetup>,
    targets: Arc<TargetSet>,
    events: crate::report::Emit<Event>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> (ScanStats, Option<String>) {
    // With both protocols, a rate cap (--rate, -T0..-T2) is shared out by
    // the engines' work, so that together they keep to it.
    let (tcp_n, udp_n) = (plan.ports.len() as f64, plan.udp_ports.len() as f64);
    let share = |n: f64| {
        plan.engine.rate.map(|r| {
            if tcp_n > 0.0 && udp_n > 0.0 {
                r * n / (tcp_n + udp_n)
            } else {
                r
            }
        })
    };
    // One `--resume` file for both engines: each saves its own part.
    let udp_cfg = ScanConfig {
        ports: plan.udp_ports.clone().into(),
        rate: share(udp_n),
        ..plan.engine.clone()
    };
    let tcp_cfg = ScanConfig {
        rate: share(tcp_n),
        ..plan.engine.clone()
    };
    let udp = |events| {
        udp_scan(
            Arc::clone(&targets),
            udp_cfg,
            events,
            Arc::clone(progress),
            cancel.clone(),
        )
    };
    let tcp = |events| {
        let (t, cfg, p, c) = (
            Arc::clone(&targets),
            tcp_cfg,
            Arc::clone(progress),
            cancel.clone(),
        );
        async move {
            match syn {
                Some(setup) => syn_scan(setup, t, cfg, events, p, c).await,
                None => connect_scan(t, cfg, events, p, c).await,
            }
        }
    };
    match (plan.ports.is_empty(), plan.udp_ports.is_empty()) {
        (false, true) => (tcp(events).await, None),
        (true, _) => {
            let stats = udp(events).await;
            let note = rate_limit_note(&stats);
            (stats.scan, note)
        }
        (false, false) => {
            let (tcp_tx, udp_tx, joined) = join_protocols(events, EVENT_QUEUE);
            let (tcp_stats, udp_stats) = tokio::join!(tcp(tcp_tx), udp(udp_tx));
            let hosts = joined.await.unwrap_or_default();
            let note = rate_limit_note(&udp_stats);
            (add_stats(tcp_stats, udp_stats.scan, hosts), note)
        }
    }
}

/// Runs host discovery: on raw sockets when this process may open them,
/// else by connect pings, with a note.
async fn discover(
    plan: &DiscoveryPlan,
    targets: Arc<TargetSet>,
    events: crate::report::Emit<Event>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> DiscoveryStats {
    let cfg = plan.cfg.clone();
    match RawSetup::open(&cfg.probes) {
        Ok(setup) => {
            discover_raw(
                setup,
                targets,
                cfg,
                events,
                Arc::clone(progress),
                cancel.clone(),
            )
            .await
        }
        Err(err) => {
            let ports = match cfg.connect_ports.as_slice() {
                [] => "ports 80 and 443".to_owned(),
                [one] => format!("port {one}"),
                many => format!("ports {}", compact_spec(many)),
            };
            if err.is_permission() {
                tracing::warn!(
                    "host discovery without root or CAP_NET_RAW: connecting to {ports} instead of ARP and ICMP"
                );
            } else {
                tracing::warn!("{err}: host discovery by connecting to {ports}");
            }
            discover_connect(targets, cfg, events, Arc::clone(progress), cancel.clone()).await
        }
    }
}

/// The end of a discovery-only run (`-sn`): the summary counts addresses
/// and the hosts up.
async fn finish_discovery(
    printer: run::Printer,
    stats: Option<DiscoveryStats>,
    clock: Instant,
    cancel: &CancellationToken,
    target_errors: &[crate::target::resolve::Unresolved],
) -> anyhow::Result<u8> {
    let stats = stats.unwrap_or_default();
    let interrupted = stats.interrupted || cancel.is_cancelled();
    let ended = printer
        .finish(move || {
            let mut summary = crate::report::Tally {
                hosts: stats.hosts,
                ..Default::default()
            }
            .summary("scan", clock.elapsed(), interrupted);
            summary.hosts_up = Some(stats.up);
            summary
        })
        .await?;
    if let Some(code) = ended {
        return Ok(code);
    }
    if stats.hosts == 0 || (stats.up == 0 && !target_errors.is_empty()) {
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the summary says of hosts that answered open on every port.
fn answers_all_note(hosts: u64) -> String {
    format!(
        "{hosts} {} answered on every probed port (a SYN proxy or tarpit): {} open ports are counted but not listed",
        if hosts == 1 { "host" } else { "hosts" },
        if hosts == 1 { "its" } else { "their" },
    )
}

/// What the summary says when targets rate-limited their ICMP errors.
fn rate_limit_note(udp: &UdpStats) -> Option<String> {
    if udp.limited_hosts == 0 {
        return None;
    }
    let pace = udp
        .slowest_period
        .map(|p| {
            format!(
                "; probes paced to one per {:.2} s per host",
                p.as_secs_f64()
            )
        })
        .unwrap_or_default();
    Some(format!(
        "ICMP rate limiting detected on {} {}{pace}; {} closed {} answered only when probed again",
        udp.limited_hosts,
        if udp.limited_hosts == 1 {
            "host"
        } else {
            "hosts"
        },
        udp.recovered,
        if udp.recovered == 1 { "port" } else { "ports" },
    ))
}

/// `-sL`: every target, one per line; names as typed (no DNS), nothing sent.
fn list_targets(plan: &ScanPlan) -> anyhow::Result<u8> {
    if let Some((token, _)) = plan
        .excludes
        .iter()
        .find(|(_, s)| matches!(s, HostSpec::Name(_)))
    {
        return Err(UsageError::new(format!(
            "--exclude {token:?}: -sL resolves no names, so it cannot exclude one; exclude by address"
        ))
        .into());
    }
    let json = plan
        .outputs
        .iter()
        .any(|s| s.path.is_none() && s.format == Format::Json);
    let excludes = Excludes::new(
        plan.excludes
            .iter()
            .filter_map(|(_, s)| ExcludeItem::from_spec(s.clone()))
            .collect(),
    );
    let specs: Vec<&HostSpec> = plan.specs.iter().map(|(_, s)| s).collect();
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let result = report::list::write_targets(out, json, &specs, &excludes);
    match result {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards() {
        assert_eq!(
            parse_shard("0/1").expect("ok"),
            Shard { index: 0, count: 1 }
        );
        assert_eq!(
            parse_shard("2/3").expect("ok"),
            Shard { index: 2, count: 3 }
        );
        for bad in ["3/3", "1/0", "a/2", "1", "1/2/3", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn ports_before_a_prefix_go_to_every_protocol_scanned() {
        let list = ports_for("22,80,U:53,161,T:443", true, true).expect("ok");
        assert_eq!(list.tcp, vec![22, 80, 443]);
        assert_eq!(list.udp, vec![22, 53, 80, 161]);
        let tcp_only = ports_for("22,U:53", true, false).expect("ok");
        assert_eq!((tcp_only.tcp, tcp_only.udp), (vec![22], vec![53]));
        let udp_only = ports_for("22,T:80", false, true).expect("ok");
        assert_eq!((udp_only.tcp, udp_only.udp), (vec![80], vec![22]));
        assert!(ports_for("22,U:", true, true).is_err());
    }

    #[test]
    fn the_flags_and_prefixes_choose_the_protocols() {
        use clap::Parser as _;
        let protos = |line: &str| {
            let mut words = vec!["sockeye", "scan"];
            words.extend(line.split_whitespace());
            match crate::cli::args::Cli::try_parse_from(words)
                .expect("parses")
                .command
            {
                crate::cli::args::Command::Scan(args) => protocols(&args),
                _ => unreachable!("a scan"),
            }
        };
        assert_eq!(protos("h"), (true, false));
        assert_eq!(protos("-p 22 h"), (true, false));
        assert_eq!(protos("--udp h"), (false, true));
        assert_eq!(protos("--udp --syn h"), (true, true));
        assert_eq!(protos("--udp --connect -p 53 h"), (true, true));
        assert_eq!(protos("-p U:53 h"), (false, true));
        assert_eq!(protos("-p U:53,T:22 h"), (true, true));
        assert_eq!(protos("-p 22,U:53 h"), (true, true));
        assert_eq!(protos("--udp -p T:22,U:53 h"), (true, true));
        assert_eq!(protos("--udp -p 22 h"), (false, true));
    }

    #[test]
    fn a_syn_flag_without_tcp_ports_opens_no_raw_socket() {
        use clap::Parser as _;
        let plan = |line: &str| {
            let mut words = vec!["sockeye", "scan"];
            words.extend(line.split_whitespace());
            match crate::cli::args::Cli::try_parse_from(words)
                .expect("parses")
                .command
            {
                crate::cli::args::Command::Scan(args) => ScanPlan::from_args(*args).expect("plan"),
                _ => unreachable!("a scan"),
            }
        };
        let udp_only = plan("--syn -p U:53 198.18.0.2");
        assert_eq!((udp_only.ports.len(), udp_only.udp_ports.len()), (0, 1));
        assert_eq!(udp_only.syn, Some(false));
        assert_eq!(plan("--syn -p T:22,U:53 198.18.0.2").syn, Some(true));
        assert_eq!(plan("--udp --connect -p 22 198.18.0.2").syn, Some(false));
        assert_eq!(plan("-p 22 198.18.0.2").syn, None);
    }
}
