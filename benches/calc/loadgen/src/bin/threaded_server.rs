//! The reference server's design (one OS thread per TCP connection, one thread for UDP)
//! written in plain std Rust, for benches/calc/run.sh --with-rust-threads. It separates
//! what the language costs from what the architecture costs, and shows the ceiling of
//! the load generator on the machine. Protocol: docs/calc-protocol.md (big-endian;
//! an invalid request closes the TCP connection after the earlier answers, gets no UDP
//! answer). It reads whatever has arrived and answers every complete request of it in
//! one write.
//!
//! ```text
//! threaded_server --listen 127.0.0.1:7002 [--seconds 900]
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// Ok(result) or Err(reason).
fn calc(frame: &[u8]) -> Result<i32, &'static str> {
    let n = usize::from(frame[7]);
    let nums = frame[8..8 + 4 * n].chunks_exact(4).map(|c| i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])));
    let r: i64 = match &frame[4..7] {
        b"SUM" => nums.sum(),
        b"PRO" => {
            // Exact: a zero anywhere makes 0; otherwise the magnitude never shrinks, so
            // once it passes 2^31 the exact result cannot fit.
            let nums: Vec<i64> = nums.collect();
            if nums.contains(&0) {
                0
            } else {
                let mut p: i64 = 1;
                for z in nums {
                    p *= z; // |p| <= 2^31 and |z| <= 2^31: no i64 overflow
                    if p.unsigned_abs() > 1 << 31 {
                        return Err("overflow");
                    }
                }
                p
            }
        }
        b"MIN" => nums.min().ok_or("empty")?,
        b"MAX" => nums.max().ok_or("empty")?,
        _ => return Err("unknown-op"),
    };
    i32::try_from(r).map_err(|_| "overflow")
}

fn answer(out: &mut Vec<u8>, frame: &[u8], r: i32) {
    out.extend_from_slice(&frame[..4]);
    out.extend_from_slice(&r.to_be_bytes());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut listen = "127.0.0.1:7002".to_string();
    let mut seconds = 900.0f64;
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--listen" => listen = args[i + 1].clone(),
            "--seconds" => seconds = args[i + 1].parse().unwrap_or(900.0_f64).clamp(1.0, 3600.0),
            _ => {
                eprintln!("usage: threaded_server --listen ADDR:PORT [--seconds N]");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let (tcp, udp) = match TcpListener::bind(&listen).and_then(|t| UdpSocket::bind(&listen).map(|u| (t, u))) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("threaded_server: bind {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(seconds));
        std::process::exit(0);
    });
    thread::spawn(move || {
        let mut b = [0u8; 2048];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut b) else { continue };
            if n < 8 || n != 8 + 4 * usize::from(b[7]) {
                continue;
            }
            if let Ok(r) = calc(&b[..n]) {
                let mut out = Vec::with_capacity(8);
                answer(&mut out, &b[..n], r);
                let _ = udp.send_to(&out, peer);
            }
        }
    });
    for conn in tcp.incoming() {
        let Ok(mut c) = conn else { continue };
        let _ = c.set_nodelay(true);
        let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let mut b = vec![0u8; 16 * 1024];
            let mut have = 0;
            let mut out = Vec::with_capacity(4096);
            loop {
                let n = match c.read(&mut b[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                let mut off = 0;
                let mut bad = false;
                while have - off >= 8 {
                    let need = 8 + 4 * usize::from(b[off + 7]);
                    if have - off < need {
                        break;
                    }
                    match calc(&b[off..off + need]) {
                        Ok(r) => answer(&mut out, &b[off..off + need], r),
                        Err(_) => {
                            bad = true;
                            break;
                        }
                    }
                    off += need;
                }
                if c.write_all(&out).is_err() {
                    return;
                }
                out.clear();
                if bad {
                    let _ = c.shutdown(Shutdown::Both);
                    return;
                }
                b.copy_within(off..have, 0);
                have -= off;
            }
        });
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
    ExitCode::SUCCESS
}
