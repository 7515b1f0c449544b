//! Arbitrary bytes as a calculator TCP stream, read in both byte orders: decode requests until
//! the codec needs more, and check that every frame re-encodes to exactly its bytes, decodes
//! the same through every entry point (`decode_request`, `decode_datagram`, `with_request`),
//! and evaluates to what an independent i128 reference computes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::calc::{
    ByteOrder, HEADER_LEN, Invalid, MAX_REQUEST_LEN, RESPONSE_LEN, Request, Response,
    decode_datagram, decode_request, request_len, with_request,
};

/// The spec's semantics, independent of the codec: exact sums in i128, saturating i128
/// products (a product of non-zero factors never shrinks, so saturation only happens far
/// outside i32, and a later zero still gives 0).
fn reference(op: [u8; 3], numbers: &[i32]) -> Result<i32, Invalid> {
    let wide: i128 = match &op {
        b"SUM" => numbers.iter().map(|&n| i128::from(n)).sum(),
        b"PRO" => numbers
            .iter()
            .fold(1i128, |acc, &n| acc.saturating_mul(i128::from(n))),
        b"MIN" => i128::from(*numbers.iter().min().ok_or(Invalid::Empty)?),
        b"MAX" => i128::from(*numbers.iter().max().ok_or(Invalid::Empty)?),
        _ => return Err(Invalid::UnknownOp(op)),
    };
    i32::try_from(wide).map_err(|_| Invalid::Overflow)
}

fuzz_target!(|data: &[u8]| {
    // Buffers reused across frames: allocations dominate the cost under ASan.
    let mut bytes = Vec::with_capacity(MAX_REQUEST_LEN);
    let mut out = Vec::with_capacity(RESPONSE_LEN);
    for order in [ByteOrder::Big, ByteOrder::Little] {
        let mut consumed = 0;
        while let Some((request, len)) = decode_request(&data[consumed..], order) {
            assert!((HEADER_LEN..=MAX_REQUEST_LEN).contains(&len));
            assert_eq!(len, request.wire_len());
            let frame = &data[consumed..consumed + len];
            assert_eq!(request_len(frame), Some(len));

            // decode -> encode gives the very bytes; encode -> decode gives the value.
            bytes.clear();
            request.encode(order, &mut bytes);
            assert_eq!(bytes, frame);
            assert_eq!(decode_request(&bytes, order), Some((request.clone(), len)));
            assert_eq!(decode_datagram(frame, order), Ok(request.clone()));
            let via_with = with_request(frame, order, |id, op, numbers| Request {
                id,
                op,
                numbers: numbers.collect(),
            });
            assert_eq!(via_with, Some((request.clone(), len)));

            let result = request.evaluate();
            assert_eq!(result, reference(request.op, &request.numbers));
            if let Ok(result) = result {
                let response = Response {
                    id: request.id,
                    result,
                };
                out.clear();
                response.encode(order, &mut out);
                assert_eq!(Response::decode_datagram(&out, order), Some(response));
            }
            consumed += len;
        }
        assert!(consumed <= data.len());
        // What is left is less than one request.
        let rest = &data[consumed..];
        assert!(rest.len() < request_len(rest).unwrap_or(HEADER_LEN));
    }
});
