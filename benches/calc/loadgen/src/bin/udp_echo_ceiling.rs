//! The UDP ceiling for benches/calc/run.sh --with-ceiling: one thread doing
//! `recv_from`, the least work that still satisfies the load generator (the request's
//! ID and the wrapping sum of its numbers, no validation, no other operation), and
//! `send_to` of the 8-byte answer. Whatever req/s this reaches is what the kernel's
//! loopback path and the load generator allow on the machine, whatever the server.
//! UDP only.
//!
//! ```text
//! udp_echo_ceiling --listen 127.0.0.1:7003 [--seconds 900]
//! ```

use std::net::UdpSocket;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = String::from("127.0.0.1:7003");
    let mut seconds = 900.0_f64;
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--listen", Some(v)) => listen = v.clone(),
            ("--seconds", Some(v)) => seconds = v.parse().unwrap_or(900.0_f64).clamp(1.0, 3600.0),
            _ => {
                eprintln!("usage: udp_echo_ceiling --listen ADDR:PORT [--seconds N]");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let udp = match UdpSocket::bind(&listen) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("udp_echo_ceiling: bind {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(seconds));
        std::process::exit(0);
    });
    let mut b = [0u8; 2048];
    loop {
        let Ok((n, peer)) = udp.recv_from(&mut b) else {
            continue;
        };
        if n < 8 {
            continue;
        }
        let sum = b[8..n].chunks_exact(4).fold(0i32, |s, c| {
            s.wrapping_add(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        });
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&b[..4]);
        out[4..].copy_from_slice(&sum.to_be_bytes());
        let _ = udp.send_to(&out, peer);
    }
}
