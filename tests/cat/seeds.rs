//! The seed examples end to end: a listener and a client typing to each
//! other, the MOTD and echo servers, chat relays, the HTTP response server
//! and the browser fuzzer, line-based client/server exchanges, TCP and UDP.

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use super::proc::{Cat, WAIT, connect, read_all, read_line, udp};
use super::server;

/// Seed 002, basic usage: a listener and a client typing to each other.
#[test]
fn seed_listen_and_connect_talk_both_ways() {
    let (mut srv, port) = Cat::listen(&[]);
    let mut cli = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    srv.wait_stderr("connection from", WAIT).expect("accepted");
    cli.write(b"from the client\n");
    assert_eq!(srv.wait_stdout(16, WAIT), b"from the client\n");
    srv.write(b"from the server\n");
    assert_eq!(cli.wait_stdout(16, WAIT), b"from the server\n");
    // Ctrl-D on the client: FIN; the listener sees its peer go and exits.
    cli.close_stdin();
    let s = srv.finish(WAIT);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let c = cli.wait(WAIT);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
}

/// Seed 002, example 1: `ncat -c "echo hello world" -lp 10101` (and -k).
#[test]
fn seed_motd_server() {
    let (srv, port) = Cat::listen(&["-c", "echo hello world", "-k"]);
    for _ in 0..3 {
        let c = Cat::spawn(&["127.0.0.1", &port.to_string()]).finish(WAIT);
        assert_eq!(c.out(), "hello world\n");
        assert_eq!(c.code, Some(0), "{}", c.stderr);
    }
    drop(srv);
    // Without -k the server serves one client and exits.
    let (srv, port) = Cat::listen(&["-c", "echo hello world"]);
    let mut s = connect(port);
    assert_eq!(read_all(&mut s), b"hello world\n");
    drop(s);
    assert_eq!(srv.wait(WAIT).code, Some(0));
}

/// Seed 002, example 2: the echo server `ncat -c cat -lp 10101 -k`.
#[test]
fn seed_echo_server() {
    let (_srv, port) = Cat::listen(&["-c", "cat", "-k"]);
    let mut a = connect(port);
    let mut b = connect(port);
    a.write_all(b"is this on?\n").unwrap();
    assert_eq!(read_line(&mut a), "is this on?\n");
    b.write_all(b"this is echoed.\n").unwrap();
    assert_eq!(read_line(&mut b), "this is echoed.\n");
    // The client's FIN reaches cat's stdin; cat exits; we see EOF.
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut a), b"");
    // And the sockeye client against it, stdin piped in.
    let c = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    let mut c = c;
    c.write(b"line one\nline two\n");
    let d = c.finish(WAIT);
    assert_eq!(d.out(), "line one\nline two\n");
}

/// Seed 002, example 3: the chat relay through a shared file and tail -f.
#[test]
fn seed_chat_relay_with_tail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("messages"), b"").unwrap();
    let srv = Cat::spawn_in(
        dir.path(),
        &[
            "-v",
            "-c",
            "cat >>messages | tail -f messages",
            "-lp",
            "0",
            "-k",
        ],
    );
    let port = srv.port();
    let mut a = connect(port);
    let mut b = connect(port);
    srv.wait_stderr("connection from", WAIT);
    std::thread::sleep(Duration::from_millis(300));
    a.write_all(b"hello from a\n").unwrap();
    assert_eq!(read_line(&mut b), "hello from a\n");
    // "you see the messages you send twice": a gets its own line back.
    assert_eq!(read_line(&mut a), "hello from a\n");
    b.write_all(b"hi a\n").unwrap();
    assert_eq!(read_line(&mut a), "hi a\n");
}

/// Seed 002, example 5: IDs per client and no echo of one's own lines.
#[test]
fn seed_chat_with_ids_and_no_self_echo() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("messages"), b"").unwrap();
    let cmd = r#"sed -ue "s/^/$PPID: /"  | cat >>messages | tail -f messages | grep --line-buffered -v "^$PPID:""#;
    let srv = Cat::spawn_in(dir.path(), &["-v", "-c", cmd, "-lp", "0", "-k"]);
    let port = srv.port();
    let mut a = connect(port);
    let mut b = connect(port);
    srv.wait_stderr("connection from", WAIT);
    std::thread::sleep(Duration::from_millis(300));
    a.write_all(b"hello b\n").unwrap();
    let got = read_line(&mut b);
    let (id_a, text) = got.trim_end().split_once(": ").expect("ID: text");
    assert!(id_a.parse::<u32>().is_ok(), "{got:?}");
    assert_eq!(text, "hello b");
    b.write_all(b"hello a\n").unwrap();
    // a's next line is b's, not its own echoed back.
    let got = read_line(&mut a);
    let (id_b, text) = got.trim_end().split_once(": ").expect("ID: text");
    assert_eq!(text, "hello a", "{got:?}");
    assert_ne!(id_a, id_b);
}

const RESPONSE: &str = "HTTP/1.0 200 OK\nContent-type: text/html; charset=utf-8\nConnection: close\n\n\n<!doctype html>\n<html>\n<head><title>Hello world</title></head>\n<body>\n<h1>Hello world</h1>\n<img src=\"http://placecage.com/500/500\" alt=\"\">\n</body>\n</html>\n";

/// A browser's request and everything the server sends back.
fn http_get(port: u16) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
        .unwrap();
    read_all(&mut s)
}

/// Seed 002, example 4: `ncat -c "cat response.txt" -lp 8080 -k`.
#[test]
fn seed_http_server_fixed_response() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("response.txt"), RESPONSE).unwrap();
    let srv = Cat::spawn_in(
        dir.path(),
        &["-v", "-c", "cat response.txt", "-lp", "0", "-k"],
    );
    let port = srv.port();
    for _ in 0..3 {
        assert_eq!(String::from_utf8(http_get(port)).unwrap(), RESPONSE);
    }
}

/// Seed 002, example 6: random bytes behind a fixed header, read whole by
/// an HTTP client (the seed's browser).
#[test]
fn seed_fuzz_browser_with_random_body() {
    let dir = tempfile::tempdir().unwrap();
    let header = "HTTP/1.0 200 OK\nContent-type: text/html; charset=utf-8\nConnection: close\n\n\n";
    std::fs::write(dir.path().join("response1.txt"), header).unwrap();
    let cmd = "head -c 1000000 /dev/urandom | cat response1.txt -";
    let srv = Cat::spawn_in(dir.path(), &["-v", "-c", cmd, "-lp", "0", "-k"]);
    let port = srv.port();
    for _ in 0..2 {
        let got = http_get(port);
        assert!(got.starts_with(header.as_bytes()));
        assert_eq!(got.len(), header.len() + 1_000_000);
    }
    // The plain random variant too.
    drop(srv);
    let srv = Cat::spawn_in(
        dir.path(),
        &["-v", "-c", "head -c 1000000 /dev/urandom", "-lp", "0", "-k"],
    );
    assert_eq!(http_get(srv.port()).len(), 1_000_000);
}

/// Seed 000: a line-based client (Tcl's `puts`/`gets`) against a server
/// that greets first (an SMTP-like dialogue run by `-c`), and the cat as
/// that client with -C for CRLF line ends.
#[test]
fn seed_line_dialogue_client_and_server() {
    let script = r#"printf '220 vlad ESMTP ready\r\n'; read -r line; printf '250 hello, you said %s\n' "$line""#;
    let (_srv, port) = Cat::listen(&["-c", script, "-k"]);
    let mut s = connect(port);
    assert_eq!(read_line(&mut s), "220 vlad ESMTP ready\r\n");
    s.write_all(b"helo foo@bar.baz\n").unwrap();
    assert_eq!(read_line(&mut s), "250 hello, you said helo foo@bar.baz\n");
    // The cat as the client, sending CRLF as SMTP wants.
    let (port2, h) = server(|mut s| {
        s.write_all(b"220 ready\r\n").unwrap();
        let got = read_all(&mut s);
        s.write_all(b"250 ok\r\n").unwrap();
        got
    });
    let mut c = Cat::spawn(&["-C", "127.0.0.1", &port2.to_string()]);
    c.write(b"helo example.com\nquit\n");
    let d = c.finish(WAIT);
    assert_eq!(h.join().unwrap(), b"helo example.com\r\nquit\r\n");
    assert_eq!(d.out(), "220 ready\r\n250 ok\r\n");
    assert_eq!(d.code, Some(0));
}

/// Seed 001: an echo service over TCP and UDP on the same port number,
/// reached the way the lab reaches it (a client socket, and the cat).
#[test]
fn seed_echo_over_tcp_and_udp() {
    let (_tcp, port) = Cat::listen(&["-c", "cat", "-k"]);
    let mut s = connect(port);
    s.write_all(b"ECHO?\n").unwrap();
    assert_eq!(read_line(&mut s), "ECHO?\n");
    let (_udp, uport) = Cat::listen(&["-u", "-k", "-c", "cat"]);
    let u = udp();
    u.send_to(b"ping\n", ("127.0.0.1", uport)).unwrap();
    let mut buf = [0u8; 100];
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping\n");
}
