//! Expectations: what must hold for a check to pass, written as a word
//! (`open`, `fail`) or a map of fields, the words' meanings, and the one
//! table of the fields each kind of check can test.

use std::fmt;

use serde::Deserialize;

use super::CheckKind;

/// What must hold for a check to pass. Written as a word (`open`,
/// `closed`, `filtered`, `success`, `fail`) or a map of these fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// connect: open, closed or filtered.
    pub state: Option<PortWord>,
    /// talk, calc, probe: whether it worked.
    pub outcome: Option<Outcome>,
    /// talk, mail: the step it must fail at (implies `outcome: fail`).
    pub fail_at: Option<String>,
    /// probe: the service recognised.
    pub service: Option<String>,
    /// probe: STARTTLS (or STLS, AUTH TLS) accepted, or not.
    pub starttls: Option<bool>,
    /// probe: a TLS session (implicit or after STARTTLS) completed.
    pub tls: Option<bool>,
    /// probe: the chain verifies (system roots plus `defaults.ca_file`).
    pub verified: Option<bool>,
    /// probe: the leaf certificate is valid for at least this many more days.
    pub cert_days_left: Option<i64>,
    /// calc: the answer.
    pub result: Option<i64>,
    /// flow: the firewall's verdict.
    pub verdict: Option<FlowVerdict>,
    /// flow: where the nonce must arrive (`AGENT:PORT`).
    pub arrived_at: Option<String>,
    /// flow: the source address the listener must see (NAT).
    pub source_seen: Option<std::net::IpAddr>,
    /// flow: who must have stopped it (`firewall`, `destination`, `unknown`).
    pub blocked_by: Option<BlockedBy>,
}

/// Who stopped a blocked flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockedBy {
    Firewall,
    Destination,
    Unknown,
}

impl BlockedBy {
    pub fn word(self) -> &'static str {
        match self {
            BlockedBy::Firewall => "firewall",
            BlockedBy::Destination => "destination",
            BlockedBy::Unknown => "unknown",
        }
    }
}

/// A flow's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowVerdict {
    /// The nonce arrived.
    Allowed,
    /// It arrived nowhere, and a control flow proved the listener reachable.
    Blocked,
    /// Neither could be shown (the listener was not reachable even from
    /// its own host, or no agent listened).
    Inconclusive,
}

impl FlowVerdict {
    pub fn word(self) -> &'static str {
        match self {
            FlowVerdict::Allowed => "allowed",
            FlowVerdict::Blocked => "blocked",
            FlowVerdict::Inconclusive => "inconclusive",
        }
    }
}

/// connect's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortWord {
    Open,
    Closed,
    Filtered,
}

/// Whether a conversation, a request or a probe worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Fail,
}

/// A check's `expect`, in either written form: a word or a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectField(pub ExpectSpec);

impl<'de> Deserialize<'de> for ExpectField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ExpectField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "open, closed, filtered, success, fail, allowed, blocked, or a map (state, \
                     outcome, fail_at, service, starttls, tls, verified, cert_days_left, result, \
                     verdict)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ExpectField, E> {
                expect_from_word(s).map(ExpectField).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ExpectField, A::Error> {
                ExpectSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ExpectField)
            }
        }
        d.deserialize_any(V)
    }
}

/// A matrix row's `expect` word.
pub(super) fn expect_from_word(word: &str) -> Result<ExpectSpec, String> {
    let mut e = ExpectSpec::default();
    match word {
        "open" => e.state = Some(PortWord::Open),
        "closed" => e.state = Some(PortWord::Closed),
        "filtered" => e.state = Some(PortWord::Filtered),
        "success" | "pass" | "ok" => e.outcome = Some(Outcome::Success),
        "fail" | "failure" => e.outcome = Some(Outcome::Fail),
        "allowed" => e.verdict = Some(FlowVerdict::Allowed),
        "blocked" => e.verdict = Some(FlowVerdict::Blocked),
        other => {
            return Err(format!(
                "expect {other:?}: expected open, closed, filtered, success, fail, allowed or blocked"
            ));
        }
    }
    Ok(e)
}

/// The `expect` fields each kind of check can test; setting any other is
/// refused when the plan is read.
const ALLOWED: [(&str, &[&str]); 6] = [
    ("connect", &["state"]),
    (
        "probe",
        &[
            "outcome",
            "service",
            "starttls",
            "tls",
            "verified",
            "cert_days_left",
        ],
    ),
    ("talk", &["outcome", "fail_at"]),
    ("calc", &["outcome", "result"]),
    ("mail", &["outcome", "fail_at"]),
    (
        "flow",
        &["verdict", "arrived_at", "source_seen", "blocked_by"],
    ),
];

impl ExpectSpec {
    /// Each field and whether it is set, in the order a refusal names the
    /// first one a kind cannot test.
    fn fields_set(&self) -> [(&'static str, bool); 13] {
        [
            ("state", self.state.is_some()),
            ("outcome", self.outcome.is_some()),
            ("service", self.service.is_some()),
            ("starttls", self.starttls.is_some()),
            ("tls", self.tls.is_some()),
            ("verified", self.verified.is_some()),
            ("cert_days_left", self.cert_days_left.is_some()),
            ("result", self.result.is_some()),
            ("fail_at", self.fail_at.is_some()),
            ("verdict", self.verdict.is_some()),
            ("arrived_at", self.arrived_at.is_some()),
            ("source_seen", self.source_seen.is_some()),
            ("blocked_by", self.blocked_by.is_some()),
        ]
    }
}

/// Refuses the fields `kind` cannot test (see [`ALLOWED`]) and a `fail_at`
/// naming no step of the check, then fills the default: `open` for a
/// connect check, `success` for the others. The error is the message
/// after the check's name.
pub(super) fn settle(kind: &CheckKind, mut e: ExpectSpec) -> Result<ExpectSpec, String> {
    let word = kind.word();
    let allowed = ALLOWED
        .iter()
        .find(|(k, _)| *k == word)
        .map_or(&[][..], |(_, fields)| *fields);
    if let Some((field, _)) = e
        .fields_set()
        .into_iter()
        .find(|(field, set)| *set && !allowed.contains(field))
    {
        return Err(format!("expect.{field} does not apply to a {word} check"));
    }
    if let Some(step) = &e.fail_at {
        let unknown = match kind {
            CheckKind::Talk { conversation, .. } => {
                let known = step == "connect"
                    || step == "tls"
                    || conversation.steps.iter().any(|s| &s.name == step);
                (!known).then(|| {
                    format!(
                        "no such step (steps: connect, {})",
                        conversation
                            .steps
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            CheckKind::Mail { .. } => {
                use crate::mail::FailStage;
                (!FailStage::ALL.iter().any(|s| s.name() == step)).then(|| {
                    format!(
                        "expected one of {}",
                        FailStage::ALL
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            // ALLOWED refused `fail_at` for the other kinds.
            _ => None,
        };
        if let Some(why) = unknown {
            return Err(format!("expect.fail_at {step:?}: {why}"));
        }
        // `fail_at` names where a check must fail: it implies outcome
        // fail, and contradicts an explicit success.
        if e.outcome == Some(Outcome::Success) {
            return Err("expect.fail_at with outcome success".into());
        }
        e.outcome = Some(Outcome::Fail);
    }
    match kind {
        CheckKind::Connect { .. } => {
            e.state.get_or_insert(PortWord::Open);
        }
        CheckKind::Flow(_) => {
            e.verdict.get_or_insert(FlowVerdict::Allowed);
        }
        _ => {
            e.outcome.get_or_insert(Outcome::Success);
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use crate::talk::script::SourceFormat;

    /// Every kind against every field, through the compiler. The test
    /// lists what each kind refuses, as the code before the table did.
    #[test]
    fn each_kind_tests_only_its_own_fields() {
        let probe_only = ["service", "starttls", "tls", "verified", "cert_days_left"];
        let refuses = |fields: &[&'static str], probe: bool| {
            let mut all = fields.to_vec();
            if probe {
                all.extend(probe_only);
            }
            all
        };
        let kinds = [
            (
                "connect",
                "connect: h:1",
                refuses(&["outcome", "result", "fail_at", "verdict"], true),
            ),
            (
                "probe",
                "probe: {target: h:1}",
                refuses(&["state", "result", "fail_at", "verdict"], false),
            ),
            (
                "talk",
                "talk: {target: h:1, steps: [{name: s, expect: x}]}",
                refuses(&["state", "result", "verdict"], true),
            ),
            (
                "calc",
                "calc: {server: h:1, op: SUM}",
                refuses(&["state", "fail_at", "verdict"], true),
            ),
            (
                "mail",
                "mail: {server: h:1, to: a@b}",
                refuses(&["state", "result", "verdict"], true),
            ),
            (
                "flow",
                "flow: {from: a, to: b, port: 22}",
                refuses(&["state", "outcome", "result", "fail_at"], true),
            ),
        ];
        let fields = [
            ("state", "closed"),
            ("outcome", "fail"),
            ("service", "ftp"),
            ("starttls", "true"),
            ("tls", "true"),
            ("verified", "true"),
            ("cert_days_left", "3"),
            ("result", "3"),
            ("fail_at", "connect"),
            ("verdict", "blocked"),
        ];
        for (kind, body, refused) in kinds {
            for (field, value) in fields {
                let text = format!(
                    "agents:\n  a: {{via: local}}\n  b: {{via: local}}\nchecks:\n  - name: a\n    {body}\n    expect: {{{field}: {value}}}\n"
                );
                let got = super::super::compile_text(
                    "plan.yaml",
                    &text,
                    SourceFormat::Yaml,
                    std::path::Path::new("."),
                );
                if refused.contains(&field) {
                    let e = got.expect_err("refused");
                    assert_eq!(
                        e.message,
                        format!("check \"a\": expect.{field} does not apply to a {kind} check"),
                        "{kind} {field}"
                    );
                } else {
                    assert!(got.is_ok(), "{kind} {field}: {:?}", got.err());
                }
            }
        }
    }
}
