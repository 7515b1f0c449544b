//! The SYN scan (`-sS`) across network namespaces each test creates (198.18.0.0/15 and
//! fd00:5ec::/64 only): every port of a host, the verdicts of nftables (DROP, REJECT
//! with a reset or an ICMP error, the scanner's own firewall) compared with the connect
//! scan's on the same lab, IPv6, Ctrl-C, the default scan type as root, and the connect
//! scan with a note when CAP_NET_RAW is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::scan_lab::{FIREWALL, ctrl_c_keeps_every_result_of, err_text, scan_in};
use crate::support::netns::{Lab, TARGET_V4, TARGET_V6, require_lab, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, port_states, summary};

const SCAN_LIMIT: Duration = Duration::from_secs(60);

/// All 65,535 ports of one host: exactly the listening ports are open and every other
/// port is closed by a reset; the summary counts them all.
#[test]
fn syn_full_range_finds_exactly_the_listeners() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let open = [1u16, 22, 80, 443, 8080, 32768, 65535];
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &open);
    let (out, records) = scan_in(&lab, &["scan", "-sS", "-p-", "-o", "json", TARGET_V4]);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    let found: Vec<u16> = states
        .iter()
        .filter(|(_, (s, _))| s == "open")
        .map(|(p, _)| *p as u16)
        .collect();
    assert_eq!(found, open);
    for p in &open {
        assert_eq!(states[&u64::from(*p)].1, "syn-ack");
    }
    let s = summary(&records);
    assert_eq!(s["open"].as_u64(), Some(open.len() as u64), "{s}");
    assert_eq!(
        s["closed"].as_u64(),
        Some(65_535 - open.len() as u64),
        "{s}"
    );
    assert_eq!(s["filtered"].as_u64(), Some(0), "{s}");
}

/// The scanner's own firewall drops probes to 89 (raw sockets meet the output hook
/// too: sendto fails with EPERM, which is no answer, never a local error retried
/// forever).
const OWN_FIREWALL: &str = "table inet own {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    tcp dport 89 drop\n  }\n}\n";

/// Every verdict nftables can give: the SYN scan's state for each port is the connect
/// scan's on the same lab, and its reason the same but for a closed port (`reset`, where
/// the connect scan says `conn-refused`).
#[test]
fn syn_verdicts_match_the_connect_scan() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(lab.target_ns(), FIREWALL);
    lab.nft(lab.scanner_ns(), OWN_FIREWALL);
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[85]);
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("syn.xml");
    let xml_arg = format!("xml={}", xml.display());
    let common = [
        "-p",
        "81-90",
        "--all-states",
        "-o",
        "json",
        "--initial-rtt-timeout",
        "300ms",
        "--max-rtt-timeout",
        "300ms",
        TARGET_V4,
    ];
    let run = |kind: &str, extra: &[&str]| {
        let mut args = vec!["scan", kind];
        args.extend_from_slice(extra);
        args.extend_from_slice(&common);
        let (out, records) = scan_in(&lab, &args);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", err_text(&out));
        records
    };
    let syn = run("-sS", &["-o", &xml_arg]);
    let connect = run("-sT", &[]);
    let expect = [
        (81, "filtered", "no-response"),
        (82, "filtered", "no-response"),
        (83, "filtered", "admin-prohibited"),
        (84, "closed", "reset"),
        (85, "open", "syn-ack"),
        (86, "filtered", "net-unreach"),
        (87, "filtered", "host-unreach"),
        (88, "closed", "reset"),
        (89, "filtered", "no-response"),
        (90, "filtered", "port-unreach"),
    ];
    let syn_states = port_states(&syn);
    let connect_states = port_states(&connect);
    for (port, state, reason) in expect {
        assert_eq!(
            syn_states[&port],
            (state.to_string(), reason.to_string()),
            "port {port}"
        );
        let (c_state, c_reason) = &connect_states[&port];
        assert_eq!(c_state, state, "connect scan, port {port}");
        let c_reason = if c_reason == "conn-refused" {
            "reset"
        } else {
            c_reason
        };
        assert_eq!(c_reason, reason, "connect scan, port {port}");
    }
    // Unanswered probes were sent three times (two retries), answered ones once.
    for r in syn.iter().filter(|r| r["type"] == "port") {
        let want = if r["reason"] == "no-response" {
            Value::from(3)
        } else {
            Value::Null
        };
        assert_eq!(r["tries"], want, "{r}");
    }
    let s = summary(&syn);
    assert_eq!(
        (
            s["open"].as_u64(),
            s["closed"].as_u64(),
            s["filtered"].as_u64()
        ),
        (Some(1), Some(2), Some(7))
    );
    assert_valid_nmap_xml(&xml);
    let x = std::fs::read_to_string(&xml).expect("xml");
    assert!(x.contains(r#"<scaninfo type="syn""#), "{x}");
    assert!(
        x.contains(r#"<port protocol="tcp" portid="84"><state state="closed" reason="reset""#),
        "{x}"
    );
}

const FIREWALL6: &str = "
table ip6 sockeye_test6 {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 24 drop
    tcp dport 25 reject with icmpv6 type admin-prohibited
    tcp dport 26 reject with icmpv6 type port-unreachable
  }
}";

/// Ctrl-C stops sending, lets probes in flight finish briefly, and writes every result
/// (the connect scan's test, with `-sS`).
#[test]
fn syn_ctrl_c_keeps_every_result() {
    ctrl_c_keeps_every_result_of("-sS");
}

/// IPv6: a listener, a closed port, a dropped one and two refused by ICMPv6.
#[test]
fn syn_ipv6_target() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(lab.target_ns(), FIREWALL6);
    let _l = lab.listen(lab.target_ns(), TARGET_V6, &[22]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sS",
            "-p",
            "22-26",
            "--all-states",
            "-o",
            "json",
            "--max-rtt-timeout",
            "300ms",
            TARGET_V6,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    let want: BTreeMap<u64, (String, String)> = [
        (22, "open", "syn-ack"),
        (23, "closed", "reset"),
        (24, "filtered", "no-response"),
        (25, "filtered", "admin-prohibited"),
        (26, "filtered", "port-unreach"),
    ]
    .into_iter()
    .map(|(p, s, r)| (p, (s.to_string(), r.to_string())))
    .collect();
    assert_eq!(states, want);
    assert!(records.iter().any(|r| r["addr"] == TARGET_V6));
}

/// As root, a scan with no scan type named is a SYN scan (a closed port's reason is
/// `reset`), as nmap's default is.
#[test]
fn syn_is_the_default_with_privilege() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-p",
            "22,23",
            "--all-states",
            "-o",
            "json",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    assert_eq!(states[&22], ("open".into(), "syn-ack".into()));
    assert_eq!(states[&23], ("closed".into(), "reset".into()));
    assert!(err_text(&out).is_empty(), "{}", err_text(&out));
}

/// Without CAP_NET_RAW (dropped from the bounding set before exec, so even root's
/// sockeye lacks it), `-sS` says so in one line and runs the connect scan, with its
/// results; with no scan type named, the connect scan runs without a note.
#[test]
fn without_cap_net_raw_it_is_a_connect_scan() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    for (kind, note) in [(Some("-sS"), true), (None, false)] {
        let mut args = vec!["--bounding-set=-net_raw", "--", bin(), "scan"];
        args.extend(kind);
        args.extend(["-p", "22,23", "--all-states", "-o", "json", TARGET_V4]);
        let child = lab.spawn(lab.scanner_ns(), "setpriv", &args);
        let out = wait_output(child, SCAN_LIMIT);
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", err_text(&out));
        let err = err_text(&out);
        let lines: Vec<&str> = err.lines().collect();
        if note {
            assert_eq!(lines.len(), 1, "{err}");
            assert!(
                lines[0].contains("SYN scan needs root or CAP_NET_RAW: doing a connect scan"),
                "{err}"
            );
        } else {
            assert!(lines.is_empty(), "{err}");
        }
        let records = json_lines(&String::from_utf8_lossy(&out.stdout));
        let states = port_states(&records);
        assert_eq!(states[&22], ("open".into(), "syn-ack".into()));
        assert_eq!(states[&23], ("closed".into(), "conn-refused".into()));
    }
}
