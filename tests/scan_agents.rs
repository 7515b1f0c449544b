//! `sockeye scan --agents LABEL --plan PLAN`: a scan split across three
//! agents (`netns:` the lab's scanner namespace, 198.18.0.0/15 only) prints
//! what the same scan run whole prints; a label nobody has, and a target
//! outside an agent's `--allow-targets`, are one line and exit status 2;
//! Ctrl-C, and an agent lost mid-shard, leave the partial scan printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::report::{comparable, scan_args};
use crate::support::netns::{Lab, ListenerGuard, require_lab, wait_output};
use crate::util::{bin, json_lines, show, stderr};

const LIMIT: Duration = Duration::from_secs(90);

/// A plan of three scanners (allowed the whole test range), two slow ones
/// (20 connects a second) and one agent allowed only the first target,
/// all in the lab's scanner namespace.
fn write_plan(dir: &Path, scanner_ns: &str) -> std::path::PathBuf {
    let plan = format!(
        "agents:\n\
         \x20 s1: {{via: \"netns:{scanner_ns}\", labels: [scanners], allow_targets: \"198.18.0.0/15\", max_rate: 2000}}\n\
         \x20 s2: {{via: \"netns:{scanner_ns}\", labels: [scanners, zone-a], allow_targets: \"198.18.0.0/15\", max_rate: 2000}}\n\
         \x20 s3: {{via: \"netns:{scanner_ns}\", labels: [scanners], allow_targets: \"198.18.0.0/15\", max_rate: 2000}}\n\
         \x20 slow1: {{via: \"netns:{scanner_ns}\", labels: [slow], max_rate: 20}}\n\
         \x20 slow2: {{via: \"netns:{scanner_ns}\", labels: [slow], max_rate: 20}}\n\
         \x20 narrow: {{via: \"netns:{scanner_ns}\", labels: [narrow], allow_targets: \"198.18.0.2/32\"}}\n\
         checks:\n\
         \x20 - name: the target answers\n\
         \x20   connect: \"198.18.0.2:22\"\n"
    );
    let path = dir.join("agents.yaml");
    std::fs::write(&path, plan).expect("write the plan");
    path
}

/// The controller, here (it sends nothing itself: its agents do).
/// It leads a process group of its own, with its `netns:` agents in it, as
/// a command typed in a terminal does.
fn controller(args: &[String]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(bin())
        .args(args)
        .process_group(0)
        .env_remove("SOCKEYE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sockeye")
}

fn with_agents(label: &str, plan: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = scan_args(extra);
    args.splice(
        1..1,
        [
            "--agents".to_string(),
            label.to_string(),
            "--plan".to_string(),
            plan.to_str().expect("utf-8").to_string(),
        ],
    );
    args
}

/// Three agents labelled `scanners` split the scan of tests/report.rs (five
/// hosts, 121 ports: open, closed, dropped and ICMP-rejected ones): the
/// merged JSON Lines hold the same port and host records and counts as the
/// whole scan run in the scanner namespace with the same seed; the table
/// has one block per host.
#[test]
fn three_agents_scan_what_one_scan_does() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.add_local_range(lab.target_ns(), "198.18.1.0/30");
    lab.unlimit_icmp(lab.target_ns());
    let _l = lab.listen(lab.target_ns(), "0.0.0.0", &[22, 80, 443]);
    lab.nft(
        lab.target_ns(),
        "table inet fw { chain input { type filter hook input priority 0; policy accept;\n\
         tcp dport 100-104 drop\n\
         tcp dport 105 reject with icmpx admin-prohibited\n}\n}",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), lab.scanner_ns());
    let whole_json = dir.path().join("whole.jsonl");
    let merged_json = dir.path().join("merged.jsonl");

    let whole = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &scan_args(&["-o", &format!("json={}", whole_json.display())]),
    );
    let whole = wait_output(whole, LIMIT);
    assert_eq!(whole.status.code(), Some(0), "{}", show(&whole));

    let out = wait_output(
        controller(&with_agents(
            "scanners",
            &plan,
            &[
                "-o",
                &format!("json={}", merged_json.display()),
                "-o",
                "table",
            ],
        )),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let whole = json_lines(&std::fs::read_to_string(&whole_json).expect("whole"));
    let merged = json_lines(&std::fs::read_to_string(&merged_json).expect("merged"));
    let (w_ports, w_hosts, w_counts) = comparable(&whole);
    let (m_ports, m_hosts, m_counts) = comparable(&merged);
    assert_eq!(m_ports, w_ports);
    assert_eq!(m_hosts, w_hosts);
    assert_eq!(m_counts, w_counts);
    assert_eq!(
        m_counts,
        serde_json::json!({"hosts": 5, "ports": 5 * 121, "open": 15, "closed": 5 * 112,
                           "filtered": 5 * 6})
    );
    assert!(merged.iter().all(|r| r["type"] != "run"));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.matches(" report for ").count(), 5, "{table}");
}

/// A label no agent has, and a target outside the only agent's
/// `--allow-targets` (a network, or a name's address), are one line each
/// and exit status 2; nothing is printed on stdout.
#[test]
fn a_missing_label_and_a_target_outside_the_limits_are_one_line() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), lab.scanner_ns());

    let out = wait_output(controller(&with_agents("nobody", &plan, &[])), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no agent of") && err.contains("\"nobody\""),
        "{err}"
    );
    assert!(err.contains("narrow, scanners, slow, zone-a"), "{err}");
    assert!(out.stdout.is_empty(), "{}", show(&out));

    // 198.18.1.0/30 lies outside narrow's 198.18.0.2/32.
    let out = wait_output(controller(&with_agents("narrow", &plan, &[])), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "agent narrow: 198.18.1.0 is outside this agent's --allow-targets (198.18.0.2/32)"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));

    // A name is resolved by the agent and its addresses checked.
    let args: Vec<String> = [
        "scan",
        "--agents",
        "narrow",
        "--plan",
        plan.to_str().expect("utf-8"),
        "-sT",
        "-p",
        "22",
        "198.18.0.2",
        "localhost",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = wait_output(controller(&args), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        ["127.0.0.1", "::1"].iter().any(|a| err.contains(&format!(
            "agent narrow: {a} is outside this agent's --allow-targets"
        ))),
        "{err}"
    );
}

/// A lab whose target listens on 22, 80 and 443, and a folder for files.
fn slow_lab() -> (Lab, ListenerGuard, tempfile::TempDir) {
    let lab = Lab::new();
    let listening = lab.listen(lab.target_ns(), "0.0.0.0", &[22, 80, 443]);
    (lab, listening, tempfile::tempdir().expect("tempdir"))
}

/// The summary of the JSON Lines in `json`, which must say the scan was
/// interrupted, and its count of ports.
fn interrupted_summary(json: &Path) -> (serde_json::Value, u64) {
    let records = json_lines(&std::fs::read_to_string(json).expect("json"));
    let summary = records
        .into_iter()
        .find(|r| r["type"] == "summary")
        .expect("a summary");
    assert_eq!(summary["interrupted"], true, "{summary}");
    let ports = summary["ports"].as_u64().expect("ports");
    (summary, ports)
}

/// The controller of a scan of `ports` on the target by the two slow
/// agents (20 connects a second each), writing JSON Lines to `json`.
fn slow_scan(
    lab: &Lab,
    dir: &Path,
    ports: &str,
    json: &Path,
    extra: &[&str],
) -> std::process::Child {
    let plan = write_plan(dir, lab.scanner_ns());
    let mut args: Vec<String> = [
        "scan",
        "--agents",
        "slow",
        "--plan",
        plan.to_str().expect("utf-8"),
        "-sT",
        "-p",
        ports,
        "--seed",
        "11",
        "-o",
        &format!("json={}", json.display()),
        crate::support::netns::TARGET_V4,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    controller(&args)
}

/// Ctrl-C (SIGINT to the controller's process group, its agents included)
/// stops both agents' shards: the controller prints the partial merged
/// scan, says it was interrupted and exits 130, well before the slow
/// agents would have finished, and no agent died of the signal.
#[test]
fn ctrl_c_prints_the_partial_scan() {
    if !require_lab() {
        return;
    }
    let (lab, _listening, dir) = slow_lab();
    let json = dir.path().join("partial.jsonl");
    let child = slow_scan(&lab, dir.path(), "1-3000", &json, &["-o", "table"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Two agents at 20 a second need 75 s for 3000 ports.
    std::thread::sleep(Duration::from_secs(3));
    let sent = std::time::Instant::now();
    // A terminal's Ctrl-C: the whole group, agents included.
    nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = wait_output(child, Duration::from_secs(20));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    // The agents stopped their shards rather than die of the signal.
    assert!(!stderr(&out).contains("went away"), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("Interrupted"), "{table}");
    let (summary, ports) = interrupted_summary(&json);
    assert!(ports > 0 && ports < 3000, "{summary}");
}

/// An agent killed mid-shard: the controller names it, prints the merged
/// scan of what the shards found (marked interrupted) and exits 1, after
/// the other agent finished its shard.
#[test]
fn a_lost_agent_leaves_a_partial_scan_and_exit_1() {
    if !require_lab() {
        return;
    }
    let (lab, _listening, dir) = slow_lab();
    let json = dir.path().join("partial.jsonl");
    let child = slow_scan(&lab, dir.path(), "1-400", &json, &[]);
    // Each agent has 200 ports at 20 a second: 10 s of work.
    std::thread::sleep(Duration::from_secs(3));
    let pids = Command::new("ip")
        .args(["netns", "pids", lab.scanner_ns()])
        .output()
        .expect("ip netns pids");
    let pids: Vec<i32> = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "two agents run in the namespace: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL");
    let out = wait_output(child, LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("went away") && err.contains("its shard is partial"),
        "{err}"
    );
    let (summary, ports) = interrupted_summary(&json);
    assert!((200..400).contains(&ports), "{summary}");
}
