//! Hostile peers and files (issue 17): a server that dribbles one byte at a
//! time, one address holding every connection of `calc serve`, a crowd of
//! `cat -k -e` clients, plan files that never end, and peer bytes that would
//! forge log lines. Everything runs on loopback against responders the test
//! binds; each test ends within a bound it asserts.

use crate::util::show;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::netns::try_wait_output;
use crate::util::bin;

/// Longest any run here may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(30);

/// Runs sockeye with `args`, killed after [`HUNG`]: the output and how long it took.
fn run_bounded(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let child = Command::new(bin())
        .args(args)
        .env_remove("SOCKEYE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockeye");
    match try_wait_output(child, HUNG) {
        Ok(out) => (out, start.elapsed()),
        Err(out) => panic!("sockeye {args:?} hung\n{}", show(&out)),
    }
}

/// A server that greets with `220 ` and then sends one byte every 100 ms,
/// never a line end, until the client goes away.
fn dribbling_smtp() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            thread::spawn(move || {
                if stream.write_all(b"220 ").is_err() {
                    return;
                }
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(60) {
                    thread::sleep(Duration::from_millis(100));
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn mail_gives_up_on_a_greeting_that_trickles_forever() {
    let port = dribbling_smtp();
    let server = format!("127.0.0.1:{port}");
    let args = [
        "mail",
        "-s",
        &server,
        "--from",
        "a@lab.test",
        "--to",
        "b@lab.test",
        "--no-tls",
        "--timeout",
        "1s",
    ];
    let (out, took) = run_bounded(&args);
    // README: exit 4, "the greeting was not 2xx or never came".
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no complete reply within 1"), "{err}");

    // The session limit ends it too, whatever the per-reply timeout.
    let args = [
        "mail",
        "-s",
        &server,
        "--from",
        "a@lab.test",
        "--to",
        "b@lab.test",
        "--no-tls",
        "--timeout",
        "1m",
        "--session-timeout",
        "2s",
    ];
    let (out, took) = run_bounded(&args);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--session-timeout"), "{err}");
}

#[test]
fn a_plan_mail_check_gives_up_on_a_greeting_that_trickles_forever() {
    let port = dribbling_smtp();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "defaults: {{timeout: 1s}}\nchecks:\n  - name: slow greeting\n    mail: {{server: \"127.0.0.1:{port}\", from: a@lab.test, to: b@lab.test, tls: none}}\n    expect: {{fail_at: banner}}\n"
        ),
    )
    .expect("write plan");
    let (out, took) = run_bounded(&["exercise", "run", plan.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Issue 17: `exercise check /dev/zero` read until the kernel killed it at
/// 24 GB. A plan or script that is not a regular file is refused, named.
#[test]
fn a_plan_or_script_that_is_not_a_regular_file_is_refused() {
    let (out, took) = run_bounded(&["exercise", "check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let (out, _) = run_bounded(&["talk", "127.0.0.1:9", "--script", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn an_oversized_plan_or_script_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Valid YAML (a comment) just over 1 MiB.
    let big = format!("# {}\nchecks: []\n", "x".repeat(1024 * 1024));
    let plan = dir.path().join("big.yaml");
    std::fs::write(&plan, &big).expect("write");
    let plan = plan.to_str().expect("path").to_owned();
    let (out, _) = run_bounded(&["exercise", "check", &plan]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("big.yaml") && err.contains("larger than the 1048576-byte limit"),
        "{err}"
    );
    // A plan whose talk check names an oversized script.
    std::fs::write(dir.path().join("big-script.yaml"), &big).expect("write");
    let with_script = dir.path().join("plan.yaml");
    std::fs::write(
        &with_script,
        "checks:\n  - name: s\n    talk: {target: \"127.0.0.1:9\", script: big-script.yaml}\n",
    )
    .expect("write");
    let (out, _) = run_bounded(&["exercise", "check", with_script.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("big-script.yaml") && err.contains("larger than"),
        "{err}"
    );
}
