//! Host discovery (`scan -sn`, `-P*`, `-Pn`) in namespaces each test creates
//! (198.18.0.0/15 and fd00:5ec::/64 only). Five live hosts in a /24, two of them
//! firewalled to drop ICMP echo and timestamp:
//!
//! - on the directly connected 198.18.0.0/24 (the target holds 198.18.0.2, .10, .20,
//!   .30, .40 on its veth): ARP finds all five, whatever their firewall says;
//! - behind a router (the target namespace routes 198.18.8.0/24; it holds .10 to .50 on
//!   its loopback and answers every other address with an ICMP host unreachable, as a
//!   router whose ARP failed): echo finds exactly the three that answer it, the default
//!   probes also the one that only drops ICMP, `-PS22` the one that drops everything but
//!   its open port 22, and no router unreachable ever makes an absent address up;
//! - `-Pn` skips discovery; without CAP_NET_RAW, connect pings to 80 and 443.
//!
//! The core assertion of each case runs several times: exactly the live hosts, every run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::scan_lab::{err_text, scan_in};
use crate::support::netns::{Lab, SCANNER_V4, TARGET_V4, TARGET_V6, require_lab, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, summary};

const SCAN_LIMIT: Duration = Duration::from_secs(60);
/// Runs of each core assertion.
const REPEAT: usize = 3;

/// The live hosts on the directly connected network, besides the target's own
/// 198.18.0.2.
const ON_LINK_EXTRA: [&str; 4] = ["198.18.0.10", "198.18.0.20", "198.18.0.30", "198.18.0.40"];
/// The live hosts behind the router.
const ROUTED: [&str; 5] = [
    "198.18.8.10",
    "198.18.8.20",
    "198.18.8.30",
    "198.18.8.40",
    "198.18.8.50",
];

/// The target's firewall: 198.18.0.30, 198.18.8.30 and 198.18.8.40 drop ICMP echo and
/// timestamp requests; 198.18.8.30 also drops every TCP segment but those to port 22.
/// The router's unreachables for absent addresses are counted (the test checks that
/// they were sent).
const FIREWALL: &str = "
table inet disc {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr { 198.18.0.30, 198.18.8.30, 198.18.8.40 } icmp type { echo-request, timestamp-request } drop
    ip daddr 198.18.8.30 tcp dport != 22 drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.8.0/24 counter reject with icmp type host-unreachable
  }
}";

/// The lab: live addresses on the link and behind the router, the router's
/// unreachable route, the firewall and a listener on port 22 of every address.
fn discovery_lab() -> (Lab, crate::support::netns::ListenerGuard) {
    let lab = Lab::new();
    let t = lab.target_ns();
    for a in ON_LINK_EXTRA {
        lab.exec(
            t,
            &["ip", "addr", "add", &format!("{a}/24"), "dev", "veth-t"],
        );
    }
    for a in ROUTED {
        lab.exec(t, &["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    // Every other address of 198.18.8.0/24 is routed on, and the forward chain
    // answers it with an ICMP host unreachable from the router, at once (as a router
    // does when its ARP for the host fails; the kernel's own unreachable route would
    // send only five a second).
    lab.exec(t, &["ip", "route", "add", "198.18.8.0/24", "dev", "lo"]);
    lab.sysctl(t, &["net.ipv4.ip_forward=1"]);
    // Every ICMP error the lab draws is sent: a rate-limited unreachable would make
    // the "not up on a router's unreachable" check weaker, not stronger.
    lab.unlimit_icmp(t);
    // ... and not only 50 at once: the router's 251 unreachables and the hosts'
    // port unreachables leave in bursts (the burst is per namespace).
    lab.sysctl(t, &["net.ipv4.icmp_msgs_burst=100000"]);
    lab.exec(
        lab.scanner_ns(),
        &["ip", "route", "add", "198.18.8.0/24", "via", TARGET_V4],
    );
    lab.nft(t, FIREWALL);
    let listener = lab.listen(t, "0.0.0.0", &[22]);
    (lab, listener)
}

/// Runs `scan -o json ARGS` in the scanner namespace; returns (address -> reason) of
/// the hosts reported up, and the summary.
fn discover(lab: &Lab, args: &[&str]) -> (BTreeMap<String, String>, Value) {
    let mut all = vec!["scan", "-o", "json"];
    all.extend_from_slice(args);
    let (out, records) = scan_in(lab, &all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", err_text(&out));
    assert!(err_text(&out).is_empty(), "{args:?}: {}", err_text(&out));
    up_hosts(&records)
}

fn up_hosts(records: &[Value]) -> (BTreeMap<String, String>, Value) {
    let mut up = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "host") {
        assert_eq!(r["status"], "up", "{r}");
        assert_eq!(r["up"], true, "{r}");
        let addr = r["addr"].as_str().expect("addr").to_owned();
        let reason = r["reason"].as_str().expect("reason").to_owned();
        assert!(up.insert(addr, reason).is_none(), "a host reported twice");
    }
    (up, summary(records).clone())
}

fn hosts(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

/// The router's host-unreachable counter in the target's forward chain.
fn unreachables_sent(lab: &Lab) -> u64 {
    let out = lab.exec(
        lab.target_ns(),
        &["nft", "list", "chain", "inet", "disc", "forward"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let packets = text
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    packets.unwrap_or_else(|| panic!("no counter in:\n{text}"))
}

/// On the directly connected /24, ARP finds the five live hosts (and this machine's
/// own address, as nmap's `localhost-response`), the ICMP-dropping one among them;
/// each with the target's MAC address. The table and XML say the same.
#[test]
fn arp_finds_every_live_host_on_the_link() {
    if !require_lab() {
        return;
    }
    let (lab, _l) = discovery_lab();
    let mac = {
        let out = lab.exec(lab.target_ns(), &["cat", "/sys/class/net/veth-t/address"]);
        String::from_utf8_lossy(&out.stdout).trim().to_uppercase()
    };
    let mut want: Vec<(&str, &str)> = vec![
        (SCANNER_V4, "localhost-response"),
        (TARGET_V4, "arp-response"),
    ];
    want.extend(ON_LINK_EXTRA.iter().map(|a| (*a, "arp-response")));
    for run in 0..REPEAT {
        let (out, records) = scan_in(&lab, &["scan", "-sn", "-o", "json", "198.18.0.0/24"]);
        assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
        let (up, s) = up_hosts(&records);
        assert_eq!(up, hosts(&want), "run {run}");
        assert_eq!(s["hosts"], 256, "{s}");
        assert_eq!(s["hosts_up"], 6, "{s}");
        for r in records.iter().filter(|r| r["reason"] == "arp-response") {
            assert_eq!(r["mac"], mac.as_str(), "{r}");
        }
    }
    // The same run as people and nmap's tools read it.
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("sn.xml");
    let xml_arg = format!("xml={}", xml.display());
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &["scan", "-sn", "-o", &xml_arg, "198.18.0.0/24"],
    );
    let out = wait_output(child, SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("sockeye scan report for 198.18.0.30\nHost is up, received arp-response ("),
        "{table}"
    );
    assert!(table.contains(&format!("MAC Address: {mac}")), "{table}");
    assert!(
        table.contains("Discovered 6 hosts up of 256 addresses in "),
        "{table}"
    );
    assert_valid_nmap_xml(&xml);
    let x = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        x.contains(r#"<status state="up" reason="arp-response" reason_ttl="0"/>"#),
        "{x}"
    );
    assert!(
        x.contains(&format!(r#"<address addr="{mac}" addrtype="mac"/>"#)),
        "{x}"
    );
    assert!(
        x.contains(r#"<hosts up="6" down="250" total="256"/>"#),
        "{x}"
    );
}

/// Behind the router: echo finds exactly the three hosts that answer it; the default
/// probes (echo, SYN 443, ACK 80, timestamp) also the one that drops only ICMP (by
/// its reset); `-PS22` all five, the one that drops all but port 22 by its SYN-ACK.
/// The router's host unreachables for the 251 absent addresses (counted) make none
/// of them up.
#[test]
fn ip_pings_behind_a_router_find_exactly_the_hosts_that_answer() {
    if !require_lab() {
        return;
    }
    let (lab, _l) = discovery_lab();
    let echo = hosts(&[
        ("198.18.8.10", "echo-reply"),
        ("198.18.8.20", "echo-reply"),
        ("198.18.8.50", "echo-reply"),
    ]);
    let syn22: Vec<(&str, &str)> = ROUTED.iter().map(|a| (*a, "syn-ack")).collect();
    for run in 0..REPEAT {
        let before = unreachables_sent(&lab);
        let (up, s) = discover(&lab, &["-sn", "-PE", "198.18.8.0/24"]);
        assert_eq!(up, echo, "-PE, run {run}");
        assert_eq!(
            (s["hosts"].as_u64(), s["hosts_up"].as_u64()),
            (Some(256), Some(3))
        );
        let sent = unreachables_sent(&lab) - before;
        assert!(
            sent >= 251,
            "the router sent {sent} host unreachables, not one per absent address"
        );

        let (up, _) = discover(&lab, &["-sn", "198.18.8.0/24"]);
        let found: Vec<&str> = up.keys().map(String::as_str).collect();
        assert_eq!(
            found,
            ["198.18.8.10", "198.18.8.20", "198.18.8.40", "198.18.8.50"],
            "default probes, run {run}: {up:?}"
        );
        assert_eq!(up["198.18.8.40"], "reset", "{up:?}");

        let (up, _) = discover(&lab, &["-sn", "-PS22", "198.18.8.0/24"]);
        assert_eq!(up, hosts(&syn22), "-PS22, run {run}");
    }
    // An ACK ping draws resets; a UDP ping to a closed port the target's own
    // port unreachable (the router's unreachables for the others do not count).
    let (up, _) = discover(&lab, &["-sn", "-PA80", "198.18.8.0/24"]);
    let want: Vec<(&str, &str)> = ["198.18.8.10", "198.18.8.20", "198.18.8.40", "198.18.8.50"]
        .iter()
        .map(|a| (*a, "reset"))
        .collect();
    assert_eq!(up, hosts(&want));
    // (198.18.8.30's firewall drops TCP and ICMP requests, not UDP.)
    let (up, _) = discover(&lab, &["-sn", "-PU", "198.18.8.0/24"]);
    let want: Vec<(&str, &str)> = ROUTED.iter().map(|a| (*a, "port-unreach")).collect();
    assert_eq!(up, hosts(&want));
    // With ARP turned off, the on-link hosts are asked by IP probes too.
    let (up, _) = discover(&lab, &["-sn", "--send-ip", "-PE", "198.18.0.0/27"]);
    let want = hosts(&[
        (SCANNER_V4, "localhost-response"),
        (TARGET_V4, "echo-reply"),
        ("198.18.0.10", "echo-reply"),
        ("198.18.0.20", "echo-reply"),
    ]);
    assert_eq!(up, want);
}

/// Before a port scan of several hosts, discovery decides which are scanned; `-Pn`
/// scans them all; a single host is scanned without discovery unless a -P flag asks.
#[test]
fn discovery_before_a_port_scan_and_pn_skips_it() {
    if !require_lab() {
        return;
    }
    let (lab, _l) = discovery_lab();
    let scanned = |args: &[&str]| {
        let mut all = vec![
            "scan",
            "-o",
            "json",
            "-p",
            "22",
            "--max-rtt-timeout",
            "200ms",
        ];
        all.extend_from_slice(args);
        let (out, records) = scan_in(&lab, &all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", err_text(&out));
        let s = summary(&records).clone();
        (s["hosts"].as_u64(), s["open"].as_u64(), s["note"].clone())
    };
    // 198.18.8.8/29: .8 to .15, one live host (.10).
    let (hosts, open, note) = scanned(&["198.18.8.8/29"]);
    assert_eq!((hosts, open), (Some(1), Some(1)), "{note}");
    assert_eq!(
        note,
        "host discovery: 1 host up of 8 addresses; only they were scanned"
    );
    let (hosts, open, note) = scanned(&["-Pn", "198.18.8.8/29"]);
    assert_eq!((hosts, open), (Some(8), Some(1)));
    assert_eq!(note, Value::Null);
    // One host: scanned as it is, though it drops pings; asked, discovery runs.
    let (hosts, open, _) = scanned(&["198.18.8.30"]);
    assert_eq!((hosts, open), (Some(1), Some(1)));
    let (hosts, _, note) = scanned(&["-PE", "198.18.8.30"]);
    assert_eq!(hosts, Some(0));
    // A host record says how discovery found the host, and a host found up stays
    // up when its only port scanned is filtered (as nmap).
    let host_record = |args: &[&str]| {
        let mut all = vec![
            "scan",
            "-o",
            "json",
            "--all-states",
            "--max-rtt-timeout",
            "200ms",
        ];
        all.extend_from_slice(args);
        let (out, records) = scan_in(&lab, &all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", err_text(&out));
        let hosts: Vec<Value> = records
            .into_iter()
            .filter(|r| r["type"] == "host")
            .collect();
        assert_eq!(hosts.len(), 1, "{hosts:?}");
        hosts[0].clone()
    };
    let h = host_record(&["-PE", "-p", "22", "198.18.8.8/29"]);
    assert_eq!(
        (&h["addr"], &h["status"], &h["reason"], &h["open"]),
        (
            &Value::from("198.18.8.10"),
            &Value::from("up"),
            &Value::from("echo-reply"),
            &Value::from(1)
        )
    );
    let h = host_record(&["-PS22", "-p", "80", "198.18.8.30"]);
    assert_eq!(
        (&h["up"], &h["reason"], &h["filtered"]),
        (&Value::from(true), &Value::from("syn-ack"), &Value::from(1)),
        "{h}"
    );
    assert!(
        note.as_str()
            .is_some_and(|n| n.contains("0 hosts up of 1 address")),
        "{note}"
    );
}

/// Without CAP_NET_RAW, a one-line note and connect pings to 80 and 443: the hosts
/// that refuse them are up (`conn-refused`); the one that drops them and the absent
/// addresses are not. `-PS22` moves the connect ping to port 22.
#[test]
fn without_cap_net_raw_connect_pings() {
    if !require_lab() {
        return;
    }
    let (lab, _l) = discovery_lab();
    for (extra, want) in [
        (
            None,
            hosts(&[
                ("198.18.8.10", "conn-refused"),
                ("198.18.8.20", "conn-refused"),
                ("198.18.8.40", "conn-refused"),
                ("198.18.8.50", "conn-refused"),
            ]),
        ),
        (
            Some("-PS22"),
            hosts(&ROUTED.iter().map(|a| (*a, "syn-ack")).collect::<Vec<_>>()),
        ),
    ] {
        let mut args = vec![
            "--bounding-set=-net_raw",
            "--",
            bin(),
            "scan",
            "-sn",
            "-o",
            "json",
        ];
        args.extend(extra);
        args.extend(["--initial-rtt-timeout", "300ms", "198.18.8.0/26"]);
        let child = lab.spawn(lab.scanner_ns(), "setpriv", &args);
        let out = wait_output(child, SCAN_LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
        let err = err_text(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains("host discovery without root or CAP_NET_RAW: connecting to"),
            "{err}"
        );
        let records = json_lines(&String::from_utf8_lossy(&out.stdout));
        let (up, s) = up_hosts(&records);
        assert_eq!(up, want, "{extra:?}");
        assert_eq!(s["hosts"], 64);
    }
}

/// IPv6 on the link: a neighbor solicitation finds the target (`nd-response`, with
/// its MAC), this machine is `localhost-response`, the other addresses are silent.
#[test]
fn ndp_finds_the_ipv6_neighbor() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    for _ in 0..REPEAT {
        let (up, s) = discover(&lab, &["-sn", "fd00:5ec::/124"]);
        assert_eq!(
            up,
            hosts(&[
                ("fd00:5ec::1", "localhost-response"),
                (TARGET_V6, "nd-response")
            ])
        );
        assert_eq!(s["hosts"], 16);
    }
    // Without NDP, ICMPv6 echo.
    let (up, _) = discover(&lab, &["-sn", "--send-ip", "-PE", TARGET_V6, "fd00:5ec::3"]);
    assert_eq!(up, hosts(&[(TARGET_V6, "echo-reply")]));
}
