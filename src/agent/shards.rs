//! The controller's side of a scan split across agents (`sockeye scan
//! --agents LABEL`): agent `i` of `N` runs shard `i/N` of one scan (one
//! seed), and its records come back as the JSON Lines `scan --shard I/N -o
//! json` would have written, ready for [`crate::report::merge`].
//!
//! When the caller stops (Ctrl-C), each agent is asked to stop its shard
//! and answers with what it found so far; an agent that refuses its shard
//! (a target outside its `--allow-targets`) stops the others, and the
//! refusal is the error.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::wire::{Action, Event, Outcome, ScanJob};
use crate::report::merge::ShardFile;
use crate::report::records::{self, Record, ScanSummary, StateCounts};

/// How long a stopped agent has to send the rest of its shard.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The shards gathered from the agents, in shard order.
#[derive(Debug)]
pub struct Gathered {
    /// One file per agent, named after the agent.
    pub files: Vec<ShardFile>,
    /// Agents that went away mid-shard (one line each): their shards are
    /// partial.
    pub lost: Vec<String>,
}

/// Runs `job` split across `links` (shard `i` on `links[i]`) until every
/// shard ends, or `stop` is cancelled and the agents have stopped theirs.
/// A shard an agent refuses is the error, in one line naming the agent.
pub async fn scan(
    links: &[Arc<Link>],
    job: &ScanJob,
    stop: &CancellationToken,
) -> Result<Gathered, String> {
    let count = u32::try_from(links.len()).map_err(|_| "too many agents".to_string())?;
    // A refusal stops the other shards; Ctrl-C stops them all.
    let abort = stop.child_token();
    let runs = links.iter().enumerate().map(|(i, link)| {
        let mut job = job.clone();
        job.shard = i as u32;
        job.shards = count;
        let abort = abort.clone();
        async move {
            let r = one(link, job, &abort).await;
            if r.is_err() {
                abort.cancel();
            }
            r
        }
    });
    let results = futures::future::join_all(runs).await;
    let mut gathered = Gathered {
        files: Vec::with_capacity(results.len()),
        lost: Vec::new(),
    };
    let mut first_error = None;
    for r in results {
        match r {
            Ok((file, lost)) => {
                gathered.files.push(file);
                gathered.lost.extend(lost);
            }
            // The first refusal is the cause; the others were stopped by it.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(gathered),
    }
}

/// One agent's shard: its records, and why it is partial if its agent
/// went away.
async fn one(
    link: &Link,
    job: ScanJob,
    stop: &CancellationToken,
) -> Result<(ShardFile, Option<String>), String> {
    if !link.welcome.capabilities.iter().any(|c| c == "scan") {
        return Err(format!(
            "agent {}: its sockeye {} does not run scan shards (no \"scan\" capability)",
            link.name, link.welcome.sockeye
        ));
    }
    let mut running = link
        .request(&Action::Scan(job))
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    let mut events_open = true;
    let mut stopping = false;
    let mut timed_out = false;
    // Armed when the shard is stopped; until then, never.
    let give_up = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(give_up);
    let outcome = loop {
        tokio::select! {
            biased;
            e = running.events.recv(), if events_open => match e {
                Some(Event::Records { lines }) => text.push_str(&lines),
                Some(_) => {}
                None => events_open = false,
            },
            o = &mut running.outcome => break o.ok(),
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                let _ = link.request(&Action::Stop { request: running.id }).await;
                give_up.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
            }
            () = &mut give_up => {
                timed_out = true;
                break None;
            }
        }
    };
    while let Ok(Event::Records { lines }) = running.events.try_recv() {
        text.push_str(&lines);
    }
    let lost = match outcome {
        Some(Outcome::Scanned { .. }) => None,
        Some(Outcome::Refused { reason }) => return Err(format!("agent {}: {reason}", link.name)),
        Some(other) => {
            return Err(format!(
                "agent {}: answered a scan with {other:?}",
                link.name
            ));
        }
        None if timed_out => Some(format!(
            "agent {}: did not finish its shard within {} s of being stopped",
            link.name,
            STOP_GRACE.as_secs()
        )),
        None => Some(link.gone().to_string()),
    };
    let mut records = records::read(text.as_bytes())
        .map_err(|e| format!("agent {}: its records: {e}", link.name))?;
    if !matches!(records.first(), Some(Record::Run(_))) {
        return Err(match lost {
            Some(why) => why,
            None => format!("agent {}: its shard has no run record", link.name),
        });
    }
    if !records.iter().any(|r| matches!(r, Record::Summary(_))) {
        records.push(Record::Summary(partial_summary(&records)));
    }
    Ok((
        ShardFile {
            name: format!("agent {}", link.name),
            records,
        },
        lost,
    ))
}

/// The summary of a shard whose agent went away before writing its own:
/// the counts of the hosts it finished, marked interrupted.
fn partial_summary(records: &[Record]) -> ScanSummary {
    let mut states = StateCounts::default();
    let mut hosts = 0;
    for r in records {
        if let Record::Host(h) = r {
            hosts += 1;
            states.open += h.states.open;
            states.closed += h.states.closed;
            states.filtered += h.states.filtered;
            states.open_filtered += h.states.open_filtered;
        }
    }
    ScanSummary {
        command: "scan".into(),
        hosts,
        ports: states.open + states.closed + states.filtered + states.open_filtered,
        states,
        elapsed_ms: 0.0,
        interrupted: true,
        note: None,
    }
}
