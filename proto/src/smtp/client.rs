//! The SMTP client dialogue of `sockeye mail` (and of the prober's STARTTLS check), sans-IO:
//! replies go in, bytes to send come out.
//!
//! The order is RFC 5321's: greeting, EHLO (HELO when the server answers EHLO with 5xx),
//! STARTTLS when wanted and offered (RFC 3207; the driver upgrades the same connection when
//! told, then EHLO again), AUTH PLAIN or LOGIN (RFC 4954), MAIL, RCPT for each recipient and
//! DATA (all three in one write when the server offers PIPELINING, RFC 2920), the message,
//! QUIT. A refusal at any step ends the dialogue politely with QUIT and names the step in
//! [`Outcome::failure`]; every reply is kept with its stage in [`Client::transcript`].
//!
//! For `sockeye mail` it also: refuses to send credentials over a connection that is not
//! encrypted unless told otherwise ([`ClientOptions::allow_plaintext_auth`]), lets the
//! caller force PLAIN or LOGIN, adds `SIZE=`, `BODY=8BITMIME` and `SMTPUTF8` to MAIL when
//! the server offers them and the message needs them, stops early after a named step
//! ([`QuitAfter`], swaks' `--quit-after`), and sends the message several times over one
//! connection with RSET between ([`ClientOptions::messages`]).
//!
//! Every argument is checked when the client is made, so the dialogue itself cannot fail
//! on our side (the encoders' `unwrap_or_default()` below never sees an error).

use std::fmt;

use super::{
    Capabilities, SmtpError, auth_login_start, auth_plain, base64_line, data, dot_stuff, ehlo,
    helo, mail_from, quit, rcpt_to, rset, starttls,
};
use crate::reply::Reply;

/// Whether to upgrade to TLS with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Stay in plain text.
    Never,
    /// Upgrade when the server offers STARTTLS and accepts it; otherwise go on in plain text.
    IfOffered,
    /// Upgrade or give up: a server that does not offer or accept STARTTLS is a failure.
    Required,
    /// The connection is TLS from its first byte (port 465, RFC 8314): no STARTTLS.
    Implicit,
}

/// An AUTH mechanism the client speaks (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// RFC 4616: one command, the credentials in its initial response.
    Plain,
    /// The old two-challenge exchange (334 `Username:`, 334 `Password:`).
    Login,
}

impl AuthMechanism {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
        }
    }
}

/// Where to stop a dialogue that should not (or not yet) send a message: after this step
/// succeeds, the client says QUIT. A step that does not happen (no TLS offered, no
/// credentials) is passed as if done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitAfter {
    /// The greeting.
    Greeting,
    /// The first EHLO (or HELO).
    Hello,
    /// The TLS handshake (QUIT goes over TLS, before the second EHLO).
    Tls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    Mail,
    /// The RCPT TO of every recipient (at least one must be accepted).
    Rcpt,
}

/// A user name and password for AUTH.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

impl fmt::Debug for Credentials {
    /// The password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &"<hidden>")
            .finish()
    }
}

/// Who sends what to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for `<>`.
    pub from: String,
    /// At least one recipient.
    pub to: Vec<String>,
    /// The message, headers included, not yet dot-stuffed.
    pub body: Vec<u8>,
}

/// What the dialogue should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The name after EHLO/HELO: a domain, or an address literal from
    /// [`address_literal`](super::address_literal).
    pub hello_name: String,
    pub tls: TlsMode,
    /// Authenticate with these, by PLAIN if offered, else LOGIN.
    pub auth: Option<Credentials>,
    /// Use this mechanism (it must be offered) instead of the best one offered.
    pub auth_mechanism: Option<AuthMechanism>,
    /// Send credentials over a connection that is not TLS. Without it, AUTH is never sent
    /// in clear text: the dialogue ends with [`Failure::PlaintextAuth`] instead.
    pub allow_plaintext_auth: bool,
    /// The message to send; `None` stops after the hello and TLS steps (a probe).
    pub envelope: Option<Envelope>,
    /// Stop after this step instead of sending the message.
    pub quit_after: Option<QuitAfter>,
    /// How many times to send the envelope over this connection, RSET between (at least 1).
    pub messages: u32,
}

/// The step a reply answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    MailFrom,
    /// The RCPT for the recipient at this index of [`Envelope::to`].
    RcptTo(usize),
    Data,
    /// The reply after the message's final `.`.
    Message,
    /// RSET between two messages.
    Rset,
    Quit,
}

/// Why the dialogue did not do what it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The greeting was not 2xx (554: the server does not want us).
    Greeting,
    /// Neither EHLO nor HELO was accepted.
    Hello,
    /// TLS was required and the server does not offer STARTTLS.
    TlsNotOffered,
    /// TLS was required and STARTTLS was not answered with 220.
    TlsRefused,
    /// Credentials were given and the server offers neither PLAIN nor LOGIN (or not the
    /// mechanism asked for).
    AuthNotOffered,
    /// Credentials were given and the connection is not encrypted: AUTH was not sent.
    PlaintextAuth,
    /// The server refused the credentials.
    AuthFailed,
    /// MAIL FROM was refused.
    SenderRejected,
    /// Every RCPT TO was refused.
    NoRecipientAccepted,
    /// DATA was not answered with 354.
    DataRefused,
    /// The message was refused after its final `.`.
    MessageRejected,
    /// RSET before the next message was refused.
    ResetRefused,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Greeting => "the server's greeting refuses the session",
            Failure::Hello => "the server refused both EHLO and HELO",
            Failure::TlsNotOffered => "TLS is required and the server does not offer STARTTLS",
            Failure::TlsRefused => "TLS is required and the server refused STARTTLS",
            Failure::AuthNotOffered => {
                "the server does not offer the AUTH mechanism needed (PLAIN or LOGIN)"
            }
            Failure::PlaintextAuth => {
                "the connection is not encrypted: credentials not sent (--allow-plaintext-auth to send them anyway)"
            }
            Failure::AuthFailed => "authentication failed",
            Failure::SenderRejected => "the sender was rejected",
            Failure::NoRecipientAccepted => "no recipient was accepted",
            Failure::DataRefused => "the server refused DATA",
            Failure::MessageRejected => "the message was rejected",
            Failure::ResetRefused => "the server refused RSET before the next message",
        })
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes, then read the next reply.
    Send(Vec<u8>),
    /// Write nothing; read the next reply (pipelined replies still to come).
    Wait,
    /// The server accepted STARTTLS: do the TLS handshake on this connection now, then call
    /// [`Client::tls_established`].
    StartTls,
    /// The dialogue is over: close the connection and read [`Client::outcome`].
    Close,
}

/// How it went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The step that failed, if one did.
    pub failure: Option<Failure>,
    /// The last EHLO's capabilities (after TLS when upgraded); `None` after HELO.
    pub capabilities: Option<Capabilities>,
    /// The connection was upgraded to TLS.
    pub tls: bool,
    /// The server's STARTTLS reply was 220 (also true when the driver then failed the
    /// handshake: the driver reports that).
    pub starttls_accepted: bool,
    /// The AUTH mechanism used, when authentication succeeded.
    pub auth_mechanism: Option<&'static str>,
    /// Recipients the server accepted, and those it refused (in the last transaction).
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    /// Every message asked for was accepted for delivery.
    pub delivered: bool,
    /// How many messages were accepted for delivery.
    pub messages_delivered: u32,
    /// The dialogue stopped early as [`ClientOptions::quit_after`] asked.
    pub quit_early: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    AwaitTls,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass,
    AuthLoginDone,
    Mail,
    Rcpt(usize),
    Data,
    Message,
    Rset,
    Quit,
    Done,
}

/// The dialogue. Feed it each reply with [`Client::on_reply`] and do what it answers.
#[derive(Debug, Clone)]
pub struct Client {
    options: ClientOptions,
    state: State,
    pipelined: bool,
    tls_tried: bool,
    /// The message as it goes after DATA (dot-stuffed, CRLF, final `.`); empty when no
    /// message will be sent.
    stuffed: Vec<u8>,
    /// A failure found while pipelined replies are still to be read.
    pending: Option<Failure>,
    outcome: Outcome,
    transcript: Vec<(Stage, Reply)>,
}

impl Client {
    /// A client for `options`, every argument checked now (CR, LF or NUL anywhere is an
    /// injection; an envelope needs a recipient).
    pub fn new(options: ClientOptions) -> Result<Client, SmtpError> {
        ehlo(&options.hello_name)?;
        if options.messages == 0 {
            return Err(SmtpError::BadArgument {
                what: "message count",
                reason: "must be at least 1",
            });
        }
        if let Some(c) = &options.auth {
            auth_plain(&c.user, &c.pass)?;
        }
        if let Some(env) = &options.envelope {
            mail_from(&env.from, &[])?;
            if env.to.is_empty() {
                return Err(SmtpError::BadArgument {
                    what: "recipient list",
                    reason: "empty",
                });
            }
            for to in &env.to {
                rcpt_to(to)?;
            }
        }
        // Stuffed once: the same bytes go out for every message, and SIZE= needs their length.
        let stuffed = match &options.envelope {
            Some(env) if !matches!(options.quit_after, Some(QuitAfter::Mail | QuitAfter::Rcpt)) => {
                dot_stuff(&env.body)
            }
            _ => Vec::new(),
        };
        let outcome = Outcome {
            tls: options.tls == TlsMode::Implicit,
            ..Outcome::default()
        };
        Ok(Client {
            options,
            state: State::Greeting,
            pipelined: false,
            tls_tried: false,
            stuffed,
            pending: None,
            outcome,
            transcript: Vec::new(),
        })
    }

    /// Whether the bytes of the last [`Action::Send`] hold a secret (the AUTH PLAIN line, the
    /// AUTH LOGIN password), for transcripts that mask them.
    pub fn last_send_is_secret(&self) -> bool {
        matches!(self.state, State::AuthPlain | State::AuthLoginDone)
    }

    /// The message being sent, from 1 to [`ClientOptions::messages`].
    pub fn message_number(&self) -> u32 {
        (self.outcome.messages_delivered + 1).min(self.options.messages)
    }

    /// Every reply so far with the step it answered.
    pub fn transcript(&self) -> &[(Stage, Reply)] {
        &self.transcript
    }

    /// How it went (complete once [`Action::Close`] was returned).
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The dialogue is over.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The step whose reply is awaited now (the one a broken connection interrupted).
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Greeting => Stage::Greeting,
            State::Ehlo => Stage::Ehlo,
            State::Helo => Stage::Helo,
            State::StartTls | State::AwaitTls => Stage::StartTls,
            State::AuthPlain
            | State::AuthLoginUser
            | State::AuthLoginPass
            | State::AuthLoginDone => Stage::Auth,
            State::Mail => Stage::MailFrom,
            State::Rcpt(i) => Stage::RcptTo(i),
            State::Data => Stage::Data,
            State::Message => Stage::Message,
            State::Rset => Stage::Rset,
            State::Quit | State::Done => Stage::Quit,
        }
    }

    /// The next reply from the server; returns what to do.
    pub fn on_reply(&mut self, reply: Reply) -> Action {
        if matches!(self.state, State::Done | State::AwaitTls) {
            // Nothing is expected now (a server talking out of turn): end here.
            self.state = State::Done;
            return Action::Close;
        }
        self.transcript.push((self.stage(), reply.clone()));
        let ok = reply.class() == 2;
        match self.state {
            State::Greeting if ok && self.quits_after(QuitAfter::Greeting) => self.quit_early(),
            State::Greeting if ok => self.send_ehlo(),
            State::Greeting => self.fail(Failure::Greeting),
            State::Ehlo if ok => {
                self.outcome.capabilities = Some(Capabilities::from_ehlo(&reply));
                self.after_hello()
            }
            // HELO is the fallback for servers that do not know EHLO; after TLS it is no
            // longer worth trying.
            State::Ehlo if reply.class() == 5 && !self.outcome.tls => {
                self.state = State::Helo;
                Action::Send(helo(&self.options.hello_name).unwrap_or_default())
            }
            State::Ehlo => self.fail(Failure::Hello),
            State::Helo if ok => {
                self.outcome.capabilities = None;
                self.after_hello()
            }
            State::Helo => self.fail(Failure::Hello),
            State::StartTls if reply.code == 220 => {
                self.outcome.starttls_accepted = true;
                self.state = State::AwaitTls;
                Action::StartTls
            }
            State::StartTls if self.options.tls == TlsMode::Required => {
                self.fail(Failure::TlsRefused)
            }
            State::StartTls => self.after_hello(),
            State::AuthPlain | State::AuthLoginDone if reply.code == 235 => {
                self.outcome.auth_mechanism = Some(if self.state == State::AuthPlain {
                    "PLAIN"
                } else {
                    "LOGIN"
                });
                if self.quits_after(QuitAfter::Auth) {
                    return self.quit_early();
                }
                self.begin_mail()
            }
            State::AuthLoginUser if reply.code == 334 => {
                self.state = State::AuthLoginPass;
                let user = self.options.auth.as_ref().map(|c| c.user.as_bytes());
                Action::Send(base64_line(user.unwrap_or_default()))
            }
            State::AuthLoginPass if reply.code == 334 => {
                self.state = State::AuthLoginDone;
                let pass = self.options.auth.as_ref().map(|c| c.pass.as_bytes());
                Action::Send(base64_line(pass.unwrap_or_default()))
            }
            State::AuthPlain
            | State::AuthLoginUser
            | State::AuthLoginPass
            | State::AuthLoginDone => self.fail(Failure::AuthFailed),
            State::Mail => {
                if !ok {
                    self.pending = Some(Failure::SenderRejected);
                }
                if self.pipelined {
                    self.state = State::Rcpt(0);
                    Action::Wait
                } else if let Some(f) = self.pending {
                    self.fail(f)
                } else if self.quits_after(QuitAfter::Mail) {
                    self.quit_early()
                } else {
                    self.send_rcpt(0)
                }
            }
            State::Rcpt(i) => self.on_rcpt(i, ok),
            State::Data if reply.code == 354 => match (self.pending, &self.options.envelope) {
                (None, Some(_)) => {
                    self.state = State::Message;
                    Action::Send(self.stuffed.clone())
                }
                // A server that opens DATA after refusing the sender or every recipient:
                // sending even an empty message could deliver it, so hang up instead.
                (pending, _) => {
                    self.outcome.failure = Some(pending.unwrap_or(Failure::NoRecipientAccepted));
                    self.state = State::Done;
                    Action::Close
                }
            },
            State::Data => self.fail(self.pending.unwrap_or(Failure::DataRefused)),
            State::Message if ok => {
                self.outcome.messages_delivered += 1;
                if self.outcome.messages_delivered < self.options.messages {
                    self.state = State::Rset;
                    return Action::Send(rset());
                }
                self.outcome.delivered = true;
                self.send_quit()
            }
            State::Message => self.fail(Failure::MessageRejected),
            State::Rset if ok => {
                self.pipelined = false;
                self.pending = None;
                self.outcome.accepted.clear();
                self.outcome.rejected.clear();
                self.begin_mail()
            }
            State::Rset => self.fail(Failure::ResetRefused),
            State::Quit | State::AwaitTls | State::Done => {
                self.state = State::Done;
                Action::Close
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded: the server forgets everything, so say
    /// EHLO again (RFC 3207 4.2).
    pub fn tls_established(&mut self) -> Action {
        if self.state != State::AwaitTls {
            return Action::Wait;
        }
        self.outcome.tls = true;
        self.outcome.capabilities = None;
        if self.quits_after(QuitAfter::Tls) {
            return self.quit_early();
        }
        self.send_ehlo()
    }

    fn quits_after(&self, step: QuitAfter) -> bool {
        self.options.quit_after == Some(step)
    }

    /// QUIT because [`ClientOptions::quit_after`] says so: a success.
    fn quit_early(&mut self) -> Action {
        self.outcome.quit_early = true;
        self.send_quit()
    }

    fn send_ehlo(&mut self) -> Action {
        self.state = State::Ehlo;
        Action::Send(ehlo(&self.options.hello_name).unwrap_or_default())
    }

    fn send_quit(&mut self) -> Action {
        self.state = State::Quit;
        Action::Send(quit())
    }

    fn fail(&mut self, failure: Failure) -> Action {
        self.outcome.failure = Some(failure);
        self.send_quit()
    }

    /// After a successful EHLO or HELO (or a STARTTLS refused when TLS is optional).
    fn after_hello(&mut self) -> Action {
        let caps = self.outcome.capabilities.clone().unwrap_or_default();
        // The first hello (a second one only follows TLS).
        if !self.outcome.tls && !self.tls_tried && self.quits_after(QuitAfter::Hello) {
            return self.quit_early();
        }
        if !self.outcome.tls && !self.tls_tried && self.options.tls != TlsMode::Never {
            if caps.starttls {
                self.tls_tried = true;
                self.state = State::StartTls;
                return Action::Send(starttls());
            }
            if self.options.tls == TlsMode::Required {
                return self.fail(Failure::TlsNotOffered);
            }
        }
        // Over implicit TLS the handshake came before the greeting; without TLS, this is
        // where it would have been.
        if self.quits_after(QuitAfter::Tls) || self.quits_after(QuitAfter::Hello) {
            return self.quit_early();
        }
        if let Some(creds) = &self.options.auth {
            // Checked before looking at the offer: a server that offers AUTH in clear text
            // (or a man in the middle who removed STARTTLS) must not get the password.
            if !self.outcome.tls && !self.options.allow_plaintext_auth {
                return self.fail(Failure::PlaintextAuth);
            }
            let offered = |m: AuthMechanism| caps.auth.iter().any(|o| o == m.name());
            let mechanism = match self.options.auth_mechanism {
                Some(m) if offered(m) => m,
                Some(_) => return self.fail(Failure::AuthNotOffered),
                // PLAIN first: one round trip instead of three.
                None if offered(AuthMechanism::Plain) => AuthMechanism::Plain,
                None if offered(AuthMechanism::Login) => AuthMechanism::Login,
                None => return self.fail(Failure::AuthNotOffered),
            };
            return match mechanism {
                AuthMechanism::Plain => {
                    self.state = State::AuthPlain;
                    Action::Send(auth_plain(&creds.user, &creds.pass).unwrap_or_default())
                }
                AuthMechanism::Login => {
                    self.state = State::AuthLoginUser;
                    Action::Send(auth_login_start())
                }
            };
        }
        if self.quits_after(QuitAfter::Auth) {
            return self.quit_early();
        }
        self.begin_mail()
    }

    /// ESMTP parameters for MAIL FROM, each only when offered: `SIZE=` the message's size on
    /// the wire (RFC 1870), `BODY=8BITMIME` when the message has bytes above 127 (RFC 6152),
    /// `SMTPUTF8` when an address is not ASCII (RFC 6531).
    fn mail_params(&self, env: &Envelope) -> Vec<String> {
        let Some(caps) = &self.outcome.capabilities else {
            return Vec::new();
        };
        let mut params = Vec::new();
        if caps.size.is_some() && !self.stuffed.is_empty() {
            // The final ".\r\n" is not part of the message.
            params.push(format!("SIZE={}", self.stuffed.len().saturating_sub(3)));
        }
        if caps.eightbitmime && !env.body.is_ascii() && !self.stuffed.is_empty() {
            params.push("BODY=8BITMIME".to_owned());
        }
        if caps.smtputf8 && !(env.from.is_ascii() && env.to.iter().all(|t| t.is_ascii())) {
            params.push("SMTPUTF8".to_owned());
        }
        params
    }

    fn begin_mail(&mut self) -> Action {
        let Some(env) = &self.options.envelope else {
            return self.send_quit();
        };
        self.state = State::Mail;
        let params = self.mail_params(env);
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let mut out = mail_from(&env.from, &params).unwrap_or_default();
        let pipelining = self
            .outcome
            .capabilities
            .as_ref()
            .is_some_and(|c| c.pipelining);
        // Stopping after MAIL: nothing more to send with it.
        if pipelining && !self.quits_after(QuitAfter::Mail) {
            self.pipelined = true;
            for to in &env.to {
                out.extend(rcpt_to(to).unwrap_or_default());
            }
            if !self.quits_after(QuitAfter::Rcpt) {
                out.extend(data());
            }
        }
        Action::Send(out)
    }

    fn send_rcpt(&mut self, i: usize) -> Action {
        self.state = State::Rcpt(i);
        let to = self
            .options
            .envelope
            .as_ref()
            .and_then(|e| e.to.get(i))
            .map(String::as_str)
            .unwrap_or_default();
        Action::Send(rcpt_to(to).unwrap_or_default())
    }

    fn on_rcpt(&mut self, i: usize, ok: bool) -> Action {
        let (to, count) = match &self.options.envelope {
            Some(env) => (env.to.get(i).cloned().unwrap_or_default(), env.to.len()),
            None => (String::new(), 0),
        };
        if ok {
            self.outcome.accepted.push(to);
        } else {
            self.outcome.rejected.push(to);
        }
        if i + 1 < count {
            if self.pipelined {
                self.state = State::Rcpt(i + 1);
                return Action::Wait;
            }
            return self.send_rcpt(i + 1);
        }
        if self.outcome.accepted.is_empty() && self.pending.is_none() {
            self.pending = Some(Failure::NoRecipientAccepted);
        }
        if self.quits_after(QuitAfter::Rcpt) {
            return match self.pending {
                Some(f) => self.fail(f),
                None => self.quit_early(),
            };
        }
        if self.pipelined {
            self.state = State::Data;
            return Action::Wait;
        }
        match self.pending {
            Some(f) => self.fail(f),
            None => {
                self.state = State::Data;
                Action::Send(data())
            }
        }
    }
}
