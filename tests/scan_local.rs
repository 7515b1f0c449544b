//! Scans of listeners this test owns on 127.0.0.1: exact states and reasons,
//! every output format, shards, and target listing (which sends nothing).
//! Each scan passes `-sT`: as root the default is the SYN scan (tests/scan_syn.rs).

use std::collections::BTreeSet;

use crate::util::{
    assert_valid_nmap_xml, closed_ports, join, json_lines, listeners, port_states, sockeye, stderr,
    stdout, summary,
};

#[test]
fn open_and_closed_ports_exactly() {
    let (_keep, open) = listeners(2);
    let closed = closed_ports(2);
    let all: Vec<u16> = open.iter().chain(&closed).copied().collect();
    let out = sockeye(&[
        "scan",
        "-sT",
        "-p",
        &join(&all),
        "--all-states",
        "-o",
        "json",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No progress bar and no noise when stderr is not a terminal.
    assert_eq!(stderr(&out), "");
    let records = json_lines(&stdout(&out));
    let states = port_states(&records);
    for p in &open {
        assert_eq!(
            states[&u64::from(*p)],
            ("open".into(), "syn-ack".into()),
            "port {p}"
        );
    }
    for p in &closed {
        assert_eq!(
            states[&u64::from(*p)],
            ("closed".into(), "conn-refused".into()),
            "port {p}"
        );
    }
    let s = summary(&records);
    assert_eq!(s["command"], "scan");
    assert_eq!(s["hosts"], 1);
    assert_eq!(s["ports"], 4);
    assert_eq!(s["open"], 2);
    assert_eq!(s["closed"], 2);
    assert_eq!(s["filtered"], 0);
    assert_eq!(s["interrupted"], false);
    for r in records.iter().filter(|r| r["type"] == "port") {
        assert_eq!(r["addr"], "127.0.0.1");
        assert_eq!(r["proto"], "tcp");
        assert!(r["rtt_ms"].as_f64().is_some_and(|v| v >= 0.0), "{r}");
    }
}

#[test]
fn json_without_all_states_has_open_ports_and_summary_only() {
    let (_keep, open) = listeners(1);
    let closed = closed_ports(3);
    let ports: Vec<u16> = open.iter().chain(&closed).copied().collect();
    let out = sockeye(&["scan", "-sT", "-p", &join(&ports), "--json", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let states = port_states(&records);
    assert_eq!(
        states.keys().copied().collect::<Vec<_>>(),
        vec![u64::from(open[0])]
    );
    assert_eq!(summary(&records)["closed"], 3);
}

#[test]
fn table_shows_open_ports_and_counts_the_rest() {
    let (_keep, open) = listeners(1);
    let closed = closed_ports(2);
    let ports: Vec<u16> = open.iter().chain(&closed).copied().collect();
    let out = sockeye(&["scan", "-sT", "-p", &join(&ports), "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal: {text:?}"
    );
    assert!(text.contains("scan report for 127.0.0.1"), "{text}");
    assert!(
        text.contains("Not shown: 2 closed tcp ports (conn-refused)"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{}/tcp", open[0])))
        .unwrap_or_else(|| panic!("no line for the open port: {text}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], "open", "{line}");
    assert_eq!(cols.last(), Some(&"syn-ack"), "{line}");
    assert!(text.contains("1 open, 2 closed"), "{text}");
}

#[test]
fn every_format_to_files_at_once() {
    let (_keep, open) = listeners(2);
    let closed = closed_ports(1);
    let ports: Vec<u16> = open.iter().chain(&closed).copied().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("scan.xml");
    let json = dir.path().join("scan.jsonl");
    let grep = dir.path().join("scan.gnmap");
    let out = sockeye(&[
        "scan",
        "-sT",
        "-p",
        &join(&ports),
        "-o",
        &format!("xml={}", xml.display()),
        "-o",
        &format!("json={}", json.display()),
        "-oG",
        grep.to_str().expect("utf-8 path"),
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("scan report for 127.0.0.1"),
        "table still on stdout"
    );
    assert_valid_nmap_xml(&xml);
    let xml_text = std::fs::read_to_string(&xml).expect("xml");
    for p in &open {
        assert!(xml_text.contains(&format!("portid=\"{p}\"")), "{xml_text}");
    }
    let records = json_lines(&std::fs::read_to_string(&json).expect("json"));
    assert_eq!(port_states(&records).len(), 2);
    let g = std::fs::read_to_string(&grep).expect("grep");
    let ports_line = g
        .lines()
        .find(|l| l.contains("Ports:"))
        .unwrap_or_else(|| panic!("{g}"));
    for p in &open {
        assert!(
            ports_line.contains(&format!("{p}/open/tcp/")),
            "{ports_line}"
        );
    }
    assert!(
        ports_line.contains("Ignored State: closed (1)"),
        "{ports_line}"
    );
}

/// N runs with one seed and --shard i/N decide every port exactly once.
#[test]
fn shards_cover_every_port_once() {
    let (_keep, open) = listeners(4);
    let closed = closed_ports(5);
    let ports: Vec<u16> = open.iter().chain(&closed).copied().collect();
    let spec = join(&ports);
    let mut seen = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = sockeye(&[
            "scan",
            "-sT",
            "-p",
            &spec,
            "--all-states",
            "--seed",
            "7",
            "--shard",
            &shard,
            "-o",
            "json",
            "127.0.0.1",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        seen.extend(port_states(&json_lines(&stdout(&out))).into_keys());
    }
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(
        seen.len(),
        unique.len(),
        "a port was scanned by two shards: {seen:?}"
    );
    let want: BTreeSet<u64> = ports.iter().map(|&p| u64::from(p)).collect();
    assert_eq!(unique, want);
}

#[test]
fn list_targets_sends_nothing_and_resolves_nothing() {
    let out = sockeye(&[
        "scan",
        "-sT",
        "-sL",
        "198.18.0-1.1-2",
        "lab.invalid",
        "198.18.4.0/31",
        "fd00::1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "198.18.0.1\n198.18.0.2\n198.18.1.1\n198.18.1.2\nlab.invalid\n198.18.4.0\n198.18.4.1\nfd00::1\n"
    );
    let out = sockeye(&[
        "scan",
        "-sT",
        "-sL",
        "--exclude",
        "198.18.0.1,198.18.0.4/31",
        "198.18.0.0/29",
    ]);
    assert_eq!(
        stdout(&out),
        "198.18.0.0\n198.18.0.2\n198.18.0.3\n198.18.0.6\n198.18.0.7\n"
    );
}

#[test]
fn target_list_from_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::util::bin())
        .args(["scan", "-sL", "-iL", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"# lab hosts\n198.18.0.1 198.18.0.2\n198.18.1.0/31 # two more\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        stdout(&out),
        "198.18.0.1\n198.18.0.2\n198.18.1.0\n198.18.1.1\n"
    );
}

#[test]
fn exclude_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("skip.txt");
    std::fs::write(
        &file,
        "# never these\n198.18.0.1\n198.18.0.4/31 198.18.0.6\n",
    )
    .expect("write");
    let out = sockeye(&[
        "scan",
        "-sT",
        "-sL",
        "--exclude-file",
        file.to_str().expect("utf-8"),
        "198.18.0.0/29",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "198.18.0.0\n198.18.0.2\n198.18.0.3\n198.18.0.7\n"
    );
}
