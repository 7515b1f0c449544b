//! Scan accuracy where the target or the network misbehaves, across network
//! namespaces each test creates (198.18.0.0/15 only): a host that answers on
//! every port (an nftables redirect of every TCP port to one listener, as a
//! SYN proxy or tarpit does) is flagged instead of listed as all open; a
//! scan killed mid-way (SIGINT, SIGTERM, SIGKILL) and resumed from its
//! checkpoint gives what an uninterrupted run gives, with fewer probes; a
//! scan through a path that drops 2% of the scanner's packets at random
//! still gets every port's true state.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::scan_lab::{err_text, scan_in};
use crate::support::netns::{Lab, TARGET_V4, require_lab, try_wait_output, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, port_states, summary};

/// Every TCP port of the target is redirected to one listener on 7777.
const REDIRECT_ALL: &str = "table ip tarpit {\n  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    tcp dport 1-65535 redirect to :7777\n  }\n}\n";

/// A target whose every port answers: the JSON host record and the table say
/// so, no port is listed, and the summary explains why; nmap XML stays valid.
fn answers_on_every_port_is_flagged(scan_type: &str) {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[7777]);
    lab.nft(lab.target_ns(), REDIRECT_ALL);
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("tarpit.xml");
    let table = dir.path().join("tarpit.txt");
    let (xml_arg, table_arg) = (
        format!("xml={}", xml.display()),
        format!("table={}", table.display()),
    );
    let (out, records) = scan_in(
        &lab,
        &[
            "scan", scan_type, "-p", "1-1000", "-o", "json", "-o", &xml_arg, "-o", &table_arg,
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert!(
        port_states(&records).is_empty(),
        "no port of a host that answers on all of them is listed: {records:?}"
    );
    let host = records
        .iter()
        .find(|r| r["type"] == "host")
        .expect("host record");
    assert_eq!(
        host["unreliable"],
        "answers on all 1000 probed ports: results for this host are unreliable",
        "{host}"
    );
    assert_eq!(host["open"], 1000, "{host}");
    let s = summary(&records);
    assert!(
        s["note"]
            .as_str()
            .is_some_and(|n| n.contains("1 host answered on every probed port")),
        "{s}"
    );
    let text = std::fs::read_to_string(&table).expect("table file");
    assert!(
        text.contains(
            "Host answers on all 1000 probed ports: results for this host are unreliable"
        ),
        "{text}"
    );
    assert!(
        text.contains("Not shown: 1000 open tcp ports (syn-ack)"),
        "{text}"
    );
    assert!(!text.contains("7/tcp"), "{text}");
    assert_valid_nmap_xml(&xml);
    let xml_text = std::fs::read_to_string(&xml).expect("xml file");
    assert!(
        xml_text.contains("comment=\"answers on all 1000 probed ports"),
        "{xml_text}"
    );
    assert!(
        xml_text.contains("<extraports state=\"open\" count=\"1000\">"),
        "{xml_text}"
    );

    // Below the threshold every open port is listed as usual.
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &["scan", scan_type, "-p", "1-50", "-o", "json", TARGET_V4],
    );
    let out = wait_output(child, Duration::from_secs(60));
    let records = crate::util::json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    assert_eq!(states.len(), 50, "{records:?}");
    assert!(states.values().all(|(s, _)| s == "open"), "{states:?}");
    let host = records.iter().find(|r| r["type"] == "host").expect("host");
    assert!(host.get("unreliable").is_none(), "{host}");
}

#[test]
fn connect_scan_flags_a_host_that_answers_on_every_port() {
    answers_on_every_port_is_flagged("-sT");
}

#[test]
fn syn_scan_flags_a_host_that_answers_on_every_port() {
    answers_on_every_port_is_flagged("-sS");
}

/// The listeners of the resume tests: the ends of the range and a few between.
const RESUME_OPEN: [u16; 6] = [1, 22, 443, 8080, 40000, 65535];

/// The numbers of a summary that must not depend on interruptions.
fn counts(records: &[Value]) -> Vec<u64> {
    let s = summary(records);
    ["hosts", "ports", "open", "closed", "filtered"]
        .iter()
        .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}")))
        .collect()
}

pub(crate) fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("checkpoint file");
    serde_json::from_str(&text).expect("checkpoint is JSON")
}

/// `probes=N resumed=M` from the `-v` line at the end of a scan.
pub(crate) fn probe_stat(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("probes sent"))
        .unwrap_or_else(|| panic!("no probe count in: {stderr}"));
    let value = |key: &str| -> u64 {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    (value("probes="), value("resumed="))
}

/// Sends `signal` to a running scan and waits (at most 30 s) until it
/// stops: status 130 after Ctrl-C or SIGTERM (results printed, checkpoint
/// written), killed by SIGKILL.
pub(crate) fn stop_scan(child: std::process::Child, signal: Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("signal the scan");
    let stopped = try_wait_output(child, Duration::from_secs(30))
        .unwrap_or_else(|o| panic!("scan did not stop after {signal}: {}", err_text(&o)));
    match signal {
        Signal::SIGKILL => assert_eq!(stopped.status.code(), None, "killed"),
        _ => assert_eq!(stopped.status.code(), Some(130), "{}", err_text(&stopped)),
    }
}

/// A full-range scan stopped by `signal` part-way and resumed from its
/// checkpoint: the resumed run reports what an uninterrupted run reports
/// (open ports and counts), and sends fewer probes than a whole scan.
fn resumed_scan_equals_an_uninterrupted_one(scan_type: &str, signal: Signal) {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &RESUME_OPEN);
    let base = ["scan", scan_type, "-p-", "--seed", "7", "-o", "json"];
    let (whole, whole_records) = scan_in(&lab, &[&base[..], &[TARGET_V4]].concat());
    assert_eq!(whole.status.code(), Some(0), "{}", err_text(&whole));
    let open = port_states(&whole_records);
    assert_eq!(
        open.keys().map(|p| *p as u16).collect::<Vec<_>>(),
        RESUME_OPEN,
        "the uninterrupted run"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("scan.resume");
    let file_arg = file.to_str().expect("utf-8 path");
    // Slowed down so that the signal comes mid-way (about 13 s for the range).
    let slow = [
        &base[..],
        &["--rate", "5000", "--resume", file_arg, TARGET_V4],
    ]
    .concat();
    let child = lab.spawn(lab.scanner_ns(), bin(), &slow);
    // SIGKILL gives no chance to write: the periodic checkpoint must be there.
    std::thread::sleep(Duration::from_millis(3500));
    stop_scan(child, signal);
    let cp = read_json(&file);
    assert!(cp["udp"].is_null(), "a TCP scan saves no UDP part: {cp}");
    let cp = &cp["tcp"];
    assert_eq!(cp["complete"], false, "stopped mid-way");
    let decided = cp["counts"]["ports"].as_u64().expect("counts");
    assert!(decided > 0 && decided < 65_535, "{decided} pairs decided");

    // The same command line, without the rate cap (not a scan-defining flag).
    let again = [&base[..], &["--resume", file_arg, "-v", TARGET_V4]].concat();
    let child = lab.spawn(lab.scanner_ns(), bin(), &again);
    let out = wait_output(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(port_states(&records), open, "resumed open ports");
    assert_eq!(counts(&records), counts(&whole_records), "resumed summary");
    let (probes, resumed) = probe_stat(&err_text(&out));
    assert!(resumed >= decided, "resumed {resumed} of {decided}");
    assert!(
        probes < 65_535 && probes + resumed >= 65_535,
        "probes {probes}, resumed {resumed}"
    );
    let cp = read_json(&file);
    assert_eq!(cp["tcp"]["complete"], true, "{cp}");

    // Another command line is refused, the difference named, nothing sent.
    let other = [&base[..], &["-p", "22", "--resume", file_arg]].concat();
    let other: Vec<&str> = other.into_iter().filter(|a| *a != "-p-").collect();
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &[&other[..], &[TARGET_V4]].concat(),
    );
    let out = wait_output(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", err_text(&out));
    assert!(
        err_text(&out).contains("--ports differs: 1-65535 in the checkpoint, 22 now"),
        "{}",
        err_text(&out)
    );
}

#[test]
fn connect_scan_resumes_after_sigint() {
    resumed_scan_equals_an_uninterrupted_one("-sT", Signal::SIGINT);
}

#[test]
fn connect_scan_resumes_after_sigterm() {
    resumed_scan_equals_an_uninterrupted_one("-sT", Signal::SIGTERM);
}

#[test]
fn connect_scan_resumes_after_sigkill() {
    resumed_scan_equals_an_uninterrupted_one("-sT", Signal::SIGKILL);
}

#[test]
fn syn_scan_resumes_after_sigkill() {
    resumed_scan_equals_an_uninterrupted_one("-sS", Signal::SIGKILL);
}

#[test]
fn syn_scan_resumes_after_sigint() {
    resumed_scan_equals_an_uninterrupted_one("-sS", Signal::SIGINT);
}

/// The target drops 2% of what the scanner sends, at random, and every
/// packet to three ports.
const LOSSY: &str = "table inet lossy {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr 198.18.0.1 numgen random mod 100 < 2 drop\n    tcp dport { 333, 1444, 2999 } drop\n  }\n}\n";

/// Through random loss, no open or closed port is mistaken for a filtered
/// one: the engine sees probes lost (ports that answered only a retry) and
/// gives silent ports more retries (not timed: BENCHMARKS.md times it).
fn lossy_path_gets_the_true_states(scan_type: &str) {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let open = [22u16, 80, 443, 2048];
    let filtered = [333u64, 1444, 2999];
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &open);
    lab.nft(lab.target_ns(), LOSSY);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            scan_type,
            "-p",
            "1-3000",
            "--all-states",
            "-o",
            "json",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    assert_eq!(states.len(), 3000);
    let wrong: Vec<_> = states
        .iter()
        .filter(|(p, (s, _))| {
            let truth = if open.contains(&(**p as u16)) {
                "open"
            } else if filtered.contains(p) {
                "filtered"
            } else {
                "closed"
            };
            s != truth
        })
        .collect();
    assert!(wrong.is_empty(), "wrong states: {wrong:?}");
}

#[test]
fn connect_scan_through_random_loss_gets_the_true_states() {
    lossy_path_gets_the_true_states("-sT");
}

#[test]
fn syn_scan_through_random_loss_gets_the_true_states() {
    lossy_path_gets_the_true_states("-sS");
}
