//! Arbitrary bytes as a telnet stream: decoding leaves only a partial IAC sequence,
//! decode -> encode -> decode gives the same items, decoding in two calls at a split taken
//! from the input agrees with decoding whole, and refusals are only WONT/DONT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::telnet::{IAC, TelnetItem, decode, encode, refuse};

fuzz_target!(|data: &[u8]| {
    let Ok((items, used)) = decode(data) else {
        return;
    };
    assert!(used <= data.len());
    let rest = &data[used..];
    assert!(rest.is_empty() || rest[0] == IAC);
    let bytes = encode(&items);
    assert_eq!(decode(&bytes), Ok((items.clone(), bytes.len())));

    // Split where the first byte says: same bytes once re-encoded.
    let k = usize::from(data.first().copied().unwrap_or(0)).min(used);
    let (mut first, took) = decode(&data[..k]).expect("a prefix of valid input is no error");
    let (more, took2) = decode(&data[took..used]).expect("the rest is no error");
    assert_eq!(took + took2, used);
    first.extend(more);
    assert_eq!(encode(&first), bytes);

    let answer = refuse(&items);
    assert_eq!(answer.len() % 3, 0);
    for chunk in answer.chunks(3) {
        assert_eq!(chunk[0], IAC);
        assert!(chunk[1] == 252 || chunk[1] == 254);
    }
    for item in &items {
        let _ = item.to_string();
        if let TelnetItem::Data(d) = item {
            assert!(!d.is_empty());
        }
    }
});
