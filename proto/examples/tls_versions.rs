//! A by-hand check of `sockeye_proto::tls_hello` against a real server on loopback: sends
//! one ClientHello per TLS version (1.0 to 1.3), each on a fresh connection, and prints
//! what the codec makes of each reply: accepted (version, suite, certificates for TLS 1.2
//! and older) or refused (the alert). With `--save DIR` it also writes every reply to
//! `DIR/LABEL-tlsNN.bin`, which is how the fixtures in `proto/tests/data/` were recorded.
//!
//! ```text
//! openssl s_server -accept 127.0.0.1:44301 -cert c.pem -key k.pem -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
//! cargo run -p sockeye-proto --example tls_versions -- 127.0.0.1:44301 [--sni NAME]
//!     [--save DIR --label NAME]
//! ```
//!
//! Std only, loopback only (it refuses any other address), every read bounded in time.
// The point of this program is its printed report; the workspace lint is for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sockeye_proto::tls_hello::{
    HelloOptions, ServerReply, TlsVersion, alert_name, cipher_name, client_hello,
    decode_certificates, decode_server_reply, version_name,
};

/// The whole exchange with one server for one version.
const TOTAL: Duration = Duration::from_secs(3);
/// The server's flight is over when it stays quiet this long (it waits for our key
/// exchange, which never comes).
const IDLE: Duration = Duration::from_millis(400);
/// Most bytes kept from one reply.
const MAX_REPLY: usize = 256 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: tls_versions 127.0.0.1:PORT [--sni NAME] [--save DIR --label NAME]");
        return ExitCode::from(2);
    };
    if !addr.ip().is_loopback() {
        eprintln!("tls_versions: loopback addresses only, not {addr}");
        return ExitCode::from(2);
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let save = flag("--save").map(PathBuf::from);
    let label = flag("--label").unwrap_or_else(|| "server".to_owned());
    // A long name makes hellos of 256 to 511 bytes, which get the padding extension.
    let sni = flag("--sni").unwrap_or_else(|| "localhost".to_owned());

    for version in TlsVersion::ALL {
        // Fixed bytes, so that a recorded reply goes with a ClientHello the tests can
        // rebuild. 9 is X25519's base point: a valid public key.
        let mut key_share = [0u8; 32];
        key_share[0] = 9;
        let opts = HelloOptions {
            version,
            server_name: Some(&sni),
            random: std::array::from_fn(|i| i as u8),
            session_id: std::array::from_fn(|i| 0xa0 + i as u8),
            key_share,
        };
        let hello = client_hello(&opts);
        let reply = match exchange(addr, &hello) {
            Ok(reply) => reply,
            Err(e) => {
                println!("{version}: no reply ({e})");
                continue;
            }
        };
        if let Some(dir) = &save {
            let name = format!("{label}-{}.bin", version.name().replace("TLSv1.", "tls1"));
            if let Err(e) = std::fs::write(dir.join(&name), &reply) {
                eprintln!("tls_versions: cannot write {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
        println!(
            "{version}: {} (hello {} bytes, reply {} bytes)",
            verdict(version, &reply),
            hello.len(),
            reply.len()
        );
    }
    ExitCode::SUCCESS
}

/// Sends `hello` and gathers what the server sends until it goes quiet or closes.
fn exchange(addr: SocketAddr, hello: &[u8]) -> std::io::Result<Vec<u8>> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, TOTAL)?;
    stream.write_all(hello)?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 16384];
    while reply.len() < MAX_REPLY {
        let left = TOTAL.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let wait = if reply.is_empty() {
            left
        } else {
            IDLE.min(left)
        };
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            // A server that refuses often resets right after its alert.
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !reply.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(reply)
}

/// The codec's reading of one reply, in words.
fn verdict(offered: TlsVersion, reply: &[u8]) -> String {
    match decode_server_reply(reply) {
        Ok(Some((answer @ ServerReply::Hello(_), _))) if !answer.accepts(offered) => {
            let ServerReply::Hello(hello) = answer else {
                unreachable!("matched as a ServerHello");
            };
            format!(
                "NOT ACCEPTED: the server chose {} instead",
                version_name(hello.version).unwrap_or("an unknown version")
            )
        }
        Ok(Some((ServerReply::Hello(hello), _))) => {
            let version = version_name(hello.version).unwrap_or("unknown version");
            let cipher = cipher_name(hello.cipher).unwrap_or("unknown suite");
            let retry = if hello.hello_retry {
                ", HelloRetryRequest"
            } else {
                ""
            };
            let certs = match decode_certificates(reply) {
                Ok(Some((certs, _))) => {
                    let sizes: Vec<String> = certs.iter().map(|c| c.len().to_string()).collect();
                    format!(
                        ", {} certificate(s) of {} bytes",
                        certs.len(),
                        sizes.join("+")
                    )
                }
                Ok(None) => ", certificate not complete".to_owned(),
                Err(e) => format!(", no certificate: {e}"),
            };
            format!(
                "ACCEPTED {version} {cipher} ({:#06x}){retry}{certs}",
                hello.cipher
            )
        }
        Ok(Some((ServerReply::Alert { level, description }, _))) => format!(
            "REFUSED alert {} ({description}, level {level})",
            alert_name(description)
        ),
        Ok(None) => "incomplete reply".to_owned(),
        Err(e) => format!("ERROR {e}"),
    }
}
