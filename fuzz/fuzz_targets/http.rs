//! Arbitrary bytes as HTTP/1.x heads, read both as a response and as a request: each decoded
//! head stays within the caps and decode -> encode -> decode gives it back; the probe request
//! built from the bytes as host and path always decodes as exactly one request head with
//! its three headers (nothing injected).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::http::{
    MAX_HEAD_BYTES, MAX_HEADERS, decode_request_head, decode_response_head, head_request,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, used))) = decode_response_head(data) {
        assert!(used <= MAX_HEAD_BYTES && head.headers.len() <= MAX_HEADERS);
        assert!((100..1000).contains(&head.status));
        let bytes = head.encode();
        if bytes.len() <= MAX_HEAD_BYTES {
            assert_eq!(decode_response_head(&bytes), Ok(Some((head, bytes.len()))));
        }
    }
    if let Ok(Some((head, used))) = decode_request_head(data) {
        assert!(used <= MAX_HEAD_BYTES && head.headers.len() <= MAX_HEADERS);
        let bytes = head.encode();
        if bytes.len() <= MAX_HEAD_BYTES {
            assert_eq!(decode_request_head(&bytes), Ok(Some((head, bytes.len()))));
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let mid = (0..=s.len() / 2)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let (host, path) = s.split_at(mid);
        let req = head_request(host, path);
        if req.len() <= MAX_HEAD_BYTES {
            let (head, used) = decode_request_head(&req)
                .expect("our own request decodes")
                .expect("our own request is whole");
            assert_eq!(used, req.len());
            assert_eq!(head.method, "HEAD");
            assert_eq!(head.headers.len(), 3);
        }
    }
});
