//! A plan as its author writes it: the serde structs for YAML and TOML,
//! refusing unknown fields, with the check names spanned so that the
//! compiler can point at them. Nothing here is validated beyond its shape;
//! [`super::compile`] does the rest.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::expect::ExpectField;
use crate::talk::script::{Eol, StepSpec, TimeText};

/// A whole plan as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    pub name: Option<String>,
    /// Checks running at once (default 32).
    pub concurrency: Option<usize>,
    /// Run the checks one after another, in the order written.
    #[serde(default)]
    pub sequential: bool,
    /// Variables every check may use as `{{name}}`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub defaults: Defaults,
    /// Agents by name: where checks and flows run besides this machine.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    /// At least one, unless the plan only names agents (`scan --agents`).
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

/// An agent as written: how it is reached and the limits its command line
/// gets (`docs/agent-protocol.md`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// `local`, `netns:NAME`, `exec:COMMAND ARGS`, `ssh://[USER@]HOST[:PORT]`.
    pub via: String,
    /// `--allow-listen`: the ports it may listen on (flows to it need them).
    pub allow_listen: Option<String>,
    /// `--allow-targets`: the networks it may send to.
    pub allow_targets: Option<String>,
    /// `--max-rate`.
    pub max_rate: Option<u32>,
    /// The sockeye command on the far side of `ssh://` and `exec:`
    /// (default `sockeye`, found on its PATH).
    pub command: Option<String>,
    /// An OpenSSH configuration file for `ssh://` (`ssh -F`), relative to
    /// the plan's folder; the user's own otherwise.
    pub ssh_config: Option<String>,
    /// `ssh://`, `exec:`: send this sockeye binary and run it (`--push`
    /// for every agent).
    #[serde(default)]
    pub push: bool,
    /// Labels for selecting agents (`scan --agents LABEL`).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `flow`: does traffic from one agent reach another (or an address)?
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    /// The sending agent.
    pub from: String,
    /// An agent (its address) or `ADDRESS:PORT`.
    pub to: String,
    /// The port, when `to` is an agent.
    pub port: Option<Scalar>,
    /// `tcp` (default) or `udp`.
    pub proto: Option<String>,
    /// Other agents where the traffic may arrive (`AGENT:PORT`), as after a DNAT.
    #[serde(default)]
    pub listen_on: Vec<String>,
}

/// Timeouts and trust shared by every check.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Connect timeout (default 3s).
    pub connect_timeout: Option<TimeText>,
    /// A talk step's wait, a probe's reads (default 5s).
    pub timeout: Option<TimeText>,
    /// CA certificates (PEM) trusted besides the system's, for verdicts.
    #[serde(default)]
    pub ca_file: Vec<String>,
}

/// One check as written: a name, exactly one kind, an expectation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: Spanned<String>,
    /// `HOST:PORT`: is it open, closed or filtered?
    pub connect: Option<String>,
    pub probe: Option<ProbeSpec>,
    pub talk: Option<TalkSpec>,
    pub calc: Option<CalcSpec>,
    pub mail: Option<MailSpec>,
    pub flow: Option<FlowSpec>,
    /// The agent this check runs on (default: this machine). Not for flows,
    /// which run between their own agents.
    pub on: Option<String>,
    /// Check names (or matrix names) that must finish before this one starts.
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    /// One conversation over a table of parameters: each row's values are
    /// variables, and its optional `expect` overrides the check's.
    pub matrix: Option<Vec<BTreeMap<String, Scalar>>>,
    pub expect: Option<ExpectField>,
}

/// `probe`: what answers on a port, checked by content.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub target: String,
    /// The service expected there (smtp, pop3s, ...); default: the port's.
    pub service: Option<String>,
    pub sni: Option<String>,
}

/// `talk`: a conversation, inline (`steps`) or from a script file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalkSpec {
    /// `HOST:PORT`.
    pub target: Option<String>,
    /// A command run on a pty (split on spaces; no shell).
    pub spawn: Option<String>,
    #[serde(default)]
    pub tls: bool,
    pub sni: Option<String>,
    pub eol: Option<Eol>,
    pub timeout: Option<TimeText>,
    pub max_buffer: Option<usize>,
    pub steps: Option<Vec<StepSpec>>,
    /// A script file (relative to the plan's folder).
    pub script: Option<String>,
}

/// `calc`: one request to a calculator server and its answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalcSpec {
    pub server: String,
    pub op: String,
    #[serde(default)]
    pub args: Vec<i64>,
    #[serde(default)]
    pub little_endian: bool,
}

/// `mail`: an SMTP session (`sockeye mail`), stopped after a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSpec {
    /// `HOST:PORT`.
    pub server: String,
    /// The envelope sender; "" for the null sender.
    #[serde(default)]
    pub from: String,
    /// Recipients: a list, or one comma-separated text.
    pub to: AddressList,
    /// The step to stop after (QUIT); default `rcpt`, so no message is sent
    /// unless the plan says `none`.
    #[serde(
        default,
        deserialize_with = "crate::mail::QuitAfter::deserialize_or_none"
    )]
    pub quit_after: Option<Option<crate::mail::QuitAfter>>,
    /// Default `optional`: STARTTLS when offered.
    pub tls: Option<TlsWord>,
    pub auth_user: Option<String>,
    pub auth_password: Option<String>,
    /// Do not verify the server's certificate.
    #[serde(default)]
    pub insecure: bool,
    /// CA certificates (PEM) trusted besides the system's and `defaults.ca_file`.
    #[serde(default)]
    pub ca_file: Vec<String>,
}

/// A mail check's `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AddressList {
    One(String),
    Many(Vec<String>),
}

/// A mail check's `tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsWord {
    /// STARTTLS, or fail at `tls`.
    Starttls,
    /// TLS from the first byte (port 465).
    OnConnect,
    /// STARTTLS when offered.
    Optional,
    /// Plain text.
    None,
}

/// A matrix cell: text, a number or a boolean, used as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(s.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Scalar, E> {
                Ok(Scalar(b.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
