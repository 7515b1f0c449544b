//! Host specifications in nmap's syntax: one token at a time, and `-iL`
//! target files.
//!
//! A token is an address (`192.0.2.1`, `2001:db8::1`), a CIDR network
//! (`10.0.0.0/8`, `fd00::/120`), an IPv4 octet range (`198.18.0-3.1-254`,
//! `10.0.0,3,5-7.*`) or a host name. Names are resolved by [`super::resolve`],
//! which hands the addresses back as a [`Block::List`]; every other spec becomes a [`Block`] of [`super::set`]
//! directly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::SpecError;
use super::set::Block;

/// Longest host name (RFC 1035), without a trailing dot.
const MAX_NAME_LEN: usize = 253;
/// Longest label of a host name (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Shortest IPv6 prefix we scan: a /96 holds 2^32 addresses, the most a
/// block may hold (as many as the whole IPv4 space).
const MIN_SCANNED_V6_PREFIX: u8 = 96;

/// One parsed target token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostSpec {
    Addr(IpAddr),
    /// A network; host bits given after the address are cleared
    /// (`10.1.2.3/8` is `10.0.0.0/8`), and every address in it is scanned,
    /// network and broadcast addresses included, as nmap does.
    Net(IpNet),
    Octets(OctetRange),
    /// A host name, for the caller to resolve.
    Name(String),
}

impl HostSpec {
    /// The block of addresses this spec stands for, or `None` for a
    /// [`HostSpec::Name`] (the caller resolves it into a [`Block::List`]) and
    /// for an IPv6 network of more than 2^32 addresses, which
    /// [`parse_host_spec`] refuses (only exclusions may hold one).
    pub fn to_block(&self) -> Option<Block> {
        match *self {
            HostSpec::Addr(IpAddr::V4(a)) => Some(Block::V4Net {
                base: u32::from(a),
                len: 1,
            }),
            HostSpec::Addr(IpAddr::V6(a)) => Some(Block::V6Net {
                base: u128::from(a),
                len: 1,
            }),
            HostSpec::Net(IpNet::V4(net)) => Some(Block::V4Net {
                base: u32::from(net.network()),
                len: 1 << (32 - net.prefix_len()),
            }),
            HostSpec::Net(IpNet::V6(net)) if net.prefix_len() >= MIN_SCANNED_V6_PREFIX => {
                Some(Block::V6Net {
                    base: u128::from(net.network()),
                    len: 1 << (128 - net.prefix_len()),
                })
            }
            HostSpec::Net(IpNet::V6(_)) | HostSpec::Name(_) => None,
            HostSpec::Octets(ref r) => Some(Block::Octets(r.clone())),
        }
    }
}

/// The range in the syntax it is parsed from (`198.18.0-3,7.1-254`), so
/// that a range read from a file can be passed on as text.
impl std::fmt::Display for OctetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, set) in self.sets.iter().enumerate() {
            if k > 0 {
                f.write_str(".")?;
            }
            for (i, &(lo, hi)) in set.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                if lo == hi {
                    write!(f, "{lo}")?;
                } else {
                    write!(f, "{lo}-{hi}")?;
                }
            }
        }
        Ok(())
    }
}

/// An IPv4 octet range such as `198.18.0-3.1-254`: for each of the four
/// octets, a set of values kept as sorted, disjoint, non-adjacent inclusive
/// ranges. The addresses are the cross product, last octet varying fastest
/// (nmap's order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OctetRange {
    sets: [Vec<(u8, u8)>; 4],
    /// Values in each set (1..=256), kept to index without recounting.
    counts: [u16; 4],
}

impl OctetRange {
    /// Builds a range from four sets of inclusive `(low, high)` ranges, in
    /// any order and possibly overlapping. `None` if a set is empty or holds
    /// a reversed range.
    pub fn new(sets: [Vec<(u8, u8)>; 4]) -> Option<Self> {
        let mut counts = [0u16; 4];
        let mut normalized: [Vec<(u8, u8)>; 4] = Default::default();
        for (k, mut set) in sets.into_iter().enumerate() {
            if set.is_empty() || set.iter().any(|&(lo, hi)| lo > hi) {
                return None;
            }
            set.sort_unstable();
            let mut merged: Vec<(u8, u8)> = Vec::with_capacity(set.len());
            for (lo, hi) in set {
                match merged.last_mut() {
                    Some(last) if u16::from(lo) <= u16::from(last.1) + 1 => {
                        last.1 = last.1.max(hi);
                    }
                    _ => merged.push((lo, hi)),
                }
            }
            counts[k] = merged
                .iter()
                .map(|&(lo, hi)| u16::from(hi) - u16::from(lo) + 1)
                .sum();
            normalized[k] = merged;
        }
        Some(OctetRange {
            sets: normalized,
            counts,
        })
    }

    /// The four normalized sets.
    pub fn sets(&self) -> &[Vec<(u8, u8)>; 4] {
        &self.sets
    }

    /// Number of addresses (at most 2^32).
    pub fn len(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).product()
    }

    /// Always false: every set holds at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th address, by mixed-radix decomposition of `i` over the four
    /// set sizes. `i` is reduced modulo [`OctetRange::len`].
    pub fn get(&self, i: u64) -> Ipv4Addr {
        let mut rem = i;
        let mut octets = [0u8; 4];
        for k in (0..4).rev() {
            let count = u64::from(self.counts[k]);
            octets[k] = nth_in_set(&self.sets[k], (rem % count) as u16);
            rem /= count;
        }
        Ipv4Addr::from(octets)
    }

    /// True if every octet of `addr` is in its set.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        addr.octets()
            .iter()
            .zip(&self.sets)
            .all(|(&o, set)| set.iter().any(|&(lo, hi)| lo <= o && o <= hi))
    }

    /// Each set expanded to its values, for sequential iteration.
    pub(super) fn expand(&self) -> [Vec<u8>; 4] {
        self.sets.clone().map(|set| {
            set.into_iter()
                .flat_map(|(lo, hi)| lo..=hi)
                .collect::<Vec<u8>>()
        })
    }
}

/// The `n`-th value (0-based) of a set of disjoint sorted ranges; `n` is
/// below the set's size.
fn nth_in_set(set: &[(u8, u8)], mut n: u16) -> u8 {
    for &(lo, hi) in set {
        let size = u16::from(hi) - u16::from(lo) + 1;
        if n < size {
            return (u16::from(lo) + n) as u8;
        }
        n -= size;
    }
    // Unreachable for n below the set's size; the last value otherwise.
    set.last().map_or(0, |&(_, hi)| hi)
}

fn error(kind: &'static str, token: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        kind,
        token: token.to_string(),
        why: why.into(),
    }
}

/// Parses one target token (see the module documentation for the forms).
pub fn parse_host_spec(token: &str) -> Result<HostSpec, SpecError> {
    parse_spec(token, "target", false)
}

/// Parses an `-iL` target file: tokens separated by whitespace or newlines,
/// `#` comments to the end of a line. Commas belong to octet ranges here.
pub fn parse_target_file(text: &str) -> Result<Vec<HostSpec>, SpecError> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(parse_host_spec)
        .collect()
}

pub(super) fn parse_spec(
    token: &str,
    kind: &'static str,
    any_v6_size: bool,
) -> Result<HostSpec, SpecError> {
    let err = |why: &str| error(kind, token, why);
    if token.is_empty() {
        return Err(err("empty target"));
    }
    if let Some((addr, prefix)) = token.split_once('/') {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("prefix length is not a number"));
        }
        // Saturate: "/999999999999" is simply too long.
        let prefix: u8 = prefix.parse().unwrap_or(u8::MAX);
        if let Ok(a) = addr.parse::<Ipv4Addr>() {
            let net = Ipv4Net::new(a, prefix).map_err(|_| err("prefix too long (max /32)"))?;
            return Ok(HostSpec::Net(IpNet::V4(net.trunc())));
        }
        if addr.contains(':') {
            let a = parse_v6(addr).map_err(err)?;
            let net = Ipv6Net::new(a, prefix).map_err(|_| err("prefix too long (max /128)"))?;
            if prefix < MIN_SCANNED_V6_PREFIX && !any_v6_size {
                return Err(err(
                    "IPv6 network too large to scan (more than 2^32 addresses)",
                ));
            }
            return Ok(HostSpec::Net(IpNet::V6(net.trunc())));
        }
        if looks_like_octets(addr) {
            return Err(err("a prefix length needs a plain IPv4 address"));
        }
        if is_host_name(addr) {
            return Err(err("a prefix length needs an address, not a name"));
        }
        return Err(err("not an IP address"));
    }
    if token.contains(':') {
        return parse_v6(token)
            .map(|a| HostSpec::Addr(IpAddr::V6(a)))
            .map_err(err);
    }
    if let Ok(a) = token.parse::<Ipv4Addr>() {
        return Ok(HostSpec::Addr(IpAddr::V4(a)));
    }
    if looks_like_octets(token) {
        return parse_octets(token)
            .map(HostSpec::Octets)
            .map_err(|why| err(&why));
    }
    if is_host_name(token) {
        return Ok(HostSpec::Name(token.to_string()));
    }
    Err(err("not an address, network or host name"))
}

/// An IPv6 address, bare or in brackets (`[::1]`).
fn parse_v6(text: &str) -> Result<Ipv6Addr, &'static str> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if bare.contains('%') {
        return Err("IPv6 zone ids are not supported");
    }
    bare.parse().map_err(|_| "not a valid IPv6 address")
}

/// Digits, dots and the range characters only, with a dot: IPv4 syntax, so
/// errors speak of octets rather than of host names.
fn looks_like_octets(token: &str) -> bool {
    token.contains('.')
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'*'))
}

/// Parses `a.b.c.d` where each part is `*`, or comma-separated values and
/// ranges (`5`, `1-254`, `-5` = 0-5, `250-` = 250-255, `-` = 0-255).
fn parse_octets(token: &str) -> Result<OctetRange, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 4 {
        return Err(format!(
            "IPv4 address needs four octets, not {}",
            parts.len()
        ));
    }
    let mut sets: [Vec<(u8, u8)>; 4] = Default::default();
    for (set, part) in sets.iter_mut().zip(parts) {
        if part.is_empty() {
            return Err("empty octet".to_string());
        }
        for item in part.split(',') {
            let range = match item {
                "" => return Err("empty item in octet list".to_string()),
                "*" | "-" => (0, 255),
                _ => match item.split_once('-') {
                    None => {
                        let v = parse_octet(item)?;
                        (v, v)
                    }
                    Some((lo, hi)) => {
                        let lo = if lo.is_empty() { 0 } else { parse_octet(lo)? };
                        let hi = if hi.is_empty() { 255 } else { parse_octet(hi)? };
                        if lo > hi {
                            return Err(format!("reversed octet range {item}"));
                        }
                        (lo, hi)
                    }
                },
            };
            set.push(range);
        }
    }
    OctetRange::new(sets).ok_or_else(|| "empty octet".to_string())
}

fn parse_octet(text: &str) -> Result<u8, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad octet {text:?}"));
    }
    // Leading zeros read as octal to inet_aton(3): refuse the ambiguity.
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!("octet {text} has a leading zero"));
    }
    text.parse()
        .map_err(|_| format!("octet {text} out of range (0-255)"))
}

/// RFC 1123 host name syntax, tolerating underscores (seen in real DNS
/// names); a final dot is allowed, an all-numeric last label is not (it
/// would be a mistyped address).
fn is_host_name(token: &str) -> bool {
    let name = token.strip_suffix('.').unwrap_or(token);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last = name.rsplit('.').next().unwrap_or(name);
    labels_ok && !last.bytes().all(|b| b.is_ascii_digit())
}

// A failed unwrap is a failed test, with the value in the message.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_octet_range_prints_as_it_parses() {
        for text in [
            "198.18.0-3.1-254",
            "198.18.0-3,7,9-10.1",
            "10.0-255.0.0-255",
        ] {
            let Ok(HostSpec::Octets(r)) = parse_host_spec(text) else {
                panic!("{text} is an octet range")
            };
            assert_eq!(r.to_string(), text);
        }
        let Ok(HostSpec::Octets(r)) = parse_host_spec("198.18.*.1") else {
            panic!("an octet range")
        };
        assert_eq!(r.to_string(), "198.18.0-255.1");
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn octets(sets: [&[(u8, u8)]; 4]) -> HostSpec {
        HostSpec::Octets(OctetRange::new(sets.map(|s| s.to_vec())).unwrap())
    }

    #[test]
    fn valid_specs() {
        let cases: Vec<(&str, HostSpec)> = vec![
            ("192.0.2.1", HostSpec::Addr(v4("192.0.2.1"))),
            (
                "2001:db8::1",
                HostSpec::Addr("2001:db8::1".parse().unwrap()),
            ),
            ("[::1]", HostSpec::Addr("::1".parse().unwrap())),
            ("10.0.0.0/8", HostSpec::Net("10.0.0.0/8".parse().unwrap())),
            ("10.1.2.3/8", HostSpec::Net("10.0.0.0/8".parse().unwrap())),
            ("1.2.3.4/32", HostSpec::Net("1.2.3.4/32".parse().unwrap())),
            ("0.0.0.0/0", HostSpec::Net("0.0.0.0/0".parse().unwrap())),
            ("fd00::/120", HostSpec::Net("fd00::/120".parse().unwrap())),
            ("fd00::/96", HostSpec::Net("fd00::/96".parse().unwrap())),
            (
                "198.18.0-3.1-254",
                octets([&[(198, 198)], &[(18, 18)], &[(0, 3)], &[(1, 254)]]),
            ),
            (
                "10.0.0,3,5-7.1",
                octets([&[(10, 10)], &[(0, 0)], &[(0, 0), (3, 3), (5, 7)], &[(1, 1)]]),
            ),
            (
                "198.18.*.1",
                octets([&[(198, 198)], &[(18, 18)], &[(0, 255)], &[(1, 1)]]),
            ),
            (
                "198.18.0.-5",
                octets([&[(198, 198)], &[(18, 18)], &[(0, 0)], &[(0, 5)]]),
            ),
            (
                "198.18.0.250-",
                octets([&[(198, 198)], &[(18, 18)], &[(0, 0)], &[(250, 255)]]),
            ),
            (
                "1.2.3.-",
                octets([&[(1, 1)], &[(2, 2)], &[(3, 3)], &[(0, 255)]]),
            ),
            (
                "1.2.3.4-4",
                octets([&[(1, 1)], &[(2, 2)], &[(3, 3)], &[(4, 4)]]),
            ),
            // Overlapping and adjacent items merge.
            (
                "1.2.3.1-5,3-9,10",
                octets([&[(1, 1)], &[(2, 2)], &[(3, 3)], &[(1, 10)]]),
            ),
            ("localhost", HostSpec::Name("localhost".into())),
            ("scanme.nmap.org", HostSpec::Name("scanme.nmap.org".into())),
            ("example.com.", HostSpec::Name("example.com.".into())),
            (
                "_dmarc.example-1.com",
                HostSpec::Name("_dmarc.example-1.com".into()),
            ),
            ("1.2.3.example", HostSpec::Name("1.2.3.example".into())),
        ];
        for (token, want) in cases {
            let got = parse_host_spec(token).unwrap_or_else(|e| panic!("{token}: {e}"));
            assert_eq!(got, want, "token {token:?}");
        }
    }

    #[test]
    fn invalid_specs_name_the_token() {
        let cases = [
            ("1.2.3.4/33", "prefix too long"),
            ("1.2.3.256", "out of range"),
            ("1.2.3.9-2", "reversed"),
            (
                "fd00::/0",
                "IPv6 network too large to scan (more than 2^32 addresses)",
            ),
            ("fd00::/95", "too large"),
            ("fd00::/129", "prefix too long"),
            ("", "empty"),
            ("1.2..3", "empty octet"),
            ("1.2.3", "four octets"),
            ("1.2.3.4.5", "four octets"),
            ("1.2.3.4/", "not a number"),
            ("1.2.3.4/x", "not a number"),
            ("host/24", "not a name"),
            ("1.2.3.1-5/24", "plain IPv4"),
            ("1.2.3.01", "leading zero"),
            ("1.2.3.1,,2", "empty item"),
            ("fe80::1%eth0", "zone"),
            ("fd00::g", "IPv6"),
            ("12345", "not an address"),
            ("-bad.example", "not an address"),
            ("bad-.example", "not an address"),
            ("a..b", "not an address"),
            ("white space", "not an address"),
            ("caf\u{e9}.example", "not an address"),
        ];
        for (token, why) in cases {
            let err = parse_host_spec(token).expect_err(token);
            assert_eq!(err.kind, "target");
            assert_eq!(err.token, token);
            assert!(err.why.contains(why), "{token:?}: {err}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(parse_host_spec(&long).is_err());
    }

    #[test]
    fn target_files() {
        let text = "# targets\n192.0.2.1 example.com\n\n  10.0.0,1.1-3 # lab\nfd00::1\n";
        let specs = parse_target_file(text).unwrap();
        assert_eq!(specs.len(), 4);
        assert_eq!(specs[1], HostSpec::Name("example.com".into()));
        assert!(matches!(specs[2], HostSpec::Octets(_)));
        let err = parse_target_file("192.0.2.1\nbad..name\n").unwrap_err();
        assert_eq!((err.kind, err.token.as_str()), ("target", "bad..name"));
        assert_eq!(parse_target_file("# only a comment").unwrap(), vec![]);
    }
}
