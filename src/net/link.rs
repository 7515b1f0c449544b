//! The local link, for host discovery: whether a target sits on a directly
//! connected network (and on which interface), the interface's index and
//! MAC address, and the link-layer socket ARP requests go out on.
//!
//! The routing table is read from `/proc/net/route` and
//! `/proc/net/ipv6_route` (the main table: what `ip route` shows): the
//! longest prefix that matches a target decides, and a route without a
//! gateway means the target is on that interface's link. Interfaces come
//! from `getifaddrs` (nix), whose `AF_PACKET` entries carry the index, the
//! hardware type and the MAC address.
//!
//! The ARP socket is an `AF_PACKET`/`SOCK_RAW` socket (socket2) bound with
//! the interface's own link address from `getifaddrs` (nix's `bind`): a
//! bound packet socket sends whole Ethernet frames with a plain `send` and
//! reads only that interface's ARP frames. No `unsafe` is needed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{LinkAddr, SockaddrLike};
use socket2::{Domain, Protocol, Socket, Type};

/// A MAC address.
pub type Mac = [u8; 6];

/// `ETH_P_ARP`: the EtherType a packet socket is opened for.
const ETH_P_ARP: u16 = 0x0806;
/// `ARPHRD_ETHER`: the hardware type of Ethernet (and veth) interfaces.
const ARPHRD_ETHER: u16 = 1;
/// Route flags of `/proc/net/route` and `ipv6_route`.
const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;
/// Routes read at most from each table: a router with a full table has far
/// more, and discovery only needs the connected networks, which come first
/// in the kernel's dump of any table smaller than this.
const MAX_ROUTES: usize = 100_000;

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route4 {
    pub iface: String,
    pub dest: Ipv4Addr,
    pub mask: Ipv4Addr,
    /// `None` for a directly connected network.
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// One IPv6 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    pub iface: String,
    pub dest: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv6Addr>,
    pub metric: u32,
}

/// An address of `/proc/net/route`: the in-memory (network order) bytes
/// printed as a host-order number.
fn proc_v4(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16)
        .ok()
        .map(|n| Ipv4Addr::from(n.to_ne_bytes()))
}

/// Parses `/proc/net/route`: rows that are up and not rejecting; the
/// header and malformed rows are skipped.
pub fn parse_route4(text: &str) -> Vec<Route4> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).take(MAX_ROUTES) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Some(dest), Some(gw), Ok(flags), Ok(metric), Some(mask)) = (
            proc_v4(f[1]),
            proc_v4(f[2]),
            u32::from_str_radix(f[3], 16),
            f[6].parse::<u32>(),
            proc_v4(f[7]),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
            continue;
        }
        out.push(Route4 {
            iface: f[0].to_owned(),
            dest,
            mask,
            gateway: (flags & RTF_GATEWAY != 0 && !gw.is_unspecified()).then_some(gw),
            metric,
        });
    }
    out
}

/// Parses `/proc/net/ipv6_route` (destination, prefix length, source,
/// source prefix, next hop, metric, refcount, use, flags, interface).
pub fn parse_route6(text: &str) -> Vec<Route6> {
    let mut out = Vec::new();
    for line in text.lines().take(MAX_ROUTES) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(dest), Ok(prefix), Ok(hop), Ok(metric), Ok(flags)) = (
            u128::from_str_radix(f[0], 16),
            u8::from_str_radix(f[1], 16),
            u128::from_str_radix(f[4], 16),
            u32::from_str_radix(f[5], 16),
            u32::from_str_radix(f[8], 16),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 || prefix > 128 {
            continue;
        }
        out.push(Route6 {
            iface: f[9].to_owned(),
            dest: Ipv6Addr::from(dest),
            prefix,
            gateway: (hop != 0).then_some(Ipv6Addr::from(hop)),
            metric,
        });
    }
    out
}

/// The main routing tables, as far as discovery asks them.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub v4: Vec<Route4>,
    pub v6: Vec<Route6>,
}

impl Routes {
    /// Reads both tables; a table that cannot be read (no IPv6) is empty.
    pub fn read() -> Routes {
        Routes {
            v4: std::fs::read_to_string("/proc/net/route")
                .map(|t| parse_route4(&t))
                .unwrap_or_default(),
            v6: std::fs::read_to_string("/proc/net/ipv6_route")
                .map(|t| parse_route6(&t))
                .unwrap_or_default(),
        }
    }

    /// The interface `addr` is directly reachable on, when the best route
    /// to it (longest prefix, then lowest metric) has no gateway.
    pub fn on_link(&self, addr: IpAddr) -> Option<&str> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .filter(|r| a & u32::from(r.mask) == u32::from(r.dest) & u32::from(r.mask))
                    .max_by(|x, y| {
                        u32::from(x.mask)
                            .count_ones()
                            .cmp(&u32::from(y.mask).count_ones())
                            .then(y.metric.cmp(&x.metric))
                    })
                    .filter(|r| r.gateway.is_none())
                    .map(|r| r.iface.as_str())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let mask = |p: u8| {
                    if p == 0 {
                        0
                    } else {
                        u128::MAX << (128 - u32::from(p))
                    }
                };
                self.v6
                    .iter()
                    .filter(|r| a & mask(r.prefix) == u128::from(r.dest) & mask(r.prefix))
                    .max_by(|x, y| x.prefix.cmp(&y.prefix).then(y.metric.cmp(&x.metric)))
                    .filter(|r| r.gateway.is_none())
                    .map(|r| r.iface.as_str())
            }
        }
    }
}

/// An Ethernet interface that is up and does ARP.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub index: usize,
    pub mac: Mac,
    /// Its link address from `getifaddrs`, to bind a packet socket with.
    link: LinkAddr,
}

/// The Ethernet interfaces of this namespace that are up, by name
/// (loopback, tunnels and interfaces marked NOARP are left out).
pub fn ethernet_interfaces() -> io::Result<HashMap<String, Interface>> {
    let mut out = HashMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP)
            || ifa
                .flags
                .intersects(InterfaceFlags::IFF_LOOPBACK | InterfaceFlags::IFF_NOARP)
        {
            continue;
        }
        let Some(link) = ifa.address.as_ref().and_then(|a| a.as_link_addr()) else {
            continue;
        };
        if link.hatype() != ARPHRD_ETHER || link.halen() != 6 {
            continue;
        }
        let Some(mac) = link.addr() else { continue };
        out.insert(
            ifa.interface_name.clone(),
            Interface {
                name: ifa.interface_name,
                index: link.ifindex(),
                mac,
                link: *link,
            },
        );
    }
    Ok(out)
}

/// Every address of this namespace's interfaces (a target that is one
/// of them is this machine: nmap's `localhost-response`).
pub fn local_addresses() -> std::collections::HashSet<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Default::default();
    };
    addrs
        .filter_map(|ifa| ifa.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

/// A non-blocking packet socket bound to `iface` that sends Ethernet
/// frames (header included) and reads the interface's ARP frames. Needs
/// root or CAP_NET_RAW.
pub fn arp_socket(iface: &Interface) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::PACKET,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )?;
    // The link address names the interface; its protocol field (zero)
    // keeps the socket's own (ARP).
    debug_assert_eq!(
        iface.link.family(),
        Some(nix::sys::socket::AddressFamily::Packet)
    );
    nix::sys::socket::bind(s.as_raw_fd(), &iface.link).map_err(io::Error::from)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured in a namespace: a default route via 198.18.1.1 on veth0, the
    // connected 198.18.1.0/24 on veth0 and 198.18.2.0/24 on veth1.
    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
veth0\t00000000\t010112C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
veth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
veth1\t000212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
veth1\t000312C6\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
bad line
";

    #[test]
    fn ipv4_routes_decide_what_is_on_link() {
        let routes = Routes {
            v4: parse_route4(ROUTE),
            v6: Vec::new(),
        };
        assert_eq!(routes.v4.len(), 3, "{:?}", routes.v4);
        assert_eq!(routes.v4[0].gateway, Some(Ipv4Addr::new(198, 18, 1, 1)));
        assert_eq!(routes.v4[1].dest, Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(routes.v4[1].mask, Ipv4Addr::new(255, 255, 255, 0));
        let on = |a: &str| routes.on_link(a.parse().unwrap());
        assert_eq!(on("198.18.1.7"), Some("veth0"));
        assert_eq!(on("198.18.2.200"), Some("veth1"));
        // Through the default route's gateway; the rejecting route is not one.
        assert_eq!(on("198.18.3.1"), None);
        assert_eq!(on("198.19.0.1"), None);
        assert_eq!(on("fd00::1"), None);
    }

    #[test]
    fn ipv6_routes_decide_what_is_on_link() {
        let text = "\
fd0005ec000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     veth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd0005ec000000000000000000000001 00000400 00000001 00000000 00000003     veth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     veth0
";
        let routes = Routes {
            v4: Vec::new(),
            v6: parse_route6(text),
        };
        assert_eq!(routes.v6.len(), 3);
        assert_eq!(
            routes.on_link("fd00:5ec::2".parse().unwrap()),
            Some("veth0")
        );
        assert_eq!(routes.on_link("fd00:5ed::2".parse().unwrap()), None);
        assert_eq!(routes.on_link("198.18.0.1".parse().unwrap()), None);
    }
}
