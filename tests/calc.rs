//! `sockeye calc serve` and `sockeye calc` end to end on 127.0.0.1:0: every
//! operation over TCP and UDP, pipelining split and merged arbitrarily,
//! every invalid request of the spec, limits, shutdown, and byte-for-byte
//! interoperability with a client and a server written the way the seed's
//! students write them (Python `struct`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, stderr, stdout};

/// A running `sockeye calc serve`; SIGTERM and reaped on drop.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", extra)
    }

    fn start_on(listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args(["calc", "serve", "--listen", listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server {
            child: Some(child),
            addr,
        }
    }

    fn port(&self) -> String {
        self.addr.to_string()
    }

    /// SIGTERM, then the exit status and everything it logged.
    fn stop(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        terminate(&mut child)
    }
}

fn terminate(child: &mut Child) -> (Option<i32>, String) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    (status.code(), log)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client(args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut child = Command::new(bin())
        .arg("calc")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    if let Some(text) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    child.wait_with_output().expect("client output")
}

/// Request bytes in network order.
fn req(id: u32, op: &[u8; 3], nums: &[i32]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(op);
    v.push(nums.len() as u8);
    for n in nums {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v
}

fn resp(id: u32, result: i32) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&result.to_be_bytes());
    v
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// Reads until EOF (or the 5 s read timeout, which fails the test).
fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("server closes the connection");
    got
}

#[test]
fn one_request_each_way() {
    let server = Server::start(&[]);
    let port = server.port();
    let cases: &[(&[&str], &str)] = &[
        (&["SUM", "1", "2", "3"], "6\n"),
        (&["sum"], "0\n"),
        (&["PRO"], "1\n"),
        (&["PRO", "-4", "5"], "-20\n"),
        (&["MIN", "-5", "7", "2147483647"], "-5\n"),
        (&["MAX", "-2147483648", "-1"], "-1\n"),
        (&["SUM", "2147483647", "1", "-1"], "2147483647\n"),
    ];
    for udp in [false, true] {
        for (args, want) in cases {
            let mut full = vec!["-s", &port];
            if udp {
                full.push("--udp");
            }
            full.extend_from_slice(args);
            let out = client(&full, None);
            assert_eq!(out.status.code(), Some(0), "{full:?}: {}", stderr(&out));
            assert_eq!(stdout(&out), *want, "{full:?}");
        }
    }
    let (code, _) = server.stop();
    assert_eq!(code, Some(0), "SIGTERM is a clean exit");
}

/// Many requests on one connection, pipelined; answers in order; a
/// rejected request ends the connection after every earlier answer.
#[test]
fn pipelined_file_and_a_rejection_in_the_middle() {
    let server = Server::start(&[]);
    let port = server.port();
    let out = client(
        &["-s", &port, "--id", "10"],
        Some("SUM 1 2\nMAX 4 9\n# skip me\nPRO 3 3\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "10 3\n11 9\n12 9\n");

    let out = client(&["-s", &port], Some("SUM 1 2\nMIN\nSUM 5\n"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "1 3\n");
    assert_eq!(
        stderr(&out),
        "sockeye: request 2 (MIN of 0 numbers) rejected: empty (MIN and MAX need at least one number); \
         the server closed the connection without a result\n"
    );
    let (_, log) = server.stop();
    assert!(
        log.contains("rejected request")
            && log.contains("id=2")
            && log.contains("reason=\"empty\""),
        "{log}"
    );
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
}

/// The network may split and merge requests anyhow: one byte at a time,
/// and 2,000 requests in one write, give the same answers in order.
#[test]
fn requests_split_and_merged_arbitrarily() {
    let server = Server::start(&[]);
    let mut s = connect(&server);
    s.set_nodelay(true).expect("nodelay");
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for i in 0..2000u32 {
        let nums: Vec<i32> = (0..(i % 12) as i32).map(|k| k * 3 - 7).collect();
        bytes.extend(req(i, b"SUM", &nums));
        want.extend(resp(i, nums.iter().sum()));
    }
    // The first request dribbles in byte by byte, the rest arrive merged.
    let first = req(99_999, b"MAX", &[1, 5, 3]);
    for b in &first {
        s.write_all(&[*b]).expect("write");
        std::thread::sleep(Duration::from_millis(2));
    }
    s.write_all(&bytes).expect("write");
    let mut got = vec![0u8; 8 + want.len()];
    s.read_exact(&mut got).expect("answers");
    assert_eq!(&got[..8], resp(99_999, 5).as_slice());
    assert_eq!(&got[8..], want.as_slice());
}

#[test]
fn invalid_requests_close_tcp_after_earlier_answers() {
    let server = Server::start(&[]);
    let cases: &[(&[u8; 3], &[i32], &str)] = &[
        (b"AVG", &[1, 2], "unknown-op"),
        (b"sum", &[1], "unknown-op"),
        (b"SUM", &[i32::MAX, 1], "overflow"),
        (b"PRO", &[65_536, 65_536], "overflow"),
        (b"PRO", &[-1, i32::MIN], "overflow"),
        (b"MIN", &[], "empty"),
        (b"MAX", &[], "empty"),
    ];
    for (op, nums, _) in cases {
        let mut s = connect(&server);
        let mut bytes = req(1, b"SUM", &[20, 22]);
        bytes.extend(req(2, op, nums));
        bytes.extend(req(3, b"SUM", &[1]));
        s.write_all(&bytes).expect("write");
        assert_eq!(
            read_to_eof(&mut s),
            resp(1, 42),
            "{:?}",
            String::from_utf8_lossy(*op)
        );
    }
    // Other connections are not affected.
    let mut s = connect(&server);
    s.write_all(&req(5, b"SUM", &[2, 3])).expect("write");
    let mut got = [0u8; 8];
    s.read_exact(&mut got).expect("answer");
    assert_eq!(got.to_vec(), resp(5, 5));
    let (_, log) = server.stop();
    for (_, _, reason) in cases {
        assert!(
            log.contains(&format!("reason=\"{reason}\"")),
            "{reason}: {log}"
        );
    }
}

/// Regression: the server used to close right after a rejected request
/// with the client's later requests unread, and the kernel's reset then
/// destroyed answers still on their way (a client got 512 of 1,000). Now
/// every answer before the rejection arrives, followed by a clean EOF,
/// however much the client sends after it.
#[test]
fn a_rejection_behind_a_long_pipeline_loses_no_earlier_answer() {
    let server = Server::start(&[]);
    // 20,000 answers (160 KB) outgrow the socket buffers while the client
    // is not yet reading, so some are still queued at the server when it
    // reaches the rejection.
    let before = 20_000u32;
    for after in [0u32, 50_000] {
        let mut s = connect(&server);
        let mut bytes: Vec<u8> = (0..before)
            .flat_map(|i| req(i, b"SUM", &[i as i32, 7]))
            .collect();
        bytes.extend(req(before, b"MAX", &[]));
        bytes.extend((0..after).flat_map(|i| req(before + 1 + i, b"SUM", &[1])));
        let mut writer = s.try_clone().expect("clone");
        // Send from another thread: the server stops reading at the
        // rejection, and a blocking write of everything could stall here.
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        });
        std::thread::sleep(Duration::from_millis(300));
        let got = read_to_eof(&mut s);
        let want: Vec<u8> = (0..before).flat_map(|i| resp(i, i as i32 + 7)).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{after} requests after the rejection"
        );
        assert_eq!(got, want, "{after} requests after the rejection");
        sender.join().expect("sender");
    }
    server.stop();
}

/// A flood of invalid requests is logged at a bounded rate, with a count
/// of what was left out, and the server keeps answering.
#[test]
fn rejection_log_is_rate_limited() {
    let server = Server::start(&[]);
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..500u32 {
        udp.send_to(&req(i, b"MIN", &[]), server.addr)
            .expect("send");
    }
    std::thread::sleep(Duration::from_millis(1_100));
    // The next rejection opens a new second and reports the count.
    udp.send_to(&req(9_999, b"MIN", &[]), server.addr)
        .expect("send");
    let mut s = connect(&server);
    s.write_all(&req(1, b"SUM", &[1, 2])).expect("write");
    let mut got = [0u8; 8];
    s.read_exact(&mut got).expect("still answering");
    assert_eq!(got.to_vec(), resp(1, 3));
    let (_, log) = server.stop();
    let logged = log.matches("rejected request:").count();
    assert!((20..=21).contains(&logged), "{logged} lines logged:\n{log}");
    assert!(
        log.contains("more rejected requests were not logged"),
        "{log}"
    );
}

#[test]
fn invalid_datagrams_get_no_answer() {
    let server = Server::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut long = req(4, b"SUM", &[1, 2]);
    long.push(0);
    let bad: Vec<Vec<u8>> = vec![
        req(1, b"MIN", &[]),
        req(2, b"XYZ", &[1]),
        req(3, b"SUM", &[i32::MAX, i32::MAX]),
        long,                                   // one byte too many
        req(5, b"SUM", &[1, 2])[..11].to_vec(), // truncated
        vec![0, 0, 0],                          // shorter than a header
    ];
    let mut buf = [0u8; 64];
    for d in &bad {
        sock.send(d).expect("send");
        assert!(
            sock.recv(&mut buf).is_err(),
            "answer to invalid datagram {d:?}"
        );
    }
    // A valid one after all that is answered.
    sock.send(&req(9, b"MAX", &[3, 8])).expect("send");
    let n = sock.recv(&mut buf).expect("answer");
    assert_eq!(buf[..n].to_vec(), resp(9, 8));
    let (_, log) = server.stop();
    assert!(log.contains("reason=\"bad-length\""), "{log}");
    assert!(log.contains("reason=\"empty\""), "{log}");
}

/// Bursts of datagrams from several sockets at once, invalid ones among
/// them (the server receives and answers them in batches): every valid one
/// is answered exactly once with its own ID and result, including one of
/// the longest valid length, and no invalid one is answered, including one
/// longer than any request. Each socket waits for a burst's answers before
/// sending the next, so nothing overflows the receive queues.
#[test]
fn udp_bursts_from_many_sockets_are_answered_exactly_once() {
    const SOCKETS: u32 = 5;
    const BURSTS: u32 = 10;
    const VALID_PER_BURST: u32 = 10;
    let server = Server::start(&[]);
    // First, alone (the rejection log is rate-limited): one datagram longer
    // than any request is rejected with its full length.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut long = req(1 << 31, b"SUM", &[1, 2]);
    long.resize(1_500, 0);
    sock.send(&long).expect("send");
    sock.send(&req(1, b"SUM", &[1, 2])).expect("send");
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("answer");
    assert_eq!(buf[..n].to_vec(), resp(1, 3));
    let longest: Vec<i32> = (0..255).collect(); // 8 + 4 * 255 bytes
    let senders: Vec<_> = (0..SOCKETS)
        .map(|k| {
            let addr = server.addr;
            let longest = longest.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
                sock.connect(addr).expect("connect");
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                let mut want = std::collections::BTreeMap::new();
                let mut got: Vec<(u32, i32)> = Vec::new();
                let mut buf = [0u8; 64];
                for b in 0..BURSTS {
                    for i in 0..VALID_PER_BURST {
                        let id = k << 16 | b << 8 | i;
                        let (d, result) = match i % 5 {
                            0 => (req(id, b"SUM", &[1, 2, id as i32]), 3 + id as i32),
                            1 => (req(id, b"PRO", &[-3, 7]), -21),
                            2 => (req(id, b"MIN", &[4, -9, 2]), -9),
                            3 => (req(id, b"MAX", &[4, -9, 2]), 4),
                            _ => (req(id, b"SUM", &longest), 255 * 254 / 2),
                        };
                        want.insert(id, result);
                        sock.send(&d).expect("send");
                        // Invalid ones (IDs with the top bit set) in between.
                        let bad = 1 << 31 | id;
                        let invalid = match i {
                            2 => Some(req(bad, b"MIN", &[])),
                            4 => Some(req(bad, b"XYZ", &[1])),
                            5 => Some(req(bad, b"SUM", &[i32::MAX, 1])),
                            6 => {
                                let mut d = req(bad, b"SUM", &[1, 2]);
                                d.push(0);
                                Some(d)
                            }
                            7 => {
                                let mut d = req(bad, b"SUM", &[1, 2]);
                                d.resize(1_500, 0); // longer than any request
                                Some(d)
                            }
                            8 => Some(vec![0x80, 0, 0]),
                            _ => None,
                        };
                        if let Some(d) = invalid {
                            sock.send(&d).expect("send");
                        }
                    }
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let target = ((b + 1) * VALID_PER_BURST) as usize;
                    while got.len() < target && Instant::now() < deadline {
                        if let Ok(n) = sock.recv(&mut buf) {
                            assert_eq!(n, 8, "answer of {n} bytes");
                            let id = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                            let r = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                            got.push((id, r));
                        }
                    }
                }
                // Anything late (a duplicate, an answer to an invalid one).
                while let Ok(n) = sock.recv(&mut buf) {
                    assert_eq!(n, 8, "answer of {n} bytes");
                    let id = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    let r = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    got.push((id, r));
                }
                (want, got)
            })
        })
        .collect();
    let mut answered = 0;
    for (k, sender) in senders.into_iter().enumerate() {
        let (want, got) = sender.join().expect("sender");
        let mut seen = std::collections::BTreeSet::new();
        for (id, r) in &got {
            assert!(
                id >> 31 == 0,
                "socket {k}: invalid request {id:#x} answered"
            );
            assert!(
                seen.insert(*id),
                "socket {k}: request {id:#x} answered twice"
            );
            assert_eq!(want.get(id), Some(r), "socket {k}: answer to {id:#x}");
        }
        assert_eq!(seen.len(), want.len(), "socket {k}: answers missing");
        answered += seen.len();
    }
    assert_eq!(answered, (SOCKETS * BURSTS * VALID_PER_BURST) as usize);
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        sock.recv(&mut buf).is_err(),
        "the long datagram was answered"
    );
    let (_, log) = server.stop();
    assert!(log.contains("1500 bytes, the header says 16"), "{log}");
}

/// A request cut short by the peer's close is dropped (and logged); one
/// that stops arriving is cut off by the request timeout, while another
/// connection is served meanwhile.
#[test]
fn truncated_and_stalled_requests() {
    let server = Server::start(&["--request-timeout", "500ms"]);
    let mut s = connect(&server);
    let frame = req(1, b"SUM", &[1, 2, 3]);
    s.write_all(&frame[..9]).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert_eq!(read_to_eof(&mut s), Vec::<u8>::new());

    let mut stalled = connect(&server);
    stalled.write_all(&frame[..10]).expect("write");
    let started = Instant::now();
    let mut other = connect(&server);
    other.write_all(&req(2, b"SUM", &[4])).expect("write");
    let mut got = [0u8; 8];
    other
        .read_exact(&mut got)
        .expect("served while the other stalls");
    assert_eq!(got.to_vec(), resp(2, 4));
    assert_eq!(read_to_eof(&mut stalled), Vec::<u8>::new());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let (_, log) = server.stop();
    assert!(log.contains("in the middle of a request"), "{log}");
    assert!(log.contains("took longer than"), "{log}");
}

/// A client that sends and never reads: the server stops reading from it
/// (memory stays bounded), drops it after the write timeout, and serves
/// others all along.
#[test]
fn a_client_that_never_reads() {
    let server = Server::start(&["--write-timeout", "1s"]);
    let mut hog = connect(&server);
    hog.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let batch: Vec<u8> = (0..4096u32).flat_map(|i| req(i, b"SUM", &[1])).collect();
    // Write until the pipes are full both ways (bounded: at most 64 MiB).
    let mut written = 0usize;
    let started = Instant::now();
    while written < 64 << 20 && started.elapsed() < Duration::from_secs(10) {
        match hog.write(&batch) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(
        written < 64 << 20,
        "the server kept reading from a client that never reads"
    );
    let mut other = connect(&server);
    other.write_all(&req(7, b"MIN", &[3, -3])).expect("write");
    let mut got = [0u8; 8];
    other.read_exact(&mut got).expect("answer");
    assert_eq!(got.to_vec(), resp(7, -3));
    let (_, log) = server.stop();
    assert!(log.contains("has not read its answers"), "{log}");
}

/// Past --max-connections, a client waits in the backlog until a slot frees.
#[test]
fn connection_limit() {
    let server = Server::start(&["--max-connections", "2"]);
    let a = connect(&server);
    let b = connect(&server);
    // Both slots are taken (each connection is accepted once it exists).
    std::thread::sleep(Duration::from_millis(200));
    let mut c = connect(&server);
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    c.write_all(&req(1, b"SUM", &[1])).expect("write");
    let mut got = [0u8; 8];
    assert!(
        c.read_exact(&mut got).is_err(),
        "third connection served past the limit"
    );
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.read_exact(&mut got).expect("served once a slot frees");
    assert_eq!(got.to_vec(), resp(1, 1));
    drop(b);
}

#[test]
fn little_endian_both_ways() {
    let server = Server::start(&["--little-endian"]);
    let port = server.port();
    for udp in [false, true] {
        let mut args = vec!["-s", port.as_str(), "--little-endian"];
        if udp {
            args.push("--udp");
        }
        args.extend(["SUM", "1", "-2", "300"]);
        let out = client(&args, None);
        assert_eq!(stdout(&out), "299\n", "{}", stderr(&out));
    }
    // Raw bytes: ID 1, "MAX", N 2, 5, 6 in little-endian.
    let mut s = connect(&server);
    s.write_all(&[1, 0, 0, 0, b'M', b'A', b'X', 2, 5, 0, 0, 0, 6, 0, 0, 0])
        .expect("write");
    let mut got = [0u8; 8];
    s.read_exact(&mut got).expect("answer");
    assert_eq!(got, [1, 0, 0, 0, 6, 0, 0, 0]);
}

#[test]
fn client_errors_are_one_line() {
    let server = Server::start(&["--udp-only"]);
    let port = server.port();
    // Nothing listens on TCP.
    let out = client(&["-s", &port, "SUM", "1"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("sockeye: cannot connect to {port}:")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Refused locally, nothing sent: exit 2.
    for (args, needle) in [
        (
            vec!["-s", port.as_str(), "AVG", "1"],
            "unknown operation \"AVG\"",
        ),
        (
            vec!["-s", port.as_str(), "SUM", "1", "2147483648"],
            "not a 32-bit signed integer",
        ),
        (vec!["-s", "nowhere", "SUM", "1"], "expected HOST:PORT"),
    ] {
        let out = client(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let many: Vec<String> = std::iter::repeat_n("1".to_string(), 256).collect();
    let mut args = vec!["-s".to_string(), port.clone(), "SUM".into()];
    args.extend(many);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = client(&refs, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at most 255"), "{}", stderr(&out));
}

/// SIGTERM: stop accepting, answer what already arrived, exit 0.
#[test]
fn sigterm_answers_what_arrived_then_exits_0() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let mut s = connect(&server);
    let bytes: Vec<u8> = (0..500u32)
        .flat_map(|i| req(i, b"SUM", &[i as i32, 1]))
        .collect();
    s.write_all(&bytes).expect("write");
    std::thread::sleep(Duration::from_millis(100));
    let (code, _) = server.stop();
    assert_eq!(code, Some(0));
    let got = read_to_eof(&mut s);
    let want: Vec<u8> = (0..500u32).flat_map(|i| resp(i, i as i32 + 1)).collect();
    assert_eq!(got, want);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

/// The seed's students' Python: `tests/support/calc_student.py`.
fn student() -> String {
    format!(
        "{}/tests/support/calc_student.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A student's client (Python `struct.pack`, network order, and native
/// order when the student forgot the `!`) against our server.
#[test]
fn a_students_client_against_our_server() {
    for (little, extra) in [(false, vec![]), (true, vec!["--little-endian"])] {
        let server = Server::start(&extra);
        let port = server.addr.port().to_string();
        for udp in [false, true] {
            let mut args = vec![
                student(),
                "client".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.clone(),
            ];
            if udp {
                args.push("--udp".into());
            }
            if little {
                args.push("--little-endian".into());
            }
            args.extend(["42", "SUM", "7", "-3", "100000"].map(String::from));
            let out = Command::new(python())
                .args(&args)
                .output()
                .expect("python3");
            assert_eq!(
                stdout(&out),
                "42 100004\n",
                "udp={udp} little={little}: {}",
                stderr(&out)
            );
        }
        // Pipelined, with an invalid request in the middle: the answers
        // before it, then the server closes.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("reqs");
        std::fs::write(&file, "1 MAX 3 9 4\n2 PRO 6 7\n3 MIN\n4 SUM 1\n").expect("write");
        let mut args = vec![
            student(),
            "client".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.clone(),
        ];
        if little {
            args.push("--little-endian".into());
        }
        args.extend(["--pipeline".to_string(), file.display().to_string()]);
        let out = Command::new(python())
            .args(&args)
            .output()
            .expect("python3");
        assert_eq!(
            stdout(&out),
            "1 9\n2 42\nclosed\n",
            "little={little}: {}",
            stderr(&out)
        );
    }
}

/// Our client against a student's threaded server: same bytes on the wire
/// as the student's own client would send, both byte orders, TCP and UDP.
#[test]
fn our_client_against_a_students_server() {
    for little in [false, true] {
        let mut cmd = Command::new(python());
        cmd.args([
            student().as_str(),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--udp-also",
            "--seconds",
            "60",
        ]);
        if little {
            cmd.arg("--little-endian");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("student server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready");
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_string();
        let server = format!("127.0.0.1:{port}");
        let order = if little {
            vec!["--little-endian"]
        } else {
            vec![]
        };
        let mut args = vec!["-s", server.as_str(), "--id", "258"];
        args.extend(order.iter().copied());
        args.extend(["MIN", "-7", "300"]);
        let out = client(&args, None);
        assert_eq!(stdout(&out), "-7\n", "little={little}: {}", stderr(&out));
        let mut args = vec!["-s", server.as_str(), "--udp", "--id", "259"];
        args.extend(order.iter().copied());
        args.extend(["PRO", "-2", "21"]);
        let out = client(&args, None);
        assert_eq!(stdout(&out), "-42\n", "little={little}: {}", stderr(&out));
        let mut args = vec!["-s", server.as_str(), "--id", "260"];
        args.extend(order.iter().copied());
        let out = client(&args, Some("SUM 1 2\nMAX 5 -5\n"));
        assert_eq!(
            stdout(&out),
            "260 3\n261 5\n",
            "little={little}: {}",
            stderr(&out)
        );

        let (_, log) = terminate(&mut child);
        let got: Vec<&str> = log.lines().filter_map(|l| l.strip_prefix("got ")).collect();
        // What a student's struct.pack builds for the same requests.
        let pack = |id: u32, op: &[u8; 3], nums: &[i32]| -> String {
            let mut v: Vec<u8> = if little {
                id.to_le_bytes().to_vec()
            } else {
                id.to_be_bytes().to_vec()
            };
            v.extend_from_slice(op);
            v.push(nums.len() as u8);
            for n in nums {
                v.extend_from_slice(&if little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            v.iter().map(|b| format!("{b:02x}")).collect()
        };
        let want = vec![
            pack(258, b"MIN", &[-7, 300]),
            pack(259, b"PRO", &[-2, 21]),
            pack(260, b"SUM", &[1, 2]),
            pack(261, b"MAX", &[5, -5]),
        ];
        assert_eq!(got, want, "little={little}: {log}");
    }
}

/// A connection to the server from `source` (another loopback address).
fn connect_from(server: &Server, source: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().expect("source");
    s.bind(&from.into()).expect("bind the source address");
    s.connect(&server.addr.into()).expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// Issue 17: one host holding every slot with idle connections locked
/// every other client out. Now a full server reclaims the longest-idle
/// connection of the address holding the most for a newcomer from another.
#[test]
fn one_address_holding_every_slot_cannot_lock_another_out() {
    let server = Server::start(&["--max-connections", "8"]);
    let hog: Vec<TcpStream> = (0..8).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut other = connect_from(&server, "127.0.0.2");
    other.write_all(&req(7, b"SUM", &[40, 2])).expect("write");
    let mut got = [0u8; 8];
    other
        .read_exact(&mut got)
        .expect("another address is served while the first holds every slot idle");
    assert_eq!(got.to_vec(), resp(7, 42));
    // Exactly one of the idle connections gave up its slot.
    let mut closed = 0;
    for mut s in hog {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1);
    server.stop();
}

/// Past --max-per-address, an address's new connections are closed at
/// once while another address is still served.
#[test]
fn connections_per_address_are_capped() {
    let server = Server::start(&["--max-per-address", "3"]);
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&server)).collect();
    let mut fourth = connect(&server);
    let mut b = [0u8; 1];
    assert!(
        matches!(fourth.read(&mut b), Ok(0) | Err(_)),
        "the fourth connection from one address was not closed"
    );
    let mut other = connect_from(&server, "127.0.0.2");
    other.write_all(&req(1, b"MAX", &[1, 5])).expect("write");
    let mut got = [0u8; 8];
    other.read_exact(&mut got).expect("another address served");
    assert_eq!(got.to_vec(), resp(1, 5));
    drop(held);
    let (_, log) = server.stop();
    assert!(log.contains("--max-per-address"), "{log}");
}

/// Issue 17: a rejected op's raw bytes (newline, ESC) reached the log.
#[test]
fn peer_bytes_are_escaped_in_the_log() {
    let server = Server::start(&[]);
    let mut s = connect(&server);
    s.write_all(&req(5, b"\n\x1b[", &[1])).expect("write");
    let _ = read_to_eof(&mut s);
    let (_, log) = server.stop();
    assert!(!log.contains('\x1b'), "raw ESC in the log: {log:?}");
    let line = log
        .lines()
        .find(|l| l.contains("rejected request"))
        .unwrap_or_else(|| panic!("no rejection logged: {log:?}"));
    assert!(line.contains(r"op=\n\x1b["), "{line:?}");
}

/// Issue 17: "peer closed in the middle of a request" and "request took
/// longer" lines were not rate-limited (5,000 lines in 0.3 s).
#[test]
fn truncated_and_slow_request_logs_are_rate_limited() {
    let server = Server::start(&["--request-timeout", "200ms"]);
    for _ in 0..100 {
        let mut s = connect(&server);
        s.write_all(&[0, 0, 0, 1, b'S']).expect("write");
        // Wait until the server has the partial request, then hang up.
        std::thread::sleep(Duration::from_millis(2));
    }
    let slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(&[0, 0, 0, 1, b'S']).expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    drop(slow);
    let (_, log) = server.stop();
    let truncated = log.matches("peer closed in the middle").count();
    let slow = log.matches("took longer than").count();
    assert!((1..=21).contains(&truncated), "{truncated} lines:\n{log}");
    assert!((1..=21).contains(&slow), "{slow} lines:\n{log}");
}

/// `--listen PORT` alone serves on every IPv4 address of that port.
#[test]
fn a_bare_listen_port_means_every_ipv4_address() {
    let server = Server::start_on("0", &["--tcp-only"]);
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    assert!(server.addr.is_ipv4(), "{}", server.addr);
    assert_ne!(server.addr.port(), 0);
    let (status, log) = server.stop();
    assert_eq!(status, Some(0), "{log}");
}

/// A request file that cannot be read is named, and is bad usage (2).
#[test]
fn an_unreadable_request_file_is_named_and_bad_usage() {
    let out = client(
        &["-s", "127.0.0.1:9", "--file", "/nonexistent/requests"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/requests"),
        "{}",
        stderr(&out)
    );
}
