//! Helpers shared by the integration tests: the binary, JSON Lines parsing,
//! and loopback ports we own.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Output};

use serde_json::Value;

/// The sockeye binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sockeye")
}

pub(crate) fn sockeye(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("SOCKEYE_LOG")
        .output()
        .expect("run sockeye")
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub(crate) fn show(out: &Output) -> String {
    format!(
        "status: {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses JSON Lines, panicking with the offending line.
pub(crate) fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Port records keyed by port: (state, reason).
pub(crate) fn port_states(records: &[Value]) -> BTreeMap<u64, (String, String)> {
    let mut map = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "port") {
        let port = r["port"].as_u64().expect("port number");
        let state = r["state"].as_str().expect("state").to_string();
        let reason = r["reason"].as_str().expect("reason").to_string();
        assert!(
            map.insert(port, (state, reason)).is_none(),
            "port {port} reported twice"
        );
    }
    map
}

/// The one summary record.
pub(crate) fn summary(records: &[Value]) -> &Value {
    let s: Vec<&Value> = records.iter().filter(|r| r["type"] == "summary").collect();
    assert_eq!(s.len(), 1, "exactly one summary expected: {records:?}");
    s[0]
}

/// Listeners on 127.0.0.1 that accept (the kernel completes handshakes
/// from the backlog; nobody needs to call accept for a connect scan).
pub(crate) fn listeners(n: usize) -> (Vec<TcpListener>, Vec<u16>) {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let ports = ls
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect();
    (ls, ports)
}

/// Ports that were free a moment ago (bound, then released): closed.
pub(crate) fn closed_ports(n: usize) -> Vec<u16> {
    let (ls, ports) = listeners(n);
    drop(ls);
    ports
}

pub(crate) fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs xmllint against nmap's DTD; panics when xmllint or the DTD is missing.
pub(crate) fn assert_valid_nmap_xml(path: &std::path::Path) {
    let dtd = "/usr/share/nmap/nmap.dtd";
    assert!(
        std::path::Path::new(dtd).exists(),
        "{dtd} is missing: install Debian's nmap package (scripts/test.sh does)"
    );
    let out = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", dtd])
        .arg(path)
        .output()
        .expect("xmllint missing: install libxml2-utils (scripts/test.sh does)");
    assert!(
        out.status.success(),
        "XML not valid against nmap.dtd:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}
