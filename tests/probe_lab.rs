//! `sockeye probe` against the real-server lab (tests/lab/): OpenSSH,
//! Postfix, Dovecot, vsftpd, nginx and slapd from Debian's packages with a
//! test CA made at start, plus the scripted responders for what no daemon
//! does (a tarpit, a flood, a split greeting, STARTTLS followed by garbage,
//! a greeting cut mid-line, an expired certificate, SSH where POP3 belongs,
//! a TLS 1.0-only server). Each case gets an exact assertion.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::netns::{Lab, TARGET_V4, require_lab, wait_output};
use crate::support::servicelab::{ALIAS_V4, ServiceLab, ports, require_services};
use crate::util::{assert_valid_nmap_xml, bin, json_lines, summary};

/// Runs `sockeye probe ARGS` in the scanner namespace; JSON records by port.
fn probe(lab: &Lab, args: &[&str]) -> (BTreeMap<u64, Value>, Vec<Value>, i32) {
    let mut full = vec!["probe", "--json"];
    full.extend_from_slice(args);
    let child = lab.spawn(lab.scanner_ns(), bin(), &full);
    let out = wait_output(child, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let records = json_lines(&text);
    let mut by_port = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "service") {
        let port = r["port"].as_u64().expect("port");
        assert!(by_port.insert(port, r.clone()).is_none(), "{port} twice");
    }
    (by_port, records, out.status.code().unwrap_or(-1))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?} in {v:#}"))
}

/// A completed handshake whose chain verifies against the lab CA.
fn assert_trusted_tls(tls: &Value, what: &str) {
    assert!(
        tls["version"] == "TLSv1.3" || tls["version"] == "TLSv1.2",
        "{what}: {tls:#}"
    );
    assert_eq!(tls["verified"], true, "{what}: {tls:#}");
    let leaf = &tls["chain"][0];
    assert_eq!(leaf["subject"], "O=sockeye lab, CN=lab.test", "{what}");
    assert_eq!(
        leaf["issuer"], "O=sockeye lab, CN=sockeye lab test CA",
        "{what}"
    );
    assert_eq!(leaf["expired"], false, "{what}");
    assert_eq!(leaf["key"], "RSA 2048", "{what}");
    assert_eq!(leaf["sha256"].as_str().map(str::len), Some(64), "{what}");
    let sans: Vec<&str> = leaf["sans"]
        .as_array()
        .expect("sans")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(sans.contains(&"IP:198.18.0.2"), "{what}: {sans:?}");
}

#[test]
fn the_seventeen_classic_checks_against_real_daemons() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let (by, records, code) = probe(&lab, &["--ca-file", ca.to_str().expect("utf-8"), TARGET_V4]);
    assert_eq!(code, 0);
    assert_eq!(by.len(), 17, "{by:#?}");
    let sum = summary(&records);
    assert_eq!(
        (sum["open"].as_u64(), sum["closed"].as_u64()),
        (Some(14), Some(3))
    );

    // Nothing listens on telnet, pop2 and kerberos in the lab.
    for port in [23, 109, 88] {
        let r = &by[&port];
        assert_eq!(
            (s(r, &["state"]), s(r, &["reason"])),
            ("closed", "conn-refused")
        );
        assert_eq!(s(r, &["error", "step"]), "connect");
    }
    let ssh = &by[&22];
    assert_eq!(s(ssh, &["service"]), "ssh");
    assert!(
        s(ssh, &["banner"]).starts_with("SSH-2.0-OpenSSH_9.2p1 Debian"),
        "{ssh}"
    );

    for (port, name) in [(25, "smtp"), (587, "submission")] {
        let r = &by[&port];
        assert_eq!(s(r, &["service"]), name);
        assert_eq!(
            s(r, &["banner"]),
            "220 mail.lab.test ESMTP Postfix (sockeye lab)"
        );
        let st = &r["starttls"];
        assert_eq!(st["command"], "STARTTLS");
        assert_eq!(
            (st["offered"].as_bool(), st["accepted"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(s(st, &["reply"]), "220 2.0.0 Ready to start TLS");
        assert_trusted_tls(&st["tls"], name);
        assert!(
            r["capabilities"]
                .as_array()
                .expect("caps")
                .iter()
                .any(|c| c == "STARTTLS")
        );
        assert!(r.get("error").is_none(), "{r:#}");
    }
    let smtps = &by[&465];
    assert_eq!(
        s(smtps, &["banner"]),
        "220 mail.lab.test ESMTP Postfix (sockeye lab)"
    );
    assert_trusted_tls(&smtps["tls"], "smtps");

    let pop3 = &by[&110];
    assert_eq!(s(pop3, &["banner"]), "+OK Dovecot (Debian) ready.");
    assert_eq!(pop3["starttls"]["command"], "STLS");
    assert_eq!(pop3["starttls"]["accepted"], true);
    assert_trusted_tls(&pop3["starttls"]["tls"], "pop3 STLS");

    let imap = &by[&143];
    assert!(
        s(imap, &["banner"]).starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{imap}"
    );
    assert_eq!(imap["starttls"]["offered"], true);
    assert_eq!(
        s(imap, &["starttls", "reply"]),
        "a1 OK Begin TLS negotiation now."
    );
    assert_trusted_tls(&imap["starttls"]["tls"], "imap STARTTLS");

    for (port, banner) in [
        (993, "* OK [CAPABILITY"),
        (995, "+OK Dovecot (Debian) ready."),
    ] {
        let r = &by[&port];
        assert!(s(r, &["banner"]).starts_with(banner), "{r}");
        assert_trusted_tls(&r["tls"], banner);
    }

    let ftp = &by[&21];
    assert_eq!(s(ftp, &["banner"]), "220 sockeye lab FTP (vsftpd)");
    assert_eq!(ftp["starttls"]["command"], "AUTH TLS");
    assert_eq!(
        s(ftp, &["starttls", "reply"]),
        "234 Proceed with negotiation."
    );
    assert_trusted_tls(&ftp["starttls"]["tls"], "ftp AUTH TLS");

    for (port, name) in [(80, "http"), (443, "https"), (631, "ipp")] {
        let r = &by[&port];
        assert_eq!(s(r, &["service"]), name);
        assert_eq!(r["http"]["status"], 200, "{r}");
        assert!(s(r, &["http", "server"]).starts_with("nginx/"), "{r}");
    }
    assert_trusted_tls(&by[&443]["tls"], "https");

    let ldap = &by[&389];
    assert_eq!(ldap["starttls"]["command"], "StartTLS");
    assert_eq!(s(ldap, &["starttls", "reply"]), "success (0)");
    assert_trusted_tls(&ldap["starttls"]["tls"], "ldap StartTLS");
    assert_trusted_tls(&by[&636]["tls"], "ldaps");
    // The root DSE gives slapd away (OpenLDAP's own extension OIDs).
    assert_eq!(ldap["product"], "OpenLDAP");
    assert_eq!(by[&636]["product"], "OpenLDAP");

    // Every check says how long each step took.
    for r in by.values() {
        assert!(!r["steps"].as_array().expect("steps").is_empty(), "{r}");
        assert!(r["elapsed_ms"].as_f64().is_some(), "{r}");
    }
    drop(services);
}

#[test]
fn odd_servers_get_one_clear_finding_each() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let ca = services.ca_cert_path();
    let list: Vec<String> = [
        ports::FTP_PLAIN_MULTILINE,
        ports::HTTP_FORBIDDEN,
        ports::TLS10_ONLY,
        ports::EXPIRED_HTTPS,
        ports::TARPIT,
        ports::FLOOD,
        ports::SPLIT_GREETING,
        ports::STARTTLS_GARBAGE,
        ports::HALF_LINE,
        ports::SSH_ON_ODD_PORT,
    ]
    .iter()
    .map(u16::to_string)
    .collect();
    let (by, _, code) = probe(
        &lab,
        &[
            "--ca-file",
            ca.to_str().expect("utf-8"),
            "--read-timeout",
            "1s",
            "--tls-timeout",
            "1s",
            "--tls-versions",
            "-p",
            &list.join(","),
            TARGET_V4,
        ],
    );
    assert_eq!(code, 0);

    let ftp = &by[&u64::from(ports::FTP_PLAIN_MULTILINE)];
    assert_eq!(s(ftp, &["service"]), "ftp");
    assert_eq!(
        s(ftp, &["banner"]),
        // The first line as sent: the greeting is multi-line (issue 17).
        "220-Welcome to the sockeye lab's plain FTP server."
    );
    assert_eq!(ftp["greeting"].as_array().map(Vec::len), Some(4), "{ftp}");
    assert_eq!(ftp["starttls"]["accepted"], false);
    assert_eq!(
        s(ftp, &["starttls", "reply"]),
        "530 Please login with USER and PASS."
    );

    let forbidden = &by[&u64::from(ports::HTTP_FORBIDDEN)];
    assert_eq!(forbidden["http"]["status"], 403);
    assert_eq!(s(forbidden, &["http", "reason"]), "Forbidden");

    // TLS 1.0 only: rustls cannot talk to it, the raw hellos say why.
    let old = &by[&u64::from(ports::TLS10_ONLY)];
    assert_eq!(s(old, &["service"]), "tls");
    assert_eq!(s(old, &["error", "step"]), "tls");
    assert!(
        s(old, &["tls", "failed"])
            .starts_with("TLS handshake failed: the server sent alert protocol_version"),
        "{old:#}"
    );
    let versions: Vec<(String, bool)> = old["tls_versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (s(v, &["version"]).to_string(), v["accepted"] == true))
        .collect();
    assert_eq!(
        versions,
        [
            ("TLSv1.0", true),
            ("TLSv1.1", false),
            ("TLSv1.2", false),
            ("TLSv1.3", false)
        ]
        .map(|(v, a)| (v.to_string(), a))
    );
    assert_eq!(
        old["tls"]["chain"][0]["subject"], "O=sockeye lab, CN=lab.test",
        "{old:#}"
    );

    let expired = &by[&u64::from(ports::EXPIRED_HTTPS)];
    assert_eq!(s(expired, &["service"]), "https");
    assert_eq!(expired["tls"]["verified"], false);
    assert_eq!(s(expired, &["tls", "verify_error"]), "certificate expired");
    assert_eq!(expired["tls"]["chain"][0]["expired"], true);
    assert_eq!(
        expired["tls"]["chain"][0]["not_after"],
        "2021-01-01T00:00:00Z"
    );
    assert_eq!(
        s(expired, &["http", "server"]),
        "sockeye-lab-expired-responder"
    );

    let tarpit = &by[&u64::from(ports::TARPIT)];
    assert_eq!(s(tarpit, &["error", "step"]), "response");
    assert_eq!(s(tarpit, &["error", "message"]), "timed out after 1.0 s");
    assert!(tarpit["elapsed_ms"].as_f64().expect("ms") < 10_000.0);

    let flood = &by[&u64::from(ports::FLOOD)];
    assert_eq!(
        s(flood, &["error", "message"]),
        "the server sent 65536 bytes without a line end; stopped reading"
    );

    for port in [ports::SPLIT_GREETING, ports::STARTTLS_GARBAGE] {
        let r = &by[&u64::from(port)];
        assert_eq!(s(r, &["service"]), "smtp", "{r}");
        assert_eq!(r["starttls"]["accepted"], true, "{r}");
        assert_eq!(s(r, &["error", "step"]), "tls", "{r}");
        assert!(
            s(r, &["starttls", "tls", "failed"]).starts_with("TLS handshake failed:"),
            "{r:#}"
        );
    }
    assert_eq!(
        s(&by[&u64::from(ports::SPLIT_GREETING)], &["banner"]),
        "220 split.lab.test ESMTP ready"
    );

    let half = &by[&u64::from(ports::HALF_LINE)];
    assert_eq!(
        s(half, &["error", "message"]),
        "the server closed the connection mid-reply after \"220 half a gree\""
    );

    let ssh = &by[&u64::from(ports::SSH_ON_ODD_PORT)];
    assert_eq!(s(ssh, &["service"]), "ssh");
    assert_eq!(s(ssh, &["banner"]), "SSH-2.0-OpenSSH_9.2p1 Debian-2");
    drop(services);
}

/// services.md: an SSH banner on port 110 is reported as ssh on 110, with
/// a note; the XML says the same and is valid against nmap's DTD.
#[test]
fn ssh_where_pop3_belongs_and_the_xml_of_it() {
    if !require_lab() || !require_services() {
        return;
    }
    let lab = Lab::new();
    let services = ServiceLab::start(&lab);
    let (by, _, code) = probe(&lab, &["-p", "110", ALIAS_V4]);
    assert_eq!(code, 0);
    let r = &by[&110];
    assert_eq!(s(r, &["service"]), "ssh");
    assert_eq!(s(r, &["method"]), "probed");
    assert_eq!(
        r["notes"][0],
        "port 110 usually means pop3, but ssh answered"
    );

    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &["probe", "-o", "xml", "-p", "22,25,443,110", TARGET_V4],
    );
    let out = wait_output(child, Duration::from_secs(60));
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &xml).expect("write xml");
    assert_valid_nmap_xml(file.path());
    assert!(
        xml.contains("<service name=\"https\" tunnel=\"ssl\" method=\"probed\" conf=\"10\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("<script id=\"http-server-header\" output=\"nginx/"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<script id=\"banner\" output=\"220 mail.lab.test ESMTP Postfix (sockeye lab)\"/>"
        ),
        "{xml}"
    );
    // scan -sV: the scan's open ports, each checked by content.
    let child = lab.spawn(
        lab.scanner_ns(),
        bin(),
        &["scan", "-sV", "--json", "-p", "22,25,443,8081", TARGET_V4],
    );
    let out = wait_output(child, Duration::from_secs(60));
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    let found: Vec<&Value> = records.iter().filter(|r| r["type"] == "service").collect();
    let mut names: Vec<(u64, &str)> = found
        .iter()
        .map(|r| {
            (
                r["port"].as_u64().unwrap_or(0),
                r["service"].as_str().unwrap_or(""),
            )
        })
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [(22, "ssh"), (25, "smtp"), (443, "https")],
        "{records:#?}"
    );
    let smtp = found.iter().find(|r| r["port"] == 25).expect("25");
    assert_eq!(smtp["starttls"]["accepted"], true);
    // SNI: the name typed, or --sni; the chain is checked against it.
    let ca = services.ca_cert_path();
    let ca = ca.to_str().expect("utf-8");
    for (sni, verified, why) in [
        ("mail.lab.test", true, None),
        (
            "nomatch.example",
            false,
            Some("certificate not valid for this name"),
        ),
    ] {
        let (by, _, code) = probe(
            &lab,
            &["--ca-file", ca, "--sni", sni, "-p", "443", TARGET_V4],
        );
        assert_eq!(code, 0);
        let tls = &by[&443]["tls"];
        assert_eq!(tls["name"], sni, "{tls:#}");
        assert_eq!(tls["verified"], verified, "{tls:#}");
        assert_eq!(tls["verify_error"].as_str(), why, "{tls:#}");
    }
    drop(services);
}
