//! The typed result of one service check (`sockeye probe`, `scan --probe`):
//! what answered on a port, what it said, and what TLS it speaks. Field
//! names are output.md's `service` record; printers render it, the prober
//! fills it in.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{PortState, Reason};
use crate::tls::TlsFacts;

/// Everything one check found out about one (host, port).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceResult {
    #[serde(skip)]
    pub host_index: u64,
    pub addr: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Arc<str>>,
    pub port: u16,
    #[serde(skip)]
    pub state: PortState,
    #[serde(skip)]
    pub reason: Reason,
    /// What answered, recognised from what it said ("smtp", "ssh"), or the
    /// port's usual service when it said nothing that tells.
    pub service: String,
    /// How `service` was decided.
    pub method: Method,
    /// The server's product, when what it said names it (LDAP's root DSE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The first line the server sent (greeting, banner, HTTP status line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// Every line of a multi-line greeting (SMTP/FTP 220-...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub greeting: Vec<String>,
    /// Telnet options the server negotiated, decoded ("WILL ECHO").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telnet: Vec<String>,
    /// Capabilities advertised (SMTP EHLO keywords, IMAP CAPABILITY).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Implicit TLS (smtps, imaps, https, ...): the handshake's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOutcome>,
    /// The in-protocol upgrade (STARTTLS, STLS, AUTH TLS, LDAP StartTLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StartTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFacts>,
    /// `--tls-versions`: which versions the server accepts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_versions: Vec<VersionVerdict>,
    /// Things worth knowing ("port 110 usually means pop3").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The step that failed, if one did; the facts before it stand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Each step and how long it took.
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// How the service name was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// From what the server said (nmap's "probed").
    Probed,
    /// From the port number alone (nmap's "table").
    Table,
}

/// The outcome of a TLS handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TlsOutcome {
    Ok(TlsFacts),
    Failed {
        failed: String,
        /// The certificates an old server showed to a raw pre-1.3 hello
        /// (`--tls-versions`), when rustls could not talk to it.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        chain: Vec<crate::tls::CertFacts>,
    },
}

/// STARTTLS and its kin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartTls {
    /// The command sent: "STARTTLS", "STLS", "AUTH TLS", "StartTLS".
    pub command: &'static str,
    /// Whether the server listed it among its capabilities (SMTP EHLO,
    /// IMAP CAPABILITY), when it lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered: Option<bool>,
    /// Whether the server said yes to the command.
    pub accepted: bool,
    /// The server's answer to the command.
    pub reply: String,
    /// The handshake on the upgraded connection, when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOutcome>,
}

/// What an HTTP server answered to `HEAD /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpFacts {
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// One TLS version and whether the server accepted a hello offering only it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionVerdict {
    pub version: String,
    pub accepted: bool,
    /// The negotiated suite, or the alert or error that refused it.
    pub detail: String,
}

/// A failed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    pub step: &'static str,
    pub message: String,
}

/// A step and its duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub step: &'static str,
    #[serde(serialize_with = "ms")]
    pub ms: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(super::common::millis(*d))
}

impl ServiceResult {
    /// The line a person reads first: what it is and the most telling fact.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(http) = &self.http {
            let mut s = format!("{} {}", http.status, http.reason);
            if let Some(server) = &http.server {
                s = format!("{server} ({s})");
            }
            parts.push(s);
        } else if let Some(banner) = &self.banner {
            parts.push(banner.clone());
        } else if let Some(product) = &self.product {
            parts.push(product.clone());
        }
        if let Some(tls) = &self.tls {
            parts.push(tls_summary("TLS", tls));
        }
        if let Some(st) = &self.starttls {
            parts.push(match (&st.tls, st.accepted) {
                (Some(tls), true) => tls_summary(st.command, tls),
                (_, true) => format!("{} accepted", st.command),
                (_, false) => format!("no {}", st.command),
            });
        }
        let tls_failure_shown = matches!(self.tls, Some(TlsOutcome::Failed { .. }))
            || matches!(
                self.starttls.as_ref().and_then(|s| s.tls.as_ref()),
                Some(TlsOutcome::Failed { .. })
            );
        if let Some(err) = &self.error
            && !(err.step == "tls" && tls_failure_shown)
        {
            parts.push(format!("{} failed: {}", err.step, err.message));
        }
        parts.join("; ")
    }
}

fn tls_summary(label: &str, tls: &TlsOutcome) -> String {
    match tls {
        TlsOutcome::Ok(f) => {
            let cert = f.chain.first();
            let mut s = format!("{label} {}", f.version);
            if cert.is_some_and(|c| c.expired) {
                s.push_str(", cert EXPIRED");
            }
            s.push_str(if f.verified {
                ", trusted"
            } else {
                ", untrusted"
            });
            s
        }
        TlsOutcome::Failed { failed, .. } => format!("{label}: {failed}"),
    }
}

/// The lines shown under a service's row in the table: greeting lines,
/// TLS and certificate facts, STARTTLS, versions, notes, the failed step.
pub(crate) fn details(s: &ServiceResult) -> Vec<String> {
    details_seen(s, &mut std::collections::HashMap::new())
}

/// As [`details`], but a certificate already shown for another port of the
/// host (`seen`: fingerprint -> "25/tcp") is named in one line, not repeated.
pub(crate) fn details_seen(
    s: &ServiceResult,
    seen: &mut std::collections::HashMap<String, String>,
) -> Vec<String> {
    let here = format!("{}/tcp", s.port);
    let mut out = Vec::new();
    for line in s.greeting.iter().skip(1) {
        out.push(format!("  {line}"));
    }
    if !s.telnet.is_empty() {
        out.push(format!("telnet: {}", s.telnet.join(", ")));
    }
    if let Some(tls) = &s.tls {
        tls_details(&mut out, "tls", tls, seen, &here);
    }
    if let Some(st) = &s.starttls {
        let offered = match st.offered {
            Some(true) => "offered, ",
            Some(false) => "not offered, ",
            None => "",
        };
        let verdict = if st.accepted { "accepted" } else { "refused" };
        out.push(format!("{}: {offered}{verdict}: {}", st.command, st.reply));
        if let Some(tls) = &st.tls {
            tls_details(&mut out, "  tls", tls, seen, &here);
        }
    }
    if let Some(http) = &s.http
        && http.status >= 400
    {
        out.push(format!("http: {} {}", http.status, http.reason));
    }
    if !s.tls_versions.is_empty() {
        let list: Vec<String> = s
            .tls_versions
            .iter()
            .map(|v| format!("{} {}", v.version, if v.accepted { "yes" } else { "no" }))
            .collect();
        out.push(format!("versions: {}", list.join(", ")));
    }
    for note in &s.notes {
        out.push(format!("note: {note}"));
    }
    let tls_failure_shown = matches!(s.tls, Some(TlsOutcome::Failed { .. }))
        || matches!(
            s.starttls.as_ref().and_then(|st| st.tls.as_ref()),
            Some(TlsOutcome::Failed { .. })
        );
    if let Some(err) = &s.error
        && err.step != "connect"
        && !(err.step == "tls" && tls_failure_shown)
    {
        out.push(format!("error ({}): {}", err.step, err.message));
    }
    out
}

fn tls_details(
    out: &mut Vec<String>,
    label: &str,
    tls: &TlsOutcome,
    seen: &mut std::collections::HashMap<String, String>,
    here: &str,
) {
    match tls {
        TlsOutcome::Ok(f) => {
            let mut line = format!("{label}: {} {}", f.version, f.cipher);
            if let Some(alpn) = &f.alpn {
                line.push_str(&format!(" alpn {alpn}"));
            }
            out.push(line);
            match f.chain.first() {
                Some(c) if seen.contains_key(&c.sha256) => out.push(format!(
                    "{label}: the certificate of {} (sha256 {}...)",
                    seen[&c.sha256],
                    &c.sha256[..c.sha256.len().min(16)]
                )),
                Some(c) => {
                    seen.insert(c.sha256.clone(), here.to_string());
                    cert_details(out, label, Some(c));
                }
                None => {}
            }
            out.push(match (&f.verified, &f.verify_error) {
                (true, _) => format!("{label}: chain verifies for {}", f.name),
                (false, Some(why)) => {
                    format!("{label}: chain does not verify for {}: {why}", f.name)
                }
                (false, None) => format!("{label}: chain does not verify for {}", f.name),
            });
        }
        TlsOutcome::Failed { failed, chain } => {
            out.push(format!("{label}: {failed}"));
            cert_details(out, label, chain.first());
        }
    }
}

fn cert_details(out: &mut Vec<String>, label: &str, cert: Option<&crate::tls::CertFacts>) {
    let Some(c) = cert else { return };
    out.push(format!(
        "{label}: subject {}; issuer {}",
        c.subject, c.issuer
    ));
    if !c.sans.is_empty() {
        out.push(format!("{label}: names {}", c.sans.join(", ")));
    }
    let state = if c.expired {
        "EXPIRED".to_string()
    } else if c.not_yet_valid {
        "NOT YET VALID".to_string()
    } else {
        format!("{} days left", c.days_left)
    };
    out.push(format!(
        "{label}: valid {} to {} ({state}); {} key, {}",
        c.not_before, c.not_after, c.key, c.signature
    ));
    out.push(format!("{label}: sha256 {}", c.sha256));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{CertFacts, TlsFacts};

    fn cert() -> CertFacts {
        CertFacts {
            subject: "CN=lab.test".into(),
            issuer: "CN=lab CA".into(),
            sans: vec!["DNS:lab.test".into()],
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            expired: false,
            days_left: 34,
            not_yet_valid: false,
            key: "RSA 2048".into(),
            signature: "sha256WithRSAEncryption".into(),
            sha256: "ab".repeat(32),
            parse_error: None,
        }
    }

    fn result(port: u16, tls: Option<TlsOutcome>) -> ServiceResult {
        ServiceResult {
            host_index: 0,
            addr: "198.18.0.2".parse().expect("addr"),
            host: None,
            port,
            state: PortState::Open,
            reason: Reason::SynAck,
            service: "https".into(),
            method: Method::Probed,
            product: None,
            banner: None,
            greeting: Vec::new(),
            telnet: Vec::new(),
            capabilities: Vec::new(),
            tls,
            starttls: None,
            http: Some(HttpFacts {
                status: 200,
                reason: "OK".into(),
                server: Some("nginx".into()),
            }),
            tls_versions: Vec::new(),
            notes: Vec::new(),
            error: None,
            steps: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn ok_tls(verified: bool) -> TlsOutcome {
        TlsOutcome::Ok(TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: None,
            chain: vec![cert()],
            verified,
            verify_error: (!verified)
                .then(|| "unknown issuer (not signed by a trusted root)".into()),
            name: "198.18.0.2".into(),
        })
    }

    #[test]
    fn summary_says_what_it_is_and_whether_tls_is_trusted() {
        assert_eq!(
            result(443, Some(ok_tls(true))).summary(),
            "nginx (200 OK); TLS TLSv1.3, trusted"
        );
        let failed = TlsOutcome::Failed {
            failed: "TLS handshake failed: x".into(),
            chain: Vec::new(),
        };
        let mut r = result(7010, Some(failed));
        r.http = None;
        r.error = Some(StepError {
            step: "tls",
            message: "TLS handshake failed: x".into(),
        });
        // The failure is said once, not twice.
        assert_eq!(r.summary(), "TLS: TLS handshake failed: x");
    }

    #[test]
    fn a_certificate_seen_on_another_port_is_named_not_repeated() {
        let mut seen = std::collections::HashMap::new();
        let first = details_seen(&result(443, Some(ok_tls(false))), &mut seen);
        assert_eq!(
            first,
            [
                "tls: TLSv1.3 TLS13_AES_256_GCM_SHA384",
                "tls: subject CN=lab.test; issuer CN=lab CA",
                "tls: names DNS:lab.test",
                "tls: valid 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z (34 days left); RSA 2048 key, sha256WithRSAEncryption",
                &format!("tls: sha256 {}", "ab".repeat(32)),
                "tls: chain does not verify for 198.18.0.2: unknown issuer (not signed by a trusted root)",
            ]
        );
        let second = details_seen(&result(8443, Some(ok_tls(false))), &mut seen);
        assert_eq!(
            second,
            [
                "tls: TLSv1.3 TLS13_AES_256_GCM_SHA384",
                "tls: the certificate of 443/tcp (sha256 abababababababab...)",
                "tls: chain does not verify for 198.18.0.2: unknown issuer (not signed by a trusted root)",
            ]
        );
    }
}
