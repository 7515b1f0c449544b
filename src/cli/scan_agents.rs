//! `sockeye scan --agents LABEL --plan PLAN`: one scan split across the
//! plan's agents that carry LABEL. Agent I of N runs shard I/N with one
//! seed (typed, or chosen here and printed with -v), built from typed
//! fields (`docs/agent-protocol.md`, action `scan`); their records are
//! merged as `sockeye report merge` merges shards, and printed in the
//! formats asked for. Like `--shard`, it runs no host discovery (every
//! shard must scan the same hosts). Ctrl-C stops every shard and prints
//! what they found.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::args::{ColorChoice, ScanArgs};
use super::run::{self, Notice, Threads};
use super::scan::{ScanPlan, make_sinks, tokens};
use super::{UsageError, exit};
use crate::agent::link::{AgentSpec, Link};
use crate::agent::wire::{ScanJob, ScanKind};
use crate::report::merge::merge;
use crate::scan::Template;
use crate::target::ports::compact_spec;

/// Runs `sockeye scan --agents LABEL --plan PLAN ...`.
pub(super) fn run(mut args: ScanArgs, color: ColorChoice) -> anyhow::Result<u8> {
    let command_line = run::command_line();
    let (Some(label), Some(plan_path)) = (args.agents.take(), args.plan.take()) else {
        return Err(UsageError::new("--agents LABEL needs --plan PLAN").into());
    };
    // Only what was typed (or the template's cap) goes to the agents: each
    // sizes its own window from its own open-file limit.
    let inflight = args
        .max_inflight
        .or(Template::level(args.timing.unwrap_or(3)).inflight);
    let pings = args.ping_echo
        || args.ping_timestamp
        || args.ping_arp
        || args.ping_syn.is_some()
        || args.ping_ack.is_some()
        || args.ping_udp.is_some();
    if pings && !args.no_ping {
        tracing::warn!(
            "--agents runs no host discovery (every shard must scan the same hosts): the -P probes typed are not sent"
        );
    }
    let scan = ScanPlan::from_args(args)?;
    if !scan.udp_ports.is_empty() {
        return Err(UsageError::new("--agents scans TCP ports only: drop the U: ports").into());
    }
    let plan =
        crate::exercise::plan::load(&plan_path).map_err(|e| UsageError::new(e.to_string()))?;
    let known: Vec<String> = {
        let mut all: Vec<String> = plan.agents.iter().flat_map(|a| a.labels.clone()).collect();
        all.sort();
        all.dedup();
        all
    };
    let specs: Vec<AgentSpec> = plan
        .agents
        .into_iter()
        .filter(|a| a.labels.contains(&label))
        .collect();
    if specs.is_empty() {
        return Err(UsageError::new(format!(
            "--agents {label}: no agent of {} has the label {label:?} (labels: {})",
            plan_path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into());
    }
    let job = ScanJob {
        targets: scan.specs.iter().map(|(t, _)| t.clone()).collect(),
        excludes: scan.excludes.iter().map(|(t, _)| t.clone()).collect(),
        first_address: scan.first_address,
        ports: compact_spec(&scan.ports),
        // The agents' default is the connect scan: a SYN scan is asked for.
        scan_type: if scan.syn == Some(true) {
            ScanKind::Syn
        } else {
            ScanKind::Connect
        },
        seed: scan.engine.seed,
        shard: 0,
        shards: 1,
        all_states: scan.all_states,
        retries: scan.engine.retries,
        min_rtt_ms: millis(scan.engine.rtt.min),
        max_rtt_ms: millis(scan.engine.rtt.max),
        initial_rtt_ms: millis(scan.engine.rtt.initial),
        rate: scan.engine.rate,
        max_inflight: inflight.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    tracing::debug!(
        targets = %tokens(&scan.specs),
        agents = specs.len(),
        "scan split across agents"
    );
    // Every output file is opened before anything is sent.
    let sink = make_sinks(&scan.outputs, scan.all_states, color, None)?;
    let runtime = run::runtime(Threads::Many(Some(2)))?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        run::cancel_on_signals(cancel.clone(), Notice::Results);
        if scan.random_seed {
            tracing::info!(seed = job.seed, "probe order seed");
        }
        let started = futures::future::join_all(specs.iter().map(Link::start)).await;
        let mut links = Vec::with_capacity(started.len());
        for link in started {
            links.push(Arc::new(link.map_err(anyhow::Error::new)?));
        }
        let gathered = crate::agent::shards::scan(&links, &job, &cancel).await;
        for link in links {
            if let Ok(link) = Arc::try_unwrap(link) {
                link.close().await;
            }
        }
        let gathered = gathered.map_err(UsageError::new)?;
        for why in &gathered.lost {
            tracing::warn!("{why}: its shard is partial");
        }
        let merged =
            merge(&gathered.files, command_line).context("the agents' shards do not merge")?;
        if !cancel.is_cancelled() {
            for file in &merged.interrupted {
                tracing::warn!("{file}: its shard was interrupted; the result is partial");
            }
        }
        super::report::write_merged(sink, &merged)?;
        Ok(if cancel.is_cancelled() {
            exit::INTERRUPTED
        } else if !gathered.lost.is_empty() || merged.summary.ports == 0 {
            exit::FAILURE
        } else {
            exit::OK
        })
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
