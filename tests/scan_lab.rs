//! Scans across network namespaces that each test creates (198.18.0.0/15 and
//! fd00:5ec::/64 only): every port of a host, filtered and ICMP verdicts
//! made by nftables, host names from a namespace-local hosts file, nmap XML
//! validated against nmap's DTD, and Ctrl-C that keeps every result.
//! These are the connect scan's tests: each passes `-sT`, since as root the
//! default is the SYN scan (tests/scan_syn.rs).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::netns::{Lab, TARGET_V4, TARGET_V6, require_lab, try_wait_output, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, port_states, summary};

const SCAN_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn scan_in(lab: &Lab, args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let child = lab.spawn(lab.scanner_ns(), bin(), args);
    let out = wait_output(child, SCAN_LIMIT);
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    (out, records)
}

pub(crate) fn err_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// All 65,535 ports of one host: exactly the listening ports are open and
/// every other port is closed; nothing is lost to local exhaustion.
#[test]
fn full_range_finds_exactly_the_listeners() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let listening = [1u16, 22, 80, 443, 8080, 31337, 65535];
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &listening);
    let (out, records) = scan_in(&lab, &["scan", "-sT", "-p-", "-o", "json", TARGET_V4]);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let open: BTreeSet<u64> = port_states(&records).into_keys().collect();
    let want: BTreeSet<u64> = listening.iter().map(|&p| u64::from(p)).collect();
    assert_eq!(open, want);
    let s = summary(&records);
    assert_eq!(s["ports"], 65535);
    assert_eq!(s["open"], 7);
    assert_eq!(s["closed"], 65535 - 7);
    assert_eq!(s["filtered"], 0);
}

/// Every port of the namespace's own 127.0.0.1: the kernel picks source
/// ports from the range being scanned, and a probe whose source port is the
/// port it probes connects to itself (TCP's simultaneous open). That is not
/// a listener: three full scans find exactly the listening ports (before
/// the fix, 13 or 14 "open" in 4 of 6 runs).
#[test]
fn loopback_full_range_never_counts_a_self_connection_as_open() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let listening = [22u16, 80, 443, 3306, 8080, 27017];
    let _l = lab.listen(lab.scanner_ns(), "127.0.0.1", &listening);
    let want: BTreeSet<u64> = listening.iter().map(|&p| u64::from(p)).collect();
    for run in 1..=3 {
        let (out, records) = scan_in(&lab, &["scan", "-sT", "-p-", "-o", "json", "127.0.0.1"]);
        assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
        let open: BTreeSet<u64> = port_states(&records).into_keys().collect();
        assert_eq!(open, want, "run {run}");
    }
}

/// The target's firewall of the verdict tests (scan_syn.rs uses it too).
pub(crate) const FIREWALL: &str = "
table ip sockeye_test {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport { 81, 82 } drop
    tcp dport 83 reject with icmp type admin-prohibited
    tcp dport 84 reject with tcp reset
    tcp dport 86 reject with icmp type net-unreachable
    tcp dport 87 reject with icmp type host-unreachable
    tcp dport 90 reject with icmp type port-unreachable
  }
}";

/// Each verdict nftables can give maps to the state and reason of output.md.
#[test]
fn firewall_verdicts_are_told_apart() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(lab.target_ns(), FIREWALL);
    // The scanner's own firewall drops SYNs to 89. TCP ignores the local
    // drop (it only retransmits), so this looks like a silent target: a
    // verdict after the retries, not a local error retried forever.
    lab.nft(
        lab.scanner_ns(),
        "table ip own {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    tcp dport 89 drop\n  }\n}\n",
    );
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[85]);
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("fw.xml");
    let xml_arg = format!("xml={}", xml.display());
    let started = Instant::now();
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "81-90",
            "--all-states",
            "-o",
            "json",
            "-o",
            &xml_arg,
            "--initial-rtt-timeout",
            "300ms",
            "--max-rtt-timeout",
            "300ms",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    let expect = [
        (81, "filtered", "no-response"),
        (82, "filtered", "no-response"),
        (83, "filtered", "admin-prohibited"),
        (84, "closed", "conn-refused"),
        (85, "open", "syn-ack"),
        (86, "filtered", "net-unreach"),
        (87, "filtered", "host-unreach"),
        (88, "closed", "conn-refused"),
        (89, "filtered", "no-response"),
        // A TCP port refused by ICMP is a firewall's doing (nmap -sS says so
        // too); connect() alone would call it closed.
        (90, "filtered", "port-unreach"),
    ];
    for (port, state, reason) in expect {
        assert_eq!(
            states[&port],
            (state.to_string(), reason.to_string()),
            "port {port}"
        );
    }
    // Unanswered probes were retried twice (three tries), answered ones never.
    for r in records.iter().filter(|r| r["type"] == "port") {
        let want = if r["reason"] == "no-response" {
            Value::from(3)
        } else {
            Value::Null
        };
        assert_eq!(r["tries"], want, "{r}");
    }
    let s = summary(&records);
    assert_eq!(
        (
            s["open"].as_u64(),
            s["closed"].as_u64(),
            s["filtered"].as_u64()
        ),
        (Some(1), Some(2), Some(7))
    );
    // Three tries of 300 ms, 600 ms, 1.2 s (capped at 300 ms): well under 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_valid_nmap_xml(&xml);
    let x = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        x.contains(
            r#"<port protocol="tcp" portid="83"><state state="filtered" reason="admin-prohibited""#
        ),
        "{x}"
    );
}

/// Without `--all-states` the table counts only the most common state and
/// lists the others: a firewall check sees its filtered ports by number.
#[test]
fn filtered_ports_are_listed_by_default() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(
        lab.target_ns(),
        "table ip fw {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport { 81, 82 } drop\n    tcp dport 83 reject with icmp type admin-prohibited\n  }\n}\n",
    );
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[85]);
    let args = [
        "scan",
        "-sT",
        "-p",
        "80-99",
        "--initial-rtt-timeout",
        "300ms",
        "--max-rtt-timeout",
        "300ms",
        TARGET_V4,
    ];
    let out = wait_output(lab.spawn(lab.scanner_ns(), bin(), &args), SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Not shown: 16 closed tcp ports (conn-refused)\n"),
        "{text}"
    );
    for row in [
        "81/tcp filtered",
        "82/tcp filtered",
        "83/tcp filtered",
        "85/tcp open",
    ] {
        let (port, state) = row.split_once(' ').expect("row");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().take(2).eq([port, state])),
            "{row} missing:\n{text}"
        );
    }
}

/// The progress bar of a scan whose probes are all dropped moves as probes
/// go out, and its ETA is unknown ("?") until a port is decided, not "0s".
#[test]
fn progress_moves_when_every_probe_is_dropped() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.nft(
        lab.target_ns(),
        "table ip fw {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 1-100 drop\n  }\n}\n",
    );
    // The bar is drawn only on a terminal: run under script(1)'s pty.
    let cmd = format!(
        "{} scan -p 1-100 --retries 0 --initial-rtt-timeout 3s --max-rtt-timeout 3s {TARGET_V4}",
        bin()
    );
    let out = wait_output(
        lab.spawn(lab.scanner_ns(), "script", &["-qec", &cmd, "/dev/null"]),
        SCAN_LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("100/100 probes sent, ") && text.contains(" 0 decided, 0 open, ETA ?"),
        "{text}"
    );
}

/// A neighbour that never answers ARP: the kernel says host unreachable.
#[test]
fn silent_neighbour_is_host_unreach() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "80",
            "--all-states",
            "-o",
            "json",
            "--retries",
            "0",
            "--initial-rtt-timeout",
            "8s",
            "--max-rtt-timeout",
            "8s",
            "198.18.0.9",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(
        port_states(&records)[&80],
        ("filtered".into(), "host-unreach".into())
    );
}

/// A /28 behind a router with one real host: only that host is "up" (its
/// own SYN-ACK and RST); the router's host-unreachable for the other 15,
/// and this machine's own for a silent neighbour, make no host up. The
/// table has one host block and one line counting the rest.
#[test]
fn only_hosts_that_answered_are_up() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    // The target namespace routes 198.19.5.0/28: one address of its own,
    // an unreachable route (ICMP host-unreachable from 198.18.0.2) for the rest.
    lab.sysctl(lab.target_ns(), &["net.ipv4.ip_forward=1"]);
    lab.exec(
        lab.target_ns(),
        &["ip", "route", "add", "unreachable", "198.19.5.0/28"],
    );
    lab.exec(
        lab.target_ns(),
        &["ip", "addr", "add", "198.19.5.6/32", "dev", "lo"],
    );
    lab.exec(
        lab.scanner_ns(),
        &["ip", "route", "add", "198.19.5.0/28", "via", TARGET_V4],
    );
    let _l = lab.listen(lab.target_ns(), "198.19.5.6", &[22]);
    // -Pn: this test is about what the port scan itself says of silent hosts
    // (host discovery would leave them out before it).
    let common = [
        "-Pn",
        "--retries",
        "0",
        "--initial-rtt-timeout",
        "8s",
        "--max-rtt-timeout",
        "8s",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (xml, grep, json) = (
        dir.path().join("s.xml"),
        dir.path().join("s.gnmap"),
        dir.path().join("s.json"),
    );
    let files = [
        format!("xml={}", xml.display()),
        format!("grep={}", grep.display()),
        format!("json={}", json.display()),
    ];
    let mut args = vec!["scan", "-sT", "-p", "22,80"];
    args.extend(common);
    for f in &files {
        args.extend(["-o", f]);
    }
    args.push("198.19.5.0/28");
    let out = wait_output(lab.spawn(lab.scanner_ns(), bin(), &args), SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.matches("scan report for").count(), 1, "{text}");
    assert!(
        text.contains("scan report for 198.19.5.6\nHost is up"),
        "{text}"
    );
    assert!(text.contains("22/tcp open"), "{text}");
    assert!(
        text.contains("1 host up; 15 not shown: nothing came back from them"),
        "{text}"
    );
    // The files say it too: nmap XML (still valid) and grepable mark the
    // 15 down, JSON Lines has "up" on each host record.
    assert_valid_nmap_xml(&xml);
    let x = std::fs::read_to_string(&xml).expect("xml");
    assert_eq!(x.matches("<status state=\"down\"").count(), 15, "{x}");
    assert!(
        x.contains("<hosts up=\"1\" down=\"15\" total=\"16\"/>"),
        "{x}"
    );
    let g = std::fs::read_to_string(&grep).expect("grep");
    assert_eq!(g.matches("\tStatus: Down").count(), 15, "{g}");
    assert!(g.contains("(1 host up)"), "{g}");
    let hosts: Vec<Value> = json_lines(&std::fs::read_to_string(&json).expect("json"))
        .into_iter()
        .filter(|r| r["type"] == "host")
        .collect();
    assert_eq!(hosts.len(), 16);
    let up: Vec<&Value> = hosts.iter().filter(|h| h["up"] == true).collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["addr"], "198.19.5.6");

    // Silent neighbours (no ARP answer: this machine's own
    // host-unreachable), this machine and the host on the link: blocks in
    // address order, whatever order the probes finish in.
    let mut args = vec!["scan", "-sT", "-p", "22,80"];
    args.extend(common);
    args.push("198.18.0.1-10");
    let out = wait_output(lab.spawn(lab.scanner_ns(), bin(), &args), SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let blocks: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("sockeye scan report for "))
        .collect();
    assert_eq!(blocks, ["198.18.0.1", "198.18.0.2"], "{text}");
    assert!(
        text.contains("2 hosts up; 8 not shown: nothing came back from them"),
        "{text}"
    );
}

#[test]
fn ipv6_target() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V6, &[22]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "22,23",
            "--all-states",
            "-o",
            "json",
            TARGET_V6,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let states = port_states(&records);
    assert_eq!(states[&22], ("open".into(), "syn-ack".into()));
    assert_eq!(states[&23], ("closed".into(), "conn-refused".into()));
    assert!(records.iter().any(|r| r["addr"] == TARGET_V6));
}

/// Files under /etc/netns/NS/ replace /etc/ files for `ip netns exec NS`:
/// the scanner namespace gets its own hosts file and a resolver that does
/// not exist (198.18.0.2 has no DNS server), so no query leaves the lab.
struct NetnsEtc(PathBuf);

impl NetnsEtc {
    fn new(ns: &str, hosts: &str) -> NetnsEtc {
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("mkdir /etc/netns/NS");
        std::fs::write(dir.join("hosts"), hosts).expect("hosts");
        std::fs::write(
            dir.join("resolv.conf"),
            "nameserver 198.18.0.2\noptions timeout:1 attempts:1\n",
        )
        .expect("resolv.conf");
        NetnsEtc(dir)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A name is scanned at every address it has (or the first with
/// --first-address); a name that does not resolve is reported while the
/// other targets are still scanned.
#[test]
fn host_names_every_address_and_failures_reported() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _etc = NetnsEtc::new(
        lab.scanner_ns(),
        &format!("127.0.0.1 localhost\n{TARGET_V4} lab.test\n{TARGET_V6} lab.test\n"),
    );
    let _l4 = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let _l6 = lab.listen(lab.target_ns(), TARGET_V6, &[22]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "22",
            "-o",
            "json",
            "lab.test",
            "nope.invalid",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let mut addrs: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "port")
        .map(|r| {
            assert_eq!(r["host"], "lab.test");
            assert_eq!(r["state"], "open");
            r["addr"].as_str().expect("addr")
        })
        .collect();
    addrs.sort_unstable();
    assert_eq!(addrs, vec![TARGET_V4, TARGET_V6]);
    let errors: Vec<&Value> = records.iter().filter(|r| r["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{records:?}");
    assert_eq!(errors[0]["target"], "nope.invalid");
    assert_eq!(summary(&records)["hosts"], 2);

    let (_, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "22",
            "-o",
            "json",
            "--first-address",
            "lab.test",
        ],
    );
    assert_eq!(summary(&records)["hosts"], 1);

    // Only unresolvable names: nothing could be scanned, exit 1.
    let (out, _) = scan_in(
        &lab,
        &["scan", "-sT", "-p", "22", "-o", "json", "nope.invalid"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", err_text(&out));
}

/// Ctrl-C: stop sending, wait briefly for probes in flight, write every
/// result found so far and the summary, exit 130.
#[test]
fn ctrl_c_keeps_every_result() {
    ctrl_c_keeps_every_result_of("-sT");
}

/// The Ctrl-C check for one scan type (`-sT`, `-sS`).
pub(crate) fn ctrl_c_keeps_every_result_of(scan_type: &str) {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    // Everything but the two listeners is silently dropped, so the scan
    // would take a long time; the open ports answer at once.
    lab.nft(
        lab.target_ns(),
        "table ip t {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport != { 100, 200 } drop\n  }\n}\n",
    );
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[100, 200]);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("int.jsonl");
    let xml = dir.path().join("int.xml");
    let json_arg = format!("json={}", json.display());
    let xml_arg = format!("xml={}", xml.display());
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &[
            "scan",
            scan_type,
            "-p",
            "1-3000",
            "--initial-rtt-timeout",
            "5s",
            "--min-rtt-timeout",
            "5s",
            "--max-rtt-timeout",
            "5s",
            "-o",
            &json_arg,
            "-o",
            &xml_arg,
            TARGET_V4,
        ],
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = try_wait_output(child, Duration::from_secs(10))
        .unwrap_or_else(|o| panic!("scan did not stop after SIGINT: {}", err_text(&o)));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?} to stop",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", err_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Interrupted"),
        "table summary says so: {stdout}"
    );
    assert!(stdout.contains("100/tcp"), "{stdout}");
    let records = json_lines(&std::fs::read_to_string(&json).expect("json file"));
    let open: BTreeSet<u64> = port_states(&records).into_keys().collect();
    assert_eq!(open, BTreeSet::from([100, 200]));
    let s = summary(&records);
    assert_eq!(s["interrupted"], true);
    assert!(s["ports"].as_u64().expect("ports") < 3000, "{s}");
    assert_valid_nmap_xml(&xml);
}

const DROP_ALL_BUT_22: &str = "table ip t {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport != 22 drop
  }
}
";

/// Out of file descriptors (EMFILE) is this machine's problem, not the
/// target's: the engine backs off and re-sends, and every port still gets
/// its true state.
#[test]
fn out_of_file_descriptors_is_never_a_result() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.nft(lab.target_ns(), DROP_ALL_BUT_22);
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    // A hard limit of 120 files (so the window is 56 probes) with 70 of
    // them already taken: probes that wait on dropped SYNs run out of
    // descriptors long before the window is full.
    let script =
        "ulimit -n 120 && for i in $(seq 1 70); do exec {fd}</dev/null; done && exec \"$0\" \"$@\"";
    let child = lab.spawn(
        lab.scanner_ns(),
        "bash",
        &[
            "-c",
            script,
            bin(),
            "scan",
            "-sT",
            "-p",
            "1-300",
            "--all-states",
            "-o",
            "json",
            "--retries",
            "0",
            "--initial-rtt-timeout",
            "200ms",
            "--max-rtt-timeout",
            "200ms",
            TARGET_V4,
        ],
    );
    let out = wait_output(child, SCAN_LIMIT);
    let err = err_text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("out of file descriptors"),
        "EMFILE was not reached, the test proves nothing: {err}"
    );
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    let states = port_states(&records);
    assert_eq!(states.len(), 300);
    for (port, verdict) in &states {
        let want = if *port == 22 {
            ("open", "syn-ack")
        } else {
            ("filtered", "no-response")
        };
        assert_eq!(
            (verdict.0.as_str(), verdict.1.as_str()),
            want,
            "port {port}"
        );
    }
}

/// Out of ephemeral ports (EADDRNOTAVAIL): twelve probes of the same
/// (address, port) at once with six source ports to pick from. The ones
/// that find no port wait and go again; none is reported as a port state.
#[test]
fn out_of_ephemeral_ports_is_never_a_result() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.sysctl(
        lab.scanner_ns(),
        &["net.ipv4.ip_local_port_range=40000 40005"],
    );
    lab.nft(lab.target_ns(), DROP_ALL_BUT_22);
    let mut args = vec![
        "scan",
        "-sT",
        "-p",
        "80",
        "--all-states",
        "-o",
        "json",
        "--retries",
        "0",
        "--initial-rtt-timeout",
        "300ms",
        "--max-rtt-timeout",
        "300ms",
    ];
    args.extend(std::iter::repeat_n(TARGET_V4, 12));
    let (out, records) = scan_in(&lab, &args);
    let err = err_text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("out of ephemeral ports"),
        "EADDRNOTAVAIL was not reached: {err}"
    );
    let ports: Vec<&Value> = records.iter().filter(|r| r["type"] == "port").collect();
    assert_eq!(ports.len(), 12, "{records:?}");
    for r in ports {
        assert_eq!(
            (r["state"].as_str(), r["reason"].as_str()),
            (Some("filtered"), Some("no-response")),
            "{r}"
        );
    }
    assert_eq!(summary(&records)["hosts"], 12);
}

/// Open ports are closed with an RST: a scan of many open ports leaves no
/// TIME_WAIT sockets on the scanning machine.
#[test]
fn open_ports_leave_no_time_wait() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let ports: Vec<u16> = (2000..2300).collect();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &ports);
    let (out, records) = scan_in(
        &lab,
        &["scan", "-sT", "-p", "2000-2299", "-o", "json", TARGET_V4],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(summary(&records)["open"], 300);
    let ss = lab.exec(lab.scanner_ns(), &["ss", "-Htan", "state", "time-wait"]);
    let waiting = String::from_utf8_lossy(&ss.stdout).lines().count();
    assert_eq!(
        waiting,
        0,
        "TIME_WAIT sockets left: {}",
        String::from_utf8_lossy(&ss.stdout)
    );
}

/// `--rate` caps connects per second: 100 probes at 200/s take at least
/// about half a second, and every verdict is still exact.
#[test]
fn rate_caps_connects_per_second() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[50]);
    let started = Instant::now();
    let (out, records) = scan_in(
        &lab,
        &[
            "scan", "-sT", "-p", "1-100", "--rate", "200", "-o", "json", TARGET_V4,
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let s = summary(&records);
    assert_eq!(
        (s["open"].as_u64(), s["closed"].as_u64()),
        (Some(1), Some(99))
    );
    // 100 tokens at 200/s with a burst allowance of a few tokens: >= 0.4 s.
    assert!(
        took >= Duration::from_millis(400),
        "100 probes at 200/s took only {took:?}"
    );
}

/// Which ports get scanned: --top-ports from the built-in table, service
/// names, --exclude-ports. Checked by what the scanner reports with
/// --all-states, in a namespace (never ranges on this machine's own ports).
#[test]
fn port_selection() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let ports_of = |args: &[&str]| -> BTreeSet<u64> {
        let mut full = vec!["scan", "-sT", "--all-states", "-o", "json"];
        full.extend_from_slice(args);
        full.push(TARGET_V4);
        let (out, records) = scan_in(&lab, &full);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", err_text(&out));
        port_states(&records).into_keys().collect()
    };
    // nmap's ten most frequently open TCP ports.
    assert_eq!(
        ports_of(&["--top-ports", "10"]),
        BTreeSet::from([21, 22, 23, 25, 80, 110, 139, 443, 445, 3389])
    );
    assert_eq!(
        ports_of(&["-p", "ssh,https,T:25"]),
        BTreeSet::from([22, 25, 443])
    );
    assert_eq!(
        ports_of(&["-p", "1-20", "--exclude-ports", "5-10,ftp"]),
        (1..=20)
            .filter(|p| !(5..=10).contains(p) && *p != 21)
            .collect()
    );
    assert_eq!(ports_of(&["--top-ports", "1000"]).len(), 1000);
}

/// A listener that accepts and aborts at once (RST after the handshake):
/// the port is open, whatever the timing of the RST.
#[test]
fn accept_then_reset_is_open() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let ports: Vec<u16> = (3000..3200).collect();
    let _l = lab.listen_with(lab.target_ns(), TARGET_V4, &ports, &["--rst"]);
    let (out, records) = scan_in(
        &lab,
        &["scan", "-sT", "-p", "3000-3199", "-o", "json", TARGET_V4],
    );
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(summary(&records)["open"], 200, "{}", err_text(&out));
    assert!(!records.iter().any(|r| r["type"] == "error"), "{records:?}");
}

/// The same address twice is two hosts, each reported whole.
#[test]
fn duplicate_targets_are_reported_apart() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &[
            "scan",
            "-sT",
            "-p",
            "22,23",
            "--all-states",
            "-o",
            "grep",
            TARGET_V4,
            TARGET_V4,
        ],
    );
    let out = wait_output(child, SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let ports: Vec<&str> = text.lines().filter(|l| l.contains("Ports:")).collect();
    assert_eq!(ports.len(), 2, "{text}");
    for line in ports {
        assert!(
            line.contains("22/open/tcp//ssh///") && line.contains("23/closed/tcp//telnet///"),
            "{line}"
        );
    }
}

/// No ephemeral port can ever be had (the whole range is reserved): each
/// pair fails locally with nothing in flight, so the host is reported as
/// unprobeable and the scan ends at once instead of retrying forever.
#[test]
fn permanent_local_failure_ends_the_scan() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.sysctl(
        lab.scanner_ns(),
        &[
            "net.ipv4.ip_local_port_range=40000 40001",
            "net.ipv4.ip_local_reserved_ports=40000-40001",
        ],
    );
    let started = Instant::now();
    let (out, records) = scan_in(
        &lab,
        &["scan", "-sT", "-p", "1-50", "-o", "json", TARGET_V4],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing could be probed: {}",
        err_text(&out)
    );
    let errors: Vec<&Value> = records.iter().filter(|r| r["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{records:?}");
    assert_eq!(errors[0]["kind"], "probe");
    assert_eq!(errors[0]["target"], TARGET_V4);
    assert_eq!(summary(&records)["ports"], 0);
}

/// `| head`: once nobody reads the output, the scan stops (exit 0) rather
/// than scanning on for minutes.
#[test]
fn closed_stdout_stops_the_scan() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.nft(lab.target_ns(), DROP_ALL_BUT_22);
    let cmd = format!(
        "set -o pipefail; {} scan -p- --all-states -o json --max-inflight 200 --retries 0 \
         --initial-rtt-timeout 300ms --max-rtt-timeout 300ms {TARGET_V4} | head -n 1",
        bin()
    );
    let started = Instant::now();
    let child = lab.spawn(lab.scanner_ns(), "bash", &["-c", cmd.as_str()]);
    let out = wait_output(child, SCAN_LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", err_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    // Scanning all 65,535 dropped ports this way takes over 90 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// An excluded name that does not resolve stops the scan before anything
/// is sent: scanning a host the user excluded is never the fallback.
#[test]
fn unresolvable_exclusion_is_an_error() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let _etc = NetnsEtc::new(lab.scanner_ns(), "127.0.0.1 localhost\n");
    let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22]);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sT",
            "-p",
            "22",
            "-o",
            "json",
            "--exclude",
            "nope.invalid",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err_text(&out).contains("cannot resolve excluded host \"nope.invalid\""),
        "{}",
        err_text(&out)
    );
    assert!(records.iter().all(|r| r["type"] != "port"), "{records:?}");
}
