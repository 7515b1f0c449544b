//! Line framing (`proto/src/line.rs`): a bytes -> line table, every prefix of a stream of
//! lines, and the length cap.

use sockeye_proto::line::{LineError, MAX_LINE, decode_line};

type Row = (&'static [u8], usize, Option<(&'static [u8], usize)>);

/// (bytes, max, expected line and bytes taken); `None`: needs more.
const TABLE: &[Row] = &[
    (b"", 10, None),
    (b"abc", 10, None),
    (b"abc\r", 10, None),
    (b"abc\r\n", 10, Some((b"abc", 5))),
    (b"abc\n", 10, Some((b"abc", 4))),
    (b"\r\n", 10, Some((b"", 2))),
    (b"\n", 10, Some((b"", 1))),
    // A bare CR inside the line is data; only the CR right before LF is the terminator.
    (b"a\rb\r\n", 10, Some((b"a\rb", 5))),
    (b"a\r\r\n", 10, Some((b"a\r", 4))),
    // Only the first line is taken.
    (b"one\r\ntwo\r\n", 10, Some((b"one", 5))),
    // The terminator counts toward max: a 10-byte line fits in max 10.
    (b"12345678\r\n", 10, Some((b"12345678", 10))),
    (b"123456789\n", 10, Some((b"123456789", 10))),
    // Bytes are not UTF-8 checked.
    (b"\xff\x00\xfe\n", 10, Some((b"\xff\x00\xfe", 4))),
];

#[test]
fn line_table() {
    for (bytes, max, want) in TABLE {
        let got = decode_line(bytes, *max);
        assert_eq!(
            got,
            Ok(*want),
            "{:?} max {max}",
            bytes.escape_ascii().to_string()
        );
    }
}

#[test]
fn too_long_once_max_bytes_have_no_newline() {
    assert_eq!(
        decode_line(b"1234567890", 10),
        Err(LineError::TooLong { max: 10 })
    );
    assert_eq!(
        decode_line(b"123456789\r\n", 10),
        Err(LineError::TooLong { max: 10 })
    );
    assert_eq!(decode_line(b"123456789", 10), Ok(None));
    let flood = vec![b'a'; MAX_LINE];
    assert_eq!(
        decode_line(&flood, MAX_LINE),
        Err(LineError::TooLong { max: 4096 })
    );
    assert_eq!(decode_line(&flood[..MAX_LINE - 1], MAX_LINE), Ok(None));
    assert_eq!(
        LineError::TooLong { max: 10 }.to_string(),
        "line longer than 10 bytes"
    );
    // A zero cap refuses any byte but never an empty buffer.
    assert_eq!(decode_line(b"", 0), Ok(None));
    assert_eq!(decode_line(b"\n", 0), Err(LineError::TooLong { max: 0 }));
}

#[test]
fn every_prefix_needs_more_until_the_newline() {
    let stream: &[u8] = b"first line\r\nsecond\nthird \r in\r\n\r\nlast";
    let mut at = 0;
    let mut seen = Vec::new();
    while let Some((line, used)) = decode_line(&stream[at..], MAX_LINE).unwrap() {
        for k in 0..used {
            assert_eq!(
                decode_line(&stream[at..at + k], MAX_LINE),
                Ok(None),
                "prefix {k}"
            );
        }
        seen.push(line.to_vec());
        at += used;
    }
    assert_eq!(
        seen,
        vec![
            b"first line".to_vec(),
            b"second".to_vec(),
            b"third \r in".to_vec(),
            b"".to_vec()
        ]
    );
    assert_eq!(&stream[at..], b"last");
}
