//! Host discovery's codecs (`proto/src/ping.rs`, and the TCP and UDP ping writers of
//! `packet.rs`): byte tables of what is written and read (ARP request and reply, ICMP echo
//! and timestamp, ICMPv6 echo, neighbor solicitation and advertisement), checksums checked
//! by an independent sum, and every prefix of every message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sockeye_proto::packet::{
    PROTO_UDP, PacketError, Segment, UdpHeader, checksum, flags, parse_udp, pseudo_header_sum,
    sum_words, write_tcp, write_udp,
};
use sockeye_proto::ping::{
    ARP_FRAME, ARP_REPLY, ARP_REQUEST, Arp, ECHO_LEN, Icmp4, Icmp6, NS_LEN, TIMESTAMP_LEN,
    echo_data, parse_arp_frame, parse_icmpv4, parse_icmpv6, solicited_node, write_arp_request,
    write_icmp_echo, write_icmp_echo_data, write_icmp_timestamp, write_icmpv6_echo,
    write_neighbor_solicitation,
};

const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC: [u8; 6] = [0x02, 0x5e, 0xc0, 0x00, 0x00, 0x01];
const TARGET_MAC: [u8; 6] = [0x02, 0x5e, 0xc0, 0x00, 0x00, 0x02];

/// 198.18.0.2 is at 02:5e:c0:00:00:02, to 198.18.0.1 (02:5e:c0:00:00:01), with the
/// 18 bytes of padding a NIC adds to reach Ethernet's minimum frame.
fn arp_reply() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&TARGET_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
    f.extend_from_slice(&TARGET_MAC);
    f.extend_from_slice(&[198, 18, 0, 2]);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[198, 18, 0, 1]);
    f.extend_from_slice(&[0; 18]);
    f
}

/// The one's-complement sum computed the slow, obvious way.
fn plain_sum(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |b| u32::from(*b));
        sum += hi | lo;
    }
    sum
}

fn folds_to_zero(mut sum: u32) -> bool {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum == 0xFFFF
}

fn v6(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x5ec, 0, 0, 0, 0, 0, last)
}

#[test]
fn arp_request_bytes() {
    let mut out = [0xAAu8; 64];
    assert_eq!(write_arp_request(&mut out, MAC, SCANNER, TARGET), ARP_FRAME);
    let mut want = vec![0xff; 6];
    want.extend_from_slice(&MAC);
    want.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    want.extend_from_slice(&MAC);
    want.extend_from_slice(&[198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
    want.resize(60, 0);
    assert_eq!(&out[..ARP_FRAME], &want[..]);
    assert_eq!(
        &out[ARP_FRAME..],
        &[0xAA; 4],
        "nothing written past the frame"
    );
    // What was written reads back.
    assert_eq!(
        parse_arp_frame(&out[..ARP_FRAME]),
        Ok(Arp {
            op: ARP_REQUEST,
            sender_mac: MAC,
            sender_ip: SCANNER,
            target_mac: [0; 6],
            target_ip: TARGET,
        })
    );
}

#[test]
fn arp_reply_table() {
    assert_eq!(
        parse_arp_frame(&arp_reply()),
        Ok(Arp {
            op: ARP_REPLY,
            sender_mac: TARGET_MAC,
            sender_ip: TARGET,
            target_mac: MAC,
            target_ip: SCANNER,
        })
    );
    // An IPv4 frame is not ARP; ARP for another hardware type is refused.
    let mut ip = arp_reply();
    ip[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(parse_arp_frame(&ip), Err(PacketError::Protocol(0x00)));
    let mut token_ring = arp_reply();
    token_ring[14..16].copy_from_slice(&[0x00, 0x06]);
    assert!(matches!(
        parse_arp_frame(&token_ring),
        Err(PacketError::Version(_))
    ));
}

#[test]
fn icmp_echo_and_timestamp_requests() {
    let mut out = [0u8; TIMESTAMP_LEN];
    assert_eq!(write_icmp_echo(&mut out, 0x1234, 0xabcd), ECHO_LEN);
    // 0x0800 + 0x1234 + 0xabcd = 0xc601, complemented.
    assert_eq!(&out[..4], &[8, 0, 0x39, 0xfe]);
    assert_eq!(&out[4..8], &[0x12, 0x34, 0xab, 0xcd]);
    assert!(folds_to_zero(plain_sum(&out[..ECHO_LEN])));

    assert_eq!(
        write_icmp_timestamp(&mut out, 0x1234, 0xabcd, 3_600_000),
        TIMESTAMP_LEN
    );
    assert_eq!(out[0], 13);
    assert_eq!(
        &out[4..12],
        &[0x12, 0x34, 0xab, 0xcd, 0x00, 0x36, 0xee, 0x80]
    );
    assert_eq!(&out[12..20], &[0; 8]);
    assert!(folds_to_zero(plain_sum(&out)));
}

#[test]
fn icmp_replies_table() {
    let echo_reply = [0u8, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd];
    assert_eq!(
        parse_icmpv4(&echo_reply),
        Ok(Icmp4::EchoReply {
            id: 0x1234,
            seq: 0xabcd
        })
    );
    let mut ts_reply = [0u8; 20];
    ts_reply[0] = 14;
    ts_reply[4..8].copy_from_slice(&[0, 7, 0, 9]);
    assert_eq!(
        parse_icmpv4(&ts_reply),
        Ok(Icmp4::TimestampReply { id: 7, seq: 9 })
    );
    // A request (what our own socket may read back on loopback) is Other.
    let request = [8u8, 0, 0, 0, 0, 1, 0, 1];
    assert_eq!(
        parse_icmpv4(&request),
        Ok(Icmp4::Other { kind: 8, code: 0 })
    );
    // A host unreachable quoting a UDP ping from port 40000 to port 40125.
    let mut unreach = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
    unreach.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ]);
    unreach.extend_from_slice(&[0x9c, 0x40, 0x9c, 0xbd, 0, 8, 0x12, 0x34]);
    match parse_icmpv4(&unreach) {
        Ok(Icmp4::Error(e)) => {
            assert_eq!((e.kind, e.code), (3, 1));
            assert_eq!(e.quoted.protocol, PROTO_UDP);
            assert_eq!(e.quoted.dst, IpAddr::V4(TARGET));
            assert_eq!((e.quoted.src_port, e.quoted.dst_port), (40000, 40125));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcp_ack_ping_and_udp_ping_checksums() {
    let (src, dst) = (IpAddr::V4(SCANNER), IpAddr::V4(TARGET));
    let seg = Segment {
        src_port: 40000,
        dst_port: 80,
        seq: 0,
        ack: 0xdead_beef,
        flags: flags::ACK,
        window: 1024,
    };
    let mut t = [0u8; 20];
    write_tcp(&mut t, src, dst, &seg);
    assert_eq!(
        &t[..16],
        &[
            0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x50, 0x10, 0x04, 0x00
        ]
    );
    assert_eq!(&t[18..], &[0, 0]);
    assert!(folds_to_zero(sum_words(
        pseudo_header_sum(src, dst, 6, 20),
        &t
    )));

    let mut u = [0u8; 16];
    let len = write_udp(&mut u, src, dst, 40000, 40125, b"ping");
    assert_eq!(len, 12);
    assert_eq!(&u[..6], &[0x9c, 0x40, 0x9c, 0xbd, 0, 12]);
    assert_eq!(&u[8..12], b"ping");
    assert!(folds_to_zero(sum_words(
        pseudo_header_sum(src, dst, PROTO_UDP, 12),
        &u[..12]
    )));
    assert_eq!(
        parse_udp(&u[..12]),
        Ok(UdpHeader {
            src_port: 40000,
            dst_port: 40125,
            len: 12
        })
    );
    // The length field may not claim more than there is, nor less than a header.
    assert!(parse_udp(&u[..11]).is_err());
    let mut short = u;
    short[4..6].copy_from_slice(&[0, 7]);
    assert_eq!(parse_udp(&short[..12]), Err(PacketError::TotalLength(7)));
}

#[test]
fn icmpv6_echo_and_neighbor_solicitation() {
    let mut out = [0u8; NS_LEN];
    assert_eq!(
        write_icmpv6_echo(&mut out, v6(1), v6(2), 0x0102, 0x0304),
        ECHO_LEN
    );
    assert_eq!(&out[..2], &[128, 0]);
    assert_eq!(&out[4..8], &[1, 2, 3, 4]);
    assert!(folds_to_zero(sum_words(
        pseudo_header_sum(v6(1).into(), v6(2).into(), 58, ECHO_LEN),
        &out[..ECHO_LEN]
    )));

    let target = Ipv6Addr::new(0xfd00, 0x5ec, 0, 0, 0, 0, 0x12ab, 0xcdef);
    assert_eq!(
        solicited_node(target),
        "ff02::1:ffab:cdef".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        write_neighbor_solicitation(&mut out, v6(1), MAC, target),
        NS_LEN
    );
    assert_eq!(&out[..2], &[135, 0]);
    assert_eq!(&out[4..8], &[0; 4]);
    assert_eq!(&out[8..24], &target.octets());
    assert_eq!(&out[24..26], &[1, 1]);
    assert_eq!(&out[26..32], &MAC);
    assert!(folds_to_zero(sum_words(
        pseudo_header_sum(v6(1).into(), solicited_node(target).into(), 58, NS_LEN),
        &out
    )));
}

/// fd00:5ec::2 advertising itself at 02:5e:c0:00:00:02 (solicited, override).
fn neighbor_advert() -> Vec<u8> {
    let mut m = vec![136u8, 0, 0, 0, 0x60, 0, 0, 0];
    m.extend_from_slice(&v6(2).octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&TARGET_MAC);
    m
}

#[test]
fn icmpv6_replies_table() {
    assert_eq!(
        parse_icmpv6(&[129, 0, 0, 0, 0, 5, 0, 6]),
        Ok(Icmp6::EchoReply { id: 5, seq: 6 })
    );
    assert_eq!(
        parse_icmpv6(&neighbor_advert()),
        Ok(Icmp6::NeighborAdvert {
            target: v6(2),
            mac: Some(TARGET_MAC)
        })
    );
    // Without the option: no MAC. An option of length zero would loop forever: refused.
    assert_eq!(
        parse_icmpv6(&neighbor_advert()[..24]),
        Ok(Icmp6::NeighborAdvert {
            target: v6(2),
            mac: None
        })
    );
    let mut zero = neighbor_advert();
    zero[25] = 0;
    assert_eq!(parse_icmpv6(&zero), Err(PacketError::HeaderLength(0)));
    assert_eq!(
        parse_icmpv6(&[135, 0, 0, 0, 0, 0, 0, 0]),
        Ok(Icmp6::Other { kind: 135, code: 0 })
    );
}

/// Every strict prefix is an error, never a panic or a misread (where a prefix is a whole
/// shorter message, as an advertisement without its option, it must read as that).
#[test]
fn every_prefix_of_every_message() {
    let arp = arp_reply();
    for k in 0..42 {
        assert!(parse_arp_frame(&arp[..k]).is_err(), "arp prefix {k}");
    }
    for k in 42..=arp.len() {
        assert!(parse_arp_frame(&arp[..k]).is_ok(), "arp with {k} bytes");
    }
    let mut ts = [0u8; 20];
    ts[0] = 14;
    for k in 0..ts.len() {
        assert!(parse_icmpv4(&ts[..k]).is_err(), "timestamp prefix {k}");
    }
    let echo = [0u8, 0, 0, 0, 0, 1, 0, 1];
    for k in 0..echo.len() {
        assert!(parse_icmpv4(&echo[..k]).is_err(), "echo prefix {k}");
    }
    let na = neighbor_advert();
    for k in 0..na.len() {
        let got = parse_icmpv6(&na[..k]);
        if k == 24 {
            assert!(
                matches!(got, Ok(Icmp6::NeighborAdvert { mac: None, .. })),
                "{got:?}"
            );
        } else {
            assert!(got.is_err(), "na prefix {k}: {got:?}");
        }
    }
    let mut u = [0u8; 12];
    let len = write_udp(
        &mut u,
        IpAddr::V4(SCANNER),
        IpAddr::V4(TARGET),
        1,
        2,
        b"abcd",
    );
    for k in 0..len {
        assert!(parse_udp(&u[..k]).is_err(), "udp prefix {k}");
    }
}

/// An echo request carrying a flow's nonce line (agents' ICMP flows), and
/// its data read back; every cut-short prefix of the header is refused.
#[test]
fn an_echo_with_data_and_its_data_read_back() {
    let mut out = [0u8; 32];
    let n = write_icmp_echo_data(&mut out, 0x1234, 1, b"sockeye-flow n1\n");
    assert_eq!(n, 24);
    assert_eq!(&out[..2], &[8, 0], "type, code");
    assert_eq!(&out[4..8], &[0x12, 0x34, 0x00, 0x01], "id, seq");
    // A checksum over the whole message (its own field included) is zero.
    assert_eq!(checksum(&out[..n]), 0);
    assert_eq!(
        echo_data(&out[..n]),
        Some((8, 0x1234, 1, &b"sockeye-flow n1\n"[..]))
    );
    for cut in 0..ECHO_LEN {
        assert_eq!(echo_data(&out[..cut]), None, "{cut}");
    }
    out[0] = 3;
    assert_eq!(echo_data(&out[..n]), None);
}
