//! `sockeye mail`: an SMTP submission client for testing mail servers, the way swaks is
//! used. The dialogue is `sockeye_proto::smtp::Client` (sans-IO); this module owns the
//! connection (TCP, implicit TLS or STARTTLS through [`crate::tls::client::TlsClient`]),
//! reads replies with bounded buffers and a timeout per step, and sends every step as an
//! [`Event`] into an [`Emit`] (the printers are `report/mail.rs`). The run ends in a [`Report`] whose
//! [`FailStage`] names the step that failed (and so the exit status).

pub mod message;

use std::time::{Duration, Instant};

use sockeye_proto::reply::{self, Reply};
use sockeye_proto::smtp::{self, Action, Client, ClientOptions, Failure, Outcome, Stage};

use crate::net::{Conn, Io, ReadError, secs_text};
use crate::report::{Emit, Stopped};
use crate::tls::client::TlsClientLoader;

pub use crate::report::mail::{Event, FailStage, Report, stage_name};

/// Bytes kept from the server at most while a reply is incomplete: a reply is capped at
/// `reply::MAX_REPLY_BYTES` (64 KiB) by the decoder; pipelined replies add a few lines.
const MAX_BUFFER: usize = reply::MAX_REPLY_BYTES + 4096;
/// Message lines shown in the transcript before the rest is summed up (an attachment is
/// thousands of base64 lines that say nothing).
pub const SHOWN_MESSAGE_LINES: usize = 40;
/// What a masked secret looks like in the transcript.
pub const MASK: &str = "********";
/// How long a whole session may take unless told otherwise (`--session-timeout`, a plan's
/// mail checks): a server that answers each read with one byte must not hold us forever.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(300);
/// What a read says when the session's time is up.
const SESSION_OVER: &str = "the session took longer than its time limit (--session-timeout)";

/// Where to stop: `--quit-after` and a plan's `quit_after` (swaks' names):
/// right after the TCP connection (and the TLS handshake on port 465), after
/// the greeting, the first EHLO/HELO, the TLS handshake, AUTH, MAIL FROM or
/// RCPT TO. (The variants carry no doc comments: clap would print them in
/// `--help`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuitAfter {
    Connect,
    Banner,
    Ehlo,
    Tls,
    Auth,
    Mail,
    Rcpt,
}

impl QuitAfter {
    /// Every step, in the order a session reaches them.
    pub const ALL: [QuitAfter; 7] = [
        QuitAfter::Connect,
        QuitAfter::Banner,
        QuitAfter::Ehlo,
        QuitAfter::Tls,
        QuitAfter::Auth,
        QuitAfter::Mail,
        QuitAfter::Rcpt,
    ];

    /// swaks' name for the step (`--quit-after`, a plan's `quit_after`).
    pub fn name(self) -> &'static str {
        match self {
            QuitAfter::Connect => "connect",
            QuitAfter::Banner => "banner",
            QuitAfter::Ehlo => "ehlo",
            QuitAfter::Tls => "tls",
            QuitAfter::Auth => "auth",
            QuitAfter::Mail => "mail",
            QuitAfter::Rcpt => "rcpt",
        }
    }

    /// A plan's `quit_after`: a step's name, or `none` (send the message,
    /// `Some(None)`); absent is `None`.
    pub fn deserialize_or_none<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<QuitAfter>>, D::Error> {
        const WORDS: &[&str] = &[
            "connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "none",
        ];
        // Read as an enum, the way a derived one is, so the plan's parser
        // points at the value when the word is wrong.
        struct Word(Option<QuitAfter>);
        impl<'de> serde::Deserialize<'de> for Word {
            fn deserialize<I: serde::Deserializer<'de>>(d: I) -> Result<Word, I::Error> {
                struct Id;
                impl serde::de::Visitor<'_> for Id {
                    type Value = Word;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("variant identifier")
                    }
                    fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<Word, E> {
                        if word == "none" {
                            return Ok(Word(None));
                        }
                        QuitAfter::ALL
                            .into_iter()
                            .find(|q| q.name() == word)
                            .map(|q| Word(Some(q)))
                            .ok_or_else(|| E::unknown_variant(word, WORDS))
                    }
                }
                d.deserialize_identifier(Id)
            }
        }
        struct Step;
        impl<'de> serde::de::Visitor<'de> for Step {
            type Value = Option<QuitAfter>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a step name or none")
            }
            fn visit_enum<A: serde::de::EnumAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::VariantAccess;
                let (Word(step), variant) = a.variant::<Word>()?;
                variant.unit_variant()?;
                Ok(step)
            }
        }
        d.deserialize_enum("QuitAfter", WORDS, Step).map(Some)
    }
}

// Which step a failure belongs to: the engine's reading of proto's
// outcomes (FailStage itself is a report type).
impl FailStage {
    fn of_failure(f: Failure) -> FailStage {
        match f {
            Failure::Greeting => FailStage::Banner,
            Failure::Hello => FailStage::Ehlo,
            Failure::TlsNotOffered | Failure::TlsRefused => FailStage::Tls,
            Failure::AuthNotOffered | Failure::AuthFailed | Failure::PlaintextAuth => {
                FailStage::Auth
            }
            Failure::SenderRejected | Failure::ResetRefused => FailStage::Mail,
            Failure::NoRecipientAccepted => FailStage::Rcpt,
            Failure::DataRefused | Failure::MessageRejected => FailStage::Data,
        }
    }

    /// The step a connection lost while waiting for `stage`'s reply belongs to; `None` for
    /// QUIT (the work was done).
    fn of_stage(stage: Stage) -> Option<FailStage> {
        Some(match stage {
            Stage::Greeting => FailStage::Banner,
            Stage::Ehlo | Stage::Helo => FailStage::Ehlo,
            Stage::StartTls => FailStage::Tls,
            Stage::Auth => FailStage::Auth,
            Stage::MailFrom | Stage::Rset => FailStage::Mail,
            Stage::RcptTo(_) => FailStage::Rcpt,
            Stage::Data | Stage::Message => FailStage::Data,
            Stage::Quit => return None,
        })
    }
}

/// The reply a step waits for, in words, for errors.
fn awaited(stage: Stage) -> &'static str {
    match stage {
        Stage::Greeting => "the greeting",
        Stage::Ehlo => "the EHLO reply",
        Stage::Helo => "the HELO reply",
        Stage::StartTls => "the STARTTLS reply",
        Stage::Auth => "the AUTH reply",
        Stage::MailFrom => "the MAIL FROM reply",
        Stage::RcptTo(_) => "the RCPT TO reply",
        Stage::Data => "the DATA reply",
        Stage::Message => "the reply to the message, after its final \".\"",
        Stage::Rset => "the RSET reply",
        Stage::Quit => "the QUIT reply",
    }
}

/// What a run does, validated (cli/mail.rs builds it).
#[derive(Debug)]
pub struct MailConfig {
    /// The host as typed (the name certificates are checked against).
    pub host: String,
    pub port: u16,
    /// EHLO name; `None`: the local address literal (`[198.18.0.1]`).
    pub ehlo: Option<String>,
    /// The dialogue's options; its `hello_name` is filled in after connecting.
    pub dialogue: ClientOptions,
    /// The TLS client, built in the background; `None` with `--no-tls`.
    pub tls: Option<TlsClientLoader>,
    pub quit_after: Option<QuitAfter>,
    pub connect_timeout: Duration,
    /// How long each reply (all of it, however it trickles in) and each write may take.
    pub timeout: Duration,
    pub tls_timeout: Duration,
    /// How long the whole session may take, from the connect to QUIT.
    pub session_timeout: Duration,
    /// Show AUTH secrets in the transcript.
    pub show_secrets: bool,
}

/// The EHLO name a dialogue is checked with before the real one (our address) is known.
const PLACEHOLDER_HELLO: &str = "[127.0.0.1]";

/// The dialogue both `sockeye mail` and a plan's `mail` check start from: one message
/// (`body`) from `from` to `to`, PLAIN before LOGIN, never AUTH in clear text, the EHLO
/// name filled in after connecting. Callers change the fields their options set.
pub fn dialogue(
    tls: smtp::TlsMode,
    auth: Option<smtp::Credentials>,
    from: String,
    to: Vec<String>,
    body: Vec<u8>,
) -> ClientOptions {
    ClientOptions {
        hello_name: PLACEHOLDER_HELLO.to_owned(),
        tls,
        auth,
        auth_mechanism: None,
        allow_plaintext_auth: false,
        envelope: Some(smtp::Envelope { from, to, body }),
        quit_after: None,
        messages: 1,
    }
}

impl MailConfig {
    /// A run of `dialogue` against `host:port` with `sockeye mail`'s default timeouts
    /// (10 s connect and TLS, 30 s a reply, 5 min the session), secrets masked, the EHLO name our address.
    /// Every address, name and secret is checked now (CR, LF, NUL, '<', spaces in
    /// EHLO), and the TLS client starts being built (unless `dialogue.tls` is `Never`):
    /// an error here means nothing was sent.
    pub fn new(
        host: String,
        port: u16,
        dialogue: ClientOptions,
        insecure: bool,
        ca_files: Vec<std::path::PathBuf>,
    ) -> Result<MailConfig, String> {
        Client::new(dialogue.clone()).map_err(|e| e.to_string())?;
        // Built in the background while the connection is made (the roots take a while).
        let tls = match dialogue.tls {
            smtp::TlsMode::Never => None,
            _ => Some(TlsClientLoader::start(insecure, ca_files).map_err(|e| e.to_string())?),
        };
        Ok(MailConfig {
            host,
            port,
            ehlo: None,
            dialogue,
            tls,
            quit_after: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            tls_timeout: Duration::from_secs(10),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            show_secrets: false,
        })
    }
}

/// The next reply, whole within `within` (`--timeout`) however slowly its bytes come,
/// and within the connection's session deadline; worded for a mail step.
async fn read_reply(conn: &mut Conn, within: Duration) -> Result<Reply, String> {
    // The connection's own timeout is per read; a server sending one byte a second
    // never trips it, so the reply as a whole is bounded here. A reply cut off this
    // way ends the session, so the read dropped mid-way loses nothing we keep.
    let read = match tokio::time::timeout(within, conn.read_decoded(reply::decode)).await {
        Ok(read) => read,
        Err(_) => {
            return Err(match conn.buffered() {
                [] => format!("no reply within {}", secs_text(within)),
                partial => format!(
                    "no complete reply within {} (received {:?})",
                    secs_text(within),
                    crate::net::excerpt(partial)
                ),
            });
        }
    };
    read.map_err(|e| match e {
        ReadError::Invalid(e) => format!("not an SMTP reply: {e}"),
        ReadError::TimedOut(t) => format!("no reply within {}", secs_text(t)),
        ReadError::Closed { partial: None } => "the server closed the connection".to_owned(),
        ReadError::Closed { partial: Some(_) } => {
            "the server closed the connection in the middle of a reply".to_owned()
        }
        other => other.to_string(),
    })
}

/// The lines of a write as the transcript shows them: secrets masked, a long message cut.
fn shown_lines(bytes: &[u8], secret: bool, is_message: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if secret {
        for l in &mut lines {
            *l = match l.strip_prefix("AUTH PLAIN ") {
                Some(_) => format!("AUTH PLAIN {MASK}"),
                None => MASK.to_owned(),
            };
        }
    }
    if is_message && lines.len() > SHOWN_MESSAGE_LINES + 1 {
        let hidden = lines.len() - SHOWN_MESSAGE_LINES - 1;
        let last = lines.pop().unwrap_or_default();
        lines.truncate(SHOWN_MESSAGE_LINES);
        lines.push(format!(
            "[... {hidden} more lines, {} bytes in all]",
            bytes.len()
        ));
        lines.push(last);
    }
    lines
}

/// A TLS handshake over `conn` for `config.host`, with the client from the loader;
/// reported as [`Event::Tls`] and kept in `report`.
async fn handshake(
    config: &MailConfig,
    conn: Conn,
    emit: &Emit<Event>,
    report: &mut Report,
) -> Result<Conn, String> {
    let t = Instant::now();
    let Some(loader) = &config.tls else {
        return Err("TLS is off (--no-tls)".to_owned());
    };
    let client = loader.get().await.map_err(|e| e.to_string())?;
    let (stream, _, rest) = conn.detach();
    let (stream, negotiated) = client
        .handshake(stream, &config.host, rest.bounded(config.tls_timeout))
        .await
        .map_err(|e| e.to_string())?;
    let _ = emit
        .send(Event::Tls {
            negotiated: negotiated.clone(),
            elapsed: t.elapsed(),
        })
        .await;
    report.tls = Some(negotiated);
    Ok(rest.attach(Box::new(stream)))
}

/// The run ends at `stage`: the error is emitted and kept in the report.
async fn fail(
    emit: &Emit<Event>,
    report: &mut Report,
    start: Instant,
    stage: FailStage,
    text: String,
) {
    // A reader gone changes nothing here: the run ends anyway.
    let _ = emit.send(Event::Error { text: text.clone() }).await;
    report.failure = Some((stage, text));
    report.elapsed = start.elapsed();
}

/// Runs one session: connect, the dialogue, QUIT. Every step is sent to `emit`
/// (a send that fails is seen at the next reply awaited, which is not read:
/// the session ends there, failed with [`Stopped`]'s words).
pub async fn send(config: &MailConfig, emit: Emit<Event>) -> Report {
    let start = Instant::now();
    let mut report = Report {
        outcome: Outcome::default(),
        failure: None,
        tls: None,
        peer: None,
        elapsed: Duration::ZERO,
    };
    let tcp = match crate::net::connect(&config.host, config.port, config.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            let text = match e.addr() {
                Some(addr) => format!("{addr}: {}", e.os_text()),
                None => e.to_string(),
            };
            fail(&emit, &mut report, start, FailStage::Connect, text).await;
            return report;
        }
    };
    let (peer, local) = match (tcp.peer_addr(), tcp.local_addr()) {
        (Ok(p), Ok(l)) => (p, l),
        (Err(e), _) | (_, Err(e)) => {
            fail(&emit, &mut report, start, FailStage::Connect, e.to_string()).await;
            return report;
        }
    };
    report.peer = Some(peer);
    let _ = emit
        .send(Event::Connected {
            peer,
            local,
            elapsed: start.elapsed(),
        })
        .await;
    let session_end = tokio::time::Instant::from_std(start) + config.session_timeout;
    let mut conn = Conn::new(Box::new(tcp) as Box<dyn Io>, config.timeout)
        .with_cap(MAX_BUFFER)
        .with_deadline(session_end, SESSION_OVER);
    let implicit = config.dialogue.tls == smtp::TlsMode::Implicit;
    if implicit {
        match handshake(config, conn, &emit, &mut report).await {
            Ok(tls_conn) => conn = tls_conn,
            Err(e) => {
                fail(&emit, &mut report, start, FailStage::Tls, e).await;
                return report;
            }
        }
    }
    if config.quit_after == Some(QuitAfter::Connect) {
        conn.close().await;
        report.outcome.quit_early = true;
        report.outcome.tls = implicit;
        report.elapsed = start.elapsed();
        return report;
    }

    let mut options = config.dialogue.clone();
    options.hello_name = config
        .ehlo
        .clone()
        .unwrap_or_else(|| smtp::address_literal(local.ip()));
    options.quit_after = match config.quit_after {
        None | Some(QuitAfter::Connect) => None,
        Some(QuitAfter::Banner) => Some(smtp::QuitAfter::Greeting),
        Some(QuitAfter::Ehlo) => Some(smtp::QuitAfter::Hello),
        Some(QuitAfter::Tls) => Some(smtp::QuitAfter::Tls),
        Some(QuitAfter::Auth) => Some(smtp::QuitAfter::Auth),
        Some(QuitAfter::Mail) => Some(smtp::QuitAfter::Mail),
        Some(QuitAfter::Rcpt) => Some(smtp::QuitAfter::Rcpt),
    };
    let rcpts: Vec<String> = options
        .envelope
        .as_ref()
        .map(|e| e.to.clone())
        .unwrap_or_default();
    let mut client = match Client::new(options) {
        Ok(c) => c,
        Err(e) => {
            // The CLI checked every argument; only an --ehlo name could get here.
            fail(&emit, &mut report, start, FailStage::Ehlo, e.to_string()).await;
            return report;
        }
    };

    let mut sent_at = Instant::now();
    let lost: Option<String> = 'dialogue: loop {
        let stage = client.stage();
        let message = client.message_number();
        if emit.is_stopped() {
            break 'dialogue Some(Stopped.to_string());
        }
        let reply = match read_reply(&mut conn, config.timeout).await {
            Ok(r) => r,
            Err(e) => break 'dialogue Some(e),
        };
        let _ = emit
            .send(Event::Reply {
                stage,
                rcpt: match stage {
                    Stage::RcptTo(i) => rcpts.get(i).cloned(),
                    _ => None,
                },
                message,
                reply: reply.clone(),
                elapsed: sent_at.elapsed(),
                tls: conn.tls,
            })
            .await;
        let mut action = client.on_reply(reply);
        loop {
            match action {
                Action::Send(bytes) => {
                    let is_message = client.stage() == Stage::Message;
                    let _ = emit
                        .send(Event::Sent {
                            lines: shown_lines(
                                &bytes,
                                client.last_send_is_secret() && !config.show_secrets,
                                is_message,
                            ),
                            tls: conn.tls,
                        })
                        .await;
                    sent_at = Instant::now();
                    if let Err(e) = conn.send("send", &bytes).await {
                        break 'dialogue Some(e.message);
                    }
                    break;
                }
                Action::Wait => break,
                Action::Close => break 'dialogue None,
                Action::StartTls => {
                    if !conn.buffered().is_empty() {
                        // Bytes after the 220 would be read as if protected by TLS.
                        let text = format!(
                            "the server sent {:?} after its STARTTLS reply, before the handshake",
                            String::from_utf8_lossy(
                                &conn.buffered()[..conn.buffered().len().min(40)]
                            )
                        );
                        report.outcome = client.outcome().clone();
                        fail(&emit, &mut report, start, FailStage::Tls, text).await;
                        conn.close().await;
                        return report;
                    }
                    match handshake(config, conn, &emit, &mut report).await {
                        Ok(tls_conn) => {
                            conn = tls_conn;
                            action = client.tls_established();
                        }
                        Err(e) => {
                            report.outcome = client.outcome().clone();
                            fail(&emit, &mut report, start, FailStage::Tls, e).await;
                            return report;
                        }
                    }
                }
            }
        }
    };
    report.outcome = client.outcome().clone();
    if let Some(f) = report.outcome.failure {
        let last = client
            .transcript()
            .iter()
            .rev()
            .find(|(s, _)| *s != Stage::Quit)
            .map(|(_, r)| r.first_line())
            .unwrap_or_default();
        let text = if last.is_empty() {
            f.to_string()
        } else {
            format!("{f} ({last})")
        };
        fail(&emit, &mut report, start, FailStage::of_failure(f), text).await;
    } else if let Some(e) = lost {
        let stage = client.stage();
        match FailStage::of_stage(stage) {
            Some(fs) => {
                let text = format!("{e} (waiting for {})", awaited(stage));
                fail(&emit, &mut report, start, fs, text).await;
            }
            _ => {
                let _ = emit
                    .send(Event::Warning {
                        text: format!("after QUIT: {e}"),
                    })
                    .await;
            }
        }
    }
    if !report.outcome.rejected.is_empty() && report.failure.is_none() {
        let _ = emit
            .send(Event::Warning {
                text: format!("refused recipients: {}", report.outcome.rejected.join(", ")),
            })
            .await;
    }
    conn.close().await;
    report.elapsed = start.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_long_messages_cut() {
        assert_eq!(
            shown_lines(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n", true, false),
            ["AUTH PLAIN ********"]
        );
        assert_eq!(shown_lines(b"d29uZGVybGFuZA==\r\n", true, false), [MASK]);
        assert_eq!(
            shown_lines(
                b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                false,
                false
            ),
            ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"]
        );
        let mut msg = Vec::new();
        for i in 0..100 {
            msg.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        msg.extend_from_slice(b".\r\n");
        let shown = shown_lines(&msg, false, true);
        assert_eq!(shown.len(), SHOWN_MESSAGE_LINES + 2);
        assert_eq!(shown[SHOWN_MESSAGE_LINES - 1], "line 39");
        assert_eq!(
            shown[SHOWN_MESSAGE_LINES],
            format!("[... 60 more lines, {} bytes in all]", msg.len())
        );
        assert_eq!(shown.last().map(String::as_str), Some("."));
    }

    #[test]
    fn every_failure_has_its_stage() {
        assert_eq!(FailStage::of_failure(Failure::PlaintextAuth).exit_code(), 7);
        assert_eq!(FailStage::of_failure(Failure::Greeting).exit_code(), 4);
        assert_eq!(
            FailStage::of_failure(Failure::NoRecipientAccepted).exit_code(),
            9
        );
        assert_eq!(FailStage::of_stage(Stage::Message), Some(FailStage::Data));
        assert_eq!(FailStage::of_stage(Stage::Quit), None);
        let codes: Vec<u8> = FailStage::ALL.iter().map(|s| s.exit_code()).collect();
        assert_eq!(codes, (3..=10).collect::<Vec<u8>>());
    }
}
