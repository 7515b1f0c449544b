//! Tiny in-test proxies for `sockeye cat --proxy`: a SOCKS5 server (RFC
//! 1928, with optional RFC 1929 user/password) and an HTTP CONNECT proxy
//! (optional Basic credentials). Each accepts on 127.0.0.1:0 in a thread,
//! connects only to 127.0.0.1 (whatever name it is asked for: the tests
//! ask for localhost and 127.0.0.1) and records the requested targets.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

fn local_target(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("proxy connects to the target")
}

pub(crate) struct Socks5 {
    pub(crate) port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Socks5 {
    pub(crate) fn start(auth: Option<(&'static str, &'static str)>) -> Socks5 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming().take(16) {
                let Ok(s) = s else { continue };
                let seen = seen2.clone();
                std::thread::spawn(move || {
                    let _ = serve_socks(s, auth, &seen);
                });
            }
        });
        Socks5 { port, seen }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_socks(
    mut s: TcpStream,
    auth: Option<(&str, &str)>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(T))?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods)?;
    match auth {
        None => s.write_all(&[5, 0])?,
        Some((u, p)) => {
            if !methods.contains(&2) {
                return s.write_all(&[5, 0xff]);
            }
            s.write_all(&[5, 2])?;
            let mut v = [0u8; 2];
            s.read_exact(&mut v)?;
            let mut user = vec![0u8; usize::from(v[1])];
            s.read_exact(&mut user)?;
            let mut pl = [0u8; 1];
            s.read_exact(&mut pl)?;
            let mut pass = vec![0u8; usize::from(pl[0])];
            s.read_exact(&mut pass)?;
            if user != u.as_bytes() || pass != p.as_bytes() {
                return s.write_all(&[1, 1]);
            }
            s.write_all(&[1, 0])?;
        }
    }
    let mut req = [0u8; 4];
    s.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l)?;
            let mut n = vec![0u8; usize::from(l[0])];
            s.read_exact(&mut n)?;
            String::from_utf8_lossy(&n).into_owned()
        }
        _ => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a)?;
            std::net::Ipv6Addr::from(a).to_string()
        }
    };
    let mut p = [0u8; 2];
    s.read_exact(&mut p)?;
    let port = u16::from_be_bytes(p);
    seen.lock().unwrap().push(format!("{host}:{port}"));
    let target = local_target(port);
    s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, p[0], p[1]])?;
    s.set_read_timeout(None)?;
    pipe(s, target);
    Ok(())
}

pub(crate) struct HttpConnect {
    pub(crate) port: u16,
}

impl HttpConnect {
    /// `basic`: the base64 credentials it requires, if any.
    pub(crate) fn start(basic: Option<&'static str>) -> HttpConnect {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(16) {
                let Ok(s) = s else { continue };
                std::thread::spawn(move || {
                    let _ = serve_http(s, basic);
                });
            }
        });
        HttpConnect { port }
    }
}

fn serve_http(mut s: TcpStream, basic: Option<&str>) -> std::io::Result<()> {
    s.set_read_timeout(Some(T))?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b)?;
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text.split_whitespace().nth(1).unwrap_or("").to_string();
    if let Some(cred) = basic
        && !text.contains(&format!("Proxy-Authorization: Basic {cred}\r\n"))
    {
        return s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    }
    let port: u16 = target
        .rsplit(':')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let t = local_target(port);
    s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    s.set_read_timeout(None)?;
    pipe(s, t);
    Ok(())
}
