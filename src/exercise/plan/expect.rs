//! Expectations: what must hold for a check to pass, written as a word
//! (`open`, `fail`) or a map of fields, and the words' meanings.

use std::fmt;

use serde::Deserialize;

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
                    "open, closed, filtered, success, fail, or a map (state, outcome, fail_at, \
                     service, starttls, tls, verified, cert_days_left, result)",
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
        other => {
            return Err(format!(
                "expect {other:?}: expected open, closed, filtered, success or fail"
            ));
        }
    }
    Ok(e)
}
