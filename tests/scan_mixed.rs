//! TCP and UDP in one run (`-sT -sU`, `-sS -sU`, `-p T:..,U:..`): both
//! engines against real listeners in a namespace (listen.py on TCP; socat,
//! dnsmasq and snmpd on UDP), one report per host in every format.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scan_udp::{scan_in, start_services, udp_lab};
use crate::support::netns::TARGET_V4;
use crate::util::{assert_valid_nmap_xml, show, summary};

/// Port records keyed by (proto, port): (state, reason); a pair twice fails.
fn states(records: &[Value]) -> BTreeMap<(String, u64), (String, String)> {
    let mut map = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "port") {
        let key = (
            r["proto"].as_str().expect("proto").to_owned(),
            r["port"].as_u64().expect("port"),
        );
        let value = (
            r["state"].as_str().expect("state").to_owned(),
            r["reason"].as_str().expect("reason").to_owned(),
        );
        assert!(map.insert(key.clone(), value).is_none(), "{key:?} twice");
    }
    map
}

fn key(proto: &str, port: u64) -> (String, u64) {
    (proto.to_owned(), port)
}

/// Both scan types with -sU, every port listed: the ports before the first
/// prefix go to both protocols, U: ports to UDP only; one host record with
/// both protocols' counts; XML with two scaninfo elements and one host.
#[test]
fn tcp_and_udp_in_one_run_make_one_report_per_host() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    let _tcp = lab.listen(lab.target_ns(), TARGET_V4, &[22, 80]);
    lab.nft(
        lab.target_ns(),
        "table ip sockeye_mixed {
           chain input {
             type filter hook input priority 0; policy accept;
             tcp dport 81 drop
             udp dport 200 drop
           }
         }",
    );
    for scan_type in ["-sT", "-sS"] {
        let xml = dir.path().join(format!("mixed{scan_type}.xml"));
        let table = dir.path().join(format!("mixed{scan_type}.txt"));
        let (out, records) = scan_in(
            &lab,
            &[
                "scan",
                scan_type,
                "-sU",
                "-p",
                "22,80,81,U:7,53,161,200",
                "--all-states",
                "--retries",
                "1",
                "--max-rtt-timeout",
                "300ms",
                "-o",
                "json",
                "-o",
                &format!("xml={}", xml.display()),
                "-o",
                &format!("table={}", table.display()),
                TARGET_V4,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{scan_type}: {}", show(&out));
        let got = states(&records);
        let want = [
            (key("tcp", 22), ("open", "syn-ack")),
            (key("tcp", 80), ("open", "syn-ack")),
            (key("tcp", 81), ("filtered", "no-response")),
            (key("udp", 22), ("closed", "port-unreach")),
            (key("udp", 80), ("closed", "port-unreach")),
            (key("udp", 81), ("closed", "port-unreach")),
            (key("udp", 7), ("open", "udp-response")),
            (key("udp", 53), ("open", "udp-response")),
            (key("udp", 161), ("open", "udp-response")),
            (key("udp", 200), ("open|filtered", "no-response")),
        ];
        let want: BTreeMap<(String, u64), (String, String)> = want
            .into_iter()
            .map(|(k, (s, r))| (k, (s.to_owned(), r.to_owned())))
            .collect();
        assert_eq!(got, want, "{scan_type}");
        let hosts: Vec<&Value> = records.iter().filter(|r| r["type"] == "host").collect();
        assert_eq!(hosts.len(), 1, "{scan_type}: one host record: {records:?}");
        let h = hosts[0];
        assert_eq!(
            (
                &h["open"],
                &h["closed"],
                &h["filtered"],
                &h["open_filtered"]
            ),
            (&5.into(), &3.into(), &1.into(), &1.into()),
            "{scan_type}: {h}"
        );
        let s = summary(&records);
        assert_eq!((&s["hosts"], &s["ports"]), (&1.into(), &10.into()), "{s}");

        assert_valid_nmap_xml(&xml);
        let doc = std::fs::read_to_string(&xml).expect("xml");
        let tcp_type = if scan_type == "-sS" { "syn" } else { "connect" };
        for needle in [
            format!("<scaninfo type=\"{tcp_type}\" protocol=\"tcp\" numservices=\"3\" services=\"22,80-81\"/>"),
            "<scaninfo type=\"udp\" protocol=\"udp\" numservices=\"7\" services=\"7,22,53,80-81,161,200\"/>".to_owned(),
            "<port protocol=\"tcp\" portid=\"22\"><state state=\"open\"".to_owned(),
            "<port protocol=\"udp\" portid=\"22\"><state state=\"closed\" reason=\"port-unreach\"".to_owned(),
        ] {
            assert!(doc.contains(&needle), "{scan_type}: {needle} missing:\n{doc}");
        }
        assert_eq!(doc.matches("<host ").count(), 1, "{doc}");
        let text = std::fs::read_to_string(&table).expect("table");
        assert_eq!(text.matches("report for").count(), 1, "{text}");
        for needle in ["22/tcp", "22/udp", "53/udp", "81/tcp", "200/udp"] {
            assert!(
                text.contains(needle),
                "{scan_type}: {needle} missing:\n{text}"
            );
        }
    }
}

/// Without --all-states the table counts each protocol's closed ports on
/// its own ("39 closed tcp ports (conn-refused), 39 closed udp ports
/// (port-unreach)") and lists the open ones of both.
#[test]
fn ignored_ports_are_counted_per_protocol() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    let _tcp = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let table = dir.path().join("mixed.txt");
    let xml = dir.path().join("mixed.xml");
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-sU",
            "-p",
            "1-40",
            "--max-rtt-timeout",
            "300ms",
            "-o",
            "json",
            "-o",
            &format!("table={}", table.display()),
            "-o",
            &format!("xml={}", xml.display()),
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let got = states(&records);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        vec![key("tcp", 22), key("udp", 7)],
        "open ports only: {got:?}"
    );
    let text = std::fs::read_to_string(&table).expect("table");
    assert!(
        text.contains(
            "Not shown: 39 closed tcp ports (conn-refused), 39 closed udp ports (port-unreach)"
        ),
        "{text}"
    );
    assert_valid_nmap_xml(&xml);
    let doc = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        doc.contains("<extraports state=\"closed\" count=\"78\">"),
        "{doc}"
    );
    for needle in [
        "<extrareasons reason=\"conn-refused\" count=\"39\" proto=\"tcp\"/>",
        "<extrareasons reason=\"port-unreach\" count=\"39\" proto=\"udp\"/>",
    ] {
        assert!(doc.contains(needle), "{needle} missing:\n{doc}");
    }
}

/// `-p U:53` alone is a UDP scan; `-p T:22,U:7` without a scan type scans
/// both; `-sU -p T:22,U:7` too (the T: ports ask for TCP).
#[test]
fn port_prefixes_choose_the_protocols() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    let _tcp = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, u64)]);
    let cases: [Case; 3] = [
        (&["-p", "U:7,22"], &[("udp", 7)]),
        (&["-p", "T:22,U:7"], &[("tcp", 22), ("udp", 7)]),
        (&["-sU", "-p", "T:22,U:7"], &[("tcp", 22), ("udp", 7)]),
    ];
    for (flags, open) in cases {
        let mut args = vec!["scan"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--max-rtt-timeout", "300ms", "-o", "json", TARGET_V4]);
        let (out, records) = scan_in(&lab, &args);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", show(&out));
        let got: Vec<(String, u64)> = states(&records).into_keys().collect();
        let want: Vec<(String, u64)> = open.iter().map(|(p, n)| key(p, *n)).collect();
        assert_eq!(got, want, "{flags:?}");
    }
}

/// Ctrl-C while the UDP half still waits on the target's ICMP limit: exit
/// 130, the TCP port found is kept in every format, and the host ends with
/// what both halves decided (one host record, UDP's count short of 300),
/// as an interrupted UDP scan alone ends its hosts.
#[test]
fn an_interrupted_run_keeps_both_halves_found_so_far() {
    let Some(lab) = udp_lab() else {
        return;
    };
    let _tcp = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("mixed.txt");
    // 300 closed UDP ports at the kernel's one error a second: minutes.
    let child = lab.spawn(
        lab.scanner_ns(),
        crate::util::bin(),
        &[
            "scan",
            "-sT",
            "-sU",
            "-p",
            "T:22,U:1001-1300",
            "-o",
            "json",
            "-o",
            &format!("table={}", table.display()),
            TARGET_V4,
        ],
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::sleep(std::time::Duration::from_secs(3));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal the scan");
    let out = crate::support::netns::try_wait_output(child, std::time::Duration::from_secs(20))
        .unwrap_or_else(|o| panic!("scan did not stop after SIGINT: {}", show(&o)));
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let records = crate::util::json_lines(&String::from_utf8_lossy(&out.stdout));
    let got = states(&records);
    assert_eq!(
        got.get(&key("tcp", 22)),
        Some(&("open".to_owned(), "syn-ack".to_owned())),
        "{records:?}"
    );
    let hosts: Vec<&Value> = records.iter().filter(|r| r["type"] == "host").collect();
    assert_eq!(hosts.len(), 1, "{records:?}");
    let closed = hosts[0]["closed"].as_u64().expect("closed count");
    assert_eq!(hosts[0]["open"], 1, "{records:?}");
    assert!(closed > 0 && closed < 300, "UDP was cut short: {records:?}");
    let s = summary(&records);
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(s["ports"].as_u64(), Some(closed + 1), "{s}");
    let text = std::fs::read_to_string(&table).expect("table");
    assert_eq!(text.matches("report for").count(), 1, "{text}");
    assert!(text.contains("22/tcp"), "{text}");
    assert!(text.contains("closed udp ports (port-unreach)"), "{text}");
}

/// A tarpit answering every TCP port, scanned with UDP in the same run:
/// the TCP half is flagged and counted as before, and the UDP half is
/// reported as usual (the echo port listed, the closed ports counted), not
/// swallowed by the TCP verdict.
#[test]
fn a_tcp_tarpit_does_not_hide_the_udp_results() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    let _echo = crate::scan_udp::start_echo(&lab, TARGET_V4);
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[7777]);
    lab.nft(
        lab.target_ns(),
        "table ip tarpit {\n  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    tcp dport 1-65535 redirect to :7777\n  }\n}\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("tarpit.txt");
    let xml = dir.path().join("tarpit.xml");
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-sU",
            "-p",
            "1-200",
            "--max-rtt-timeout",
            "300ms",
            "-o",
            "json",
            "-o",
            &format!("table={}", table.display()),
            "-o",
            &format!("xml={}", xml.display()),
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        states(&records).into_keys().collect::<Vec<_>>(),
        vec![key("udp", 7)],
        "{records:?}"
    );
    let host = records.iter().find(|r| r["type"] == "host").expect("host");
    assert_eq!(
        host["unreliable"], "answers on all 200 probed ports: results for this host are unreliable",
        "TCP ports only: {host}"
    );
    let text = std::fs::read_to_string(&table).expect("table");
    for needle in [
        "Host answers on all 200 probed ports",
        "200 open tcp ports (syn-ack)",
        "199 closed udp ports (port-unreach)",
        "7/udp",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert_valid_nmap_xml(&xml);
    let doc = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        doc.contains("<port protocol=\"udp\" portid=\"7\">"),
        "{doc}"
    );
    assert!(!doc.contains("<port protocol=\"tcp\""), "{doc}");
}

/// UDP ports that never answer are open|filtered: when they are many, the
/// table counts them ("Not shown: 60 open|filtered udp ports
/// (no-response)", the 10 closed ones listed) as nmap does, and JSON and
/// XML carry every one of them, not the first 25.
#[test]
fn many_open_filtered_ports_are_counted_not_cut_short() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(
        lab.target_ns(),
        "table ip drops {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport 2001-2060 drop\n  }\n}\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("silent.txt");
    let xml = dir.path().join("silent.xml");
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "-p",
            "2001-2070",
            "--retries",
            "0",
            "--max-rtt-timeout",
            "200ms",
            "-o",
            "json",
            "-o",
            &format!("table={}", table.display()),
            "-o",
            &format!("xml={}", xml.display()),
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let got = states(&records);
    assert_eq!(got.len(), 60, "every open|filtered port in JSON: {got:?}");
    assert!(
        got.values()
            .all(|(s, r)| s == "open|filtered" && r == "no-response"),
        "{got:?}"
    );
    let text = std::fs::read_to_string(&table).expect("table");
    // The most common state is counted; the 10 closed ports are listed.
    assert!(
        text.contains("Not shown: 60 open|filtered udp ports (no-response)")
            && text.contains("2061/udp closed"),
        "{text}"
    );
    assert!(!text.contains("2001/udp"), "counted, not listed:\n{text}");
    assert_valid_nmap_xml(&xml);
    let doc = std::fs::read_to_string(&xml).expect("xml");
    assert_eq!(doc.matches("state=\"open|filtered\"").count(), 60, "{doc}");
}
