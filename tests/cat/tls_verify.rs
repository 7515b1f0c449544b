//! `--ssl-verify` and `--ssl-trustfile` as ncat has them, with real ncat
//! 7.93 on the other side both ways: the server's certificate (for
//! `localhost`, signed by a CA made at test time) passes for the right
//! name and fails for a wrong one (127.0.0.1 is not in it), and
//! `--ssl-trustfile` without `--ssl-verify` verifies as well (what ncat
//! 7.93 does, whatever its manual says).

use std::process::{Command, Stdio};

use super::free_port;
use super::proc::{Cat, WAIT, wait_for};

/// A CA and a server certificate for `localhost` made by openssl (ncat's
/// OpenSSL refuses the chain rcgen makes for tls.rs), in a temporary dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let sh = "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
                  -subj /CN=test-ca -days 2 && \
                  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
                  -subj /CN=server && \
                  printf subjectAltName=DNS:localhost > ext && \
                  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                  -out server.pem -days 2 -extfile ext";
        let ok = Command::new("/bin/sh")
            .args(["-c", sh])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl")
            .success();
        assert!(ok, "openssl made the certificates");
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

/// Real ncat serving TLS with the test certificate, saying `hi` to each client.
struct NcatServer(std::process::Child, u16);

impl NcatServer {
    fn start(pki: &Pki) -> NcatServer {
        let port = free_port();
        let child = Command::new("/usr/bin/ncat")
            .args(["-l", "-k", "--ssl-cert", &pki.path("server.pem")])
            .args(["--ssl-key", &pki.path("server.key"), "-c", "echo hi"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ncat");
        wait_for(WAIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("ncat listening");
        NcatServer(child, port)
    }
}

impl Drop for NcatServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Exit status and stdout of `ncat ARGS`, its stdin open for a second
/// (at stdin's EOF an ncat TLS client stops before the server speaks).
fn ncat(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new("/bin/sh")
        .args(["-c", "sleep 1 | exec \"$0\" \"$@\"", "/usr/bin/ncat"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ncat");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn ssl_verify_checks_the_host_name_against_ncat_server() {
    let pki = Pki::new();
    let srv = NcatServer::start(&pki);
    let port = srv.1.to_string();
    let ca = pki.path("ca.pem");
    let ours = |host: &str| {
        let c = Cat::spawn(&["--ssl-verify", "--ssl-trustfile", &ca, host, &port]);
        c.wait_stdout(3, WAIT);
        c.finish(WAIT)
    };
    let d = ours("localhost");
    assert_eq!(
        (d.code, d.out().as_str()),
        (Some(0), "hi\n"),
        "{}",
        d.stderr
    );
    let d = ours("127.0.0.1");
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert_eq!(d.out(), "");
    assert!(d.stderr.contains("not valid for"), "{}", d.stderr);
    // ncat itself says the same of its own server.
    let v = |host: &str| ncat(&["--ssl-verify", "--ssl-trustfile", &ca, host, &port]);
    assert_eq!(v("localhost"), (Some(0), "hi\n".to_string()));
    // (ncat: exit 2 for a wrong name, "Certificate verification error".)
    assert_eq!(v("127.0.0.1").0, Some(2));
    // --ssl-servername names what to check.
    let d = Cat::spawn(&[
        "--ssl-verify",
        "--ssl-trustfile",
        &ca,
        "--ssl-servername",
        "localhost",
        "127.0.0.1",
        &port,
    ]);
    d.wait_stdout(3, WAIT);
    assert_eq!(d.finish(WAIT).code, Some(0));
}

/// ncat as the verifying client of sockeye's TLS server: the same answers.
#[test]
fn ncat_client_verifies_sockeye_server() {
    let pki = Pki::new();
    let (_srv, port) = Cat::listen(&[
        "-k",
        "--ssl-cert",
        &pki.path("server.pem"),
        "--ssl-key",
        &pki.path("server.key"),
        "-c",
        "echo hi",
    ]);
    let port = port.to_string();
    let ca = pki.path("ca.pem");
    let v = |host: &str| ncat(&["--ssl-verify", "--ssl-trustfile", &ca, host, &port]);
    assert_eq!(v("localhost"), (Some(0), "hi\n".to_string()));
    assert_eq!(v("127.0.0.1").0, Some(2));
}

/// `--ssl-trustfile` alone verifies, as ncat 7.93 does: the right CA and
/// name pass, a file without the signer fails, a wrong name fails.
#[test]
fn ssl_trustfile_alone_verifies_as_ncat() {
    let pki = Pki::new();
    let other = Pki::new();
    let srv = NcatServer::start(&pki);
    let port = srv.1.to_string();
    let (ca, wrong_ca) = (pki.path("ca.pem"), other.path("ca.pem"));
    for (file, host, ncat_code) in [
        (&ca, "localhost", 0),
        (&wrong_ca, "localhost", 1),
        (&ca, "127.0.0.1", 2),
    ] {
        let c = Cat::spawn(&["--ssl-trustfile", file, host, &port]);
        if ncat_code == 0 {
            c.wait_stdout(3, WAIT);
        }
        let d = c.finish(WAIT);
        let (code, out) = ncat(&["--ssl-trustfile", file, host, &port]);
        assert_eq!(code, Some(ncat_code), "ncat {host}");
        assert_eq!(d.out(), out, "{host}: {}", d.stderr);
        assert_eq!(d.code, Some(ncat_code.min(1)), "{host}: {}", d.stderr);
    }
}
