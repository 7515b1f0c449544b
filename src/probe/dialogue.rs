//! The dialogues of services.md, one function per protocol, each a thin
//! loop around a `sockeye_proto` codec: read the greeting, ask for the TLS
//! upgrade, complete the handshake on the same connection, and record what
//! was said. A server that speaks first is sniffed before its dialogue is
//! chosen, so what answers decides the dialogue, not the port number.

use std::time::Duration;

use sockeye_proto::{http, imap, ldap, line, pop3, reply, smtp, sniff, telnet};

use super::Check;
use super::registry::Dialogue;
use crate::net::conn::MAX_BUFFER;
use crate::net::{CheckError, Conn, Volunteered, excerpt, secs_text};
use crate::report::{HttpFacts, StartTls, TlsOutcome};
use crate::tls::starttls::{self, Protocol, imap_text};

/// Runs the dialogue for `expect` (or the one the greeting reveals).
pub(super) async fn run(
    c: &mut Check<'_>,
    mut conn: Conn,
    expect: Option<Dialogue>,
    name: &str,
) -> Result<(), CheckError> {
    // A port whose usual service is a web one goes straight to HTTP.
    let expect = expect.or_else(|| {
        crate::target::tcp_service_name(c.job.port)
            .filter(|n| n.contains("http") || *n == "ipp")
            .map(|_| Dialogue::Http)
    });
    let dialogue = match expect {
        Some(d) if !d.server_first() => d,
        _ => {
            // Give the server its turn to speak, and let what it says pick
            // the dialogue.
            let wait = match expect {
                Some(_) => c.cfg.read_timeout,
                None => c.cfg.banner_wait.min(c.cfg.read_timeout),
            };
            let heard = conn.peek_volunteered(wait, line_or_iac).await?;
            match heard {
                Volunteered::Bytes => {
                    match choose(conn.buffered(), expect) {
                        Some(d) => d,
                        None => {
                            // Something we cannot name: report its first line,
                            // unless it never ends (a flood is reported, not followed).
                            let got = conn.buffered();
                            if !got.contains(&b'\n') && got.len() >= MAX_BUFFER {
                                c.step("greeting");
                                conn.close().await;
                                return Err(CheckError::new(
                                    "greeting",
                                    format!(
                                        "the server sent {} bytes without a line end; stopped reading",
                                        MAX_BUFFER
                                    ),
                                ));
                            }
                            c.recognised("unknown");
                            c.result.banner = Some(first_line(conn.buffered()));
                            c.step("greeting");
                            conn.close().await;
                            return Ok(());
                        }
                    }
                }
                Volunteered::Closed => {
                    c.step("greeting");
                    conn.close().await;
                    return Err(CheckError::new(
                        "greeting",
                        "the server closed the connection without a word",
                    ));
                }
                Volunteered::Silent => match expect {
                    Some(Dialogue::Telnet) => {
                        // A telnet server may wait for the client; nothing
                        // volunteered is a fact, not a failure.
                        c.step("greeting");
                        c.result
                            .notes
                            .push(format!("nothing volunteered within {}", secs_text(wait)));
                        conn.close().await;
                        return Ok(());
                    }
                    Some(_) => {
                        c.step("greeting");
                        conn.close().await;
                        return Err(CheckError::new(
                            "greeting",
                            format!("no greeting: timed out after {}", secs_text(wait)),
                        ));
                    }
                    // A silent server on an unknown port: ask it the way an
                    // HTTP client would.
                    None => Dialogue::Http,
                },
            }
        }
    };
    // HTTP is named once a response proves it (a silent port only guessed).
    if dialogue != Dialogue::Http {
        c.recognised(dialogue_name(dialogue, c));
    }
    let result = match dialogue {
        Dialogue::Telnet => telnet_check(c, &mut conn).await,
        Dialogue::Banner => banner_check(c, &mut conn).await,
        Dialogue::Smtp => return smtp_check(c, conn, name).await,
        Dialogue::Pop3 => return pop3_check(c, conn, name).await,
        Dialogue::Imap => return imap_check(c, conn, name).await,
        Dialogue::Ftp => return ftp_check(c, conn, name).await,
        Dialogue::Http => http_check(c, &mut conn, name).await,
        Dialogue::Ldap => return ldap_check(c, conn, name).await,
        Dialogue::Connect => Ok(()),
    };
    conn.close().await;
    result
}

/// The name to report for a dialogue: the expected service's when it is
/// that service's dialogue (smtps stays smtps), else the protocol's.
fn dialogue_name(d: Dialogue, c: &Check<'_>) -> &'static str {
    match c.job.expect {
        Some(s) if s.dialogue() == d => s.name(),
        _ if c.result.tls.is_some() => match d {
            Dialogue::Http => "https",
            Dialogue::Smtp => "smtps",
            Dialogue::Imap => "imaps",
            Dialogue::Pop3 => "pop3s",
            Dialogue::Ftp => "ftps",
            Dialogue::Ldap => "ldaps",
            other => other.generic_name(),
        },
        _ => d.generic_name(),
    }
}

/// Enough bytes to sniff: a whole line, or telnet negotiation.
fn line_or_iac(buf: &[u8]) -> bool {
    buf.first() == Some(&telnet::IAC) || buf.contains(&b'\n')
}

/// The dialogue for what a server volunteered, given the port's usual one.
/// A numbered reply that is not a greeting ("421 too busy") on an SMTP or
/// FTP port is that protocol refusing us: its dialogue reports it.
fn choose(volunteered: &[u8], expect: Option<Dialogue>) -> Option<Dialogue> {
    let sniffed = sniff::sniff_banner(volunteered);
    let numbered = volunteered.len() >= 4
        && volunteered[..3].iter().all(u8::is_ascii_digit)
        && matches!(volunteered[3], b' ' | b'-' | b'\r' | b'\n');
    match (sniffed, expect) {
        (sniff::Sniffed::Unknown, Some(d @ (Dialogue::Smtp | Dialogue::Ftp))) if numbered => {
            Some(d)
        }
        _ => from_sniff(sniffed, expect),
    }
}

fn from_sniff(s: sniff::Sniffed, expect: Option<Dialogue>) -> Option<Dialogue> {
    use sniff::Sniffed as S;
    Some(match s {
        S::Ssh => Dialogue::Banner,
        S::Smtp => Dialogue::Smtp,
        S::Ftp => Dialogue::Ftp,
        S::Pop3 => Dialogue::Pop3,
        S::Imap => Dialogue::Imap,
        S::Telnet => Dialogue::Telnet,
        S::Http => Dialogue::Http,
        S::Ldap => Dialogue::Ldap,
        // "220 ready": SMTP or FTP; the port says which, else SMTP.
        S::Numbered220 => match expect {
            Some(Dialogue::Ftp) => Dialogue::Ftp,
            _ => Dialogue::Smtp,
        },
        S::Tls | S::Unknown => match expect {
            Some(d @ (Dialogue::Banner | Dialogue::Telnet)) => d,
            _ => return None,
        },
    })
}

/// The first line of `buf`, without its terminator, lossy, capped.
fn first_line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(buf.len())
        .min(line::MAX_LINE);
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(&buf[..end]);
    let text = text.trim_end_matches('\r');
    let mut shown = escape_controls(&text.chars().take(SHOWN).collect::<String>());
    if text.chars().count() > SHOWN {
        shown.push_str("...");
    }
    shown
}

/// The server's text with its control characters escaped (`\r`, `\u{1b}`)
/// and nothing else changed: quotes and backslashes stay as sent.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_control() {
            out.extend(ch.escape_debug());
        } else {
            out.push(ch);
        }
    }
    out
}

/// What a sans-IO decoder answers: a message and its length, more bytes
/// needed, or invalid.
type Decoded<T, E> = Result<Option<(T, usize)>, E>;

/// `decode`, also keeping the first line of the bytes it consumed, as
/// the server sent them (controls escaped): the banner. A banner is never
/// rebuilt from the parsed message (a multi-line `220-` greeting is not a
/// `220 ` one).
fn keeping_first_line<T, E>(
    decode: impl Fn(&[u8]) -> Decoded<T, E>,
) -> impl Fn(&[u8]) -> Decoded<(T, String), E> {
    move |b| Ok(decode(b)?.map(|(msg, n)| ((msg, first_line(&b[..n])), n)))
}

async fn telnet_check(c: &mut Check<'_>, conn: &mut Conn) -> Result<(), CheckError> {
    // Keep the negotiation going (refusing every option) for a few rounds
    // so that a login prompt shows, bounded by rounds and the read timeout.
    let mut data = Vec::new();
    for _ in 0..4 {
        let (items, used) = telnet::decode(conn.buffered())
            .map_err(|e| CheckError::new("greeting", e.to_string()))?;
        conn.consume(used);
        for item in &items {
            match item {
                telnet::TelnetItem::Data(d) => data.extend_from_slice(d),
                other => c.result.telnet.push(other.to_string()),
            }
        }
        let answer = telnet::refuse(&items);
        if !answer.is_empty() {
            conn.send("greeting", &answer).await?;
        }
        if data.contains(&b'\n') || data.ends_with(b": ") || data.ends_with(b":") {
            break;
        }
        let more = conn
            .peek_volunteered(c.cfg.read_timeout.min(Duration::from_secs(1)), |_| true)
            .await?;
        if more != Volunteered::Bytes {
            break;
        }
    }
    c.step("greeting");
    if !data.is_empty() {
        let text = String::from_utf8_lossy(&data);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        if !first.is_empty() {
            c.result.banner = Some(first.escape_debug().to_string());
        }
    }
    Ok(())
}

async fn banner_check(c: &mut Check<'_>, conn: &mut Conn) -> Result<(), CheckError> {
    let first = conn
        .read_msg("greeting", |b| {
            line::decode_line(b, line::MAX_LINE).map(|o| o.map(|(l, n)| (l.to_vec(), n)))
        })
        .await;
    c.step("greeting");
    let first = first?;
    c.result.banner = Some(escape_controls(&String::from_utf8_lossy(&first)));
    Ok(())
}

async fn read_reply(conn: &mut Conn, step: &'static str) -> Result<reply::Reply, CheckError> {
    conn.read_msg(step, reply::decode).await
}

/// The greeting of a numbered protocol (SMTP, FTP) and its first line as
/// sent.
async fn read_greeting(conn: &mut Conn) -> Result<(reply::Reply, String), CheckError> {
    conn.read_msg("greeting", keeping_first_line(reply::decode))
        .await
}

/// Records a numbered greeting (SMTP, FTP); `banner`: its first line as
/// sent.
fn record_greeting(c: &mut Check<'_>, r: &reply::Reply, banner: String) {
    c.result.banner = Some(banner);
    if r.lines.len() > 1 {
        c.result.greeting = r.to_string().lines().map(str::to_string).collect();
    }
}

/// The numbered greeting of SMTP and FTP, recorded; a server that greets
/// with anything but 2xx has refused the session, and the check ends there.
async fn accepted_greeting(c: &mut Check<'_>, mut conn: Conn) -> Result<Conn, CheckError> {
    let greeting = read_greeting(&mut conn).await;
    c.step("greeting");
    let (greeting, banner) = greeting?;
    record_greeting(c, &greeting, banner);
    if greeting.class() != 2 {
        conn.close().await;
        return Err(CheckError::new(
            "greeting",
            format!("the server refused the session: {}", greeting.first_line()),
        ));
    }
    Ok(conn)
}

async fn smtp_check(c: &mut Check<'_>, conn: Conn, name: &str) -> Result<(), CheckError> {
    let mut conn = accepted_greeting(c, conn).await?;
    if conn.tls {
        // smtps: the greeting over TLS is the check.
        let _ = conn.send("quit", &smtp::quit()).await;
        conn.close().await;
        return Ok(());
    }
    let ehlo = smtp::ehlo_literal(c.local_addr);
    conn.send("ehlo", &ehlo).await?;
    let reply = read_reply(&mut conn, "ehlo").await;
    c.step("ehlo");
    let reply = reply?;
    let caps = if reply.class() == 2 {
        let caps = smtp::Capabilities::from_ehlo(&reply);
        c.result.capabilities = reply.lines.iter().skip(1).cloned().collect();
        Some(caps)
    } else {
        // HELO-only servers still answer STARTTLS honestly (with 5xx).
        conn.send(
            "ehlo",
            &smtp::helo(&smtp::address_literal(c.local_addr)).unwrap_or_default(),
        )
        .await?;
        let _ = read_reply(&mut conn, "ehlo").await?;
        None
    };
    let answer = starttls::command(&mut conn, Protocol::Smtp).await;
    c.step("starttls");
    let answer = answer?;
    let offered = caps.map(|k| k.starttls);
    let accepted = answer.accepted;
    if offered == Some(false) && accepted {
        c.result
            .notes
            .push("STARTTLS accepted although EHLO did not offer it".into());
    }
    if offered == Some(true) && !accepted {
        c.result
            .notes
            .push("STARTTLS offered in EHLO but refused".into());
    }
    upgrade(c, conn, Protocol::Smtp, offered, answer, name).await
}

/// Records a STARTTLS-style answer and, when accepted, runs the handshake
/// on the same connection.
async fn upgrade(
    c: &mut Check<'_>,
    conn: Conn,
    proto: Protocol,
    offered: Option<bool>,
    answer: starttls::Answer,
    name: &str,
) -> Result<(), CheckError> {
    let mut st = StartTls {
        command: proto.command(),
        offered,
        accepted: answer.accepted,
        reply: answer.reply,
        tls: None,
    };
    if !st.accepted {
        c.result.starttls = Some(st);
        conn.close().await;
        return Ok(());
    }
    match c.cfg.scanner.upgrade(conn, name, c.cfg.tls_timeout).await {
        Ok((tls_conn, facts)) => {
            c.step("tls");
            st.tls = Some(TlsOutcome::Ok(facts));
            c.result.starttls = Some(st);
            tls_conn.close().await;
            Ok(())
        }
        Err((err, rest)) => {
            let message = err.to_string();
            st.tls = Some(TlsOutcome::Failed {
                failed: message.clone(),
                chain: Vec::new(),
            });
            c.result.starttls = Some(st);
            if let Some(rest) = rest {
                rest.close().await;
            }
            Err(CheckError::new("tls", message))
        }
    }
}

async fn pop3_check(c: &mut Check<'_>, mut conn: Conn, name: &str) -> Result<(), CheckError> {
    let greeting = conn
        .read_msg("greeting", keeping_first_line(pop3::decode_status))
        .await;
    c.step("greeting");
    let (greeting, banner) = greeting?;
    c.result.banner = Some(banner);
    if !greeting.ok {
        conn.close().await;
        return Err(CheckError::new(
            "greeting",
            format!("the server refused the session: {greeting}"),
        ));
    }
    if conn.tls {
        let _ = conn.send("quit", &pop3::quit()).await;
        conn.close().await;
        return Ok(());
    }
    let answer = starttls::command(&mut conn, Protocol::Pop3).await;
    c.step("starttls");
    upgrade(c, conn, Protocol::Pop3, None, answer?, name).await
}

async fn imap_check(c: &mut Check<'_>, mut conn: Conn, name: &str) -> Result<(), CheckError> {
    let greeting = conn
        .read_msg("greeting", keeping_first_line(imap::decode_line))
        .await;
    c.step("greeting");
    let (greeting, banner) = greeting?;
    c.result.banner = Some(banner);
    let caps = greeting.capabilities();
    if let Some(caps) = &caps {
        c.result.capabilities = caps.clone();
    }
    match greeting.greeting() {
        Some(imap::ImapGreeting::Ok) => {}
        Some(imap::ImapGreeting::Preauth) => {
            c.result
                .notes
                .push("PREAUTH greeting: STARTTLS is not possible".into());
            conn.close().await;
            return Ok(());
        }
        _ => {
            conn.close().await;
            return Err(CheckError::new(
                "greeting",
                format!("the server refused the session: {}", imap_text(&greeting)),
            ));
        }
    }
    if conn.tls {
        let _ = conn
            .send("quit", &imap::logout("a9").unwrap_or_default())
            .await;
        conn.close().await;
        return Ok(());
    }
    let offered = caps.map(|k| k.iter().any(|x| x.eq_ignore_ascii_case("STARTTLS")));
    let answer = starttls::command(&mut conn, Protocol::Imap).await;
    c.step("starttls");
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            // No tagged reply among the lines allowed: end politely.
            conn.close().await;
            return Err(e);
        }
    };
    upgrade(c, conn, Protocol::Imap, offered, answer, name).await
}

async fn ftp_check(c: &mut Check<'_>, conn: Conn, name: &str) -> Result<(), CheckError> {
    let mut conn = accepted_greeting(c, conn).await?;
    let answer = starttls::command(&mut conn, Protocol::Ftp).await;
    c.step("starttls");
    upgrade(c, conn, Protocol::Ftp, None, answer?, name).await
}

async fn http_check(c: &mut Check<'_>, conn: &mut Conn, name: &str) -> Result<(), CheckError> {
    let host = if name.contains(':') && !name.starts_with('[') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    let host = match (c.job.port, conn.tls) {
        (80, false) | (443, true) => host,
        (p, _) => format!("{host}:{p}"),
    };
    conn.send("request", &http::head_request(&host, "/"))
        .await?;
    let head = conn
        .read_msg("response", keeping_first_line(http::decode_response_head))
        .await;
    c.step("response");
    let (head, status_line) = match head {
        Ok((h, status_line)) => (h, status_line),
        Err(err) => {
            // Not HTTP after all? Let the reply say what it is.
            let got = conn.buffered();
            if !conn.tls && (got.is_empty() || sniff::sniff_reply(got) == sniff::Sniffed::Tls) {
                c.tls_hint = true;
            }
            if !got.is_empty() {
                let sniffed = sniff::sniff_reply(got);
                if sniffed != sniff::Sniffed::Unknown && sniffed != sniff::Sniffed::Http {
                    c.result
                        .notes
                        .push(format!("answered an HTTP request with {:?}", excerpt(got)));
                    if let Some(d) = from_sniff(sniffed, None)
                        && d != Dialogue::Http
                    {
                        c.retry_as = Some(d);
                    }
                }
            }
            return Err(err);
        }
    };
    c.recognised(dialogue_name(Dialogue::Http, c));
    c.result.banner = Some(status_line);
    c.result.http = Some(HttpFacts {
        status: head.status,
        reason: head.reason.clone(),
        server: head.header("server").map(str::to_string),
    });
    Ok(())
}

/// LDAP answers a root DSE search before any bind; its searches end in a
/// SearchResultDone within this many messages.
const LDAP_MAX_MESSAGES: usize = 16;

async fn ldap_check(c: &mut Check<'_>, mut conn: Conn, name: &str) -> Result<(), CheckError> {
    // Which server: the root DSE names it (vendorName) or gives it away
    // (OpenLDAP's and Active Directory's own OIDs), as nmap's probe does
    // from the answer to a bind.
    conn.send(
        "rootdse",
        &ldap::root_dse_request(1, ldap::ROOT_DSE_ATTRIBUTES),
    )
    .await?;
    for _ in 0..LDAP_MAX_MESSAGES {
        let msg = conn.read_msg("rootdse", ldap::decode_message).await?;
        match msg.op {
            ldap::LdapOp::SearchEntry { attributes, .. } => {
                c.result.product = ldap::product_from_root_dse(&attributes);
                c.result.method = crate::report::Method::Probed;
            }
            ldap::LdapOp::SearchDone { .. } => break,
            // A Notice of Disconnection, or anything else: stop asking.
            _ => break,
        }
    }
    c.step("rootdse");
    if conn.tls {
        conn.close().await;
        return Ok(());
    }
    let answer = starttls::command(&mut conn, Protocol::Ldap).await;
    c.step("starttls");
    let answer = answer?;
    c.result.method = crate::report::Method::Probed;
    upgrade(c, conn, Protocol::Ldap, None, answer, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_answered_picks_the_dialogue() {
        let cases: &[(&[u8], Option<Dialogue>, Option<Dialogue>)] = &[
            (
                b"SSH-2.0-OpenSSH_9.2p1\r\n",
                Some(Dialogue::Pop3),
                Some(Dialogue::Banner),
            ),
            (
                b"220 mail.lab.test ESMTP Postfix\r\n",
                None,
                Some(Dialogue::Smtp),
            ),
            (b"220 ready\r\n", Some(Dialogue::Ftp), Some(Dialogue::Ftp)),
            (
                b"421 4.7.0 too many connections\r\n",
                Some(Dialogue::Smtp),
                Some(Dialogue::Smtp),
            ),
            (
                b"421 too busy\r\n",
                Some(Dialogue::Ftp),
                Some(Dialogue::Ftp),
            ),
            (b"421 too busy\r\n", None, None),
            (b"421 too busy\r\n", Some(Dialogue::Pop3), None),
            (
                b"+OK Dovecot ready.\r\n",
                Some(Dialogue::Imap),
                Some(Dialogue::Pop3),
            ),
            (
                b"hello there\r\n",
                Some(Dialogue::Banner),
                Some(Dialogue::Banner),
            ),
        ];
        for (bytes, expect, want) in cases {
            assert_eq!(
                choose(bytes, *expect),
                *want,
                "{:?} on a {expect:?} port",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
