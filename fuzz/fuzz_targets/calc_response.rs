//! Arbitrary bytes as calculator responses, in both byte orders: a stream of them decodes 8
//! bytes at a time and re-encodes to the same bytes; a datagram decodes only at exactly 8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::calc::{ByteOrder, RESPONSE_LEN, Response};

fuzz_target!(|data: &[u8]| {
    // One buffer for every re-encoding: allocations dominate the cost under ASan.
    let mut bytes = Vec::with_capacity(RESPONSE_LEN);
    for order in [ByteOrder::Big, ByteOrder::Little] {
        let mut consumed = 0;
        while let Some((response, len)) = Response::decode(&data[consumed..], order) {
            assert_eq!(len, RESPONSE_LEN);
            bytes.clear();
            response.encode(order, &mut bytes);
            assert_eq!(bytes, &data[consumed..consumed + len]);
            assert_eq!(Response::decode(&bytes, order), Some((response, len)));
            consumed += len;
        }
        assert_eq!(consumed, data.len() - data.len() % RESPONSE_LEN);
        let datagram = Response::decode_datagram(data, order);
        assert_eq!(datagram.is_some(), data.len() == RESPONSE_LEN);
    }
});
