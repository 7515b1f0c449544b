//! The proxy client against ncat's behaviour: `--proxy-auth` answers a 407
//! with Digest when offered (ncat-test.pl's challenges: both schemes, a
//! comma-separated list, a scheme without auth-params, no qop), through
//! sockeye's own HTTP proxy and real ncat 7.93's; SOCKS4 and SOCKS4a
//! requests byte for byte as ncat sends them, from the `-p` source port;
//! `-c` through a proxy with the NCAT_* variables ncat gives.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use sockeye_proto::proxy_auth::digest_response;

use super::proc::{Cat, WAIT, read_all, wait_for};
use super::{free_port, server};

/// Reads an HTTP request head (up to the blank line).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A scripted proxy: answers the first CONNECT with a 407 carrying
/// `challenge` (header lines), then returns the second request's head.
fn challenging_proxy(challenge: &'static str) -> (u16, std::thread::JoinHandle<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut a, _) = l.accept().unwrap();
        a.set_read_timeout(Some(WAIT)).unwrap();
        let first = read_head(&mut a);
        a.write_all(format!("HTTP/1.0 407 Authentication Required\r\n{challenge}\r\n").as_bytes())
            .unwrap();
        drop(a);
        let (mut b, _) = l.accept().unwrap();
        b.set_read_timeout(Some(WAIT)).unwrap();
        let second = read_head(&mut b);
        let _ = b.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
        (first, second)
    });
    (port, h)
}

/// `name="value"` or `name=value` of a Digest header line.
fn param(line: &str, name: &str) -> Option<String> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest.split([',', '\r']).next()?.to_string(),
    })
}

fn authorization_line(head: &str) -> String {
    head.lines()
        .find(|l| l.starts_with("Proxy-Authorization:"))
        .unwrap_or_else(|| panic!("no Proxy-Authorization in {head:?}"))
        .to_string()
}

#[test]
fn digest_preferred_for_every_form_of_challenge() {
    const NONCE: &str = "0123456789abcdef";
    for (challenge, qop) in [
        (
            "Proxy-Authenticate: Basic realm=\"realm\"\r\n\
             Proxy-Authenticate: Digest realm=\"realm\", nonce=\"0123456789abcdef\", qop=\"auth\", opaque=\"abcd\"\r\n",
            true,
        ),
        (
            "Proxy-Authenticate: Basic realm=\"realm\", NTLM, Digest realm=\"realm\", \
             nonce=\"0123456789abcdef\", qop=\"auth\", opaque=\"abcd\"\r\n",
            true,
        ),
        (
            "Proxy-Authenticate: Basic realm=\"realm\"\r\nProxy-Authenticate: NTLM\r\n\
             Proxy-Authenticate: Digest realm=\"realm\", nonce=\"0123456789abcdef\", opaque=\"abcd\"\r\n",
            false,
        ),
    ] {
        let (pport, h) = challenging_proxy(challenge);
        let d = Cat::spawn(&[
            "--proxy",
            &format!("127.0.0.1:{pport}"),
            "--proxy-auth",
            "user:pass",
            "target.test",
            "80",
        ])
        .finish(WAIT);
        assert_eq!(d.code, Some(0), "{}", d.stderr);
        let (first, second) = h.join().unwrap();
        assert!(!first.contains("Proxy-Authorization"), "{first}");
        let line = authorization_line(&second);
        assert!(line.starts_with("Proxy-Authorization: Digest "), "{line}");
        assert_eq!(param(&line, "nonce").as_deref(), Some(NONCE));
        assert_eq!(param(&line, "opaque").as_deref(), Some("abcd"));
        let uri = param(&line, "uri").unwrap();
        assert_eq!(uri, "target.test:80");
        let qa = if qop {
            assert_eq!(param(&line, "qop").as_deref(), Some("auth"));
            Some((param(&line, "nc").unwrap(), param(&line, "cnonce").unwrap()))
        } else {
            assert!(param(&line, "nc").is_none() && param(&line, "cnonce").is_none());
            None
        };
        let want = digest_response(
            "user",
            "realm",
            "pass",
            "CONNECT",
            &uri,
            NONCE,
            qa.as_ref().map(|(n, c)| (n.as_str(), c.as_str())),
        );
        assert_eq!(param(&line, "response"), Some(want), "{line}");
    }
    // Basic alone is answered with Basic.
    let (pport, h) = challenging_proxy("Proxy-Authenticate: Basic realm=\"Ncat\"\r\n");
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{pport}"),
        "--proxy-auth",
        "user:~~~~",
        "target.test",
        "80",
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let line = authorization_line(&h.join().unwrap().1);
    assert_eq!(line, "Proxy-Authorization: Basic dXNlcjp+fn5+");
}

/// Polls until something listens on `port` (a probe connection, dropped).
fn wait_listening(port: u16) {
    wait_for(WAIT, || TcpStream::connect(("127.0.0.1", port)).ok()).expect("listening");
}

/// Through sockeye's `-l --proxy-type http --proxy-auth` and ncat's: both
/// offer Basic and Digest; the right password passes, a wrong one is a
/// 407 in one line and exit 1.
#[test]
fn digest_through_sockeye_and_ncat_proxies() {
    let (_target, tport) = Cat::listen(&["-k", "-c", "echo through"]);
    let (_ours, our_port) = Cat::listen(&["-k", "--proxy-type", "http", "--proxy-auth", "u:p"]);
    let ncat_port = free_port();
    let _ncat = Reaped(
        Command::new("/usr/bin/ncat")
            .args(["-l", "--proxy-type", "http", "--proxy-auth", "u:p"])
            .arg(ncat_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ncat"),
    );
    wait_listening(ncat_port);
    for pport in [our_port, ncat_port] {
        // Stdin stays open until the target has spoken: ncat's proxy ends
        // the tunnel at the client's EOF.
        let via = |auth: &str, answer: bool| {
            let c = Cat::spawn(&[
                "--proxy",
                &format!("127.0.0.1:{pport}"),
                "--proxy-auth",
                auth,
                "127.0.0.1",
                &tport.to_string(),
            ]);
            if answer {
                c.wait_stdout(8, WAIT);
            }
            c.finish(WAIT)
        };
        let d = via("u:p", true);
        assert_eq!(d.out(), "through\n", "proxy {pport}: {}", d.stderr);
        let d = via("u:wrong", false);
        assert_eq!(d.code, Some(1), "{}", d.stderr);
        assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
        assert!(d.stderr.contains("407"), "{}", d.stderr);
    }
}

/// A child killed and reaped when the test ends, passed or not.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A SOCKS4 proxy that records the request bytes and the client's port,
/// grants it (0x5a), and says `hello` as the target would.
fn socks4_proxy() -> (u16, std::thread::JoinHandle<(Vec<u8>, u16)>) {
    server(|mut s| {
        let from = s.peer_addr().unwrap().port();
        let mut req = Vec::new();
        let mut b = [0u8; 1];
        // VN CD PORT IP, then NUL-ended user id, then (4a) a NUL-ended name.
        let mut nuls = 0;
        while s.read(&mut b).unwrap_or(0) == 1 {
            req.push(b[0]);
            if req.len() > 8 && b[0] == 0 {
                nuls += 1;
                let socks4a = req[4..7] == [0, 0, 0] && req[7] != 0;
                if nuls == if socks4a { 2 } else { 1 } {
                    break;
                }
            }
        }
        s.write_all(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).unwrap();
        s.write_all(b"hello\n").unwrap();
        (req, from)
    })
}

/// The request ncat sends for ARGS, and ours.
fn socks4_both(args: &[&str]) -> [(Vec<u8>, u16, String); 2] {
    [socks4_request(true, args), socks4_request(false, args)]
}

/// The request ncat (or sockeye) sends for ARGS: bytes, source port, and
/// what it printed.
fn socks4_request(ncat: bool, args: &[&str]) -> (Vec<u8>, u16, String) {
    {
        let (pport, h) = socks4_proxy();
        let proxy = format!("127.0.0.1:{pport}");
        let mut all = vec!["--proxy", &proxy];
        all.extend_from_slice(args);
        let out = if ncat {
            let o = Command::new("/usr/bin/ncat")
                .args(&all)
                .stdin(Stdio::null())
                .output()
                .expect("run ncat");
            String::from_utf8_lossy(&o.stdout).into_owned()
        } else {
            Cat::spawn(&all).finish(WAIT).out()
        };
        let (req, from) = h.join().unwrap();
        (req, from, out)
    }
}

#[test]
fn socks4_and_socks4a_requests_are_ncats() {
    let [theirs, ours] = socks4_both(&[
        "--proxy-type",
        "socks4",
        "--proxy-auth",
        "alice",
        "127.0.0.1",
        "8080",
    ]);
    assert_eq!(ours.0, b"\x04\x01\x1f\x90\x7f\x00\x00\x01alice\x00");
    assert_eq!((&ours.0, &ours.2), (&theirs.0, &theirs.2));
    assert_eq!(ours.2, "hello\n");
    // A name goes to the proxy (SOCKS4a); socks4a is the same request.
    let [theirs, ours] = socks4_both(&["--proxy-type", "socks4", "target.test", "80"]);
    assert_eq!(
        ours.0,
        b"\x04\x01\x00\x50\x00\x00\x00\x01\x00target.test\x00"
    );
    assert_eq!(ours.0, theirs.0);
    // (ncat 7.93 does not know the name socks4a.)
    let ours4a = socks4_request(false, &["--proxy-type", "socks4a", "target.test", "80"]);
    assert_eq!(ours4a.0, ours.0);
    // -p: the source port of the connection to the proxy.
    let sport = free_port();
    let ours = socks4_request(
        false,
        &[
            "--proxy-type",
            "socks4",
            "-p",
            &sport.to_string(),
            "127.0.0.1",
            "80",
        ],
    );
    assert_eq!(ours.1, sport);
    // IPv6 targets have no SOCKS4 form: one line, exit 1.
    let (pport, h) = server(|mut s| read_all(&mut s));
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{pport}"),
        "--proxy-type",
        "socks4",
        "::1",
        "80",
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.contains("IPv6"), "{}", d.stderr);
    assert_eq!(h.join().unwrap(), b"");
}

/// `-c` through a proxy: the child talks to the target, and NCAT_* name
/// the connection as ncat names it (the proxy is the socket's peer).
#[test]
fn exec_through_a_proxy_with_ncat_variables() {
    let (_proxy, pport) = Cat::listen(&["-k", "--proxy-type", "http"]);
    const CMD: &str = "echo $NCAT_REMOTE_ADDR $NCAT_REMOTE_PORT $NCAT_LOCAL_ADDR $NCAT_PROTO";
    let mut got = Vec::new();
    for (exe, pre) in [("/usr/bin/ncat", vec![]), (super::proc::bin(), vec!["cat"])] {
        for flag in ["-c", "-e"] {
            let (tport, h) = server(|mut s| read_all(&mut s));
            let cmd = if flag == "-c" {
                CMD.to_string()
            } else {
                format!("/bin/sh -c {}", "env")
            };
            let proxy = format!("127.0.0.1:{pport}");
            let status = Command::new(exe)
                .args(&pre)
                .args(["--proxy", &proxy, "--proxy-type", "http", flag, &cmd])
                .args(["127.0.0.1", &tport.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run");
            assert!(status.success(), "{exe} {flag}");
            let out = String::from_utf8(h.join().unwrap()).unwrap();
            if flag == "-c" {
                got.push(out);
            } else {
                let mut vars: Vec<&str> = out
                    .lines()
                    .filter(|l| l.starts_with("NCAT_") && !l.starts_with("NCAT_LOCAL_PORT"))
                    .collect();
                vars.sort();
                got.push(vars.join("\n"));
            }
        }
    }
    assert_eq!(got[0], format!("127.0.0.1 {pport} 127.0.0.1 TCP\n"));
    assert_eq!(got[0], got[2]);
    assert!(
        got[1].contains(&format!("NCAT_REMOTE_PORT={pport}")),
        "{}",
        got[1]
    );
    assert_eq!(got[1], got[3]);
}
