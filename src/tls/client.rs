//! The TLS client of `sockeye mail` (and later `talk`): unlike the scanner's [`Scanner`],
//! it refuses a certificate that does not verify for the server's name (system roots plus
//! `--ca-file`), since a mail client that sends a password must know whom it talks to.
//! `--insecure` swaps in the recording [`Scanner`], which completes the handshake with any
//! certificate and still reports whether the chain would have verified.
//!
//! Loading the system's roots costs about 15 ms (some 150 PEM files parsed into trust
//! anchors), as much as the rest of a mail client's own work: [`TlsClientLoader`] does it
//! on a thread of its own while the connection, the greeting and EHLO are under way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
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
        let verifier = roots.verifier()?;
        let config = ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| SetupError::Config(e.to_string()))?
            // The same checks as webpki's, and a certificate the user named
            // is trusted as it is (tls::trust).
            .dangerous()
            .with_custom_certificate_verifier(verifier)
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
            "the certificate does not verify for {name}: {} (--ca-file to trust its CA or the certificate itself, --insecure to skip the check)",
            verify_text(tls)
        ),
        offered: OFFERED.into(),
        spoke_tls: true,
    })
}

/// A [`TlsClient`] being built on a thread of its own, awaited when the first handshake
/// needs it. The `--ca-file` files are checked before the thread starts, so a bad file is
/// still an error before anything is sent.
#[derive(Debug)]
pub struct TlsClientLoader {
    thread: Mutex<Option<std::thread::JoinHandle<Result<TlsClient, SetupError>>>>,
    client: tokio::sync::OnceCell<TlsClient>,
}

impl TlsClientLoader {
    /// Checks `ca_files` now and starts building a verifying client (or, `insecure`, a
    /// recording one).
    pub fn start(insecure: bool, ca_files: Vec<PathBuf>) -> Result<TlsClientLoader, SetupError> {
        check_ca_files(&ca_files)?;
        let thread = std::thread::Builder::new()
            .name("sockeye-tls-roots".into())
            .spawn(move || {
                if insecure {
                    TlsClient::insecure(&ca_files)
                } else {
                    TlsClient::verifying(&ca_files)
                }
            })
            .map_err(|e| SetupError::Config(format!("cannot start a thread: {e}")))?;
        Ok(TlsClientLoader {
            thread: Mutex::new(Some(thread)),
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// The client, once built (waits for the thread the first time).
    pub async fn get(&self) -> Result<&TlsClient, SetupError> {
        self.client
            .get_or_try_init(|| async {
                let thread = self.thread.lock().ok().and_then(|mut t| t.take());
                let Some(thread) = thread else {
                    return Err(SetupError::Config("the TLS setup failed before".into()));
                };
                match tokio::task::spawn_blocking(move || thread.join()).await {
                    Ok(Ok(result)) => result,
                    _ => Err(SetupError::Config("the TLS setup thread panicked".into())),
                }
            })
            .await
    }
}

/// Each file must hold at least one PEM certificate (the same reading as
/// [`root_store`](super::root_store), which the loader's thread repeats).
pub fn check_ca_files(paths: &[PathBuf]) -> Result<(), SetupError> {
    let mut roots = super::Roots::empty();
    for path in paths {
        roots.add_pem_file(path)?;
    }
    Ok(())
}
