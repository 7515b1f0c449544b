//! The half-close contract of the README, one test per row (connect and
//! listen; stdin EOF, peer FIN, peer RST; TCP, TLS, UDP, exec), then
//! `--no-shutdown` and UDP in both modes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::proc::{Cat, WAIT, connect, read_all, udp, wait_for};
use super::server;

/// connect x stdin EOF x TCP: FIN sent, the reply after it still printed.
#[test]
fn half_close_connect_stdin_eof_sends_fin_and_keeps_receiving() {
    let (port, h) = server(|mut s| {
        let got = read_all(&mut s); // returns only on our FIN
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(b"late reply\n").unwrap();
        got
    });
    let mut c = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    c.write(b"request\n");
    let d = c.finish(WAIT);
    assert_eq!(h.join().unwrap(), b"request\n");
    assert_eq!(d.out(), "late reply\n");
    assert_eq!(d.code, Some(0));
}

/// connect x peer FIN x TCP: as ncat 7.9x, the peer's FIN ends only what
/// it sends: stdout gets all of it, standard input still goes to the peer
/// until its EOF, and the session ends when both directions have.
#[test]
fn half_close_connect_peer_fin_keeps_sending_until_stdin_eof() {
    let (port, h) = server(|mut s| {
        s.write_all(b"bye\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_all(&mut s) // returns only on our FIN
    });
    let mut c = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    assert_eq!(c.wait_stdout(4, WAIT), b"bye\n");
    // As ncat: stdout is closed at the FIN, so a pipeline sees its end.
    assert!(
        c.stdout_ends(WAIT),
        "stdout still open after the peer's FIN"
    );
    assert!(c.running(), "the session ended with stdin open");
    c.write(b"after the peer's FIN\n");
    let d = c.finish(WAIT);
    assert_eq!(h.join().unwrap(), b"after the peer's FIN\n");
    assert_eq!(d.out(), "bye\n");
    assert_eq!(d.code, Some(0), "{}", d.stderr);
}

/// connect x peer RST x TCP: one line, exit 1.
#[test]
fn half_close_connect_peer_rst_is_an_error() {
    let (port, _h) = server(|s| {
        std::thread::sleep(Duration::from_millis(200));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    });
    let c = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    let d = c.wait(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("reset"), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
}

/// listen x stdin EOF x TCP: FIN to the client, whose reply still arrives.
#[test]
fn half_close_listen_stdin_eof_sends_fin() {
    let (mut srv, port) = Cat::listen(&[]);
    let mut s = connect(port);
    srv.wait_stderr("connection from", WAIT);
    srv.write(b"hello\n");
    srv.close_stdin();
    assert_eq!(read_all(&mut s), b"hello\n");
    s.write_all(b"answer after FIN\n").unwrap();
    drop(s);
    let d = srv.wait(WAIT);
    assert_eq!(d.out(), "answer after FIN\n");
    assert_eq!(d.code, Some(0));
}

/// listen x peer FIN x TCP: the listener exits 0 after printing everything.
#[test]
fn half_close_listen_peer_fin_ends_session() {
    // As ncat 7.9x: the client is done, so is the listener, its stdin
    // still open (a terminal's).
    let (srv, port) = Cat::listen(&[]);
    let mut s = connect(port);
    s.write_all(b"all of it\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let d = srv.wait(WAIT);
    assert_eq!(d.out(), "all of it\n");
    assert_eq!(d.code, Some(0), "{}", d.stderr);
}

/// listen x peer RST x TCP: exit 1 with one line.
#[test]
fn half_close_listen_peer_rst() {
    let (srv, port) = Cat::listen(&[]);
    let s = connect(port);
    srv.wait_stderr("connection from", WAIT);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let d = srv.wait(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(
        d.stderr.contains("connection reset by peer"),
        "{}",
        d.stderr
    );
}

/// exec x peer FIN: the child's stdin closes, its output still goes back
/// (`sort` answers only after EOF).
#[test]
fn half_close_exec_peer_fin_closes_child_stdin() {
    let (_srv, port) = Cat::listen(&["-c", "sort", "-k"]);
    let mut s = connect(port);
    s.write_all(b"b\nc\na\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"a\nb\nc\n");
}

/// exec x child exit: FIN to the peer, even though the peer keeps quiet.
#[test]
fn half_close_exec_child_exit_sends_fin() {
    let (_srv, port) = Cat::listen(&["-e", "/bin/echo done", "-k"]);
    let mut s = connect(port);
    assert_eq!(read_all(&mut s), b"done\n");
}

/// exec x peer RST: the child (its whole process group) is ended, the
/// server goes on.
#[test]
fn half_close_exec_peer_rst_ends_child() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Cat::spawn_in(
        dir.path(),
        &["-v", "-lp", "0", "-k", "-c", "echo $$ > pid; exec sleep 30"],
    );
    let port = srv.port();
    let s = connect(port);
    let pidfile = dir.path().join("pid");
    let pid: i32 = wait_for(WAIT, || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
    .expect("the child wrote its pid");
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| !st.contains(") Z "))
            .unwrap_or(false)
    };
    assert!(alive(pid));
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    wait_for(WAIT, || (!alive(pid)).then_some(())).expect("child ended after the reset");
    // The server is still there for the next client.
    let mut s2 = connect(port);
    s2.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(s2.read(&mut b).is_err(), "no data, connection still open");
}

/// A forwarder that, after `after`, resets both of its connections: the
/// peer RST seen by a TLS client and a TLS server (rows "peer RST x TLS").
fn resetting_forwarder(upstream: u16, after: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (down, _) = l.accept().unwrap();
        let up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let copies: Vec<_> = [(&down, &up), (&up, &down)]
            .into_iter()
            .map(|(a, b)| {
                let (mut r, mut w) = (a.try_clone().unwrap(), b.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut r, &mut w);
                })
            })
            .collect();
        std::thread::sleep(after);
        // Linger 0 makes the last close a RST; shutting down the read
        // sides (which sends nothing) ends the copies and their clones.
        for s in [&down, &up] {
            socket2::SockRef::from(s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            let _ = s.shutdown(Shutdown::Read);
        }
        for c in copies {
            let _ = c.join();
        }
        drop((down, up));
    });
    port
}

/// connect x stdin EOF x TLS: close_notify and FIN, the answer still read.
#[test]
fn hc_connect_stdin_eof_tls() {
    let (_srv, port) = Cat::listen(&["--ssl", "-k", "-c", "sort"]);
    let mut c = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]);
    c.write(b"b\na\n");
    let d = c.finish(WAIT);
    assert_eq!(d.out(), "a\nb\n", "{}", d.stderr);
    assert_eq!(d.code, Some(0));
}

/// connect x stdin EOF x exec: the child's output EOF is our FIN.
#[test]
fn hc_connect_stdin_eof_exec() {
    let (port, h) = server(|mut s| read_all(&mut s));
    let d = Cat::spawn(&["-c", "echo from the child", "127.0.0.1", &port.to_string()]).wait(WAIT);
    assert_eq!(h.join().unwrap(), b"from the child\n");
    assert_eq!(d.code, Some(0));
}

/// connect x peer FIN x TLS: the peer's close_notify and FIN end what it
/// sends; the session ends at standard input's EOF, exit 0.
#[test]
fn hc_connect_peer_fin_tls() {
    let (_srv, port) = Cat::listen(&["--ssl", "-k", "-c", "echo bye"]);
    let c = Cat::spawn(&["--ssl", "127.0.0.1", &port.to_string()]);
    assert_eq!(c.wait_stdout(4, WAIT), b"bye\n");
    let d = c.finish(WAIT);
    assert_eq!(d.out(), "bye\n");
    assert_eq!(d.code, Some(0), "{}", d.stderr);
}

/// connect x "peer FIN" x UDP: there is none; an empty datagram is just
/// an empty datagram and the session goes on.
#[test]
fn hc_connect_peer_fin_udp() {
    let u = udp();
    let port = u.local_addr().unwrap().port();
    let mut c = Cat::spawn(&["-u", "127.0.0.1", &port.to_string()]);
    c.write(b"hi\n");
    let mut buf = [0u8; 100];
    let (_, from) = u.recv_from(&mut buf).unwrap();
    u.send_to(b"", from).unwrap();
    u.send_to(b"still here\n", from).unwrap();
    assert_eq!(c.wait_stdout(11, WAIT), b"still here\n");
}

/// connect x peer FIN x exec: the child's stdin closes, its answer goes back.
#[test]
fn hc_connect_peer_fin_exec() {
    let (port, h) = server(|mut s| {
        s.write_all(b"b\nc\na\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_all(&mut s)
    });
    let d = Cat::spawn(&["-c", "sort", "127.0.0.1", &port.to_string()]).wait(WAIT);
    assert_eq!(h.join().unwrap(), b"a\nb\nc\n");
    assert_eq!(d.code, Some(0));
}

/// connect x peer RST x TLS: one line, exit 1.
#[test]
fn hc_connect_peer_rst_tls() {
    let (_srv, port) = Cat::listen(&["--ssl", "-k", "-c", "exec sleep 5"]);
    let fwd = resetting_forwarder(port, Duration::from_millis(500));
    let d = Cat::spawn(&["--ssl", "127.0.0.1", &fwd.to_string()]).wait(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.contains("reset"), "{}", d.stderr);
}

/// connect x peer RST x exec: the child is ended, exit 1.
#[test]
fn hc_connect_peer_rst_exec() {
    let (port, _h) = server(|s| {
        std::thread::sleep(Duration::from_millis(300));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let start = Instant::now();
    let d = Cat::spawn(&["-c", "exec sleep 20", "127.0.0.1", &port.to_string()]).wait(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(d.stderr.contains("reset"), "{}", d.stderr);
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// listen x stdin EOF x TLS: close_notify and FIN; the client's answer,
/// sent after it, is still printed.
#[test]
fn hc_listen_stdin_eof_tls() {
    let (mut srv, port) = Cat::listen(&["--ssl"]);
    // The client's child echoes what it gets, then answers after our EOF.
    let c = Cat::spawn(&[
        "--ssl",
        "-c",
        "cat; echo after-eof",
        "127.0.0.1",
        &port.to_string(),
    ]);
    srv.wait_stderr("connection from", WAIT);
    srv.write(b"hello\n");
    srv.close_stdin();
    let d = srv.wait(WAIT);
    assert_eq!(d.out(), "hello\nafter-eof\n", "{}", d.stderr);
    assert_eq!(d.code, Some(0));
    drop(c);
}

/// listen x stdin EOF x UDP: nothing is sent; datagrams still arrive
/// until -q ends it.
#[test]
fn hc_listen_stdin_eof_udp() {
    let (mut srv, port) = Cat::listen(&["-u", "-q", "1"]);
    let u = udp();
    u.send_to(b"one\n", ("127.0.0.1", port)).unwrap();
    srv.wait_stdout(4, WAIT);
    srv.close_stdin();
    u.send_to(b"two\n", ("127.0.0.1", port)).unwrap();
    let d = srv.wait(WAIT);
    assert_eq!(d.out(), "one\ntwo\n");
    assert_eq!(d.code, Some(0));
}

/// listen x "peer FIN" x UDP: an empty datagram does not end the session.
#[test]
fn hc_listen_peer_fin_udp() {
    let (srv, port) = Cat::listen(&["-u"]);
    let u = udp();
    u.send_to(b"a\n", ("127.0.0.1", port)).unwrap();
    u.send_to(b"", ("127.0.0.1", port)).unwrap();
    u.send_to(b"b\n", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.wait_stdout(4, WAIT), b"a\nb\n");
}

/// listen x peer RST x TLS: exit 1, one line.
#[test]
fn hc_listen_peer_rst_tls() {
    let (srv, port) = Cat::listen(&["--ssl"]);
    let fwd = resetting_forwarder(port, Duration::from_millis(500));
    let _c = Cat::spawn(&["--ssl", "127.0.0.1", &fwd.to_string()]);
    let d = srv.wait(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(
        d.stderr.contains("connection reset by peer"),
        "{}",
        d.stderr
    );
}

/// listen x peer "RST" x UDP: the peer's port is gone, ICMP says so: exit 1.
#[test]
fn hc_listen_peer_rst_udp() {
    let (mut srv, port) = Cat::listen(&["-u"]);
    let u = udp();
    u.send_to(b"hi\n", ("127.0.0.1", port)).unwrap();
    srv.wait_stdout(3, WAIT);
    drop(u);
    srv.write(b"anyone?\n");
    let d = srv.wait(WAIT);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(d.stderr.contains("refused"), "{}", d.stderr);
}

/// --no-shutdown: stdin's EOF sends no FIN.
#[test]
fn no_shutdown_keeps_write_side_open() {
    let (port, h) = server(|mut s| {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let second = s.read(&mut buf);
        // No FIN: the second read timed out instead of returning 0.
        let timed_out = second.is_err();
        s.write_all(b"done\n").unwrap();
        (buf[..n].to_vec(), timed_out)
    });
    let mut c = Cat::spawn(&["--no-shutdown", "127.0.0.1", &port.to_string()]);
    c.write(b"x\n");
    let d = c.finish(WAIT);
    let (got, timed_out) = h.join().unwrap();
    assert_eq!(got, b"x\n");
    assert!(timed_out, "a FIN was sent despite --no-shutdown");
    assert_eq!(d.out(), "done\n");
}

/// UDP x stdin EOF: nothing to send, -q ends the session.
#[test]
fn udp_connect_and_quit_after_eof() {
    let u = udp();
    let port = u.local_addr().unwrap().port();
    let mut c = Cat::spawn(&["-u", "-q", "1", "127.0.0.1", &port.to_string()]);
    c.write(b"ping\n");
    let mut buf = [0u8; 100];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping\n");
    u.send_to(b"pong\n", from).unwrap();
    assert_eq!(c.wait_stdout(5, WAIT), b"pong\n");
    let start = Instant::now();
    let d = c.finish(WAIT);
    assert_eq!(d.code, Some(0));
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// UDP listen: the first peer is served; stdin goes back to it.
#[test]
fn udp_listen_first_peer() {
    let (mut srv, port) = Cat::listen(&["-u"]);
    let u = udp();
    u.send_to(b"hello\n", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.wait_stdout(6, WAIT), b"hello\n");
    srv.write(b"back\n");
    let mut buf = [0u8; 100];
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"back\n");
}

/// UDP listen -k: several peers, each heard, stdin to all.
#[test]
fn udp_listen_several_peers() {
    let (mut srv, port) = Cat::listen(&["-u", "-k"]);
    let a = udp();
    let b = udp();
    a.send_to(b"a\n", ("127.0.0.1", port)).unwrap();
    srv.wait_stdout(2, WAIT);
    b.send_to(b"b\n", ("127.0.0.1", port)).unwrap();
    let out = srv.wait_stdout(4, WAIT);
    assert_eq!(out, b"a\nb\n");
    srv.write(b"all\n");
    let mut buf = [0u8; 100];
    for s in [&a, &b] {
        let (n, _) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"all\n");
    }
}

/// UDP connect to a port nobody listens on: ICMP says refused, exit 1.
#[test]
fn udp_refused() {
    let port = {
        let u = udp();
        u.local_addr().unwrap().port()
    };
    let mut c = Cat::spawn(&["-u", "127.0.0.1", &port.to_string()]);
    c.write(b"x\n");
    let d = c.wait(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("refused"), "{}", d.stderr);
}
