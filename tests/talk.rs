//! `sockeye talk` and `sockeye exercise run` on this machine: conversations
//! with scripted responders on 127.0.0.1:0 listeners the test binds (an
//! FTP-like login, silence, a close, a flood), with a local program on a
//! pty (`--spawn`), and plans (matrices, expectations, ordering, the four
//! output formats, exit statuses, bad plans refused with file:line:column).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::util::{json_lines, sockeye, stderr, stdout};

/// How long a scripted responder waits for the client at most.
const RESPONDER_TIMEOUT: Duration = Duration::from_secs(20);

/// A scripted FTP-like login responder: greets, asks for the password,
/// accepts `alice`/`wonderland` and refuses anything else with 530. Serves
/// `conns` connections, then reports every line it received.
fn ftp_like_responder(conns: usize) -> (u16, mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for _ in 0..conns {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            let tx = tx.clone();
            thread::spawn(move || {
                let _ = tx.send(serve_ftp_like(stream));
            });
        }
    });
    (port, rx)
}

/// One connection of [`ftp_like_responder`]; returns the lines received.
fn serve_ftp_like(stream: TcpStream) -> Vec<String> {
    let mut lines = Vec::new();
    stream.set_read_timeout(Some(RESPONDER_TIMEOUT)).ok();
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    let _ = w.write_all(b"220 scripted ftp-like responder\r\n");
    let mut user = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        lines.push(line.clone());
        let l = line.trim_end();
        if let Some(u) = l.strip_prefix("USER ") {
            user = u.to_string();
            let _ = w.write_all(b"331 Please specify the password.\r\n");
        } else if let Some(p) = l.strip_prefix("PASS ") {
            if user == "alice" && p == "wonderland" {
                let _ = w.write_all(b"230 Login successful.\r\n");
            } else {
                let _ = w.write_all(b"530 Login incorrect.\r\n");
            }
        } else if l == "QUIT" {
            let _ = w.write_all(b"221 Goodbye.\r\n");
            break;
        } else {
            let _ = w.write_all(b"500 Unknown command.\r\n");
        }
    }
    lines
}

/// A scripted responder that does `what` with each of `conns` connections.
fn responder(conns: usize, what: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for _ in 0..conns {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            what(stream);
        }
    });
    port
}

fn result_line(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("RESULT: "))
        .unwrap_or_else(|| panic!("no RESULT line in {text:?}"))
}

const LOGIN: [&str; 12] = [
    "--expect",
    "^220 ",
    "--name",
    "Name prompt",
    "--send",
    "USER {{user}}",
    "--expect",
    "^331 ",
    "--name",
    "Password prompt",
    "--send",
    "PASS {{pass}}",
];

fn login_args<'a>(target: &'a str, user: &'a str, pass: &'a str) -> Vec<&'a str> {
    let mut a = vec!["talk", target];
    a.extend_from_slice(&LOGIN);
    a.extend_from_slice(&[
        "--expect",
        "^230 ",
        "--fail",
        "^530 ",
        "--name",
        "FTP application prompt",
        "--send",
        "QUIT",
        "--expect",
        "^221 ",
        "--var",
        user,
        "--var",
        pass,
        "--timeout",
        "5s",
    ]);
    a
}

#[test]
fn a_login_conversation_succeeds_and_sends_what_was_asked() {
    let (port, lines) = ftp_like_responder(1);
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&login_args(&target, "user=alice", "pass=wonderland"));
    let text = stdout(&out);
    assert_eq!(result_line(&text), "Success", "{text}{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("ok   FTP application prompt"), "{text}");
    // Variables filled in, CRLF after each line (the network default).
    assert_eq!(
        lines.recv_timeout(RESPONDER_TIMEOUT).expect("lines"),
        ["USER alice\r\n", "PASS wonderland\r\n", "QUIT\r\n"]
    );
}

#[test]
fn a_refused_password_fails_at_its_step_with_what_was_received() {
    let (port, _lines) = ftp_like_responder(1);
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&login_args(&target, "user=alice", "pass=wrong"));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let result = result_line(&text);
    assert!(
        result.starts_with("Fail Refused at FTP application prompt: /^530 / matched \"530 \""),
        "{result}"
    );
    assert!(result.contains("expected /^230 /"), "{result}");
    assert!(result.contains("Login incorrect."), "{result}");
}

#[test]
fn silence_is_the_seeds_timeout_at_the_step_name() {
    let port = responder(1, |s| {
        // Accepts and says nothing until the client gives up.
        let mut buf = [0u8; 64];
        s.set_read_timeout(Some(RESPONDER_TIMEOUT)).ok();
        let _ = (&s).read(&mut buf);
    });
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&[
        "talk",
        &target,
        "--expect",
        "Name",
        "--name",
        "Name prompt",
        "--timeout",
        "300ms",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    let result = result_line(&text);
    assert!(
        result.starts_with("Fail Timeout at Name prompt"),
        "{result}"
    );
    assert!(result.contains("last bytes received: \"\""), "{result}");
}

#[test]
fn a_close_is_the_seeds_eof_at_the_step_name_with_the_last_bytes() {
    let port = responder(1, |mut s| {
        let _ = s.write_all(b"220 going away\r\n");
    });
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&[
        "talk",
        &target,
        "--expect",
        "word:",
        "--name",
        "Password prompt",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON object");
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["kind"], "eof");
    assert_eq!(v["failure"]["step"], "Password prompt");
    assert_eq!(v["failure"]["expected"], "/word:/");
    assert_eq!(v["failure"]["last"], "220 going away\\r\\n");
}

#[test]
fn a_flood_ends_in_full_buffer_not_in_memory_growth() {
    let port = responder(1, |mut s| {
        let chunk = [b'A'; 4096];
        // 1 MiB at most; the client stops reading long before.
        for _ in 0..256 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&[
        "talk",
        &target,
        "--expect",
        "never",
        "--max-buffer",
        "16384",
        "--json",
    ]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["failure"]["kind"], "full_buffer", "{v}");
    assert_eq!(v["bytes_in"], 16384);
}

/// A local program on a pty: prompts, reads a name and a password.
fn write_prompt_program(dir: &Path) -> String {
    let path = dir.join("login.sh");
    std::fs::write(
        &path,
        "printf 'Name (local:me): '\nread name\nprintf 'Password: '\nread pw\n\
         if [ \"$pw\" = secret ]; then echo \"230 Welcome $name\"; else echo '530 Login incorrect.'; fi\n",
    )
    .expect("write the program");
    format!("sh {}", path.display())
}

#[test]
fn spawn_talks_to_a_local_program_on_a_pty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = write_prompt_program(dir.path());
    let run = |pw: &str| {
        sockeye(&[
            "talk",
            "--spawn",
            &program,
            "--expect",
            "Name",
            "--name",
            "Name prompt",
            "--send",
            "alice",
            "--expect",
            "word:",
            "--name",
            "Password prompt",
            "--send",
            pw,
            "--expect",
            r"230 Welcome (\w+)",
            "--fail",
            "530",
            "--name",
            "login",
            "--timeout",
            "5s",
        ])
    };
    let out = run("secret");
    let text = stdout(&out);
    assert_eq!(result_line(&text), "Success", "{text}{}", stderr(&out));
    assert!(text.contains("matched \"230 Welcome alice\""), "{text}");
    let out = run("wrong");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        result_line(&text).starts_with("Fail Refused at login"),
        "{text}"
    );
    // The program exits after its answer: waiting for more is Eof (the pty's EIO).
    let out = sockeye(&[
        "talk",
        "--spawn",
        &program,
        "--expect",
        "Name",
        "--send",
        "a",
        "--expect",
        "word:",
        "--send",
        "b",
        "--expect",
        "never",
        "--name",
        "after the end",
    ]);
    assert!(
        result_line(&stdout(&out)).starts_with("Fail Eof at after the end"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn talk_refuses_bad_usage_before_sending_anything() {
    for (args, needle) in [
        (
            vec!["talk", "127.0.0.1:1", "--expect", "("],
            "--expect \"(\"",
        ),
        (vec!["talk", "127.0.0.1:1"], "no steps"),
        (vec!["talk", "nowhere", "--expect", "x"], "HOST:PORT"),
        (
            vec!["talk", "127.0.0.1:1", "--send", "{{who}}"],
            "--var who=VALUE",
        ),
        (
            vec!["talk", "127.0.0.1:1", "--expect", "x", "--eol", "dos"],
            "--eol",
        ),
    ] {
        let out = sockeye(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

fn write_plan(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write plan");
    p.display().to_string()
}

/// The seed's matrix on loopback: a closed port stands for the bad address.
fn matrix_plan(ftp: u16, closed: u16, anon_expect: &str) -> String {
    format!(
        r#"
name: loopback login matrix
concurrency: 4
defaults: {{connect_timeout: 2s, timeout: 5s}}
vars: {{lo: 127.0.0.1}}
checks:
  - name: the server listens
    connect: "{{{{lo}}}}:{ftp}"
  - name: nothing on the closed port
    connect: "{{{{lo}}}}:{closed}"
    expect: closed
  - name: "login: {{{{case}}}}"
    after: [the server listens]
    talk:
      target: "{{{{lo}}}}:{{{{port}}}}"
      steps:
        - {{name: Name prompt, expect: "^220 ", send: "USER {{{{user}}}}"}}
        - {{name: Password prompt, expect: "^331 ", send: "PASS {{{{pass}}}}"}}
        - {{name: FTP application prompt, expect: "^230 ", fail: ["^530 "], send: QUIT}}
    matrix:
      - {{case: bad address, port: {closed}, user: badIP, pass: badPasswd, expect: fail}}
      - {{case: bad username, port: {ftp}, user: badUser, pass: badPasswd, expect: fail}}
      - {{case: good username, port: {ftp}, user: alice, pass: wonderland, expect: success}}
      - {{case: anonymous/badPasswd, port: {ftp}, user: anonymous, pass: badPasswd, expect: {anon_expect}}}
"#
    )
}

#[test]
fn a_plan_judges_each_check_by_its_expectation() {
    let (ftp, _lines) = ftp_like_responder(4);
    let closed = crate::util::closed_ports(1)[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), "plan.yaml", &matrix_plan(ftp, closed, "fail"));
    let junit = dir.path().join("report.xml");
    let junit_arg = format!("junit={}", junit.display());
    let out = sockeye(&["exercise", "run", &plan, "-o", "json", "-o", &junit_arg]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let records = json_lines(&text);
    let checks: Vec<&Value> = records.iter().filter(|r| r["type"] == "check").collect();
    let got: Vec<(&str, &str, bool)> = checks
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name"),
                c["actual"].as_str().expect("actual"),
                c["passed"].as_bool().expect("passed"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("the server listens", "open", true),
            ("nothing on the closed port", "closed", true),
            ("login: bad address", "fail at connect", true),
            (
                "login: bad username",
                "fail at FTP application prompt",
                true
            ),
            ("login: good username", "success", true),
            (
                "login: anonymous/badPasswd",
                "fail at FTP application prompt",
                true
            ),
        ]
    );
    assert!(
        checks[2]["result"]
            .as_str()
            .expect("result")
            .starts_with("Fail Connect failed at connect: connection refused"),
        "{}",
        checks[2]
    );
    let summary = records.last().expect("summary");
    assert_eq!(
        (summary["passed"].as_u64(), summary["failed"].as_u64()),
        (Some(6), Some(0))
    );
    let xml = std::fs::read_to_string(&junit).expect("junit file");
    assert!(xml.contains(r#"tests="6" failures="0""#), "{xml}");
}

#[test]
fn a_broken_expectation_fails_the_run_in_every_format() {
    let (ftp, _lines) = ftp_like_responder(4);
    let closed = crate::util::closed_ports(1)[0];
    let dir = tempfile::tempdir().expect("tempdir");
    // "A bad password must be accepted" is wrong: that check fails.
    let plan = write_plan(
        dir.path(),
        "plan.yaml",
        &matrix_plan(ftp, closed, "success"),
    );
    let tap = dir.path().join("out.tap");
    let tap_arg = format!("tap={}", tap.display());
    let out = sockeye(&["exercise", "run", &plan, "-o", &tap_arg]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("6 checks: 5 passed, 1 failed"), "{text}");
    assert!(
        text.contains("FAIL login: anonymous/badPasswd: expected success, got fail at FTP application prompt. RESULT: Fail Refused at FTP application prompt"),
        "{text}"
    );
    let tap = std::fs::read_to_string(&tap).expect("tap");
    assert!(tap.contains("1..6\n"), "{tap}");
    assert!(
        tap.contains("not ok 6 - login: anonymous/badPasswd"),
        "{tap}"
    );
    assert_eq!(tap.matches("\nok ").count(), 5, "{tap}");
}

#[test]
fn sequential_plans_run_in_the_order_written() {
    // A responder that answers each connection with its own sequence number.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for n in 0..5 {
            let Ok((mut s, _)) = listener.accept() else {
                break;
            };
            let _ = s.write_all(format!("conn {n}\r\n").as_bytes());
        }
    });
    let mut plan = String::from("sequential: true\nchecks:\n");
    for n in 0..5 {
        plan.push_str(&format!(
            "  - name: c{n}\n    talk: {{target: \"127.0.0.1:{port}\", steps: [{{expect: \"conn {n}\\r\\n\"}}]}}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_plan(dir.path(), "seq.yaml", &plan);
    let out = sockeye(&["exercise", "run", &path, "-o", "tap"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(text.matches("\nok ").count(), 5, "{text}");
}

#[test]
fn a_bad_plan_is_refused_with_file_line_and_column_before_anything_runs() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    // The first check is fine and would connect; the second is broken.
    let text = format!(
        "checks:\n  - name: ok\n    connect: \"127.0.0.1:{port}\"\n  - name: broken\n    talk:\n      target: \"127.0.0.1:{port}\"\n      steps:\n        - expect: \"(unclosed\"\n"
    );
    let plan = write_plan(dir.path(), "bad.yaml", &text);
    let out = sockeye(&["exercise", "run", &plan]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bad plan: {plan}:8:")),
        "file:line:column expected: {err}"
    );
    assert!(err.contains("bad regex"), "{err}");
    assert!(stdout(&out).is_empty());
    // Nothing ran: no connection reached the listener.
    assert!(
        listener.accept().is_err(),
        "a check ran despite the bad plan"
    );
    // TOML too.
    let toml = write_plan(
        dir.path(),
        "bad.toml",
        "[[checks]]\nname = \"a\"\nconnect = \"h:1\"\nexpect = 3\n",
    );
    let out = sockeye(&["exercise", "run", &toml]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{toml}:4:")),
        "{}",
        stderr(&out)
    );
}

/// `sockeye calc serve` on 127.0.0.1:0, killed on drop.
struct CalcServer(std::process::Child, String);

impl CalcServer {
    fn start() -> CalcServer {
        let mut child = std::process::Command::new(crate::util::bin())
            .args(["calc", "serve", "--listen", "127.0.0.1:0", "--tcp-only"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start calc serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        CalcServer(child, addr)
    }
}

impl Drop for CalcServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn calc_checks_compare_the_answer() {
    let server = CalcServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = |sum_expect: &str| {
        format!(
            "checks:\n  - name: sum\n    calc: {{server: \"{}\", op: SUM, args: [1, 2, 3]}}\n    expect: {{result: {sum_expect}}}\n  - name: min of nothing is refused\n    calc: {{server: \"{}\", op: MIN}}\n    expect: fail\n",
            server.1, server.1
        )
    };
    let good = write_plan(dir.path(), "calc.yaml", &plan("6"));
    let out = sockeye(&["exercise", "run", &good, "-o", "json"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let records = json_lines(&text);
    assert_eq!(records[0]["actual"], "result 6", "{text}");
    assert_eq!(records[1]["actual"], "fail", "{text}");
    assert!(
        records[1]["result"]
            .as_str()
            .expect("result")
            .contains("rejected"),
        "{text}"
    );
    let wrong = write_plan(dir.path(), "wrong.yaml", &plan("7"));
    let out = sockeye(&["exercise", "run", &wrong, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&stdout(&out));
    assert_eq!(
        (&records[0]["expected"], &records[0]["passed"]),
        (&Value::from("success, result 7"), &Value::from(false))
    );
}

#[test]
fn scripts_serve_talk_and_plans_and_plans_can_spawn() {
    let (port, lines) = ftp_like_responder(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_plan(
        dir.path(),
        "login.yaml",
        "timeout: 5s\nsteps:\n  - {name: Name prompt, expect: \"^220 \", send: \"USER {{user}}\"}\n  - {name: Password prompt, expect_literal: \"331 \", send: \"PASS {{pass}}\"}\n  - {name: login, expect: \"^230 \", fail: [\"^530 \"], send: QUIT}\n",
    );
    let target = format!("127.0.0.1:{port}");
    let out = sockeye(&[
        "talk",
        &target,
        "--script",
        &script,
        "--var",
        "user=alice",
        "--var",
        "pass=wonderland",
    ]);
    assert_eq!(result_line(&stdout(&out)), "Success", "{}", stderr(&out));
    assert_eq!(
        lines.recv_timeout(RESPONDER_TIMEOUT).expect("lines"),
        ["USER alice\r\n", "PASS wonderland\r\n", "QUIT\r\n"]
    );
    // Flags and a script do not mix.
    let out = sockeye(&["talk", &target, "--script", &script, "--expect", "x"]);
    assert_eq!(out.status.code(), Some(2));
    // A plan: the same script by a path relative to the plan, and a spawned program.
    let program = write_prompt_program(dir.path());
    let plan = write_plan(
        dir.path(),
        "plan.yaml",
        &format!(
            "vars: {{user: alice, pass: wonderland}}\nchecks:\n  - name: by script\n    talk: {{target: \"{target}\", script: login.yaml}}\n  - name: spawned\n    talk:\n      spawn: {program}\n      steps:\n        - {{expect: Name, send: \"{{{{user}}}}\"}}\n        - {{expect: \"word:\", send: nope}}\n        - {{name: welcome, expect: \"230 Welcome\", fail: [\"530\"]}}\n    expect: {{fail_at: welcome}}\n"
        ),
    );
    let listed = sockeye(&["exercise", "check", &plan]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("2 checks; the plan is valid"),
        "{}",
        stdout(&listed)
    );
    let out = sockeye(&["exercise", "run", &plan, "-o", "json"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let records = json_lines(&text);
    assert_eq!(records[0]["actual"], "success", "{text}");
    assert_eq!(records[1]["actual"], "fail at welcome", "{text}");
    assert_eq!(records[1]["target"], format!("spawn {program}"));
}

/// Ctrl-C in the middle of a conversation: the steps done were printed as
/// they completed and stay, the result names the step that was cut, and
/// the status is 130; the JSON object says the same.
#[test]
fn ctrl_c_keeps_the_steps_done_and_names_the_one_cut() {
    for json in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(b"220 hello\r\n");
                thread::sleep(RESPONDER_TIMEOUT);
            }
        });
        let target = format!("127.0.0.1:{port}");
        let mut args = vec![
            "talk",
            &target,
            "--expect",
            "220",
            "--name",
            "banner",
            "--expect",
            "never",
            "--name",
            "never said",
            "--timeout",
            "30s",
        ];
        if json {
            args.push("--json");
        }
        let mut child = std::process::Command::new(crate::util::bin())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        if !json {
            // The first step is printed as soon as it is done.
            std::io::BufRead::read_line(&mut out, &mut first).expect("read");
            assert!(first.starts_with("ok   banner "), "{first}");
        } else {
            thread::sleep(Duration::from_millis(500));
        }
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
        let mut rest = String::new();
        let reader = thread::spawn(move || {
            let _ = std::io::Read::read_to_string(&mut out, &mut rest);
            rest
        });
        let status = crate::support::netns::wait_output(child, Duration::from_secs(10)).status;
        let rest = reader.join().expect("reader");
        assert_eq!(status.code(), Some(130), "json {json}: {first}{rest}");
        if json {
            let v: serde_json::Value = serde_json::from_str(rest.trim()).expect("one object");
            assert_eq!(v["steps"][0]["name"], "banner", "{rest}");
            assert_eq!(v["failure"]["kind"], "interrupted", "{rest}");
            assert_eq!(v["failure"]["step"], "never said", "{rest}");
        } else {
            assert_eq!(rest, "RESULT: Fail Interrupted at never said\n");
        }
    }
}

#[test]
fn ctrl_c_stops_a_plan_with_status_130() {
    // A responder that never speaks: every check would wait its 30 s.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (connected, first) = mpsc::channel();
    thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..4 {
            match listener.accept() {
                Ok((s, _)) => {
                    held.push(s);
                    let _ = connected.send(());
                }
                Err(_) => break,
            }
        }
        thread::sleep(RESPONDER_TIMEOUT);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = String::from("checks:\n");
    for n in 0..4 {
        plan.push_str(&format!(
            "  - name: c{n}\n    talk: {{target: \"127.0.0.1:{port}\", timeout: 30s, steps: [{{expect: never}}]}}\n"
        ));
    }
    let path = write_plan(dir.path(), "slow.yaml", &plan);
    let child = std::process::Command::new(crate::util::bin())
        .args(["exercise", "run", &path, "-o", "tap"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Checks connect only after the signal handler is installed.
    first
        .recv_timeout(RESPONDER_TIMEOUT)
        .expect("a check connected");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let started = std::time::Instant::now();
    let out = crate::support::netns::wait_output(child, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5), "slow to stop");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("TAP version 14\n1..0\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_readme_plans_are_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = |fence: &str, first: &str| -> String {
        let start = readme
            .find(&format!("{fence}\n{first}"))
            .unwrap_or_else(|| panic!("no {fence} block starting with {first:?}"))
            + fence.len()
            + 1;
        let end = readme[start..].find("\n```").expect("closing fence") + start;
        readme[start..end].to_string()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text, checks) in [
        ("plan.yaml", block("```yaml", "name: FTP logins"), 5),
        ("plan.toml", block("```toml", "name = \"FTP logins\""), 3),
    ] {
        let path = write_plan(dir.path(), name, &text);
        let out = sockeye(&["exercise", "check", &path]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("{checks} checks; the plan is valid")),
            "{name}: {}",
            stdout(&out)
        );
    }
}

/// A check that fails while its step went well (a port open that should be
/// closed) says in its result line what failed, not the step's "Success".
#[test]
fn a_failed_check_says_what_failed_in_its_result_line() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "checks:\n  - name: nothing here\n    connect: \"127.0.0.1:{port}\"\n    expect: closed\n"
    );
    let plan = write_plan(dir.path(), "open.yaml", &text);
    let out = sockeye(&["exercise", "run", &plan]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "FAIL nothing here: expected closed, got open. RESULT: Fail expected closed, got open"
        ),
        "{text}"
    );
    assert!(!text.contains("RESULT: Success"), "{text}");
}
