//! Certificates a user already trusts (issue 17): the self-signed CA:TRUE
//! certificate `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=host`
//! makes, used by the server itself and given with `--ca-file`
//! (`--ssl-trustfile`, a plan's `ca_file`), is trusted by probe, mail,
//! talk, cat and plans: a server certificate byte-for-byte one the user
//! named is pinned. The certificate is made at test time (rcgen); the
//! server is a rustls one on 127.0.0.1 speaking a little SMTP.

use crate::util::show;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::util::{json_lines, sockeye, stderr, stdout};

/// A self-signed CA certificate for CN=host, no SAN: what `openssl req
/// -x509 -subj /CN=host` makes. Its PEM is written to `dir/cert.pem`.
fn openssl_like_cert(dir: &Path) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "host");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
    let der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (der, key)
}

/// An implicit-TLS server with that certificate: greets `220 host ESMTP`,
/// answers EHLO, QUIT and anything else, for every connection.
fn tls_smtp_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let config = Arc::clone(&config);
            thread::spawn(move || serve(stream, config));
        }
    });
    port
}

fn serve(stream: TcpStream, config: Arc<rustls::ServerConfig>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    if tls.write_all(b"220 host ESMTP\r\n").is_err() {
        return;
    }
    let mut lines = BufReader::new(tls);
    for _ in 0..20 {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250 host\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"500 unknown\r\n",
        };
        let tls = lines.get_mut();
        if tls.write_all(answer).is_err() || verb == "QUIT" {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            // Close gracefully: read what the client still sends (its own
            // close_notify) until it closes. Closing with those bytes unread
            // makes the kernel send a reset, which can reach the client
            // before it has read our close_notify (seen once in CI: cat
            // exited 1 with "connection reset by peer" after "221 bye").
            let _ = tls.sock.shutdown(std::net::Shutdown::Write);
            let mut rest = [0u8; 512];
            while matches!(tls.sock.read(&mut rest), Ok(n) if n > 0) {}
            return;
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    cert: String,
    port: u16,
    dir: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = openssl_like_cert(dir.path());
    let port = tls_smtp_server(cert, key);
    Setup {
        cert: dir
            .path()
            .join("cert.pem")
            .to_str()
            .expect("path")
            .to_owned(),
        dir: dir.path().to_owned(),
        _dir: dir,
        port,
    }
}

#[test]
fn probe_trusts_the_certificate_it_was_given() {
    let s = setup();
    let out = sockeye(&[
        "probe",
        "--json",
        "--ca-file",
        &s.cert,
        "--sni",
        "host",
        "--read-timeout",
        "2s",
        "-p",
        &s.port.to_string(),
        "127.0.0.1",
    ]);
    let records = json_lines(&stdout(&out));
    let r = records
        .iter()
        .find(|r| r["type"] == "service")
        .unwrap_or_else(|| panic!("no service record\n{}", show(&out)));
    assert_eq!(r["tls"]["verified"], true, "{r:#}");
    let text = r.to_string();
    assert!(!text.contains("OtherError"), "{text}");
}

#[test]
fn mail_trusts_the_certificate_it_was_given() {
    let s = setup();
    let server = format!("127.0.0.1:{}", s.port);
    let args = [
        "mail",
        "-s",
        &server,
        "--tls-on-connect",
        "--ca-file",
        &s.cert,
        "--from",
        "a@host",
        "--to",
        "b@host",
        "--quit-after",
        "ehlo",
        "--timeout",
        "5s",
    ];
    let out = sockeye(&args);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stderr(&out).contains("certificate verified"),
        "{}",
        show(&out)
    );
    // Without it, the refusal is in words, not rustls's type names.
    let out = sockeye(&[
        "mail",
        "-s",
        &server,
        "--tls-on-connect",
        "--from",
        "a@host",
        "--to",
        "b@host",
        "--quit-after",
        "ehlo",
        "--timeout",
        "5s",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    let err = stderr(&out);
    assert!(!err.contains("Other(") && !err.contains("Error("), "{err}");
}

#[test]
fn talk_trusts_the_certificate_it_was_given() {
    let s = setup();
    let target = format!("127.0.0.1:{}", s.port);
    let out = sockeye(&[
        "talk",
        &target,
        "--tls",
        "--ca-file",
        &s.cert,
        "--json",
        "--expect",
        "^220 ",
        "--send",
        "QUIT",
        "--expect",
        "^221",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let text = report.to_string();
    assert!(text.contains("\"verified\":true"), "{text}");
}

/// talk's text output says whether the certificate verified, both ways.
#[test]
fn talk_text_says_whether_the_certificate_verified() {
    let s = setup();
    let target = format!("127.0.0.1:{}", s.port);
    let talk = |extra: &[&str]| {
        let mut args = vec!["talk", &target, "--tls"];
        args.extend_from_slice(extra);
        args.extend(["--expect", "^220 ", "--send", "QUIT", "--expect", "^221"]);
        sockeye(&args)
    };
    let out = talk(&["--ca-file", &s.cert]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("certificate verified for "),
        "{}",
        show(&out)
    );
    let out = talk(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("certificate NOT verified for "),
        "{}",
        show(&out)
    );
}

#[test]
fn cat_trusts_the_certificate_it_was_given() {
    let s = setup();
    let port = s.port.to_string();
    let mut child = std::process::Command::new(crate::util::bin())
        .args([
            "cat",
            "--ssl",
            "--ssl-verify",
            "--ssl-trustfile",
            &s.cert,
            "--ssl-servername",
            "host",
            "127.0.0.1",
            &port,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"QUIT\r\n")
        .expect("write");
    let out = match crate::support::netns::try_wait_output(child, Duration::from_secs(20)) {
        Ok(out) => out,
        Err(out) => panic!("cat hung\n{}", show(&out)),
    };
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).starts_with("220 host ESMTP"), "{}", show(&out));
}

#[test]
fn a_plan_trusts_the_certificate_it_was_given() {
    let s = setup();
    let plan = s.dir.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "defaults: {{timeout: 3s, ca_file: [cert.pem]}}\nchecks:\n  - name: smtps verified\n    probe: {{target: \"127.0.0.1:{0}\", service: smtps, sni: host}}\n    expect: {{tls: true, verified: true}}\n  - name: mail over smtps\n    mail: {{server: \"127.0.0.1:{0}\", from: a@host, to: b@host, tls: on-connect, quit_after: ehlo}}\n",
            s.port
        ),
    )
    .expect("write plan");
    let out = sockeye(&["exercise", "run", plan.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}
