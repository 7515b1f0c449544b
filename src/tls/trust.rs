//! What a user trusts: the system's roots and the certificates named with
//! `--ca-file` (`--ssl-trustfile`, a plan's `ca_file`), and the one
//! verifier every client uses on them. A named certificate is a trust
//! anchor for chains, and also pinned: a server certificate byte-for-byte
//! equal to one of them is trusted as it is, which is what a user means
//! by giving the self-signed certificate of `openssl req -x509` (a CA:TRUE
//! certificate the server uses itself, which webpki refuses as "a CA used
//! as an end entity"). Everything else goes to webpki.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{SetupError, provider};

/// Trust anchors, and the certificates the user named (pinned).
#[derive(Debug, Clone)]
pub struct Roots {
    store: RootCertStore,
    named: Vec<CertificateDer<'static>>,
}

impl Roots {
    /// Nothing trusted yet.
    pub fn empty() -> Roots {
        Roots {
            store: RootCertStore::empty(),
            named: Vec::new(),
        }
    }

    /// The system's roots (rustls-native-certs); an unreadable one is
    /// skipped.
    pub fn system() -> Roots {
        let mut roots = Roots::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.store.add(cert);
        }
        roots
    }

    /// Trusts every PEM certificate in `path` (at least one), as a root
    /// and pinned.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), SetupError> {
        let bad = |message: String| SetupError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for item in CertificateDer::pem_slice_iter(&pem) {
            let cert: CertificateDer<'static> = item.map_err(|e| bad(e.to_string()))?;
            // A certificate webpki cannot take as an anchor is still pinned.
            let _ = self.store.add(cert.clone());
            self.named.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err(bad("no PEM certificate in it".into()));
        }
        Ok(())
    }

    /// Whether nothing at all is trusted.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty() && self.named.is_empty()
    }

    /// The anchors alone (a server verifying client certificates).
    pub fn into_store(self) -> RootCertStore {
        self.store
    }

    /// The verifier of server certificates for these roots.
    pub fn verifier(&self) -> Result<Arc<Verifier>, SetupError> {
        let provider = provider();
        let webpki = if self.store.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.store.clone()),
                    provider.clone(),
                )
                .build()
                .map_err(|e| SetupError::Verifier(e.to_string()))?,
            )
        };
        Ok(Arc::new(Verifier {
            policy: Policy::Trusted {
                named: self.named.clone(),
                webpki,
            },
            algorithms: provider.signature_verification_algorithms,
        }))
    }
}

/// The one verifier of server certificates. Trusted: a certificate the
/// user named, byte for byte, and whatever webpki accepts. Or, named for
/// what it is, any certificate: the scanner records instead of refusing
/// (the verdict comes afterwards from the trusted one), and ncat's default
/// for `cat --ssl`. The handshake signatures are always checked (a server
/// must prove it holds the key of the certificate it showed).
#[derive(Debug)]
pub struct Verifier {
    policy: Policy,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Policy {
    Trusted {
        named: Vec<CertificateDer<'static>>,
        webpki: Option<Arc<WebPkiServerVerifier>>,
    },
    DangerAcceptAny,
}

impl Verifier {
    /// Accepts any certificate (signatures still checked).
    pub fn danger_accept_any() -> Verifier {
        Verifier {
            policy: Policy::DangerAcceptAny,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Policy::Trusted { named, webpki } = &self.policy else {
            return Ok(ServerCertVerified::assertion());
        };
        if named.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        match webpki {
            Some(w) => {
                w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a certificate does not verify, in words (never rustls's or
/// webpki's type names).
pub fn verify_text(err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = err else {
        return err.to_string();
    };
    match c {
        C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".into(),
        C::UnknownIssuer => "unknown issuer (not signed by a trusted root)".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "certificate not valid for this name".into()
        }
        C::BadSignature => "bad signature".into(),
        C::Revoked => "revoked".into(),
        C::BadEncoding => "the certificate is not valid DER".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not for TLS servers (extended key usage)".into()
        }
        C::UnhandledCriticalExtension => {
            "the certificate has a critical extension we do not know".into()
        }
        C::Other(other) => webpki_text(&other.to_string()),
        other => words(&format!("{other:?}")),
    }
}

/// webpki's errors reach us as text (its type name); the common ones in
/// words, the rest with the name split into words.
fn webpki_text(name: &str) -> String {
    match name {
        "CaUsedAsEndEntity" => "the certificate is a CA certificate used as a server certificate \
             (give that certificate itself with --ca-file to trust it)"
            .into(),
        "EndEntityUsedAsCa" => "the chain uses a server certificate as a CA".into(),
        "PathLenConstraintViolated" => "the chain is longer than a CA allows".into(),
        "NameConstraintViolation" => "a CA's name constraints forbid this name".into(),
        "UnsupportedCertVersion" => "the certificate is not X.509 version 3".into(),
        other => words(other),
    }
}

/// `CamelCase { field: .. }` -> `camel case`: a name in words, whatever
/// follows it dropped.
fn words(name: &str) -> String {
    let name = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or(name);
    format!("the certificate was refused: {}", split_camel(name, ' '))
}

/// `CamelCase` -> `camel{sep}case` (the TLS alerts' snake_case with `_`).
pub(super) fn split_camel(name: &str, sep: char) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push(sep);
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError as C;

    #[test]
    fn refusals_read_as_words() {
        let other = |text: &'static str| {
            #[derive(Debug)]
            struct Named(&'static str);
            impl std::fmt::Display for Named {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(self.0)
                }
            }
            impl std::error::Error for Named {}
            C::Other(rustls::OtherError(Arc::new(Named(text))))
        };
        let table = [
            (C::Expired, "certificate expired"),
            (C::NotValidYet, "certificate not valid yet"),
            (
                C::UnknownIssuer,
                "unknown issuer (not signed by a trusted root)",
            ),
            (C::NotValidForName, "certificate not valid for this name"),
            (C::BadSignature, "bad signature"),
            (
                other("CaUsedAsEndEntity"),
                "the certificate is a CA certificate used as a server certificate \
                 (give that certificate itself with --ca-file to trust it)",
            ),
            (
                other("RequiredEkuNotFound"),
                "the certificate was refused: required eku not found",
            ),
            (
                C::UnknownRevocationStatus,
                "the certificate was refused: unknown revocation status",
            ),
        ];
        for (err, want) in table {
            let text = verify_text(&rustls::Error::InvalidCertificate(err));
            assert_eq!(text, want);
            assert!(!text.contains("Other(") && !text.contains('{'), "{text}");
        }
    }

    #[test]
    fn webpki_names_its_errors_as_we_expect() {
        // The text webpki_text matches on: webpki's Display is its name.
        let mut params = rcgen::CertificateParams::new(vec!["host".to_string()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&key).expect("ca");
        let mut roots = Roots::empty();
        let _ = roots.store.add(ca.der().clone());
        let verifier = roots.verifier().expect("verifier");
        let name = ServerName::try_from("host").expect("name");
        let refused = verifier
            .verify_server_cert(ca.der(), &[], &name, &[], UnixTime::now())
            .expect_err("webpki refuses a CA as end entity");
        assert_eq!(
            verify_text(&refused),
            webpki_text("CaUsedAsEndEntity"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_named_certificate_is_trusted_as_it_is() {
        let mut params = rcgen::CertificateParams::new(vec!["host".to_string()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&key).expect("ca");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, ca.pem()).expect("write");
        let mut roots = Roots::empty();
        roots.add_pem_file(&path).expect("add");
        let verifier = roots.verifier().expect("verifier");
        // Even under another name: the user named this very certificate.
        for name in ["host", "elsewhere.test"] {
            let name = ServerName::try_from(name).expect("name");
            verifier
                .verify_server_cert(ca.der(), &[], &name, &[], UnixTime::now())
                .expect("pinned");
        }
        let other = rcgen::generate_simple_self_signed(vec!["host".into()]).expect("other");
        let name = ServerName::try_from("host").expect("name");
        assert!(
            verifier
                .verify_server_cert(other.cert.der(), &[], &name, &[], UnixTime::now())
                .is_err()
        );
    }
}
