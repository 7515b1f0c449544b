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
use crate::agent::link::{Link, Running, Supervised};
use crate::agent::wire::{Action, Event, FlowProto, Outcome, SenderSaw};
use crate::report::check::FlowRecord;

/// The plan's agents, connected (and started again when they go away), by
/// name.
pub type Agents = HashMap<String, Arc<Supervised>>;

/// What earlier flows of a run saw, by sender, destination and transport:
/// a timeout where an identical flow got an ICMP error is likely one that
/// a rate limit suppressed, and the report says so.
#[derive(Debug, Default)]
pub struct History(std::sync::Mutex<HashMap<(String, SocketAddr, FlowProto), SenderSaw>>);

impl History {
    /// Records `saw`; returns the ICMP error an earlier identical flow got
    /// when this one timed out.
    fn note(&self, key: (String, SocketAddr, FlowProto), saw: SenderSaw) -> Option<SenderSaw> {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = seen.get(&key).copied();
        if saw != SenderSaw::Timeout || before.is_none_or(|b| !is_icmp(b)) {
            seen.insert(key, saw);
        }
        before.filter(|b| saw == SenderSaw::Timeout && is_icmp(*b))
    }
}

fn is_icmp(saw: SenderSaw) -> bool {
    matches!(
        saw,
        SenderSaw::IcmpAdminProhibited
            | SenderSaw::IcmpHostUnreachable
            | SenderSaw::IcmpNetUnreachable
            | SenderSaw::IcmpPortUnreachable
    )
}

/// What the sender of a flow got back.
#[derive(Debug, Clone, Copy)]
struct Sent {
    saw: SenderSaw,
    source: Option<SocketAddr>,
    ttl: Option<u8>,
    icmp_from: Option<IpAddr>,
}

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
    history: &History,
    timeout: Duration,
) -> Result<FlowRecord, String> {
    let link = |name: &str| {
        agents
            .get(name)
            .map(|a| a.link())
            .ok_or_else(|| format!("agent {name} is not connected"))
    };
    let sender = link(&flow.from)?;
    let icmp = flow.proto == FlowProto::Icmp;
    let (dest_ip, to_text) = match &flow.to {
        FlowTo::Agent(name) if icmp => (address_of(link(name)?.as_ref())?, name.clone()),
        FlowTo::Address(ip) if icmp => (*ip, ip.to_string()),
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
    // The destination agent listens on the address sent to only (a service
    // of its own may hold the port elsewhere, on its management address);
    // the others where DNAT may send the flow, on every address.
    let mut wanted: Vec<(String, u16, Option<IpAddr>)> = Vec::new();
    if let FlowTo::Agent(name) = &flow.to {
        wanted.push((name.clone(), flow.port, Some(dest_ip)));
    }
    wanted.extend(flow.listen_on.iter().map(|(a, p)| (a.clone(), *p, None)));
    let mut listeners = Vec::new();
    for (agent, port, address) in wanted {
        let l = link(&agent)?;
        let mut running = l
            .request(&Action::Listen {
                proto: flow.proto,
                port,
                address,
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
    let sent = send(&sender, flow, dest, &nonce, timeout, false).await?;
    let (saw, source) = (sent.saw, sent.source);
    evidence.push(format!(
        "{} sent {} to {dest}: {}",
        flow.from,
        flow.proto.word(),
        saw.word()
    ));
    if let Some(before) = history.note((flow.from.clone(), dest, flow.proto), saw) {
        evidence.push(format!(
            "an identical flow earlier in this run got {}: hosts and firewalls rate-limit the ICMP errors they send, so this timeout may be one that was held back",
            before.word()
        ));
    }
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
        proxy: false,
        unconfirmed: listeners.is_empty(),
        blocked_by: "unknown".into(),
        evidence,
        other: Default::default(),
    };
    if let Some((agent, port, seen)) = arrived {
        record.verdict = FlowVerdict::Allowed.word().into();
        record.arrived_at = Some(if icmp {
            agent.clone()
        } else {
            format!("{agent}:{port}")
        });
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
        if matches!(saw, SenderSaw::Connected | SenderSaw::NoEcho) {
            record.proxy = true;
            record.evidence.push(format!(
                "proxy suspected: {} connected to {dest}, yet the nonce arrived at no listener: something else answered the handshake",
                flow.from
            ));
        }
        // Control: the first listener's host sends to itself, on the same
        // address and port. Its path is this host's own (loopback routing),
        // not the tested one: it proves only that the listener answers.
        let control_agent = listeners[0].agent.clone();
        let control_nonce = format!("{nonce}-control");
        let control_link = link(&control_agent)?;
        let control_saw = send(&control_link, flow, dest, &control_nonce, timeout, false)
            .await?
            .saw;
        let control = wait_for(&mut arrivals, &control_nonce, ARRIVAL_GRACE).await;
        // A second control from an agent the plan says may reach the
        // listener: the network delivers there, only this path does not.
        let mut reachable = true;
        if control.is_some()
            && let Some(other) = flow.control_from.first()
        {
            let nonce2 = format!("{nonce}-control-{other}");
            let saw2 = send(link(other)?.as_ref(), flow, dest, &nonce2, timeout, false)
                .await?
                .saw;
            if wait_for(&mut arrivals, &nonce2, ARRIVAL_GRACE)
                .await
                .is_some()
            {
                record.evidence.push(format!(
                    "control flow from {other} (which the plan expects to be allowed) to {dest} arrived: the network delivers to the listener, not from {}",
                    flow.from
                ));
            } else {
                reachable = false;
                record.evidence.push(format!(
                    "control flow from {other} (which the plan expects to be allowed) to {dest} did not arrive ({}): the listener may be unreachable from the network, so this is not shown blocked",
                    saw2.word()
                ));
            }
        }
        if control.is_some() && reachable {
            record.verdict = FlowVerdict::Blocked.word().into();
            record.evidence.push(format!(
                "control flow from {control_agent} itself to {dest} (this host's own path, not the tested one) arrived: the listener works"
            ));
            let (who, why) = who_blocked(flow, agents, &sender, dest, &sent, &nonce, timeout).await;
            record.blocked_by = who.into();
            record.evidence.push(why);
        } else if control.is_none() {
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

/// The address other agents reach `agent` at: IPv4 before IPv6, and in a
/// family an address other than its management one (the address the
/// controller reached it at) when it has another.
fn address_of(agent: &Link) -> Result<IpAddr, String> {
    let addrs = &agent.welcome.addresses;
    let management = agent.welcome.management;
    let zone = |a: &&IpAddr| Some(**a) != management;
    addrs
        .iter()
        .filter(|a| a.is_ipv4())
        .find(zone)
        .or_else(|| addrs.iter().find(|a| a.is_ipv4()))
        .or_else(|| addrs.iter().find(zone))
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
    ttl: bool,
) -> Result<Sent, String> {
    let action = Action::Send {
        proto: flow.proto,
        target: dest,
        nonce: nonce.to_string(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        ttl,
    };
    match from.call(&action).await.map_err(|e| e.to_string())? {
        Outcome::Sent {
            saw,
            source,
            ttl,
            icmp_from,
            ..
        } => Ok(Sent {
            saw,
            source,
            ttl,
            icmp_from,
        }),
        Outcome::Refused { reason } => Err(format!("agent {}: {reason}", from.name)),
        other => Err(format!(
            "agent {}: answered the send with {other:?}",
            from.name
        )),
    }
}

/// Who stopped a blocked flow, and the evidence: an ICMP error by its
/// source (the destination's own, or another address on the path); a reset
/// by its TTL against the destination's own, read from an allowed flow to
/// another port of it (a firewall that forges a reset in the destination's
/// name sends it from fewer hops away); silence says nothing of who.
async fn who_blocked(
    flow: &FlowCheck,
    agents: &Agents,
    sender: &Link,
    dest: SocketAddr,
    sent: &Sent,
    nonce: &str,
    timeout: Duration,
) -> (&'static str, String) {
    if is_icmp(sent.saw) {
        return match sent.icmp_from {
            Some(ip) if ip == dest.ip() => (
                "destination",
                format!("the ICMP error came from {ip}, the destination itself"),
            ),
            Some(ip) => (
                "firewall",
                format!(
                    "the ICMP error came from {ip}, not from the destination {}: a device on the path",
                    dest.ip()
                ),
            ),
            None => ("unknown", "the ICMP error's source is not known".into()),
        };
    }
    if sent.saw != SenderSaw::Reset {
        return (
            "unknown",
            format!(
                "{}: a drop, on the path or at the destination, does not say who",
                sent.saw.word()
            ),
        );
    }
    // The reset again, its TTL read this time.
    let again = match send(sender, flow, dest, &format!("{nonce}-ttl"), timeout, true).await {
        Ok(s) => s,
        Err(e) => return ("unknown", format!("the reset could not be sent again: {e}")),
    };
    let (SenderSaw::Reset, Some(reset_ttl)) = (again.saw, again.ttl) else {
        return (
            "unknown",
            format!(
                "the reset's TTL could not be read (IPv4 only, and agent {} needs CAP_NET_RAW); a second try saw {}",
                sender.name,
                again.saw.word()
            ),
        );
    };
    let FlowTo::Agent(to) = &flow.to else {
        return (
            "unknown",
            format!(
                "reset with TTL {reset_ttl}; the destination is not an agent, so its own TTL is not known"
            ),
        );
    };
    let Some(to_link) = agents.get(to).map(|a| a.link()) else {
        return ("unknown", format!("agent {to} is not connected"));
    };
    for &port in flow.reference_ports.iter().take(2) {
        let Some(own) =
            reference_ttl(sender, &to_link, flow, dest.ip(), port, nonce, timeout).await
        else {
            continue;
        };
        return if own == reset_ttl {
            (
                "destination",
                format!(
                    "the reset arrived with TTL {reset_ttl}, as the destination's own answers do (TTL {own} on port {port}, an allowed flow)"
                ),
            )
        } else {
            (
                "firewall",
                format!(
                    "the reset arrived with TTL {reset_ttl}, the destination's own answers with TTL {own} (port {port}, an allowed flow): something on the path sent it in the destination's name"
                ),
            )
        };
    }
    (
        "unknown",
        format!(
            "reset with TTL {reset_ttl}; no allowed TCP flow from {} to {to} answered, so the destination's own TTL is not known",
            sender.name
        ),
    )
}

/// The TTL the destination's own SYN-ACK arrives with: `to` listens on
/// `port`, the sender's flow must arrive there (so the answer is surely the
/// destination's), and the agent reads the TTL.
async fn reference_ttl(
    sender: &Link,
    to: &Link,
    flow: &FlowCheck,
    ip: IpAddr,
    port: u16,
    nonce: &str,
    timeout: Duration,
) -> Option<u8> {
    let mut running = to
        .request(&Action::Listen {
            proto: FlowProto::Tcp,
            port,
            address: Some(ip),
        })
        .await
        .ok()?;
    let ready = matches!(
        tokio::time::timeout(READY_TIMEOUT, running.events.recv()).await,
        Ok(Some(Event::Listening { .. }))
    );
    let mut ttl = None;
    if ready {
        let reference = format!("{nonce}-ref{port}");
        if let Ok(s) = send(
            sender,
            flow,
            SocketAddr::new(ip, port),
            &reference,
            timeout,
            true,
        )
        .await
            && s.saw == SenderSaw::Connected
        {
            // Arrived at the listener: the SYN-ACK was the destination's.
            let deadline = tokio::time::Instant::now() + ARRIVAL_GRACE;
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, running.events.recv()).await {
                if matches!(&e, Event::Arrived { nonce: n, .. } if *n == reference) {
                    ttl = s.ttl;
                    break;
                }
            }
        }
    }
    let _ = to
        .call(&Action::Stop {
            request: running.id,
        })
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), running.outcome).await;
    ttl
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
        if let Some(link) = agents.get(&l.agent).map(|a| a.link()) {
            let _ = link
                .call(&Action::Stop {
                    request: l.running.id,
                })
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), l.running.outcome).await;
    }
}

/// The flows of `checks` that ask an agent to listen on a port its
/// `--allow-listen` refuses, one line each: a plan error found before any
/// check runs, rather than a failed check after others ran.
pub fn listen_limits(checks: &[super::plan::Check], agents: &Agents) -> Vec<String> {
    let mut bad = Vec::new();
    for c in checks {
        let super::plan::CheckKind::Flow(f) = &c.kind else {
            continue;
        };
        if f.proto == FlowProto::Icmp {
            continue;
        }
        let mut wanted: Vec<(&str, u16)> =
            f.listen_on.iter().map(|(a, p)| (a.as_str(), *p)).collect();
        if let FlowTo::Agent(to) = &f.to {
            wanted.insert(0, (to.as_str(), f.port));
        }
        for (agent, port) in wanted {
            if let Some(link) = agents.get(agent).map(|a| a.link())
                && !link.welcome.limits.may_listen(port)
            {
                bad.push(format!(
                    "check {:?}: agent {agent} may not listen on {}/{port} (its --allow-listen: {})",
                    c.name,
                    f.proto.word(),
                    link.welcome.limits.allow_listen
                ));
            }
        }
    }
    bad
}

/// Starts every agent of a plan (all at once), or names the first that
/// could not be reached.
pub async fn start(specs: &[crate::agent::link::AgentSpec]) -> Result<Agents, String> {
    let started =
        futures::future::join_all(specs.iter().map(|s| Supervised::start(s.clone()))).await;
    let mut agents = Agents::new();
    for (spec, r) in specs.iter().zip(started) {
        let link = r.map_err(|e| e.to_string())?;
        agents.insert(spec.name.clone(), Arc::new(link));
    }
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_after_an_identical_flows_icmp_error_is_noted() {
        let h = History::default();
        let key = |port| {
            (
                "a".to_string(),
                SocketAddr::from(([198, 18, 2, 2], port)),
                FlowProto::Tcp,
            )
        };
        assert_eq!(h.note(key(25), SenderSaw::IcmpAdminProhibited), None);
        assert_eq!(
            h.note(key(25), SenderSaw::Timeout),
            Some(SenderSaw::IcmpAdminProhibited)
        );
        // Still remembered after the timeout; another port is another flow.
        assert_eq!(
            h.note(key(25), SenderSaw::Timeout),
            Some(SenderSaw::IcmpAdminProhibited)
        );
        assert_eq!(h.note(key(26), SenderSaw::Timeout), None);
        // A timeout after a reset or a connect is not an ICMP rate limit.
        assert_eq!(h.note(key(27), SenderSaw::Reset), None);
        assert_eq!(h.note(key(27), SenderSaw::Timeout), None);
    }
}
