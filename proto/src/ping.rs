//! What host discovery sends and reads besides TCP: ARP requests and
//! replies in their Ethernet frame, ICMP echo and timestamp requests and
//! replies, and on IPv6 ICMPv6 echo, neighbor solicitation and neighbor
//! advertisement. TCP and UDP pings use [`crate::packet`]'s writers.
//!
//! As in [`crate::packet`], parsers take a whole frame or message and never
//! panic; a message of another kind is `Ok(Other)`, not an error, since a
//! raw socket delivers every message of its protocol. Checksums are written,
//! not verified: a discovery validates replies by the identifier and
//! sequence number it chose (a keyed hash), or for ARP and NDP by the
//! address it asked about.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::{
    IcmpError, PROTO_ICMPV6, PacketError, be16, checksum, fold, need, parse_icmpv4_error,
    parse_icmpv6_error, pseudo_header_sum, sum_words,
};

/// A MAC (Ethernet hardware) address.
pub type Mac = [u8; 6];

/// The broadcast MAC address.
pub const BROADCAST: Mac = [0xff; 6];

/// Length of an Ethernet II header: destination, source, EtherType.
pub const ETH_HEADER: usize = 14;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4 (ARP's protocol type).
const ETHERTYPE_IPV4: u16 = 0x0800;
/// Length of an ARP message for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
/// Length of the ARP request frame written: Ethernet's 60-byte minimum
/// (the 42 bytes of header and message, zero-padded, as a NIC would).
pub const ARP_FRAME: usize = 60;
/// ARP operations.
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// Length of an ICMP echo request or reply without data.
pub const ECHO_LEN: usize = 8;
/// Length of an ICMP timestamp request or reply (RFC 792).
pub const TIMESTAMP_LEN: usize = 20;
/// Length of the neighbor solicitation written: the header, the target
/// address and a source link-layer address option (RFC 4861 section 4.3).
pub const NS_LEN: usize = 8 + 16 + 8;

/// ICMPv4 message types discovery uses.
pub mod icmp4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIMESTAMP_REQUEST: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// ICMPv6 message types discovery uses.
pub mod icmp6 {
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICITATION: u8 = 135;
    pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

// ---------------------------------------------------------------------------
// ARP
// ---------------------------------------------------------------------------

/// An ARP message for IPv4 over Ethernet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// [`ARP_REQUEST`] or [`ARP_REPLY`] (others are kept as read).
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// Writes a broadcast ARP request frame asking who has `target`, from
/// `mac`/`ip`, into `out[..ARP_FRAME]`; returns [`ARP_FRAME`].
///
/// # Panics
/// If `out` is shorter than [`ARP_FRAME`] (a caller's buffer bug).
pub fn write_arp_request(out: &mut [u8], mac: Mac, ip: Ipv4Addr, target: Ipv4Addr) -> usize {
    let f = &mut out[..ARP_FRAME];
    f.fill(0);
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let a = &mut f[ETH_HEADER..ETH_HEADER + ARP_LEN];
    a[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    a[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    a[4] = 6;
    a[5] = 4;
    a[6..8].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    a[8..14].copy_from_slice(&mac);
    a[14..18].copy_from_slice(&ip.octets());
    // Target hardware address: unknown, zero.
    a[24..28].copy_from_slice(&target.octets());
    ARP_FRAME
}

/// Parses an Ethernet frame carrying an ARP message for IPv4 over
/// Ethernet. Link padding after the message is allowed. Another
/// EtherType is [`PacketError::Protocol`] (its low byte); another hardware
/// or protocol type, or other address lengths, [`PacketError::Version`].
pub fn parse_arp_frame(buf: &[u8]) -> Result<Arp, PacketError> {
    need(buf, ETH_HEADER)?;
    let ethertype = be16(buf, 12);
    if ethertype != ETHERTYPE_ARP {
        return Err(PacketError::Protocol(ethertype as u8));
    }
    parse_arp(&buf[ETH_HEADER..])
}

/// Parses an ARP message (without its Ethernet header); bytes after it
/// (link padding) are ignored.
pub fn parse_arp(a: &[u8]) -> Result<Arp, PacketError> {
    need(a, 8)?;
    if be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
        return Err(PacketError::Version(a[4]));
    }
    need(a, ARP_LEN)?;
    Ok(Arp {
        op: be16(a, 6),
        sender_mac: mac_at(a, 8),
        sender_ip: ipv4_at(a, 14),
        target_mac: mac_at(a, 18),
        target_ip: ipv4_at(a, 24),
    })
}

// ---------------------------------------------------------------------------
// ICMPv4 echo and timestamp
// ---------------------------------------------------------------------------

/// Writes an ICMP echo request (no data) with its checksum into
/// `out[..ECHO_LEN]`; returns [`ECHO_LEN`].
///
/// # Panics
/// If `out` is shorter than [`ECHO_LEN`].
pub fn write_icmp_echo(out: &mut [u8], id: u16, seq: u16) -> usize {
    write_icmp_echo_data(out, id, seq, &[])
}

/// Writes an ICMP echo request carrying `data` (a flow's nonce line) with
/// its checksum into `out`; returns its length, [`ECHO_LEN`] + `data`'s.
///
/// # Panics
/// If `out` is shorter than that.
pub fn write_icmp_echo_data(out: &mut [u8], id: u16, seq: u16, data: &[u8]) -> usize {
    let len = ECHO_LEN + data.len();
    let m = &mut out[..len];
    m[0] = icmp4::ECHO_REQUEST;
    m[1] = 0;
    m[2..4].copy_from_slice(&[0, 0]);
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[ECHO_LEN..].copy_from_slice(data);
    let sum = checksum(m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    len
}

/// An ICMP echo request or reply's data (after the 8-byte header), with
/// its type, id and sequence number; `None` for any other message.
pub fn echo_data(buf: &[u8]) -> Option<(u8, u16, u16, &[u8])> {
    if buf.len() < ECHO_LEN
        || !matches!(buf[0], icmp4::ECHO_REQUEST | icmp4::ECHO_REPLY)
        || buf[1] != 0
    {
        return None;
    }
    Some((buf[0], be16(buf, 4), be16(buf, 6), &buf[ECHO_LEN..]))
}

/// Writes an ICMP timestamp request with its checksum into
/// `out[..TIMESTAMP_LEN]`: `originate` is milliseconds since midnight UT
/// (RFC 792); the receive and transmit fields are zero. Returns
/// [`TIMESTAMP_LEN`].
///
/// # Panics
/// If `out` is shorter than [`TIMESTAMP_LEN`].
pub fn write_icmp_timestamp(out: &mut [u8], id: u16, seq: u16, originate: u32) -> usize {
    let m = &mut out[..TIMESTAMP_LEN];
    m.fill(0);
    m[0] = icmp4::TIMESTAMP_REQUEST;
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..12].copy_from_slice(&originate.to_be_bytes());
    let sum = checksum(m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    TIMESTAMP_LEN
}

/// An ICMPv4 message as discovery reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp4 {
    EchoReply {
        id: u16,
        seq: u16,
    },
    TimestampReply {
        id: u16,
        seq: u16,
    },
    /// An error quoting a packet (see [`parse_icmpv4_error`]).
    Error(IcmpError),
    /// Any other message (a request, a redirect...).
    Other {
        kind: u8,
        code: u8,
    },
}

/// Parses an ICMPv4 message (without its IP header).
pub fn parse_icmpv4(buf: &[u8]) -> Result<Icmp4, PacketError> {
    need(buf, ECHO_LEN)?;
    let (kind, code) = (buf[0], buf[1]);
    let (id, seq) = (be16(buf, 4), be16(buf, 6));
    match kind {
        icmp4::ECHO_REPLY => Ok(Icmp4::EchoReply { id, seq }),
        icmp4::TIMESTAMP_REPLY => {
            need(buf, TIMESTAMP_LEN)?;
            Ok(Icmp4::TimestampReply { id, seq })
        }
        _ => match parse_icmpv4_error(buf)? {
            Some(err) => Ok(Icmp4::Error(err)),
            None => Ok(Icmp4::Other { kind, code }),
        },
    }
}

// ---------------------------------------------------------------------------
// ICMPv6 echo and neighbor discovery
// ---------------------------------------------------------------------------

/// The solicited-node multicast address of `target` (RFC 4291 section
/// 2.7.1): ff02::1:ffXX:XXXX with its low 24 bits.
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

fn icmpv6_checksum(m: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    m[2..4].copy_from_slice(&[0, 0]);
    let sum = fold(sum_words(
        pseudo_header_sum(src.into(), dst.into(), PROTO_ICMPV6, m.len()),
        m,
    ));
    m[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Writes an ICMPv6 echo request (no data) from `src` to `dst` with its
/// checksum into `out[..ECHO_LEN]` (a raw ICMPv6 socket rewrites the
/// checksum anyway); returns [`ECHO_LEN`].
///
/// # Panics
/// If `out` is shorter than [`ECHO_LEN`].
pub fn write_icmpv6_echo(out: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16) -> usize {
    let m = &mut out[..ECHO_LEN];
    m[0] = icmp6::ECHO_REQUEST;
    m[1] = 0;
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    icmpv6_checksum(m, src, dst);
    ECHO_LEN
}

/// Writes a neighbor solicitation for `target` from `src` (whose MAC is
/// `mac`, sent as the source link-layer address option) into
/// `out[..NS_LEN]`, its checksum over the pseudo-header towards the
/// solicited-node address of `target`; returns [`NS_LEN`].
///
/// # Panics
/// If `out` is shorter than [`NS_LEN`].
pub fn write_neighbor_solicitation(
    out: &mut [u8],
    src: Ipv6Addr,
    mac: Mac,
    target: Ipv6Addr,
) -> usize {
    let m = &mut out[..NS_LEN];
    m.fill(0);
    m[0] = icmp6::NEIGHBOR_SOLICITATION;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = 1; // source link-layer address
    m[25] = 1; // length in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    icmpv6_checksum(m, src, solicited_node(target));
    NS_LEN
}

/// An ICMPv6 message as discovery reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp6 {
    EchoReply {
        id: u16,
        seq: u16,
    },
    /// A neighbor advertisement: the address it is about and, when the
    /// target link-layer address option is present, its MAC.
    NeighborAdvert {
        target: Ipv6Addr,
        mac: Option<Mac>,
    },
    Error(IcmpError),
    Other {
        kind: u8,
        code: u8,
    },
}

/// Parses an ICMPv6 message (what a raw ICMPv6 socket reads: no IPv6
/// header). Options of an advertisement are walked within the message; a
/// malformed option (length zero, or running past the end) is an error.
pub fn parse_icmpv6(buf: &[u8]) -> Result<Icmp6, PacketError> {
    need(buf, ECHO_LEN)?;
    let (kind, code) = (buf[0], buf[1]);
    match kind {
        icmp6::ECHO_REPLY => Ok(Icmp6::EchoReply {
            id: be16(buf, 4),
            seq: be16(buf, 6),
        }),
        icmp6::NEIGHBOR_ADVERTISEMENT => {
            need(buf, 24)?;
            let mut t = [0u8; 16];
            t.copy_from_slice(&buf[8..24]);
            let mut mac = None;
            let mut opts = &buf[24..];
            while !opts.is_empty() {
                need(opts, 2)?;
                let len = usize::from(opts[1]) * 8;
                if len == 0 {
                    return Err(PacketError::HeaderLength(0));
                }
                need(opts, len)?;
                // Target link-layer address, Ethernet-sized.
                if opts[0] == 2 && len == 8 {
                    mac = Some(mac_at(opts, 2));
                }
                opts = &opts[len..];
            }
            Ok(Icmp6::NeighborAdvert {
                target: Ipv6Addr::from(t),
                mac,
            })
        }
        _ => match parse_icmpv6_error(buf)? {
            Some(err) => Ok(Icmp6::Error(err)),
            None => Ok(Icmp6::Other { kind, code }),
        },
    }
}
