//! Arbitrary bytes as POP3 responses: status lines and multi-line responses decode within
//! the caps, and decode -> encode -> decode gives the same value back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::pop3::{
    MAX_LINE, MAX_MULTILINE_BYTES, decode_multiline, decode_status, encode_multiline,
    encode_status, pass, user,
};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Ok(Some((status, used))) = decode_status(&data[at..]) {
        assert!(used <= MAX_LINE);
        let bytes = encode_status(&status);
        // Lossy UTF-8 can grow the text; the round trip holds while the line fits.
        if bytes.len() <= MAX_LINE {
            assert_eq!(decode_status(&bytes), Ok(Some((status, bytes.len()))));
        }
        at += used;
    }
    if let Ok(Some((response, used))) = decode_multiline(data) {
        assert!(used <= MAX_MULTILINE_BYTES && used <= data.len());
        assert!(response.status.ok || response.lines.is_empty());
        let bytes = encode_multiline(&response);
        let fits = response.lines.iter().all(|l| l.len() + 3 <= MAX_LINE)
            && response.status.text.len() + 7 <= MAX_LINE;
        if fits && bytes.len() <= MAX_MULTILINE_BYTES {
            assert_eq!(decode_multiline(&bytes), Ok(Some((response, bytes.len()))));
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        for cmd in [user(s), pass(s)].into_iter().flatten() {
            assert!(cmd.ends_with(b"\r\n"));
            assert!(
                !cmd[..cmd.len() - 2]
                    .iter()
                    .any(|&b| b == b'\r' || b == b'\n' || b == 0)
            );
        }
    }
});
