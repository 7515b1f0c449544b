//! Peer addresses: an IPv4 client of a dual-stack listener (`-l` with no
//! address binds `[::]`, which sees it as `::ffff:127.0.0.1`) is reported
//! as the IPv4 address it is, as ncat reports it: in the `-v` lines, the
//! chat announcements and NCAT_REMOTE_ADDR / NCAT_LOCAL_ADDR.

use std::time::Duration;

use super::free_port;
use super::proc::{Cat, WAIT, connect, read_all, read_line};

/// `sockeye cat -v -l 0 ARGS` on every address (dual-stack), and its port.
fn listen_everywhere(args: &[&str]) -> (Cat, u16) {
    let mut all = vec!["-v", "-l"];
    all.extend_from_slice(args);
    all.push("0");
    let cat = Cat::spawn(&all);
    let port = cat.port();
    (cat, port)
}

const ENV: &str = "echo \"$NCAT_REMOTE_ADDR $NCAT_LOCAL_ADDR\"";

#[test]
fn ipv4_peer_of_a_dual_stack_listener_is_ipv4() {
    let (srv, port) = listen_everywhere(&["-k", "-c", ENV]);
    assert!(
        srv.stderr().contains("listening on [::]:"),
        "{}",
        srv.stderr()
    );
    let mut s = connect(port);
    let me = s.local_addr().unwrap();
    assert_eq!(read_all(&mut s), b"127.0.0.1 127.0.0.1\n");
    let line = srv
        .wait_stderr("connection from", WAIT)
        .expect("-v connection line");
    assert!(
        line.ends_with(&format!("connection from 127.0.0.1:{}", me.port())),
        "{line}"
    );
    assert!(!srv.stderr().contains("::ffff:"), "{}", srv.stderr());
}

/// What real ncat 7.93 says for the same setup: the same words.
#[test]
fn ncat_reports_the_same_address() {
    let port = free_port();
    let mut ncat = std::process::Command::new("/usr/bin/ncat")
        .args(["-l", "-k", "-c", ENV, &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run ncat");
    let got = super::proc::wait_for(WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|mut s| {
                s.set_read_timeout(Some(WAIT)).unwrap();
                read_all(&mut s)
            })
    });
    let _ = ncat.kill();
    let _ = ncat.wait();
    let (_srv, ours) = listen_everywhere(&["-k", "-c", ENV]);
    assert_eq!(got.expect("ncat answered"), read_all(&mut connect(ours)));
}

#[test]
fn chat_announces_ipv4_peers_as_ipv4() {
    let (srv, port) = listen_everywhere(&["--chat"]);
    let mut first = connect(port);
    assert_eq!(
        read_line(&mut first),
        "<announce> already connected: nobody.\n"
    );
    srv.wait_stderr("connection from", WAIT)
        .expect("first client in");
    let mut second = connect(port);
    let second_port = second.local_addr().unwrap().port();
    let hello = read_line(&mut second);
    assert!(
        hello.starts_with("<announce> already connected: 127.0.0.1:"),
        "{hello:?}"
    );
    let news = read_line(&mut first);
    assert!(
        news.starts_with("<announce> 127.0.0.1 is connected as <user"),
        "{news:?}"
    );
    drop(second);
    let gone = srv
        .wait_stderr(&format!("127.0.0.1:{second_port} closed"), WAIT)
        .unwrap_or_else(|| srv.stderr());
    assert!(!gone.contains("::ffff:"), "{gone}");
    std::thread::sleep(Duration::from_millis(50));
}
