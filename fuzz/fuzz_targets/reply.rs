//! Arbitrary bytes as a stream of SMTP/FTP replies: each decoded reply is within the caps,
//! and decode -> encode -> decode gives the same reply back, taking all of the encoded bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::reply::{MAX_LINE, MAX_REPLY_BYTES, MAX_REPLY_LINES, decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Ok(Some((reply, used))) = decode(&data[at..]) {
        assert!(used > 0 && used <= MAX_REPLY_BYTES);
        assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
        assert!((100..600).contains(&reply.code));
        assert!((1..=5).contains(&reply.class()));
        let bytes = encode(&reply);
        // Re-encoding adds `NNN-` to FTP text lines and lossy UTF-8 turns a bad byte into
        // three, so the bytes may grow past a cap; check the round trip where they fit.
        let fits = reply.lines.iter().all(|l| l.len() + 6 <= MAX_LINE);
        if fits && bytes.len() <= MAX_REPLY_BYTES {
            assert_eq!(decode(&bytes), Ok(Some((reply.clone(), bytes.len()))));
        }
        let _ = reply.first_line();
        let _ = reply.text();
        at += used;
    }
});
