//! `--tls-versions`: which TLS versions a server accepts, as testssl.sh and
//! sslscan report them. rustls speaks only 1.2 and 1.3, so each version gets
//! a raw ClientHello of its own (`sockeye_proto::tls_hello`) on a fresh
//! connection, and the server's first flight says yes (a ServerHello for
//! exactly that version) or no (an alert, another version, a close). For an
//! old server rustls cannot talk to, the certificate is read from the
//! cleartext Certificate message of the accepted pre-1.3 hello.

use std::net::SocketAddr;

use sockeye_proto::tls_hello::{self, HelloOptions, ServerReply, TlsVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Check;
use crate::report::{TlsOutcome, VersionVerdict};
use crate::tls::CertFacts;

/// Bytes read from one server flight at most.
const MAX_FLIGHT: usize = tls_hello::MAX_FLIGHT_LEN;

pub(super) async fn probe(c: &mut Check<'_>, target: SocketAddr) {
    let name = c.job.name(c.cfg);
    let mut legacy_chain = None;
    for version in TlsVersion::ALL {
        let (verdict, chain) = one(c, target, version, &name).await;
        if legacy_chain.is_none() && chain.is_some() {
            legacy_chain = chain;
        }
        c.result.tls_versions.push(verdict);
    }
    c.step("tls-versions");
    // rustls could not complete a handshake, but an old version was
    // accepted: show the certificate that server presents.
    if let Some(TlsOutcome::Failed { chain, .. }) = &mut c.result.tls
        && let Some(certs) = legacy_chain
    {
        *chain = certs.iter().map(|der| CertFacts::from_der(der)).collect();
    }
}

async fn one(
    c: &Check<'_>,
    target: SocketAddr,
    version: TlsVersion,
    name: &str,
) -> (VersionVerdict, Option<Vec<Vec<u8>>>) {
    let verdict = |accepted: bool, detail: String| VersionVerdict {
        version: version.to_string(),
        accepted,
        detail,
    };
    let connect = tokio::time::timeout(c.cfg.connect_timeout, TcpStream::connect(target)).await;
    let mut stream = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => return (verdict(false, format!("connect failed: {err}")), None),
        Err(_) => return (verdict(false, "connect timed out".into()), None),
    };
    let hello = tls_hello::client_hello(&HelloOptions {
        version,
        server_name: tls_hello::sni_host(name),
        random: rand::random(),
        session_id: rand::random(),
        key_share: rand::random(),
    });
    let deadline = Instant::now() + c.cfg.tls_timeout;
    if tokio::time::timeout_at(deadline, stream.write_all(&hello))
        .await
        .map_or(true, |r| r.is_err())
    {
        return (verdict(false, "could not send the hello".into()), None);
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    // First the ServerHello (or the refusal), then for <= 1.2 the chain.
    let reply = loop {
        match tls_hello::decode_server_reply(&buf) {
            Ok(Some((reply, _))) => break reply,
            Ok(None) => {}
            Err(err) => return (verdict(false, err.to_string()), None),
        }
        match read_more(&mut stream, &mut buf, &mut chunk, deadline).await {
            Ok(()) => {}
            Err(why) => return (verdict(false, why), None),
        }
    };
    match reply {
        ServerReply::Alert { description, .. } => (
            verdict(
                false,
                format!("alert {}", tls_hello::alert_name(description)),
            ),
            None,
        ),
        ServerReply::Hello(ref hello) if !reply.accepts(version) => {
            let chose = tls_hello::version_name(hello.version).unwrap_or("an unknown version");
            (verdict(false, format!("the server chose {chose}")), None)
        }
        ServerReply::Hello(hello) => {
            let cipher = tls_hello::cipher_name(hello.cipher)
                .map(str::to_string)
                .unwrap_or_else(|| format!("0x{:04x}", hello.cipher));
            let detail = if hello.hello_retry {
                format!("{cipher} (after a HelloRetryRequest)")
            } else {
                cipher
            };
            let chain = if version < TlsVersion::Tls13 {
                loop {
                    match tls_hello::decode_certificates(&buf) {
                        Ok(Some((chain, _))) => break Some(chain),
                        Ok(None) => {}
                        Err(_) => break None,
                    }
                    if read_more(&mut stream, &mut buf, &mut chunk, deadline)
                        .await
                        .is_err()
                    {
                        break None;
                    }
                }
            } else {
                None
            };
            (verdict(true, detail), chain)
        }
    }
}

async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    deadline: Instant,
) -> Result<(), String> {
    if buf.len() >= MAX_FLIGHT {
        return Err("the server's reply is too long".into());
    }
    match tokio::time::timeout_at(deadline, stream.read(chunk)).await {
        Ok(Ok(0)) => Err("the server closed the connection".into()),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Ok(Err(err)) => Err(crate::net::io_text(&err)),
        Err(_) => Err("no reply in time".into()),
    }
}
