//! The broker's limits and directions against real ncat clients: `-m`
//! refuses the client past the limit and counts the ones that leave
//! (plain and TLS), standard input goes to every client, and
//! `--send-only` and `--recv-only` brokers (ncat's `ncat_listen.c`: a
//! send-only broker passes on only its standard input, a receive-only one
//! sends clients nothing).

use std::time::Duration;

use super::ncat;
use super::proc::{Cat, WAIT, wait_for};

/// How long a byte that should not arrive is given to arrive.
const QUIET: Duration = Duration::from_millis(500);

fn clients_seen(srv: &Cat, n: usize) {
    wait_for(WAIT, || {
        (srv.stderr().matches("connection from").count() == n).then_some(())
    })
    .unwrap_or_else(|| panic!("{n} clients expected: {}", srv.stderr()));
}

fn client(port: u16, tls: bool) -> Cat {
    let port = port.to_string();
    let mut args = vec!["127.0.0.1", port.as_str()];
    if tls {
        args.insert(0, "--ssl");
    }
    ncat(&args)
}

/// A broker with `flags` and two ncat clients connected to it.
fn broker_of_two(flags: &[&str]) -> (Cat, Cat, Cat) {
    let mut all = vec!["--broker"];
    all.extend_from_slice(flags);
    let (srv, port) = Cat::listen(&all);
    let a = client(port, false);
    let b = client(port, false);
    clients_seen(&srv, 2);
    (srv, a, b)
}

fn max_conns(tls: bool) {
    let mut flags = vec!["--broker", "-m", "2"];
    if tls {
        flags.push("--ssl");
    }
    let (srv, port) = Cat::listen(&flags);
    let mut a = client(port, tls);
    let b = client(port, tls);
    clients_seen(&srv, 2);
    // The third is refused: closed at once (ncat itself waits for its
    // stdin's end to exit).
    let c = client(port, tls).finish(WAIT);
    assert_eq!(c.stdout, b"");
    srv.wait_stderr("too many clients", WAIT)
        .expect("the refusal is told");
    a.write(b"from a\n");
    assert_eq!(b.wait_stdout(7, WAIT), b"from a\n");
    // a leaves: its place is free again, once and only once.
    a.close_stdin();
    a.wait(WAIT);
    srv.wait_stderr("closed", WAIT).expect("a's departure");
    let mut d = client(port, tls);
    clients_seen(&srv, 4);
    d.write(b"from d\n");
    assert_eq!(b.wait_stdout(14, WAIT), b"from a\nfrom d\n");
    let e = client(port, tls).finish(WAIT);
    assert_eq!(e.stdout, b"");
    wait_for(WAIT, || {
        (srv.stderr().matches("too many clients").count() == 2).then_some(())
    })
    .unwrap_or_else(|| panic!("the fifth is refused: {}", srv.stderr()));
}

#[test]
fn broker_max_conns_refuses_the_next_and_counts_departures() {
    max_conns(false);
}

#[test]
fn broker_max_conns_over_tls() {
    max_conns(true);
}

/// As ncat's broker: standard input goes to every client; what a client
/// sends goes to the others, not to standard output.
#[test]
fn broker_stdin_goes_to_every_client() {
    let (mut srv, mut a, b) = broker_of_two(&[]);
    srv.write(b"from stdin\n");
    assert_eq!(a.wait_stdout(11, WAIT), b"from stdin\n");
    assert_eq!(b.wait_stdout(11, WAIT), b"from stdin\n");
    a.write(b"from a\n");
    assert_eq!(b.wait_stdout(18, WAIT), b"from stdin\nfrom a\n");
    std::thread::sleep(QUIET);
    assert_eq!(srv.stdout(), b"");
    assert_eq!(a.stdout(), b"from stdin\n");
}

#[test]
fn broker_send_only_passes_on_stdin_only() {
    let (mut srv, mut a, b) = broker_of_two(&["--send-only"]);
    a.write(b"from a\n");
    srv.write(b"from stdin\n");
    assert_eq!(b.wait_stdout(11, WAIT), b"from stdin\n");
    assert_eq!(a.wait_stdout(11, WAIT), b"from stdin\n");
    std::thread::sleep(QUIET);
    assert_eq!(b.stdout(), b"from stdin\n", "a's line was passed on");
    assert_eq!(srv.stdout(), b"");
    // A client that leaves is still seen leaving.
    a.close_stdin();
    srv.wait_stderr("closed", WAIT).expect("a's departure");
}

#[test]
fn broker_recv_only_sends_clients_nothing() {
    let (mut srv, mut a, b) = broker_of_two(&["--recv-only"]);
    a.write(b"from a\n");
    srv.write(b"from stdin\n");
    std::thread::sleep(QUIET);
    assert_eq!(a.stdout(), b"");
    assert_eq!(b.stdout(), b"");
    assert_eq!(srv.stdout(), b"");
}
