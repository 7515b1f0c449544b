//! The firewall lab of issue 15, end to end: zones A, B and C behind a
//! router running nftables, a management network that does not cross the
//! router, the controller in the management namespace, agents in A and B
//! over `ssh://` to real OpenSSH daemons (keys made here) and C over
//! `netns:`. Every verdict, what the sender saw, the source seen and who
//! blocked must match the router's policy; one rule changed flips its check
//! alone; a controller killed mid-run resumes with each check once.

use std::time::Duration;

use crate::support::netns::require_lab;
use crate::support::sshd::{Sshd, client_config, make_keys};
use crate::support::zones::{A, A_MGMT, B, B_MGMT, C, R_A, R_C, Zones};

/// The router's policy; `telnet` is the verdict of A -> B tcp 23.
fn policy(telnet: &str) -> String {
    format!(
        "table inet fw {{
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ip saddr {A} ip daddr {B} tcp dport {{ 22, 80 }} accept
    ip saddr {A} ip daddr {B} udp dport 53 accept
    ip saddr {A} ip daddr {B} tcp dport 23 {telnet}
    ip saddr {A} ip daddr {B} tcp dport 25 reject with tcp reset
    ip saddr {A} ip daddr {B} tcp dport 3306 reject with icmpx admin-prohibited
    ip saddr {A} ip daddr {C} tcp dport 80 ct status dnat accept
    ip saddr {B} ip daddr {A} tcp dport 443 accept
    ip saddr {C} ip daddr {B} tcp dport 25 accept
    ip saddr {A} ip daddr {B} icmp type echo-request accept
    ip saddr {A} ip daddr {C} icmp type echo-request reject with icmp type admin-prohibited
  }}
}}
table ip nat {{
  chain prerouting {{
    type nat hook prerouting priority dstnat;
    ip saddr {A} ip daddr {B} tcp dport 8080 dnat to {C}:80
    ip saddr {A} ip daddr {B} tcp dport 8443 redirect to :9999
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname \"r2c\" masquerade
  }}
}}"
    )
}

/// (name, verdict, sender saw, source seen, blocked by): what the policy
/// makes of each check of the plan.
const EXPECTED: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("ssh a to b", "allowed", "connected", Some(A), "unknown"),
    ("web a to b", "allowed", "connected", Some(A), "unknown"),
    ("dns a to b", "allowed", "reply", Some(A), "unknown"),
    ("telnet a to b", "blocked", "timeout", None, "unknown"),
    ("smtp a to b", "blocked", "reset", None, "firewall"),
    (
        "mysql a to b",
        "blocked",
        "icmp-admin-prohibited",
        None,
        "firewall",
    ),
    (
        "web a to b:8080 lands on c",
        "allowed",
        "connected",
        Some(R_C),
        "unknown",
    ),
    ("https b to a", "allowed", "connected", Some(B), "unknown"),
    ("ssh b to a", "blocked", "timeout", None, "unknown"),
    ("web a to c direct", "blocked", "timeout", None, "unknown"),
    (
        "alt https a to b, proxied",
        "blocked",
        "no-echo",
        None,
        "unknown",
    ),
    ("ping a to b", "allowed", "reply", Some(A), "unknown"),
    (
        "ping a to c",
        "blocked",
        "icmp-admin-prohibited",
        None,
        "firewall",
    ),
    ("ping b to a", "blocked", "timeout", None, "unknown"),
    ("smtp c to b", "allowed", "connected", Some(C), "unknown"),
];

fn plan(config: &str, bin: &str, c_ns: &str) -> String {
    format!(
        "agents:
  a: {{via: \"ssh://{A_MGMT}\", ssh_config: \"{config}\", command: \"{bin}\", allow_listen: \"22,443\", allow_targets: \"198.18.0.0/15\"}}
  b: {{via: \"ssh://{B_MGMT}\", ssh_config: \"{config}\", command: \"{bin}\", allow_listen: \"22-25,53,80,3306,8443\", allow_targets: \"198.18.0.0/15\"}}
  c: {{via: \"netns:{c_ns}\", command: \"{bin}\", allow_listen: \"80\"}}
sequential: true
defaults: {{timeout: 1s}}
checks:
  - {{name: ssh a to b, flow: {{from: a, to: b, port: 22}}, expect: allowed}}
  - {{name: web a to b, flow: {{from: a, to: b, port: 80}}, expect: allowed}}
  - {{name: dns a to b, flow: {{from: a, to: b, port: 53, proto: udp}}, expect: allowed}}
  - {{name: telnet a to b, flow: {{from: a, to: b, port: 23}}, expect: blocked}}
  - {{name: smtp a to b, flow: {{from: a, to: b, port: 25}}, expect: {{verdict: blocked, blocked_by: firewall}}}}
  - {{name: mysql a to b, flow: {{from: a, to: b, port: 3306}}, expect: {{verdict: blocked, blocked_by: firewall}}}}
  - name: web a to b:8080 lands on c
    flow: {{from: a, to: \"{B}:8080\", listen_on: [\"c:80\"]}}
    expect: {{verdict: allowed, arrived_at: \"c:80\", source_seen: {R_C}}}
  - {{name: https b to a, flow: {{from: b, to: a, port: 443}}, expect: allowed}}
  - {{name: ssh b to a, flow: {{from: b, to: a, port: 22}}, expect: blocked}}
  - {{name: web a to c direct, flow: {{from: a, to: c, port: 80}}, expect: blocked}}
  - {{name: \"alt https a to b, proxied\", flow: {{from: a, to: b, port: 8443}}, expect: blocked}}
  - {{name: ping a to b, flow: {{from: a, to: b, proto: icmp}}, expect: allowed}}
  - {{name: ping a to c, flow: {{from: a, to: c, proto: icmp}}, expect: {{verdict: blocked, blocked_by: firewall}}}}
  - {{name: ping b to a, flow: {{from: b, to: a, proto: icmp}}, expect: blocked}}
  - {{name: smtp c to b, flow: {{from: c, to: b, port: 25}}, expect: allowed}}
"
    )
}

#[test]
fn a_routed_firewall_gets_every_verdict_and_who_blocked() {
    if !require_lab() {
        return;
    }
    let zones = Zones::new();
    zones.router_rules(&policy("drop"));
    // The router itself answers A -> B:8443 (redirected to its port 9999)
    // and forwards nothing: a proxy that keeps the flow to itself.
    let mut proxy = std::process::Command::new("ip")
        .args(["netns", "exec", &zones.ns("r")])
        .args(["socat", "TCP-LISTEN:9999,fork,reuseaddr", "SYSTEM:sleep 5"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("socat");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_keys(d);
    let _sshd_a = Sshd::start(&zones.ns("a"), A_MGMT, d, "a");
    let _sshd_b = Sshd::start(&zones.ns("b"), B_MGMT, d, "b");
    let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
    let config = client_config(d, "mgmt", &[A_MGMT, B_MGMT], &host_key);
    let plan_path = d.join("zones.yaml");
    std::fs::write(
        &plan_path,
        plan(
            &config.display().to_string(),
            crate::util::bin(),
            &zones.ns("c"),
        ),
    )
    .expect("plan");
    let controller = |extra: &[&str]| {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &zones.ns("m"), crate::util::bin()])
            .args(["exercise", "run"])
            .arg(&plan_path)
            .args(extra);
        c
    };
    let verdicts = |text: &str| -> Vec<serde_json::Value> {
        crate::util::json_lines(text)
            .into_iter()
            .filter(|r| r["type"] == "check")
            .collect()
    };
    // The daemons take a moment to listen: bounded retries while the
    // agents cannot be reached (exit 1 before any check).
    let run = || {
        let mut out = controller(&["-o", "json"]).output().expect("controller");
        for _ in 0..30 {
            if !verdicts(&String::from_utf8_lossy(&out.stdout)).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            out = controller(&["-o", "json"]).output().expect("controller");
        }
        out
    };
    let out = run();
    let records = verdicts(&String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(records.len(), EXPECTED.len(), "{records:?}\n{err}");
    for ((name, verdict, saw, source, by), r) in EXPECTED.iter().zip(&records) {
        assert_eq!(r["name"], *name, "{r}");
        let f = &r["flow"];
        assert_eq!(f["verdict"], *verdict, "{name}: {r}");
        assert_eq!(f["sender_saw"], *saw, "{name}: {r}");
        assert_eq!(f["source_seen"].as_str(), *source, "{name}: {r}");
        assert_eq!(f["blocked_by"], *by, "{name}: {r}");
        assert_eq!(r["passed"], true, "{name}: {r}");
    }
    let evidence = |name: &str| {
        records
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["flow"]["evidence"].to_string())
            .unwrap_or_default()
    };
    assert!(
        evidence("mysql a to b").contains(&format!("came from {R_A}, not from the destination")),
        "{}",
        evidence("mysql a to b")
    );
    assert!(
        evidence("smtp a to b").contains("TTL 64, the destination's own answers with TTL 63"),
        "{}",
        evidence("smtp a to b")
    );
    // The plan lets c reach b:25: a second control flow, from c, arrived.
    assert!(
        evidence("smtp a to b").contains(
            "control flow from c (which the plan expects to be allowed) to 198.18.102.2:25 arrived"
        ),
        "{}",
        evidence("smtp a to b")
    );
    let proxied = &records[10]["flow"];
    assert_eq!(proxied["proxy"], true, "{proxied}");
    assert!(
        proxied["evidence"].to_string().contains("proxy suspected"),
        "{proxied}"
    );
    assert_eq!(records[11]["flow"]["arrived_at"], "b", "{}", records[11]);
    assert_eq!(records[11]["target"], "a -> b/icmp", "{}", records[11]);
    for r in &records[..10] {
        assert_eq!(r["flow"]["proxy"], false, "{r}");
    }
    let redirect = &records[6]["flow"];
    assert_eq!(redirect["arrived_at"], "c:80", "{redirect}");
    assert_eq!(redirect["nat"], true, "{redirect}");
    assert_eq!(redirect["redirect"], true, "{redirect}");
    // The control path is named as the listener's own, not the tested one.
    assert!(
        evidence("telnet a to b").contains("this host's own path, not the tested one"),
        "{}",
        evidence("telnet a to b")
    );
    assert_eq!(out.status.code(), Some(0), "{err}");

    // One rule changed: telnet accepted. That check alone flips.
    zones.router_rules(&policy("accept"));
    let flipped = verdicts(&String::from_utf8_lossy(&run().stdout));
    assert_eq!(flipped.len(), records.len());
    for (before, after) in records.iter().zip(&flipped) {
        let changed = before["flow"]["verdict"] != after["flow"]["verdict"];
        assert_eq!(
            changed,
            before["name"] == "telnet a to b",
            "{before}\n{after}"
        );
    }
    zones.router_rules(&policy("drop"));

    // The controller killed after a few verdicts; --resume completes the
    // run with every check recorded once, and the same verdicts.
    let log = d.join("run.jsonl");
    let mut killed = controller(&["--run-log", log.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("controller");
    let mut logged = 0;
    for _ in 0..600 {
        logged = verdicts(&std::fs::read_to_string(&log).unwrap_or_default()).len();
        if logged >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    killed.kill().expect("SIGKILL");
    let _ = killed.wait();
    assert!(
        (4..EXPECTED.len()).contains(&logged),
        "{logged} before the kill"
    );
    let resumed = controller(&["--resume", log.to_str().expect("utf-8"), "-o", "json"])
        .output()
        .expect("resume");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    let all = verdicts(&String::from_utf8_lossy(&resumed.stdout));
    for ((name, verdict, ..), r) in EXPECTED.iter().zip(&all) {
        assert_eq!(
            (r["name"].as_str(), r["flow"]["verdict"].as_str()),
            (Some(*name), Some(*verdict)),
            "{r}"
        );
    }
    let mut ids: Vec<String> = verdicts(&std::fs::read_to_string(&log).expect("log"))
        .iter()
        .map(|r| r["check_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (EXPECTED.len(), EXPECTED.len()), "{ids:?}");
    let _ = proxy.kill();
    let _ = proxy.wait();
}
