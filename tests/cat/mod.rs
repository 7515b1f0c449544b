//! `sockeye cat` end to end on 127.0.0.1: the seed examples (MOTD, echo,
//! chat relays, the HTTP response server and the browser fuzzer, the
//! line-based client/server exchanges), ncat's flags, the half-close
//! contract of the README (one test per row), the broker and chat hub with
//! a client that never reads, TLS with certificates made at test time, and
//! SOCKS5/HTTP proxies played by tiny in-test proxies, and the HTTP proxy
//! server of `-l --proxy-type http`.
//!
//! One file per section; this one holds the helpers they share, `proc.rs`
//! the cat process under test and `proxy.rs` the in-test proxies.

#![allow(clippy::unwrap_used)]

mod proc;
mod proxy;

mod broker;
mod broker_limits;
mod errors;
mod exec;
mod flags;
mod half_close;
mod lab;
mod modes;
mod peers;
mod proxies;
mod proxy_client;
mod proxy_server;
mod seeds;
mod tls;
mod tls_verify;

use std::net::{TcpListener, TcpStream};

use proc::WAIT;

/// A one-shot TCP server on 127.0.0.1:0 run by `f` in a thread.
fn server<T: Send + 'static>(
    f: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (u16, std::thread::JoinHandle<T>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        f(s)
    });
    (port, h)
}

/// A port that was free a moment ago (for a source port to bind).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A closed port that stays closed: bound, never listening (connects
/// are refused), and held so that no parallel test can take it.
fn closed_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Real ncat (7.93 here) with `args`, as the peer of a test: stdio piped
/// and collected like a cat under test's.
fn ncat(args: &[&str]) -> proc::Cat {
    proc::Cat::spawn_with(std::path::Path::new("ncat"), &[], args, None)
}
