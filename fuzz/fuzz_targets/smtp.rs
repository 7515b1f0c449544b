//! Arbitrary bytes through the SMTP helpers: as a message body, dot-stuffing then unstuffing
//! gives the body with every line end made CRLF (checked against a plain reference); as DATA
//! on the wire, unstuff -> stuff -> unstuff is stable; as an EHLO reply, capabilities never
//! panic; as base64 both ways; as command arguments, a command is either refused or is
//! exactly one line; and as a server's replies to the client dialogue, which never panics,
//! ends when it says so, only sends whole command lines, and never sends AUTH in clear
//! text unless allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::{reply, smtp};

/// The body as unstuffing returns it: every line (split at CRLF, bare LF or bare CR) ends in
/// CRLF.
fn normalised(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut open = false;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                open = false;
                i += 1;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                open = false;
            }
            b => {
                out.push(b);
                open = true;
            }
        }
        i += 1;
    }
    if open {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn one_line(cmd: &[u8]) {
    assert!(cmd.ends_with(b"\r\n"));
    let body = &cmd[..cmd.len() - 2];
    assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
}

/// Plays the bytes as the server's side of a dialogue that authenticates and sends a message.
fn dialogue(data: &[u8]) {
    let opts = smtp::ClientOptions {
        hello_name: "[198.18.0.1]".to_owned(),
        tls: smtp::TlsMode::IfOffered,
        auth: Some(smtp::Credentials {
            user: "u".to_owned(),
            pass: "p".to_owned(),
        }),
        auth_mechanism: None,
        allow_plaintext_auth: data.first().is_some_and(|b| b & 1 == 1),
        envelope: Some(smtp::Envelope {
            from: "a@x".to_owned(),
            to: vec!["b@x".to_owned(), "c@x".to_owned()],
            body: b"hi\n.\n".to_vec(),
        }),
        quit_after: None,
        messages: 2,
    };
    let allow_plaintext = opts.allow_plaintext_auth;
    let mut client = smtp::Client::new(opts).expect("valid options");
    let mut at = 0;
    while let Ok(Some((r, used))) = reply::decode(&data[at..]) {
        at += used;
        let mut action = client.on_reply(r);
        if action == smtp::Action::StartTls {
            action = client.tls_established();
        }
        match action {
            smtp::Action::Send(bytes) => {
                assert!(bytes.ends_with(b"\r\n"));
                // Credentials never go out in clear text unless allowed.
                if bytes.starts_with(b"AUTH") {
                    assert!(allow_plaintext || client.outcome().tls);
                }
            }
            smtp::Action::Wait | smtp::Action::StartTls => {}
            smtp::Action::Close => {
                assert!(client.is_done());
                break;
            }
        }
    }
    let o = client.outcome();
    assert!(!o.delivered || o.failure.is_none());
    assert!(client.transcript().len() <= data.len());
}

fuzz_target!(|data: &[u8]| {
    dialogue(data);
    // As a body.
    let stuffed = smtp::dot_stuff(data);
    assert!(stuffed.ends_with(b".\r\n"));
    if stuffed.len() <= smtp::MAX_DATA_BYTES {
        assert_eq!(
            smtp::dot_unstuff(&stuffed),
            Ok(Some((normalised(data), stuffed.len())))
        );
    }

    // As DATA on the wire.
    if let Ok(Some((body, used))) = smtp::dot_unstuff(data) {
        assert!(used <= data.len());
        let again = smtp::dot_stuff(&body);
        assert_eq!(
            smtp::dot_unstuff(&again),
            Ok(Some((normalised(&body), again.len())))
        );
    }

    // As an EHLO reply.
    if let Ok(Some((r, _))) = reply::decode(data) {
        let caps = smtp::Capabilities::from_ehlo(&r);
        assert!(caps.auth.iter().all(|m| *m == m.to_ascii_uppercase()));
    }

    // base64 both ways.
    let text = smtp::base64_encode(data);
    assert_eq!(smtp::base64_decode(&text).as_deref(), Ok(data));
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(bytes) = smtp::base64_decode(s) {
            assert_eq!(smtp::base64_encode(&bytes), s.trim());
        }
        // As arguments: refused, or exactly one line.
        let mid = (0..=s.len() / 2)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let (a, b) = s.split_at(mid);
        for cmd in [
            smtp::ehlo(s),
            smtp::helo(s),
            smtp::mail_from(s, &[]),
            smtp::mail_from("a@b", &[s]),
            smtp::rcpt_to(s),
            smtp::auth_plain(a, b),
        ]
        .into_iter()
        .flatten()
        {
            one_line(&cmd);
        }
        one_line(&smtp::base64_line(data));
    }
});
