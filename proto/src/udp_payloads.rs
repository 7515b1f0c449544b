//! What a UDP scan sends to a port so that a service listening there answers.
//!
//! A UDP service says nothing to a datagram it does not understand, and an
//! empty datagram is one most services ignore: without a request in the
//! service's own protocol an open port looks exactly like a filtered one.
//! These are those requests, as fixed bytes, one or more per well-known port
//! (where a server may ignore one form, the next form is sent too: SNMP v1
//! and v2c, DNS for the server's version and for the root's name servers).
//! Every other port gets an empty datagram.
//!
//! Every request here is harmless and small: a question about the server
//! itself, a read of a file name nobody has, never a write, never a request
//! whose answer is much larger than itself (memcached gets `version`, not
//! `stats`). A scanner needs no reply parser for these: any datagram from the
//! probed address and port means the port is open.

/// The requests to send to UDP `port`, in order; empty: send one empty
/// datagram.
pub fn for_port(port: u16) -> &'static [&'static [u8]] {
    match port {
        7 => &[ECHO],
        53 => &[DNS_VERSION_BIND, DNS_ROOT_NS],
        69 => &[TFTP_RRQ],
        88 => &[KERBEROS_AS_REQ],
        123 => &[NTP_CLIENT],
        137 => &[NETBIOS_NBSTAT],
        161 => &[SNMP_V1_SYSDESCR, SNMP_V2C_SYSDESCR],
        1900 => &[SSDP_MSEARCH],
        5353 => &[MDNS_SERVICES],
        11211 => &[MEMCACHED_VERSION],
        _ => &[],
    }
}

/// Echo (RFC 862): any bytes come back as they are.
pub const ECHO: &[u8] = b"sockeye\r\n";

/// DNS: `version.bind` TXT in class CHAOS, which BIND, dnsmasq, Unbound and
/// most other servers answer (or refuse, which is an answer too).
pub const DNS_VERSION_BIND: &[u8] = &[
    0x53, 0x4b, // id
    0x01, 0x00, // flags: standard query, recursion desired
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question
    7, b'v', b'e', b'r', b's', b'i', b'o', b'n', 4, b'b', b'i', b'n', b'd', 0, //
    0x00, 0x10, // TXT
    0x00, 0x03, // CHAOS
];

/// DNS: the root zone's NS records, class IN, for servers that ignore CHAOS.
pub const DNS_ROOT_NS: &[u8] = &[
    0x53, 0x4c, // id
    0x00, 0x00, // flags: standard query, no recursion
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question
    0,    // the root
    0x00, 0x02, // NS
    0x00, 0x01, // IN
];

/// TFTP (RFC 1350): a read request for a file no server has; a server
/// answers with an error packet ("file not found").
pub const TFTP_RRQ: &[u8] = b"\x00\x01sockeye-probe.txt\x00octet\x00";

/// Kerberos 5 (RFC 4120): an AS-REQ for `krbtgt/SOCKEYE@SOCKEYE` by
/// `sockeye`, without pre-authentication. A KDC answers with a KRB-ERROR
/// (unknown realm or client), which is all a scan needs.
pub const KERBEROS_AS_REQ: &[u8] = &[
    0x6a, 0x81, 0x80, // [APPLICATION 10] AS-REQ
    0x30, 0x7e, // KDC-REQ
    0xa1, 0x03, 0x02, 0x01, 0x05, // pvno 5
    0xa2, 0x03, 0x02, 0x01, 0x0a, // msg-type 10 (AS-REQ)
    0xa4, 0x72, 0x30, 0x70, // req-body
    0xa0, 0x07, 0x03, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, // kdc-options: none
    0xa1, 0x14, 0x30, 0x12, // cname
    0xa0, 0x03, 0x02, 0x01, 0x01, // NT-PRINCIPAL
    0xa1, 0x0b, 0x30, 0x09, 0x1b, 0x07, b's', b'o', b'c', b'k', b'e', b'y', b'e', //
    0xa2, 0x09, 0x1b, 0x07, b'S', b'O', b'C', b'K', b'E', b'Y', b'E', // realm
    0xa3, 0x1c, 0x30, 0x1a, // sname
    0xa0, 0x03, 0x02, 0x01, 0x02, // NT-SRV-INST
    0xa1, 0x13, 0x30, 0x11, 0x1b, 0x06, b'k', b'r', b'b', b't', b'g', b't', //
    0x1b, 0x07, b'S', b'O', b'C', b'K', b'E', b'Y', b'E', //
    0xa5, 0x11, 0x18, 0x0f, b'1', b'9', b'7', b'0', b'0', b'1', b'0', b'1', b'0', b'0', b'0', b'0',
    b'0', b'0', b'Z', // till
    0xa7, 0x06, 0x02, 0x04, 0x53, 0x4b, 0x59, 0x45, // nonce
    0xa8, 0x0b, 0x30, 0x09, 0x02, 0x01, 0x12, 0x02, 0x01, 0x11, 0x02, 0x01,
    0x17, // etypes: aes256, aes128, rc4
];

/// NTP (RFC 5905): a version 4 client-mode request, 48 bytes, all zero but
/// the first (leap indicator 3 "unsynchronised", version 4, mode 3).
pub const NTP_CLIENT: &[u8] = &[
    0xe3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// NetBIOS name service (RFC 1002): a node status (NBSTAT) query for the
/// wildcard name `*`, which every NetBIOS node answers with its name table.
pub const NETBIOS_NBSTAT: &[u8] = &[
    0x53, 0x4b, // transaction id
    0x00, 0x00, // flags: query
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question
    0x20, // 32 bytes of first-level encoded name: "*" and 15 NULs
    b'C', b'K', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A',
    b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A', b'A',
    0x00, //
    0x00, 0x21, // NBSTAT
    0x00, 0x01, // IN
];

/// SNMP v1 GetRequest of sysDescr.0 (1.3.6.1.2.1.1.1.0), community `public`.
pub const SNMP_V1_SYSDESCR: &[u8] = &[
    0x30, 0x29, // Message
    0x02, 0x01, 0x00, // version: 0 (v1)
    0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
    0xa0, 0x1c, // GetRequest-PDU
    0x02, 0x04, 0x53, 0x4b, 0x59, 0x45, // request-id
    0x02, 0x01, 0x00, // error-status
    0x02, 0x01, 0x00, // error-index
    0x30, 0x0e, 0x30, 0x0c, // varbinds, one varbind
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, // sysDescr.0
    0x05, 0x00, // NULL
];

/// The same GetRequest as SNMP v2c, for agents configured for v2c only.
pub const SNMP_V2C_SYSDESCR: &[u8] = &[
    0x30, 0x29, 0x02, 0x01, 0x01, // version: 1 (v2c)
    0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x1c, 0x02, 0x04, 0x53, 0x4b, 0x59, 0x45,
    0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
];

/// SSDP (UPnP): a unicast M-SEARCH for every device and service.
pub const SSDP_MSEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
HOST: 239.255.255.250:1900\r\n\
MAN: \"ssdp:discover\"\r\n\
MX: 1\r\n\
ST: ssdp:all\r\n\r\n";

/// mDNS (RFC 6762): a one-shot query for `_services._dns-sd._udp.local`
/// PTR. Sent from a port other than 5353, it is a legacy unicast query and
/// the responder answers to the sender directly.
pub const MDNS_SERVICES: &[u8] = &[
    0x53, 0x4b, // id (a legacy unicast query carries one)
    0x00, 0x00, // flags: query
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question
    9, b'_', b's', b'e', b'r', b'v', b'i', b'c', b'e', b's', //
    7, b'_', b'd', b'n', b's', b'-', b's', b'd', //
    4, b'_', b'u', b'd', b'p', //
    5, b'l', b'o', b'c', b'a', b'l', 0, //
    0x00, 0x0c, // PTR
    0x00, 0x01, // IN
];

/// memcached over UDP: the 8-byte frame header (request id 1, sequence 0,
/// one datagram, reserved) and a `version` command, whose answer is short.
pub const MEMCACHED_VERSION: &[u8] = b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks DER/BER TLVs (short and long definite lengths) and checks that
    /// every constructed value's content is exactly its children.
    fn der_exact(bytes: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < bytes.len() {
            let tag = bytes[at];
            let first = *bytes.get(at + 1).ok_or("no length")?;
            let (len, head) = if first < 0x80 {
                (usize::from(first), 2)
            } else {
                let n = usize::from(first & 0x7f);
                let mut len = 0usize;
                for k in 0..n {
                    len = len << 8 | usize::from(*bytes.get(at + 2 + k).ok_or("short length")?);
                }
                (len, 2 + n)
            };
            let content = bytes
                .get(at + head..at + head + len)
                .ok_or_else(|| format!("tag {tag:#04x} at {at}: length {len} runs past the end"))?;
            if tag & 0x20 != 0 {
                der_exact(content)?;
            }
            at += head + len;
        }
        Ok(())
    }

    #[test]
    fn well_known_ports_have_requests_and_others_none() {
        let table: [(u16, usize); 12] = [
            (7, 1),
            (53, 2),
            (69, 1),
            (88, 1),
            (123, 1),
            (137, 1),
            (161, 2),
            (514, 0),
            (1900, 1),
            (5353, 1),
            (11211, 1),
            (40000, 0),
        ];
        for (port, n) in table {
            assert_eq!(for_port(port).len(), n, "port {port}");
            for p in for_port(port) {
                assert!(!p.is_empty() && p.len() <= 512, "port {port}");
            }
        }
    }

    #[test]
    fn snmp_requests_are_exact_ber_and_differ_only_in_version() {
        for p in [SNMP_V1_SYSDESCR, SNMP_V2C_SYSDESCR] {
            der_exact(p).expect("ber");
            assert_eq!(p.len(), 43);
            assert_eq!(&p[5..13], b"\x04\x06public");
            assert_eq!(&p[31..41], b"\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00");
        }
        assert_eq!(SNMP_V1_SYSDESCR[4], 0);
        assert_eq!(SNMP_V2C_SYSDESCR[4], 1);
        assert_eq!(SNMP_V1_SYSDESCR[5..], SNMP_V2C_SYSDESCR[5..]);
    }

    #[test]
    fn kerberos_as_req_is_exact_der() {
        der_exact(KERBEROS_AS_REQ).expect("der");
        assert_eq!(KERBEROS_AS_REQ.len(), 131);
        assert_eq!(KERBEROS_AS_REQ[0], 0x6a, "[APPLICATION 10]");
        assert_eq!(usize::from(KERBEROS_AS_REQ[2]) + 3, KERBEROS_AS_REQ.len());
        // pvno 5, msg-type 10.
        assert_eq!(
            &KERBEROS_AS_REQ[5..15],
            b"\xa1\x03\x02\x01\x05\xa2\x03\x02\x01\x0a"
        );
    }

    /// Reads the question of a one-question DNS query: (labels, type, class).
    fn dns_question(q: &[u8]) -> (Vec<String>, u16, u16) {
        assert_eq!(&q[4..12], b"\x00\x01\x00\x00\x00\x00\x00\x00");
        let mut at = 12;
        let mut labels = Vec::new();
        while q[at] != 0 {
            let n = usize::from(q[at]);
            assert!(n < 64);
            labels.push(String::from_utf8(q[at + 1..at + 1 + n].to_vec()).expect("ascii"));
            at += 1 + n;
        }
        assert_eq!(q.len(), at + 5, "nothing after the question");
        let kind = u16::from_be_bytes([q[at + 1], q[at + 2]]);
        let class = u16::from_be_bytes([q[at + 3], q[at + 4]]);
        (labels, kind, class)
    }

    #[test]
    fn dns_and_mdns_questions() {
        assert_eq!(
            dns_question(DNS_VERSION_BIND),
            (vec!["version".into(), "bind".into()], 16, 3)
        );
        assert_eq!(dns_question(DNS_ROOT_NS), (vec![], 2, 1));
        assert_eq!(
            dns_question(MDNS_SERVICES),
            (
                vec![
                    "_services".into(),
                    "_dns-sd".into(),
                    "_udp".into(),
                    "local".into()
                ],
                12,
                1
            )
        );
        assert_eq!(DNS_VERSION_BIND[2] & 0x78, 0, "opcode QUERY");
        assert_eq!(DNS_VERSION_BIND[2] & 0x01, 1, "recursion desired");
    }

    #[test]
    fn netbios_nbstat_encodes_the_wildcard_name() {
        assert_eq!(NETBIOS_NBSTAT.len(), 50);
        assert_eq!(NETBIOS_NBSTAT[12], 32);
        // First-level encoding: each nibble + 'A'; '*' = 0x2a, then NULs.
        let mut want = vec![b'C', b'K'];
        want.extend([b'A'; 30]);
        assert_eq!(&NETBIOS_NBSTAT[13..45], &want[..]);
        assert_eq!(&NETBIOS_NBSTAT[45..], b"\x00\x00\x21\x00\x01");
    }

    #[test]
    fn fixed_byte_tables() {
        assert_eq!(NTP_CLIENT.len(), 48);
        assert_eq!(NTP_CLIENT[0] >> 6, 3, "leap indicator");
        assert_eq!(NTP_CLIENT[0] >> 3 & 7, 4, "version");
        assert_eq!(NTP_CLIENT[0] & 7, 3, "client mode");
        assert!(NTP_CLIENT[1..].iter().all(|&b| b == 0));
        assert_eq!(TFTP_RRQ, b"\x00\x01sockeye-probe.txt\x00octet\x00");
        assert_eq!(&MEMCACHED_VERSION[..8], b"\x00\x01\x00\x00\x00\x01\x00\x00");
        assert_eq!(&MEMCACHED_VERSION[8..], b"version\r\n");
        assert!(SSDP_MSEARCH.starts_with(b"M-SEARCH * HTTP/1.1\r\n"));
        assert!(SSDP_MSEARCH.ends_with(b"ST: ssdp:all\r\n\r\n"));
        assert!(
            SSDP_MSEARCH
                .windows(22)
                .any(|w| w == b"MAN: \"ssdp:discover\"\r\n")
        );
        assert_eq!(ECHO, b"sockeye\r\n");
    }
}
