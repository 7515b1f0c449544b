//! `sockeye fuzz` end to end on 127.0.0.1: it finds, saves and replays the
//! crash of a deliberately fragile server (tests/support/fragile_server.py
//! exits on a line over 1,000 bytes holding `%n`) within a bounded number of
//! cases for a fixed seed; the same seed gives the same bytes; server mode
//! answers a test HTTP client with the template's header and random bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{bin, json_lines, sockeye, stderr, stdout};

const FRAGILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/fragile_server.py"
);

/// A free port for a server the test starts by command line, chosen below
/// the kernel's ephemeral range (32768 and up) so that no other test's
/// outgoing connection can take it between our check and the server's bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 3_000) as u16 * 4;
    for _ in 0..2_000 {
        let port = 20_000 + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

fn fragile_cmd(port: u16) -> String {
    format!("python3 {FRAGILE} {port} 60")
}

/// The crash input: some line is longer than 1,000 bytes and holds "%n".
fn is_the_crash(input: &[u8]) -> bool {
    input
        .split(|&b| b == b'\n')
        .any(|line| line.len() > 1000 && line.windows(2).any(|w| w == b"%n"))
}

#[test]
fn finds_saves_and_replays_the_fragile_servers_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let run = |artifacts: &std::path::Path| {
        sockeye(&[
            "fuzz",
            "--json",
            "--lines",
            "--seed",
            "1",
            "--cases",
            "500",
            "--artifacts",
            artifacts.to_str().expect("utf-8"),
            "--spawn",
            &fragile_cmd(port),
            &target,
        ])
    };
    let out = run(&dir.path().join("a"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let failures: Vec<&Value> = records.iter().filter(|r| r["type"] == "failure").collect();
    assert_eq!(failures.len(), 1, "{records:#?} {}", stderr(&out));
    let f = failures[0];
    assert_eq!(f["kind"], "exited");
    assert_eq!(f["seed"], 1);
    let case = f["case"].as_u64().expect("case");
    assert!(case < 500);
    let summary = records
        .iter()
        .find(|r| r["type"] == "summary")
        .expect("summary");
    assert_eq!(summary["failures"], 1);
    assert_eq!(
        summary["cases"].as_u64(),
        Some(case + 1).max(summary["cases"].as_u64())
    );

    let saved = std::path::PathBuf::from(f["input"].as_str().expect("input"));
    let bytes = std::fs::read(&saved).expect("saved input");
    assert!(
        is_the_crash(&bytes),
        "the saved case is not the one that kills it"
    );
    assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64));
    let meta: Value =
        serde_json::from_slice(&std::fs::read(saved.with_extension("json")).expect("meta"))
            .expect("meta json");
    assert_eq!(meta["case"], case);

    // The same seed gives the same case, byte for byte.
    let again = run(&dir.path().join("b"));
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let f2 = json_lines(&stdout(&again))
        .into_iter()
        .find(|r| r["type"] == "failure")
        .expect("failure again");
    assert_eq!(f2["case"], case);
    assert_eq!(
        std::fs::read(f2["input"].as_str().expect("input")).expect("read"),
        bytes
    );

    // Replay: the target dies again; a harmless input does not kill it.
    let out = sockeye(&[
        "fuzz",
        "--replay",
        saved.to_str().expect("utf-8"),
        "--spawn",
        &fragile_cmd(port),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("REPRODUCED: "), "{}", stdout(&out));
    let harmless = dir.path().join("harmless.bin");
    std::fs::write(&harmless, b"EHLO x\r\n").expect("write");
    let out = sockeye(&[
        "fuzz",
        "--replay",
        harmless.to_str().expect("utf-8"),
        "--spawn",
        &fragile_cmd(port),
        &target,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("not reproduced: "),
        "{}",
        stdout(&out)
    );
}

/// Without --spawn: a server that dies shows as refused connections, and
/// the case before is blamed.
#[test]
fn a_target_that_dies_is_noticed_without_spawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut server = Command::new("python3")
        .args([FRAGILE, &port.to_string(), "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start fragile server");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "fragile server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = sockeye(&[
        "fuzz",
        "--json",
        "--lines",
        "--seed",
        "1",
        "--cases",
        "500",
        "--artifacts",
        dir.path().to_str().expect("utf-8"),
        &format!("127.0.0.1:{port}"),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let f = json_lines(&stdout(&out))
        .into_iter()
        .find(|r| r["type"] == "failure")
        .unwrap_or_else(|| {
            panic!(
                "no failure record; stdout: {}; stderr: {}",
                stdout(&out),
                stderr(&out)
            )
        });
    assert_eq!(f["kind"], "refused", "{f}");
    let bytes = std::fs::read(f["input"].as_str().expect("input")).expect("read");
    assert!(is_the_crash(&bytes), "{f}");
}

/// Server mode (the seed's example 6): each client gets the template's
/// valid header, then random bytes; the same seed serves the same bytes.
#[test]
fn server_mode_serves_header_then_random_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("resp.tpl");
    std::fs::write(
        &template,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n{{random 64-256}}",
    )
    .expect("template");
    let serve_once = || -> Vec<u8> {
        let mut child = Command::new(bin())
            .args([
                "fuzz",
                "--listen",
                "127.0.0.1:0",
                "--template",
                template.to_str().expect("utf-8"),
                "--seed",
                "7",
                "--cases",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut line)
            .expect("listening line");
        let addr = line
            .split_whitespace()
            .nth(4)
            .map(|a| a.trim_end_matches(','))
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_string();
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n")
            .expect("request");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("response");
        let status = child.wait().expect("wait");
        assert!(status.success(), "{status}");
        got
    };
    let first = serve_once();
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n";
    assert!(
        first.starts_with(head),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    let body = first.len() - head.len();
    assert!((64..=256).contains(&body), "{body} random bytes");
    assert_eq!(serve_once(), first, "same seed, same bytes");
}

#[test]
fn fuzz_usage_errors_are_one_line_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.tpl");
    std::fs::write(&bad, b"GET / HTTP/1.1\r\n{{random x}}").expect("write");
    let cases: &[(&[&str], &str)] = &[
        (&["fuzz"], "nothing to fuzz"),
        (
            &["fuzz", "--cases", "0", "127.0.0.1:9"],
            "--cases: must be at least 1",
        ),
        (
            &[
                "fuzz",
                "--template",
                bad.to_str().expect("utf-8"),
                "127.0.0.1:9",
            ],
            "byte 16: `x` is not a whole number",
        ),
        (
            &["fuzz", "--random", "10", "--lines", "127.0.0.1:9"],
            "cannot be used with",
        ),
        (&["fuzz", "--listen", "1", "127.0.0.1:9"], "choose one"),
    ];
    for (args, want) in cases {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// With --expect-answer, a case that gets no answer within the timeout
/// is a hang, saved like a crash.
#[test]
fn a_target_that_stops_answering_is_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        // Bounded: 10 connections; the first three are echoed, then silence.
        for (i, stream) in l.incoming().take(10).enumerate() {
            let Ok(mut s) = stream else { continue };
            if i < 3 {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let _ = s.write_all(b"ok");
            } else {
                held.push(s);
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let out = sockeye(&[
        "fuzz",
        "--json",
        "--seed",
        "2",
        "--cases",
        "10",
        "--timeout",
        "300ms",
        "--expect-answer",
        "--artifacts",
        dir.path().to_str().expect("utf-8"),
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let f = json_lines(&stdout(&out))
        .into_iter()
        .find(|r| r["type"] == "failure")
        .expect("failure");
    assert_eq!(f["kind"], "hang", "{f}");
    assert_eq!(f["case"], 3, "{f}");
    assert_eq!(f["message"], "no answer within 300 ms to case 3");
    assert!(dir.path().join("hang-s2-c3.bin").exists());
}

/// The replay hint is a command that works as printed (target, input and
/// --spawn), and an unreachable target has a status of its own (3), not
/// the one of a failure found (1).
#[test]
fn the_replay_hint_works_as_printed_and_unreachable_is_its_own_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let artifacts = dir.path().join("arts");
    let out = sockeye(&[
        "fuzz",
        "--lines",
        "--seed",
        "1",
        "--cases",
        "500",
        "--artifacts",
        artifacts.to_str().expect("utf-8"),
        "--spawn",
        &fragile_cmd(port),
        &target,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let hint = text
        .lines()
        .find_map(|l| l.split_once("replay: sockeye ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no replay hint: {text}"));
    assert!(hint.contains(&target), "{hint}");
    assert!(hint.contains("--spawn"), "{hint}");
    let replay = Command::new("sh")
        .arg("-c")
        .arg(format!("\"$0\" {hint}"))
        .arg(bin())
        .output()
        .expect("sh");
    assert_eq!(replay.status.code(), Some(1), "{hint}: {}", stderr(&replay));
    assert!(
        stdout(&replay).starts_with("REPRODUCED: "),
        "{}",
        stdout(&replay)
    );

    // Nothing listens there now.
    let out = sockeye(&["fuzz", "--cases", "1", "--timeout", "1s", &target]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}
