//! Arbitrary bytes as one calculator UDP datagram, in both byte orders: a datagram that
//! decodes re-encodes to exactly the input, one that does not says why consistently with its
//! length, and evaluating never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::calc::{ByteOrder, DatagramError, HEADER_LEN, decode_datagram, evaluate};

fuzz_target!(|data: &[u8]| {
    for order in [ByteOrder::Big, ByteOrder::Little] {
        match decode_datagram(data, order) {
            Ok(request) => {
                let mut bytes = Vec::new();
                request.encode(order, &mut bytes);
                assert_eq!(bytes, data);
                assert_eq!(request.evaluate(), evaluate(request.op, &request.numbers));
            }
            Err(DatagramError::TooShort { len }) => {
                assert_eq!(len, data.len());
                assert!(len < HEADER_LEN);
            }
            Err(DatagramError::WrongLength { id, expected, len }) => {
                assert_eq!(len, data.len());
                assert_eq!(expected, HEADER_LEN + 4 * usize::from(data[7]));
                assert_ne!(expected, len);
                let mut id_bytes = [0; 4];
                id_bytes.copy_from_slice(&data[..4]);
                let want = match order {
                    ByteOrder::Big => u32::from_be_bytes(id_bytes),
                    ByteOrder::Little => u32::from_le_bytes(id_bytes),
                };
                assert_eq!(id, want);
            }
        }
    }
});
