//! IMAP (`proto/src/imap.rs`): greetings and replies of real servers (Dovecot, Cyrus,
//! Courier) both ways, literals, every prefix of a pipelined stream, capability extraction,
//! bad lines, caps, and commands with quoting and injection refused.

use sockeye_proto::imap::{
    ImapError, ImapGreeting, ImapLine, ImapStatus, MAX_LINE, MAX_RESPONSE_BYTES, capabilities,
    command, decode_line, encode_line, greeting, login, logout, quote,
};

fn untagged(s: &str) -> ImapLine {
    ImapLine::Untagged(s.to_owned())
}

fn tagged(tag: &str, status: ImapStatus, text: &str) -> ImapLine {
    ImapLine::Tagged {
        tag: tag.to_owned(),
        status,
        text: text.to_owned(),
    }
}

fn table() -> Vec<(&'static [u8], ImapLine)> {
    vec![
        (
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
            untagged(
                "OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.",
            ),
        ),
        (
            b"* OK mail.lab.test Cyrus IMAP 3.6.1 server ready\r\n",
            untagged("OK mail.lab.test Cyrus IMAP 3.6.1 server ready"),
        ),
        (b"* PREAUTH IMAP4rev1 server logged in as smith\r\n", untagged("PREAUTH IMAP4rev1 server logged in as smith")),
        (b"* BYE Autologout; idle for too long\r\n", untagged("BYE Autologout; idle for too long")),
        (b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n", untagged("CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED")),
        (b"a1 OK Begin TLS negotiation now.\r\n", tagged("a1", ImapStatus::Ok, "Begin TLS negotiation now.")),
        (b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", tagged("a2", ImapStatus::No, "[AUTHENTICATIONFAILED] Authentication failed.")),
        (b"A0003 BAD Error in IMAP command received by server.\r\n", tagged("A0003", ImapStatus::Bad, "Error in IMAP command received by server.")),
        (b"t.1 ok\n", tagged("t.1", ImapStatus::Ok, "")),
        (b"+ Ready for additional command text\r\n", ImapLine::Continuation("Ready for additional command text".to_owned())),
        (b"+ \r\n", ImapLine::Continuation(String::new())),
        (b"+\r\n", ImapLine::Continuation(String::new())),
        // A literal and the line going on after it; LITERAL+'s `{N+}`; two literals.
        (b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n", untagged("1 FETCH (BODY[] {5}\r\nhello)")),
        (b"* LIST () \"/\" {4+}\r\na\r\nb\r\n", untagged("LIST () \"/\" {4+}\r\na\r\nb")),
        (b"* X {1}\r\n{{2}\r\n\r\n end\r\n", untagged("X {1}\r\n{{2}\r\n\r\n end")),
        (b"* X {0}\r\n\r\n", untagged("X {0}\r\n")),
    ]
}

#[test]
fn bytes_to_line_and_back() {
    for (bytes, want) in table() {
        let ctx = bytes.escape_ascii().to_string();
        assert_eq!(
            decode_line(bytes),
            Ok(Some((want.clone(), bytes.len()))),
            "{ctx}"
        );
        let enc = encode_line(&want);
        assert_eq!(decode_line(&enc), Ok(Some((want, enc.len()))), "{ctx}");
    }
    let exact: &[(ImapLine, &[u8])] = &[
        (untagged("OK ready"), b"* OK ready\r\n"),
        (ImapLine::Continuation("go".into()), b"+ go\r\n"),
        (tagged("a1", ImapStatus::No, "nope"), b"a1 NO nope\r\n"),
        (tagged("a1", ImapStatus::Ok, ""), b"a1 OK\r\n"),
    ];
    for (line, bytes) in exact {
        assert_eq!(encode_line(line), *bytes);
    }
}

#[test]
fn every_prefix_of_a_pipelined_stream() {
    let mut stream = Vec::new();
    for (bytes, _) in table() {
        stream.extend_from_slice(bytes);
    }
    let mut at = 0;
    for (bytes, want) in table() {
        let rest = &stream[at..];
        for k in 0..bytes.len() {
            assert_eq!(decode_line(&rest[..k]), Ok(None), "{want:?} prefix {k}");
        }
        assert_eq!(decode_line(rest), Ok(Some((want, bytes.len()))));
        at += bytes.len();
    }
    assert_eq!(at, stream.len());
}

#[test]
fn greetings() {
    let g = |b: &[u8]| greeting(&decode_line(b).unwrap().unwrap().0);
    assert_eq!(g(b"* OK Dovecot ready.\r\n"), Some(ImapGreeting::Ok));
    assert_eq!(g(b"* ok lower\r\n"), Some(ImapGreeting::Ok));
    assert_eq!(g(b"* OK\r\n"), Some(ImapGreeting::Ok));
    assert_eq!(g(b"* PREAUTH hi\r\n"), Some(ImapGreeting::Preauth));
    assert_eq!(g(b"* BYE go away\r\n"), Some(ImapGreeting::Bye));
    assert_eq!(g(b"* OKAY\r\n"), None);
    assert_eq!(g(b"* CAPABILITY IMAP4rev1\r\n"), None);
    assert_eq!(g(b"a1 OK done\r\n"), None);
    assert_eq!(untagged("BYE x").greeting(), Some(ImapGreeting::Bye));
}

#[test]
fn capability_lists() {
    let v = |s: &[&str]| Some(s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
    let table: &[(&str, Option<Vec<String>>)] = &[
        (
            "OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.",
            v(&["IMAP4rev1", "LITERAL+", "STARTTLS", "AUTH=PLAIN"]),
        ),
        (
            "CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED",
            v(&["IMAP4rev1", "STARTTLS", "LOGINDISABLED"]),
        ),
        ("capability imap4rev2", v(&["imap4rev2"])),
        ("CAPABILITY", v(&[])),
        (
            "PREAUTH [CAPABILITY IMAP4rev1] logged in",
            v(&["IMAP4rev1"]),
        ),
        // A tagged OK's text (status already taken off).
        (
            "[CAPABILITY IMAP4rev1 IDLE] Logged in",
            v(&["IMAP4rev1", "IDLE"]),
        ),
        // Unclosed bracket: everything to the end.
        ("OK [CAPABILITY IMAP4rev1 X", v(&["IMAP4rev1", "X"])),
        ("OK Cyrus IMAP ready", None),
        ("OK [ALERT] System shutdown in 10 minutes", None),
        ("OK [CAPABILITYX] no", None),
        ("1 EXISTS", None),
        ("", None),
    ];
    for (text, want) in table {
        assert_eq!(capabilities(text), *want, "{text}");
    }
    assert_eq!(
        tagged("a", ImapStatus::Ok, "[CAPABILITY A B] ok").capabilities(),
        v(&["A", "B"])
    );
    assert_eq!(
        ImapLine::Continuation("CAPABILITY A".into()).capabilities(),
        None
    );
}

#[test]
fn bad_lines() {
    let cases: &[(&[u8], &str)] = &[
        (b"+OK Dovecot ready.\r\n", "+OK Dovecot ready."),
        (b"220 smtp\r\n", "220 smtp"),
        (b"*OK no space\r\n", "*OK no space"),
        (b"a1 MAYBE\r\n", "a1 MAYBE"),
        (b"a1\r\n", "a1"),
        (b"a(1 OK x\r\n", "a(1 OK x"),
        (b" OK x\r\n", " OK x"),
        (b"\r\n", ""),
    ];
    for (bytes, excerpt) in cases {
        assert_eq!(
            decode_line(bytes),
            Err(ImapError::BadLine {
                excerpt: (*excerpt).to_owned()
            })
        );
    }
    assert_eq!(
        decode_line(b"x\r\n").unwrap_err().to_string(),
        "not an IMAP response: \"x\""
    );
}

#[test]
fn caps() {
    let flood = vec![b'*'; MAX_LINE];
    assert_eq!(decode_line(&flood), Err(ImapError::LineTooLong));
    assert_eq!(decode_line(&flood[..MAX_LINE - 1]), Ok(None));
    // A literal announced larger than the cap is refused before its bytes arrive.
    let huge = format!("* 1 FETCH (BODY[] {{{MAX_RESPONSE_BYTES}}}\r\n");
    assert_eq!(
        decode_line(huge.as_bytes()),
        Err(ImapError::ResponseTooLong)
    );
    let absurd = b"* X {99999999999999999999}\r\n";
    assert_eq!(
        decode_line(absurd),
        Ok(Some((untagged("X {99999999999999999999}"), absurd.len())))
    );
    // Literals that each fit but add up past the cap.
    let mut many = b"* X".to_vec();
    while many.len() <= MAX_RESPONSE_BYTES {
        many.extend_from_slice(b" {3000}\r\n");
        many.extend(std::iter::repeat_n(b'z', 3000));
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(decode_line(&many), Err(ImapError::ResponseTooLong));
}

#[test]
fn commands() {
    assert_eq!(command("a1", "STARTTLS").unwrap(), b"a1 STARTTLS\r\n");
    assert_eq!(command("a2", "CAPABILITY").unwrap(), b"a2 CAPABILITY\r\n");
    assert_eq!(logout("a9").unwrap(), b"a9 LOGOUT\r\n");
    assert_eq!(
        login("a3", "alice", "s3cret").unwrap(),
        b"a3 LOGIN \"alice\" \"s3cret\"\r\n"
    );
    assert_eq!(
        login("a3", "al\"ice", "back\\slash").unwrap(),
        b"a3 LOGIN \"al\\\"ice\" \"back\\\\slash\"\r\n"
    );
    assert_eq!(login("a3", "", "").unwrap(), b"a3 LOGIN \"\" \"\"\r\n");
    assert_eq!(quote("x", "caf\u{e9}").unwrap(), "\"caf\u{e9}\"");
    let bad =
        |what: &'static str, reason: &'static str| Err(ImapError::BadArgument { what, reason });
    assert_eq!(
        login("a3", "a\r\nb2 DELETE INBOX", "p"),
        bad("user name", "contains CR, LF or NUL")
    );
    assert_eq!(
        login("a3", "a", "p\0"),
        bad("password", "contains CR, LF or NUL")
    );
    assert_eq!(
        command("a1", "NOOP\r\na2 LOGOUT"),
        bad("command", "contains CR, LF or NUL")
    );
    assert_eq!(command("a1", ""), bad("command", "empty"));
    let tag_reason = "not 1 to 64 printable characters without space, +, *, %, quotes or brackets";
    for tag in ["", "a b", "+", "*", "a\r", "\"q\"", "é", &"t".repeat(65)] {
        assert_eq!(command(tag, "NOOP"), bad("tag", tag_reason), "{tag:?}");
    }
    assert_eq!(command(&"t".repeat(64), "NOOP").unwrap().len(), 64 + 7);
}
