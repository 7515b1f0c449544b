//! TLS with certificates made at test time: the generated certificate and
//! its fingerprint, both directions with half-close, client certificates
//! in listen mode, ALPN, and a TLS client against a plain server.

use std::io::{Read, Write};

use super::proc::{Cat, WAIT};
use super::server;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for localhost and a client certificate.
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, sans) in [
            ("server", vec!["localhost".to_string()]),
            ("client", vec!["client.test".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

#[test]
fn tls_generated_certificate_and_fingerprint() {
    let (srv, port) = Cat::listen(&["--ssl", "-k", "-c", "echo secret"]);
    let fp = srv
        .wait_stderr("SHA-256 fingerprint", WAIT)
        .expect("fingerprint line");
    let hexpart = fp.rsplit(' ').next().unwrap();
    assert_eq!(hexpart.len(), 95, "{fp}");
    let d = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]).finish(WAIT);
    assert_eq!(d.out(), "secret\n", "{}", d.stderr);
    assert_eq!(d.code, Some(0));
    // With --ssl-verify against the system roots the self-signed one fails.
    let d = Cat::spawn(&[
        "--ssl-verify",
        "--ssl-servername",
        "localhost",
        "127.0.0.1",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("TLS"), "{}", d.stderr);
}

#[test]
fn tls_both_directions_and_half_close() {
    let pki = Pki::new();
    let (mut srv, port) = Cat::listen(&[
        "--ssl-cert",
        &pki.path("server.pem"),
        "--ssl-key",
        &pki.path("server.key"),
    ]);
    let mut c = Cat::spawn(&[
        "--ssl-verify",
        "--ssl-trustfile",
        &pki.path("ca.pem"),
        "--ssl-servername",
        "localhost",
        "127.0.0.1",
        &port.to_string(),
    ]);
    c.write(b"up\n");
    assert_eq!(srv.wait_stdout(3, WAIT), b"up\n");
    srv.write(b"down\n");
    assert_eq!(c.wait_stdout(5, WAIT), b"down\n");
    // Client stdin EOF: close_notify + FIN; the server's stdio session ends
    // at its own stdin's EOF.
    c.close_stdin();
    let s = srv.finish(WAIT);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert_eq!(c.wait(WAIT).code, Some(0));
}

#[test]
fn tls_listen_verify_requires_client_certificate() {
    let pki = Pki::new();
    let (_srv, port) = Cat::listen(&[
        "-k",
        "--ssl-verify",
        "--ssl-trustfile",
        &pki.path("ca.pem"),
        "--ssl-cert",
        &pki.path("server.pem"),
        "--ssl-key",
        &pki.path("server.key"),
        "-c",
        "echo verified",
    ]);
    let with = Cat::spawn(&[
        "--ssl-cert",
        &pki.path("client.pem"),
        "--ssl-key",
        &pki.path("client.key"),
        "127.0.0.1",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(with.out(), "verified\n", "{}", with.stderr);
    let without = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]).finish(WAIT);
    assert_eq!(without.out(), "");
    assert_eq!(without.code, Some(1), "{}", without.stderr);
}

#[test]
fn tls_alpn_both_ways() {
    let (srv, port) = Cat::listen(&["--ssl", "--ssl-alpn", "h2,http/1.1", "-c", "echo ok"]);
    let d = Cat::spawn(&[
        "-v",
        "--ssl",
        "--ssl-alpn",
        "http/1.1",
        "127.0.0.1",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(d.out(), "ok\n");
    assert!(d.stderr.contains("ALPN protocol: http/1.1"), "{}", d.stderr);
    srv.wait_stderr("ALPN protocol: http/1.1", WAIT)
        .expect("server saw ALPN");
}

#[test]
fn tls_against_a_plain_server_fails_in_one_line() {
    let (port, _h) = server(|mut s| {
        // Take the ClientHello first, answer like SSH, and wait for the
        // client to give up: the same failure however the machine is loaded.
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).unwrap();
        s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let d = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]).finish(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.contains("TLS handshake"), "{}", d.stderr);
}
