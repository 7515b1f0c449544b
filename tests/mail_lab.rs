//! `sockeye mail` against the real-server lab (tests/lab/): Postfix on 587 (STARTTLS
//! required, then AUTH through Dovecot SASL), on 465 (implicit TLS) and on 2525 (no TLS,
//! AUTH offered in clear text), delivering to alice's Maildir; and the scripted responders
//! for a 421 greeting and a server that drops the connection after DATA. Each delivered
//! message is read back from the Maildir and checked byte for byte: headers, body,
//! dot-stuffed lines and the attachment.

use crate::util::show;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use sockeye_proto::smtp::base64_decode;

use crate::support::netns::{Lab, TARGET_V4, require_lab, try_wait_output};
use crate::support::servicelab::{ALICE, ServiceLab, ports, require_services};
use crate::util::{bin, json_lines};

/// Postfix hands a message to virtual(8) within milliseconds; a loaded machine gets slack.
const DELIVERY: Duration = Duration::from_secs(20);
/// One `sockeye mail` run (every step has its own, shorter, timeout).
const RUN: Duration = Duration::from_secs(60);

/// The base64 of alice's password, which must never appear in a masked transcript.
const PASSWORD_B64: &str = "d29uZGVybGFuZA==";

/// Runs `sockeye mail ARGS` in the scanner namespace, `stdin` fed to it.
fn mail(lab: &Lab, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = lab.command(lab.scanner_ns(), bin());
    cmd.arg("mail")
        .args(args)
        .env_remove("SOCKEYE_SMTP_PASSWORD")
        .env_remove("SOCKEYE_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn sockeye mail");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    match try_wait_output(child, RUN) {
        Ok(out) => out,
        Err(out) => panic!("sockeye mail {args:?} timed out\n{}", show(&out)),
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn server(port: u16) -> String {
    format!("{TARGET_V4}:{port}")
}

/// Messages in `user`'s Maildir `new/`.
fn count_mail(services: &ServiceLab, user: &str) -> usize {
    std::fs::read_dir(services.maildir(user).join("new")).map_or(0, |d| d.count())
}

/// Texts of every message in `user`'s Maildir that contain `needle`.
fn mails_with(services: &ServiceLab, user: &str, needle: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(services.maildir(user).join("new")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| t.contains(needle))
        .collect()
}

/// The header block of a stored message (Maildir lines end in LF).
fn headers(msg: &str) -> Vec<&str> {
    msg.split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .collect()
}

/// The decoded body of the MIME part whose headers hold `marker`.
fn part_base64(msg: &str, marker: &str) -> Vec<u8> {
    let at = msg
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in\n{msg}"));
    let rest = &msg[at..];
    let body_at = rest.find("\n\n").expect("part headers end") + 2;
    let body = &rest[body_at..];
    let end = body.find("\n--").expect("boundary after the part");
    let b64: String = body[..end].lines().collect();
    base64_decode(&b64).expect("valid base64")
}

/// A body with every line a dot-stuffing bug would break, and one without a final newline.
const BODY: &str = "first line\n.starts with a dot\n..two dots\n.\n...\nlast line";

#[test]
fn delivers_over_starttls_and_implicit_tls_byte_for_byte() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let ca = ca.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let blob: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let blob_path = dir.path().join("blob.bin");
    std::fs::write(&blob_path, &blob).expect("write attachment");
    let body_path = dir.path().join("body.txt");
    std::fs::write(&body_path, BODY).expect("write body");
    let body_arg = format!("@{}", body_path.display());

    // 587: STARTTLS required, AUTH LOGIN, the password from stdin, an attachment.
    let out = mail(
        &lab,
        &[
            "--server",
            &server(ports::SUBMISSION),
            "--tls",
            "--ca-file",
            ca,
            "--auth-user",
            ALICE.0,
            "--auth-password",
            "-",
            "--auth",
            "LOGIN",
            "--from",
            "bob@lab.test",
            "--to",
            "alice@lab.test",
            "--subject",
            "mail-lab 587",
            "--header",
            "X-Sockeye-Test: starttls",
            "--body",
            &body_arg,
            "--attach",
            blob_path.to_str().expect("utf-8"),
        ],
        Some(&format!("{}\n", ALICE.1)),
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    let transcript = err(&out);
    // swaks' marks: plain before STARTTLS, ~ inside TLS; the password masked.
    assert!(transcript.contains(" -> STARTTLS\n"), "{transcript}");
    assert!(
        transcript.contains("<-  220 2.0.0 Ready to start TLS\n"),
        "{transcript}"
    );
    assert!(transcript.contains(" ~> AUTH LOGIN\n"), "{transcript}");
    assert!(transcript.contains(" ~> ********\n"), "{transcript}");
    assert!(!transcript.contains(PASSWORD_B64), "{transcript}");
    assert!(transcript.contains("certificate verified"), "{transcript}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("sent 1 message(s) to alice@lab.test via 198.18.0.2:587 (TLSv1."),
        "{stdout}"
    );
    assert!(stdout.contains("AUTH LOGIN"), "{stdout}");

    let msg = services
        .wait_for_mail(ALICE.0, "Subject: mail-lab 587", DELIVERY)
        .unwrap_or_else(|| panic!("not delivered; postfix log:\n{}", services.log("postfix")));
    let h = headers(&msg);
    for want in [
        "From: <bob@lab.test>",
        "To: <alice@lab.test>",
        "Subject: mail-lab 587",
        "X-Sockeye-Test: starttls",
        "MIME-Version: 1.0",
    ] {
        assert!(h.contains(&want), "{want:?} missing in {h:#?}");
    }
    assert!(
        h.iter()
            .any(|l| l.starts_with("Message-ID: <") && l.ends_with('>')),
        "{h:#?}"
    );
    assert!(h.iter().any(|l| l.starts_with("Date: ")), "{h:#?}");
    assert!(
        h.iter()
            .any(|l| l.starts_with("Content-Type: multipart/mixed")),
        "{h:#?}"
    );
    // Authenticated, over TLS: Postfix's Received line says ESMTPSA (RFC 3848).
    assert!(msg.contains("with ESMTPSA"), "{msg}");
    // The body exactly, dot lines unstuffed again by Postfix, the last line ended.
    let want_body = format!("\n\n{BODY}\n");
    assert!(msg.contains(&want_body), "body {want_body:?} not in\n{msg}");
    // The attachment, byte for byte.
    assert!(msg.contains("filename=\"blob.bin\""), "{msg}");
    assert_eq!(part_base64(&msg, "filename=\"blob.bin\""), blob);

    // 465: implicit TLS, AUTH PLAIN chosen by default, the password from the environment,
    // JSON records on stdout, a forged From header made explicit.
    let mut cmd_args = vec![
        "--server".to_owned(),
        server(ports::SMTPS),
        "--tls-on-connect".to_owned(),
        "--ca-file".to_owned(),
        ca.to_owned(),
        "--auth-user".to_owned(),
        ALICE.0.to_owned(),
        "--from".to_owned(),
        "alice@lab.test".to_owned(),
        "--to".to_owned(),
        "alice@lab.test".to_owned(),
        "--header-from".to_owned(),
        "The Boss <boss@lab.test>".to_owned(),
        "--subject".to_owned(),
        "mail-lab 465".to_owned(),
        "--body".to_owned(),
        "hello over 465".to_owned(),
        "-o".to_owned(),
        "json".to_owned(),
    ];
    let mut cmd = lab.command(lab.scanner_ns(), bin());
    cmd.arg("mail")
        .args(&cmd_args)
        .env("SOCKEYE_SMTP_PASSWORD", ALICE.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = try_wait_output(cmd.spawn().expect("spawn"), RUN).expect("in time");
    assert_eq!(code(&out), 0, "{}", show(&out));
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    let stages: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "step")
        .map(|r| r["stage"].as_str().expect("stage"))
        .collect();
    assert_eq!(
        stages,
        [
            "connect", "tls", "banner", "ehlo", "auth", "mail", "rcpt", "data", "message", "quit"
        ],
        "{records:#?}"
    );
    let step = |name: &str| records.iter().find(|r| r["stage"] == name).expect("step");
    assert_eq!(step("banner")["code"], 220);
    assert_eq!(step("auth")["code"], 235);
    assert_eq!(step("rcpt")["rcpt"], "alice@lab.test");
    assert_eq!(step("message")["code"], 250);
    assert_eq!(step("tls")["verified"], true);
    assert!(step("ehlo")["ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    let summary = records.last().expect("summary");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["exit"], 0);
    assert_eq!(summary["auth"], "PLAIN");
    assert_eq!(summary["messages_sent"], 1);
    assert!(
        summary["tls_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1."))
    );
    let transcript = err(&out);
    assert!(
        transcript.contains(" ~> AUTH PLAIN ********\n"),
        "{transcript}"
    );
    assert!(
        transcript.contains("is not the envelope sender"),
        "{transcript}"
    );
    let msg = services
        .wait_for_mail(ALICE.0, "Subject: mail-lab 465", DELIVERY)
        .expect("delivered over 465");
    assert!(
        headers(&msg).contains(&"From: The Boss <boss@lab.test>"),
        "{msg}"
    );
    assert!(msg.contains("\n\nhello over 465\n"), "{msg}");

    // --count 3: three messages over one connection, RSET between.
    cmd_args.truncate(6);
    let out = mail(
        &lab,
        &[
            "--server",
            &server(ports::SUBMISSION),
            "--ca-file",
            ca,
            "--auth-user",
            ALICE.0,
            "--auth-password",
            ALICE.1,
            "--from",
            "bob@lab.test",
            "--to",
            "alice@lab.test",
            "--subject",
            "mail-lab count",
            "--count",
            "3",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(err(&out).matches(" ~> RSET\n").count(), 2, "{}", err(&out));
    let deadline = std::time::Instant::now() + DELIVERY;
    while mails_with(&services, ALICE.0, "Subject: mail-lab count").len() < 3
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        mails_with(&services, ALICE.0, "Subject: mail-lab count").len(),
        3
    );
}

#[test]
fn failures_name_their_stage_and_credentials_stay_encrypted() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let ca = ca.to_str().expect("utf-8 path");
    let auth = ["--auth-user", ALICE.0, "--auth-password", ALICE.1];
    let env = ["--from", "bob@lab.test", "--to", "alice@lab.test"];
    let run = |port: u16, extra: &[&str], with_auth: bool| -> Output {
        let s = server(port);
        let mut args: Vec<&str> = vec!["--server", &s, "--ca-file", ca];
        if with_auth {
            args.extend_from_slice(&auth);
        }
        if extra.contains(&"--to") {
            args.extend_from_slice(&env[..2]);
        } else {
            args.extend_from_slice(&env);
        }
        args.extend_from_slice(extra);
        mail(&lab, &args, None)
    };

    // A wrong password: the AUTH status, Postfix's 535 in the transcript.
    let out = run(
        ports::SUBMISSION,
        &[
            "--auth-user",
            ALICE.0,
            "--auth-password",
            "not-the-password",
        ],
        false,
    );
    assert_eq!(code(&out), 7, "{}", show(&out));
    assert!(err(&out).contains("<~  535 5.7.8"), "{}", err(&out));
    assert!(
        err(&out).contains("*** authentication failed"),
        "{}",
        err(&out)
    );

    // A recipient Postfix does not know: 550, the RCPT status; with one good recipient
    // the message goes to that one and the refusal is a warning.
    let out = run(ports::SUBMISSION, &["--to", "nobody@lab.test"], true);
    assert_eq!(code(&out), 9, "{}", show(&out));
    assert!(
        err(&out).contains("<~  550 5.1.1 <nobody@lab.test>"),
        "{}",
        err(&out)
    );
    let out = run(
        ports::SUBMISSION,
        &[
            "--to",
            "alice@lab.test,nobody@lab.test",
            "--subject",
            "half",
        ],
        true,
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        err(&out).contains("*** refused recipients: nobody@lab.test"),
        "{}",
        err(&out)
    );
    assert!(
        services
            .wait_for_mail(ALICE.0, "Subject: half", DELIVERY)
            .is_some()
    );

    // A 421 greeting: the banner status.
    let out = run(ports::BUSY_421, &[], false);
    assert_eq!(code(&out), 4, "{}", show(&out));
    assert!(err(&out).contains("<-  421 too busy"), "{}", err(&out));

    // The connection dropped after the message's final dot: the DATA status. (This
    // responder answers STARTTLS with garbage: refused as TLS failure by default.)
    let out = run(ports::DROP_AFTER_DATA, &[], false);
    assert_eq!(code(&out), 6, "{}", show(&out));
    assert!(err(&out).contains("before the handshake"), "{}", err(&out));
    let out = run(ports::DROP_AFTER_DATA, &["--no-tls"], false);
    assert_eq!(code(&out), 10, "{}", show(&out));
    assert!(
        err(&out).contains("the server closed the connection"),
        "{}",
        err(&out)
    );

    // No STARTTLS on 2525 but AUTH offered in clear text: the password is not sent.
    let before = count_mail(&services, ALICE.0);
    let out = run(ports::SMTP_NO_TLS, &["--subject", "clear"], true);
    assert_eq!(code(&out), 7, "{}", show(&out));
    let t = err(&out);
    assert!(
        t.contains("250-AUTH PLAIN LOGIN") || t.contains("250-AUTH LOGIN PLAIN"),
        "{t}"
    );
    assert!(!t.contains("-> AUTH"), "AUTH was sent in clear text:\n{t}");
    assert!(t.contains("credentials not sent"), "{t}");
    // ... unless asked for, with --show-secrets showing what went over the wire.
    let out = run(
        ports::SMTP_NO_TLS,
        &[
            "--allow-plaintext-auth",
            "--show-secrets",
            "--subject",
            "clear",
        ],
        true,
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        err(&out).contains(" -> AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\n"),
        "{}",
        err(&out)
    );
    assert!(
        services
            .wait_for_mail(ALICE.0, "Subject: clear", DELIVERY)
            .is_some()
    );
    assert_eq!(count_mail(&services, ALICE.0), before + 1);
    // --tls where there is no STARTTLS: the TLS status.
    let out = run(ports::SMTP_NO_TLS, &["--tls"], true);
    assert_eq!(code(&out), 6, "{}", show(&out));

    // The lab CA not trusted: the certificate is refused (TLS status) unless --insecure.
    let s = server(ports::SUBMISSION);
    let mut args: Vec<&str> = vec!["--server", &s];
    args.extend_from_slice(&auth);
    args.extend_from_slice(&env);
    args.extend_from_slice(&["--quit-after", "tls"]);
    let out = mail(&lab, &args, None);
    assert_eq!(code(&out), 6, "{}", show(&out));
    assert!(err(&out).contains("does not verify"), "{}", err(&out));
    args.push("--insecure");
    let out = mail(&lab, &args, None);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(err(&out).contains("--insecure"), "{}", err(&out));
    assert!(
        err(&out).contains("certificate NOT verified"),
        "{}",
        err(&out)
    );

    // Nothing listening: the connect status.
    let out = run(9, &["--connect-timeout", "2s"], false);
    assert_eq!(code(&out), 3, "{}", show(&out));
}

#[test]
fn quit_after_stops_at_each_step_without_sending() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let ca = ca.to_str().expect("utf-8 path");
    let s = server(ports::SUBMISSION);
    // (step, the last line received, the last line sent before QUIT)
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("connect", None, None),
        ("banner", Some("<-  220 mail.lab.test"), None),
        ("ehlo", Some("<-  250 "), Some(" -> EHLO [198.18.0.1]")),
        (
            "tls",
            Some("<-  220 2.0.0 Ready to start TLS"),
            Some(" -> STARTTLS"),
        ),
        (
            "auth",
            Some("<~  235 2.7.0 Authentication successful"),
            Some(" ~> AUTH PLAIN ********"),
        ),
        (
            "mail",
            Some("<~  250 2.1.0 Ok"),
            Some(" ~> MAIL FROM:<bob@lab.test>"),
        ),
        (
            "rcpt",
            Some("<~  250 2.1.5 Ok"),
            Some(" ~> RCPT TO:<alice@lab.test>"),
        ),
    ];
    for (step, last_in, last_out) in cases {
        let out = mail(
            &lab,
            &[
                "--server",
                &s,
                "--tls",
                "--ca-file",
                ca,
                "--auth-user",
                ALICE.0,
                "--auth-password",
                ALICE.1,
                "--from",
                "bob@lab.test",
                "--to",
                "alice@lab.test",
                "--quit-after",
                step,
            ],
            None,
        );
        assert_eq!(code(&out), 0, "{step}: {}", show(&out));
        let t = err(&out);
        let received: Vec<&str> = t.lines().filter(|l| l.starts_with("<")).collect();
        let sent: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with(" -> ") || l.starts_with(" ~> "))
            .collect();
        assert!(!t.contains("DATA"), "{step}: {t}");
        match last_in {
            None => assert!(received.is_empty() && sent.is_empty(), "{step}: {t}"),
            Some(want) => {
                // The reply to QUIT comes last; the step's own reply just before it.
                let n = received.len();
                assert!(n >= 2, "{step}: {t}");
                assert!(received[n - 1].contains(" 221 "), "{step}: {t}");
                assert!(received[n - 2].starts_with(want), "{step}: {t}");
                let m = sent.len();
                assert!(sent[m - 1].ends_with("QUIT"), "{step}: {t}");
                if let Some(want) = last_out {
                    assert!(sent[m - 2].starts_with(want), "{step}: {t}");
                } else {
                    assert_eq!(m, 1, "{step}: {t}");
                }
            }
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("stopped as asked"), "{step}: {stdout}");
    }
    assert_eq!(count_mail(&services, ALICE.0), 0, "nothing delivered");
    assert!(
        !Path::new(&services.maildir(ALICE.0).join("new")).exists()
            || count_mail(&services, ALICE.0) == 0
    );
}

/// Usage errors are one line, exit 2, before any connection (the server here does not
/// exist: a connection attempt would be exit 3).
#[test]
fn usage_errors_send_nothing() {
    let base = ["mail", "--server", "192.0.2.1:25", "--from", "a@lab.test"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--to", "b@lab.test", "--header", "From: boss@lab.test"],
            "--header-from",
        ),
        (
            &["--to", "b@lab.test", "--header", "X-A: b\nX-B: c"],
            "line break",
        ),
        (
            &["--to", "b@lab.test\r\nRCPT TO:<c@x>"],
            "recipient address",
        ),
        (&["--to", "b@lab.test", "--count", "0"], "--count"),
        (
            &["--to", "b@lab.test", "--ehlo", "two words"],
            "EHLO domain",
        ),
        (
            &["--to", "b@lab.test", "--auth-user", "alice"],
            "needs a password",
        ),
        (
            &["--to", "b@lab.test", "--ca-file", "/nonexistent/ca.pem"],
            "/nonexistent/ca.pem",
        ),
        (
            &["--to", "b@lab.test", "--attach", "/nonexistent/file"],
            "--attach",
        ),
        (
            &["--to", "b@lab.test", "--tls", "--no-tls"],
            "cannot be used with",
        ),
        (&["--to", "b@lab.test", "--timeout", "soon"], "--timeout"),
    ];
    for (extra, want) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out = std::process::Command::new(bin())
            .args(&args)
            .env_remove("SOCKEYE_SMTP_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("run sockeye");
        let e = err(&out);
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        assert_eq!(e.lines().count(), 1, "{args:?}: one line, got {e}");
        assert!(e.contains(want), "{args:?}: {want:?} not in {e}");
        assert!(!e.contains("Trying"), "{args:?}: {e}");
    }
    // --server syntax.
    let out = std::process::Command::new(bin())
        .args(["mail", "--server", "host:0", "--from", "a@b", "--to", "c@d"])
        .output()
        .expect("run sockeye");
    assert_eq!(code(&out), 2, "{}", show(&out));
}
