//! Arbitrary bytes as a chunked body, fed whole and then split at a point taken from the
//! first byte: both ways give the same data and the same end (or the same error), every
//! call consumes something or asks for more, and the data never outgrows the input. The data
//! re-encoded as chunks decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::chunked::{ChunkedDecoder, LAST_CHUNK, Piece, encode_chunk};

/// Feeds `parts` one after another (unconsumed bytes carried over): the data, and whether
/// the body ended; Err once it is invalid.
fn run(parts: &[&[u8]]) -> Result<(Vec<u8>, bool), ()> {
    let mut dec = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut pending = Vec::new();
    for part in parts {
        pending.extend_from_slice(part);
        loop {
            match dec.decode(&pending) {
                Ok(Some((piece, used))) => {
                    assert!(used > 0 && used <= pending.len());
                    if let Piece::Data(d) = piece {
                        assert!(!d.is_empty() && d.len() == used);
                        data.extend_from_slice(d);
                    }
                    let end = piece == Piece::End;
                    pending.drain(..used);
                    if end {
                        assert!(dec.is_done());
                        return Ok((data, true));
                    }
                }
                Ok(None) => break,
                Err(_) => return Err(()),
            }
        }
    }
    Ok((data, false))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let whole = run(&[body]);
    let cut = usize::from(first).min(body.len());
    let split = run(&[&body[..cut], &body[cut..]]);
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(()), Err(())) => {}
        // Split feeding may stop at the same error later, never succeed differently.
        _ => panic!("whole {whole:?} split {split:?}"),
    }
    if let Ok((d, _)) = &whole {
        assert!(d.len() <= body.len());
    }
    let mut wire = Vec::new();
    for piece in body.chunks(usize::from(first).max(1)) {
        encode_chunk(piece, &mut wire);
    }
    wire.extend_from_slice(LAST_CHUNK);
    assert_eq!(run(&[&wire]), Ok((body.to_vec(), true)));
});
