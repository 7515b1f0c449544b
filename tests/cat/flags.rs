//! ncat's flags: `-k` with stdio, large transfers, `-z`, `-i`, `-q`, `-d`,
//! `-o`/`-x`, `--send-only`/`--recv-only`, `--allow`/`--deny`, `-m`, `-U`,
//! `-s`/`-p`, IPv6.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::proc::{Cat, WAIT, connect, read_all, read_line, wait_for};
use super::{closed_port, free_port, server};

#[test]
fn keep_open_stdio_fans_stdin_out_and_collects_clients() {
    let (mut srv, port) = Cat::listen(&["-k"]);
    let mut a = connect(port);
    let mut b = connect(port);
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == 2).then_some(())
    })
    .expect("two clients");
    srv.write(b"to all\n");
    assert_eq!(read_line(&mut a), "to all\n");
    assert_eq!(read_line(&mut b), "to all\n");
    a.write_all(b"from a\n").unwrap();
    assert_eq!(srv.wait_stdout(7, WAIT), b"from a\n");
}

/// A large transfer both ways through pipes (the spliced path) arrives
/// byte for byte.
#[test]
fn large_transfer_is_exact_both_ways() {
    let data: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // Client -> listener.
    let (srv, port) = Cat::listen(&["--recv-only"]);
    let mut c = Cat::spawn(&["--send-only", "127.0.0.1", &port.to_string()]);
    let feed = data.clone();
    let writer = std::thread::spawn(move || {
        c.write(&feed);
        c.finish(WAIT)
    });
    let s = srv.wait(Duration::from_secs(60));
    let c = writer.join().unwrap();
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert!(
        s.stdout == data,
        "listener got {} bytes, not the same",
        s.stdout.len()
    );
    // Listener -> client; the client's stdin ends once every byte arrived.
    let (mut srv, port) = Cat::listen(&[]);
    let c = Cat::spawn(&["127.0.0.1", &port.to_string()]);
    srv.wait_stderr("connection from", WAIT).expect("accepted");
    srv.write(&data);
    srv.close_stdin();
    c.wait_stdout(data.len(), Duration::from_secs(60));
    let got = c.finish(Duration::from_secs(60));
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert!(
        got.stdout == data,
        "client got {} bytes, not the same",
        got.stdout.len()
    );
}

/// The default path both ways, with the listener's standard input at EOF
/// from the start (a background job: `sockeye cat -l PORT > file &`): its
/// FIN reaches the client first, and the client still sends every byte of
/// its standard input, spliced or through the buffered path (`-o` taps the
/// bytes, so it cannot splice). As ncat 7.9x: a FIN ends only what the
/// peer sends.
#[test]
fn a_peer_fin_does_not_cut_what_stdin_still_sends() {
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let tap = tempfile::NamedTempFile::new().unwrap();
    let tap = tap.path().to_str().unwrap().to_string();
    for extra in [&[][..], &["-o", tap.as_str()][..]] {
        let (mut srv, port) = Cat::listen(&[]);
        srv.close_stdin();
        let port = port.to_string();
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["127.0.0.1", port.as_str()]);
        let mut c = Cat::spawn(&args);
        // The listener's FIN arrives before most of the bytes are sent.
        srv.wait_stderr("connection from", WAIT).expect("accepted");
        let feed = data.clone();
        let writer = std::thread::spawn(move || {
            c.write(&feed);
            c.finish(Duration::from_secs(60))
        });
        let s = srv.wait(Duration::from_secs(60));
        let c = writer.join().unwrap();
        assert_eq!(c.code, Some(0), "{extra:?}: {}", c.stderr);
        assert_eq!(s.code, Some(0), "{extra:?}: {}", s.stderr);
        assert!(
            s.stdout == data,
            "{extra:?}: the listener got {} of {} bytes",
            s.stdout.len(),
            data.len()
        );
    }
}

/// Runs `sockeye cat 127.0.0.1 PORT` with the given stdin and stdout
/// against a server that reads everything, then answers `reply` and
/// closes; returns the exit code and what the server got.
fn run_with_stdio(stdin: Stdio, stdout: Stdio, reply: Vec<u8>) -> (Option<i32>, Vec<u8>) {
    let (port, h) = server(move |mut s| {
        let got = read_all(&mut s);
        s.write_all(&reply).unwrap();
        got
    });
    let mut child = Command::new(super::proc::bin())
        .args(["cat", "127.0.0.1", &port.to_string()])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let code = wait_for(Duration::from_secs(60), || child.try_wait().unwrap())
        .map(|st| st.code())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("sockeye cat did not end");
        });
    (code, h.join().unwrap())
}

/// The default path with stdio that is not a pipe: a file as stdin
/// (sendfile), a file opened for appending and a truncated file as stdout
/// (written by hand, spliced through a pipe), /dev/null as stdin (its EOF
/// at once), and a stdout whose reader is gone (the socket is still read
/// to the peer's FIN, exit 0, as on the buffered path).
#[test]
fn default_path_with_files_dev_null_and_a_closed_stdout() {
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let reply: Vec<u8> = data.iter().rev().copied().take(3 << 20).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, &data).unwrap();
    // stdin: a file read from an offset (what the shell left); stdout: `>>`.
    let out = dir.path().join("out");
    std::fs::write(&out, b"kept\n").unwrap();
    let mut f = std::fs::File::open(&input).unwrap();
    f.seek(SeekFrom::Start(5)).unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let (code, got) = run_with_stdio(f.into(), append.into(), reply.clone());
    assert_eq!(code, Some(0));
    assert!(
        got == data[5..],
        "server got {} bytes, not the same",
        got.len()
    );
    let mut want = b"kept\n".to_vec();
    want.extend_from_slice(&reply);
    assert!(
        std::fs::read(&out).unwrap() == want,
        "appended output differs"
    );
    // stdin: /dev/null; stdout: a truncated file.
    let out2 = dir.path().join("out2");
    let file = std::fs::File::create(&out2).unwrap();
    let (code, got) = run_with_stdio(Stdio::null(), file.into(), reply.clone());
    assert_eq!(code, Some(0));
    assert!(got.is_empty());
    assert!(
        std::fs::read(&out2).unwrap() == reply,
        "file output differs"
    );
    // stdout: a pipe nobody reads any more.
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    let (code, got) = run_with_stdio(Stdio::null(), w.into(), reply);
    assert_eq!(code, Some(0));
    assert!(got.is_empty());
}

#[test]
fn zero_io_ports_and_ranges() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (
        l1.local_addr().unwrap().port(),
        l2.local_addr().unwrap().port(),
    );
    let (_held, closed) = closed_port();
    let list = format!("{p1},{closed},{p2}");
    let d = Cat::spawn(&["-z", "127.0.0.1", &list]).finish(WAIT);
    assert_eq!(d.code, Some(0));
    let mut want = vec![
        format!("127.0.0.1 {p1} open"),
        format!("127.0.0.1 {p2} open"),
    ];
    want.sort();
    let mut got: Vec<String> = d.out().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, want);
    let d = Cat::spawn(&["-z", "127.0.0.1", &closed.to_string()]).finish(WAIT);
    assert_eq!(d.code, Some(1));
    let d = Cat::spawn(&["-z", "127.0.0.1", &p1.to_string()]).finish(WAIT);
    assert_eq!(d.code, Some(0));
    assert_eq!(d.out(), "");
    let range = format!("{p1}-{p1}");
    let d = Cat::spawn(&["-z", "127.0.0.1", &range]).finish(WAIT);
    assert_eq!(d.code, Some(0));
}

#[test]
fn idle_timeout_ends_a_silent_session() {
    let (port, _h) = server(|s| {
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let c = Cat::spawn(&["-i", "300ms", "127.0.0.1", &port.to_string()]);
    let start = Instant::now();
    let d = c.wait(WAIT); // stdin open and silent
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("idle timeout"), "{}", d.stderr);
}

#[test]
fn quit_after_eof() {
    let (port, _h) = server(|s| {
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let start = Instant::now();
    let d = Cat::spawn(&["-q", "0.3", "127.0.0.1", &port.to_string()]).finish(WAIT);
    assert_eq!(d.code, Some(0));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn delay_between_reads() {
    let (port, h) = server(|mut s| {
        let start = Instant::now();
        let got = read_all(&mut s);
        (got, start.elapsed())
    });
    let mut c = Cat::spawn(&["-d", "300ms", "127.0.0.1", &port.to_string()]);
    c.write(b"a");
    std::thread::sleep(Duration::from_millis(50));
    c.write(b"b");
    c.finish(WAIT);
    let (got, took) = h.join().unwrap();
    assert_eq!(got, b"ab");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[test]
fn output_and_hex_dump_files() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let hex = dir.path().join("hex");
    let (port, _h) = server(|mut s| {
        let _ = read_all(&mut s);
        s.write_all(b"Reply!\n").unwrap();
    });
    let mut c = Cat::spawn(&[
        "-o",
        raw.to_str().unwrap(),
        "-x",
        hex.to_str().unwrap(),
        "127.0.0.1",
        &port.to_string(),
    ]);
    c.write(b"Hello\n");
    let d = c.finish(WAIT);
    assert_eq!(d.out(), "Reply!\n");
    assert_eq!(std::fs::read(&raw).unwrap(), b"Hello\nReply!\n");
    let text = std::fs::read_to_string(&hex).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("> 20"), "{text}");
    assert!(lines[0].contains(" 00000000  48 65 6c 6c 6f 0a"), "{text}");
    assert!(lines[0].ends_with("|Hello.|"), "{text}");
    assert!(lines[1].starts_with("< 20"), "{text}");
    assert!(lines[1].ends_with("|Reply!.|"), "{text}");
}

#[test]
fn send_only_and_recv_only() {
    let (port, h) = server(|mut s| {
        s.write_all(b"ignored\n").unwrap();
        read_all(&mut s)
    });
    let mut c = Cat::spawn(&["--send-only", "127.0.0.1", &port.to_string()]);
    c.write(b"sent\n");
    let d = c.finish(WAIT);
    assert_eq!(h.join().unwrap(), b"sent\n");
    assert_eq!(d.out(), "");
    let (port, h) = server(|mut s| {
        s.write_all(b"received\n").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 10];
        s.read(&mut buf).is_err() // nothing, not even a FIN
    });
    let mut c = Cat::spawn(&["--recv-only", "127.0.0.1", &port.to_string()]);
    c.write(b"not sent\n");
    let nothing = h.join().unwrap();
    let d = c.finish(WAIT);
    assert!(nothing);
    assert_eq!(d.out(), "received\n");
}

#[test]
fn allow_and_deny() {
    let (srv, port) = Cat::listen(&["-k", "--deny", "127.0.0.0/8", "-c", "echo hi"]);
    assert_eq!(read_all(&mut connect(port)), b"");
    srv.wait_stderr("denied", WAIT).expect("denied notice");
    let (_srv, port) = Cat::listen(&["-k", "--allow", "127.0.0.1", "-c", "echo hi"]);
    assert_eq!(read_all(&mut connect(port)), b"hi\n");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("deny");
    std::fs::write(&f, "# nobody local\n127.0.0.1\n").unwrap();
    let (_srv, port) = Cat::listen(&["-k", "--denyfile", f.to_str().unwrap(), "-c", "echo hi"]);
    assert_eq!(read_all(&mut connect(port)), b"");
}

#[test]
fn max_conns_refuses_the_extra_client() {
    let (srv, port) = Cat::listen(&["-k", "-m", "1", "-c", "echo in; exec sleep 5"]);
    let mut a = connect(port);
    assert_eq!(read_line(&mut a), "in\n");
    let mut b = connect(port);
    assert_eq!(read_all(&mut b), b"");
    srv.wait_stderr("too many clients", WAIT).expect("notice");
}

#[test]
fn unix_socket_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let p = path.to_str().unwrap();
    let srv = Cat::spawn(&["-v", "-U", "-l", "-c", "echo over unix; cat", p]);
    srv.wait_stderr("listening on", WAIT).expect("listening");
    let mut c = Cat::spawn(&["-U", p]);
    c.write(b"ping\n");
    let d = c.finish(WAIT);
    assert_eq!(d.out(), "over unix\nping\n");
    drop(srv.wait(WAIT));
    assert!(!path.exists(), "the socket file is removed at exit");
}

#[test]
fn source_address_and_port() {
    let (port, h) = server(|s| s.peer_addr().unwrap());
    let sport = free_port();
    let c = Cat::spawn(&[
        "-s",
        "127.0.0.1",
        "-p",
        &sport.to_string(),
        "127.0.0.1",
        &port.to_string(),
    ]);
    let peer = h.join().unwrap();
    assert_eq!(peer.port(), sport);
    drop(c.finish(WAIT));
}

#[test]
fn ipv6_loopback() {
    let (srv, port) = {
        let cat = Cat::spawn(&["-v", "-6", "-l", "-c", "echo six", "::1", "0"]);
        let port = cat.port();
        (cat, port)
    };
    let d = Cat::spawn(&["-6", "::1", &port.to_string()]).finish(WAIT);
    assert_eq!(d.out(), "six\n");
    drop(srv);
    let d = Cat::spawn(&["-4", "::1", "1"]).finish(WAIT);
    assert_eq!(d.code, Some(1));
    assert!(d.stderr.contains("could not resolve"), "{}", d.stderr);
}
