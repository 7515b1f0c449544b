//! The broker and chat hub: fan-out to the others only, clients that
//! never read (dropped, and costing the readers nothing), many clients,
//! chat names and announcements.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::proc::{self, Cat, WAIT, connect, read_line, wait_for};

#[test]
fn broker_fans_out_to_the_others_only() {
    let (srv, port) = Cat::listen(&["--broker"]);
    let mut a = connect(port);
    let mut b = connect(port);
    let mut c = connect(port);
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == 3).then_some(())
    })
    .expect("three clients");
    a.write_all(b"from a\n").unwrap();
    assert_eq!(read_line(&mut b), "from a\n");
    assert_eq!(read_line(&mut c), "from a\n");
    b.write_all(b"from b\n").unwrap();
    // a's first line is b's: its own was not echoed.
    assert_eq!(read_line(&mut a), "from b\n");
    assert_eq!(read_line(&mut c), "from b\n");
}

/// A client that never reads is dropped when its queue overflows; the
/// others get every byte, and the flood is held up by it for no longer
/// than the broker takes to see it stopped (100 ms; it was 500 ms, and
/// this test's longest gap then measured 0.5 s).
#[test]
fn broker_slow_reader_is_dropped_and_stalls_nobody() {
    let (srv, port) = Cat::listen(&["--broker", "--max-queue", "262144"]);
    let slow = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        TcpStream::from(s)
    };
    let mut reader = connect(port);
    let mut sender = connect(port);
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == 3).then_some(())
    })
    .expect("three clients");
    const TOTAL: usize = 32 << 20;
    let chunk = vec![b'z'; 64 * 1024];
    let send = std::thread::spawn(move || {
        for _ in 0..TOTAL / chunk.len() {
            sender.write_all(&chunk).unwrap();
        }
        sender
    });
    let start = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 20];
    let mut last = Instant::now();
    let mut longest_gap = Duration::ZERO;
    while got < TOTAL {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "reader cut off after {got} bytes: {}", srv.stderr());
        assert!(buf[..n].iter().all(|&b| b == b'z'));
        if got > 0 {
            longest_gap = longest_gap.max(last.elapsed());
        }
        last = Instant::now();
        got += n;
    }
    assert!(start.elapsed() < Duration::from_secs(30));
    // Bound with room for a busy machine, under the old 500 ms stall.
    assert!(
        longest_gap < Duration::from_millis(400),
        "the reader waited {longest_gap:?} for the next bytes"
    );
    let _sender = send.join().unwrap();
    // 32 MiB went through; the broker kept what its queues allow, not
    // the flood (measured: about 13 MiB, most of it the binary).
    let rss = proc::rss_kib(srv.pid());
    assert!(rss < 24 * 1024, "broker RSS {rss} KiB after a 32 MiB flood");
    srv.wait_stderr("stopped reading", WAIT)
        .expect("slow-client notice");
    drop(slow);
}

/// The brief's case: 100 clients that never read are attached; the ones
/// that read still get every message, and the stuck ones are dropped.
#[test]
fn broker_hundred_non_readers_do_not_cost_the_readers_a_byte() {
    let (srv, port) = Cat::listen(&["--broker", "--max-queue", "65536"]);
    let stuck: Vec<TcpStream> = (0..100)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                .unwrap();
            TcpStream::from(s)
        })
        .collect();
    let mut readers: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    let mut sender = connect(port);
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == 104).then_some(())
    })
    .expect("104 clients");
    const MSGS: usize = 512;
    const LEN: usize = 8192;
    // Message i is LEN bytes of i % 251: a reader checks every byte's place,
    // so bytes written straight and bytes queued must keep their order.
    let send = std::thread::spawn(move || {
        for i in 0..MSGS {
            sender.write_all(&[(i % 251) as u8; LEN]).unwrap();
        }
        sender
    });
    let handles: Vec<_> = readers
        .drain(..)
        .map(|mut r| {
            std::thread::spawn(move || {
                let mut got = 0;
                let mut buf = vec![0u8; 1 << 16];
                while got < MSGS * LEN {
                    let n = r.read(&mut buf).unwrap();
                    assert!(n > 0, "reader cut off after {got} bytes");
                    for (k, &b) in buf[..n].iter().enumerate() {
                        let at = got + k;
                        assert_eq!(b, ((at / LEN) % 251) as u8, "byte {at} out of order");
                    }
                    got += n;
                }
                got
            })
        })
        .collect();
    for h in handles {
        let got = h.join();
        assert!(got.is_ok(), "a reader was cut off: {}", srv.stderr());
    }
    let _sender = send.join().unwrap();
    wait_for(WAIT, || {
        (srv.stderr().matches("stopped reading").count() == 100).then_some(())
    })
    .unwrap_or_else(|| panic!("100 slow-client notices expected: {}", srv.stderr()));
    drop(stuck);
}

/// One message reaches every other client of a few hundred, promptly.
#[test]
fn broker_fan_out_to_many_clients() {
    // Past 2,048 recipients the broker shares a fan-out between two
    // threads: 2,100 clients take that path.
    const N: usize = 2100;
    // 2,100 sockets here too: more than a stock soft limit of 1,024.
    let limit = sockeye::sys::raise_nofile_limit();
    assert!(
        limit > N as u64 + 64,
        "open-file limit {limit}: too low for {N} clients"
    );
    let (srv, port) = Cat::listen(&["--broker"]);
    let mut clients: Vec<TcpStream> = (0..N).map(|_| connect(port)).collect();
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == N).then_some(())
    })
    .expect("every client accepted");
    let start = Instant::now();
    for line in ["one\n", "two\n", "three\n"] {
        clients[0].write_all(line.as_bytes()).unwrap();
        // Apart, so that each line is a fan-out of its own.
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in clients.iter_mut().skip(1) {
        assert_eq!(read_line(c), "one\n");
        assert_eq!(read_line(c), "two\n");
        assert_eq!(read_line(c), "three\n");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The sender got none of its own lines: the next it reads is another's.
    clients[1].write_all(b"reply\n").unwrap();
    assert_eq!(read_line(&mut clients[0]), "reply\n");
}

/// The `<userN>` of an "<announce> ADDR is connected as <userN>." line.
fn chat_name(announce: &str) -> String {
    announce
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_string()
}

#[test]
fn chat_names_clients_and_announces() {
    let (_srv, port) = Cat::listen(&["--chat"]);
    let mut a = connect(port);
    assert_eq!(read_line(&mut a), "<announce> already connected: nobody.\n");
    let mut b = connect(port);
    let hello_b = read_line(&mut b);
    assert!(
        hello_b.starts_with("<announce> already connected: 127.0.0.1:"),
        "{hello_b}"
    );
    let joined = read_line(&mut a);
    assert!(
        joined.starts_with("<announce> 127.0.0.1 is connected as <user"),
        "{joined}"
    );
    let b_name = chat_name(&joined);
    b.write_all(b"hi all\n").unwrap();
    assert_eq!(read_line(&mut a), format!("{b_name} hi all\n"));
    drop(b);
    assert_eq!(
        read_line(&mut a),
        format!("<announce> {b_name} is disconnected.\n")
    );
}

/// The listener's own stdin takes part in a chat as `<user0>`, as ncat's:
/// each line to every client, a last line without its newline at stdin's
/// EOF, after which the clients still talk (no FIN); nothing reaches
/// stdout.
#[test]
fn chat_stdin_speaks_as_user0() {
    let (mut srv, port) = Cat::listen(&["--chat"]);
    let mut a = connect(port);
    assert_eq!(read_line(&mut a), "<announce> already connected: nobody.\n");
    let mut b = connect(port);
    read_line(&mut b);
    let joined = read_line(&mut a);
    let b_name = chat_name(&joined);
    srv.write(b"from stdin\nno newline");
    assert_eq!(read_line(&mut a), "<user0> from stdin\n");
    assert_eq!(read_line(&mut b), "<user0> from stdin\n");
    srv.close_stdin();
    assert_eq!(read_line(&mut a), "<user0> no newline\n");
    assert_eq!(read_line(&mut b), "<user0> no newline\n");
    b.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut a), format!("{b_name} still here\n"));
    assert!(srv.stdout().is_empty());
}
