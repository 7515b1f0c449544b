//! SMTP (`proto/src/smtp.rs`): EHLO replies of real servers -> capabilities, commands ->
//! exact bytes, injection refused, base64 against RFC 4648's vectors, DATA dot-stuffing both
//! ways with every prefix of a stuffed body.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sockeye_proto::reply::{self, Reply};
use sockeye_proto::smtp::{
    Capabilities, MAX_DATA_BYTES, SmtpError, address_literal, auth_login_start, auth_plain,
    base64_decode, base64_encode, base64_line, data, dot_stuff, dot_unstuff, ehlo, ehlo_literal,
    helo, mail_from, quit, rcpt_to, rset, starttls,
};

fn caps_of(wire: &[u8]) -> Capabilities {
    let (r, used) = reply::decode(wire)
        .expect("a valid reply")
        .expect("a whole reply");
    assert_eq!(used, wire.len());
    Capabilities::from_ehlo(&r)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn postfix_ehlo() {
    // Postfix 3.7 on Debian 12 with smtpd_tls_security_level = may.
    let caps = caps_of(
        b"250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
          250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
          250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
    );
    assert_eq!(
        caps,
        Capabilities {
            starttls: true,
            pipelining: true,
            eightbitmime: true,
            smtputf8: true,
            size: Some(10_240_000),
            auth: vec![],
            other: strings(&["VRFY", "ETRN", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]),
        }
    );
}

#[test]
fn exim_ehlo_with_auth_and_old_auth_form() {
    let caps = caps_of(
        b"250-mx.lab.test Hello [198.18.0.1]\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
          250-PIPELINING\r\n250-AUTH PLAIN login\r\n250-AUTH=LOGIN CRAM-MD5\r\n\
          250-CHUNKING\r\n250-PRDR\r\n250 HELP\r\n",
    );
    assert_eq!(caps.auth, strings(&["PLAIN", "LOGIN", "CRAM-MD5"]));
    assert_eq!(caps.size, Some(52_428_800));
    assert!(caps.pipelining && caps.eightbitmime);
    assert!(!caps.starttls && !caps.smtputf8);
    assert_eq!(caps.other, strings(&["CHUNKING", "PRDR", "HELP"]));
}

#[test]
fn keywords_are_case_insensitive_and_odd_lines_kept() {
    let caps = caps_of(
        b"250-host\r\n250-starttls\r\n250-Pipelining\r\n250-size\r\n250-auth= \r\n\
          250-X-EXPS GSSAPI NTLM\r\n250-\r\n250 SIZE lots\r\n",
    );
    assert!(caps.starttls && caps.pipelining);
    // `SIZE` without a number: offered, no fixed limit. `SIZE lots` is kept as other.
    assert_eq!(caps.size, Some(0));
    assert!(caps.auth.is_empty());
    assert_eq!(caps.other, strings(&["X-EXPS GSSAPI NTLM", "SIZE lots"]));
    // A HELO-style single-line reply offers nothing.
    assert_eq!(caps_of(b"250 host\r\n"), Capabilities::default());
}

#[test]
fn command_bytes() {
    let v4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let v6 = IpAddr::V6("fd00:5ec::1".parse::<Ipv6Addr>().unwrap());
    let table: Vec<(Vec<u8>, &[u8])> = vec![
        (ehlo_literal(v4), b"EHLO [198.18.0.1]\r\n"),
        (ehlo_literal(v6), b"EHLO [IPv6:fd00:5ec::1]\r\n"),
        (
            ehlo("client.lab.test").unwrap(),
            b"EHLO client.lab.test\r\n",
        ),
        (helo("[198.18.0.1]").unwrap(), b"HELO [198.18.0.1]\r\n"),
        (starttls(), b"STARTTLS\r\n"),
        (
            mail_from("me@lab.test", &[]).unwrap(),
            b"MAIL FROM:<me@lab.test>\r\n",
        ),
        (
            mail_from("me@lab.test", &["SIZE=1234", "SMTPUTF8"]).unwrap(),
            b"MAIL FROM:<me@lab.test> SIZE=1234 SMTPUTF8\r\n",
        ),
        (mail_from("", &[]).unwrap(), b"MAIL FROM:<>\r\n"),
        (
            rcpt_to("you@lab.test").unwrap(),
            b"RCPT TO:<you@lab.test>\r\n",
        ),
        (data(), b"DATA\r\n"),
        (rset(), b"RSET\r\n"),
        (quit(), b"QUIT\r\n"),
        // RFC 4616 section 4's example: \0tim\0tanstaaftanstaaf.
        (
            auth_plain("tim", "tanstaaftanstaaf").unwrap(),
            b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
        ),
        (auth_login_start(), b"AUTH LOGIN\r\n"),
        (base64_line(b"user"), b"dXNlcg==\r\n"),
        (base64_line(b""), b"\r\n"),
    ];
    for (got, want) in table {
        assert_eq!(got, want, "{}", want.escape_ascii());
    }
    assert_eq!(address_literal(v4), "[198.18.0.1]");
    assert_eq!(address_literal(v6), "[IPv6:fd00:5ec::1]");
}

#[test]
fn injection_is_refused() {
    let inj = |what: &'static str, byte: u8| SmtpError::Injection { what, byte };
    assert_eq!(
        rcpt_to("a@b\r\nRCPT TO:<c@d>"),
        Err(inj("recipient address", b'\r'))
    );
    assert_eq!(rcpt_to("a@b\nX"), Err(inj("recipient address", b'\n')));
    assert_eq!(rcpt_to("a@b\0"), Err(inj("recipient address", 0)));
    assert_eq!(mail_from("a\r", &[]), Err(inj("sender address", b'\r')));
    assert_eq!(
        mail_from("a@b", &["SIZE=1\r\nRSET"]),
        Err(inj("MAIL parameter", b'\r'))
    );
    assert_eq!(ehlo("x\ny"), Err(inj("EHLO domain", b'\n')));
    assert_eq!(helo("x\0"), Err(inj("HELO domain", 0)));
    assert_eq!(auth_plain("u\0", "p"), Err(inj("user name", 0)));
    assert_eq!(auth_plain("u", "p\r\n"), Err(inj("password", b'\r')));
    // Other ways to smuggle: an address that closes its brackets, spaces, emptiness.
    let bad = |what: &'static str, reason: &'static str| SmtpError::BadArgument { what, reason };
    assert_eq!(
        rcpt_to("a@b> NOTIFY=NEVER"),
        Err(bad("recipient address", "contains '<' or '>'"))
    );
    assert_eq!(rcpt_to(""), Err(bad("recipient address", "empty")));
    assert_eq!(ehlo(""), Err(bad("EHLO domain", "empty")));
    assert_eq!(ehlo("a b"), Err(bad("EHLO domain", "contains a space")));
    assert_eq!(mail_from("a@b", &[""]), Err(bad("MAIL parameter", "empty")));
    assert_eq!(
        rcpt_to("a\r").unwrap_err().to_string(),
        "recipient address contains the byte '\\r', which would end the SMTP command"
    );
}

#[test]
fn base64_rfc4648_vectors() {
    let table: &[(&[u8], &str)] = &[
        (b"", ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"fooba", "Zm9vYmE="),
        (b"foobar", "Zm9vYmFy"),
        (b"Username:", "VXNlcm5hbWU6"),
        (b"Password:", "UGFzc3dvcmQ6"),
        (b"\xff\xfe\x00", "//4A"),
        (b"\xfb\xff", "+/8="),
    ];
    for (bytes, text) in table {
        assert_eq!(base64_encode(bytes), *text);
        assert_eq!(base64_decode(text).as_deref(), Ok(*bytes));
    }
    assert_eq!(base64_decode(" VXNlcm5hbWU6 \r").unwrap(), b"Username:");
    for bad in [
        "Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Zm9v!A==", "Zh==", "Zm9=", "=Zm9",
    ] {
        assert_eq!(base64_decode(bad), Err(SmtpError::BadBase64), "{bad}");
    }
}

/// (body, stuffed bytes, what unstuffing gives back).
fn stuffing_table() -> Vec<(&'static [u8], &'static [u8], &'static [u8])> {
    vec![
        (b"", b".\r\n", b""),
        (b"hi", b"hi\r\n.\r\n", b"hi\r\n"),
        (b"hi\r\n", b"hi\r\n.\r\n", b"hi\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\rb", b"a\r\nb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\r\rb", b"a\r\n\r\nb\r\n.\r\n", b"a\r\n\r\nb\r\n"),
        (b".", b"..\r\n.\r\n", b".\r\n"),
        (b".\r\n", b"..\r\n.\r\n", b".\r\n"),
        (
            b"x\r\n.\r\nafter",
            b"x\r\n..\r\nafter\r\n.\r\n",
            b"x\r\n.\r\nafter\r\n",
        ),
        (
            b"..two\n. x",
            b"...two\r\n.. x\r\n.\r\n",
            b"..two\r\n. x\r\n",
        ),
        (b"a.b\n", b"a.b\r\n.\r\n", b"a.b\r\n"),
        (b"\n\n", b"\r\n\r\n.\r\n", b"\r\n\r\n"),
        (b"\n.\n", b"\r\n..\r\n.\r\n", b"\r\n.\r\n"),
    ]
}

#[test]
fn dot_stuffing_both_ways() {
    for (body, stuffed, back) in stuffing_table() {
        let ctx = body.escape_ascii().to_string();
        assert_eq!(dot_stuff(body), stuffed, "{ctx}");
        assert_eq!(
            dot_unstuff(stuffed),
            Ok(Some((back.to_vec(), stuffed.len()))),
            "{ctx}"
        );
        // Stuffing what unstuffing gave changes nothing: it is already normal.
        assert_eq!(dot_stuff(back), stuffed, "{ctx}");
    }
}

#[test]
fn every_prefix_of_stuffed_data_needs_more() {
    let mut stream = Vec::new();
    for (_, stuffed, _) in stuffing_table() {
        stream.extend_from_slice(stuffed);
    }
    let mut at = 0;
    for (_, stuffed, back) in stuffing_table() {
        let rest = &stream[at..];
        for k in 0..stuffed.len() {
            assert_eq!(
                dot_unstuff(&rest[..k]),
                Ok(None),
                "prefix {k} of {stuffed:?}"
            );
        }
        assert_eq!(dot_unstuff(rest), Ok(Some((back.to_vec(), stuffed.len()))));
        at += stuffed.len();
    }
    assert_eq!(at, stream.len());
}

#[test]
fn unstuff_accepts_bare_lf_and_caps_the_body() {
    assert_eq!(
        dot_unstuff(b"a\n..b\n.\nMAIL"),
        Ok(Some((b"a\r\n.b\r\n".to_vec(), 8)))
    );
    let mut flood = vec![b'x'; 100];
    flood.push(b'\n');
    let big: Vec<u8> = flood
        .iter()
        .copied()
        .cycle()
        .take(MAX_DATA_BYTES + 1)
        .collect();
    assert_eq!(dot_unstuff(&big), Err(SmtpError::DataTooLong));
    assert_eq!(dot_unstuff(&big[..MAX_DATA_BYTES - 1]), Ok(None));
}

#[test]
fn a_whole_session_in_bytes() {
    // What `sockeye mail` writes for one message, checked against the replies a server sends.
    let greeting = reply::decode(b"220 mail.lab.test ESMTP Postfix\r\n")
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(greeting.first_line(), "220 mail.lab.test ESMTP Postfix");
    let mut out = Vec::new();
    out.extend(ehlo_literal(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))));
    out.extend(mail_from("a@lab.test", &[]).unwrap());
    out.extend(rcpt_to("b@lab.test").unwrap());
    out.extend(data());
    out.extend(dot_stuff(b"Subject: t\n\n.hidden\n"));
    out.extend(quit());
    assert_eq!(
        out,
        b"EHLO [198.18.0.1]\r\nMAIL FROM:<a@lab.test>\r\nRCPT TO:<b@lab.test>\r\nDATA\r\n\
          Subject: t\r\n\r\n..hidden\r\n.\r\nQUIT\r\n"
    );
    let r = Reply::new(250, &["ok"]);
    assert_eq!(r.class(), 2);
}
