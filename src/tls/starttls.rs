//! STARTTLS on a stream that is already talking: the command of each
//! protocol and the reply that accepts it (SMTP STARTTLS -> 220, POP3 STLS
//! -> +OK, IMAP `a1 STARTTLS` -> tagged OK, FTP AUTH TLS -> 234, LDAP's
//! StartTLS extended operation -> success), over a
//! [`Conn`] and `sockeye_proto`'s codecs. One place for it: `probe`'s
//! dialogues call [`command`] after their own greeting and capability
//! checks, `talk`'s `starttls` step calls [`request`] (EHLO first for
//! SMTP; the greeting was the conversation's own business). The TLS
//! handshake that follows is
//! [`Scanner::upgrade`](crate::tls::Scanner::upgrade).

use sockeye_proto::{imap, ldap, pop3, reply, smtp};

use crate::net::{CheckError, Conn};

/// IMAP: untagged lines skipped while waiting for the tagged reply.
pub const IMAP_MAX_UNTAGGED: usize = 16;

/// A protocol with a STARTTLS command. Scripts (a `talk` step's
/// `starttls`) name the line-based ones; LDAP's StartTLS is a binary
/// exchange no script writes, so it does not deserialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Smtp,
    Pop3,
    Imap,
    Ftp,
    #[serde(skip_deserializing)]
    Ldap,
}

impl Protocol {
    /// Every protocol, in the order help texts list them.
    pub const ALL: [Protocol; 5] = [
        Protocol::Smtp,
        Protocol::Pop3,
        Protocol::Imap,
        Protocol::Ftp,
        Protocol::Ldap,
    ];

    /// The name scripts and flags spell it with (`smtp`, `pop3`...).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
            Protocol::Ftp => "ftp",
            Protocol::Ldap => "ldap",
        }
    }

    /// The protocol named `name` (lowercase, as [`Protocol::name`]).
    pub fn parse(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The command, as reports name it.
    pub fn command(self) -> &'static str {
        match self {
            Protocol::Smtp | Protocol::Imap => "STARTTLS",
            Protocol::Pop3 => "STLS",
            Protocol::Ftp => "AUTH TLS",
            Protocol::Ldap => "StartTLS",
        }
    }
}

/// The server's answer to the STARTTLS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub accepted: bool,
    /// The reply's first line, as received.
    pub reply: String,
}

/// Sends `proto`'s STARTTLS command (after EHLO `ehlo_name` for SMTP) and
/// reads the answer. On `accepted`, the caller runs the handshake next.
pub async fn request(
    conn: &mut Conn,
    proto: Protocol,
    ehlo_name: &str,
) -> Result<Answer, CheckError> {
    if proto == Protocol::Smtp {
        let ehlo = smtp::ehlo(ehlo_name).map_err(|e| CheckError::new("ehlo", e.to_string()))?;
        conn.send("ehlo", &ehlo).await?;
        let r = conn.read_msg("ehlo", reply::decode).await?;
        if r.class() != 2 {
            return Err(CheckError::new(
                "ehlo",
                format!("EHLO refused: {}", r.first_line()),
            ));
        }
    }
    command(conn, proto).await
}

/// Sends `proto`'s STARTTLS command and reads the answer, with nothing
/// before it: the session must be where the command is allowed (SMTP: after
/// EHLO or HELO). LDAP's request has message ID 2 (so a probe's search
/// may take 1).
pub async fn command(conn: &mut Conn, proto: Protocol) -> Result<Answer, CheckError> {
    match proto {
        Protocol::Smtp | Protocol::Ftp => {
            let (cmd, yes) = match proto {
                Protocol::Smtp => (smtp::starttls(), 220),
                _ => (b"AUTH TLS\r\n".to_vec(), 234),
            };
            conn.send("starttls", &cmd).await?;
            let r = conn.read_msg("starttls", reply::decode).await?;
            Ok(Answer {
                accepted: r.code == yes,
                reply: r.first_line(),
            })
        }
        Protocol::Pop3 => {
            conn.send("starttls", &pop3::stls()).await?;
            let s = conn.read_msg("starttls", pop3::decode_status).await?;
            Ok(Answer {
                accepted: s.ok,
                reply: s.to_string(),
            })
        }
        Protocol::Imap => {
            let cmd = imap::command("a1", "STARTTLS")
                .map_err(|e| CheckError::new("starttls", e.to_string()))?;
            conn.send("starttls", &cmd).await?;
            for _ in 0..=IMAP_MAX_UNTAGGED {
                let line = conn.read_msg("starttls", imap::decode_line).await?;
                if let imap::ImapLine::Tagged { tag, status, .. } = &line
                    && tag == "a1"
                {
                    return Ok(Answer {
                        accepted: *status == imap::ImapStatus::Ok,
                        reply: imap_text(&line),
                    });
                }
            }
            Err(CheckError::new(
                "starttls",
                format!("no tagged reply within {IMAP_MAX_UNTAGGED} lines"),
            ))
        }
        Protocol::Ldap => {
            conn.send("starttls", &ldap::start_tls_request(2)).await?;
            let msg = conn.read_msg("starttls", ldap::decode_message).await?;
            Ok(match &msg.op {
                ldap::LdapOp::ExtendedResponse {
                    result_code,
                    diagnostic,
                    ..
                } => {
                    let mut text = format!("{} ({result_code})", ldap::result_name(*result_code));
                    if !diagnostic.is_empty() {
                        text.push_str(": ");
                        text.push_str(diagnostic);
                    }
                    Answer {
                        accepted: *result_code == 0,
                        reply: text,
                    }
                }
                other => Answer {
                    accepted: false,
                    reply: format!("unexpected LDAP message {other:?}"),
                },
            })
        }
    }
}

/// An IMAP line as received, without its line ending.
pub fn imap_text(line: &imap::ImapLine) -> String {
    String::from_utf8_lossy(&imap::encode_line(line))
        .trim_end()
        .to_string()
}
