//! `-l --proxy-type http`: the HTTP proxy server, driven by raw TCP clients written here
//! against origins played by in-test servers, case by case as ncat-test.pl's proxy tests
//! (status codes and texts checked against ncat 7.93): refusals (400, 403, 405, 413, 501,
//! 504), CONNECT with early bytes, GET/HEAD/POST forms and bodies (Content-Length and
//! chunked both ways), hop-by-hop fields, IPv4 and IPv6 on either side, `--proxy-auth`
//! with Basic and Digest (over TLS too), and real ncat (and curl) as clients where installed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use sockeye_proto::proxy_auth::digest_response;

use super::proc::{Cat, WAIT, connect, read_all};
use super::{closed_port, server};

/// A proxy server (`-v -l --proxy-type http ARGS 127.0.0.1 0`) and its port.
fn proxy(args: &[&str]) -> (Cat, u16) {
    let mut all = vec!["--proxy-type", "http"];
    all.extend_from_slice(args);
    Cat::listen(&all)
}

/// Sends `req`, half-closes (as ncat-test.pl's clients close their input) and reads the
/// answer to its end.
fn exchange(port: u16, req: &[u8]) -> String {
    let mut s = connect(port);
    s.write_all(req).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    String::from_utf8_lossy(&read_all(&mut s)).into_owned()
}

/// An origin on 127.0.0.1 that reads `want` bytes of request (less if the proxy closes or
/// stalls), answers `reply` and closes; the join handle gives what it read.
fn origin(want: usize, reply: &'static [u8]) -> (u16, JoinHandle<String>) {
    server(move |s| serve_origin(s, want, reply))
}

fn serve_origin(mut s: TcpStream, want: usize, reply: &[u8]) -> String {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = s.write_all(reply);
    String::from_utf8_lossy(&got).into_owned()
}

const OK5: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
const OK5_SEEN: &str =
    "HTTP/1.0 200 OK\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

/// ncat's answers to requests it refuses before reaching any origin.
#[test]
fn proxy_server_refusals_as_ncat() {
    let (_p, port) = proxy(&[]);
    let (_closed, closed) = closed_port();
    let long_line = [
        b"CONNECT ".as_slice(),
        &[b'A'; 24000],
        b":80 HTTP/1.0\r\n\r\n",
    ]
    .concat();
    let mut long_head = b"CONNECT 127.0.0.1:1 HTTP/1.0\r\n".to_vec();
    long_head.extend(std::iter::repeat_n(b"Header: Value\r\n", 10000).flatten());
    long_head.extend_from_slice(b"\r\n");
    let bad = "HTTP/1.0 400 Bad Request\r\n\r\n";
    let too_large = "HTTP/1.0 413 Request Entity Too Large\r\n\r\n";
    let not_allowed = "HTTP/1.0 405 Method Not Allowed\r\nAllow: CONNECT, GET, HEAD, POST\r\n\r\n";
    let gateway = "HTTP/1.0 504 Gateway Timeout\r\n\r\n";
    let table: Vec<(Vec<u8>, &str)> = vec![
        (b"bad\r\n\r\n".to_vec(), bad),
        (b"CONNECT 127.0.0.1 HTTP/1.0\r\n\r\n".to_vec(), bad),
        (b"CONNECT 127.0.0.1: HTTP/1.0\r\n\r\n".to_vec(), bad),
        (b"CONNECT [::1] HTTP/1.0\r\n\r\n".to_vec(), bad),
        (b"CONNECT [::1]: HTTP/1.0\r\n\r\n".to_vec(), bad),
        (long_line, too_large),
        (long_head, too_large),
        (b"GET 127.0.0.1 HTTP/1.0\r\n\r\n".to_vec(), bad),
        (b"GET / HTTP/1.0\r\n\r\n".to_vec(), bad),
        (b"GET https://127.0.0.1/ HTTP/1.0\r\n\r\n".to_vec(), bad),
        (
            b"NOTHING http://127.0.0.1:1/ HTTP/1.0\r\n\r\n".to_vec(),
            not_allowed,
        ),
        (
            b"get http://127.0.0.1:1/ HTTP/1.0\r\n\r\n".to_vec(),
            not_allowed,
        ),
        (b"POST http://127.0.0.1:1/ HTTP/1.0\r\n\r\n".to_vec(), bad),
        (
            b"POST http://127.0.0.1:1/ HTTP/1.0\r\nContent-Length: x\r\n\r\n".to_vec(),
            bad,
        ),
        (
            b"POST http://127.0.0.1:1/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "HTTP/1.0 501 Not Implemented\r\n\r\n",
        ),
        (
            format!("CONNECT 127.0.0.1:{closed} HTTP/1.0\r\n\r\n").into_bytes(),
            gateway,
        ),
        (
            format!("GET http://127.0.0.1:{closed}/ HTTP/1.0\r\n\r\n").into_bytes(),
            gateway,
        ),
        (b"CONNECT 127.0.0.1:1 HTTP/1.0\r\n".to_vec(), bad),
        // RFC 9110 7.3: a request to the proxy itself would loop.
        (
            format!("GET http://127.0.0.1:{port}/ HTTP/1.0\r\n\r\n").into_bytes(),
            "HTTP/1.0 403 Forbidden\r\n\r\n",
        ),
    ];
    for (req, want) in table {
        let shown = String::from_utf8_lossy(&req[..req.len().min(50)]).into_owned();
        assert_eq!(exchange(port, &req), want, "{shown:?}");
    }
}

/// The method is refused as soon as the request line is in, and an overlong request line
/// before its end: the client need not finish (or close) to get its answer.
#[test]
fn proxy_server_refuses_early() {
    let (_p, port) = proxy(&[]);
    let mut s = connect(port);
    s.write_all(b"NOTHING http://127.0.0.1:1/ HTTP/1.0\r\nA: b\r\n")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_all(&mut s)),
        "HTTP/1.0 405 Method Not Allowed\r\nAllow: CONNECT, GET, HEAD, POST\r\n\r\n"
    );
    let mut s = connect(port);
    s.write_all(&[b'G'; 9000]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_all(&mut s)),
        "HTTP/1.0 413 Request Entity Too Large\r\n\r\n"
    );
}

/// ncat-test.pl "HTTP CONNECT server doesn't consume anything after request" and "proxy
/// relays": the bytes after the head reach the target first, then both ways.
#[test]
fn proxy_server_connect_tunnels_early_bytes() {
    let (_p, port) = proxy(&[]);
    let (target, h) = server(|mut s| {
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        s.write_all(b"def\n").unwrap();
        let mut more = Vec::new();
        s.read_to_end(&mut more).unwrap();
        [got.as_slice(), &more].concat()
    });
    let mut c = connect(port);
    c.write_all(
        format!("CONNECT 127.0.0.1:{target} HTTP/1.0\r\nUser-Agent: ncat-test\r\n\r\nabc\n")
            .as_bytes(),
    )
    .unwrap();
    let mut answer = [0u8; 19 + 4];
    c.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.0 200 OK\r\n\r\ndef\n");
    c.write_all(b"ghi\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(h.join().unwrap(), b"abc\nghi\n");
    assert_eq!(read_all(&mut c), b"");
}

/// GET forms (ncat-test.pl "absolute URI", "no path", "percent escape") and the fields the
/// proxy drops both ways ("remove Connection header fields", "combine multiple headers with
/// the same name"), with the origin's answer relayed as HTTP/1.0 and its length kept.
#[test]
fn proxy_server_get_forms_and_hop_by_hop_fields() {
    let (_p, port) = proxy(&[]);
    let cases: [(&str, &str, &str); 5] = [
        ("http://127.0.0.1:{o}/", "", "GET / HTTP/1.0\r\n"),
        ("http://127.0.0.1:{o}", "", "GET / HTTP/1.0\r\n"),
        (
            "HTTP://127.0.0.1:{o}/%41?q=%20#f",
            "",
            "GET /%41?q=%20#f HTTP/1.0\r\n",
        ),
        (
            "http://127.0.0.1:{o}/",
            "Keep-Alive: 300\r\nOne: 1\r\nConnection: keep-alive, two, close\r\nTwo: 2\r\nThree: 3\r\n",
            "GET / HTTP/1.0\r\nOne: 1\r\nThree: 3\r\n",
        ),
        (
            "http://127.0.0.1:{o}/",
            "Connection: keep-alive\r\nKeep-Alive: 300\r\nConnection: two\r\nOne: 1\r\nConnection: close\r\nTwo: 2\r\nThree: 3\r\nProxy-Authorization: Basic x\r\nTE: trailers\r\nUpgrade: h2c\r\nHost: elsewhere\r\n",
            "GET / HTTP/1.0\r\nOne: 1\r\nThree: 3\r\n",
        ),
    ];
    for (uri, fields, head) in cases {
        // Ports of 127.0.0.1:0 are five digits (the ephemeral range).
        let expected_len = head.len() + "Host: 127.0.0.1:NNNNN\r\nConnection: close\r\n\r\n".len();
        let (o, h) = origin(expected_len, OK5);
        let uri = uri.replace("{o}", &o.to_string());
        let answer = exchange(
            port,
            format!("GET {uri} HTTP/1.1\r\n{fields}\r\n").as_bytes(),
        );
        assert_eq!(answer, OK5_SEEN, "{uri}");
        assert_eq!(
            h.join().unwrap(),
            format!("{head}Host: 127.0.0.1:{o}\r\nConnection: close\r\n\r\n"),
            "{uri} {fields}"
        );
    }
}

/// HEAD (no body relayed even if the origin sends one) and POST bodies: Content-Length
/// 4, 0, short (the rest is dropped), long (what came before the client's end), chunked
/// (re-chunked over HTTP/1.1), and ncat-test.pl's chunked body, which is malformed (no line
/// end after its data): 400.
#[test]
fn proxy_server_head_and_post_bodies() {
    let (_p, port) = proxy(&[]);
    let (o, h) = origin(1000, OK5);
    let answer = exchange(
        port,
        format!("HEAD http://127.0.0.1:{o}/ HTTP/1.0\r\n\r\n").as_bytes(),
    );
    assert_eq!(
        answer,
        "HTTP/1.0 200 OK\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        h.join().unwrap(),
        format!("HEAD / HTTP/1.0\r\nHost: 127.0.0.1:{o}\r\nConnection: close\r\n\r\n")
    );
    // (version, fields, body; fields and body the origin gets)
    let posts: [(&str, &str, &str, &str, &str); 5] = [
        (
            "1.0",
            "Content-Length: 4\r\n",
            "abc\n",
            "Content-Length: 4\r\n",
            "abc\n",
        ),
        (
            "1.0",
            "Content-Length: 0\r\n",
            "",
            "Content-Length: 0\r\n",
            "",
        ),
        (
            "1.0",
            "Content-Length: 2\r\n",
            "abc\n",
            "Content-Length: 2\r\n",
            "ab",
        ),
        (
            "1.0",
            "Content-Length: 10\r\n",
            "abc\n",
            "Content-Length: 10\r\n",
            "abc\n",
        ),
        (
            "1.1",
            "Transfer-Encoding: chunked\r\n",
            "2;x=y\r\nab\r\n2\r\nc\n\r\n0\r\nT: t\r\n\r\n",
            "",
            "2\r\nab\r\n2\r\nc\n\r\n0\r\n\r\n",
        ),
    ];
    for (version, fields, body, seen_fields, seen_body) in posts {
        let (out_version, te) = if version == "1.1" {
            ("1.1", "Transfer-Encoding: chunked\r\n")
        } else {
            ("1.0", "")
        };
        let want = |o: u16| {
            format!(
                "POST / HTTP/{out_version}\r\n{seen_fields}Host: 127.0.0.1:{o}\r\n{te}Connection: close\r\n\r\n{seen_body}"
            )
        };
        let (o, h) = origin(want(10000).len(), OK5);
        let req = format!("POST http://127.0.0.1:{o}/ HTTP/{version}\r\n{fields}\r\n{body}");
        assert_eq!(exchange(port, req.as_bytes()), OK5_SEEN, "{req:?}");
        assert_eq!(h.join().unwrap(), want(o), "{req:?}");
    }
    let (o, _h) = origin(1000, OK5);
    let req = format!(
        "POST http://127.0.0.1:{o}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabc\n0\r\n"
    );
    assert_eq!(
        exchange(port, req.as_bytes()),
        "HTTP/1.0 400 Bad Request\r\n\r\n"
    );
}

/// The origin's answer: a chunked body reaches the client plain (delimited by the close),
/// a 100 Continue is skipped, a body without a length runs to the origin's close.
#[test]
fn proxy_server_answer_bodies() {
    let (_p, port) = proxy(&[]);
    let get = |o: u16| format!("GET http://127.0.0.1:{o}/ HTTP/1.1\r\n\r\n");
    let want = "GET / HTTP/1.0\r\nHost: 127.0.0.1:NNNNN\r\nConnection: close\r\n\r\n".len();
    let (o, _h) = origin(
        want,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;e=1\r\n world\r\n0\r\nX: y\r\n\r\n",
    );
    assert_eq!(
        exchange(port, get(o).as_bytes()),
        "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nhello world"
    );
    let (o, _h) = origin(
        want,
        b"HTTP/1.0 404 Not Found\r\nServer: t\r\n\r\nno such page",
    );
    assert_eq!(
        exchange(port, get(o).as_bytes()),
        "HTTP/1.0 404 Not Found\r\nServer: t\r\nConnection: close\r\n\r\nno such page"
    );
    // An origin that answers garbage: the client gets a close, as from ncat.
    let (o, _h) = origin(want, b"SSH-2.0-OpenSSH\r\n");
    assert_eq!(exchange(port, get(o).as_bytes()), "");
}

/// An origin on ::1 reading what `origin` reads.
fn origin6(want: usize, reply: &'static [u8]) -> (u16, JoinHandle<String>) {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        serve_origin(s, want, reply)
    });
    (port, h)
}

fn exchange6(port: u16, req: &[u8]) -> String {
    let mut s = TcpStream::connect(("::1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    String::from_utf8_lossy(&read_all(&mut s)).into_owned()
}

/// IPv4 and IPv6 on either side of a dual-stack proxy; the IPv6 loop (ncat-test.pl "GET
/// IPv6 request loop"); and `-4`/`-6` proxies refusing the other family's targets with 504
/// ("CONNECT IPv4-only proxy", "IPv6-only proxy").
#[test]
fn proxy_server_ipv4_and_ipv6() {
    let p = Cat::spawn(&["-v", "-l", "--proxy-type", "http", "0"]);
    let port = p.port();
    let want = "GET / HTTP/1.0\r\nHost: [::1]:NNNNN\r\nConnection: close\r\n\r\n".len();
    // IPv4 client, IPv6 origin.
    let (o, h) = origin6(want, OK5);
    let answer = exchange(
        port,
        format!("GET http://[::1]:{o}/ HTTP/1.0\r\n\r\n").as_bytes(),
    );
    assert_eq!(answer, OK5_SEEN);
    assert_eq!(
        h.join().unwrap(),
        format!("GET / HTTP/1.0\r\nHost: [::1]:{o}\r\nConnection: close\r\n\r\n")
    );
    // IPv6 client, IPv4 origin, CONNECT.
    let (o, h) = origin(3, b"pong");
    let req = format!("CONNECT 127.0.0.1:{o} HTTP/1.1\r\nHost: x\r\n\r\nabc");
    assert_eq!(
        exchange6(port, req.as_bytes()),
        "HTTP/1.0 200 OK\r\n\r\npong"
    );
    assert_eq!(h.join().unwrap(), "abc");
    // IPv6 client, IPv6 origin, CONNECT.
    let (o, h) = origin6(3, b"pong");
    let req = format!("CONNECT [::1]:{o} HTTP/1.0\r\n\r\nabc");
    assert_eq!(
        exchange6(port, req.as_bytes()),
        "HTTP/1.0 200 OK\r\n\r\npong"
    );
    assert_eq!(h.join().unwrap(), "abc");
    let req = format!("GET http://[::1]:{port}/ HTTP/1.0\r\n\r\n");
    assert_eq!(
        exchange6(port, req.as_bytes()),
        "HTTP/1.0 403 Forbidden\r\n\r\n"
    );
    drop(p);

    let (_p4, port4) = proxy(&["-4"]);
    let (o6, _h) = origin6(0, b"");
    let req = format!("CONNECT [::1]:{o6} HTTP/1.0\r\n\r\n");
    assert_eq!(
        exchange(port4, req.as_bytes()),
        "HTTP/1.0 504 Gateway Timeout\r\n\r\n"
    );
    let p6 = Cat::spawn(&["-v", "-6", "-l", "--proxy-type", "http", "::1", "0"]);
    let port6 = p6.port();
    let (o4, _h) = origin(0, b"");
    let req = format!("CONNECT 127.0.0.1:{o4} HTTP/1.0\r\n\r\n");
    assert_eq!(
        exchange6(port6, req.as_bytes()),
        "HTTP/1.0 504 Gateway Timeout\r\n\r\n"
    );
}

/// The 407 challenge: ncat's text (and `Connection: close`), with a fresh nonce
/// `secs.micros-md5hex`.
fn challenge_nonce(answer: &str) -> String {
    let (head, nonce_etc) = answer
        .split_once("nonce=\"")
        .unwrap_or_else(|| panic!("no Digest challenge in {answer:?}"));
    assert_eq!(
        head,
        "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"Ncat\"\r\nProxy-Authenticate: Digest realm=\"Ncat\", "
    );
    let (nonce, tail) = nonce_etc.split_once('"').unwrap();
    assert_eq!(tail, ", qop=\"auth\"\r\nConnection: close\r\n\r\n");
    let (time, hash) = nonce.split_once('-').unwrap();
    assert!(time.contains('.') && hash.len() == 32, "{nonce}");
    nonce.to_string()
}

fn connect_with(target: u16, fields: &str) -> Vec<u8> {
    format!("CONNECT 127.0.0.1:{target} HTTP/1.0\r\n{fields}\r\n").into_bytes()
}

/// ncat-test.pl's server auth cases with Basic: challenge, correct, wrong user, wrong
/// password, scheme and field name in any case, linear white space, no, broken and extra
/// credentials.
#[test]
fn proxy_server_basic_auth() {
    let (_p, port) = proxy(&["--proxy-auth", "user:pass"]);
    let (_closed, target) = closed_port();
    // The target is closed: a request that passes gets 504, one that does not gets 407.
    let passed = "HTTP/1.0 504 Gateway Timeout\r\n\r\n";
    challenge_nonce(&exchange(port, &connect_with(target, "")));
    let cases: [(&str, bool); 10] = [
        ("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n", true),
        ("Proxy-Authorization: Basic bm9ib2R5OnBhc3M=\r\n", false),
        ("Proxy-Authorization: Basic dXNlcjp3b3Jk\r\n", false),
        ("pROXY-aUTHORIZATION: BASIC dXNlcjpwYXNz\r\n", true),
        (
            "Proxy-Authorization:\t  Basic  \r\n\t  \n dXNlcjpwYXNz\r\n",
            true,
        ),
        ("Proxy-Authorization: Basic\r\n dXNlcjpwYXNz\r\n", true),
        ("Proxy-Authorization: \r\n", false),
        ("Proxy-Authorization: French fries\r\n", false),
        ("Proxy-Authorization: Basic dXNlcjpwYXNz extra\r\n", false),
        (
            "Proxy-Authorization: Basic dXNlcjpwYXNz, Basic dXNlcjpwYXNz\r\n",
            false,
        ),
    ];
    for (fields, ok) in cases {
        let answer = exchange(port, &connect_with(target, fields));
        if ok {
            assert_eq!(answer, passed, "{fields:?}");
        } else {
            challenge_nonce(&answer);
        }
    }
}

/// Digest (ncat-test.pl "Digest wrong user", "wrong pass", "correct auth", "correct auth,
/// no qop", "missing fields"), for CONNECT and for GET (the method is in the hash), and a
/// nonce the proxy did not make.
#[test]
fn proxy_server_digest_auth() {
    let (_p, port) = proxy(&["--proxy-auth", "user:pass"]);
    let (o, h) = origin(4, b"ok");
    let uri = format!("127.0.0.1:{o}");
    let nonce = challenge_nonce(&exchange(port, &connect_with(o, "")));
    let field = |user: &str, pass: &str, nonce: &str, qop: bool, realm: bool| {
        let qa = qop.then_some(("00000001", "abcdefg"));
        let r = digest_response(user, "Ncat", pass, "CONNECT", &uri, nonce, qa);
        let mut f = format!("Proxy-Authorization: Digest username=\"{user}\", nonce=\"{nonce}\"");
        if realm {
            f.push_str(&format!(", realm=\"Ncat\", uri=\"{uri}\""));
        }
        if qop {
            f.push_str(", qop=\"auth\", nc=\"00000001\", cnonce=\"abcdefg\"");
        }
        f + &format!(", response=\"{r}\"\r\n")
    };
    for (fields, why) in [
        (field("xxx", "pass", &nonce, false, true), "wrong user"),
        (field("user", "xxx", &nonce, false, true), "wrong pass"),
        (
            field("user", "pass", &nonce, false, false),
            "missing fields",
        ),
        (
            field("user", "pass", &nonce.replace('-', "-0"), false, true),
            "foreign nonce",
        ),
    ] {
        let answer = exchange(port, &connect_with(o, &fields));
        assert!(answer.starts_with("HTTP/1.0 407 "), "{why}: {answer:?}");
        challenge_nonce(&answer);
    }
    // Correct, with qop=auth: the tunnel opens.
    let mut c = connect(port);
    c.write_all(&connect_with(o, &field("user", "pass", &nonce, true, true)))
        .unwrap();
    c.write_all(b"ping").unwrap();
    let mut answer = [0u8; 19 + 2];
    c.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.0 200 OK\r\n\r\nok");
    assert_eq!(h.join().unwrap(), "ping");
    // Correct, without qop, for a GET: the method is part of the hash.
    let (o, h) = origin(1000, OK5);
    let uri = format!("http://127.0.0.1:{o}/");
    let r = digest_response("user", "Ncat", "pass", "GET", &uri, &nonce, None);
    let req = format!(
        "GET {uri} HTTP/1.0\r\nProxy-Authorization: Digest username=\"user\", realm=\"Ncat\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\"\r\n\r\n"
    );
    assert_eq!(exchange(port, req.as_bytes()), OK5_SEEN);
    // The credentials are not passed on.
    assert!(!h.join().unwrap().contains("Proxy-Authorization"));
    // The same credentials with another method are wrong.
    let req = req.replacen("GET", "HEAD", 1);
    challenge_nonce(&exchange(port, req.as_bytes()));
}

/// Over TLS (`--ssl`): the challenge, then right credentials open a tunnel; sockeye's own
/// TLS client plays the proxy client.
#[test]
fn proxy_server_over_tls() {
    let (_p, port) = proxy(&["--ssl", "--proxy-auth", "user:pass"]);
    let (o, h) = origin(4, b"pong");
    let mut c = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]);
    c.write(&connect_with(o, ""));
    let d = c.finish(WAIT);
    challenge_nonce(&d.out());
    let mut c = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]);
    c.write(&connect_with(
        o,
        "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n",
    ));
    c.write(b"ping");
    let got = c.wait_stdout(23, WAIT);
    assert_eq!(got, b"HTTP/1.0 200 OK\r\n\r\npong");
    assert_eq!(h.join().unwrap(), "ping");
}

/// Flags: only `http` can be served, not with exec, hubs, UDP or Unix sockets, and
/// `--proxy-auth` in listen mode needs the proxy server.
#[test]
fn proxy_server_flag_combinations() {
    for bad in [
        &["-l", "--proxy-type", "socks5", "0"][..],
        &["-l", "--proxy-type", "http", "-c", "cat", "0"],
        &["-l", "--proxy-type", "http", "--broker", "0"],
        &["-l", "--proxy-type", "http", "-u", "0"],
        &["-l", "--proxy-auth", "user:pass", "0"],
        &["-l", "--proxy-type", "http", "--proxy-auth", "nocolon", "0"],
    ] {
        let d = Cat::spawn(bad).wait(WAIT);
        assert_eq!(d.code, Some(2), "{bad:?}: {}", d.stderr);
    }
}

/// Whether `tool` is on PATH; a loud SKIPPED line when not, and a failure under `CI=true`
/// (a test that cannot run must not pass silently there), as `require_lab` does.
#[allow(clippy::print_stderr)]
fn installed(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "{tool} is not installed (apt-get install -y {tool})");
        eprintln!("SKIPPED: {tool} is not installed (apt-get install -y {tool})");
    }
    found
}

/// Real ncat as the proxy client, without and with `--proxy-auth` (ncat answers our
/// challenge with Digest, which it prefers): bytes both ways through the tunnel.
#[test]
fn proxy_server_with_ncat_as_client() {
    if !installed("ncat") {
        return;
    }
    for auth in [None, Some("user:pass")] {
        let mut args = vec![];
        if let Some(a) = auth {
            args.extend(["--proxy-auth", a]);
        }
        let (_p, port) = proxy(&args);
        let (o, h) = origin(6, b"from origin\n");
        let mut cmd = std::process::Command::new("ncat");
        cmd.args([
            "--proxy",
            &format!("127.0.0.1:{port}"),
            "--proxy-type",
            "http",
        ]);
        if let Some(a) = auth {
            cmd.args(["--proxy-auth", a]);
        }
        let out = cmd
            .args(["127.0.0.1", &o.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = out;
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let _ = child.wait();
        assert_eq!(h.join().unwrap(), "hello\n", "auth {auth:?}");
        assert_eq!(stdout, "from origin\n", "auth {auth:?}");
    }
}

/// curl through the proxy (`-x`), GET and a CONNECT tunnel (`-p`), with Basic and Digest.
#[test]
fn proxy_server_with_curl_as_client() {
    if !installed("curl") {
        return;
    }
    let (_p, port) = proxy(&["--proxy-auth", "user:pass"]);
    for (extra, tunnel) in [
        (&["--proxy-basic"][..], false),
        (&["--proxy-digest"], false),
        (&["--proxy-digest"], true),
    ] {
        let (o, h) = origin(10, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "10",
            "-x",
            &format!("http://127.0.0.1:{port}"),
        ]);
        cmd.args(["-U", "user:pass"]).args(extra);
        if tunnel {
            cmd.arg("-p");
        }
        let out = cmd.arg(format!("http://127.0.0.1:{o}/x")).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\n",
            "{extra:?} tunnel {tunnel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = h.join().unwrap();
        assert!(seen.starts_with("GET /x HTTP/1."), "{seen:?}");
    }
}
