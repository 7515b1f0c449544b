//! Smoke test of the real-server lab (tests/lab/): every port of a
//! [`ServiceLab`] answers with the bytes tests/lab/README.md promises, the
//! TLS ports verify against the lab's test CA, a message submitted on 587
//! (STARTTLS + AUTH) lands in alice's Maildir, and `stop` leaves nothing
//! running. Observed from the scanner namespace with Python's standard
//! library (tests/lab/check.py); judged here.

use std::time::Duration;

use serde_json::Value;

use crate::support::netns::{Lab, require_lab};
use crate::support::servicelab::{ALIAS_V4, ServiceLab, require_services};

/// Postfix hands a message to virtual(8) within milliseconds; a loaded
/// machine gets ample slack.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

fn by_check<'a>(results: &'a [Value], check: &str) -> &'a Value {
    results
        .iter()
        .find(|v| v["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check} in {results:#?}"))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
}

#[test]
fn every_port_answers_as_documented_and_mail_is_delivered() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);

    // First bytes of every greeting-first service.
    let first: &[(u16, &str)] = &[
        (22, "SSH-2.0-OpenSSH_"),
        (25, "220 mail.lab.test ESMTP Postfix"),
        (587, "220 mail.lab.test ESMTP Postfix"),
        (110, "+OK Dovecot"),
        (143, "* OK [CAPABILITY IMAP4rev1"),
        (21, "220 "),
        (2121, "220-"),
        (7003, "220 split.lab.test ESMTP ready\r\n"),
        (7004, "220 starttls-garbage.lab.test"),
        (7005, "220 half a gree"),
        (7110, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
        (7421, "421 too busy\r\n"),
    ];
    let mut checks: Vec<String> = first.iter().map(|(p, _)| format!("first:{p}")).collect();
    checks.extend(
        [
            "first:110@198.18.0.3",
            "first:7001",
            "first:7002",
            "reply:2121",
            "http:80",
            "http:80:forbidden.lab.test",
            "http:631",
            "http:8080",
            "https:443",
            "https:443:forbidden.lab.test",
            "tls:465",
            "tls:993",
            "tls:995",
            "tls:636",
            "tls10:7010",
            "tls:7010",
            "https:7443:expired.lab.test",
            "starttls:smtp25",
            "starttls:smtp587",
            "starttls:pop3",
            "starttls:imap",
            "starttls:ftp",
            "starttls:ldap",
            "ftp-logins",
            "smtp-data:7025",
            "submit:lab-smoke-1@lab.test",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = checks.iter().map(String::as_str).collect();
    let r = services.observe(&lab, &refs);

    for (port, want) in first {
        let v = by_check(&r, &format!("first:{port}"));
        let got = text(v, "first");
        assert!(
            got.starts_with(want),
            "port {port}: want {want:?} first, got {v}"
        );
    }
    // On the alias address, port 110 speaks SSH, not POP3.
    let alias = by_check(&r, &format!("first:110@{ALIAS_V4}"));
    assert_eq!(
        alias["first"], "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        "{alias}"
    );
    // The SSH banner is a whole line; the split greeting really came in pieces.
    assert!(text(by_check(&r, "first:22"), "first").ends_with("\r\n"));
    assert!(by_check(&r, "first:7003")["chunks"].as_u64().unwrap() > 1);
    // Half a line, then the server closes.
    assert_eq!(by_check(&r, "first:7005")["eof"], true);
    // The tarpit says nothing and keeps the connection open.
    let tarpit = by_check(&r, "first:7001");
    assert_eq!(
        (text(tarpit, "first"), &tarpit["eof"]),
        ("", &Value::Bool(false))
    );
    // The flood: no newline in the first 512 bytes.
    let flood = text(by_check(&r, "first:7002"), "first");
    assert_eq!(flood.len(), 512, "{flood:?}");
    assert!(!flood.contains('\n'));

    // The plain FTP server's greeting spans lines and ends with a "220 " line.
    let lines = by_check(&r, "reply:2121")["lines"]
        .as_array()
        .unwrap()
        .clone();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("220-"))
    );
    assert!(lines.last().unwrap().as_str().unwrap().starts_with("220 "));

    // nginx: Server header everywhere, 403 for the forbidden host and port.
    for (check, status) in [
        ("http:80", "HTTP/1.1 200 OK"),
        ("http:80:forbidden.lab.test", "HTTP/1.1 403 Forbidden"),
        ("http:631", "HTTP/1.1 200 OK"),
        ("http:8080", "HTTP/1.1 403 Forbidden"),
        ("https:443", "HTTP/1.1 200 OK"),
        ("https:443:forbidden.lab.test", "HTTP/1.1 403 Forbidden"),
    ] {
        let v = by_check(&r, check);
        assert_eq!(v["status"], status, "{check}: {v}");
        assert!(text(v, "server").starts_with("nginx"), "{check}: {v}");
    }

    // Implicit TLS verifies against the test CA (host name lab.test), then the greeting.
    for (check, greeting) in [
        ("tls:465", "220 mail.lab.test"),
        ("tls:993", "* OK"),
        ("tls:995", "+OK"),
        ("tls:636", ""),
    ] {
        let v = by_check(&r, check);
        assert_eq!(v["cn"], "lab.test", "{check}: {v}");
        assert!(text(v, "version").starts_with("TLSv1."), "{check}: {v}");
        assert!(text(v, "first").starts_with(greeting), "{check}: {v}");
    }
    assert_eq!(by_check(&r, "tls10:7010")["version"], "TLSv1");
    // ... which a client with today's defaults refuses.
    assert!(by_check(&r, "tls:7010").get("error").is_some());
    let expired = text(by_check(&r, "https:7443:expired.lab.test"), "error");
    assert!(expired.contains("certificate has expired"), "{expired}");

    // Every STARTTLS-style upgrade succeeds and verifies.
    for proto in ["smtp25", "smtp587", "pop3", "imap", "ftp", "ldap"] {
        let v = by_check(&r, &format!("starttls:{proto}"));
        assert!(v.get("error").is_none(), "{proto}: {v}");
        assert!(text(v, "version").starts_with("TLSv1."), "{proto}: {v}");
    }
    assert_eq!(by_check(&r, "starttls:smtp25")["code"], 220);
    assert_eq!(by_check(&r, "starttls:imap")["result"], "OK");
    assert_eq!(by_check(&r, "starttls:ftp")["reply"], "234");
    assert_eq!(by_check(&r, "starttls:ldap")["result_code"], 0);

    // FTP: anonymous and alice get in, a wrong password gets 530.
    let ftp = by_check(&r, "ftp-logins");
    assert_eq!(
        (&ftp["anonymous"], &ftp["alice"], &ftp["wrong"]),
        (
            &Value::from("230"),
            &Value::from("230"),
            &Value::from("530")
        ),
        "{ftp}"
    );

    // The responder that drops the connection after DATA: 354, then nothing.
    let data = by_check(&r, "smtp-data:7025");
    assert!(data.get("error").is_none(), "{data}");
    assert!(
        data["replies"][0]
            .as_str()
            .unwrap()
            .starts_with("220 drop-after-data"),
        "{data}"
    );
    assert!(
        data["replies"][4].as_str().unwrap().starts_with("354 "),
        "{data}"
    );
    assert_eq!(data["after_data"], "", "{data}");

    // Submission: no AUTH before TLS, accepted after STARTTLS + AUTH, delivered.
    let submit = by_check(&r, "submit:lab-smoke-1@lab.test");
    assert!(
        submit.get("error").is_none(),
        "{submit}\n{}",
        services.log("postfix")
    );
    assert_eq!(submit["auth_before_tls"], false);
    let mail = services
        .wait_for_mail(
            "alice",
            "Message-ID: <lab-smoke-1@lab.test>",
            DELIVERY_TIMEOUT,
        )
        .unwrap_or_else(|| {
            panic!(
                "not delivered to alice's Maildir:\n{}",
                services.log("postfix")
            )
        });
    assert!(
        mail.contains("Hello Alice, from the lab smoke test."),
        "{mail}"
    );
    assert!(services.maildir("alice").join("cur").is_dir());
    // ... and Dovecot serves it from the same Maildir.
    let imap = &services.observe(&lab, &["imap-login"])[0];
    assert_eq!(
        (&imap["select"], &imap["messages"]),
        (&Value::from("OK"), &Value::from(1)),
        "{imap}"
    );
}

/// `stop` ends every daemon it started (nothing is left listening) and a
/// second `stop` is harmless.
#[test]
fn stop_leaves_nothing_listening() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let state = services.state_dir().to_owned();
    assert!(ca.is_file());
    let listening = |lab: &Lab| {
        let out = lab.exec(lab.target_ns(), &["ss", "-Hltn"]);
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(listening(&lab) >= 26, "every lab port listens");
    for stop in 0..2 {
        let out = std::process::Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/lab/services.sh"
            ))
            .arg("stop")
            .arg(&state)
            .output()
            .expect("run services.sh stop");
        assert!(out.status.success(), "stop #{stop}: {out:?}");
    }
    assert_eq!(listening(&lab), 0, "a daemon survived stop");
    let pids = std::fs::read_dir(state.join("pids")).unwrap().count();
    assert_eq!(pids, 0, "pid files are removed");
    drop(services);
    assert!(
        !state.exists(),
        "the state directory goes with the ServiceLab"
    );
}
