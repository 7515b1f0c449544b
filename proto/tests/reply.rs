//! SMTP/FTP numbered replies (`proto/src/reply.rs`): bytes -> reply and reply -> bytes tables
//! with real servers' replies, every prefix of a pipelined stream, and bad input (no code,
//! a code that changes, floods).

use sockeye_proto::reply::{
    MAX_LINE, MAX_REPLY_BYTES, MAX_REPLY_LINES, Reply, ReplyError, decode, encode,
};

fn reply(code: u16, lines: &[&str]) -> Reply {
    Reply::new(code, lines)
}

/// (wire bytes, the reply they decode to). Every row is one whole reply.
fn decode_table() -> Vec<(&'static [u8], Reply)> {
    vec![
        (
            b"220 mail.lab.test ESMTP Postfix (Debian/GNU)\r\n",
            reply(220, &["mail.lab.test ESMTP Postfix (Debian/GNU)"]),
        ),
        (
            b"250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            reply(
                250,
                &["mail.lab.test", "PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME"],
            ),
        ),
        // `220` alone ends a reply (RFC 5321 4.2: the text is optional).
        (b"220\r\n", reply(220, &[""])),
        (b"220-a\r\n220\r\n", reply(220, &["a", ""])),
        (b"354 \r\n", reply(354, &[""])),
        // Bare LF from a sloppy server.
        (b"421 bye\n", reply(421, &["bye"])),
        (b"220-x\n220 y\n", reply(220, &["x", "y"])),
        // vsftpd's greeting and an FTP 1yz preliminary reply.
        (b"220 (vsFTPd 3.0.3)\r\n", reply(220, &["(vsFTPd 3.0.3)"])),
        (
            b"150 Here comes the directory listing.\r\n",
            reply(150, &["Here comes the directory listing."]),
        ),
        // RFC 959 4.2's example: text lines need not start with the code, and a line that
        // starts with another code followed by `-` is text too.
        (
            b"123-First line\r\nSecond line\r\n  234 A line beginning with numbers\r\n123 The last line\r\n",
            reply(
                123,
                &[
                    "First line",
                    "Second line",
                    "  234 A line beginning with numbers",
                    "The last line",
                ],
            ),
        ),
        (
            b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n UTF8\r\n211 End\r\n",
            reply(211, &["Features:", " AUTH TLS", " PBSZ", " UTF8", "End"]),
        ),
        (b"214-x\r\n200-y\r\n214 z\r\n", reply(214, &["x", "200-y", "z"])),
        // Invalid UTF-8 becomes U+FFFD; a bare CR inside a line is text.
        (b"550 caf\xe9\r\n", reply(550, &["caf\u{fffd}"])),
        (b"550 a\rb\r\n", reply(550, &["a\rb"])),
    ]
}

#[test]
fn bytes_to_reply() {
    for (bytes, want) in decode_table() {
        let ctx = bytes.escape_ascii().to_string();
        assert_eq!(decode(bytes), Ok(Some((want, bytes.len()))), "{ctx}");
    }
}

/// (reply, the exact bytes encode writes).
#[test]
fn reply_to_bytes() {
    let table: Vec<(Reply, &[u8])> = vec![
        (
            reply(220, &["mail.lab.test ESMTP"]),
            b"220 mail.lab.test ESMTP\r\n",
        ),
        (
            reply(250, &["mail.lab.test", "STARTTLS", "SIZE 100"]),
            b"250-mail.lab.test\r\n250-STARTTLS\r\n250 SIZE 100\r\n",
        ),
        (reply(354, &[""]), b"354 \r\n"),
        (reply(221, &[]), b"221\r\n"),
        (reply(234, &["AUTH TLS OK."]), b"234 AUTH TLS OK.\r\n"),
    ];
    for (r, bytes) in table {
        assert_eq!(encode(&r), bytes, "{r:?}");
        let back = decode(bytes).unwrap().unwrap();
        assert_eq!(back.1, bytes.len());
        if !r.lines.is_empty() {
            assert_eq!(back.0, r);
        }
    }
}

#[test]
fn accessors() {
    let r = reply(250, &["mail.lab.test", "PIPELINING", "8BITMIME"]);
    assert_eq!(r.first_line(), "250 mail.lab.test");
    assert_eq!(r.text(), "mail.lab.test\nPIPELINING\n8BITMIME");
    assert_eq!(r.class(), 2);
    assert_eq!(
        r.to_string(),
        "250-mail.lab.test\n250-PIPELINING\n250 8BITMIME"
    );
    assert_eq!(reply(220, &[""]).first_line(), "220");
    assert_eq!(reply(220, &[]).first_line(), "220");
    assert_eq!(reply(554, &["no"]).class(), 5);
    assert_eq!(reply(150, &["x"]).class(), 1);
    assert_eq!(reply(451, &["x"]).class(), 4);
    assert_eq!(reply(334, &["VXNlcm5hbWU6"]).class(), 3);
}

#[test]
fn every_prefix_of_a_pipelined_stream() {
    let mut stream = Vec::new();
    let replies: Vec<Reply> = decode_table().into_iter().map(|(_, r)| r).collect();
    for (bytes, _) in decode_table() {
        stream.extend_from_slice(bytes);
    }
    let mut at = 0;
    for want in replies {
        let rest = &stream[at..];
        let (got, used) = decode(rest).unwrap().unwrap();
        assert_eq!(got, want);
        for k in 0..used {
            assert_eq!(decode(&rest[..k]), Ok(None), "{want:?} prefix {k}");
        }
        at += used;
    }
    assert_eq!(at, stream.len());
}

#[test]
fn bad_code() {
    let cases: &[(&[u8], &str)] = &[
        (b"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH-2.0-OpenSSH_9.2p1"),
        (b"+OK Dovecot ready.\r\n", "+OK Dovecot ready."),
        (b"22 short\r\n", "22 short"),
        (b"2200 four digits\r\n", "2200 four digits"),
        (b"220x\r\n", "220x"),
        (b"620 six\r\n", "620 six"),
        (b"020 zero\r\n", "020 zero"),
        (b"\r\n", ""),
        (b"\x1b[31m\r\n", "\\x1b[31m"),
        (
            b"0123456789012345678901234567890123456789 and more\r\n",
            "0123456789012345678901234567890123456789...",
        ),
    ];
    for (bytes, excerpt) in cases {
        let want = ReplyError::BadCode {
            excerpt: (*excerpt).to_owned(),
        };
        assert_eq!(
            decode(bytes),
            Err(want),
            "{:?}",
            bytes.escape_ascii().to_string()
        );
    }
    assert_eq!(
        decode(b"x\r\n").unwrap_err().to_string(),
        "not a numbered reply: \"x\""
    );
}

#[test]
fn code_mismatch() {
    assert_eq!(
        decode(b"250-a\r\n251 b\r\n"),
        Err(ReplyError::CodeMismatch {
            first: 250,
            last: 251
        })
    );
    assert_eq!(
        decode(b"220-a\r\n221\r\n"),
        Err(ReplyError::CodeMismatch {
            first: 220,
            last: 221
        })
    );
    assert_eq!(
        ReplyError::CodeMismatch {
            first: 250,
            last: 251
        }
        .to_string(),
        "multi-line reply began with 250 but ended with 251"
    );
}

#[test]
fn caps() {
    // A line of MAX_LINE bytes without a newline.
    let flood = vec![b'2'; MAX_LINE];
    assert_eq!(
        decode(&flood),
        Err(ReplyError::LineTooLong { max: MAX_LINE })
    );
    assert_eq!(decode(&flood[..MAX_LINE - 1]), Ok(None));
    // A longest line that fits: 4094 bytes of text-and-code plus CRLF.
    let mut fits = b"250 ".to_vec();
    fits.resize(MAX_LINE - 2, b'x');
    fits.extend_from_slice(b"\r\n");
    assert_eq!(decode(&fits).unwrap().unwrap().1, MAX_LINE);

    // Too many lines.
    let mut many = Vec::new();
    for _ in 0..MAX_REPLY_LINES - 1 {
        many.extend_from_slice(b"250-x\r\n");
    }
    let mut last = many.clone();
    last.extend_from_slice(b"250 end\r\n");
    let (r, _) = decode(&last).unwrap().unwrap();
    assert_eq!(r.lines.len(), MAX_REPLY_LINES);
    many.extend_from_slice(b"250-one too many\r\n");
    assert_eq!(decode(&many), Err(ReplyError::ReplyTooLong));

    // Too many bytes: 20 lines of 4000 bytes pass 64 KiB before the line cap.
    let mut big = Vec::new();
    let line = {
        let mut l = b"250-".to_vec();
        l.resize(3998, b'y');
        l.extend_from_slice(b"\r\n");
        l
    };
    while big.len() <= MAX_REPLY_BYTES {
        big.extend_from_slice(&line);
    }
    assert_eq!(decode(&big), Err(ReplyError::ReplyTooLong));
    // Still incomplete but already past the cap: refused without waiting for the rest.
    let mut partial = big[..MAX_REPLY_BYTES - 10].to_vec();
    partial.extend_from_slice(&[b'z'; 11]);
    assert_eq!(decode(&partial), Err(ReplyError::ReplyTooLong));
    assert_eq!(decode(&big[..MAX_REPLY_BYTES]), Ok(None));
}
