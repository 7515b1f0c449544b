//! IP, TCP and ICMP headers (`proto/src/packet.rs`): byte tables of the replies a SYN scan
//! reads (SYN-ACK, RST, ICMP errors quoting the probe, v4 and v6), the probe it writes with
//! its checksums checked by an independent sum, and every prefix of every packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sockeye_proto::packet::{
    IcmpError, Ipv4Reply, PacketError, Quoted, SYN_LEN, SynProbe, TcpHeader, checksum, flags,
    parse_icmpv4_error, parse_icmpv6_error, parse_ipv4, parse_ipv4_reply, parse_ipv6, parse_tcp,
    pseudo_header_sum, sum_words, write_ipv4, write_ipv6, write_syn,
};

const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

/// A SYN-ACK from 198.18.0.2:80 to 198.18.0.1:40000 with MSS 1460 (checksums left zero:
/// offload leaves them unfilled on a veth, and the parser never checks them).
const SYN_ACK_V4: &[u8] = &[
    0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 2, 198, 18,
    0, 1, // IPv4
    0x00, 0x50, 0x9c, 0x40, 0x11, 0x22, 0x33, 0x44, 0xaa, 0xbb, 0xcc, 0xde, 0x60, 0x12, 0xfa, 0xf0,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, // TCP + MSS
];

/// The RST (with ACK) a closed port 81 sends back, plus two bytes of link padding after
/// the total length (which the parser must cut off).
const RST_V4: &[u8] = &[
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 2, 198, 18,
    0, 1, // IPv4
    0x00, 0x51, 0x9c, 0x40, 0x00, 0x00, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0xde, 0x50, 0x14, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, // TCP
    0xee, 0xee, // padding
];

/// A router's ICMP admin-prohibited (3/13) quoting our SYN to 198.18.0.2:82 (IP header
/// and the first 8 bytes of TCP, as RFC 792 requires and no more).
const ADMIN_PROHIBITED_V4: &[u8] = &[
    0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, 198, 18, 0, 254, 198,
    18, 0, 1, // outer IPv4, from the router
    0x03, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ICMP 3/13
    0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x00, 0x00, 0x3a, 0x06, 0x00, 0x00, 198, 18, 0, 1, 198, 18,
    0, 2, // quoted IPv4 (total length 44: the quote is cut short)
    0x9c, 0x40, 0x00, 0x52, 0x11, 0x22, 0x33, 0x44, // quoted TCP: ports, seq
];

/// An echo reply: ICMP, but not an error.
const ECHO_REPLY_V4: &[u8] = &[
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 198, 18, 0, 2, 198, 18,
    0, 1, 0x00, 0x00, 0xff, 0xff, 0x00, 0x01, 0x00, 0x01,
];

fn v6(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x5ec, 0, 0, 0, 0, 0, last)
}

/// fd00:5ec::2 port 22 -> fd00:5ec::1 port 40000, SYN-ACK, with options NOP NOP MSS 1440.
fn syn_ack_v6() -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0x00, 0x18, 6, 64];
    p.extend_from_slice(&v6(2).octets());
    p.extend_from_slice(&v6(1).octets());
    p.extend_from_slice(&[
        0x00, 0x16, 0x9c, 0x40, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0e, 0x60, 0x12, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x04,
    ]);
    // The header is 24 bytes (offset 6) but MSS's value lies past it: the option is cut.
    p
}

/// ICMPv6 1/1 (administratively prohibited) as a raw ICMPv6 socket reads it: no outer
/// IPv6 header; the quoted packet is our SYN to fd00:5ec::2 port 23.
fn admin_prohibited_v6() -> Vec<u8> {
    let mut p = vec![0x01, 0x01, 0x00, 0x00, 0, 0, 0, 0];
    p.extend_from_slice(&[0x60, 0, 0, 0, 0x00, 0x18, 6, 64]);
    p.extend_from_slice(&v6(1).octets());
    p.extend_from_slice(&v6(2).octets());
    p.extend_from_slice(&[
        0x9c, 0x40, 0x00, 0x17, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0x60, 0x02, 0x04, 0x00, 0, 0,
        0, 0, 0x02, 0x04, 0x05, 0xa0,
    ]);
    p
}

#[test]
fn internet_checksum_of_a_known_header() {
    // RFC 1071's worked example style: the IPv4 header of Wikipedia's article, whose
    // checksum is 0xb861.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(checksum(&header), 0xb861);
    // An odd length pads with a zero byte.
    assert_eq!(checksum(&[0x01]), !0x0100);
    assert_eq!(checksum(&[]), 0xffff);
    // Many words cannot overflow the running sum.
    assert_eq!(checksum(&vec![0xff; 1 << 20]), 0x0000);
}

#[test]
fn ipv4_header_written_is_read_back_and_sums_to_zero() {
    let mut buf = [0u8; 20 + SYN_LEN];
    write_ipv4(&mut buf, SCANNER, TARGET, 6, 64, 0x1234, SYN_LEN);
    assert_eq!(
        checksum(&buf[..20]),
        0,
        "a header with its checksum sums to 0"
    );
    let (h, payload) = parse_ipv4(&buf).expect("parse");
    assert_eq!(
        (h.src, h.dst, h.protocol, h.ttl, h.id),
        (SCANNER, TARGET, 6, 64, 0x1234)
    );
    assert_eq!((h.header_len, h.total_len, h.frag_offset), (20, 44, 0));
    assert_eq!(payload.len(), SYN_LEN);
}

/// The one's-complement sum written out plainly (16-bit words, end-around carry), to
/// check the codec's checksum by a second route.
fn plain_sum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn syn_probe_v4_bytes_and_checksum() {
    let probe = SynProbe {
        src_port: 40000,
        dst_port: 80,
        seq: 0x1122_3344,
        window: 1024,
        mss: 1460,
    };
    let mut seg = [0u8; SYN_LEN];
    write_syn(&mut seg, SCANNER.into(), TARGET.into(), &probe);
    assert_eq!(
        seg[..16],
        [
            0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0x60, 0x02, 0x04, 0x00
        ]
    );
    assert_eq!(seg[18..], [0, 0, 0x02, 0x04, 0x05, 0xb4]);
    // Pseudo-header + segment (checksum included) sums to all ones.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SCANNER.octets());
    pseudo.extend_from_slice(&TARGET.octets());
    pseudo.extend_from_slice(&[0, 6, 0, SYN_LEN as u8]);
    pseudo.extend_from_slice(&seg);
    assert_eq!(plain_sum(&pseudo), 0xffff);
    let tcp = parse_tcp(&seg).expect("parse");
    assert_eq!(
        tcp,
        TcpHeader {
            src_port: 40000,
            dst_port: 80,
            seq: 0x1122_3344,
            ack: 0,
            flags: flags::SYN,
            window: 1024,
            header_len: 24,
            mss: Some(1460),
        }
    );
}

#[test]
fn syn_probe_v6_checksum_covers_the_v6_pseudo_header() {
    let probe = SynProbe {
        src_port: 40000,
        dst_port: 22,
        seq: 0xdead_beef,
        window: 1024,
        mss: 1440,
    };
    let mut pkt = [0u8; 40 + SYN_LEN];
    write_ipv6(&mut pkt, v6(1), v6(2), 6, 64, SYN_LEN);
    write_syn(&mut pkt[40..], v6(1).into(), v6(2).into(), &probe);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&v6(1).octets());
    pseudo.extend_from_slice(&v6(2).octets());
    pseudo.extend_from_slice(&[0, 0, 0, SYN_LEN as u8, 0, 0, 0, 6]);
    pseudo.extend_from_slice(&pkt[40..]);
    assert_eq!(plain_sum(&pseudo), 0xffff);
    let (h, payload) = parse_ipv6(&pkt).expect("parse");
    assert_eq!(
        (h.src, h.dst, h.next_header, h.hop_limit),
        (v6(1), v6(2), 6, 64)
    );
    assert_eq!(h.payload_len as usize, SYN_LEN);
    assert_eq!(parse_tcp(payload).expect("tcp").seq, 0xdead_beef);
    // The pseudo-header sum alone, against the same bytes summed plainly.
    let unfolded = pseudo_header_sum(v6(1).into(), v6(2).into(), 6, SYN_LEN);
    assert_eq!(plain_sum(&pseudo[..40]), {
        let mut s = unfolded;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    });
    assert_eq!(sum_words(0, &[0xff, 0xff]), 0xffff);
}

#[test]
fn replies_table() {
    let rows: Vec<(&str, Vec<u8>, Ipv4Reply)> = vec![
        (
            "syn-ack",
            SYN_ACK_V4.to_vec(),
            Ipv4Reply::Tcp {
                src: TARGET,
                dst: SCANNER,
                tcp: TcpHeader {
                    src_port: 80,
                    dst_port: 40000,
                    seq: 0x1122_3344,
                    ack: 0xaabb_ccde,
                    flags: flags::SYN | flags::ACK,
                    window: 64240,
                    header_len: 24,
                    mss: Some(1460),
                },
            },
        ),
        (
            "rst",
            RST_V4.to_vec(),
            Ipv4Reply::Tcp {
                src: TARGET,
                dst: SCANNER,
                tcp: TcpHeader {
                    src_port: 81,
                    dst_port: 40000,
                    seq: 0,
                    ack: 0xaabb_ccde,
                    flags: flags::RST | flags::ACK,
                    window: 0,
                    header_len: 20,
                    mss: None,
                },
            },
        ),
        (
            "admin-prohibited",
            ADMIN_PROHIBITED_V4.to_vec(),
            Ipv4Reply::Icmp {
                from: ROUTER,
                error: IcmpError {
                    kind: 3,
                    code: 13,
                    quoted: Quoted {
                        src: SCANNER.into(),
                        dst: TARGET.into(),
                        protocol: 6,
                        src_port: 40000,
                        dst_port: 82,
                        seq: 0x1122_3344,
                    },
                },
            },
        ),
        ("echo reply", ECHO_REPLY_V4.to_vec(), Ipv4Reply::Other),
    ];
    for (name, bytes, want) in rows {
        assert_eq!(parse_ipv4_reply(&bytes), Ok(want), "{name}");
    }
}

#[test]
fn ipv6_replies() {
    let p = syn_ack_v6();
    let (h, payload) = parse_ipv6(&p).expect("v6");
    assert_eq!((h.src, h.dst, h.next_header), (v6(2), v6(1), 6));
    let tcp = parse_tcp(payload).expect("tcp");
    assert_eq!(
        (tcp.src_port, tcp.dst_port, tcp.ack),
        (22, 40000, 0x0a0b_0c0e)
    );
    assert!(tcp.has(flags::SYN | flags::ACK) && !tcp.has(flags::RST));
    assert_eq!(
        tcp.mss, None,
        "an MSS option cut by the header length is not read"
    );

    let icmp = admin_prohibited_v6();
    assert_eq!(
        parse_icmpv6_error(&icmp),
        Ok(Some(IcmpError {
            kind: 1,
            code: 1,
            quoted: Quoted {
                src: IpAddr::V6(v6(1)),
                dst: IpAddr::V6(v6(2)),
                protocol: 6,
                src_port: 40000,
                dst_port: 23,
                seq: 0xdead_beef,
            },
        }))
    );
    // Echo reply (129) is informational.
    assert_eq!(parse_icmpv6_error(&[129, 0, 0, 0, 0, 1, 0, 1]), Ok(None));
}

#[test]
fn malformed_headers_are_named() {
    let mut v5 = SYN_ACK_V4.to_vec();
    v5[0] = 0x55;
    assert_eq!(parse_ipv4(&v5), Err(PacketError::Version(5)));
    let mut ihl = SYN_ACK_V4.to_vec();
    ihl[0] = 0x44;
    assert_eq!(parse_ipv4(&ihl), Err(PacketError::HeaderLength(4)));
    let mut total = SYN_ACK_V4.to_vec();
    total[2..4].copy_from_slice(&[0, 19]);
    assert_eq!(parse_ipv4(&total), Err(PacketError::TotalLength(19)));
    let mut offset = SYN_ACK_V4[20..].to_vec();
    offset[12] = 0x40;
    assert_eq!(parse_tcp(&offset), Err(PacketError::HeaderLength(4)));
    assert_eq!(parse_ipv6(SYN_ACK_V4), Err(PacketError::Version(4)));
    // A fragment of a quoted packet has no ports to read.
    let mut frag = ADMIN_PROHIBITED_V4.to_vec();
    frag[28 + 7] = 0x10;
    assert_eq!(parse_ipv4_reply(&frag), Err(PacketError::Fragment));
    // A later fragment of an outer packet is skipped, not misread.
    let mut outer_frag = RST_V4.to_vec();
    outer_frag[7] = 0x01;
    assert_eq!(parse_ipv4_reply(&outer_frag), Ok(Ipv4Reply::Other));
    // A quoted IPv6 packet with an extension header first.
    let mut ext = admin_prohibited_v6();
    ext[8 + 6] = 0;
    assert_eq!(parse_icmpv6_error(&ext), Err(PacketError::Protocol(0)));
    assert!(
        PacketError::Truncated { need: 20, have: 3 }
            .to_string()
            .contains("3 bytes")
    );
}

#[test]
fn odd_tcp_options_are_walked_safely() {
    let mut seg = SYN_ACK_V4[20..].to_vec();
    // Option kind 8 claiming 40 bytes: runs past the header, the walk stops.
    seg[20..24].copy_from_slice(&[8, 40, 0, 0]);
    assert_eq!(parse_tcp(&seg).expect("parse").mss, None);
    // Length 0 and 1 would loop forever if taken at face value.
    seg[20..24].copy_from_slice(&[8, 0, 2, 4]);
    assert_eq!(parse_tcp(&seg).expect("parse").mss, None);
    // End of options stops the walk before a later MSS.
    seg[20..24].copy_from_slice(&[0, 2, 4, 5]);
    assert_eq!(parse_tcp(&seg).expect("parse").mss, None);
    // NOP NOP then a 2-byte option with an MSS-length-4 claim past the end.
    seg[20..24].copy_from_slice(&[1, 1, 2, 4]);
    assert_eq!(parse_tcp(&seg).expect("parse").mss, None);
}

/// Every strict prefix of a whole packet is an error, never a panic or a misread; the
/// whole packet parses.
#[test]
fn every_prefix_of_every_packet() {
    for (name, bytes) in [
        ("syn-ack", SYN_ACK_V4),
        ("rst", &RST_V4[..40]),
        ("admin-prohibited", ADMIN_PROHIBITED_V4),
        ("echo", ECHO_REPLY_V4),
    ] {
        for k in 0..bytes.len() {
            assert!(
                parse_ipv4_reply(&bytes[..k]).is_err(),
                "{name}: prefix {k} parsed"
            );
            assert!(parse_ipv4(&bytes[..k]).is_err(), "{name}: ip prefix {k}");
        }
        assert!(parse_ipv4_reply(bytes).is_ok(), "{name}");
    }
    let seg = &SYN_ACK_V4[20..];
    for k in 0..seg.len() {
        assert!(parse_tcp(&seg[..k]).is_err(), "tcp prefix {k}");
    }
    let p6 = syn_ack_v6();
    for k in 0..p6.len() {
        assert!(parse_ipv6(&p6[..k]).is_err(), "v6 prefix {k}");
    }
    // An ICMPv6 error may quote less than the whole probe: from the quoted header and
    // 8 bytes of TCP on it parses to the same answer; anything shorter is an error.
    let icmp = admin_prohibited_v6();
    let whole = parse_icmpv6_error(&icmp);
    for k in 0..icmp.len() {
        let got = parse_icmpv6_error(&icmp[..k]);
        if k >= 8 + 40 + 8 {
            assert_eq!(got, whole, "icmpv6 prefix {k}");
        } else {
            assert!(got.is_err(), "icmpv6 prefix {k}: {got:?}");
        }
    }
    let icmp4 = &ADMIN_PROHIBITED_V4[20..];
    for k in 0..icmp4.len() {
        assert!(
            parse_icmpv4_error(&icmp4[..k]).is_err(),
            "icmpv4 prefix {k}"
        );
    }
}
