//! Arbitrary bytes as a stream of lines under a cap taken from the first byte: every line
//! decoded is what lies before its newline (minus one CR), never holds a newline, never
//! exceeds the cap, and a `TooLong` only comes once the cap's worth of bytes has no newline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::line::{LineError, MAX_LINE, decode_line};

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    for max in [usize::from(first), MAX_LINE] {
        let mut at = 0;
        loop {
            let rest = &data[at..];
            match decode_line(rest, max) {
                Ok(Some((line, used))) => {
                    assert!(used <= max && used <= rest.len());
                    assert_eq!(rest[used - 1], b'\n');
                    assert!(!line.contains(&b'\n'));
                    let body = &rest[..used - 1];
                    assert!(body == line || (body.strip_suffix(b"\r") == Some(line)));
                    at += used;
                }
                Ok(None) => {
                    assert!(rest.len() < max || rest.is_empty());
                    assert!(!rest.contains(&b'\n'));
                    break;
                }
                Err(LineError::TooLong { max: m }) => {
                    assert_eq!(m, max);
                    assert!(rest.len() >= max);
                    assert!(!rest[..max].contains(&b'\n'));
                    break;
                }
            }
        }
    }
});
