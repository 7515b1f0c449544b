//! The TLS client of `sockeye mail` (and later `talk`): unlike the scanner's [`Scanner`],
//! it refuses a certificate that does not verify for the server's name (system roots plus
//! `--ca-file`), since a mail client that sends a password must know whom it talks to.
//! `--insecure` swaps in the recording [`Scanner`], which completes the handshake with any
//! certificate and still reports whether the chain would have verified.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{
    HandshakeError, OFFERED, Scanner, SetupError, handshake_error, server_name, verify_text,
    version_text,
};

/// A TLS client that verifies certificates, or (`--insecure`) one that records them.
#[derive(Clone)]
pub enum TlsClient {
    /// Refuses a chain that does not verify for the name.
    Verify(TlsConnector),
    /// Accepts any certificate (the scanner's verifier), says whether it verified.
    Insecure(Scanner),
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsClient::Verify(_) => "TlsClient::Verify",
            TlsClient::Insecure(_) => "TlsClient::Insecure",
        })
    }
}

/// What a completed handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, rustls's name (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// Whether the chain verifies for the name (always true for [`TlsClient::Verify`]).
    pub verified: bool,
    /// Why it does not verify, in words (only with [`TlsClient::Insecure`]).
    pub verify_error: Option<String>,
}

impl TlsClient {
    /// A verifying client trusting the system's roots and the PEM files in `ca_files`.
    pub fn verifying(ca_files: &[PathBuf]) -> Result<TlsClient, SetupError> {
        let roots = super::root_store(ca_files)?;
        if roots.is_empty() {
            return Err(SetupError::Verifier(
                "no trusted root certificates (give --ca-file, or --insecure)".into(),
            ));
        }
        let provider = super::provider();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| SetupError::Verifier(e.to_string()))?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| SetupError::Config(e.to_string()))?
            .with_webpki_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsClient::Verify(TlsConnector::from(Arc::new(config))))
    }

    /// `--insecure`: any certificate is accepted (the verdict is still reported).
    pub fn insecure(ca_files: &[PathBuf]) -> Result<TlsClient, SetupError> {
        let roots = super::root_store(ca_files)?;
        Ok(TlsClient::Insecure(Scanner::new(roots, Vec::new())?))
    }

    /// Runs a handshake over `stream` for `name` (a DNS name is also sent as SNI; an IP
    /// address is verified as an IP), bounded by `timeout`.
    pub async fn handshake<S>(
        &self,
        stream: S,
        name: &str,
        timeout: Duration,
    ) -> Result<(TlsStream<S>, Negotiated), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self {
            TlsClient::Insecure(scanner) => {
                let (stream, facts) = scanner.handshake(stream, name, timeout).await?;
                let negotiated = Negotiated {
                    version: facts.version,
                    cipher: facts.cipher,
                    verified: facts.verified,
                    verify_error: facts.verify_error,
                };
                Ok((stream, negotiated))
            }
            TlsClient::Verify(connector) => {
                let connect = connector.connect(server_name(name), stream);
                let stream = match tokio::time::timeout(timeout, connect).await {
                    Err(_) => return Err(HandshakeError::Timeout(timeout)),
                    Ok(Err(err)) => {
                        return Err(refused_certificate(&err, name)
                            .unwrap_or_else(|| handshake_error(&err)));
                    }
                    Ok(Ok(s)) => s,
                };
                let conn = stream.get_ref().1;
                let negotiated = Negotiated {
                    version: conn
                        .protocol_version()
                        .map(version_text)
                        .unwrap_or_default(),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    verified: true,
                    verify_error: None,
                };
                Ok((stream, negotiated))
            }
        }
    }
}

/// A handshake we ended because the certificate does not verify, said as such: "the
/// certificate of NAME does not verify: unknown issuer (...)".
fn refused_certificate(err: &std::io::Error, name: &str) -> Option<HandshakeError> {
    let tls = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    if !matches!(tls, rustls::Error::InvalidCertificate(_)) {
        return None;
    }
    Some(HandshakeError::Failed {
        reason: format!(
            "the certificate does not verify for {name}: {} (--ca-file to trust its CA, --insecure to skip the check)",
            verify_text(tls)
        ),
        offered: OFFERED.into(),
        spoke_tls: true,
    })
}
