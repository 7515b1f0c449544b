//! STARTTLS on a stream that is already talking: the command of each
//! protocol and the reply that accepts it (SMTP EHLO then STARTTLS -> 220,
//! POP3 STLS -> +OK, IMAP `a1 STARTTLS` -> tagged OK, FTP AUTH TLS -> 234),
//! over a [`Conn`] and `sockeye_proto`'s codecs,
//! the same as `probe`'s dialogues use. Used by `talk`'s `starttls` step
//! (the greeting was the conversation's own business); the TLS handshake
//! that follows is [`Conn::upgrade`](crate::probe::conn::Conn::upgrade).

use sockeye_proto::{imap, pop3, reply, smtp};

use crate::probe::conn::{CheckError, Conn};

/// IMAP: untagged lines skipped while waiting for the tagged reply.
const IMAP_MAX_UNTAGGED: usize = 16;

/// A protocol with a STARTTLS command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Pop3,
    Imap,
    Ftp,
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
    match proto {
        Protocol::Smtp => {
            let ehlo = smtp::ehlo(ehlo_name).map_err(|e| CheckError::new("ehlo", e.to_string()))?;
            conn.send("ehlo", &ehlo).await?;
            let r = conn.read_msg("ehlo", reply::decode).await?;
            if r.class() != 2 {
                return Err(CheckError::new(
                    "ehlo",
                    format!("EHLO refused: {}", r.first_line()),
                ));
            }
            conn.send("starttls", &smtp::starttls()).await?;
            let r = conn.read_msg("starttls", reply::decode).await?;
            Ok(Answer {
                accepted: r.code == 220,
                reply: r.first_line(),
            })
        }
        Protocol::Ftp => {
            conn.send("starttls", b"AUTH TLS\r\n").await?;
            let r = conn.read_msg("starttls", reply::decode).await?;
            Ok(Answer {
                accepted: r.code == 234,
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
                    let text = String::from_utf8_lossy(&imap::encode_line(&line))
                        .trim_end()
                        .to_string();
                    return Ok(Answer {
                        accepted: *status == imap::ImapStatus::Ok,
                        reply: text,
                    });
                }
            }
            Err(CheckError::new(
                "starttls",
                format!("no tagged reply within {IMAP_MAX_UNTAGGED} lines"),
            ))
        }
    }
}
