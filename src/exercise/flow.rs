//! A flow check: does traffic from one agent reach another (or an
//! address), and if not, who stopped it? The listening agents open their
//! listeners first and confirm; the sender carries a per-check nonce; the
//! nonce arriving somewhere is ALLOWED. Arriving nowhere is BLOCKED only
//! when a control flow from the listener's own host reached the listener
//! (the listener works, so the path stopped it); otherwise INCONCLUSIVE,
//! never a false BLOCKED.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::plan::{FlowCheck, FlowTo, FlowVerdict};
use crate::agent::link::{Link, Running};
use crate::agent::wire::{Action, Event, Outcome, SenderSaw};
use crate::report::check::FlowRecord;

/// The plan's agents, connected, by name.
pub type Agents = HashMap<String, Arc<Link>>;

/// How long a listener has to say it is open.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long arrivals may trail the sender's outcome.
const ARRIVAL_GRACE: Duration = Duration::from_millis(300);

/// A listener of this flow: the agent, its port, its request.
struct Listener {
    agent: String,
    port: u16,
    running: Running,
}

/// Runs `flow` (check number `index`), waiting `timeout` for the sender.
pub async fn run(
    flow: &FlowCheck,
    index: usize,
    agents: &Agents,
    timeout: Duration,
) -> Result<FlowRecord, String> {
    let link = |name: &str| {
        agents
            .get(name)
            .cloned()
            .ok_or_else(|| format!("agent {name} is not connected"))
    };
    let sender = link(&flow.from)?;
    let (dest_ip, to_text) = match &flow.to {
        FlowTo::Agent(name) => (
            address_of(link(name)?.as_ref())?,
            format!("{name}:{}", flow.port),
        ),
        FlowTo::Address(ip) => (
            *ip,
            crate::target::endpoint::host_port(&ip.to_string(), flow.port),
        ),
    };
    let dest = SocketAddr::new(dest_ip, flow.port);
    let mut evidence = Vec::new();
    // Listeners first, each confirmed open.
    let mut wanted: Vec<(String, u16)> = Vec::new();
    if let FlowTo::Agent(name) = &flow.to {
        wanted.push((name.clone(), flow.port));
    }
    wanted.extend(flow.listen_on.iter().cloned());
    let mut listeners = Vec::new();
    for (agent, port) in wanted {
        let l = link(&agent)?;
        let mut running = l
            .request(&Action::Listen {
                proto: flow.proto,
                port,
            })
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(READY_TIMEOUT, running.events.recv()).await {
            Ok(Some(Event::Listening { .. })) => {}
            _ => {
                let why = match tokio::time::timeout(READY_TIMEOUT, &mut running.outcome).await {
                    Ok(Ok(Outcome::Refused { reason })) => reason,
                    _ => "it did not open its listener".into(),
                };
                stop_all(agents, listeners).await;
                return Err(format!("agent {agent}: {why}"));
            }
        }
        evidence.push(format!("{agent} listens on {}/{port}", flow.proto.word()));
        listeners.push(Listener {
            agent,
            port,
            running,
        });
    }
    // Every listener's arrivals on one channel.
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel();
    let mut forwarders = Vec::new();
    for l in &mut listeners {
        let (agent, port) = (l.agent.clone(), l.port);
        let (fwd_tx, fwd) = mpsc::unbounded_channel::<Event>();
        let events = std::mem::replace(&mut l.running.events, fwd);
        drop(fwd_tx);
        let tx = arrivals_tx.clone();
        forwarders.push(tokio::spawn(forward(events, tx, agent, port)));
    }
    drop(arrivals_tx);

    let nonce = nonce(index);
    let sent = send(&sender, flow, dest, &nonce, timeout).await?;
    let (saw, source) = sent;
    evidence.push(format!(
        "{} sent {} to {dest}: {}",
        flow.from,
        flow.proto.word(),
        saw.word()
    ));
    let arrived = wait_for(&mut arrivals, &nonce, ARRIVAL_GRACE).await;

    let mut record = FlowRecord {
        from: flow.from.clone(),
        to: to_text,
        address: dest.to_string(),
        proto: flow.proto.word().into(),
        port: flow.port,
        verdict: FlowVerdict::Inconclusive.word().into(),
        sender_saw: saw.word().into(),
        arrived_at: None,
        source_seen: None,
        nat: false,
        redirect: false,
        unconfirmed: listeners.is_empty(),
        blocked_by: "unknown".into(),
        evidence,
    };
    if let Some((agent, port, seen)) = arrived {
        record.verdict = FlowVerdict::Allowed.word().into();
        record.arrived_at = Some(format!("{agent}:{port}"));
        record.source_seen = Some(seen.ip().to_string());
        record.nat = source.is_some_and(|s| s.ip() != seen.ip());
        record.redirect = !matches!(&flow.to, FlowTo::Agent(name) if *name == agent);
        record.evidence.push(format!(
            "the nonce arrived at {agent}:{port} from {}",
            seen.ip()
        ));
    } else if listeners.is_empty() {
        // Only the sender's view: something answering is not the agent's
        // proof, and silence may be a dead host.
        record
            .evidence
            .push("no agent listened: the sender's view only".into());
        if matches!(saw, SenderSaw::Connected | SenderSaw::Reply) {
            record.verdict = FlowVerdict::Allowed.word().into();
        }
    } else {
        record
            .evidence
            .push("the nonce arrived at no listener".into());
        // Control: the first listener's host sends to itself, on the same
        // address and port. Its path is this host's own (loopback routing),
        // not the tested one: it proves only that the listener answers.
        let control_agent = listeners[0].agent.clone();
        let control_nonce = format!("{nonce}-control");
        let control_link = link(&control_agent)?;
        let (control_saw, _) = send(&control_link, flow, dest, &control_nonce, timeout).await?;
        let control = wait_for(&mut arrivals, &control_nonce, ARRIVAL_GRACE).await;
        if control.is_some() {
            record.verdict = FlowVerdict::Blocked.word().into();
            record.evidence.push(format!(
                "control flow from {control_agent} itself to {dest} (this host's own path, not the tested one) arrived: the listener works"
            ));
        } else {
            record.evidence.push(format!(
                "control flow from {control_agent} itself to {dest} did not arrive ({}): the listener is not reachable even locally",
                control_saw.word()
            ));
        }
    }
    stop_all(agents, listeners).await;
    for f in forwarders {
        f.abort();
    }
    Ok(record)
}

/// The address other agents reach `agent` at: its first IPv4 address, else
/// its first address.
fn address_of(agent: &Link) -> Result<IpAddr, String> {
    let addrs = &agent.welcome.addresses;
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("agent {} has no address but loopback", agent.name))
}

/// A nonce unique to this check and run.
fn nonce(index: usize) -> String {
    let tag: u64 = rand::random();
    format!("c{index}-{tag:016x}")
}

async fn send(
    from: &Link,
    flow: &FlowCheck,
    dest: SocketAddr,
    nonce: &str,
    timeout: Duration,
) -> Result<(SenderSaw, Option<SocketAddr>), String> {
    let action = Action::Send {
        proto: flow.proto,
        target: dest,
        nonce: nonce.to_string(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match from.call(&action).await.map_err(|e| e.to_string())? {
        Outcome::Sent { saw, source, .. } => Ok((saw, source)),
        Outcome::Refused { reason } => Err(format!("agent {}: {reason}", from.name)),
        other => Err(format!(
            "agent {}: answered the send with {other:?}",
            from.name
        )),
    }
}

async fn forward(
    mut events: mpsc::UnboundedReceiver<Event>,
    tx: mpsc::UnboundedSender<(String, u16, Event)>,
    agent: String,
    port: u16,
) {
    while let Some(e) = events.recv().await {
        if tx.send((agent.clone(), port, e)).is_err() {
            break;
        }
    }
}

/// The first arrival of `nonce` within `grace` (arrivals of other nonces
/// are not this flow's).
async fn wait_for(
    arrivals: &mut mpsc::UnboundedReceiver<(String, u16, Event)>,
    nonce: &str,
    grace: Duration,
) -> Option<(String, u16, SocketAddr)> {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((
                agent,
                port,
                Event::Arrived {
                    nonce: n, source, ..
                },
            ))) if n == nonce => {
                return Some((agent, port, source));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn stop_all(agents: &Agents, listeners: Vec<Listener>) {
    for l in listeners {
        if let Some(link) = agents.get(&l.agent) {
            let _ = link
                .call(&Action::Stop {
                    request: l.running.id,
                })
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), l.running.outcome).await;
    }
}

/// Starts every agent of a plan (all at once), or names the first that
/// could not be reached.
pub async fn start(specs: &[crate::agent::link::AgentSpec]) -> Result<Agents, String> {
    let started = futures::future::join_all(specs.iter().map(Link::start)).await;
    let mut agents = Agents::new();
    for (spec, r) in specs.iter().zip(started) {
        let link = r.map_err(|e| e.to_string())?;
        agents.insert(spec.name.clone(), Arc::new(link));
    }
    Ok(agents)
}
