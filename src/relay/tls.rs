//! The cat's TLS (`--ssl*`): rustls client and server configurations on
//! the ring provider, the in-memory certificate listen mode makes when no
//! `--ssl-cert` is given, and the handshakes.
//!
//! As in ncat, a client does not verify the server unless `--ssl-verify`
//! (the verifier that accepts anything is named `danger_*`). In listen
//! mode `--ssl-verify` asks every client for a certificate and verifies it
//! against `--ssl-trustfile` (or the system's roots).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};

use super::RelayError;
use super::stream::NetStream;

/// The `--ssl*` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: bool,
    pub trustfile: Option<PathBuf>,
    pub servername: Option<String>,
    pub alpn: Vec<String>,
}

use crate::tls::{Roots, provider};

fn cfg_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::TlsConfig(e.to_string())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(cfg_err(format!("{}: no certificate in it", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, RelayError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| cfg_err(format!("{}: {e}", path.display())))
}

/// The roots to verify against: `--ssl-trustfile` alone (as ncat, the
/// system's are not added to it; its certificates are also pinned, see
/// `tls::trust`), or else the system's, found the way the rest of sockeye
/// finds them.
fn roots(trustfile: Option<&Path>) -> Result<Roots, RelayError> {
    let Some(path) = trustfile else {
        return crate::tls::root_store(&[]).map_err(cfg_err);
    };
    let mut roots = Roots::empty();
    roots.add_pem_file(path).map_err(cfg_err)?;
    Ok(roots)
}

fn alpn(list: &[String]) -> Vec<Vec<u8>> {
    list.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// SHA-256 of a DER certificate as colon-separated hex pairs.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The client configuration.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, RelayError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(cfg_err)?;
    let builder = if opts.verify {
        let verifier = roots(opts.trustfile.as_deref())?
            .verifier()
            .map_err(cfg_err)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(crate::tls::danger_accept_any_server())
    };
    let mut config = match (&opts.cert, &opts.key) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(load_certs(c)?, load_key(k)?)
            .map_err(cfg_err)?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(cfg_err("--ssl-cert and --ssl-key go together")),
    };
    config.alpn_protocols = alpn(&opts.alpn);
    Ok(Arc::new(config))
}

/// The server configuration and, for a generated certificate, its
/// SHA-256 fingerprint (for the user to compare on the client side).
pub fn server_config(opts: &TlsOptions) -> Result<(Arc<ServerConfig>, Option<String>), RelayError> {
    let (chain, key, fp) = match (&opts.cert, &opts.key) {
        (Some(c), Some(k)) => (load_certs(c)?, load_key(k)?, None),
        (None, None) => {
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .map_err(cfg_err)?;
            let der = ck.cert.der().clone();
            let fp = fingerprint(&der);
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(cfg_err)?;
            (vec![der], key, Some(fp))
        }
        _ => return Err(cfg_err("--ssl-cert and --ssl-key go together")),
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(cfg_err)?;
    let builder = if opts.verify {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(opts.trustfile.as_deref())?.into_store()),
            provider(),
        )
        .build()
        .map_err(cfg_err)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(cfg_err)?;
    config.alpn_protocols = alpn(&opts.alpn);
    Ok((Arc::new(config), fp))
}

/// Client handshake over `stream`; `host` is the name to send (SNI) and
/// verify, unless `--ssl-servername` overrides it.
pub async fn connect(
    config: Arc<ClientConfig>,
    opts: &TlsOptions,
    host: &str,
    stream: NetStream,
) -> Result<NetStream, RelayError> {
    let peer = stream.peer_label();
    let name = opts.servername.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| cfg_err(format!("server name {name:?}: {e}")))?;
    let s = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| RelayError::Tls {
            peer,
            why: crate::tls::handshake_text(&e),
        })?;
    Ok(NetStream::TlsClient(Box::new(s)))
}

/// Server handshake over an accepted stream.
pub async fn accept(config: Arc<ServerConfig>, stream: NetStream) -> Result<NetStream, RelayError> {
    let peer = stream.peer_label();
    let s = tokio_rustls::TlsAcceptor::from(config)
        .accept(stream)
        .await
        .map_err(|e| RelayError::Tls {
            peer,
            why: e.to_string(),
        })?;
    Ok(NetStream::TlsServer(Box::new(s)))
}

/// The negotiated ALPN protocol of a TLS stream, if any.
pub fn alpn_of(stream: &NetStream) -> Option<String> {
    let proto = match stream {
        NetStream::TlsClient(s) => s.get_ref().1.alpn_protocol(),
        NetStream::TlsServer(s) => s.get_ref().1.alpn_protocol(),
        _ => None,
    }?;
    Some(String::from_utf8_lossy(proto).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint(b"abc");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.starts_with("BA:78:16:BF"), "{fp}");
    }
}
