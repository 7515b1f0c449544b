//! Checks a plan runs on an agent (`on: AGENT`). The controller sends the
//! check as a plan of one check ([`super::plan::Remote`]); the agent
//! compiles it with the same compiler as `sockeye exercise run`, refuses
//! what an agent must never do (run a program, read a file, open flows of
//! its own), keeps to its `--allow-targets`, runs the check with this
//! module's [`run_here`], and sends back the verdict's JSON record, which
//! the controller reads into its own results.

use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::plan::{CheckKind, compile_text};
use crate::talk::script::SourceFormat;

/// The runner `sockeye agent` hands to its loop.
#[derive(Debug, Default)]
pub struct PlanChecks;

impl crate::agent::serve::CheckRunner for PlanChecks {
    fn run<'a>(
        &'a self,
        plan: &'a str,
        may_send: &'a (dyn Fn(IpAddr) -> Result<(), String> + Sync),
    ) -> futures::future::BoxFuture<'a, Result<Value, String>> {
        Box::pin(run_here(plan, may_send))
    }
}

/// Fields a plan sent to an agent may have, at the top and in `defaults`.
const PLAN_KEYS: &[&str] = &["name", "defaults", "vars", "checks"];
const DEFAULT_KEYS: &[&str] = &["connect_timeout", "timeout"];

/// Refuses a sent plan that would make the agent run a program, read a
/// file or reach other agents, before anything is compiled.
fn refuse_unsafe(raw: &Value) -> Result<(), String> {
    let top = raw.as_object().ok_or("a check plan is a JSON object")?;
    if let Some(k) = top.keys().find(|k| !PLAN_KEYS.contains(&k.as_str())) {
        return Err(format!("a check plan has no field {k:?} here"));
    }
    if let Some(d) = top.get("defaults").and_then(Value::as_object)
        && let Some(k) = d.keys().find(|k| !DEFAULT_KEYS.contains(&k.as_str()))
    {
        return Err(format!("defaults.{k} is not taken from a controller"));
    }
    let checks = top
        .get("checks")
        .and_then(Value::as_array)
        .filter(|c| c.len() == 1)
        .ok_or("a check plan holds exactly one check")?;
    let check = checks[0].as_object().ok_or("a check is a JSON object")?;
    for key in ["flow", "on", "matrix", "after"] {
        if check.contains_key(key) {
            return Err(format!("an agent does not run a check with {key}"));
        }
    }
    if let Some(talk) = check.get("talk").and_then(Value::as_object) {
        if talk.contains_key("spawn") {
            return Err("an agent never runs a program (talk.spawn)".into());
        }
        if talk.contains_key("script") {
            return Err("an agent reads no file for a controller (talk.script)".into());
        }
    }
    if check
        .get("mail")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key("ca_file"))
    {
        return Err("an agent reads no file for a controller (mail.ca_file)".into());
    }
    Ok(())
}

/// Compiles `text` (a plan of one check), checks its target against
/// `may_send`, runs it here, and gives its JSON record.
pub async fn run_here(
    text: &str,
    may_send: &(dyn Fn(IpAddr) -> Result<(), String> + Sync),
) -> Result<Value, String> {
    let raw: Value =
        serde_json::from_str(text).map_err(|e| format!("not a check plan (JSON): {e}"))?;
    refuse_unsafe(&raw)?;
    // No base folder: nothing relative is read (refused above anyway).
    let plan = compile_text(
        "the controller's check",
        text,
        SourceFormat::Yaml,
        Path::new("/nonexistent"),
    )
    .map_err(|e| format!("bad check: {e}"))?;
    let [check] = plan.checks.as_slice() else {
        return Err("a check plan holds exactly one check".into());
    };
    if let Some((host, port)) = host_port(&check.kind) {
        let addrs = crate::net::resolve(host, port, plan.connect_timeout)
            .await
            .map_err(|e| e.to_string())?;
        for a in addrs {
            may_send(a.ip())?;
        }
    }
    let ctx = super::Context::for_plan(&plan).map_err(|e| format!("bad check: {e}"))?;
    let result = super::run_check(check, &ctx).await;
    serde_json::to_value(&result).map_err(|e| format!("cannot encode the verdict: {e}"))
}

/// The host and port a check reaches (a spawned talk reaches none).
fn host_port(kind: &CheckKind) -> Option<(&str, u16)> {
    match kind {
        CheckKind::Connect { host, port }
        | CheckKind::Probe { host, port, .. }
        | CheckKind::Calc { host, port, .. }
        | CheckKind::Mail { host, port, .. } => Some((host, *port)),
        CheckKind::Talk { endpoint, .. } => match endpoint {
            crate::talk::Endpoint::Tcp { host, port, .. } => Some((host, *port)),
            crate::talk::Endpoint::Spawn { .. } => None,
        },
        CheckKind::Flow(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_agent_must_not_do_is_refused_before_compiling() {
        let plan = |check: &str| format!(r#"{{"checks":[{check}]}}"#);
        for (text, why) in [
            (
                plan(r#"{"name":"x","talk":{"spawn":"/bin/sh -c id"}}"#),
                "never runs a program",
            ),
            (
                plan(r#"{"name":"x","talk":{"target":"h:21","script":"/etc/shadow"}}"#),
                "reads no file",
            ),
            (
                plan(r#"{"name":"x","mail":{"server":"h:25","ca_file":["/etc/shadow"]}}"#),
                "reads no file",
            ),
            (
                plan(r#"{"name":"x","flow":{"from":"a","to":"b","port":1}}"#),
                "with flow",
            ),
            (
                r#"{"agents":{"z":{"via":"exec:sh"}},"checks":[{"name":"x","connect":"h:1"}]}"#
                    .to_string(),
                "no field \"agents\"",
            ),
            (
                r#"{"defaults":{"ca_file":["/etc/shadow"]},"checks":[{"name":"x","connect":"h:1"}]}"#
                    .to_string(),
                "defaults.ca_file",
            ),
            (
                r#"{"checks":[{"name":"x","connect":"h:1"},{"name":"y","connect":"h:2"}]}"#
                    .to_string(),
                "exactly one check",
            ),
        ] {
            let raw: Value = serde_json::from_str(&text).expect("json");
            let err = refuse_unsafe(&raw).expect_err(&text);
            assert!(err.contains(why), "{text}: {err}");
        }
        let ok: Value =
            serde_json::from_str(&plan(r#"{"name":"x","connect":"h:1","expect":"open"}"#))
                .expect("json");
        assert_eq!(refuse_unsafe(&ok), Ok(()));
    }

    #[tokio::test]
    async fn a_target_outside_allow_targets_is_refused() {
        let text = r#"{"checks":[{"name":"x","connect":"127.0.0.1:9"}]}"#;
        let deny = |ip: IpAddr| Err(format!("{ip} is outside this agent's --allow-targets"));
        let err = run_here(text, &deny).await.expect_err("refused");
        assert_eq!(err, "127.0.0.1 is outside this agent's --allow-targets");
    }
}
