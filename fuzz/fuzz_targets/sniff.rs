//! Arbitrary bytes as a banner and as a reply to our HEAD request: sniffing is total (never
//! panics), depends only on the first bytes, agrees with the codecs where they are sure (an
//! SSH or HTTP start, a TLS record header), and looks at no more than its window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::sniff::{SNIFF_WINDOW, Sniffed, sniff_banner, sniff_reply};

fuzz_target!(|data: &[u8]| {
    let banner = sniff_banner(data);
    let reply = sniff_reply(data);
    let _ = (banner.name(), reply.to_string());
    if data.starts_with(b"SSH-2.0-") {
        assert_eq!(banner, Sniffed::Ssh);
    }
    if data.starts_with(b"HTTP/1.1 ") {
        assert_eq!(banner, Sniffed::Http);
        assert_eq!(reply, Sniffed::Http);
    }
    if matches!(data, [0x15 | 0x16, 0x03, 0x00..=0x04, ..]) {
        assert_eq!(banner, Sniffed::Tls);
        assert_eq!(reply, Sniffed::Tls);
    }
    // Bytes past the window never change the verdict.
    if data.len() > SNIFF_WINDOW {
        assert_eq!(sniff_banner(&data[..SNIFF_WINDOW]), banner);
    }
});
