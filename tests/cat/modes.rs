//! Timeouts and modes against real ncat: `-i` in connect and listen mode
//! (exit status, what reached stdout), `-z` over UDP, the families a UDP
//! listener serves, connect falling back across a name's addresses, and
//! Unix datagram sockets. What ncat 7.93 does was checked by running it
//! the same way.

use std::time::{Duration, Instant};

use super::proc::{Cat, WAIT};
use super::{free_port, ncat};

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// An ncat listener on 127.0.0.1 (a port that was free), and its port.
fn ncat_listener(args: &[&str]) -> (Cat, u16) {
    let port = if args.contains(&"-u") {
        free_udp_port()
    } else {
        free_port()
    };
    let p = port.to_string();
    let mut all = vec!["-v", "-l"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["127.0.0.1", p.as_str()]);
    let srv = ncat(&all);
    srv.wait_stderr("Listening on", WAIT)
        .unwrap_or_else(|| panic!("ncat did not listen: {}", srv.stderr()));
    (srv, port)
}

/// Connect mode: what arrived is on stdout, then "idle timeout" and exit 1
/// (ncat: "Idle timeout expired (1000 ms)." and 1), stdin still open.
#[test]
fn idle_timeout_connect_exits_1_after_what_arrived() {
    let (mut srv, port) = ncat_listener(&[]);
    let start = Instant::now();
    let cat = Cat::spawn(&["-i", "500ms", "127.0.0.1", &port.to_string()]);
    srv.wait_stderr("Connection from", WAIT).expect("connected");
    srv.write(b"hello\n");
    let done = cat.wait(WAIT);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert_eq!(done.out(), "hello\n");
    assert!(
        done.stderr.contains("idle timeout expired (500 ms)"),
        "{}",
        done.stderr
    );
    assert!(start.elapsed() >= Duration::from_millis(500));
}

/// Standard input's EOF does not end a TCP session: the idle timeout
/// still does (ncat the same; ncat as the server would end at the FIN,
/// so the server here is a socket that keeps quiet).
#[test]
fn idle_timeout_connect_after_stdin_eof() {
    let (port, server) = super::server(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"late\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        // Quiet, and still open past the idle timeout.
        std::thread::sleep(Duration::from_millis(1500));
        rest
    });
    let mut cat = Cat::spawn(&["-i", "500ms", "127.0.0.1", &port.to_string()]);
    cat.close_stdin();
    let done = cat.wait(WAIT);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert_eq!(done.out(), "late\n");
    assert_eq!(server.join().unwrap(), b"");
}

/// Listen mode (one client, `--broker`, `-k`): no timeout before the
/// first client; once one came, idle ends the run with status 2, as
/// ncat's bye() does, what it sent on stdout (one client and `-k`).
#[test]
fn idle_timeout_listen_exits_2_and_waits_for_a_client() {
    for (hub, out) in [
        (None, "hey\n"),
        (Some("--broker"), ""),
        (Some("-k"), "hey\n"),
    ] {
        let mut flags = vec!["-i", "300ms"];
        flags.extend(hub);
        let (srv, port) = Cat::listen(&flags);
        std::thread::sleep(Duration::from_millis(900));
        let mut client = ncat(&["127.0.0.1", &port.to_string()]);
        client.write(b"hey\n");
        let done = srv.wait(WAIT);
        assert_eq!(done.code, Some(2), "{hub:?}: {}", done.stderr);
        assert_eq!(done.out(), out, "{hub:?}");
        assert!(
            done.stderr.contains("idle timeout expired (300 ms)"),
            "{}",
            done.stderr
        );
    }
}

/// `-u -l -k -i`: as ncat's (`-u -k` needs `-e`/`-c` there), no timeout
/// before the first peer, then status 2 and "idle timeout expired" once
/// nothing came for that long. Traffic from a known peer counts too (in
/// ncat only a new peer does: its known peers talk to their children on
/// sockets of their own). Without exec (beyond ncat) the same, with what
/// arrived on stdout.
#[test]
fn udp_keep_open_idle_timeout_exits_2_after_the_first_peer() {
    for exec in [true, false] {
        let mut flags = vec!["-u", "-k", "-i", "600ms"];
        if exec {
            flags.extend(["-c", "cat"]);
        }
        let (srv, port) = Cat::listen(&flags);
        std::thread::sleep(Duration::from_millis(1200));
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.connect(("127.0.0.1", port)).unwrap();
        peer.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..6 {
            peer.send(format!("m{i}\n").as_bytes()).unwrap();
            if exec {
                let n = peer.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], format!("m{i}\n").as_bytes());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let done = srv.wait(WAIT);
        assert_eq!(done.code, Some(2), "exec {exec}: {}", done.stderr);
        assert!(
            done.stderr.contains("idle timeout expired (600 ms)"),
            "{}",
            done.stderr
        );
        let want = if exec { "" } else { "m0\nm1\nm2\nm3\nm4\nm5\n" };
        assert_eq!(done.out(), want);
    }
}

/// `-z -u` sends one datagram, a NUL byte as ncat's; no "port
/// unreachable" within `-w` means open (exit 0).
#[test]
fn zero_io_udp_sends_one_datagram_to_an_open_port() {
    let (srv, port) = ncat_listener(&["-u"]);
    let done = Cat::spawn(&["-z", "-u", "-w", "300ms", "127.0.0.1", &port.to_string()]).wait(WAIT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(srv.wait_stdout(1, WAIT), b"\0");
}

/// A port that answers "port unreachable" is closed: exit 1 (ncat:
/// "Connection refused." and 1); with several ports the open ones are
/// listed.
#[test]
fn zero_io_udp_refused_port_is_exit_1() {
    let closed = free_udp_port();
    let done = Cat::spawn(&["-z", "-u", "127.0.0.1", &closed.to_string()]).wait(WAIT);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("refused"), "{}", done.stderr);
    let (_srv, open) = ncat_listener(&["-u"]);
    let ports = format!("{open},{closed}");
    let done = Cat::spawn(&["-z", "-u", "-w", "300ms", "127.0.0.1", &ports]).wait(WAIT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.out(), format!("127.0.0.1 {open} open\n"));
}

/// `-u -l PORT` without `-4`/`-6` serves IPv4 and IPv6 peers (ncat binds
/// 0.0.0.0 and [::]); an IPv4 peer is named as IPv4.
#[test]
fn udp_listen_serves_both_families_by_default() {
    let mut srv = Cat::spawn(&["-v", "-l", "-u", "-k", "0"]);
    let port = srv.port().to_string();
    let mut v4 = ncat(&["-u", "127.0.0.1", &port]);
    v4.write(b"v4\n");
    assert_eq!(srv.wait_stdout(3, WAIT), b"v4\n");
    let mut v6 = ncat(&["-u", "::1", &port]);
    v6.write(b"v6\n");
    assert_eq!(srv.wait_stdout(6, WAIT), b"v4\nv6\n");
    srv.write(b"back\n");
    assert_eq!(v4.wait_stdout(5, WAIT), b"back\n");
    assert_eq!(v6.wait_stdout(5, WAIT), b"back\n");
    srv.wait_stderr("connection from 127.0.0.1:", WAIT)
        .unwrap_or_else(|| panic!("IPv4 peer named as IPv4: {}", srv.stderr()));
}

/// `-6 -u -l` is IPv6 only, as ncat's (an IPv4 datagram does not reach it).
#[test]
fn udp_listen_6_is_ipv6_only() {
    let srv = Cat::spawn(&["-v", "-6", "-l", "-u", "0"]);
    let port = srv.port();
    let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    v4.send_to(b"v4\n", ("127.0.0.1", port)).unwrap();
    let mut v6 = ncat(&["-u", "::1", &port.to_string()]);
    v6.write(b"v6\n");
    assert_eq!(srv.wait_stdout(3, WAIT), b"v6\n");
}

/// `localhost` reaches an ncat listening on 127.0.0.1 only, whether the
/// name gives ::1 first (passed over when refused) or 127.0.0.1 alone;
/// the fallback itself is `relay::connect`'s unit test.
#[test]
fn connect_localhost_reaches_an_ipv4_only_listener() {
    let (srv, port) = ncat_listener(&[]);
    let mut cat = Cat::spawn(&["localhost", &port.to_string()]);
    cat.write(b"over v4\n");
    assert_eq!(srv.wait_stdout(8, WAIT), b"over v4\n");
}

/// `-l -U -u PATH`: an ncat client (which binds a source socket of its
/// own) is served both ways, and the path is removed at the end.
#[test]
fn unix_datagram_listen_serves_an_ncat_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dgram.sock");
    let p = path.to_str().unwrap();
    let mut srv = Cat::spawn(&["-v", "-l", "-U", "-u", p]);
    srv.wait_stderr("listening on", WAIT).expect("listening");
    let mut client = ncat(&["-U", "-u", p]);
    client.write(b"hi\n");
    assert_eq!(srv.wait_stdout(3, WAIT), b"hi\n");
    srv.write(b"back\n");
    assert_eq!(client.wait_stdout(5, WAIT), b"back\n");
    drop(srv);
    assert!(!path.exists(), "the socket file is removed");
}

/// `-U -u PATH` to an ncat listener: a source socket of our own (ncat
/// answers to it), removed at the end.
#[test]
fn unix_datagram_connect_to_an_ncat_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dgram.sock");
    let p = path.to_str().unwrap();
    let mut srv = ncat(&["-v", "-l", "-U", "-u", p]);
    srv.wait_stderr("Listening on", WAIT)
        .expect("ncat listening");
    let mut cat = Cat::spawn(&["-U", "-u", p]);
    cat.write(b"hi\n");
    assert_eq!(srv.wait_stdout(3, WAIT), b"hi\n");
    let from = srv
        .wait_stderr("Connection from ", WAIT)
        .expect("ncat names our source socket");
    let source = from
        .split("Connection from ")
        .nth(1)
        .unwrap()
        .trim_end_matches('.');
    srv.write(b"back\n");
    assert_eq!(cat.wait_stdout(5, WAIT), b"back\n");
    drop(cat);
    assert!(
        !std::path::Path::new(source).exists(),
        "{source} left behind"
    );
}
