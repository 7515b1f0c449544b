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
    let mut out = Vec::new();
    for line in s.greeting.iter().skip(1) {
        out.push(format!("  {line}"));
    }
    if !s.telnet.is_empty() {
        out.push(format!("telnet: {}", s.telnet.join(", ")));
    }
    if let Some(tls) = &s.tls {
        tls_details(&mut out, "tls", tls);
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
            tls_details(&mut out, "  tls", tls);
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

fn tls_details(out: &mut Vec<String>, label: &str, tls: &TlsOutcome) {
    match tls {
        TlsOutcome::Ok(f) => {
            let mut line = format!("{label}: {} {}", f.version, f.cipher);
            if let Some(alpn) = &f.alpn {
                line.push_str(&format!(" alpn {alpn}"));
            }
            out.push(line);
            cert_details(out, label, f.chain.first());
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
