//! TLS for sockeye's clients: the scanner's configuration, which completes
//! a handshake with any certificate (self-signed, expired, wrong name) and
//! records it instead of refusing, then says separately whether the chain
//! verifies against the trusted roots for the name used.
//!
//! Shared by `probe` (implicit TLS and STARTTLS upgrades), `talk` and
//! `exercise` (`starttls`), `mail` (`client`: a verifying client, this one
//! for `--insecure`) and `cat` (the accept-any verifier, ncat's default).
//! rustls with the ring provider only: rustls speaks TLS
//! 1.2 and 1.3; older servers are reported as a failed handshake, and the
//! raw-hello path (`sockeye_proto::tls_hello`) tells which versions they do
//! accept.

pub mod client;
pub mod facts;
pub mod starttls;
pub mod trust;

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::net::{Conn, excerpt, secs_text};

pub use facts::{CertFacts, TlsFacts};
pub use trust::{Roots, Verifier, verify_text};

/// Setting up TLS failed before any connection (a bad CA file, no roots).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A handshake that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake timed out after {}", secs_text(*.0))]
    Timeout(Duration),
    /// rustls's reason (an alert from the server, a protocol error), and
    /// the versions we offered.
    #[error("TLS handshake failed: {reason} (offered {offered})")]
    Failed {
        reason: String,
        offered: String,
        /// The server answered in TLS (an alert, a hello we cannot accept):
        /// it speaks TLS, just not with us.
        spoke_tls: bool,
    },
    #[error("TLS handshake failed: the server closed the connection (offered {offered})")]
    Closed { offered: String },
}

/// The scanner's TLS client: accepts every certificate, records it, and
/// checks it against the roots afterwards.
#[derive(Clone)]
pub struct Scanner {
    connector: TlsConnector,
    roots: Arc<Verifier>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner").finish_non_exhaustive()
    }
}

/// The one crypto provider: ring (DEPENDENCIES.md: never let a second one in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's roots (rustls-native-certs), plus the certificates of the
/// `extra` PEM files (trusted as roots, and pinned: see [`trust`]).
pub fn root_store(extra_pem: &[std::path::PathBuf]) -> Result<Roots, SetupError> {
    let mut roots = Roots::system();
    for path in extra_pem {
        roots.add_pem_file(path)?;
    }
    Ok(roots)
}

impl Scanner {
    /// A scanner trusting `roots` for its verdicts, offering `alpn`.
    pub fn new(roots: Roots, alpn: Vec<Vec<u8>>) -> Result<Scanner, SetupError> {
        let provider = provider();
        if roots.is_empty() {
            return Err(SetupError::Verifier("no trusted root certificates".into()));
        }
        let verifier = roots.verifier()?;
        let record = Arc::new(Verifier::danger_accept_any());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| SetupError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(record)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config.enable_sni = true;
        Ok(Scanner {
            connector: TlsConnector::from(Arc::new(config)),
            roots: verifier,
        })
    }

    /// Runs a handshake over `stream` (fresh, or after a STARTTLS reply),
    /// sending `name` as SNI when it is a DNS name, and returns the stream
    /// and its facts. `verify_name` is what the chain is checked against.
    pub async fn handshake<S>(
        &self,
        stream: S,
        sni: &str,
        timeout: Duration,
    ) -> Result<(TlsStream<S>, TlsFacts), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(sni);
        let connect = self.connector.connect(name.clone(), stream);
        let stream = match tokio::time::timeout(timeout, connect).await {
            Err(_) => return Err(HandshakeError::Timeout(timeout)),
            Ok(Err(err)) => return Err(handshake_error(&err)),
            Ok(Ok(s)) => s,
        };
        let facts = self.facts(stream.get_ref().1, &name, sni);
        Ok((stream, facts))
    }

    /// Runs a handshake over `conn` (after a STARTTLS reply, or at once for
    /// implicit TLS), within `timeout` and the connection's deadline. Bytes
    /// the server sent before the handshake are an error: a server (or a man
    /// in the middle) must not inject plaintext that would later read as
    /// protected; the connection comes back then, unused.
    pub async fn upgrade(
        &self,
        conn: Conn,
        sni: &str,
        timeout: Duration,
    ) -> Result<(Conn, TlsFacts), (HandshakeError, Option<Conn>)> {
        if !conn.buffered().is_empty() {
            let reason = format!(
                "the server sent {:?} before the handshake",
                excerpt(conn.buffered())
            );
            return Err((
                HandshakeError::Failed {
                    reason,
                    offered: "TLSv1.3, TLSv1.2".into(),
                    spoke_tls: false,
                },
                Some(conn),
            ));
        }
        let (stream, _, rest) = conn.detach();
        let timeout = rest.bounded(timeout);
        match self.handshake(stream, sni, timeout).await {
            Ok((stream, facts)) => Ok((rest.attach(Box::new(stream)), facts)),
            Err(err) => Err((err, None)),
        }
    }

    fn facts(
        &self,
        conn: &rustls::ClientConnection,
        name: &ServerName<'static>,
        sni: &str,
    ) -> TlsFacts {
        let version = conn
            .protocol_version()
            .map(version_text)
            .unwrap_or_default();
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let alpn = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let certs = conn.peer_certificates().unwrap_or(&[]);
        let chain: Vec<CertFacts> = certs.iter().map(|c| CertFacts::from_der(c)).collect();
        let (verified, verify_error) = match certs.split_first() {
            None => (false, Some("no certificate".to_string())),
            Some((leaf, rest)) => {
                match self
                    .roots
                    .verify_server_cert(leaf, rest, name, &[], UnixTime::now())
                {
                    Ok(_) => (true, None),
                    Err(err) => (false, Some(verify_text(&err))),
                }
            }
        };
        TlsFacts {
            version,
            cipher,
            alpn,
            chain,
            verified,
            verify_error,
            name: sni.to_string(),
        }
    }
}

/// An IP literal is verified as an IP (and sends no SNI); anything else is a
/// DNS name. A string rustls does not accept as a name falls back to an
/// invalid placeholder, so the verdict says "not valid for name".
pub fn server_name(text: &str) -> ServerName<'static> {
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    ServerName::try_from(text.to_string())
        .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name"))
}

fn version_text(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".into(),
        other => format!("{other:?}"),
    }
}

const OFFERED: &str = "TLSv1.3, TLSv1.2";

fn handshake_error(err: &std::io::Error) -> HandshakeError {
    if err.kind() == std::io::ErrorKind::UnexpectedEof {
        return HandshakeError::Closed {
            offered: OFFERED.into(),
        };
    }
    let tls = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let spoke_tls = matches!(
        tls,
        Some(rustls::Error::AlertReceived(_) | rustls::Error::PeerIncompatible(_))
    );
    let reason = match tls {
        Some(tls) => tls_error_text(tls),
        None => err.to_string(),
    };
    HandshakeError::Failed {
        reason,
        offered: OFFERED.into(),
        spoke_tls,
    }
}

/// A failed handshake's I/O error in words: a refused certificate as
/// [`verify_text`] says it, rustls's other errors as the TLS alerts name
/// them (for callers with their own handshake, `cat`).
pub fn handshake_text(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => {
            format!("the certificate does not verify: {}", verify_text(tls))
        }
        Some(tls) => tls_error_text(tls),
        None => err.to_string(),
    }
}

/// rustls's errors in the words of the TLS alerts (snake_case, as RFC 8446
/// names them), so they match what openssl and testssl.sh print.
fn tls_error_text(err: &rustls::Error) -> String {
    match err {
        rustls::Error::AlertReceived(alert) => {
            format!("the server sent alert {}", alert_text(*alert))
        }
        rustls::Error::InvalidMessage(m) => format!("not a TLS reply ({m:?})"),
        rustls::Error::PeerIncompatible(why) => format!("the server is incompatible: {why:?}"),
        other => other.to_string(),
    }
}

fn alert_text(alert: rustls::AlertDescription) -> String {
    trust::split_camel(&format!("{alert:?}"), '_')
}

/// A verifier that accepts any server certificate but still checks the
/// handshake signatures (the peer holds the key of what it showed): the
/// scanner's, and ncat's default for `sockeye cat --ssl`.
pub fn danger_accept_any_server() -> Arc<dyn ServerCertVerifier> {
    Arc::new(Verifier::danger_accept_any())
}
