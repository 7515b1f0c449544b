//! Agents (`sockeye agent --stdio`) started the way a controller starts
//! them, through `sockeye::agent::link`: the handshake, errors that name the
//! agent, and flows between two agents in namespaces across a real
//! nftables firewall (198.18.0.0/15 only).

use std::time::Duration;

use sockeye::agent::link::{AgentSpec, Link, Via};
use sockeye::agent::wire::{Action, Event, FlowProto, Outcome, SenderSaw};

use crate::support::netns::{Lab, SCANNER_V4, TARGET_V4, require_lab};

/// A lab whose target namespace filters its input with `rules`.
fn firewalled(rules: &[&str]) -> Lab {
    let lab = Lab::new();
    lab.nft(
        lab.target_ns(),
        &format!(
            "table inet fw {{ chain input {{ type filter hook input priority 0; policy accept;\n{}\n}}\n}}",
            rules.join("\n")
        ),
    );
    lab
}

fn spec(name: &str, via: Via) -> AgentSpec {
    let mut s = AgentSpec::new(name, via);
    s.program = Some(crate::util::bin().into());
    s
}

/// A lookup of `-o json` check records by name (panics naming the output
/// when one is missing).
fn check_named(text: &str) -> impl Fn(&str) -> serde_json::Value + '_ {
    let records = crate::util::json_lines(text);
    move |name| {
        records
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .clone()
    }
}

/// The agents (`sockeye agent --stdio`) running in namespace `ns`.
fn agents_in(ns: &str) -> Vec<u32> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("agent\0--stdio"))
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A local agent shakes hands, reports its limits, connects where asked,
/// and an agent that cannot be reached is one line naming it.
#[test]
fn a_local_agent_answers_and_unreachable_ones_are_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("addr");
    runtime().block_on(async {
        let mut a = spec("a", Via::Local);
        a.allow_listen = Some("8000-8100".into());
        a.allow_targets = Some("127.0.0.0/8".into());
        let link = Link::start(&a).await.expect("handshake");
        assert_eq!(link.welcome.limits.allow_listen, "8000-8100");
        let got = link
            .call(&Action::Connect {
                target,
                timeout_ms: 2000,
            })
            .await
            .expect("outcome");
        assert!(
            matches!(
                got,
                Outcome::Sent {
                    saw: SenderSaw::Connected,
                    ..
                }
            ),
            "{got:?}"
        );
        link.close().await;

        let err = Link::start(&spec("ghost", Via::Exec(vec!["false".into()])))
            .await
            .expect_err("no agent there");
        let text = err.to_string();
        assert!(text.starts_with("agent ghost (exec:false): "), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");

        // OpenSSH in batch mode to a closed loopback port: its own words.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let via: Via = format!("ssh://nobody@127.0.0.1:{port}")
            .parse()
            .expect("via");
        let err = Link::start(&spec("b", via)).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("agent b (ssh://nobody@127.0.0.1:{port}): ")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
    });
}

/// Agent A (scanner namespace) sends flows to agent B (target namespace),
/// whose host firewall allows TCP 22 and UDP 53, drops TCP 23 and UDP 54,
/// resets TCP 25 and rejects TCP 3306 with ICMP admin-prohibited. Each
/// sender outcome and each arrival (with A's address as the source seen)
/// is what the rules say; closing the links ends both agents.
#[test]
fn flows_between_agents_in_namespaces_see_what_the_firewall_does() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&[
        "tcp dport 23 drop",
        "udp dport 54 drop",
        "tcp dport 25 reject with tcp reset",
        "tcp dport 3306 reject with icmpx admin-prohibited",
    ]);
    runtime().block_on(async {
        let mut a = spec("a", Via::Netns(lab.scanner_ns().into()));
        a.allow_targets = Some("198.18.0.0/15".into());
        let mut b = spec("b", Via::Netns(lab.target_ns().into()));
        b.allow_listen = Some("22-25,53-54,3306".into());
        let (a, b) = (
            Link::start(&a).await.expect("agent a"),
            Link::start(&b).await.expect("agent b"),
        );
        assert!(
            b.welcome
                .addresses
                .contains(&TARGET_V4.parse().expect("ip")),
            "{:?}",
            b.welcome.addresses
        );
        let cases = [
            (FlowProto::Tcp, 22, SenderSaw::Connected, true),
            (FlowProto::Udp, 53, SenderSaw::Reply, true),
            (FlowProto::Tcp, 23, SenderSaw::Timeout, false),
            (FlowProto::Udp, 54, SenderSaw::Timeout, false),
            (FlowProto::Tcp, 25, SenderSaw::Reset, false),
            (FlowProto::Tcp, 3306, SenderSaw::IcmpAdminProhibited, false),
        ];
        for (proto, port, saw, arrives) in cases {
            let mut listening = b
                .request(&Action::Listen {
                    proto,
                    port,
                    address: None,
                })
                .await
                .expect("listen");
            let ready = listening.events.recv().await;
            assert_eq!(ready, Some(Event::Listening { proto, port }));
            let nonce = format!("{}-{port}", proto.word());
            let sent = a
                .call(&Action::Send {
                    proto,
                    target: format!("{TARGET_V4}:{port}").parse().expect("addr"),
                    nonce: nonce.clone(),
                    timeout_ms: 1500,
                    ttl: proto == FlowProto::Tcp,
                })
                .await
                .expect("outcome");
            let Outcome::Sent {
                saw: got,
                source,
                ttl,
                icmp_from,
                ..
            } = sent
            else {
                panic!("{proto:?} {port}: {sent:?}")
            };
            assert_eq!(got, saw, "{proto:?} {port}");
            // One hop, Linux's initial TTL: what the agent read off its raw
            // socket for the SYN-ACK and the reset; the ICMP error's source.
            let answered = matches!(saw, SenderSaw::Connected | SenderSaw::Reset);
            assert_eq!(ttl, answered.then_some(64), "{proto:?} {port}");
            let icmp = saw == SenderSaw::IcmpAdminProhibited;
            assert_eq!(
                icmp_from.map(|a| a.to_string()),
                icmp.then(|| TARGET_V4.to_string()),
                "{proto:?} {port}"
            );
            b.call(&Action::Stop {
                request: listening.id,
            })
            .await
            .expect("stop");
            let mut arrived = Vec::new();
            while let Ok(Some(e)) =
                tokio::time::timeout(Duration::from_secs(2), listening.events.recv()).await
            {
                arrived.push(e);
            }
            let stopped = listening.outcome.await.expect("stopped");
            if arrives {
                let source = source.expect("a source address");
                assert_eq!(source.ip().to_string(), SCANNER_V4);
                assert_eq!(
                    arrived,
                    vec![Event::Arrived {
                        proto,
                        port,
                        nonce,
                        source
                    }],
                    "{proto:?} {port}"
                );
                assert_eq!(stopped, Outcome::Stopped { arrivals: 1 });
            } else {
                assert!(arrived.is_empty(), "{proto:?} {port}: {arrived:?}");
                assert_eq!(stopped, Outcome::Stopped { arrivals: 0 });
            }
        }
        // A port outside B's --allow-listen is refused, naming the limit.
        let refused = b
            .call(&Action::Listen {
                proto: FlowProto::Tcp,
                port: 80,
                address: None,
            })
            .await
            .expect("outcome");
        assert_eq!(
            refused,
            Outcome::Refused {
                reason: "port 80 is outside this agent's --allow-listen (22-25,53-54,3306)".into()
            }
        );
        a.close().await;
        b.close().await;
    });
}

/// A plan with two agents and flow checks, run by `sockeye exercise run`:
/// each verdict, what the sender saw and the source seen follow the
/// target's firewall (allow TCP 22 and UDP 53, drop TCP 23, reset TCP 25,
/// admin-prohibited TCP 3306); a listener that cannot work makes the flow
/// inconclusive, never blocked; a wrong expectation fails the run.
#[test]
fn a_plan_of_flows_gets_the_firewall_verdicts() {
    if !require_lab() {
        return;
    }
    // On the way in from the link only (as a firewall in the path), so that
    // b's control flow to itself is not filtered; port 24 is closed to b's
    // own traffic too.
    let lab = firewalled(&[
        "iifname != \"lo\" tcp dport 23 drop",
        "iifname != \"lo\" tcp dport 25 reject with tcp reset",
        "iifname != \"lo\" tcp dport 3306 reject with icmpx admin-prohibited",
        "tcp dport 24 drop",
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        "agents:
  a: {{via: \"netns:{a}\", allow_targets: \"198.18.0.0/15\"}}
  b: {{via: \"netns:{b}\", allow_listen: \"22-25,53,3306\"}}
defaults: {{timeout: 1500ms}}
checks:
  - name: ssh from a to b
    flow: {{from: a, to: b, port: 22}}
    expect: allowed
  - name: dns from a to b
    flow: {{from: a, to: b, port: 53, proto: udp}}
    expect: allowed
  - name: telnet dropped
    flow: {{from: a, to: b, port: 23}}
    expect: blocked
  - name: smtp reset
    flow: {{from: a, to: b, port: 25}}
    expect: blocked
  - name: mysql prohibited
    flow: {{from: a, to: b, port: 3306}}
    expect: blocked
  - name: dropped even for b itself
    flow: {{from: a, to: b, port: 24}}
    expect: {{verdict: inconclusive}}
",
        a = lab.scanner_ns(),
        b = lab.target_ns()
    );
    let path = dir.path().join("flows.yaml");
    std::fs::write(&path, &plan).expect("write plan");
    let out = std::process::Command::new(crate::util::bin())
        .args([
            "exercise",
            "run",
            path.to_str().expect("utf-8"),
            "-o",
            "json",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let by_name = check_named(&text);
    // b's own firewall stops these: its resets carry its own TTL (that of
    // its SYN-ACK on port 22), its ICMP errors its own address.
    for (name, verdict, saw, by) in [
        ("ssh from a to b", "allowed", "connected", "unknown"),
        ("dns from a to b", "allowed", "reply", "unknown"),
        ("telnet dropped", "blocked", "timeout", "unknown"),
        ("smtp reset", "blocked", "reset", "destination"),
        (
            "mysql prohibited",
            "blocked",
            "icmp-admin-prohibited",
            "destination",
        ),
        (
            "dropped even for b itself",
            "inconclusive",
            "timeout",
            "unknown",
        ),
    ] {
        let r = by_name(name);
        assert_eq!(r["flow"]["blocked_by"], by, "{name}: {r}");
        assert_eq!(r["passed"], true, "{name}: {r}");
        assert_eq!(r["flow"]["verdict"], verdict, "{name}: {r}");
        assert_eq!(r["flow"]["sender_saw"], saw, "{name}: {r}");
        if verdict == "allowed" {
            assert_eq!(r["flow"]["source_seen"], SCANNER_V4, "{name}: {r}");
            assert_eq!(
                r["flow"]["arrived_at"],
                format!("b:{}", r["flow"]["port"]),
                "{name}: {r}"
            );
            assert_eq!(r["flow"]["nat"], false, "{name}: {r}");
        } else {
            assert!(r["flow"]["arrived_at"].is_null(), "{name}: {r}");
            let evidence = r["flow"]["evidence"].to_string();
            assert!(
                evidence.contains("control flow from b itself"),
                "{name}: {r}"
            );
        }
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A flow outside b's --allow-listen: a plan error naming the check and
    // the limit, before any check runs (never "blocked").
    std::fs::write(
        &path,
        format!(
            "{plan}  - name: b may not listen on 80\n    flow: {{from: a, to: b, port: 80}}\n    expect: blocked\n"
        ),
    )
    .expect("write plan");
    let out = std::process::Command::new(crate::util::bin())
        .args(["exercise", "run", path.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        err.trim(),
        "sockeye: bad plan: check \"b may not listen on 80\": agent b may not listen on tcp/80 (its --allow-listen: 22-25,53,3306)"
    );
}

/// `sshd` in the target namespace with keys made here: the controller (in
/// the scanner namespace) reaches agent b over `ssh://` with OpenSSH in
/// batch mode and runs flows through it; with the host key unknown, the
/// run stops before any check with one line naming the agent, no prompt.
#[test]
fn an_agent_over_real_openssh_runs_flows_and_an_unknown_host_key_is_one_line() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&["iifname != \"lo\" tcp dport 23 drop"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    crate::support::sshd::make_keys(d);
    let sshd = crate::support::sshd::Sshd::start(lab.target_ns(), TARGET_V4, d, "b");
    let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
    let client_key = std::fs::read_to_string(d.join("client_key.pub")).expect("client key");
    // The client's own key stands for a host key nobody has seen.
    let good = crate::support::sshd::client_config(d, "known", &[TARGET_V4], &host_key);
    let stranger = crate::support::sshd::client_config(d, "stranger", &[TARGET_V4], &client_key);
    let plan = |config: &str| {
        format!(
            "agents:
  a: {{via: local, allow_targets: \"198.18.0.0/15\"}}
  b: {{via: \"ssh://{TARGET_V4}\", ssh_config: \"{config}\", command: \"{bin}\", allow_listen: \"23,80\"}}
defaults: {{timeout: 1500ms}}
checks:
  - name: to b's 80 over ssh
    flow: {{from: a, to: b, port: 80}}
    expect: allowed
  - name: to b's 23, dropped on the way
    flow: {{from: a, to: b, port: 23}}
    expect: blocked
",
            bin = crate::util::bin()
        )
    };
    std::fs::write(d.join("good.yaml"), plan(&good.display().to_string())).expect("plan");
    std::fs::write(
        d.join("stranger.yaml"),
        plan(&stranger.display().to_string()),
    )
    .expect("plan");
    // sshd takes a moment to listen: retry the good plan a few times (bounded).
    let run = |name: &str| {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.scanner_ns(),
                crate::util::bin(),
                "exercise",
                "run",
            ])
            .arg(d.join(name))
            .args(["-o", "json"])
            .output()
            .expect("run")
    };
    let mut out = run("good.yaml");
    for _ in 0..20 {
        if out.status.code() != Some(1) || !String::from_utf8_lossy(&out.stderr).contains("refused")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run("good.yaml");
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = crate::util::json_lines(&text);
    assert_eq!(records[0]["flow"]["verdict"], "allowed", "{text}");
    assert_eq!(records[0]["flow"]["source_seen"], SCANNER_V4, "{text}");
    assert_eq!(records[1]["flow"]["verdict"], "blocked", "{text}");

    let out = run("stranger.yaml");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.starts_with(&format!("sockeye: agent b (ssh://{TARGET_V4}): ")),
        "{err}"
    );
    assert!(err.contains("Host key verification failed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    drop(sshd);
}

/// SIGKILL the controller while a flow's listener is open and its sender
/// waits: both agents see their pipe end and exit, closing the listener.
#[test]
fn a_killed_controller_leaves_no_agent_and_no_listener_behind() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&["iifname != \"lo\" tcp dport 23 drop"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("slow.yaml");
    std::fs::write(
        &plan,
        format!(
            "agents:
  a: {{via: \"netns:{a}\"}}
  b: {{via: \"netns:{b}\", allow_listen: \"23\"}}
defaults: {{timeout: 30s}}
checks:
  - name: waits on a dropped port
    flow: {{from: a, to: b, port: 23}}
    expect: blocked
",
            a = lab.scanner_ns(),
            b = lab.target_ns()
        ),
    )
    .expect("plan");
    let mut controller = std::process::Command::new(crate::util::bin())
        .args(["exercise", "run", plan.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("controller");
    let listening = |ns: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-Htln", "sport = :23"])
            .output()
            .expect("ss");
        !out.stdout.is_empty()
    };
    // Bounded: the listener opens within seconds.
    let mut open = false;
    for _ in 0..100 {
        if listening(lab.target_ns()) && agents_in(lab.scanner_ns()).len() == 1 {
            open = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(open, "the flow's listener never opened");
    controller.kill().expect("SIGKILL");
    let _ = controller.wait();
    let mut gone = false;
    for _ in 0..100 {
        if agents_in(lab.scanner_ns()).is_empty()
            && agents_in(lab.target_ns()).is_empty()
            && !listening(lab.target_ns())
        {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone, "agents or the listener outlived the controller");
}

/// `--run-log`: the controller SIGKILLed half way through a plan, then
/// `--resume` runs only the checks without a verdict: every check is in the
/// log exactly once, and the resumed run reports all of them. A log of
/// another plan is refused naming the difference, and a torn last line (a
/// kill mid-write) is dropped and its check run again.
#[test]
fn a_killed_controller_resumes_from_its_run_log_with_each_check_once() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&["iifname != \"lo\" tcp dport 3001-3006 drop"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_text = |first: &str| {
        format!(
            "agents:
  a: {{via: \"netns:{a}\", allow_targets: \"198.18.0.0/15\"}}
  b: {{via: \"netns:{b}\", allow_listen: \"2001-2006,3001-3006\"}}
sequential: true
defaults: {{timeout: 1s}}
checks:
  - name: \"{first} {{{{port}}}}\"
    flow: {{from: a, to: b, port: \"{{{{port}}}}\"}}
    matrix: [{{port: 2001}}, {{port: 2002}}, {{port: 2003}}, {{port: 2004}}, {{port: 2005}}, {{port: 2006}}]
    expect: allowed
  - name: \"dropped {{{{port}}}}\"
    flow: {{from: a, to: b, port: \"{{{{port}}}}\"}}
    matrix: [{{port: 3001}}, {{port: 3002}}, {{port: 3003}}, {{port: 3004}}, {{port: 3005}}, {{port: 3006}}]
    expect: blocked
",
            a = lab.scanner_ns(),
            b = lab.target_ns()
        )
    };
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_text("allowed")).expect("plan");
    let log = dir.path().join("run.jsonl");
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(crate::util::bin());
        cmd.args(["exercise", "run", plan.to_str().expect("utf-8")]);
        cmd.args(extra);
        cmd
    };
    let verdicts = |text: &str| -> Vec<serde_json::Value> {
        crate::util::json_lines(text)
            .into_iter()
            .filter(|r| r["type"] == "check")
            .collect()
    };
    let mut controller = run(&["--run-log", log.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("controller");
    // Bounded: the six allowed flows take well under a second each.
    let mut logged = 0;
    for _ in 0..400 {
        logged = verdicts(&std::fs::read_to_string(&log).unwrap_or_default()).len();
        if logged >= 7 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        (7..12).contains(&logged),
        "{logged} verdicts before the kill"
    );
    controller.kill().expect("SIGKILL");
    let _ = controller.wait();
    let before = verdicts(&std::fs::read_to_string(&log).expect("log")).len();
    assert!(before < 12, "the run finished before the kill");
    // A kill in the middle of a write leaves half a line: not a verdict.
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log");
    std::io::Write::write_all(
        &mut torn,
        b"{\"type\":\"check\",\"check_id\":\"11:dropped 30",
    )
    .expect("torn line");
    drop(torn);

    // Another plan (a check renamed) is refused before anything runs.
    std::fs::write(&plan, plan_text("permitted")).expect("plan");
    let other = run(&["--resume", log.to_str().expect("utf-8")])
        .output()
        .expect("resume");
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(
        err.contains("run log of another plan") && err.contains("\"allowed 2001\""),
        "{err}"
    );
    std::fs::write(&plan, plan_text("allowed")).expect("plan");

    let resumed = run(&["--resume", log.to_str().expect("utf-8"), "-o", "json"])
        .output()
        .expect("resume");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{before} of 12 checks have a verdict; running the other {}",
            12 - before
        )),
        "{err}"
    );
    let reported = verdicts(&String::from_utf8_lossy(&resumed.stdout));
    assert_eq!(reported.len(), 12, "{reported:?}");
    for r in &reported {
        assert_eq!(r["passed"], true, "{r}");
        assert!(r["flow"]["verdict"].is_string(), "{r}");
    }
    let logged = verdicts(&std::fs::read_to_string(&log).expect("log"));
    let mut ids: Vec<String> = logged
        .iter()
        .map(|r| r["check_id"].as_str().expect("check_id").to_string())
        .collect();
    assert_eq!(ids.len(), 12, "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "a check recorded twice: {ids:?}");
}

/// `on: AGENT`: a connect and a talk check run on agent a (in the scanner
/// namespace), the controller in the target namespace. The target's
/// firewall lets port 2121 in only from a's address, so the same checks
/// run by the controller itself are refused: the verdicts prove where they
/// ran. A check with a spawned program on an agent is a plan error.
#[test]
fn checks_run_on_an_agent_with_on() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&[&format!(
        "tcp dport 2121 ip saddr != {SCANNER_V4} reject with tcp reset"
    )]);
    let mut banner = lab.spawn(
        lab.target_ns(),
        "socat",
        &[
            "TCP-LISTEN:2121,fork,reuseaddr",
            "SYSTEM:'echo 220 lab ftp ready; sleep 1'",
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("on.yaml");
    std::fs::write(
        &plan,
        format!(
            "agents:
  a: {{via: \"netns:{a}\", allow_targets: \"198.18.0.0/15\"}}
vars: {{server: \"{TARGET_V4}\"}}
checks:
  - {{name: open from a, on: a, connect: \"{{{{server}}}}:2121\", expect: open}}
  - name: banner from a
    on: \"{{{{where}}}}\"
    talk: {{target: \"{{{{server}}}}:2121\", steps: [{{name: banner, expect: \"^220 lab\"}}]}}
    matrix: [{{where: a}}]
  - {{name: refused here, connect: \"{{{{server}}}}:2121\", expect: closed}}
  - {{name: outside a's targets, on: a, connect: \"127.0.0.1:2121\", expect: open}}
",
            a = lab.scanner_ns()
        ),
    )
    .expect("plan");
    // Bounded: socat takes a moment to listen.
    let run = || {
        lab.command(lab.target_ns(), crate::util::bin())
            .args([
                "exercise",
                "run",
                plan.to_str().expect("utf-8"),
                "-o",
                "json",
            ])
            .output()
            .expect("run")
    };
    let mut out = run();
    let ready = |out: &std::process::Output| {
        crate::util::json_lines(&String::from_utf8_lossy(&out.stdout))
            .iter()
            .any(|r| r["name"] == "open from a" && r["passed"] == true)
    };
    for _ in 0..20 {
        if ready(&out) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run();
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let by_name = check_named(&text);
    let r = by_name("open from a");
    assert_eq!(
        (r["passed"].as_bool(), r["on"].as_str()),
        (Some(true), Some("a")),
        "{r}"
    );
    let r = by_name("banner from a [1]");
    assert_eq!(
        (r["passed"].as_bool(), r["on"].as_str()),
        (Some(true), Some("a")),
        "{r}"
    );
    assert_eq!(r["talk"]["ok"], true, "{r}");
    let r = by_name("refused here");
    assert_eq!(r["passed"], true, "{r}");
    assert!(r["on"].is_null(), "{r}");
    let r = by_name("outside a's targets");
    assert_eq!(r["passed"], false, "{r}");
    assert_eq!(
        r["result"],
        "Fail agent a: 127.0.0.1 is outside this agent's --allow-targets (198.18.0.0/15)",
        "{r}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let _ = banner.kill();
    let _ = banner.wait();

    std::fs::write(
        &plan,
        "agents: {a: {via: local}}\nchecks:\n  - {name: x, on: a, talk: {spawn: /bin/sh, steps: [{expect: x}]}}\n",
    )
    .expect("plan");
    let out = std::process::Command::new(crate::util::bin())
        .args(["exercise", "run", plan.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("an agent never runs a program"), "{err}");
}

/// An agent killed mid-run is started again (with backoff) and the check
/// it was in is run again: every verdict still comes out right, and the
/// evidence says what happened. When it cannot be started again, the
/// checks that needed it are INCONCLUSIVE with the reason, at once for
/// the later ones (no new backoff for each).
#[test]
fn an_agent_killed_mid_run_is_restarted_or_its_checks_are_inconclusive() {
    if !require_lab() {
        return;
    }
    let lab = firewalled(&["iifname != \"lo\" tcp dport 3001-3004 drop"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // b is reached through a wrapper (exec:) that refuses a second start
    // when `once` exists.
    let wrapper = d.join("b.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e {0}/once ] && [ -e {0}/started ]; then echo 'no second agent here' >&2; exit 1; fi\ntouch {0}/started\nexec ip netns exec {1} \"$@\"\n",
            d.display(),
            lab.target_ns()
        ),
    )
    .expect("wrapper");
    let plan = d.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "agents:
  a: {{via: \"netns:{a}\", allow_targets: \"198.18.0.0/15\"}}
  b: {{via: \"exec:sh {w}\", command: \"{bin}\", allow_listen: \"2001-2004,3001-3004\"}}
sequential: true
defaults: {{timeout: 1s}}
checks:
  - name: \"flow {{{{port}}}}\"
    flow: {{from: a, to: b, port: \"{{{{port}}}}\"}}
    matrix:
      - {{port: 2001, expect: allowed}}
      - {{port: 3001, expect: blocked}}
      - {{port: 3002, expect: blocked}}
      - {{port: 2002, expect: allowed}}
      - {{port: 3003, expect: blocked}}
      - {{port: 2003, expect: allowed}}
      - {{port: 3004, expect: blocked}}
      - {{port: 2004, expect: allowed}}
",
            a = lab.scanner_ns(),
            w = wrapper.display(),
            bin = crate::util::bin()
        ),
    )
    .expect("plan");
    // Runs the plan, kills agent b once two verdicts are logged.
    let run = |log: &std::path::Path| {
        let child = std::process::Command::new(crate::util::bin())
            .args([
                "exercise",
                "run",
                plan.to_str().expect("utf-8"),
                "-o",
                "json",
            ])
            .arg("--run-log")
            .arg(log)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("controller");
        let mut killed = false;
        for _ in 0..400 {
            let logged = std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("\"type\":\"check\"")
                .count();
            if logged >= 2 {
                for pid in agents_in(lab.target_ns()) {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    killed = true;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(killed, "agent b was never seen running");
        crate::support::netns::wait_output(child, Duration::from_secs(120))
    };

    let out = run(&d.join("one.jsonl"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let records: Vec<serde_json::Value> = crate::util::json_lines(&text)
        .into_iter()
        .filter(|r| r["type"] == "check")
        .collect();
    assert_eq!(records.len(), 8, "{text}");
    for r in &records {
        assert_eq!(r["passed"], true, "{r}");
    }
    assert!(
        text.contains("agent b went away during the check")
            && text.contains("started again (restart 1)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");

    // Now b cannot come back: the check in flight and every later one
    // that needs b are inconclusive, with the agent's own words.
    std::fs::write(d.join("once"), "").expect("once");
    let _ = std::fs::remove_file(d.join("started"));
    let out = run(&d.join("two.jsonl"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let records: Vec<serde_json::Value> = crate::util::json_lines(&text)
        .into_iter()
        .filter(|r| r["type"] == "check")
        .collect();
    assert_eq!(records.len(), 8, "{text}");
    let inconclusive: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["actual"] == "inconclusive")
        .collect();
    assert!(
        (4..=6).contains(&inconclusive.len()),
        "{} inconclusive: {text}",
        inconclusive.len()
    );
    for r in &inconclusive {
        assert!(
            r["result"]
                .as_str()
                .is_some_and(|t| t.contains("could not be started again")
                    && t.contains("agent b (exec:sh ")
                    && t.contains("no second agent here")),
            "{r}"
        );
    }
    assert_eq!(out.status.code(), Some(1), "{text}");
}

/// `push: true`: the far side (over real OpenSSH) has no sockeye at the
/// given path; the controller sends its own binary, the far side keeps it
/// in its cache folder under its SHA-256 and runs it. A second run sends
/// nothing; a damaged copy is sent again; a far host of another OS is one
/// clear line.
#[test]
fn push_sends_the_binary_checks_its_sha256_and_runs_it() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cache = d.join("cache");
    crate::support::sshd::make_keys(d);
    let sshd = crate::support::sshd::Sshd::start_with(
        lab.target_ns(),
        TARGET_V4,
        d,
        "b",
        &format!("SetEnv XDG_CACHE_HOME={}\n", cache.display()),
    );
    let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
    let config = crate::support::sshd::client_config(d, "known", &[TARGET_V4], &host_key);
    let plan = |b: &str| {
        format!(
            "agents:
  a: {{via: local, allow_targets: \"198.18.0.0/15\"}}
  b: {{{b}, command: /nonexistent/sockeye, push: true, allow_listen: \"80\"}}
checks:
  - {{name: to b, flow: {{from: a, to: b, port: 80}}, expect: allowed}}
"
        )
    };
    std::fs::write(
        d.join("ssh.yaml"),
        plan(&format!(
            "via: \"ssh://{TARGET_V4}\", ssh_config: \"{}\"",
            config.display()
        )),
    )
    .expect("plan");
    let run = |name: &str| {
        lab.command(lab.scanner_ns(), crate::util::bin())
            .args(["exercise", "run"])
            .arg(d.join(name))
            .output()
            .expect("run")
    };
    // sshd takes a moment to listen: bounded retries while it refuses.
    let mut out = run("ssh.yaml");
    for _ in 0..20 {
        if out.status.code() == Some(0) || !String::from_utf8_lossy(&out.stderr).contains("refused")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run("ssh.yaml");
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sha = |path: &std::path::Path| {
        let out = std::process::Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    };
    let ours = sha(std::path::Path::new(crate::util::bin()));
    let kept = cache.join("sockeye").join(format!("sockeye-{ours}"));
    assert_eq!(sha(&kept), ours);
    let modified = || {
        std::fs::metadata(&kept)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let first = modified();
    // Kept: nothing is sent again.
    let out = run("ssh.yaml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(modified(), first, "the binary was sent again");
    // Damaged: sent again, and the copy is whole.
    std::fs::write(&kept, b"#!/bin/sh\necho not sockeye\n").expect("damage");
    let out = run("ssh.yaml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha(&kept), ours);
    drop(sshd);

    // A far host of another OS (its uname says so): one line, no push.
    let fake = d.join("fakebin");
    std::fs::create_dir_all(&fake).expect("fakebin");
    std::fs::write(
        fake.join("uname"),
        "#!/bin/sh\ncase \"$1\" in -s) echo Plan9;; -m) echo mips;; esac\n",
    )
    .expect("uname");
    std::process::Command::new("chmod")
        .args(["755"])
        .arg(fake.join("uname"))
        .status()
        .expect("chmod");
    std::fs::write(
        d.join("exec.yaml"),
        plan(&format!(
            "via: \"exec:env PATH={}:/usr/sbin:/usr/bin:/sbin:/bin ip netns exec {}\"",
            fake.display(),
            lab.target_ns()
        )),
    )
    .expect("plan");
    let out = run("exec.yaml");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "sockeye-push: the far host is plan9 mips, this sockeye is built for {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
        "{err}"
    );
}
