//! `--proxy`: SOCKS5 (with and without credentials) and HTTP CONNECT,
//! played by the tiny proxies of `proxy.rs`; `-w` on a silent proxy and an
//! unknown reply.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::proc::{Cat, WAIT};
use super::proxy;
use super::server;

#[test]
fn socks5_proxy_with_and_without_auth() {
    let (_srv, port) = Cat::listen(&["-k", "-c", "echo behind the proxy"]);
    for auth in [None, Some(("user", "secret"))] {
        let proxy = proxy::Socks5::start(auth);
        let mut args = vec![
            "--proxy".to_string(),
            format!("127.0.0.1:{}", proxy.port),
            "--proxy-type".into(),
            "socks5".into(),
        ];
        if let Some((u, p)) = auth {
            args.push("--proxy-auth".into());
            args.push(format!("{u}:{p}"));
        }
        args.push("localhost".into());
        args.push(port.to_string());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = Cat::spawn(&argv).finish(WAIT);
        assert_eq!(d.out(), "behind the proxy\n", "{}", d.stderr);
        assert_eq!(proxy.requests(), vec![format!("localhost:{port}")]);
    }
    // Wrong password: one line, exit 1.
    let proxy = proxy::Socks5::start(Some(("user", "secret")));
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{}", proxy.port),
        "--proxy-type",
        "socks5",
        "--proxy-auth",
        "user:wrong",
        "localhost",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("authentication failed"), "{}", d.stderr);
}

#[test]
fn http_connect_proxy() {
    let (_srv, port) = Cat::listen(&["-k", "-c", "echo via CONNECT"]);
    let proxy = proxy::HttpConnect::start(Some("dXNlcjpwYXNz"));
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{}", proxy.port),
        "--proxy-auth",
        "user:pass",
        "127.0.0.1",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(d.out(), "via CONNECT\n", "{}", d.stderr);
    // Without credentials the proxy says 407: one line, exit 1.
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{}", proxy.port),
        "127.0.0.1",
        &port.to_string(),
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("407"), "{}", d.stderr);
}

/// -w bounds the connection's setup too: a proxy that never answers.
#[test]
fn wait_limits_a_silent_proxy_handshake() {
    let (pport, _h) = server(|s| {
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let start = Instant::now();
    let d = Cat::spawn(&[
        "-w",
        "300ms",
        "--proxy",
        &format!("127.0.0.1:{pport}"),
        "h.test",
        "80",
    ])
    .finish(WAIT);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("handshake timed out"), "{}", d.stderr);
}

#[test]
fn unknown_proxy_reply_is_one_line() {
    let (pport, _h) = server(|mut s| {
        let mut buf = [0u8; 3];
        let _ = s.read_exact(&mut buf);
        s.write_all(b"\x04\x5a").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    let d = Cat::spawn(&[
        "--proxy",
        &format!("127.0.0.1:{pport}"),
        "--proxy-type",
        "socks5",
        "h.test",
        "80",
    ])
    .finish(WAIT);
    assert_eq!(d.code, Some(1));
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.contains("not a SOCKS5 reply"), "{}", d.stderr);
}
