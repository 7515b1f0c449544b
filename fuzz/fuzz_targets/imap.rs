//! Arbitrary bytes as IMAP response lines: each decoded line (literals followed) stays within
//! the caps, decode -> encode -> decode gives it back where the bytes were UTF-8 (lossy
//! decoding changes a literal's length), capabilities and greetings never panic, and commands
//! built from the bytes are refused or exactly one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::imap::{
    ImapLine, MAX_LINE, MAX_RESPONSE_BYTES, capabilities, command, decode_line, encode_line,
    greeting, login,
};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Ok(Some((line, used))) = decode_line(&data[at..]) {
        assert!(used > 0 && used <= MAX_RESPONSE_BYTES);
        let _ = greeting(&line);
        let _ = line.capabilities();
        let raw = &data[at..at + used];
        let bytes = encode_line(&line);
        let lines_fit = bytes.split(|&b| b == b'\n').all(|l| l.len() < MAX_LINE);
        if std::str::from_utf8(raw).is_ok() && lines_fit {
            assert_eq!(decode_line(&bytes), Ok(Some((line.clone(), bytes.len()))));
        }
        if let ImapLine::Tagged { tag, .. } = &line {
            assert!(!tag.is_empty() && !tag.contains(' '));
        }
        at += used;
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = capabilities(s);
        let mid = (0..=s.len() / 2)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let (a, b) = s.split_at(mid);
        for cmd in [command("a1", s), command(a, b), login("a1", a, b)]
            .into_iter()
            .flatten()
        {
            assert!(cmd.ends_with(b"\r\n"));
            assert!(
                !cmd[..cmd.len() - 2]
                    .iter()
                    .any(|&c| c == b'\r' || c == b'\n' || c == 0)
            );
        }
    }
});
