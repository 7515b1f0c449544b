//! POP3 (`proto/src/pop3.rs`): status lines and multi-line responses of real servers (Dovecot,
//! Cyrus, qpopper) both ways, every prefix of a pipelined stream, bad status lines, the cap,
//! and commands that refuse CR/LF.

use sockeye_proto::pop3::{
    MAX_LINE, MAX_MULTILINE_BYTES, Pop3Error, Pop3Multiline, Pop3Status, capa, decode_multiline,
    decode_status, encode_multiline, encode_status, pass, quit, stls, user,
};

fn status(ok: bool, text: &str) -> Pop3Status {
    Pop3Status {
        ok,
        text: text.to_owned(),
    }
}

fn multi(ok: bool, text: &str, lines: &[&str]) -> Pop3Multiline {
    Pop3Multiline {
        status: status(ok, text),
        lines: lines.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn status_table() -> Vec<(&'static [u8], Pop3Status)> {
    vec![
        (
            b"+OK Dovecot (Debian) ready.\r\n",
            status(true, "Dovecot (Debian) ready."),
        ),
        (
            b"+OK <1896.697170952@dbc.mtview.ca.us>\r\n",
            status(true, "<1896.697170952@dbc.mtview.ca.us>"),
        ),
        (
            b"+OK Cyrus POP3 v3.6.1 server ready <123@mail>\r\n",
            status(true, "Cyrus POP3 v3.6.1 server ready <123@mail>"),
        ),
        (
            b"+OK Begin TLS negotiation now.\r\n",
            status(true, "Begin TLS negotiation now."),
        ),
        (
            b"-ERR [AUTH] Authentication failed.\r\n",
            status(false, "[AUTH] Authentication failed."),
        ),
        (b"+OK\r\n", status(true, "")),
        (b"-ERR\n", status(false, "")),
        (b"+ok lower case\r\n", status(true, "lower case")),
        (b"-err\r\n", status(false, "")),
        (b"+OK  two spaces\r\n", status(true, " two spaces")),
    ]
}

#[test]
fn status_lines_both_ways() {
    for (bytes, want) in status_table() {
        assert_eq!(decode_status(bytes), Ok(Some((want.clone(), bytes.len()))));
        let enc = encode_status(&want);
        assert_eq!(decode_status(&enc), Ok(Some((want.clone(), enc.len()))));
    }
    assert_eq!(encode_status(&status(true, "hi")), b"+OK hi\r\n");
    assert_eq!(encode_status(&status(false, "")), b"-ERR\r\n");
    assert_eq!(status(false, "no").to_string(), "-ERR no");
}

fn multi_table() -> Vec<(&'static [u8], Pop3Multiline)> {
    vec![
        // Dovecot 2.3's CAPA before login.
        (
            b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n\
              STLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
            multi(
                true,
                "",
                &[
                    "CAPA",
                    "TOP",
                    "UIDL",
                    "RESP-CODES",
                    "PIPELINING",
                    "AUTH-RESP-CODE",
                    "STLS",
                    "USER",
                    "SASL PLAIN",
                ],
            ),
        ),
        (
            b"+OK Capability list follows\r\nTOP\r\nUSER\r\n.\r\n",
            multi(true, "Capability list follows", &["TOP", "USER"]),
        ),
        // -ERR has no body.
        (
            b"-ERR unknown command\r\n",
            multi(false, "unknown command", &[]),
        ),
        // An empty body, dot-stuffed lines, an empty line, bare LF.
        (b"+OK 0 messages\r\n.\r\n", multi(true, "0 messages", &[])),
        (
            b"+OK\r\n..hidden\r\n\r\n...\r\n. x\n.\n",
            multi(true, "", &[".hidden", "", "..", " x"]),
        ),
    ]
}

#[test]
fn multiline_both_ways() {
    for (bytes, want) in multi_table() {
        assert_eq!(
            decode_multiline(bytes),
            Ok(Some((want.clone(), bytes.len())))
        );
        let enc = encode_multiline(&want);
        assert_eq!(decode_multiline(&enc), Ok(Some((want.clone(), enc.len()))));
    }
    assert_eq!(
        encode_multiline(&multi(true, "", &[".a", "b"])),
        b"+OK\r\n..a\r\nb\r\n.\r\n"
    );
    assert_eq!(
        encode_multiline(&multi(false, "x", &["ignored"])),
        b"-ERR x\r\n"
    );
}

#[test]
fn every_prefix_of_a_pipelined_stream() {
    let mut stream = Vec::new();
    for (bytes, _) in multi_table() {
        stream.extend_from_slice(bytes);
    }
    let mut at = 0;
    for (bytes, want) in multi_table() {
        let rest = &stream[at..];
        for k in 0..bytes.len() {
            assert_eq!(
                decode_multiline(&rest[..k]),
                Ok(None),
                "{want:?} prefix {k}"
            );
        }
        assert_eq!(decode_multiline(rest), Ok(Some((want, bytes.len()))));
        at += bytes.len();
    }
    let mut at = 0;
    let mut stream = Vec::new();
    for (bytes, _) in status_table() {
        stream.extend_from_slice(bytes);
    }
    for (bytes, want) in status_table() {
        let rest = &stream[at..];
        for k in 0..bytes.len() {
            assert_eq!(decode_status(&rest[..k]), Ok(None), "{want:?} prefix {k}");
        }
        assert_eq!(decode_status(rest), Ok(Some((want, bytes.len()))));
        at += bytes.len();
    }
}

#[test]
fn bad_status_lines() {
    let cases: &[(&[u8], &str)] = &[
        (b"* OK IMAP4rev1 ready\r\n", "* OK IMAP4rev1 ready"),
        (b"220 smtp ready\r\n", "220 smtp ready"),
        (b"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH-2.0-OpenSSH_9.2p1"),
        (b"+OKAY\r\n", "+OKAY"),
        (b"-ERROR\r\n", "-ERROR"),
        (b"+ go on\r\n", "+ go on"),
        (b"\r\n", ""),
        (b"+O\r\n", "+O"),
    ];
    for (bytes, excerpt) in cases {
        let want = Pop3Error::BadStatus {
            excerpt: (*excerpt).to_owned(),
        };
        assert_eq!(decode_status(bytes), Err(want.clone()));
        assert_eq!(decode_multiline(bytes), Err(want));
    }
    assert_eq!(
        decode_status(b"hello\r\n").unwrap_err().to_string(),
        "not a POP3 status line (+OK or -ERR): \"hello\""
    );
}

#[test]
fn caps() {
    let flood = vec![b'+'; MAX_LINE];
    assert_eq!(decode_status(&flood), Err(Pop3Error::LineTooLong));
    assert_eq!(decode_status(&flood[..MAX_LINE - 1]), Ok(None));

    let mut big = b"+OK\r\n".to_vec();
    while big.len() <= MAX_MULTILINE_BYTES {
        big.extend_from_slice(b"0123456789abcdef\r\n");
    }
    assert_eq!(decode_multiline(&big), Err(Pop3Error::ResponseTooLong));
    assert_eq!(decode_multiline(&big[..MAX_MULTILINE_BYTES - 1]), Ok(None));
    // Just under the cap, the body still decodes.
    let mut fits = b"+OK\r\n".to_vec();
    while fits.len() + 18 + 3 <= MAX_MULTILINE_BYTES {
        fits.extend_from_slice(b"0123456789abcdef\r\n");
    }
    fits.extend_from_slice(b".\r\n");
    let (m, used) = decode_multiline(&fits).unwrap().unwrap();
    assert_eq!(used, fits.len());
    assert_eq!(m.lines.len(), (fits.len() - 8) / 18);
}

#[test]
fn commands() {
    assert_eq!(stls(), b"STLS\r\n");
    assert_eq!(capa(), b"CAPA\r\n");
    assert_eq!(quit(), b"QUIT\r\n");
    assert_eq!(user("alice").unwrap(), b"USER alice\r\n");
    assert_eq!(pass("s3cret pass").unwrap(), b"PASS s3cret pass\r\n");
    assert_eq!(
        user("alice\r\nDELE 1"),
        Err(Pop3Error::BadArgument {
            what: "user name",
            byte: Some(b'\r')
        })
    );
    assert_eq!(
        pass("x\ny"),
        Err(Pop3Error::BadArgument {
            what: "password",
            byte: Some(b'\n')
        })
    );
    assert_eq!(
        pass("x\0"),
        Err(Pop3Error::BadArgument {
            what: "password",
            byte: Some(0)
        })
    );
    assert_eq!(
        user(""),
        Err(Pop3Error::BadArgument {
            what: "user name",
            byte: None
        })
    );
}
