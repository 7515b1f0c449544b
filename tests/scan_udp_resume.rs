//! `scan -sU --resume FILE`: a UDP scan of real services (socat echo on 7,
//! dnsmasq on 53, snmpd on 161), closed ports and ports nftables drops, in a
//! namespace with Linux's default ICMP rate limit (so that the scan takes
//! many seconds), stopped mid-way by SIGINT, SIGTERM or SIGKILL and run
//! again: the resumed run reports every port as an uninterrupted run does,
//! sends fewer probes, and a checkpoint of another command line is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::scan_acc::{probe_stat, read_json, stop_scan};
use crate::scan_lab::err_text;
use crate::scan_udp::{assert_default_icmp_limit, scan_in, start_services, udp_lab};
use crate::support::netns::{Lab, SCANNER_IF, SCANNER_V4, TARGET_V4, wait_output};
use crate::util::{bin, port_states, summary};

/// The scan: three services, 26 closed ports (6 answer at once, the others
/// one a second: the limit), 4 dropped ones.
const PORTS: &str = "7,53,161,1001-1030";
const N_PORTS: u64 = 33;
const DROPPED: [u64; 4] = [1005, 1010, 1015, 1020];

fn dropped_ruleset() -> String {
    let list: Vec<String> = DROPPED.iter().map(u64::to_string).collect();
    format!(
        "table ip drops {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    udp dport {{ {} }} drop\n  }}\n}}\n",
        list.join(", ")
    )
}

/// The numbers of a summary that must not depend on interruptions.
fn counts(records: &[Value]) -> Vec<u64> {
    let s = summary(records);
    [
        "hosts",
        "ports",
        "open",
        "closed",
        "filtered",
        "open_filtered",
    ]
    .iter()
    .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}")))
    .collect()
}

/// When a test stops the scan, as its checkpoint shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// Past the first burst of answers, while the host's ICMP pace is
    /// being measured: the resumed run measures it again.
    Measuring,
    /// Once the pace is measured: the resumed run takes it over and sends
    /// far fewer probes than a whole run.
    Paced,
}

/// Whether the checkpoint at `path` is where `stop` wants it.
fn reached(path: &Path, stop: Stop) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(cp) = serde_json::from_str::<Value>(&text) else {
        return false;
    };
    let paced = cp["udp"]["hosts"][0]["period_ms"].is_u64();
    match stop {
        Stop::Measuring => {
            !paced
                && cp["udp"]["counts"]["ports"]
                    .as_u64()
                    .is_some_and(|n| n >= 8)
        }
        Stop::Paced => paced,
    }
}

/// What every UDP port of [`PORTS`] is: (state, reason).
fn truth() -> BTreeMap<u64, (String, String)> {
    truth_to(1030)
}

/// What every UDP port of `7,53,161,1001-LAST` is: (state, reason).
fn truth_to(last: u64) -> BTreeMap<u64, (String, String)> {
    let mut want = BTreeMap::new();
    let mut put = |port: u64, state: &str, reason: &str| {
        want.insert(port, (state.to_owned(), reason.to_owned()));
    };
    for port in [7, 53, 161] {
        put(port, "open", "udp-response");
    }
    for port in 1001..=last {
        if DROPPED.contains(&port) {
            put(port, "open|filtered", "no-response");
        } else {
            put(port, "closed", "port-unreach");
        }
    }
    want
}

/// Starts the scan `args` (with `--resume` to `file`) and stops it with
/// `signal` once its checkpoint is at `stop`, before it ends.
fn start_and_stop(lab: &Lab, args: &[&str], file: &Path, stop: Stop, signal: Signal) {
    let mut child = lab.spawn(lab.scanner_ns(), bin(), args);
    // Well before the end: the limit lets one closed port answer a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached(file, stop) {
        assert!(Instant::now() < deadline, "no checkpoint at {stop:?}");
        assert!(
            child.try_wait().expect("poll the scan").is_none(),
            "the scan ended before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_scan(child, signal);
}

/// Stops a UDP scan with `signal` once its checkpoint is at `stop` (and
/// the scan has not ended), resumes it, and compares.
fn udp_scan_resumes_after(signal: Signal, stop: Stop) {
    let Some(lab) = udp_lab() else {
        return;
    };
    assert_default_icmp_limit(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    lab.nft(lab.target_ns(), &dropped_ruleset());
    let base = [
        "scan",
        "-sU",
        "-p",
        PORTS,
        "--all-states",
        "-o",
        "json",
        "-v",
    ];

    let (whole, whole_records) = scan_in(&lab, &[&base[..], &[TARGET_V4]].concat());
    assert_eq!(whole.status.code(), Some(0), "{}", err_text(&whole));
    let states = port_states(&whole_records);
    assert_eq!(states, truth(), "the uninterrupted run");
    let (whole_probes, whole_resumed) = probe_stat(&err_text(&whole));
    assert_eq!(whole_resumed, 0);

    let file = dir.path().join("udp.resume");
    let file_arg = file.to_str().expect("utf-8 path");
    let first = [&base[..], &["--resume", file_arg, TARGET_V4]].concat();
    start_and_stop(&lab, &first, &file, stop, signal);
    let cp = read_json(&file);
    assert_eq!(cp["format"], "sockeye scan checkpoint 2", "{cp}");
    assert!(cp["tcp"].is_null(), "a UDP scan saves no TCP part: {cp}");
    assert_eq!(cp["udp"]["complete"], false, "stopped mid-way: {cp}");
    let decided = cp["udp"]["counts"]["ports"].as_u64().expect("counts");
    assert!((8..N_PORTS).contains(&decided), "{decided} ports decided");

    let again = [&base[..], &["--resume", file_arg, TARGET_V4]].concat();
    let (out, records) = scan_in(&lab, &again);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(port_states(&records), states, "resumed port states");
    assert_eq!(counts(&records), counts(&whole_records), "resumed summary");
    // The limited host is still named once (its books came back with it).
    for r in [&whole_records, &records] {
        let s = summary(r);
        assert!(
            s["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("ICMP rate limiting detected on 1 host")),
            "{s}"
        );
    }
    let hosts: Vec<&Value> = records.iter().filter(|r| r["type"] == "host").collect();
    assert_eq!(hosts.len(), 1, "one host record: {records:?}");
    let (probes, resumed) = probe_stat(&err_text(&out));
    assert!(resumed >= decided, "resumed {resumed} of {decided}");
    if stop == Stop::Paced {
        assert!(
            probes < whole_probes / 2,
            "resumed run sent {probes} probes, a whole run {whole_probes}"
        );
    }
    let cp = read_json(&file);
    assert_eq!(cp["udp"]["complete"], true, "{cp}");

    // A finished checkpoint resumes to the same output without a probe.
    let (out, records) = scan_in(&lab, &again);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(port_states(&records), states, "complete checkpoint");
    assert_eq!(probe_stat(&err_text(&out)).0, 0, "nothing sent");

    // Other ports, or a TCP scan, with this checkpoint: refused, named.
    for (args, difference) in [
        (
            vec!["scan", "-sU", "-p", "7,53", "--resume", file_arg, TARGET_V4],
            format!("--ports differs: {PORTS} in the checkpoint, 7,53 now"),
        ),
        (
            vec!["scan", "-sT", "-p", PORTS, "--resume", file_arg, TARGET_V4],
            "scan type differs: udp in the checkpoint, connect now".to_owned(),
        ),
    ] {
        let child = lab.spawn(lab.scanner_ns(), bin(), &args);
        let out = wait_output(child, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", err_text(&out));
        assert!(
            err_text(&out).contains(&difference),
            "{args:?}: want {difference:?} in: {}",
            err_text(&out)
        );
    }
}

#[test]
fn udp_scan_resumes_after_sigint() {
    udp_scan_resumes_after(Signal::SIGINT, Stop::Paced);
}

/// Stopped while the pace is measured: the resumed run measures it again
/// (its probe count is then about a whole run's), and the states are right.
#[test]
fn udp_scan_resumes_after_sigterm() {
    udp_scan_resumes_after(Signal::SIGTERM, Stop::Measuring);
}

#[test]
fn udp_scan_resumes_after_sigkill() {
    udp_scan_resumes_after(Signal::SIGKILL, Stop::Paced);
}

/// TCP and UDP in one run with one `--resume` file: each engine saves its
/// part; killed while the UDP part is under way (the TCP one done or
/// nearly), the resumed run reports every port of both protocols right, in
/// one host record.
#[test]
fn tcp_and_udp_in_one_run_resume_from_one_file() {
    let Some(lab) = udp_lab() else {
        return;
    };
    assert_default_icmp_limit(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    let _tcp = lab.listen(lab.target_ns(), TARGET_V4, &[22, 80]);
    lab.nft(lab.target_ns(), &dropped_ruleset());
    lab.nft(
        lab.target_ns(),
        "table ip tcp_drops {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 81 drop\n  }\n}\n",
    );
    let file = dir.path().join("mixed.resume");
    let file_arg = file.to_str().expect("utf-8 path");
    let ports = format!("T:22,80,81,U:{PORTS}");
    let args = [
        "scan",
        "-sS",
        "-sU",
        "-p",
        &ports,
        "--all-states",
        "-o",
        "json",
        "-v",
        "--resume",
        file_arg,
        TARGET_V4,
    ];
    start_and_stop(&lab, &args, &file, Stop::Paced, Signal::SIGKILL);
    let cp = read_json(&file);
    assert!(cp["tcp"].is_object() && cp["udp"].is_object(), "{cp}");
    assert_eq!(cp["udp"]["complete"], false, "{cp}");
    let decided = cp["tcp"]["counts"]["ports"].as_u64().unwrap_or(0)
        + cp["udp"]["counts"]["ports"].as_u64().unwrap_or(0);

    let (out, records) = scan_in(&lab, &args);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let mut got = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "port") {
        let key = (
            r["proto"].as_str().unwrap_or("?").to_owned(),
            r["port"].as_u64().unwrap_or(0),
        );
        let value = (
            r["state"].as_str().unwrap_or("?").to_owned(),
            r["reason"].as_str().unwrap_or("?").to_owned(),
        );
        assert!(got.insert(key.clone(), value).is_none(), "{key:?} twice");
    }
    let mut want: BTreeMap<(String, u64), (String, String)> = truth()
        .into_iter()
        .map(|(port, v)| (("udp".to_owned(), port), v))
        .collect();
    for (port, state, reason) in [
        (22, "open", "syn-ack"),
        (80, "open", "syn-ack"),
        (81, "filtered", "no-response"),
    ] {
        want.insert(
            ("tcp".to_owned(), port),
            (state.to_owned(), reason.to_owned()),
        );
    }
    assert_eq!(got, want, "resumed mixed run");
    let hosts: Vec<&Value> = records.iter().filter(|r| r["type"] == "host").collect();
    assert_eq!(hosts.len(), 1, "one host record: {records:?}");
    let s = summary(&records);
    assert_eq!((&s["hosts"], &s["ports"]), (&1.into(), &36.into()), "{s}");
    let (_, resumed) = probe_stat(&err_text(&out));
    assert!(resumed >= decided, "resumed {resumed} of {decided}");
    let cp = read_json(&file);
    assert_eq!(
        (&cp["tcp"]["complete"], &cp["udp"]["complete"]),
        (&true.into(), &true.into()),
        "{cp}"
    );
}

/// Paced from two addresses (`--source`, not a scan-defining flag),
/// resumed from one: the checkpoint keeps the pace of one address (about
/// the limit's second, not the half second the host was probed at), so
/// the one address is not probed twice as fast as its share allows and
/// every closed port stays closed.
#[test]
fn a_resumed_run_with_fewer_source_addresses_keeps_each_paced() {
    let Some(lab) = udp_lab() else {
        return;
    };
    assert_default_icmp_limit(&lab);
    let extra = "198.18.0.3";
    lab.exec(
        lab.scanner_ns(),
        &[
            "ip",
            "addr",
            "add",
            &format!("{extra}/24"),
            "dev",
            SCANNER_IF,
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    lab.nft(lab.target_ns(), &dropped_ruleset());
    let file = dir.path().join("udp.resume");
    let file_arg = file.to_str().expect("utf-8 path");
    // More closed ports than the other tests: two addresses learn them
    // twice as fast, and the scan must still be running once paced.
    let base = [
        "scan",
        "-sU",
        "-p",
        "7,53,161,1001-1060",
        "--all-states",
        "-o",
        "json",
        "--resume",
        file_arg,
    ];
    let sources = format!("{SCANNER_V4},{extra}");
    let two = [&base[..], &["--source", &sources, TARGET_V4]].concat();
    start_and_stop(&lab, &two, &file, Stop::Paced, Signal::SIGTERM);
    let lane_ms = read_json(&file)["udp"]["hosts"][0]["period_ms"]
        .as_u64()
        .expect("a pace");
    assert!(
        (900..1500).contains(&lane_ms),
        "one address's pace: {lane_ms} ms"
    );
    let one = [&base[..], &[TARGET_V4]].concat();
    let (out, records) = scan_in(&lab, &one);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(
        port_states(&records),
        truth_to(1060),
        "resumed from one address"
    );
    assert_eq!(read_json(&file)["udp"]["complete"], true);
}
