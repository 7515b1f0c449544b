//! `sockeye report merge` and `sockeye report html`: a scan split in three
//! shards (in a namespace lab, 198.18.0.0/15 only) merges into what the same
//! scan run whole prints, in table, JSON Lines and nmap XML; shards that do
//! not belong together and bad lines are named, with nothing written; and
//! the HTML page of a real plan of flows between `local` agents (over
//! loopback) shows its matrix in headless Chromium.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::netns::{Lab, TARGET_V4, require_lab, wait_output};
use crate::util::{assert_valid_nmap_xml, bin, closed_ports, json_lines, show, stderr, stdout};

const SCAN_LIMIT: Duration = Duration::from_secs(60);

/// The scan every run of the merge test makes: five hosts (198.18.0.2 and
/// 198.18.1.0/30, all answered by the target namespace), 121 ports, three
/// open, five dropped, one rejected with ICMP admin-prohibited.
pub(crate) fn scan_args(extra: &[&str]) -> Vec<String> {
    // -Pn: a shard runs no host discovery, so the whole scan it is compared
    // with runs none either.
    let mut args: Vec<String> = [
        "scan",
        "-Pn",
        "-sT",
        "-p",
        "1-120,443",
        "--seed",
        "7",
        "--max-rtt-timeout",
        "300ms",
        "--retries",
        "1",
        TARGET_V4,
        "198.18.1.0/30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `sockeye report ...` here (it sends nothing).
fn report(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("report")
        .args(args)
        .env_remove("SOCKEYE_LOG")
        .output()
        .expect("run sockeye report")
}

/// Port and host records without what differs from run to run (times,
/// tries), as sorted JSON strings; and the summary's counts.
pub(crate) fn comparable(records: &[Value]) -> (Vec<String>, Vec<String>, Value) {
    let strip = |r: &Value| {
        let mut r = r.clone();
        if let Value::Object(m) = &mut r {
            for k in ["rtt_ms", "tries", "srtt_ms"] {
                m.remove(k);
            }
        }
        r.to_string()
    };
    let mut ports: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "port")
        .map(strip)
        .collect();
    let mut hosts: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "host")
        .map(strip)
        .collect();
    ports.sort();
    hosts.sort();
    let s = records
        .iter()
        .find(|r| r["type"] == "summary")
        .expect("a summary record");
    let counts = serde_json::json!({
        "hosts": s["hosts"], "ports": s["ports"], "open": s["open"],
        "closed": s["closed"], "filtered": s["filtered"],
    });
    (ports, hosts, counts)
}

/// The table's host blocks, with the latency (which differs between runs)
/// left out, and without the closing summary line.
fn table_blocks(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|b| b.contains(" report for "))
        .map(|b| {
            b.lines()
                .map(|l| {
                    if l.starts_with("Host is up") {
                        "Host is up"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// The lines of nmap XML that say what was found (addresses, ports, the
/// counted ports), without the times.
fn xml_findings(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .split('<')
        .filter(|t| {
            t.starts_with("address ")
                || t.starts_with("port ")
                || t.starts_with("state ")
                || t.starts_with("extraports ")
                || t.starts_with("extrareasons ")
                || t.starts_with("status ")
        })
        .map(|t| t.trim_end().to_owned())
        .collect();
    lines.sort();
    lines
}

fn hosts_in_order(records: &[Value]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r["type"] == "port" || r["type"] == "host")
    {
        let addr = r["addr"].as_str().expect("addr").to_owned();
        if order.last() != Some(&addr) {
            assert!(!order.contains(&addr), "{addr}'s records are not together");
            order.push(addr);
        }
    }
    order
}

/// Three shards run at once in the lab, merged, equal the whole scan: the
/// same ports, states, reasons and host counts in JSON, the same host blocks
/// in the table, the same findings in (valid) nmap XML; the merged output
/// lists hosts in target order with their ports sorted.
#[test]
fn three_shards_merge_into_the_whole_scan() {
    if !require_lab() {
        return;
    }
    let lab = Lab::new();
    lab.add_local_range(lab.target_ns(), "198.18.1.0/30");
    // Three shards at once must not meet the kernel's ICMP rate limit that
    // one whole run stays under (it would turn admin-prohibited into silence).
    lab.unlimit_icmp(lab.target_ns());
    let _l = lab.listen(lab.target_ns(), "0.0.0.0", &[22, 80, 443]);
    lab.nft(
        lab.target_ns(),
        "table inet fw { chain input { type filter hook input priority 0; policy accept;\n\
         tcp dport 100-104 drop\n\
         tcp dport 105 reject with icmpx admin-prohibited\n}\n}",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str| dir.path().join(name);

    let whole_json = file("whole.jsonl");
    let whole_xml = file("whole.xml");
    let whole = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &scan_args(&[
            "-o",
            &format!("json={}", path_str(&whole_json)),
            "-o",
            &format!("xml={}", path_str(&whole_xml)),
        ]),
    );
    let whole = wait_output(whole, SCAN_LIMIT);
    assert_eq!(whole.status.code(), Some(0), "{}", show(&whole));

    let shards: Vec<PathBuf> = (0..3).map(|i| file(&format!("shard-{i}.jsonl"))).collect();
    let children: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, path)| {
            lab.spawn(
                lab.scanner_ns(),
                bin(),
                &scan_args(&[
                    "--shard",
                    &format!("{i}/3"),
                    "-o",
                    &format!("json={}", path_str(path)),
                ]),
            )
        })
        .collect();
    for child in children {
        let out = wait_output(child, SCAN_LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    }
    let first = json_lines(&std::fs::read_to_string(&shards[0]).expect("shard 0"));
    assert_eq!(first[0]["type"], "run", "{}", first[0]);
    assert_eq!(
        first[0]["shard"],
        serde_json::json!({"index": 0, "count": 3})
    );
    assert_eq!(first[0]["seed"], 7);

    let merged_json = file("merged.jsonl");
    let merged_xml = file("merged.xml");
    let merged_html = file("merged.html");
    let mut merge_args = vec!["merge".to_owned()];
    merge_args.extend(shards.iter().map(|p| path_str(p).to_owned()));
    for o in [
        format!("json={}", path_str(&merged_json)),
        format!("xml={}", path_str(&merged_xml)),
        format!("html={}", path_str(&merged_html)),
    ] {
        merge_args.push("-o".into());
        merge_args.push(o);
    }
    let args: Vec<&str> = merge_args.iter().map(String::as_str).collect();
    let merged = report(&args);
    assert_eq!(merged.status.code(), Some(0), "{}", show(&merged));

    // JSON Lines: the same records, whatever order the whole scan found them in.
    let whole_records = json_lines(&std::fs::read_to_string(&whole_json).expect("whole json"));
    let merged_records = json_lines(&std::fs::read_to_string(&merged_json).expect("merged json"));
    let (w_ports, w_hosts, w_counts) = comparable(&whole_records);
    let (m_ports, m_hosts, m_counts) = comparable(&merged_records);
    assert_eq!(m_ports, w_ports);
    assert_eq!(m_hosts, w_hosts);
    assert_eq!(m_counts, w_counts);
    assert_eq!(
        w_counts,
        serde_json::json!({"hosts": 5, "ports": 5 * 121, "open": 15, "closed": 5 * 112,
                           "filtered": 5 * 6})
    );
    assert!(merged_records.iter().all(|r| r["type"] != "run"));
    // Target order, each host's ports sorted.
    assert_eq!(
        hosts_in_order(&merged_records),
        [
            "198.18.0.2",
            "198.18.1.0",
            "198.18.1.1",
            "198.18.1.2",
            "198.18.1.3"
        ]
    );
    let order = hosts_in_order(&merged_records);
    let ports: Vec<(usize, u64)> = merged_records
        .iter()
        .filter(|r| r["type"] == "port")
        .map(|r| {
            let addr = r["addr"].as_str().expect("addr");
            let host = order.iter().position(|h| h == addr).expect("known host");
            (host, r["port"].as_u64().expect("port"))
        })
        .collect();
    let mut sorted = ports.clone();
    sorted.sort();
    assert_eq!(ports, sorted);

    // The table: the same host blocks, in target order.
    let whole_table = table_blocks(&stdout(&whole));
    let merged_table = table_blocks(&stdout(&merged));
    assert_eq!(merged_table.len(), 5, "{}", stdout(&merged));
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    assert_eq!(as_set(&merged_table), as_set(&whole_table));
    assert!(
        merged_table[0].contains("report for 198.18.0.2"),
        "{}",
        merged_table[0]
    );
    assert!(
        merged_table[0].contains("Not shown: 112 closed tcp ports (conn-refused)"),
        "{}",
        merged_table[0]
    );

    // nmap XML: valid, and the same findings.
    assert_valid_nmap_xml(&merged_xml);
    let whole_xml_text = std::fs::read_to_string(&whole_xml).expect("whole xml");
    let merged_xml_text = std::fs::read_to_string(&merged_xml).expect("merged xml");
    assert_eq!(
        xml_findings(&merged_xml_text),
        xml_findings(&whole_xml_text)
    );

    let html = std::fs::read_to_string(&merged_html).expect("merged html");
    assert!(html.contains("198.18.1.3"), "{html}");
    assert_no_fetches(&html);

    // Shards that do not belong together: named, exit 2, nothing written.
    let never = file("never.jsonl");
    let out_never = format!("json={}", path_str(&never));
    let s = |i: usize| path_str(&shards[i]);
    let cases: Vec<(Vec<String>, String)> = {
        let other_ports = file("other-ports.jsonl");
        let text = std::fs::read_to_string(&shards[2]).expect("shard 2");
        std::fs::write(
            &other_ports,
            text.replacen("\"ports\":\"1-120,443\"", "\"ports\":\"1-100\"", 1),
        )
        .expect("write");
        let bad_line = file("bad-line.jsonl");
        let text = std::fs::read_to_string(&shards[1]).expect("shard 1");
        let lines = text.lines().count();
        std::fs::write(&bad_line, format!("{text}{{\"type\":\"port\",\"addr\":\n")).expect("write");
        vec![
            (
                vec![s(0).into(), s(2).into()],
                "missing shard 1/3: every shard 0/3 to 2/3 is needed".into(),
            ),
            (
                vec![s(0).into(), s(1).into(), s(2).into(), s(0).into()],
                format!("shard 0/3 given twice: {} and {}", s(0), s(0)),
            ),
            (
                vec![s(0).into(), s(1).into(), path_str(&other_ports).into()],
                format!(
                    "{}: ports is \"1-100\" but {} has \"1-120,443\"",
                    path_str(&other_ports),
                    s(0)
                ),
            ),
            (
                vec![s(0).into(), path_str(&bad_line).into(), s(2).into()],
                format!("{}: line {}: not JSON", path_str(&bad_line), lines + 1),
            ),
            (
                vec![path_str(&whole_json).into()],
                format!("{}: no run record first", path_str(&whole_json)),
            ),
        ]
    };
    for (files, words) in cases {
        let mut args = vec!["merge".to_owned()];
        args.extend(files);
        args.extend(["-o".to_owned(), out_never.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = report(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let err = stderr(&out);
        assert!(err.contains(&words), "{args:?}: want {words:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!never.exists(), "{args:?} wrote {}", never.display());
    }
}

/// No `src` or `href` attribute points anywhere with http:// or https://,
/// and nothing is loaded from elsewhere at all.
fn assert_no_fetches(html: &str) {
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(attr) {
            let value = rest[at + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http://") && !value.starts_with("https://"),
                "a fetch: {}",
                &rest[at..(at + 80).min(rest.len())]
            );
            rest = &rest[at + attr.len()..];
        }
    }
    assert!(!lower.contains("@import"), "CSS import");
    assert!(!lower.contains("url("), "CSS url()");
}

/// `probe -o html=FILE` against a banner this test serves on 127.0.0.1: the
/// page has the host's table with the port, its service and its banner, and
/// fetches nothing; `report html` renders the probe's JSON Lines the same way.
#[test]
fn probe_results_render_as_a_host_table() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        // The probe connects once; answer it with an SSH banner.
        if let Ok((mut conn, _)) = listener.accept() {
            use std::io::Write as _;
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("probe.html");
    let json = dir.path().join("probe.jsonl");
    let mut cmd = Command::new(bin());
    cmd.args(["probe", "127.0.0.1", "-p", &port.to_string(), "-o"])
        .arg(format!("html={}", path_str(&page)))
        .arg("-o")
        .arg(format!("json={}", path_str(&json)))
        .env_remove("SOCKEYE_LOG");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    server.join().expect("server");
    let html = std::fs::read_to_string(&page).expect("page");
    assert_no_fetches(&html);
    for want in [
        "<h1>sockeye probe report</h1>",
        "127.0.0.1",
        &format!("{port}/tcp"),
        "SSH-2.0-OpenSSH_9.2p1 Debian-2",
        "<td>ssh</td>",
    ] {
        assert!(html.contains(want), "{want} missing: {html}");
    }
    let again = report(&["html", path_str(&json)]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert_eq!(stdout(&again), html, "the same page from the JSON Lines");
}

/// Debian's chromium, or a loud skip (a failure under CI=true).
#[allow(clippy::print_stderr)]
fn require_chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_some() {
        return found;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "chromium is missing under CI=true: install Debian's chromium (scripts/test.sh does)"
        );
    }
    eprintln!(
        "\n********************************************************************\n\
         SKIPPED: needs Debian's chromium (scripts/test.sh installs it)\n\
         ********************************************************************"
    );
    None
}

/// Runs `cmd`, killing it after `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("still running after {limit:?}; killed: {}", show(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The DOM of `page` after Chromium has loaded and laid it out.
fn rendered_dom(chromium: &str, page: &Path, profile: &Path) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.display()))
    .env("HOME", profile);
    let out = output_within(cmd, Duration::from_secs(90));
    assert!(out.status.success(), "chromium failed: {}", show(&out));
    stdout(&out)
}

/// The cells of the matrix table in the DOM, as (status, text) in order.
fn matrix_cells(dom: &str) -> Vec<(String, String)> {
    let start = dom.find("<table class=\"matrix\"").expect("a matrix table");
    let end = start + dom[start..].find("</table>").expect("end of the matrix");
    let table = &dom[start..end];
    table
        .split("<td ")
        .skip(1)
        .map(|cell| {
            let status = cell
                .split("data-status=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_owned();
            // The cell's text: tags dropped.
            let mut text = String::new();
            let mut in_tag = false;
            let body = cell.split_once('>').map_or("", |(_, b)| b);
            for c in body.split("</td>").next().unwrap_or("").chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => {
                        in_tag = false;
                        text.push(' ');
                    }
                    _ if !in_tag => text.push(c),
                    _ => {}
                }
            }
            (
                status,
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

/// A plan of flows between two `local` agents over loopback, run by
/// `sockeye exercise run -o html=FILE -o json=FILE`: one flow allowed as
/// expected (pass), one allowed where the plan expected blocked (fail),
/// one to a closed port with no listener (inconclusive). Chromium renders
/// the page; the matrix cells carry each status in colour class and in
/// words, the redirect finding and every check's evidence are there, and
/// `report html` renders the same matrix from the JSON Lines and from the
/// run log.
#[test]
fn a_flow_plan_report_renders_in_chromium() {
    let Some(chromium) = require_chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = closed_ports(3);
    let (p1, p2, p3) = (ports[0], ports[1], ports[2]);
    let plan = format!(
        "name: loopback zones
agents:
  a: {{via: local, allow_targets: \"127.0.0.0/8\"}}
  b: {{via: local, allow_listen: \"{p1},{p2}\"}}
defaults: {{timeout: 1500ms}}
checks:
  - name: web to b
    flow: {{from: a, to: \"127.0.0.1:{p1}\", listen_on: [\"b:{p1}\"]}}
    expect: allowed
  - name: admin to b must be blocked
    flow: {{from: a, to: \"127.0.0.1:{p2}\", listen_on: [\"b:{p2}\"]}}
    expect: blocked
  - name: nobody listens
    flow: {{from: a, to: \"127.0.0.1:{p3}\"}}
    expect: allowed
"
    );
    let plan_path = dir.path().join("zones.yaml");
    std::fs::write(&plan_path, plan).expect("plan");
    let page = dir.path().join("report.html");
    let json = dir.path().join("results.jsonl");
    let run_log = dir.path().join("run.log");
    let mut cmd = Command::new(bin());
    cmd.args(["exercise", "run", path_str(&plan_path), "-o"])
        .arg(format!("html={}", path_str(&page)))
        .arg("-o")
        .arg(format!("json={}", path_str(&json)))
        .args(["--run-log", path_str(&run_log)])
        .env_remove("SOCKEYE_LOG");
    let out = output_within(cmd, Duration::from_secs(60));
    // One expectation fails on purpose.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let records = json_lines(&std::fs::read_to_string(&json).expect("json"));
    let verdict = |name: &str| {
        records
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["flow"]["verdict"].clone())
            .unwrap_or_else(|| panic!("no {name}: {records:?}"))
    };
    assert_eq!(verdict("web to b"), "allowed");
    assert_eq!(verdict("admin to b must be blocked"), "allowed");
    assert_eq!(verdict("nobody listens"), "inconclusive");

    let html = std::fs::read_to_string(&page).expect("page");
    assert_no_fetches(&html);
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    let dom = rendered_dom(chromium, &page, &profile);
    assert!(
        dom.contains("<h1>sockeye: plan loopback zones</h1>"),
        "{dom}"
    );
    let cells = matrix_cells(&dom);
    let want = [
        (
            "pass",
            "pass expected allowed, observed allowed (connected)",
        ),
        (
            "fail",
            "fail expected blocked, observed allowed (connected)",
        ),
        (
            "inconclusive",
            "inconclusive expected allowed, observed inconclusive",
        ),
    ];
    assert_eq!(cells.len(), want.len(), "{cells:?}");
    for ((status, text), (want_status, want_text)) in cells.iter().zip(want) {
        assert_eq!(status, want_status, "{cells:?}");
        assert!(
            text.starts_with(want_text),
            "cell {text:?} should start with {want_text:?}"
        );
    }
    for column in [p1, p2, p3] {
        assert!(
            dom.contains(&format!("127.0.0.1:{column}/tcp")),
            "column for {column}: {dom}"
        );
    }
    // Findings and evidence.
    assert!(dom.contains("Redirected (2)"), "{dom}");
    assert!(dom.contains("the nonce arrived at b:"), "{dom}");
    assert!(
        dom.contains("no agent listened: the sender's view only"),
        "{dom}"
    );
    assert_eq!(
        dom.matches("<summary>evidence</summary>").count(),
        3,
        "{dom}"
    );

    // The same page from the JSON Lines.
    let again = dir.path().join("again.html");
    let out = report(&["html", path_str(&json), "-o", path_str(&again)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let dom_again = rendered_dom(chromium, &again, &profile);
    assert_eq!(matrix_cells(&dom_again), cells);
    // And from the run log, whose first line is its header.
    let from_log = dir.path().join("from-log.html");
    let out = report(&["html", path_str(&run_log), "-o", path_str(&from_log)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let dom_log = rendered_dom(chromium, &from_log, &profile);
    assert_eq!(matrix_cells(&dom_log), cells);
    assert!(dom_log.contains("<h1>sockeye: plan loopback zones</h1>"));

    // A bad line: named, exit 2, no page.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"type\":\"check\",\"name\":\"x\"}\n").expect("write");
    let never = dir.path().join("never.html");
    let out = report(&["html", path_str(&bad), "-o", path_str(&never)]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: line 1: not a valid check record",
            path_str(&bad)
        )),
        "{}",
        show(&out)
    );
    assert!(!never.exists());
}
