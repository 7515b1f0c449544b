//! Port specifications in nmap's `-p` syntax, service names, and the
//! frequency-ordered top-ports table.
//!
//! A spec is a comma-separated list of items: ports (`22`), ranges
//! (`1000-2000`), open ranges (`-1024`, `60000-`, `-`), service names with
//! `*`/`?` globs (`ssh`, `http*`), and `T:`/`U:` prefixes that switch the
//! protocol for the items that follow (`T:22,80,U:53,161`). Parsing yields a
//! sorted, deduplicated [`PortList`] per protocol; every error names the item
//! as typed. The tables behind names and top ports are in `services.rs`.

use super::services;
use super::{Proto, SpecError};

/// Number of distinct port values, 0 included.
const PORT_COUNT: usize = 1 << 16;

/// The ports to scan, per protocol; each list sorted ascending, no duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortList {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

impl PortList {
    /// Removes every port of `other` from the list of the same protocol.
    pub fn exclude(&mut self, other: &PortList) {
        // Both sides are sorted, so a binary search per port is enough; port
        // lists hold at most 65,536 entries.
        self.tcp.retain(|p| other.tcp.binary_search(p).is_err());
        self.udp.retain(|p| other.udp.binary_search(p).is_err());
    }

    /// True when there is no port of either protocol.
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }

    /// Number of (port, protocol) pairs.
    pub fn len(&self) -> usize {
        self.tcp.len() + self.udp.len()
    }
}

/// A set of ports as a bitmap: ranges such as `-` insert 65,535 ports, and
/// the bitmap dedups and sorts them for free.
struct PortSet(Vec<u64>);

impl PortSet {
    fn new() -> Self {
        PortSet(vec![0; PORT_COUNT / 64])
    }

    fn insert(&mut self, port: u16) {
        self.0[usize::from(port) / 64] |= 1 << (port % 64);
    }

    fn into_sorted(self) -> Vec<u16> {
        let mut out = Vec::new();
        for (w, &word) in self.0.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                out.push((w * 64 + b) as u16);
                bits &= bits - 1;
            }
        }
        out
    }
}

fn error(token: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        kind: "port",
        token: token.to_string(),
        why: why.into(),
    }
}

/// Parses an nmap `-p` specification.
///
/// Items without a `T:`/`U:` prefix are TCP until a prefix says otherwise.
/// Port 0 is included only when typed explicitly (`0`, `0-10`); open ranges
/// (`-`, `-1024`) start at 1, as in nmap.
pub fn parse_ports(spec: &str) -> Result<PortList, SpecError> {
    if spec.trim().is_empty() {
        return Err(error(spec, "empty port list"));
    }
    let mut tcp = PortSet::new();
    let mut udp = PortSet::new();
    let mut proto = Proto::Tcp;
    for raw in spec.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            // The empty item itself says nothing: name the whole spec.
            return Err(error(spec, "empty item in port list"));
        }
        let rest = match item.split_at_checked(2) {
            Some((p, rest)) if p.eq_ignore_ascii_case("t:") => {
                proto = Proto::Tcp;
                rest
            }
            Some((p, rest)) if p.eq_ignore_ascii_case("u:") => {
                proto = Proto::Udp;
                rest
            }
            Some((p, _)) if p.eq_ignore_ascii_case("s:") => {
                return Err(error(item, "SCTP ports are not supported"));
            }
            Some((p, _)) if p.eq_ignore_ascii_case("p:") => {
                return Err(error(item, "IP protocol scans are not supported"));
            }
            _ => item,
        };
        if rest.is_empty() {
            return Err(error(item, "protocol prefix without ports"));
        }
        let set = match proto {
            Proto::Tcp => &mut tcp,
            Proto::Udp => &mut udp,
        };
        parse_item(rest, proto, item, set)?;
    }
    Ok(PortList {
        tcp: tcp.into_sorted(),
        udp: udp.into_sorted(),
    })
}

/// Parses one item without its protocol prefix into `set`; `item` is the
/// item as typed, for errors.
fn parse_item(rest: &str, proto: Proto, item: &str, set: &mut PortSet) -> Result<(), SpecError> {
    // Service names always hold a letter (pop3, x11) or a glob character;
    // anything else must be a port or a range.
    if rest
        .bytes()
        .any(|b| b.is_ascii_alphabetic() || b == b'*' || b == b'?')
    {
        let ports = port_of_service(rest, proto);
        if ports.is_empty() {
            let why = if rest.contains(['*', '?']) {
                format!("no {proto} service name matches")
            } else {
                format!("unknown {proto} service name")
            };
            return Err(error(item, why));
        }
        for p in ports {
            set.insert(p);
        }
        return Ok(());
    }
    let (lo, hi) = match rest.split_once('-') {
        None => {
            let p = parse_port(rest, item)?;
            (p, p)
        }
        Some((a, b)) => {
            let lo = if a.is_empty() {
                1
            } else {
                parse_port(a, item)?
            };
            let hi = if b.is_empty() {
                u16::MAX
            } else {
                parse_port(b, item)?
            };
            if lo > hi {
                return Err(error(item, "reversed range"));
            }
            (lo, hi)
        }
    };
    for p in lo..=hi {
        set.insert(p);
    }
    Ok(())
}

fn parse_port(digits: &str, item: &str) -> Result<u16, SpecError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(item, "not a port number"));
    }
    digits
        .parse::<u16>()
        .map_err(|_| error(item, format!("port {digits} out of range (0-65535)")))
}

/// The `n` ports most frequently found open for `proto`, most frequent first
/// (nmap's `--top-ports`). The table holds 1000 ports per protocol; a larger
/// `n` returns all of them.
pub fn top_ports(proto: Proto, n: usize) -> Vec<u16> {
    let top = services::top(proto);
    top[..n.min(top.len())].to_vec()
}

/// The service name shown for a port (IANA's, else nmap's for top ports).
pub fn service_name(port: u16, proto: Proto) -> Option<&'static str> {
    services::name(port, proto)
}

/// Ports whose service name matches `pattern`, ascending. The pattern may use
/// `*` (any run of characters) and `?` (one character); matching ignores
/// ASCII case. Empty when nothing matches.
pub fn port_of_service(pattern: &str, proto: Proto) -> Vec<u16> {
    services::names(proto)
        .iter()
        .filter(|(_, name)| glob_match(pattern.as_bytes(), name.as_bytes()))
        .map(|&(port, _)| port)
        .collect()
}

/// Wildcard match of `*` and `?`, ASCII case-insensitive. Backtracks only to
/// the last `*`, so it runs in O(pattern × text) at worst.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    // Let the last star swallow one more character.
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Renders sorted ports compactly, runs as ranges: `1-1024,8080` (the form of
/// nmap XML's `services=` attribute).
pub fn compact_spec(ports: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && end < u16::MAX && ports[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

// A failed unwrap is a failed test, with the value in the message.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn range(lo: u16, hi: u16) -> Vec<u16> {
        (lo..=hi).collect()
    }

    #[test]
    fn valid_specs() {
        let cases: Vec<(&str, Vec<u16>, Vec<u16>)> = vec![
            ("22", vec![22], vec![]),
            ("80,22,80", vec![22, 80], vec![]),
            ("1000-1003", range(1000, 1003), vec![]),
            ("-5", range(1, 5), vec![]),
            ("65530-", range(65530, 65535), vec![]),
            ("-", range(1, 65535), vec![]),
            ("0", vec![0], vec![]),
            ("0-3", range(0, 3), vec![]),
            ("5-5", vec![5], vec![]),
            ("65535", vec![65535], vec![]),
            ("ssh", vec![22], vec![]),
            // nmap-services also names 8008 "http"; nmap's -p http scans both.
            ("ssh,http,https", vec![22, 80, 443, 8008], vec![]),
            ("SSH", vec![22], vec![]),
            ("T:22,80,U:53,161", vec![22, 80], vec![53, 161]),
            ("U:53,T:25", vec![25], vec![53]),
            ("u:domain", vec![], vec![53]),
            ("22, 80", vec![22, 80], vec![]),
            ("U:-3", vec![], range(1, 3)),
            ("T:1-3,2-4", range(1, 4), vec![]),
        ];
        for (spec, tcp, udp) in cases {
            let got = parse_ports(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(got, PortList { tcp, udp }, "spec {spec:?}");
        }
    }

    #[test]
    fn globs_on_names() {
        let http = parse_ports("http*").unwrap();
        for p in [80, 443, 8080] {
            assert!(http.tcp.contains(&p), "http* lacks {p}: {:?}", http.tcp);
        }
        assert!(!http.tcp.contains(&22));
        assert_eq!(parse_ports("ss?").unwrap().tcp, vec![22]);
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b", b"aXc"));
        assert!(glob_match(b"?ttp", b"http"));
        assert!(!glob_match(b"http", b"https"));
    }

    #[test]
    fn invalid_specs_name_the_token() {
        let cases = [
            ("999999", "999999"),
            ("22,999999", "999999"),
            ("80-20", "80-20"),
            ("1-70000", "1-70000"),
            ("ssh-nope", "ssh-nope"),
            ("22,,80", "22,,80"),
            ("22,", "22,"),
            ("abc", "abc"),
            ("nope*", "nope*"),
            ("T:", "T:"),
            ("22,U:", "U:"),
            ("U:53,T:abc", "T:abc"),
            ("1-2-3", "1-2-3"),
            ("+5", "+5"),
            ("S:80", "S:80"),
            ("", ""),
            ("  ", "  "),
        ];
        for (spec, token) in cases {
            let err = parse_ports(spec).expect_err(spec);
            assert_eq!(err.kind, "port");
            assert_eq!(err.token, token, "spec {spec:?}: {err}");
        }
        let err = parse_ports("999999").unwrap_err();
        assert_eq!(
            err.to_string(),
            "port \"999999\": port 999999 out of range (0-65535)"
        );
    }

    #[test]
    fn top_ports_follow_nmap_order() {
        let top = top_ports(Proto::Tcp, 1000);
        assert_eq!(top.len(), 1000);
        assert_eq!(&top[..3], &[80, 23, 443]);
        let mut distinct = top.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 1000);
        assert_eq!(top_ports(Proto::Tcp, 5000).len(), 1000);
        assert_eq!(top_ports(Proto::Tcp, 0), Vec::<u16>::new());
        assert_eq!(&top_ports(Proto::Udp, 2), &[631, 161]);
    }

    #[test]
    fn service_names_round_trip() {
        for (name, port, proto) in [
            ("ssh", 22, Proto::Tcp),
            ("domain", 53, Proto::Udp),
            ("domain", 53, Proto::Tcp),
            ("http", 80, Proto::Tcp),
            ("https", 443, Proto::Tcp),
            ("snmp", 161, Proto::Udp),
        ] {
            assert_eq!(service_name(port, proto), Some(name));
            assert!(port_of_service(name, proto).contains(&port), "{name}");
        }
        assert_eq!(port_of_service("ssh", Proto::Tcp), vec![22]);
        assert_eq!(port_of_service("http", Proto::Tcp), vec![80, 8008]);
        assert_eq!(
            port_of_service("nonexistent", Proto::Tcp),
            Vec::<u16>::new()
        );
    }

    #[test]
    fn exclude_and_len() {
        let mut list = parse_ports("T:1-10,U:53,161").unwrap();
        assert_eq!(list.len(), 12);
        list.exclude(&parse_ports("T:2-9,U:161,T:80").unwrap());
        assert_eq!(list.tcp, vec![1, 10]);
        assert_eq!(list.udp, vec![53]);
        list.exclude(&list.clone());
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn compact_spec_renders_runs() {
        assert_eq!(compact_spec(&[]), "");
        assert_eq!(compact_spec(&[80]), "80");
        assert_eq!(compact_spec(&range(1, 1024)), "1-1024");
        let mut ports = range(1, 1024);
        ports.push(8080);
        assert_eq!(compact_spec(&ports), "1-1024,8080");
        assert_eq!(compact_spec(&[1, 3, 4, 6]), "1,3-4,6");
        assert_eq!(compact_spec(&range(65530, 65535)), "65530-65535");
        assert_eq!(compact_spec(&[0, 1, 65535]), "0-1,65535");
        let spec = "0,5-9,22,65000-65535";
        assert_eq!(compact_spec(&parse_ports(spec).unwrap().tcp), spec);
    }
}
