//! The verdicts of a test plan (`sockeye exercise run`): one
//! [`CheckResult`] per check, what a mail check's session did, and the
//! totals of a run. The plan runner emits them; the printers in
//! [`super::plan`] render them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ServiceResult;

/// The verdict on one check. `Talk` is a talk check's transcript: the talk
/// engine's report, which this layer (below the engines) cannot name; the
/// plan runner names it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult<Talk> {
    /// Position in the plan (after matrices are expanded), from 0.
    pub index: usize,
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    /// The agent it ran on (`on:`); none: the controller's machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// Whether reality matched the expectation.
    pub passed: bool,
    /// The expectation, in words ("open", "fail at Password prompt").
    pub expected: String,
    /// What happened, in the same words.
    pub actual: String,
    /// The seed's `RESULT:` text: `Success` or `Fail <message>`.
    pub result: String,
    pub elapsed_ms: u64,
    /// A talk check's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk: Option<Talk>,
    /// A probe check's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceResult>,
    /// A mail check's session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailResult>,
    /// A flow check's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowRecord>,
    /// A verdict read back from a run log (`--resume`): its talk, service
    /// and mail objects as they were written, so that the outputs of a
    /// resumed run say what the first run found. Empty for a check run now.
    #[serde(flatten)]
    pub recorded: serde_json::Map<String, serde_json::Value>,
}

/// What a flow check found: where the nonce went and what the sender saw.
/// Read back (run logs, `report html`) every field is optional, so that
/// records of other versions stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRecord {
    /// The sending agent.
    pub from: String,
    /// The destination as the plan names it (`b:22`, `198.18.2.2:80`).
    pub to: String,
    /// The address and port the sender sent to.
    pub address: String,
    pub proto: String,
    pub port: u16,
    /// `allowed`, `blocked` or `inconclusive`.
    pub verdict: String,
    /// What the sender saw: `connected`, `reply`, `timeout`, `reset`, `icmp-...`.
    pub sender_saw: String,
    /// `AGENT:PORT` where the nonce arrived, or null.
    pub arrived_at: Option<String>,
    /// The source address the listener saw.
    pub source_seen: Option<String>,
    /// The source seen differs from the address the sender sent from.
    pub nat: bool,
    /// The nonce arrived at another agent than the destination.
    pub redirect: bool,
    /// Proxy suspected: the sender connected (something answered the
    /// handshake) but the nonce arrived at no listener.
    pub proxy: bool,
    /// No agent listened: only the sender's view.
    pub unconfirmed: bool,
    /// `firewall`, `destination` or `unknown`.
    pub blocked_by: String,
    /// How the verdict was reached, step by step (the control flow's path
    /// named, so nobody mistakes it for the tested one).
    pub evidence: Vec<String>,
    /// Fields a record read back has that this version does not know
    /// (written again as they were); empty for a flow run now.
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// What a mail check's SMTP session did.
#[derive(Debug, Clone, Serialize)]
pub struct MailResult {
    /// The address connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The TLS version, when a handshake completed (implicit or STARTTLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Whether the certificate verified (false only with `insecure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The AUTH mechanism that succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mechanism: Option<&'static str>,
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    pub messages_delivered: u32,
    /// The stage that failed (`auth`), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Totals of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub plan: String,
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    pub elapsed_ms: u64,
}

impl PlanSummary {
    pub fn new<T>(plan: &str, results: &[CheckResult<T>], elapsed: Duration) -> PlanSummary {
        let passed = results.iter().filter(|r| r.passed).count();
        PlanSummary {
            kind: "summary",
            plan: plan.to_string(),
            checks: results.len(),
            passed,
            failed: results.len() - passed,
            elapsed_ms: elapsed.as_millis().min(u128::from(u64::MAX)) as u64,
        }
    }
}
