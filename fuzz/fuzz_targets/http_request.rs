//! Arbitrary bytes as the request head a proxy reads: a decoded head stays within the caps,
//! its target has a host and a non-zero port, and the head the proxy would send the origin
//! decodes as one request head (`http::decode_request_head`) of exactly its length, with no
//! hop-by-hop field but its own `Connection: close` (nothing smuggled through); the response
//! head built back from those fields is one response head too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::http::{HttpError, decode_request_head, decode_response_head};
use sockeye_proto::http_request::{
    HOP_BY_HOP, MAX_HEAD_BYTES, MAX_HEADERS, Method, client_response_head, decode,
};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((req, used))) = decode(data) else {
        return;
    };
    assert!(used <= data.len() && used <= MAX_HEAD_BYTES);
    assert!(req.headers.len() <= MAX_HEADERS);
    assert!(!req.target.host.is_empty() && req.target.port != 0);
    if req.method == Method::Connect {
        return;
    }
    assert!(req.target.path.starts_with('/'));
    let Ok(head) = req.origin_head() else {
        return;
    };
    if head.len() > MAX_HEAD_BYTES {
        return;
    }
    let (sent, n) = match decode_request_head(&head) {
        Ok(Some(x)) => x,
        // The fields we add may pass the general decoder's field count; nothing else.
        other => {
            assert_eq!(other, Err(HttpError::TooManyHeaders));
            return;
        }
    };
    assert_eq!(n, head.len());
    assert_eq!(sent.method, req.method.as_str());
    assert_eq!(sent.header("Connection"), Some("close"));
    for (name, _) in &sent.headers {
        let hop = HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h));
        assert!(
            !hop || name == "Connection" || name == "Transfer-Encoding",
            "{name}"
        );
    }
    if let Ok((back, _)) = client_response_head(req.method, 200, "OK", &req.headers) {
        if back.len() <= MAX_HEAD_BYTES {
            match decode_response_head(&back) {
                Ok(Some((resp, n))) => assert_eq!((n, resp.status), (back.len(), 200)),
                other => assert_eq!(other, Err(HttpError::TooManyHeaders)),
            }
        }
    }
});
