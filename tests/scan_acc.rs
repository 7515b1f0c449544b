//! Scan accuracy where the target or the network misbehaves, across network
//! namespaces each test creates (198.18.0.0/15 only): a host that answers on
//! every port (an nftables redirect of every TCP port to one listener, as a
//! SYN proxy or tarpit does) is flagged instead of listed as all open.

use std::time::Duration;

use crate::scan_lab::{err_text, scan_in};
use crate::support::netns::{Lab, TARGET_V4, require_lab, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, port_states, summary};

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
