//! Raw sockets for the SYN scan: what it sends and receives packets with,
//! the source address and port it puts in them, and whether it may at all.
//!
//! Per address family, one `SOCK_RAW`/`IPPROTO_TCP` socket receives every
//! TCP segment addressed to this machine (a copy: the kernel's own TCP sees
//! them too, and resets a SYN-ACK it has no socket for, as nmap relies on)
//! and one `IPPROTO_ICMP`/`IPPROTO_ICMPV6` socket the ICMP errors. IPv4
//! probes go out through an `IPPROTO_RAW` socket (we write the IP header);
//! IPv6 ones through the TCP raw socket (the kernel writes the IPv6 header,
//! we the TCP header and its checksum). socket2 makes all of these safely;
//! nothing here needs `unsafe`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// Receive buffer asked for on each receiving socket: a full-speed scan
/// gets one reply per probe, and a reply dropped here costs a retry.
const RECV_BUFFER: usize = 32 << 20;

/// `IPPROTO_RAW`: a socket that sends whole IPv4 packets (header included).
const IPPROTO_RAW: i32 = 255;
/// `IPPROTO_TCP`, `IPPROTO_ICMP` and `IPPROTO_ICMPV6`.
const IPPROTO_TCP: i32 = 6;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_ICMPV6: i32 = 58;

/// True when this process may open raw sockets (root or `CAP_NET_RAW`).
pub fn privileged() -> bool {
    Socket::new(
        Domain::IPV4,
        Type::RAW.cloexec(),
        Some(Protocol::from(IPPROTO_RAW)),
    )
    .is_ok()
}

/// The raw sockets of one family.
#[derive(Debug)]
pub struct FamilySockets {
    /// Sends probes: IPv4 `IPPROTO_RAW`; for IPv6 the same socket as `tcp`.
    pub send: Option<Socket>,
    /// Receives TCP segments (IPv4: with their IP header; IPv6: without).
    pub tcp: Socket,
    /// Receives ICMP errors (IPv4: with the IP header; IPv6: without).
    pub icmp: Socket,
}

fn raw(domain: Domain, proto: i32) -> io::Result<Socket> {
    let s = Socket::new(
        domain,
        Type::RAW.nonblocking().cloexec(),
        Some(proto.into()),
    )?;
    Ok(s)
}

fn receiving(domain: Domain, proto: i32) -> io::Result<Socket> {
    let s = raw(domain, proto)?;
    // Root may go past net.core.rmem_max; anyone else gets what it allows.
    if nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &RECV_BUFFER)
        .is_err()
    {
        let _ = s.set_recv_buffer_size(RECV_BUFFER);
    }
    Ok(s)
}

/// A classic BPF program that keeps TCP segments to `port` and drops the
/// rest, so that a raw socket copies only the replies to our probes (and
/// several scanning threads, each with its own port, read only their own).
/// `ip_header`: the socket sees the IPv4 header first (an IPv4 raw socket
/// does; an IPv6 one starts at the TCP header).
fn port_filter(port: u16, ip_header: bool) -> Vec<SockFilter> {
    // Opcodes of linux/filter.h.
    const LDX_B_MSH: u16 = 0xb1; // X = 4 * (pkt[k] & 0xf)
    const LD_H_IND: u16 = 0x48; // A = be16(pkt[X + k])
    const LD_H_ABS: u16 = 0x28; // A = be16(pkt[k])
    const JEQ_K: u16 = 0x15; // if A == k goto +jt else +jf
    const RET_K: u16 = 0x06; // accept k bytes (0: drop)
    let mut prog = Vec::with_capacity(5);
    if ip_header {
        prog.push(SockFilter::new(LDX_B_MSH, 0, 0, 0));
        prog.push(SockFilter::new(LD_H_IND, 0, 0, 2));
    } else {
        prog.push(SockFilter::new(LD_H_ABS, 0, 0, 2));
    }
    prog.push(SockFilter::new(JEQ_K, 0, 1, u32::from(port)));
    prog.push(SockFilter::new(RET_K, 0, 0, 0xFFFF));
    prog.push(SockFilter::new(RET_K, 0, 0, 0));
    prog
}

impl FamilySockets {
    /// The IPv4 sockets of a scan whose probes come from `port`.
    pub fn v4(port: u16) -> io::Result<FamilySockets> {
        let send = raw(Domain::IPV4, IPPROTO_RAW)?;
        let _ = send.set_send_buffer_size(RECV_BUFFER);
        let tcp = receiving(Domain::IPV4, IPPROTO_TCP)?;
        tcp.attach_filter(&port_filter(port, true))?;
        Ok(FamilySockets {
            send: Some(send),
            tcp,
            icmp: receiving(Domain::IPV4, IPPROTO_ICMP)?,
        })
    }

    /// The IPv6 sockets (fails on a machine without IPv6).
    pub fn v6(port: u16) -> io::Result<FamilySockets> {
        let tcp = receiving(Domain::IPV6, IPPROTO_TCP)?;
        tcp.attach_filter(&port_filter(port, false))?;
        let _ = tcp.set_send_buffer_size(RECV_BUFFER);
        Ok(FamilySockets {
            send: None,
            tcp,
            icmp: receiving(Domain::IPV6, IPPROTO_ICMPV6)?,
        })
    }

    /// The socket probes go out on.
    pub fn sender(&self) -> &Socket {
        self.send.as_ref().unwrap_or(&self.tcp)
    }
}

/// A raw UDP socket (IPv4: it reads the IP header too; IPv6: from the UDP
/// header) that sends UDP datagrams written whole, and reads only those
/// addressed to `port`: what a UDP ping sends and reads.
pub fn udp_socket(v6: bool, port: u16) -> io::Result<Socket> {
    const IPPROTO_UDP: i32 = 17;
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = receiving(domain, IPPROTO_UDP)?;
    s.attach_filter(&port_filter(port, !v6))?;
    Ok(s)
}

/// A source port held for the length of a scan: a TCP socket bound to it
/// (and never listening) keeps the kernel from giving the port to a
/// connection of its own, whose segments our replies would be mixed with,
/// and makes the kernel answer a SYN-ACK to it with a reset.
#[derive(Debug)]
pub struct HeldPort {
    pub port: u16,
    _v4: Socket,
    _v6: Option<Socket>,
}

/// Picks a free high port (the kernel's choice of an ephemeral one) and
/// holds it on every IPv4 and, where the machine has IPv6, IPv6 address.
pub fn hold_port() -> io::Result<HeldPort> {
    let mut last = None;
    for _ in 0..16 {
        let v4 = Socket::new(Domain::IPV4, Type::STREAM.cloexec(), None)?;
        v4.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
        let port = v4
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("bound socket has no port"))?;
        let v6 = match Socket::new(Domain::IPV6, Type::STREAM.cloexec(), None) {
            Err(_) => None, // no IPv6 on this machine
            Ok(s) => {
                s.set_only_v6(true)?;
                match s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into()) {
                    Ok(()) => Some(s),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        last = Some(e);
                        continue;
                    }
                    Err(_) => None,
                }
            }
        };
        return Ok(HeldPort {
            port,
            _v4: v4,
            _v6: v6,
        });
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free source port")))
}

/// The source address the kernel would use towards each destination,
/// remembered (a connected UDP socket tells; nothing is sent).
#[derive(Debug, Default)]
pub struct SourceAddrs {
    cache: HashMap<IpAddr, Result<IpAddr, i32>>,
}

/// Destinations remembered at most; past this the cache starts over (a
/// scan of a huge range visits each host once, in groups).
const SOURCE_CACHE: usize = 1 << 16;

impl SourceAddrs {
    /// The source address for `dst`, or the errno that says there is no
    /// route (`ENETUNREACH`, `EADDRNOTAVAIL` for an IPv6 destination on a
    /// machine without IPv6...).
    pub fn get(&mut self, dst: IpAddr) -> Result<IpAddr, i32> {
        if let Some(r) = self.cache.get(&dst) {
            return *r;
        }
        if self.cache.len() >= SOURCE_CACHE {
            self.cache.clear();
        }
        let r = lookup(dst).map_err(|e| e.raw_os_error().unwrap_or(0));
        self.cache.insert(dst, r);
        r
    }
}

fn lookup(dst: IpAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match dst {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)?;
    // Port 9 (discard): any port does; connect() sends nothing on UDP.
    s.connect(SocketAddr::new(dst, 9))?;
    Ok(s.local_addr()?.ip())
}

/// A raw socket that copies the IPv4 TCP segments this host receives for
/// local port `port` (root or `CAP_NET_RAW`): how a connection's caller
/// reads the TTL its SYN-ACK or reset arrived with, which a TCP socket never
/// shows. Nonblocking; read it with [`reply_ttl`] once the connect is over.
pub fn tcp_watch_v4(port: u16) -> io::Result<Socket> {
    let s = raw(Domain::IPV4, IPPROTO_TCP)?;
    s.attach_filter(&port_filter(port, true))?;
    Ok(s)
}

/// The TTL of the first SYN-ACK or reset from `from` to local port `port`
/// queued on `watch` (at most a few thousand segments are looked at).
pub fn reply_ttl(watch: &Socket, from: SocketAddr, port: u16) -> Option<u8> {
    use io::Read as _;
    use sockeye_proto::packet::{flags, parse_ipv4, parse_tcp};
    let SocketAddr::V4(from) = from else {
        return None;
    };
    let mut buf = [0u8; 2048];
    for _ in 0..4096 {
        let n = match (&*watch).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        let Ok((ip, payload)) = parse_ipv4(&buf[..n]) else {
            continue;
        };
        let Ok(tcp) = parse_tcp(payload) else {
            continue;
        };
        let answer = tcp.has(flags::RST) || tcp.has(flags::SYN | flags::ACK);
        if ip.src == *from.ip() && tcp.src_port == from.port() && tcp.dst_port == port && answer {
            return Some(ip.ttl);
        }
    }
    None
}
