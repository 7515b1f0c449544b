//! Plans and conversations against the real-server lab (tests/lab/): the
//! seed's five FTP login cases as a plan against vsftpd, each with the
//! right verdict, and POP3 logins against Dovecot (STARTTLS in the middle
//! of a conversation, implicit TLS, and a plaintext login that must be
//! refused), plus probe, connect and SMTP, IMAP and FTP STARTTLS steps in
//! one plan; and the mail check: a matrix over passwords against Postfix's
//! submission port, and mail checks refused with their position.
//!
//! "An unreachable address in the test namespace" is 198.18.0.99: inside
//! the lab's /24 on the veth, so the route exists but no host answers ARP
//! and the connect fails (host unreachable, or the 2 s connect timeout).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::netns::{Lab, TARGET_V4, require_lab, wait_output};
use crate::support::servicelab::{ALICE, ServiceLab, ports, require_services};
use crate::util::{bin, json_lines};

/// No host has this address in the lab (see the module comment).
const UNREACHABLE_V4: &str = "198.18.0.99";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// Runs `sockeye ARGS` in the scanner namespace: (stdout, stderr, status).
fn run(lab: &Lab, args: &[&str]) -> (String, String, i32) {
    let child = lab.spawn(lab.scanner_ns(), bin(), args);
    let out = wait_output(child, Duration::from_secs(90));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn checks(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "check").collect()
}

/// The seed's test list (`Server(tests)`), as a matrix over vsftpd: port 21
/// has virtual users (alice), 2121 takes anonymous with `guest@lab.test` only.
fn seed_plan(anon_bad_expect: &str) -> String {
    format!(
        r#"
name: the seed's FTP login matrix
defaults: {{connect_timeout: 2s, timeout: 5s}}
checks:
  - name: "{{{{case}}}}"
    talk:
      target: "{{{{host}}}}:{{{{port}}}}"
      steps:
        - {{name: Name prompt, expect: "^220 ", send: "USER {{{{user}}}}"}}
        - {{name: Password prompt, expect: "^331 ", send: "PASS {{{{pass}}}}"}}
        - {{name: FTP application prompt, expect: "^230 ", fail: ["^530 "], send: QUIT}}
    matrix:
      - {{case: bad address, host: {UNREACHABLE_V4}, port: 21, user: badIP, pass: badPasswd, expect: fail}}
      - {{case: bad username, host: {TARGET_V4}, port: 21, user: badUser, pass: badPasswd, expect: fail}}
      - {{case: good username, host: {TARGET_V4}, port: 21, user: {user}, pass: {pass}, expect: success}}
      - {{case: anonymous/badPasswd, host: {TARGET_V4}, port: {plain}, user: anonymous, pass: badPasswd, expect: {anon_bad_expect}}}
      - {{case: anonymous/goodpwd, host: {TARGET_V4}, port: {plain}, user: anonymous, pass: guest@lab.test, expect: success}}
"#,
        user = ALICE.0,
        pass = ALICE.1,
        plain = ports::FTP_PLAIN_MULTILINE,
    )
}

#[test]
fn the_seeds_five_ftp_logins_against_vsftpd_get_the_right_verdicts() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let _services = ServiceLab::start(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write(dir.path(), "ftp.yaml", &seed_plan("fail"));
    let junit = dir.path().join("ftp.xml");
    let junit_arg = format!("junit={}", junit.display());
    let (out, err, code) = run(
        &lab,
        &["exercise", "run", &plan, "-o", "json", "-o", &junit_arg],
    );
    assert_eq!(code, 0, "{out}{err}");
    let records = json_lines(&out);
    let got: Vec<(String, String, bool)> = checks(&records)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["actual"].as_str().expect("actual").to_string(),
                c["passed"].as_bool().expect("passed"),
            )
        })
        .collect();
    let want = [
        ("bad address", "fail at connect"),
        ("bad username", "fail at FTP application prompt"),
        ("good username", "success"),
        ("anonymous/badPasswd", "fail at FTP application prompt"),
        ("anonymous/goodpwd", "success"),
    ];
    assert_eq!(got.len(), 5, "{out}");
    for ((name, actual, passed), (want_name, want_actual)) in got.iter().zip(want) {
        assert_eq!(
            (name.as_str(), actual.as_str()),
            (want_name, want_actual),
            "{out}"
        );
        assert!(passed, "{name}: {out}");
    }
    let by_name = |n: &str| {
        checks(&records)
            .into_iter()
            .find(|c| c["name"] == n)
            .expect("check")
            .clone()
    };
    // The seed's RESULT lines, with vsftpd's own words.
    let bad_user = by_name("bad username");
    assert!(
        bad_user["result"]
            .as_str()
            .expect("result")
            .starts_with("Fail Refused at FTP application prompt: /^530 / matched \"530 \""),
        "{bad_user}"
    );
    assert!(
        bad_user["talk"]["failure"]["last"]
            .as_str()
            .expect("last")
            .contains("Login incorrect."),
        "{bad_user}"
    );
    let unreachable = by_name("bad address");
    let detail = unreachable["talk"]["failure"]["detail"]
        .as_str()
        .expect("detail");
    assert!(
        detail == "host unreachable" || detail.starts_with("connect timed out"),
        "{unreachable}"
    );
    // 2121's multi-line greeting: "^220 " waited for its last line.
    let anon = by_name("anonymous/goodpwd");
    assert_eq!(anon["talk"]["steps"][0]["matched"], "220 ", "{anon}");
    assert_eq!(anon["result"], "Success");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains(r#"tests="5" failures="0""#), "{xml}");

    // "A bad password must be accepted" is a wrong expectation: that check,
    // and the run, fail.
    let plan = write(dir.path(), "wrong.yaml", &seed_plan("success"));
    let (out, err, code) = run(&lab, &["exercise", "run", &plan, "-o", "tap"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("not ok 4 - anonymous/badPasswd"), "{out}");
    assert_eq!(out.matches("\nok ").count(), 4, "{out}");
}

#[test]
fn pop3_logins_against_dovecot_over_starttls_tls_and_plain_text() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path().display().to_string();
    let pop3 = format!("{TARGET_V4}:{}", ports::POP3);
    let user = format!("u={}", ALICE.0);
    let pass = format!("p={}", ALICE.1);
    // STARTTLS in the middle of the conversation (STLS, as probe does it),
    // then the login inside TLS.
    let (out, err, code) = run(
        &lab,
        &[
            "talk",
            &pop3,
            "--ca-file",
            &ca,
            "--sni",
            "mail.lab.test",
            "--expect",
            r"^\+OK .*$",
            "--name",
            "greeting",
            "--starttls",
            "pop3",
            "--send",
            "USER {{u}}",
            "--expect",
            r"^\+OK",
            "--name",
            "user",
            "--send",
            "PASS {{p}}",
            "--expect",
            r"^\+OK Logged in",
            "--fail",
            "^-ERR",
            "--name",
            "login",
            "--send",
            "QUIT",
            "--expect",
            r"^\+OK",
            "--name",
            "quit",
            "--var",
            &user,
            "--var",
            &pass,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["tls"]["verified"], true, "{v}");
    assert_eq!(v["steps"][2]["name"], "login");
    assert_eq!(v["steps"][2]["matched"], "+OK Logged in", "{v}");

    // One plan: POP3S over implicit TLS, a plaintext login Dovecot must
    // refuse, probe facts, a connect, SMTP STARTTLS mid-conversation.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
name: mail
defaults: {{timeout: 5s, ca_file: ["{ca}"]}}
vars: {{lab: "{TARGET_V4}", user: {u}, pass: {p}}}
checks:
  - name: pop3s login
    talk:
      target: "{{{{lab}}}}:{pop3s}"
      tls: true
      sni: mail.lab.test
      steps:
        - {{expect: '^\+OK', send: "USER {{{{user}}}}"}}
        - {{expect: '^\+OK', send: "PASS {{{{pass}}}}"}}
        - {{name: login, expect: '^\+OK Logged in', fail: ['^-ERR']}}
  - name: a plaintext login must be refused
    talk:
      target: "{{{{lab}}}}:{pop3_port}"
      steps:
        - {{expect: '^\+OK', send: "USER {{{{user}}}}"}}
        - {{name: user, expect: '^\+OK', fail: ['^-ERR'], send: "PASS {{{{pass}}}}"}}
        - {{name: login, expect: '^\+OK Logged in', fail: ['^-ERR']}}
    expect: fail
  - name: pop3 offers STLS with a good certificate
    probe: {{target: "{{{{lab}}}}:{pop3_port}", sni: mail.lab.test}}
    expect: {{service: pop3, starttls: true, tls: true, verified: true, cert_days_left: 30}}
  - name: nothing on telnet
    connect: "{{{{lab}}}}:23"
    expect: closed
  - name: smtp starttls then ehlo
    talk:
      target: "{{{{lab}}}}:25"
      sni: mail.lab.test
      steps:
        - {{name: greeting, expect: '^220 .*$'}}
        - {{name: tls, starttls: smtp, send: EHLO client.lab.test}}
        - {{name: ehlo, expect: '^250 ', send: QUIT}}
        - {{name: quit, expect: '^221 '}}
  - name: imap starttls then login
    talk:
      target: "{{{{lab}}}}:{imap}"
      sni: mail.lab.test
      steps:
        - {{name: greeting, expect: '^\* OK .*$'}}
        - {{name: tls, starttls: imap, send: "a2 LOGIN {{{{user}}}} {{{{pass}}}}"}}
        - {{name: login, expect: '^a2 OK', fail: ['^a2 (NO|BAD)']}}
  - name: ftp auth tls then login
    talk:
      target: "{{{{lab}}}}:{ftp}"
      sni: mail.lab.test
      steps:
        - {{name: greeting, expect: '^220 .*$'}}
        - {{name: tls, starttls: ftp, send: "USER {{{{user}}}}"}}
        - {{name: user, expect: '^331 ', send: "PASS {{{{pass}}}}"}}
        - {{name: login, expect: '^230 ', fail: ['^530 ']}}
"#,
        u = ALICE.0,
        p = ALICE.1,
        pop3s = ports::POP3S,
        pop3_port = ports::POP3,
        imap = ports::IMAP,
        ftp = ports::FTP,
    );
    let path = write(dir.path(), "mail.yaml", &plan);
    let (out, err, code) = run(&lab, &["exercise", "run", &path, "-o", "json"]);
    let records = json_lines(&out);
    let cs = checks(&records);
    assert_eq!(cs.len(), 7, "{out}{err}");
    for c in &cs {
        assert_eq!(c["passed"], true, "{c}");
    }
    assert_eq!(code, 0);
    assert_eq!(cs[1]["actual"], "fail at user", "{}", cs[1]);
    assert!(
        cs[1]["talk"]["failure"]["detail"]
            .as_str()
            .expect("detail")
            .contains("-ERR"),
        "{}",
        cs[1]
    );
    assert_eq!(cs[0]["talk"]["tls"]["verified"], true, "{}", cs[0]);
    // STARTTLS mid-conversation for SMTP, IMAP and FTP, each verified.
    for c in &cs[4..7] {
        assert_eq!(c["talk"]["tls"]["verified"], true, "{c}");
        assert_eq!(c["actual"], "success", "{c}");
    }
}

/// The mail check: a matrix over passwords against Postfix on 587 (STARTTLS
/// required, then AUTH through Dovecot), stopping after AUTH so nothing is
/// delivered. The right password must log in; a wrong one must fail at
/// `auth`, and that is a pass. A check that says `quit_after: none` sends
/// one message, and it arrives.
#[test]
fn a_mail_check_matrix_over_passwords_against_postfix_submission() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path().display().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
name: submission logins
defaults: {{connect_timeout: 2s, timeout: 10s}}
checks:
  - name: "login {{{{case}}}}"
    mail:
      server: "{TARGET_V4}:{port}"
      from: {user}@lab.test
      to: [{user}@lab.test]
      tls: starttls
      ca_file: ["{ca}"]
      quit_after: auth
      auth_user: {user}
      auth_password: "{{{{password}}}}"
    matrix:
      - {{case: right password, password: {pass}, expect: success}}
      - {{case: wrong password, password: not-the-password}}
    expect: {{fail_at: auth}}
"#,
        user = ALICE.0,
        pass = ALICE.1,
        port = ports::SUBMISSION,
    );
    // Only `quit_after: none` sends a message: one, delivered to alice.
    let send = format!(
        r#"
  - name: send one
    mail:
      server: "{TARGET_V4}:{port}"
      from: {user}@lab.test
      to: {user}@lab.test
      ca_file: ["{ca}"]
      quit_after: none
      auth_user: {user}
      auth_password: {pass}
"#,
        user = ALICE.0,
        pass = ALICE.1,
        port = ports::SUBMISSION,
    );
    let path = write(dir.path(), "mail.yaml", &format!("{plan}{send}"));
    let (out, err, code) = run(&lab, &["exercise", "run", &path, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let records = json_lines(&out);
    let cs = checks(&records);
    assert_eq!(cs.len(), 3, "{out}{err}");
    assert_eq!(cs[2]["actual"], "success (1 message accepted)", "{}", cs[2]);
    let delivered = services.wait_for_mail(
        ALICE.0,
        "Subject: sockeye exercise: send one",
        Duration::from_secs(20),
    );
    assert!(
        delivered.is_some(),
        "no message in alice's Maildir: {}",
        cs[2]
    );
    assert_eq!(cs[0]["name"], "login right password", "{out}");
    assert_eq!(cs[0]["kind"], "mail", "{}", cs[0]);
    assert_eq!(cs[0]["actual"], "success (quit after auth)", "{}", cs[0]);
    assert_eq!(cs[0]["passed"], true, "{}", cs[0]);
    assert_eq!(cs[1]["expected"], "fail at auth", "{}", cs[1]);
    let actual = cs[1]["actual"].as_str().expect("actual");
    assert!(actual.starts_with("fail at auth: "), "{}", cs[1]);
    assert!(actual.contains("535"), "Postfix's reply: {}", cs[1]);
    assert_eq!(cs[1]["passed"], true, "{}", cs[1]);
    // The session: STARTTLS verified against the lab CA, then AUTH.
    let m = &cs[0]["mail"];
    assert_eq!(m["verified"], true, "{m}");
    assert!(m["tls"].as_str().expect("tls").starts_with("TLSv1."), "{m}");
    assert!(m["auth_mechanism"].is_string(), "{m}");
    assert_eq!(m["messages_delivered"], 0, "nothing sent: {m}");
    assert_eq!(cs[1]["mail"]["failed_at"], "auth", "{}", cs[1]);
    assert_eq!(cs[1]["mail"]["verified"], true, "{}", cs[1]);

    // The wrong expectation ("the wrong password logs in") fails the check
    // and the run.
    let wrong = plan.replace("{fail_at: auth}", "success");
    let path = write(dir.path(), "wrong.yaml", &wrong);
    let (out, err, code) = run(&lab, &["exercise", "run", &path, "-o", "tap"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("ok 1 - login right password"), "{out}");
    assert!(out.contains("not ok 2 - login wrong password"), "{out}");
}

/// A bad mail check is refused whole, before anything runs: exit 2 and the
/// file, line and column of the mistake.
#[test]
fn a_bad_mail_check_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "checks:\n  - name: a\n    mail:\n      server: 127.0.0.1:9\n      to: b@x\n      password: x\n",
            "6:7",
            "unknown field",
        ),
        (
            "checks:\n  - name: a\n    mail:\n      server: 127.0.0.1:9\n      to: b@x\n      quit_after: data\n",
            // The value's column: the word is what is wrong.
            "6:19",
            "unknown variant `data`, expected one of connect",
        ),
    ];
    for (i, (text, at, needle)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.yaml"), text);
        let out = std::process::Command::new(bin())
            .args(["exercise", "run", &path])
            .output()
            .expect("run sockeye");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(&format!("{path}:{at}: ")), "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
        assert!(out.stdout.is_empty(), "nothing ran: {text}");
    }
}
