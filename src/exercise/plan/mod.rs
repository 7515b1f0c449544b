//! Test plans: the written form (YAML, or TOML), and its compilation into
//! checks with expectations. A plan is refused whole, before anything runs,
//! when any part is wrong: the error gives the file, line and column, and
//! what was expected there. The schema is documented in the README
//! ("Test plans"); `tests/exercise_lab.rs` has the seed's FTP matrix.
//!
//! - [`spec`]: the plan as written (serde structs).
//! - [`compile`]: the written plan into the checks below: variables and
//!   matrices expanded, targets and sessions checked, `after` resolved.
//! - [`expect`]: expectations, and which fields each kind of check can test.
//! - this module: the compiled plan, ready to run.

pub mod compile;
pub mod expect;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use crate::probe::Service;
use crate::talk::Endpoint;
use crate::talk::script::{Conversation, Vars};

pub use compile::{DEFAULT_CONCURRENCY, MAX_CHECKS, compile_text, load};
pub use expect::{ExpectSpec, FlowVerdict, Outcome, PortWord};

/// What a check does.
#[derive(Debug, Clone)]
pub enum CheckKind {
    Connect {
        host: String,
        port: u16,
    },
    Probe {
        host: String,
        port: u16,
        service: Option<Service>,
        sni: Option<String>,
    },
    Talk {
        endpoint: Endpoint,
        conversation: Arc<Conversation>,
        vars: Arc<Vars>,
    },
    Calc {
        host: String,
        port: u16,
        op: String,
        args: Vec<String>,
        little_endian: bool,
    },
    Mail {
        host: String,
        port: u16,
        mail: Arc<MailCheck>,
    },
    /// A flow from agent `from`: to agent `to`'s address and `port`, or to
    /// an address; the nonce may arrive at `to` or at `listen_on`.
    Flow(Arc<FlowCheck>),
}

/// A flow check, its agents named and known to the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowCheck {
    pub from: String,
    pub to: FlowTo,
    pub port: u16,
    pub proto: crate::agent::wire::FlowProto,
    /// Other agents (and their ports) where the flow may arrive.
    pub listen_on: Vec<(String, u16)>,
    /// TCP ports of `to` that other flows of the plan, from the same agent,
    /// expect to be allowed: where a reference answer of the destination
    /// itself can be had, to tell its resets from a firewall's.
    pub reference_ports: Vec<u16>,
    /// Other agents the plan expects to reach the same destination, port
    /// and transport: a blocked verdict also needs a control flow from the
    /// first of them to arrive.
    pub control_from: Vec<String>,
}

impl FlowCheck {
    /// The agents it involves: the sender, the destination if an agent,
    /// and the other listeners.
    pub fn agents(&self) -> Vec<&str> {
        let mut names = vec![self.from.as_str()];
        if let FlowTo::Agent(to) = &self.to {
            names.push(to);
        }
        names.extend(self.listen_on.iter().map(|(a, _)| a.as_str()));
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Where a flow goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowTo {
    /// An agent: its address, learned from it; it listens on the port.
    Agent(String),
    /// An address nobody listens on for us, unless `listen_on` says so.
    Address(std::net::IpAddr),
}

/// A mail check's session, validated (addresses, names, secrets).
#[derive(Debug, Clone)]
pub struct MailCheck {
    pub dialogue: sockeye_proto::smtp::ClientOptions,
    /// `None`: the message is sent.
    pub quit_after: Option<crate::mail::QuitAfter>,
    pub insecure: bool,
    /// The plan's `defaults.ca_file`, then the check's own.
    pub ca_files: Vec<std::path::PathBuf>,
}

impl CheckKind {
    pub fn word(&self) -> &'static str {
        match self {
            CheckKind::Connect { .. } => "connect",
            CheckKind::Probe { .. } => "probe",
            CheckKind::Talk { .. } => "talk",
            CheckKind::Calc { .. } => "calc",
            CheckKind::Mail { .. } => "mail",
            CheckKind::Flow(_) => "flow",
        }
    }

    /// Where it goes, for reports.
    pub fn target(&self) -> String {
        match self {
            CheckKind::Connect { host, port }
            | CheckKind::Probe { host, port, .. }
            | CheckKind::Calc { host, port, .. }
            | CheckKind::Mail { host, port, .. } => crate::target::endpoint::host_port(host, *port),
            CheckKind::Talk { endpoint, .. } => endpoint.describe(),
            CheckKind::Flow(f) if f.proto == crate::agent::wire::FlowProto::Icmp => {
                let to = match &f.to {
                    FlowTo::Agent(name) => name.clone(),
                    FlowTo::Address(ip) => ip.to_string(),
                };
                format!("{} -> {to}/icmp", f.from)
            }
            CheckKind::Flow(f) => {
                let to = match &f.to {
                    FlowTo::Agent(name) => format!("{name}:{}", f.port),
                    FlowTo::Address(ip) => {
                        crate::target::endpoint::host_port(&ip.to_string(), f.port)
                    }
                };
                format!("{} -> {to}/{}", f.from, f.proto.word())
            }
        }
    }
}

/// One check, ready to run.
#[derive(Debug, Clone)]
pub struct Check {
    pub index: usize,
    pub name: String,
    pub kind: CheckKind,
    pub expect: ExpectSpec,
    /// Indices of the checks that must finish first.
    pub after: Vec<usize>,
    /// The agent it runs on, and what it is sent (`on:`); none: here.
    pub remote: Option<Remote>,
}

/// A check that runs on an agent: the agent's name, and the check as a
/// plan of one check (JSON; its variables filled in, its name final), which
/// the agent compiles and runs as this machine would.
#[derive(Debug, Clone)]
pub struct Remote {
    pub agent: String,
    pub plan: String,
}

/// A plan, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub ca_files: Vec<std::path::PathBuf>,
    /// The agents the checks name, in name order.
    pub agents: Vec<crate::agent::link::AgentSpec>,
    pub checks: Vec<Check>,
}
