//! `scan -sU --source A,B,C`: UDP probes spread over several local
//! addresses, each meeting its own share of the target's ICMP rate limit
//! (Linux limits the errors it sends per destination address).

use crate::scan_udp::{scan_in, udp_lab};
use crate::support::netns::{SCANNER_IF, SCANNER_V4, TARGET_V4};
use crate::util::{port_states, show, sockeye, summary};

const EXTRA: [&str; 2] = ["198.18.0.3", "198.18.0.4"];

/// Three source addresses against a target with Linux's default limit
/// (100 ports: past the burst, the pace must be measured):
/// every closed port is closed, the dropped ones open|filtered, each
/// address sent its share (nftables counts them at the target), and the
/// pace the scan settled on is a third of the one-address pace (the
/// summary says it: under 0.5 s per probe, where one address gets 1 s).
#[test]
fn udp_probes_take_turns_over_the_source_addresses() {
    let Some(lab) = udp_lab() else {
        return;
    };
    for addr in EXTRA {
        lab.exec(
            lab.scanner_ns(),
            &[
                "ip",
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                SCANNER_IF,
            ],
        );
    }
    lab.nft(
        lab.target_ns(),
        "table ip sources {
           counter from_1 {}
           counter from_3 {}
           counter from_4 {}
           chain input {
             type filter hook input priority 0; policy accept;
             udp dport { 1005, 1010 } drop
             ip saddr 198.18.0.1 udp dport 1001-1100 counter name from_1
             ip saddr 198.18.0.3 udp dport 1001-1100 counter name from_3
             ip saddr 198.18.0.4 udp dport 1001-1100 counter name from_4
           }
         }",
    );
    let sources = format!("{SCANNER_V4},{},{}", EXTRA[0], EXTRA[1]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "--source",
            &sources,
            "-p",
            "1001-1100",
            "--all-states",
            "-o",
            "json",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let states = port_states(&records);
    for port in 1001..=1100 {
        let want = if [1005, 1010].contains(&port) {
            ("open|filtered", "no-response")
        } else {
            ("closed", "port-unreach")
        };
        assert_eq!(
            states.get(&port),
            Some(&(want.0.to_owned(), want.1.to_owned())),
            "port {port}: {states:?}"
        );
    }
    let s = summary(&records);
    let note = s["note"].as_str().unwrap_or_default();
    let pace: f64 = note
        .split("probes paced to one per ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pace in the summary: {s}"));
    assert!(
        pace < 0.5,
        "three addresses should pace at a third of a second or so, not {pace}: {s}"
    );
    let counters = lab.exec(lab.target_ns(), &["nft", "list", "counters"]);
    let text = String::from_utf8_lossy(&counters.stdout);
    for name in ["from_1", "from_3", "from_4"] {
        let packets: u64 = text
            .split(&format!("counter {name} "))
            .nth(1)
            .and_then(|rest| rest.split("packets ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter {name}: {text}"));
        assert!(
            packets >= 10,
            "{name}: {packets} probes; each address should send its share of 100:\n{text}"
        );
    }
}

/// An address this machine does not have, the same address twice, or
/// --source without UDP ports: one line, status 2, nothing sent.
#[test]
fn bad_sources_are_refused() {
    for (args, words) in [
        (
            &[
                "scan",
                "-sU",
                "--source",
                "198.18.99.99",
                "-p",
                "53",
                "198.18.0.2",
            ][..],
            "is it an address of this machine",
        ),
        (
            &[
                "scan",
                "-sU",
                "--source",
                "127.0.0.1,127.0.0.1",
                "-p",
                "53",
                "127.0.0.1",
            ][..],
            "given twice",
        ),
        (
            &["scan", "--source", "127.0.0.1", "-p", "53", "127.0.0.1"][..],
            "no UDP ports",
        ),
    ] {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{args:?}: {err}");
    }
}
