//! The SMTP client dialogue (`proto/src/smtp/client.rs`) against scripted servers: each test
//! is a conversation of server bytes and the exact bytes the client answers, like a
//! transcript of Postfix or Exim, covering PIPELINING, STARTTLS, AUTH PLAIN and LOGIN, the
//! HELO fallback and every refusal.

use sockeye_proto::reply::{self, Reply};
use sockeye_proto::smtp::{
    Action, AuthMechanism, Client, ClientOptions, Credentials, Envelope, Failure, QuitAfter,
    SmtpError, Stage, TlsMode,
};

/// What the client must do after a server reply.
enum Want {
    Send(&'static [u8]),
    Wait,
    StartTls,
    Close,
}

fn decode(bytes: &[u8]) -> Reply {
    let (r, used) = reply::decode(bytes)
        .expect("scripted replies are valid")
        .expect("scripted replies are whole");
    assert_eq!(used, bytes.len(), "one reply per step");
    r
}

/// Plays `script`; a `None` server reply stands for "the TLS handshake is done".
fn play(client: &mut Client, script: &[(Option<&[u8]>, Want)]) {
    for (i, (server, want)) in script.iter().enumerate() {
        let got = match server {
            Some(bytes) => client.on_reply(decode(bytes)),
            None => client.tls_established(),
        };
        let want = match want {
            Want::Send(b) => Action::Send(b.to_vec()),
            Want::Wait => Action::Wait,
            Want::StartTls => Action::StartTls,
            Want::Close => Action::Close,
        };
        assert_eq!(got, want, "step {i}");
    }
    assert!(client.is_done());
}

fn options(tls: TlsMode, auth: bool, to: &[&str]) -> ClientOptions {
    ClientOptions {
        hello_name: "[198.18.0.1]".to_owned(),
        tls,
        auth: auth.then(|| Credentials {
            user: "tim".to_owned(),
            pass: "tanstaaftanstaaf".to_owned(),
        }),
        auth_mechanism: None,
        // Most scripts below authenticate in clear text on purpose; the refusal has its test.
        allow_plaintext_auth: true,
        envelope: (!to.is_empty()).then(|| Envelope {
            from: "a@lab.test".to_owned(),
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            body: b"Subject: hi\n\n.dot\n".to_vec(),
        }),
        quit_after: None,
        messages: 1,
    }
}

const POSTFIX_EHLO: &[u8] = b"250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
    250-STARTTLS\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
const POSTFIX_EHLO_TLS: &[u8] = b"250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
    250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

#[test]
fn tls_auth_plain_pipelined_with_a_rejected_recipient() {
    let mut c = Client::new(options(
        TlsMode::Required,
        true,
        &["b@lab.test", "nobody@lab.test"],
    ))
    .unwrap();
    play(
        &mut c,
        &[
            (Some(b"220 mail.lab.test ESMTP Postfix\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (Some(POSTFIX_EHLO), Want::Send(b"STARTTLS\r\n")),
            (Some(b"220 2.0.0 Ready to start TLS\r\n"), Want::StartTls),
            (None, Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (Some(POSTFIX_EHLO_TLS), Want::Send(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n")),
            (
                Some(b"235 2.7.0 Authentication successful\r\n"),
                Want::Send(
                    b"MAIL FROM:<a@lab.test> SIZE=22\r\nRCPT TO:<b@lab.test>\r\nRCPT TO:<nobody@lab.test>\r\nDATA\r\n",
                ),
            ),
            (Some(b"250 2.1.0 Ok\r\n"), Want::Wait),
            (Some(b"250 2.1.5 Ok\r\n"), Want::Wait),
            (Some(b"550 5.1.1 <nobody@lab.test>: Recipient address rejected\r\n"), Want::Wait),
            (
                Some(b"354 End data with <CR><LF>.<CR><LF>\r\n"),
                Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
            ),
            (Some(b"250 2.0.0 Ok: queued as 4F1B2C\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 2.0.0 Bye\r\n"), Want::Close),
        ],
    );
    let o = c.outcome();
    assert_eq!(o.failure, None);
    assert!(o.delivered && o.tls && o.starttls_accepted);
    assert_eq!(o.auth_mechanism, Some("PLAIN"));
    assert_eq!(o.accepted, vec!["b@lab.test"]);
    assert_eq!(o.rejected, vec!["nobody@lab.test"]);
    let caps = o.capabilities.as_ref().unwrap();
    assert!(!caps.starttls && caps.auth == ["PLAIN", "LOGIN"]);
    let stages: Vec<Stage> = c.transcript().iter().map(|(s, _)| *s).collect();
    assert_eq!(
        stages,
        vec![
            Stage::Greeting,
            Stage::Ehlo,
            Stage::StartTls,
            Stage::Ehlo,
            Stage::Auth,
            Stage::MailFrom,
            Stage::RcptTo(0),
            Stage::RcptTo(1),
            Stage::Data,
            Stage::Message,
            Stage::Quit,
        ]
    );
    assert_eq!(
        c.transcript()[9].1.first_line(),
        "250 2.0.0 Ok: queued as 4F1B2C"
    );
    // A reply after the end is not followed.
    assert_eq!(c.on_reply(Reply::new(250, &["late"])), Action::Close);
}

#[test]
fn auth_login_one_command_at_a_time() {
    let mut c = Client::new(options(TlsMode::Never, true, &["b@lab.test"])).unwrap();
    play(
        &mut c,
        &[
            (
                Some(b"220 mx ESMTP Exim 4.96\r\n"),
                Want::Send(b"EHLO [198.18.0.1]\r\n"),
            ),
            (
                Some(b"250-mx Hello\r\n250-STARTTLS\r\n250 AUTH=LOGIN\r\n"),
                Want::Send(b"AUTH LOGIN\r\n"),
            ),
            (Some(b"334 VXNlcm5hbWU6\r\n"), Want::Send(b"dGlt\r\n")),
            (
                Some(b"334 UGFzc3dvcmQ6\r\n"),
                Want::Send(b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n"),
            ),
            (
                Some(b"235 Authentication succeeded\r\n"),
                Want::Send(b"MAIL FROM:<a@lab.test>\r\n"),
            ),
            (Some(b"250 OK\r\n"), Want::Send(b"RCPT TO:<b@lab.test>\r\n")),
            (Some(b"250 Accepted\r\n"), Want::Send(b"DATA\r\n")),
            (
                Some(b"354 Enter message\r\n"),
                Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
            ),
            (Some(b"250 OK id=1\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 mx closing connection\r\n"), Want::Close),
        ],
    );
    let o = c.outcome();
    assert!(o.delivered && !o.tls && !o.starttls_accepted);
    assert_eq!(o.auth_mechanism, Some("LOGIN"));
}

#[test]
fn a_probe_upgrades_and_quits() {
    let mut c = Client::new(options(TlsMode::IfOffered, false, &[])).unwrap();
    play(
        &mut c,
        &[
            (
                Some(b"220 mail.lab.test ESMTP\r\n"),
                Want::Send(b"EHLO [198.18.0.1]\r\n"),
            ),
            (Some(POSTFIX_EHLO), Want::Send(b"STARTTLS\r\n")),
            (Some(b"220 Ready\r\n"), Want::StartTls),
            (None, Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (Some(POSTFIX_EHLO_TLS), Want::Send(b"QUIT\r\n")),
            (Some(b"221 Bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, None);
    assert!(c.outcome().tls);
}

#[test]
fn optional_tls_refused_goes_on_in_plain_text() {
    let mut c = Client::new(options(TlsMode::IfOffered, false, &[])).unwrap();
    play(
        &mut c,
        &[
            (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (
                Some(b"250-x\r\n250 STARTTLS\r\n"),
                Want::Send(b"STARTTLS\r\n"),
            ),
            (
                Some(b"454 4.7.0 TLS not available due to local problem\r\n"),
                Want::Send(b"QUIT\r\n"),
            ),
            (Some(b"221 Bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, None);
    assert!(!c.outcome().tls && !c.outcome().starttls_accepted);
}

#[test]
fn helo_fallback_then_required_tls_is_missing() {
    let mut c = Client::new(options(TlsMode::Required, false, &["b@lab.test"])).unwrap();
    play(
        &mut c,
        &[
            (
                Some(b"220 old.lab.test SMTP\r\n"),
                Want::Send(b"EHLO [198.18.0.1]\r\n"),
            ),
            (
                Some(b"502 Command not implemented\r\n"),
                Want::Send(b"HELO [198.18.0.1]\r\n"),
            ),
            (Some(b"250 old.lab.test\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, Some(Failure::TlsNotOffered));
    assert_eq!(c.outcome().capabilities, None);
    assert_eq!(c.transcript()[1].0, Stage::Ehlo);
    assert_eq!(c.transcript()[2].0, Stage::Helo);
}

/// Each refusal ends with QUIT and names its step.
#[test]
fn refusals() {
    type Case = (ClientOptions, Vec<(&'static [u8], Want)>, Failure);
    let cases: Vec<Case> = vec![
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (
                    b"554 5.7.1 No SMTP service here\r\n",
                    Want::Send(b"QUIT\r\n"),
                ),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::Greeting,
        ),
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"421 busy\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::Hello,
        ),
        (
            options(TlsMode::Required, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250-x\r\n250 STARTTLS\r\n", Want::Send(b"STARTTLS\r\n")),
                (b"454 no\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::TlsRefused,
        ),
        (
            options(TlsMode::Never, true, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250-x\r\n250 AUTH CRAM-MD5\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::AuthNotOffered,
        ),
        (
            options(TlsMode::Never, true, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    b"250-x\r\n250 AUTH PLAIN\r\n",
                    Want::Send(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"),
                ),
                (
                    b"535 5.7.8 Error: authentication failed\r\n",
                    Want::Send(b"QUIT\r\n"),
                ),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::AuthFailed,
        ),
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250 x\r\n", Want::Send(b"MAIL FROM:<a@lab.test>\r\n")),
                (b"553 sender rejected\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::SenderRejected,
        ),
        (
            options(TlsMode::Never, false, &["b@x", "c@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250 x\r\n", Want::Send(b"MAIL FROM:<a@lab.test>\r\n")),
                (b"250 ok\r\n", Want::Send(b"RCPT TO:<b@x>\r\n")),
                (b"550 no\r\n", Want::Send(b"RCPT TO:<c@x>\r\n")),
                (b"450 later\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::NoRecipientAccepted,
        ),
        // Pipelined: every reply is read before QUIT.
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    b"250-x\r\n250 PIPELINING\r\n",
                    Want::Send(b"MAIL FROM:<a@lab.test>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
                ),
                (b"550 sender rejected\r\n", Want::Wait),
                (b"503 5.5.1 Error: need MAIL command\r\n", Want::Wait),
                (
                    b"503 5.5.1 Error: need RCPT command\r\n",
                    Want::Send(b"QUIT\r\n"),
                ),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::SenderRejected,
        ),
        // Pipelined, no recipient, and a server that opens DATA anyway: hang up.
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    b"250-x\r\n250 PIPELINING\r\n",
                    Want::Send(b"MAIL FROM:<a@lab.test>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
                ),
                (b"250 ok\r\n", Want::Wait),
                (b"550 no\r\n", Want::Wait),
                (b"354 go on\r\n", Want::Close),
            ],
            Failure::NoRecipientAccepted,
        ),
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250 x\r\n", Want::Send(b"MAIL FROM:<a@lab.test>\r\n")),
                (b"250 ok\r\n", Want::Send(b"RCPT TO:<b@x>\r\n")),
                (b"250 ok\r\n", Want::Send(b"DATA\r\n")),
                (b"451 try later\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::DataRefused,
        ),
        (
            options(TlsMode::Never, false, &["b@x"]),
            vec![
                (b"220 x\r\n", Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (b"250 x\r\n", Want::Send(b"MAIL FROM:<a@lab.test>\r\n")),
                (b"250 ok\r\n", Want::Send(b"RCPT TO:<b@x>\r\n")),
                (b"250 ok\r\n", Want::Send(b"DATA\r\n")),
                (
                    b"354 go\r\n",
                    Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
                ),
                (b"554 5.7.1 spam\r\n", Want::Send(b"QUIT\r\n")),
                (b"221 bye\r\n", Want::Close),
            ],
            Failure::MessageRejected,
        ),
    ];
    for (i, (opts, script, failure)) in cases.into_iter().enumerate() {
        let mut c = Client::new(opts).unwrap();
        let script: Vec<(Option<&[u8]>, Want)> =
            script.into_iter().map(|(b, w)| (Some(b), w)).collect();
        play(&mut c, &script);
        assert_eq!(c.outcome().failure, Some(failure), "case {i}");
        assert!(!c.outcome().delivered, "case {i}");
    }
    assert_eq!(
        Failure::NoRecipientAccepted.to_string(),
        "no recipient was accepted"
    );
}

#[test]
fn arguments_are_checked_up_front() {
    let mut o = options(TlsMode::Never, false, &["b@x\r\nRCPT TO:<evil@x>"]);
    assert_eq!(
        Client::new(o.clone()).unwrap_err(),
        SmtpError::Injection {
            what: "recipient address",
            byte: b'\r'
        }
    );
    o.envelope.as_mut().unwrap().to.clear();
    assert_eq!(
        Client::new(o).unwrap_err(),
        SmtpError::BadArgument {
            what: "recipient list",
            reason: "empty"
        }
    );
    let mut o = options(TlsMode::Never, true, &[]);
    o.auth.as_mut().unwrap().pass = "p\0".to_owned();
    assert!(Client::new(o).is_err());
    let mut o = options(TlsMode::Never, false, &[]);
    o.hello_name = "a b".to_owned();
    assert!(Client::new(o).is_err());
    // The password stays out of Debug output.
    let creds = Credentials {
        user: "u".into(),
        pass: "secret".into(),
    };
    assert!(!format!("{creds:?}").contains("secret"));
}

#[test]
fn tls_established_out_of_turn_changes_nothing() {
    let mut c = Client::new(options(TlsMode::IfOffered, false, &[])).unwrap();
    assert_eq!(c.tls_established(), Action::Wait);
    assert!(!c.outcome().tls);
    // A reply while the driver should be doing the handshake ends the dialogue.
    assert_eq!(
        c.on_reply(decode(b"220 x\r\n")),
        Action::Send(b"EHLO [198.18.0.1]\r\n".to_vec())
    );
    assert_eq!(
        c.on_reply(decode(b"250-x\r\n250 STARTTLS\r\n")),
        Action::Send(b"STARTTLS\r\n".to_vec())
    );
    assert_eq!(c.on_reply(decode(b"220 go\r\n")), Action::StartTls);
    assert_eq!(c.on_reply(decode(b"250 what\r\n")), Action::Close);
    assert!(c.is_done());
}

/// A server without STARTTLS that offers AUTH in clear text (or a man in the middle who
/// removed STARTTLS from the EHLO reply) never gets the credentials.
#[test]
fn credentials_are_not_sent_in_clear_text() {
    for tls in [TlsMode::IfOffered, TlsMode::Never] {
        let mut o = options(tls, true, &["b@lab.test"]);
        o.allow_plaintext_auth = false;
        let mut c = Client::new(o).unwrap();
        play(
            &mut c,
            &[
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    Some(b"250-x\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"),
                    Want::Send(b"QUIT\r\n"),
                ),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        );
        assert_eq!(c.outcome().failure, Some(Failure::PlaintextAuth));
        assert_eq!(c.outcome().auth_mechanism, None);
    }
}

/// Implicit TLS (port 465): encrypted from the start, so AUTH goes without the plain-text
/// permission, and a STARTTLS in the offer is ignored.
#[test]
fn implicit_tls_authenticates_without_starttls() {
    let mut o = options(TlsMode::Implicit, true, &["b@lab.test"]);
    o.allow_plaintext_auth = false;
    let mut c = Client::new(o).unwrap();
    assert!(c.outcome().tls);
    play(
        &mut c,
        &[
            (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (
                Some(b"250-x\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
                Want::Send(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"),
            ),
            (
                Some(b"235 ok\r\n"),
                Want::Send(b"MAIL FROM:<a@lab.test>\r\n"),
            ),
            (Some(b"250 ok\r\n"), Want::Send(b"RCPT TO:<b@lab.test>\r\n")),
            (Some(b"251 will forward\r\n"), Want::Send(b"DATA\r\n")),
            (
                Some(b"354 go\r\n"),
                Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
            ),
            (Some(b"250 queued\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 bye\r\n"), Want::Close),
        ],
    );
    let o = c.outcome();
    assert_eq!(o.failure, None);
    assert!(o.delivered && o.tls && !o.starttls_accepted);
    // 251 (user not local, will forward) is an acceptance.
    assert_eq!(o.accepted, vec!["b@lab.test"]);
    assert_eq!(o.messages_delivered, 1);
}

/// `--auth LOGIN` when PLAIN is offered too; a forced mechanism that is not offered fails.
#[test]
fn a_forced_mechanism() {
    let mut o = options(TlsMode::Never, true, &[]);
    o.auth_mechanism = Some(AuthMechanism::Login);
    let mut c = Client::new(o).unwrap();
    assert_eq!(
        c.on_reply(decode(b"220 x\r\n")),
        Action::Send(b"EHLO [198.18.0.1]\r\n".to_vec())
    );
    assert_eq!(
        c.on_reply(decode(b"250-x\r\n250 AUTH PLAIN LOGIN\r\n")),
        Action::Send(b"AUTH LOGIN\r\n".to_vec())
    );
    assert!(!c.last_send_is_secret());
    assert_eq!(
        c.on_reply(decode(b"334 VXNlcm5hbWU6\r\n")),
        Action::Send(b"dGlt\r\n".to_vec())
    );
    assert!(!c.last_send_is_secret(), "the user name is shown");
    assert_eq!(
        c.on_reply(decode(b"334 UGFzc3dvcmQ6\r\n")),
        Action::Send(b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n".to_vec())
    );
    assert!(c.last_send_is_secret(), "the password is masked");
    assert_eq!(
        c.on_reply(decode(b"235 ok\r\n")),
        Action::Send(b"QUIT\r\n".to_vec())
    );
    assert_eq!(c.outcome().auth_mechanism, Some("LOGIN"));

    let mut o = options(TlsMode::Never, true, &[]);
    o.auth_mechanism = Some(AuthMechanism::Plain);
    let mut c = Client::new(o).unwrap();
    play(
        &mut c,
        &[
            (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (
                Some(b"250-x\r\n250 AUTH LOGIN\r\n"),
                Want::Send(b"QUIT\r\n"),
            ),
            (Some(b"221 bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, Some(Failure::AuthNotOffered));

    // The default: PLAIN, whose line is a secret.
    let mut c = Client::new(options(TlsMode::Never, true, &[])).unwrap();
    c.on_reply(decode(b"220 x\r\n"));
    c.on_reply(decode(b"250-x\r\n250 AUTH LOGIN PLAIN\r\n"));
    assert!(c.last_send_is_secret());
    assert_eq!(AuthMechanism::Plain.name(), "PLAIN");
}

/// SIZE=, BODY=8BITMIME and SMTPUTF8 go on MAIL only when offered and needed.
#[test]
fn mail_parameters() {
    const EHLO_ALL: &[u8] = b"250-x\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
    let first_mail = |from: &str, body: &[u8], ehlo: &[u8]| -> Vec<u8> {
        let mut o = options(TlsMode::Never, false, &["b@lab.test"]);
        let env = o.envelope.as_mut().unwrap();
        env.from = from.to_owned();
        env.body = body.to_vec();
        let mut c = Client::new(o).unwrap();
        c.on_reply(decode(b"220 x\r\n"));
        match c.on_reply(decode(ehlo)) {
            Action::Send(b) => b,
            other => panic!("{other:?}"),
        }
    };
    // "hi\n" is "hi\r\n" on the wire: 4 bytes.
    assert_eq!(
        first_mail("a@lab.test", b"hi\n", EHLO_ALL),
        b"MAIL FROM:<a@lab.test> SIZE=4\r\n"
    );
    assert_eq!(
        first_mail("a@lab.test", "h\u{e9}\n".as_bytes(), EHLO_ALL),
        b"MAIL FROM:<a@lab.test> SIZE=5 BODY=8BITMIME\r\n"
    );
    assert_eq!(
        first_mail("j\u{f6}rg@lab.test", b"hi\n", EHLO_ALL),
        "MAIL FROM:<j\u{f6}rg@lab.test> SIZE=4 SMTPUTF8\r\n".as_bytes()
    );
    // Not offered: nothing added.
    assert_eq!(
        first_mail("j\u{f6}rg@lab.test", "h\u{e9}\n".as_bytes(), b"250 x\r\n"),
        "MAIL FROM:<j\u{f6}rg@lab.test>\r\n".as_bytes()
    );
}

/// `--quit-after`: QUIT right after the named step, and the outcome says it was on purpose.
#[test]
fn quit_after_each_step() {
    type Case = (QuitAfter, TlsMode, bool, Vec<(Option<&'static [u8]>, Want)>);
    let cases: Vec<Case> = vec![
        (
            QuitAfter::Greeting,
            TlsMode::IfOffered,
            false,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        (
            QuitAfter::Hello,
            TlsMode::Required,
            true,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (Some(POSTFIX_EHLO), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        (
            QuitAfter::Tls,
            TlsMode::Required,
            true,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (Some(POSTFIX_EHLO), Want::Send(b"STARTTLS\r\n")),
                (Some(b"220 go\r\n"), Want::StartTls),
                (None, Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        (
            QuitAfter::Auth,
            TlsMode::Required,
            true,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (Some(POSTFIX_EHLO), Want::Send(b"STARTTLS\r\n")),
                (Some(b"220 go\r\n"), Want::StartTls),
                (None, Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    Some(POSTFIX_EHLO_TLS),
                    Want::Send(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"),
                ),
                (Some(b"235 ok\r\n"), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        // Without credentials, "auth" is where AUTH would have been.
        (
            QuitAfter::Auth,
            TlsMode::Never,
            false,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (Some(POSTFIX_EHLO), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        // PIPELINING is offered, but MAIL goes alone.
        (
            QuitAfter::Mail,
            TlsMode::Never,
            false,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    Some(POSTFIX_EHLO),
                    Want::Send(b"MAIL FROM:<a@lab.test>\r\n"),
                ),
                (Some(b"250 ok\r\n"), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
        // MAIL and RCPT pipelined, without DATA; no SIZE= since no message will follow.
        (
            QuitAfter::Rcpt,
            TlsMode::Never,
            false,
            vec![
                (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
                (
                    Some(POSTFIX_EHLO),
                    Want::Send(b"MAIL FROM:<a@lab.test>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\n"),
                ),
                (Some(b"250 ok\r\n"), Want::Wait),
                (Some(b"250 ok\r\n"), Want::Wait),
                (Some(b"550 no\r\n"), Want::Send(b"QUIT\r\n")),
                (Some(b"221 bye\r\n"), Want::Close),
            ],
        ),
    ];
    for (i, (step, tls, auth, script)) in cases.into_iter().enumerate() {
        let mut o = options(tls, auth, &["b@x", "c@x"]);
        o.quit_after = Some(step);
        let mut c = Client::new(o).unwrap();
        play(&mut c, &script);
        let o = c.outcome();
        assert_eq!(o.failure, None, "case {i}");
        assert!(o.quit_early && !o.delivered, "case {i}");
    }

    // Stopping after RCPT still needs a recipient.
    let mut o = options(TlsMode::Never, false, &["b@x"]);
    o.quit_after = Some(QuitAfter::Rcpt);
    let mut c = Client::new(o).unwrap();
    play(
        &mut c,
        &[
            (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (
                Some(b"250 x\r\n"),
                Want::Send(b"MAIL FROM:<a@lab.test>\r\n"),
            ),
            (Some(b"250 ok\r\n"), Want::Send(b"RCPT TO:<b@x>\r\n")),
            (Some(b"550 no\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, Some(Failure::NoRecipientAccepted));
    assert!(!c.outcome().quit_early);
}

/// `--count 3`: three transactions over one connection, RSET between, pipelined each time.
#[test]
fn several_messages_with_rset_between() {
    let mut o = options(TlsMode::Never, false, &["b@lab.test"]);
    o.messages = 3;
    let mut c = Client::new(o).unwrap();
    const BATCH: &[u8] = b"MAIL FROM:<a@lab.test> SIZE=22\r\nRCPT TO:<b@lab.test>\r\nDATA\r\n";
    let mut script: Vec<(Option<&[u8]>, Want)> = vec![
        (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
        (
            Some(b"250-x\r\n250-PIPELINING\r\n250 SIZE\r\n"),
            Want::Send(BATCH),
        ),
    ];
    for n in 0..3 {
        script.push((Some(b"250 ok\r\n"), Want::Wait));
        script.push((Some(b"250 ok\r\n"), Want::Wait));
        script.push((
            Some(b"354 go\r\n"),
            Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
        ));
        if n < 2 {
            script.push((Some(b"250 queued\r\n"), Want::Send(b"RSET\r\n")));
            script.push((Some(b"250 reset\r\n"), Want::Send(BATCH)));
        } else {
            script.push((Some(b"250 queued\r\n"), Want::Send(b"QUIT\r\n")));
        }
    }
    script.push((Some(b"221 bye\r\n"), Want::Close));
    play(&mut c, &script);
    let o = c.outcome();
    assert_eq!(o.failure, None);
    assert!(o.delivered);
    assert_eq!(o.messages_delivered, 3);
    assert_eq!(c.message_number(), 3, "QUIT belongs to the last message");
    assert_eq!(o.accepted, vec!["b@lab.test"], "the last transaction's");
    let rsets = c
        .transcript()
        .iter()
        .filter(|(s, _)| *s == Stage::Rset)
        .count();
    assert_eq!(rsets, 2);

    // A refused RSET ends it with what was delivered so far.
    let mut o = options(TlsMode::Never, false, &["b@lab.test"]);
    o.messages = 2;
    let mut c = Client::new(o).unwrap();
    play(
        &mut c,
        &[
            (Some(b"220 x\r\n"), Want::Send(b"EHLO [198.18.0.1]\r\n")),
            (
                Some(b"250 x\r\n"),
                Want::Send(b"MAIL FROM:<a@lab.test>\r\n"),
            ),
            (Some(b"250 ok\r\n"), Want::Send(b"RCPT TO:<b@lab.test>\r\n")),
            (Some(b"250 ok\r\n"), Want::Send(b"DATA\r\n")),
            (
                Some(b"354 go\r\n"),
                Want::Send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"),
            ),
            (Some(b"250 queued\r\n"), Want::Send(b"RSET\r\n")),
            (Some(b"421 closing\r\n"), Want::Send(b"QUIT\r\n")),
            (Some(b"221 bye\r\n"), Want::Close),
        ],
    );
    assert_eq!(c.outcome().failure, Some(Failure::ResetRefused));
    assert_eq!(c.outcome().messages_delivered, 1);
    assert!(!c.outcome().delivered);

    let mut o = options(TlsMode::Never, false, &["b@lab.test"]);
    o.messages = 0;
    assert!(Client::new(o).is_err());
}

/// The server's side of a whole pipelined, multi-message session as one byte stream, cut at
/// every position into two reads: the bytes the client sends do not depend on where the
/// network split the replies (a driver decodes what it has and waits on `Ok(None)`).
#[test]
fn every_split_of_the_server_stream_gives_the_same_dialogue() {
    let server: &[u8] = b"220 mail.lab.test ESMTP\r\n\
        250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 AUTH PLAIN\r\n\
        235 2.7.0 ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n354 go\r\n\
        250 2.0.0 queued\r\n250 2.0.0 reset\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
        550 5.1.1 no\r\n354 go\r\n250 2.0.0 queued\r\n221 2.0.0 Bye\r\n";
    let run = |cut: usize| -> Vec<u8> {
        let mut o = options(TlsMode::Never, true, &["b@lab.test", "c@lab.test"]);
        o.messages = 2;
        let mut c = Client::new(o).unwrap();
        let mut sent = Vec::new();
        let mut buf = Vec::new();
        for chunk in [&server[..cut], &server[cut..]] {
            buf.extend_from_slice(chunk);
            while let Some((r, used)) = reply::decode(&buf).expect("valid replies") {
                buf.drain(..used);
                match c.on_reply(r) {
                    Action::Send(b) => sent.extend(b),
                    Action::Wait => {}
                    Action::Close => assert!(c.is_done()),
                    Action::StartTls => panic!("no STARTTLS here"),
                }
            }
        }
        assert!(buf.is_empty() && c.is_done(), "cut {cut}");
        assert_eq!(c.outcome().messages_delivered, 2, "cut {cut}");
        sent
    };
    let whole = run(server.len());
    assert!(whole.ends_with(b"QUIT\r\n"));
    assert_eq!(whole.windows(6).filter(|w| w == b"RSET\r\n").count(), 1);
    for cut in 0..server.len() {
        assert_eq!(run(cut), whole, "cut at {cut}");
    }
}
