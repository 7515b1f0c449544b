//! Arbitrary bytes as the packets a SYN scan and host discovery read from their raw
//! sockets: no parser panics, and what they return stays inside the bytes they were given
//! (header lengths within the input, a TCP header never longer than the segment, a UDP
//! length within the datagram); an ARP frame or neighbor advertisement read back says what
//! its bytes say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::packet::{
    Ipv4Reply, parse_icmpv4_error, parse_icmpv6_error, parse_ipv4, parse_ipv4_reply, parse_ipv6,
    parse_tcp, parse_udp,
};
use sockeye_proto::ping::{Icmp6, echo_data, parse_arp_frame, parse_icmpv4, parse_icmpv6};

fuzz_target!(|data: &[u8]| {
    if let Ok((h, payload)) = parse_ipv4(data) {
        assert!(h.header_len >= 20 && h.header_len + payload.len() <= data.len());
        assert_eq!(h.header_len + payload.len(), usize::from(h.total_len));
    }
    if let Ok(Ipv4Reply::Tcp { tcp, .. }) = parse_ipv4_reply(data) {
        assert!(tcp.header_len >= 20 && tcp.header_len <= data.len());
    }
    if let Ok((h, payload)) = parse_ipv6(data) {
        assert_eq!(payload.len(), usize::from(h.payload_len));
    }
    if let Ok(tcp) = parse_tcp(data) {
        assert!(tcp.header_len >= 20 && tcp.header_len <= data.len());
    }
    let _ = parse_icmpv4_error(data);
    let _ = parse_icmpv6_error(data);
    if let Ok(u) = parse_udp(data) {
        assert!(usize::from(u.len) >= 8 && usize::from(u.len) <= data.len());
    }
    if let Ok(arp) = parse_arp_frame(data) {
        assert!(data.len() >= 42);
        assert_eq!(arp.sender_ip.octets(), data[28..32]);
        assert_eq!(arp.target_ip.octets(), data[38..42]);
    }
    let _ = parse_icmpv4(data);
    // An echo's data is what follows its 8-byte header, unchanged.
    if let Some((_, _, _, rest)) = echo_data(data) {
        assert_eq!(rest, &data[8..]);
    }
    if let Ok(Icmp6::NeighborAdvert { target, .. }) = parse_icmpv6(data) {
        assert_eq!(target.octets(), data[8..24]);
    }
});
