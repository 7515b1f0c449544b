//! What a TLS handshake tells a scanner: the negotiated version, suite and
//! ALPN, and for every certificate of the chain its subject, issuer, names,
//! validity, key, signature algorithm and SHA-256 fingerprint.
//!
//! These are plain data (serialised as output.md's `tls` object); they are
//! filled in by [`super::Scanner`] and by the raw-hello path for servers
//! rustls will not talk to.

use serde::Serialize;
use x509_parser::prelude::*;

/// The facts of one completed handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    /// "TLSv1.3", "TLSv1.2".
    pub version: String,
    /// IANA name, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Leaf first, as the server sent them.
    pub chain: Vec<CertFacts>,
    /// Whether the chain verifies against the trusted roots for the name used.
    pub verified: bool,
    /// Why it does not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// The name the chain was checked against (and sent as SNI, when a name).
    pub name: String,
}

/// One certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub expired: bool,
    /// Whole days until `not_after` when the facts were read (negative
    /// once expired).
    pub days_left: i64,
    /// Not yet valid (not_before in the future).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_yet_valid: bool,
    /// "RSA 2048", "EC P-256", "Ed25519".
    pub key: String,
    /// "sha256WithRSAEncryption", "ecdsa-with-SHA256", ...
    pub signature: String,
    /// Lower-case hex, no separators.
    pub sha256: String,
    /// Set when the DER did not parse: the other fields are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl CertFacts {
    /// Reads the facts of a DER certificate. Never fails: a certificate that
    /// does not parse is reported with its fingerprint and the parse error.
    pub fn from_der(der: &[u8]) -> CertFacts {
        let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        match X509Certificate::from_der(der) {
            Ok((_, cert)) => facts_of(&cert, sha256),
            Err(err) => CertFacts {
                subject: String::new(),
                issuer: String::new(),
                sans: Vec::new(),
                not_before: String::new(),
                not_after: String::new(),
                expired: false,
                days_left: 0,
                not_yet_valid: false,
                key: String::new(),
                signature: String::new(),
                sha256,
                parse_error: Some(err.to_string()),
            },
        }
    }
}

fn facts_of(cert: &X509Certificate<'_>, sha256: String) -> CertFacts {
    let validity = cert.validity();
    let now = ASN1Time::now();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(ip) => sans.push(format!("IP:{}", ip_text(ip))),
                GeneralName::RFC822Name(m) => sans.push(format!("email:{m}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                _ => {}
            }
        }
    }
    CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: rfc3339(validity.not_before),
        not_after: rfc3339(validity.not_after),
        expired: validity.not_after < now,
        days_left: (validity.not_after.timestamp() - now.timestamp()).div_euclid(86_400),
        not_yet_valid: validity.not_before > now,
        key: key_text(cert),
        signature: oid_name(&cert.signature_algorithm.algorithm),
        sha256,
        parse_error: None,
    }
}

fn rfc3339(t: ASN1Time) -> String {
    t.to_datetime()
        .format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex(bytes),
    }
}

fn key_text(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid_name(&oid))
                .unwrap_or_else(|| format!("{} bits", point.key_size()));
            let curve = match curve.as_str() {
                "prime256v1" => "P-256".to_string(),
                "secp384r1" => "P-384".to_string(),
                "secp521r1" => "P-521".to_string(),
                _ => curve,
            };
            format!("EC {curve}")
        }
        Ok(PublicKey::DSA(_)) => "DSA".to_string(),
        Ok(PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_)) => "GOST".to_string(),
        Ok(PublicKey::Unknown(_)) | Err(_) => oid_name(&spki.algorithm.algorithm),
    }
}

/// A registered short name for an OID ("sha256WithRSAEncryption",
/// "ED25519"), or its dotted form.
fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    match x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry()) {
        Ok(name) => match name {
            "ED25519" => "Ed25519".to_string(),
            _ => name.to_string(),
        },
        Err(_) => oid.to_id_string(),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
