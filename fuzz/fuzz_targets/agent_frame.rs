//! Arbitrary bytes as a stream of agent-protocol frames: every frame decoded re-encodes to
//! the very bytes it came from, never exceeds the cap, and a proper prefix of a frame always
//! asks for more; an error comes from the header alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::agent::{FrameError, HEADER, LEN_BYTES, MAX_FRAME, decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    loop {
        let rest = &data[at..];
        match decode(rest) {
            Ok(Some((frame, used))) => {
                assert!(used >= LEN_BYTES + HEADER && used <= LEN_BYTES + MAX_FRAME);
                let mut again = Vec::new();
                encode(frame.kind, frame.id, frame.body, &mut again).expect("it fitted");
                assert_eq!(again, &rest[..used]);
                for cut in [0, 1, LEN_BYTES, used / 2, used - 1] {
                    assert_eq!(decode(&rest[..cut]), Ok(None));
                }
                at += used;
            }
            Ok(None) => break,
            Err(FrameError::TooLong { len }) => {
                assert!(len > MAX_FRAME);
                break;
            }
            Err(FrameError::TooShort { len }) => {
                assert!(len < HEADER);
                break;
            }
            Err(FrameError::UnknownKind(k)) => {
                assert_eq!(rest[LEN_BYTES], k);
                break;
            }
        }
    }
});
