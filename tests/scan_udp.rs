//! The UDP scan (`-sU`) against real UDP services in a namespace the test
//! makes (socat echo on 7, dnsmasq on 53, snmpd on 161), beside closed
//! ports, ports nftables drops and ports it rejects with ICMP; the ICMP rate
//! limit of Linux in force; and replies from the wrong port.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::netns::{Lab, TARGET_V4, TARGET_V6, require_lab, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, port_states, show, sockeye, summary};

const SCAN_LIMIT: Duration = Duration::from_secs(120);

/// A daemon started in a lab namespace: killed and reaped when dropped
/// (the lab would kill it too, but not reap it).
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 5 s) until something listens on UDP `port` in `ns`.
fn wait_udp_listener(lab: &Lab, ns: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let filter = format!("sport = :{port}");
    while Instant::now() < deadline {
        let out = lab.try_exec(ns, &["ss", "-Hlun", &filter]);
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on UDP {port} in {ns}");
}

/// socat echo on 7, dnsmasq on 53 and snmpd (community public) on 161,
/// all on the target address; the lab kills them when it drops.
pub(crate) fn start_services(lab: &Lab, dir: &Path) -> Vec<Daemon> {
    let ns = lab.target_ns();
    let echo = start_echo(lab, TARGET_V4);
    let dns = Daemon(lab.spawn(
        ns,
        "dnsmasq",
        &[
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=53",
            &format!("--listen-address={TARGET_V4}"),
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--user=root",
        ],
    ));
    let conf = dir.join("snmpd.conf");
    std::fs::write(&conf, "rocommunity public\n").expect("snmpd.conf");
    let pid = dir.join("snmpd.pid");
    let snmp = Daemon(lab.spawn(
        ns,
        "snmpd",
        &[
            "-f",
            "-Lo",
            "-C",
            "-c",
            conf.to_str().expect("utf-8 path"),
            "-p",
            pid.to_str().expect("utf-8 path"),
            "-m",
            "",
            &format!("udp:{TARGET_V4}:161"),
        ],
    ));
    for port in [53, 161] {
        wait_udp_listener(lab, ns, port);
    }
    vec![echo, dns, snmp]
}

pub(crate) fn scan_in(lab: &Lab, args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let child = lab.spawn(lab.scanner_ns(), bin(), args);
    let out = wait_output(child, SCAN_LIMIT);
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    (out, records)
}

fn tools_present() -> bool {
    ["socat", "dnsmasq", "snmpd", "ss"].iter().all(|t| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A new lab when the lab and the UDP daemons are there (`None`: skipped,
/// loudly, by require_lab).
pub(crate) fn udp_lab() -> Option<Lab> {
    if !require_lab() {
        return None;
    }
    assert!(
        tools_present(),
        "socat, dnsmasq, snmpd and ss are needed (scripts/test.sh installs them)"
    );
    Some(Lab::new())
}

/// socat's UDP echo on port 7 of `addr` in the target namespace, listening.
pub(crate) fn start_echo(lab: &Lab, addr: &str) -> Daemon {
    let ns = lab.target_ns();
    let spec = if addr.contains(':') {
        format!("UDP6-RECVFROM:7,bind=[{addr}],fork")
    } else {
        format!("UDP4-RECVFROM:7,bind={addr},fork")
    };
    let echo = Daemon(lab.spawn(ns, "socat", &["-T", "1", &spec, "PIPE"]));
    wait_udp_listener(lab, ns, 7);
    echo
}

const FIREWALL: &str = "
table ip sockeye_udp {
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 200 drop
    udp dport 201 reject with icmp type admin-prohibited
    udp dport 202 reject with icmp type host-unreachable
  }
}";

/// Every state and reason a UDP scan can give, from real daemons and
/// nftables, in every printer; the XML validates against nmap's DTD.
#[test]
fn udp_states_and_reasons_from_real_services() {
    let Some(lab) = udp_lab() else {
        return;
    };
    // Every ICMP error answers here; the limit has its own test below.
    lab.unlimit_icmp(lab.target_ns());
    lab.nft(lab.target_ns(), FIREWALL);
    let dir = tempfile::tempdir().expect("tempdir");
    let _services = start_services(&lab, dir.path());
    let xml = dir.path().join("udp.xml");
    let grep = dir.path().join("udp.gnmap");
    let table = dir.path().join("udp.txt");
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "-p",
            "7,53,100-102,161,200-202",
            "--all-states",
            "--retries",
            "1",
            "--initial-rtt-timeout",
            "300ms",
            "--max-rtt-timeout",
            "300ms",
            "-o",
            "json",
            "-o",
            &format!("xml={}", xml.display()),
            "-o",
            &format!("grep={}", grep.display()),
            "-o",
            &format!("table={}", table.display()),
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let states = port_states(&records);
    let want = [
        (7, "open", "udp-response"),
        (53, "open", "udp-response"),
        (161, "open", "udp-response"),
        (100, "closed", "port-unreach"),
        (101, "closed", "port-unreach"),
        (102, "closed", "port-unreach"),
        (200, "open|filtered", "no-response"),
        (201, "filtered", "admin-prohibited"),
        (202, "filtered", "host-unreach"),
    ];
    assert_eq!(states.len(), want.len(), "{states:?}");
    for (port, state, reason) in want {
        assert_eq!(
            states.get(&port),
            Some(&(state.to_owned(), reason.to_owned())),
            "port {port}: {states:?}"
        );
    }
    for r in records.iter().filter(|r| r["type"] == "port") {
        assert_eq!(r["proto"], "udp", "{r}");
    }
    let s = summary(&records);
    assert_eq!(
        (
            &s["ports"],
            &s["open"],
            &s["closed"],
            &s["filtered"],
            &s["open_filtered"]
        ),
        (&9.into(), &3.into(), &3.into(), &2.into(), &1.into()),
        "{s}"
    );
    assert!(s.get("note").is_none(), "no limit to detect here: {s}");

    assert_valid_nmap_xml(&xml);
    let xml_text = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        xml_text.contains("<scaninfo type=\"udp\" protocol=\"udp\""),
        "{xml_text}"
    );
    assert!(
        xml_text.contains(
            "<port protocol=\"udp\" portid=\"53\"><state state=\"open\" reason=\"udp-response\""
        ),
        "{xml_text}"
    );
    assert!(
        xml_text.contains("portid=\"200\"><state state=\"open|filtered\" reason=\"no-response\""),
        "{xml_text}"
    );
    let grep_text = std::fs::read_to_string(&grep).expect("grep");
    for item in [
        "53/open/udp//domain///",
        "161/open/udp//snmp///",
        "100/closed/udp//",
        "200/open|filtered/udp//",
        "201/filtered/udp//",
    ] {
        assert!(grep_text.contains(item), "{item} missing:\n{grep_text}");
    }
    let table_text = std::fs::read_to_string(&table).expect("table");
    assert!(table_text.contains("53/udp"), "{table_text}");
    assert!(table_text.contains("1 open|filtered"), "{table_text}");
}

/// Fails unless the target namespace has the kernel's ICMP rate limit (a
/// new namespace has it).
pub(crate) fn assert_default_icmp_limit(lab: &Lab) {
    let ratelimit = lab.exec(
        lab.target_ns(),
        &["sysctl", "-n", "net.ipv4.icmp_ratelimit"],
    );
    assert_ne!(
        String::from_utf8_lossy(&ratelimit.stdout).trim(),
        "0",
        "a new namespace should have the kernel's default ICMP limit"
    );
}

/// Linux's default ICMP limit (6 errors, then one a second, per
/// destination) is in force: after the burst the closed ports go silent,
/// and the scan must still call every one of them closed, not
/// open|filtered, and say that it slowed down for the limit.
#[test]
fn icmp_rate_limit_is_detected_and_closed_ports_stay_closed() {
    let Some(lab) = udp_lab() else {
        return;
    };
    assert_default_icmp_limit(&lab);
    let _echo = start_echo(&lab, TARGET_V4);
    // Dropped ports among the closed ones: their silence must not be taken
    // for the limit's, nor the limit's for theirs.
    lab.nft(
        lab.target_ns(),
        "table ip drops {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport { 1005, 1010, 1015 } drop\n  }\n}\n",
    );
    // 17 closed ports: 6 answer at once, the other 11 only at the host's pace.
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "-p",
            "7,1001-1020",
            "--all-states",
            "-o",
            "json",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let states = port_states(&records);
    assert_eq!(
        states.get(&7),
        Some(&("open".to_owned(), "udp-response".to_owned()))
    );
    for port in 1001..=1020 {
        let want = if [1005, 1010, 1015].contains(&port) {
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
    assert_eq!(
        (&s["open"], &s["closed"], &s["open_filtered"]),
        (&1.into(), &17.into(), &3.into()),
        "{s}"
    );
    let note = s["note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with("ICMP rate limiting detected on 1 host"),
        "the summary should say the scan slowed down: {s}"
    );
}

/// A service that answers from another port than the one probed (or a
/// stranger sending to our socket) does not make the port open: only a
/// datagram from the probed address and port counts.
#[test]
fn replies_from_another_port_do_not_count() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.unlimit_icmp(lab.target_ns());
    // Listens on 300 and answers every datagram from port 301 instead.
    let script = format!(
        "import socket,sys\n\
         a=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); a.bind(('{TARGET_V4}',300))\n\
         b=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); b.bind(('{TARGET_V4}',301))\n\
         a.settimeout(60)\n\
         while True:\n\
         \x20   data,peer=a.recvfrom(2048); b.sendto(b'not from 300',peer)\n"
    );
    let _wrong = Daemon(lab.spawn(lab.target_ns(), "python3", &["-c", &script]));
    wait_udp_listener(&lab, lab.target_ns(), 300);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "-p",
            "300",
            "--all-states",
            "--retries",
            "1",
            "--max-rtt-timeout",
            "300ms",
            "-o",
            "json",
            TARGET_V4,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        port_states(&records).get(&300),
        Some(&("open|filtered".to_owned(), "no-response".to_owned()))
    );
}

/// `-p U:PORT` alone is a UDP scan; on loopback (no ICMP limit there) a
/// socket that echoes is open and a free port closed.
#[test]
fn u_prefix_alone_scans_udp_on_loopback() {
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let open = server.local_addr().expect("addr").port();
    let closed = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        if let Ok((n, from)) = server.recv_from(&mut buf) {
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let out = sockeye(&[
        "scan",
        "-p",
        &format!("U:{open},{closed}"),
        "--all-states",
        "-o",
        "json",
        "127.0.0.1",
    ]);
    echo.join().expect("echo thread");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    let states = port_states(&records);
    assert_eq!(
        states.get(&u64::from(open)),
        Some(&("open".to_owned(), "udp-response".to_owned()))
    );
    assert_eq!(
        states.get(&u64::from(closed)),
        Some(&("closed".to_owned(), "port-unreach".to_owned()))
    );
}

/// Options a UDP scan does not have are refused before anything is sent.
#[test]
fn udp_scan_refuses_what_it_cannot_do() {
    for args in [
        &["scan", "-sU", "--shard", "0/2", "--seed", "1", "127.0.0.1"][..],
        &["scan", "-sU", "--probe", "127.0.0.1"][..],
        &["scan", "-p", "U:53", "--probe", "127.0.0.1"][..],
        &[
            "scan",
            "-sU",
            "-sT",
            "--shard",
            "0/2",
            "--seed",
            "1",
            "127.0.0.1",
        ][..],
    ] {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
}

/// The same over IPv6: ICMPv6 port unreachable is closed, an echo open.
#[test]
fn udp_over_ipv6() {
    let Some(lab) = udp_lab() else {
        return;
    };
    lab.unlimit_icmp(lab.target_ns());
    let _echo = start_echo(&lab, TARGET_V6);
    let (out, records) = scan_in(
        &lab,
        &[
            "scan",
            "-sU",
            "-p",
            "7,1001",
            "--all-states",
            "-o",
            "json",
            TARGET_V6,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let states = port_states(&records);
    assert_eq!(
        states.get(&7),
        Some(&("open".to_owned(), "udp-response".to_owned()))
    );
    assert_eq!(
        states.get(&1001),
        Some(&("closed".to_owned(), "port-unreach".to_owned()))
    );
}

/// All 65,535 ports of a namespace's own loopback, which sends every ICMP
/// error at once: each must fit in the socket's error queue (the window is
/// bounded by its receive buffer), so every port is closed on its first
/// probe and no rate limit is imagined. The one open port may be the
/// scan's own socket, which receives what is sent to it.
#[test]
fn loopback_full_range_is_all_closed_without_a_limit_note() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    let (out, records) = scan_in(&lab, &["scan", "-sU", "-p-", "-o", "json", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = summary(&records);
    assert_eq!(s["ports"], 65535, "{s}");
    let open = s["open"].as_u64().unwrap_or(u64::MAX);
    assert!(open <= 1, "{s}");
    assert_eq!(s["closed"].as_u64(), Some(65535 - open), "{s}");
    assert!(s.get("note").is_none(), "{s}");
}
