//! IPv4, IPv6, TCP, UDP and ICMP (v4 and v6) headers, as far as a SYN scan
//! and host discovery need them: the SYN probe and the segments and
//! datagrams of TCP and UDP pings, and the SYN-ACK, RST and ICMP errors
//! (with the header they quote) read back.
//!
//! Parsers take a whole packet (raw sockets deliver whole datagrams) and
//! return a [`PacketError`] for anything short or malformed; they never
//! panic and never read past the lengths the headers claim. Checksums are
//! written, not verified on reading: a packet generated on this machine or
//! a virtual link often carries only its pseudo-header sum (checksum
//! offload), and a scan validates replies by its own sequence cookie instead.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IPv6 next-header number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// Length of an IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER: usize = 40;
/// Length of a TCP header without options.
pub const TCP_HEADER: usize = 20;
/// Length of the SYN probe's TCP header: 20 bytes and the 4-byte MSS option.
pub const SYN_LEN: usize = TCP_HEADER + 4;
/// Length of the ICMP header before the quoted packet (v4 and v6 alike).
pub const ICMP_HEADER: usize = 8;
/// The part of the quoted transport header an ICMPv4 error must carry (RFC 792):
/// ports and sequence number.
pub const QUOTED_TRANSPORT: usize = 8;

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Why bytes are not a packet of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than the header (or the length it claims) needs.
    Truncated { need: usize, have: usize },
    /// The IP version nibble is not the one expected.
    Version(u8),
    /// A header length field below its minimum (IPv4 IHL < 5, TCP offset < 5).
    HeaderLength(u8),
    /// The IPv4 total length is shorter than its own header.
    TotalLength(u16),
    /// Not the protocol asked for (carries the protocol number).
    Protocol(u8),
    /// A non-first IPv4 fragment: it has no transport header.
    Fragment,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated { need, have } => {
                write!(f, "truncated packet: {have} bytes, {need} needed")
            }
            PacketError::Version(v) => write!(f, "IP version {v} where another was expected"),
            PacketError::HeaderLength(n) => write!(f, "header length field {n} below the minimum"),
            PacketError::TotalLength(n) => write!(f, "IPv4 total length {n} below its header"),
            PacketError::Protocol(p) => write!(f, "protocol {p} where another was expected"),
            PacketError::Fragment => f.write_str("a non-first IPv4 fragment"),
        }
    }
}

impl std::error::Error for PacketError {}

pub(crate) fn need(buf: &[u8], n: usize) -> Result<(), PacketError> {
    if buf.len() < n {
        Err(PacketError::Truncated {
            need: n,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

// ---------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------

/// The one's-complement sum (RFC 1071) of `data` added to `sum`, unfolded:
/// feed several pieces, then [`fold`] once.
pub fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early now and then so long inputs cannot overflow.
        if sum > 0xFFFF_0000 {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a sum from [`sum_words`] into the 16-bit checksum field's value.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data` alone (the IPv4 header's).
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum_words(0, data))
}

/// The unfolded sum of the pseudo-header TCP, UDP and ICMPv6 checksums
/// cover: addresses, protocol and upper-layer length (RFC 793 for IPv4,
/// RFC 8200 section 8.1 for IPv6). Both addresses must be of one family.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let sum = sum_words(sum_words(0, &s.octets()), &d.octets());
            sum + u32::from(proto) + (len as u32 & 0xFFFF)
        }
        _ => {
            let s = to_v6(src);
            let d = to_v6(dst);
            let sum = sum_words(sum_words(0, &s.octets()), &d.octets());
            let len = len as u32;
            sum + (len >> 16) + (len & 0xFFFF) + u32::from(proto)
        }
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

// ---------------------------------------------------------------------------
// IPv4
// ---------------------------------------------------------------------------

/// The fields of an IPv4 header a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub id: u16,
    /// Header length in bytes (with options).
    pub header_len: usize,
    /// The total length the header claims.
    pub total_len: u16,
    /// Fragment offset in 8-byte units (0 for a first or whole packet).
    pub frag_offset: u16,
}

/// Parses an IPv4 header; returns it and the payload (cut at the total
/// length, which may be shorter than `buf`: link padding). A payload shorter
/// than the total length claims is accepted as it is when `allow_short` (the
/// packet quoted in an ICMP error is cut short on purpose), refused otherwise.
fn ipv4(buf: &[u8], allow_short: bool) -> Result<(Ipv4Header, &[u8]), PacketError> {
    need(buf, 1)?;
    let version = buf[0] >> 4;
    if version != 4 {
        return Err(PacketError::Version(version));
    }
    let ihl = buf[0] & 0x0F;
    if ihl < 5 {
        return Err(PacketError::HeaderLength(ihl));
    }
    let header_len = usize::from(ihl) * 4;
    need(buf, header_len)?;
    let total_len = be16(buf, 2);
    if usize::from(total_len) < header_len {
        return Err(PacketError::TotalLength(total_len));
    }
    let end = if allow_short {
        buf.len().min(usize::from(total_len))
    } else {
        need(buf, usize::from(total_len))?;
        usize::from(total_len)
    };
    let header = Ipv4Header {
        src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
        dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
        protocol: buf[9],
        ttl: buf[8],
        id: be16(buf, 4),
        header_len,
        total_len,
        frag_offset: be16(buf, 6) & 0x1FFF,
    };
    Ok((header, &buf[header_len..end]))
}

/// Parses a whole IPv4 packet: its header and payload.
pub fn parse_ipv4(buf: &[u8]) -> Result<(Ipv4Header, &[u8]), PacketError> {
    ipv4(buf, false)
}

/// Writes a 20-byte IPv4 header (no options, don't-fragment clear) with
/// its checksum into `out[..20]`. `payload_len` is what follows it.
///
/// # Panics
/// If `out` is shorter than [`IPV4_HEADER`] (a caller's buffer bug).
pub fn write_ipv4(
    out: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    id: u16,
    payload_len: usize,
) {
    let h = &mut out[..IPV4_HEADER];
    let total = (IPV4_HEADER + payload_len) as u16;
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    h[8] = ttl;
    h[9] = protocol;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
}

// ---------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------

/// The fields of a fixed IPv6 header a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub payload_len: u16,
}

fn ipv6(buf: &[u8], allow_short: bool) -> Result<(Ipv6Header, &[u8]), PacketError> {
    need(buf, 1)?;
    let version = buf[0] >> 4;
    if version != 6 {
        return Err(PacketError::Version(version));
    }
    need(buf, IPV6_HEADER)?;
    let payload_len = be16(buf, 4);
    let end = IPV6_HEADER + usize::from(payload_len);
    let end = if allow_short {
        buf.len().min(end)
    } else {
        need(buf, end)?;
        end
    };
    let mut src = [0u8; 16];
    src.copy_from_slice(&buf[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&buf[24..40]);
    let header = Ipv6Header {
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        next_header: buf[6],
        hop_limit: buf[7],
        payload_len,
    };
    Ok((header, &buf[IPV6_HEADER..end]))
}

/// Parses a whole IPv6 packet's fixed header and payload. Extension
/// headers are not walked: `next_header` says what follows.
pub fn parse_ipv6(buf: &[u8]) -> Result<(Ipv6Header, &[u8]), PacketError> {
    ipv6(buf, false)
}

/// Writes a fixed IPv6 header into `out[..40]`.
///
/// # Panics
/// If `out` is shorter than [`IPV6_HEADER`].
pub fn write_ipv6(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: usize,
) {
    let h = &mut out[..IPV6_HEADER];
    h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[6] = next_header;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// The fields of a TCP header a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// The flag bits (see [`flags`]); the ECN bits are left out.
    pub flags: u8,
    pub window: u16,
    /// Header length in bytes (with options).
    pub header_len: usize,
    /// The MSS option, when present and well formed.
    pub mss: Option<u16>,
}

impl TcpHeader {
    /// True when every flag bit of `mask` is set.
    pub fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }
}

/// Parses a TCP header and its options (only MSS is kept; the walk stops at
/// the end-of-options kind or at an option that would run past the header).
pub fn parse_tcp(buf: &[u8]) -> Result<TcpHeader, PacketError> {
    need(buf, TCP_HEADER)?;
    let offset = buf[12] >> 4;
    if offset < 5 {
        return Err(PacketError::HeaderLength(offset));
    }
    let header_len = usize::from(offset) * 4;
    need(buf, header_len)?;
    let mut mss = None;
    let mut opts = &buf[TCP_HEADER..header_len];
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => break,
            1 => opts = rest,
            _ => {
                let Some(&len) = rest.first() else { break };
                let len = usize::from(len);
                if len < 2 || len > opts.len() {
                    break;
                }
                if kind == 2 && len == 4 {
                    mss = Some(be16(opts, 2));
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(TcpHeader {
        src_port: be16(buf, 0),
        dst_port: be16(buf, 2),
        seq: be32(buf, 4),
        ack: be32(buf, 8),
        flags: buf[13] & 0x3F,
        window: be16(buf, 14),
        header_len,
        mss,
    })
}

/// What a SYN probe carries besides its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynProbe {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub window: u16,
    pub mss: u16,
}

/// Writes a SYN with the MSS option into `out[..SYN_LEN]`, its checksum
/// computed over the pseudo-header of `src` and `dst` (one family).
///
/// # Panics
/// If `out` is shorter than [`SYN_LEN`].
pub fn write_syn(out: &mut [u8], src: IpAddr, dst: IpAddr, probe: &SynProbe) {
    let t = &mut out[..SYN_LEN];
    let seg = Segment {
        src_port: probe.src_port,
        dst_port: probe.dst_port,
        seq: probe.seq,
        ack: 0,
        flags: flags::SYN,
        window: probe.window,
    };
    tcp_header(t, &seg);
    t[20] = 2;
    t[21] = 4;
    t[22..24].copy_from_slice(&probe.mss.to_be_bytes());
    tcp_checksum(t, src, dst);
}

/// Writes `seg` into `t` (whose length is the header's, options
/// included), checksum zero.
fn tcp_header(t: &mut [u8], seg: &Segment) {
    t[0..2].copy_from_slice(&seg.src_port.to_be_bytes());
    t[2..4].copy_from_slice(&seg.dst_port.to_be_bytes());
    t[4..8].copy_from_slice(&seg.seq.to_be_bytes());
    t[8..12].copy_from_slice(&seg.ack.to_be_bytes());
    t[12] = ((t.len() / 4) as u8) << 4;
    t[13] = seg.flags;
    t[14..16].copy_from_slice(&seg.window.to_be_bytes());
    t[16..20].copy_from_slice(&[0; 4]);
}

/// Fills in the checksum of the TCP header (and data) `t`.
fn tcp_checksum(t: &mut [u8], src: IpAddr, dst: IpAddr) {
    let sum = fold(sum_words(
        pseudo_header_sum(src, dst, PROTO_TCP, t.len()),
        t,
    ));
    t[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// A bare TCP segment (no options, no data): what an ACK ping sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    pub window: u16,
}

/// Writes `seg` as a 20-byte TCP header into `out[..TCP_HEADER]`, its
/// checksum over the pseudo-header of `src` and `dst` (one family).
///
/// # Panics
/// If `out` is shorter than [`TCP_HEADER`].
pub fn write_tcp(out: &mut [u8], src: IpAddr, dst: IpAddr, seg: &Segment) {
    let t = &mut out[..TCP_HEADER];
    tcp_header(t, seg);
    tcp_checksum(t, src, dst);
}

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Length of a UDP header.
pub const UDP_HEADER: usize = 8;

/// The ports and length of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    /// The length field: header and data.
    pub len: u16,
}

/// Writes a UDP datagram (header, then `payload`) into `out`, its checksum
/// over the pseudo-header of `src` and `dst`; returns its length.
///
/// # Panics
/// If `out` is shorter than [`UDP_HEADER`] + `payload.len()`, or the
/// datagram would be longer than 65,535 bytes.
pub fn write_udp(
    out: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> usize {
    let len = UDP_HEADER + payload.len();
    let len16 = u16::try_from(len).expect("a UDP datagram fits in 65,535 bytes");
    let u = &mut out[..len];
    u[0..2].copy_from_slice(&src_port.to_be_bytes());
    u[2..4].copy_from_slice(&dst_port.to_be_bytes());
    u[4..6].copy_from_slice(&len16.to_be_bytes());
    u[6..8].copy_from_slice(&[0, 0]);
    u[8..].copy_from_slice(payload);
    let mut sum = fold(sum_words(pseudo_header_sum(src, dst, PROTO_UDP, len), u));
    // A computed zero is sent as all ones (zero means "no checksum").
    if sum == 0 {
        sum = 0xFFFF;
    }
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    len
}

/// Parses a UDP header; its length field must lie between the header and
/// the bytes given.
pub fn parse_udp(buf: &[u8]) -> Result<UdpHeader, PacketError> {
    need(buf, UDP_HEADER)?;
    let len = be16(buf, 4);
    if usize::from(len) < UDP_HEADER {
        return Err(PacketError::TotalLength(len));
    }
    need(buf, usize::from(len))?;
    Ok(UdpHeader {
        src_port: be16(buf, 0),
        dst_port: be16(buf, 2),
        len,
    })
}

// ---------------------------------------------------------------------------
// ICMP errors
// ---------------------------------------------------------------------------

/// The start of the TCP (or UDP) header an ICMP error quotes: ports and,
/// for TCP, the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// The quoted packet's source and destination: the prober and the probed.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
}

/// An ICMP (v4 or v6) error message and the packet it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub kind: u8,
    pub code: u8,
    pub quoted: Quoted,
}

/// ICMPv4 types that quote the offending packet: destination unreachable,
/// source quench, redirect, time exceeded, parameter problem.
fn icmp4_is_error(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 error types (RFC 4443: every type below 128).
fn icmp6_is_error(kind: u8) -> bool {
    kind < 128
}

fn quoted_ports(transport: &[u8]) -> Result<(u16, u16, u32), PacketError> {
    need(transport, QUOTED_TRANSPORT)?;
    Ok((be16(transport, 0), be16(transport, 2), be32(transport, 4)))
}

/// Parses an ICMPv4 message (without its IP header) that is an error
/// quoting a packet. Any other ICMP message (an echo reply, say) is
/// `Ok(None)`.
pub fn parse_icmpv4_error(buf: &[u8]) -> Result<Option<IcmpError>, PacketError> {
    need(buf, ICMP_HEADER)?;
    let (kind, code) = (buf[0], buf[1]);
    if !icmp4_is_error(kind) {
        return Ok(None);
    }
    let (ip, transport) = ipv4(&buf[ICMP_HEADER..], true)?;
    if ip.frag_offset != 0 {
        return Err(PacketError::Fragment);
    }
    let (src_port, dst_port, seq) = quoted_ports(transport)?;
    Ok(Some(IcmpError {
        kind,
        code,
        quoted: Quoted {
            src: IpAddr::V4(ip.src),
            dst: IpAddr::V4(ip.dst),
            protocol: ip.protocol,
            src_port,
            dst_port,
            seq,
        },
    }))
}

/// Parses an ICMPv6 message (what an `IPPROTO_ICMPV6` raw socket reads:
/// no IPv6 header) that is an error quoting a packet. Informational
/// messages are `Ok(None)`. A quoted packet with extension headers before
/// its transport header is reported as [`PacketError::Protocol`] of the
/// first one: a SYN probe carries none.
pub fn parse_icmpv6_error(buf: &[u8]) -> Result<Option<IcmpError>, PacketError> {
    need(buf, ICMP_HEADER)?;
    let (kind, code) = (buf[0], buf[1]);
    if !icmp6_is_error(kind) {
        return Ok(None);
    }
    let (ip, transport) = ipv6(&buf[ICMP_HEADER..], true)?;
    if !matches!(ip.next_header, PROTO_TCP | 17) {
        return Err(PacketError::Protocol(ip.next_header));
    }
    let (src_port, dst_port, seq) = quoted_ports(transport)?;
    Ok(Some(IcmpError {
        kind,
        code,
        quoted: Quoted {
            src: IpAddr::V6(ip.src),
            dst: IpAddr::V6(ip.dst),
            protocol: ip.next_header,
            src_port,
            dst_port,
            seq,
        },
    }))
}

/// What an `AF_INET`/`IPPROTO_TCP` or `IPPROTO_ICMP` raw socket delivers:
/// a whole IPv4 packet, read as the TCP segment or ICMP error it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Reply {
    Tcp {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        tcp: TcpHeader,
    },
    Icmp {
        /// Who sent the error: the target, or a router on the way.
        from: Ipv4Addr,
        error: IcmpError,
    },
    /// Another protocol, an ICMP message that is not an error, or a
    /// non-first fragment: nothing a scan looks at.
    Other,
}

/// Parses a whole IPv4 packet read from a raw socket.
pub fn parse_ipv4_reply(buf: &[u8]) -> Result<Ipv4Reply, PacketError> {
    let (ip, payload) = parse_ipv4(buf)?;
    if ip.frag_offset != 0 {
        return Ok(Ipv4Reply::Other);
    }
    match ip.protocol {
        PROTO_TCP => Ok(Ipv4Reply::Tcp {
            src: ip.src,
            dst: ip.dst,
            tcp: parse_tcp(payload)?,
        }),
        PROTO_ICMP => Ok(match parse_icmpv4_error(payload)? {
            Some(error) => Ipv4Reply::Icmp {
                from: ip.src,
                error,
            },
            None => Ipv4Reply::Other,
        }),
        _ => Ok(Ipv4Reply::Other),
    }
}
