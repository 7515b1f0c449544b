//! Exclusions (`--exclude`, `--exclude-file`, and `cat`'s allow and deny
//! lists): their text syntax, and the set of addresses they stand for,
//! looked up in logarithmic time while a scan walks its targets.

use std::net::IpAddr;

use ipnet::IpNet;

use super::SpecError;
use super::spec::{HostSpec, OctetRange, parse_spec};

/// An address, network or octet range not to scan; names arrive resolved,
/// as [`ExcludeItem::Addr`] items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExcludeItem {
    Addr(IpAddr),
    Net(IpNet),
    Octets(OctetRange),
}

impl ExcludeItem {
    /// The item for a parsed spec, or `None` for a name, which the caller
    /// resolves into `Addr` items.
    pub fn from_spec(spec: HostSpec) -> Option<Self> {
        match spec {
            HostSpec::Addr(a) => Some(ExcludeItem::Addr(a)),
            HostSpec::Net(n) => Some(ExcludeItem::Net(n)),
            HostSpec::Octets(r) => Some(ExcludeItem::Octets(r)),
            HostSpec::Name(_) => None,
        }
    }
}

/// The addresses not to scan (`--exclude`, `--exclude-file`).
///
/// Addresses and networks become sorted, merged intervals (a binary search
/// per lookup); octet ranges are checked one by one (there are few).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excludes {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    octets: Vec<OctetRange>,
}

impl Excludes {
    /// Builds the exclusion set from resolved items.
    pub fn new(items: Vec<ExcludeItem>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut octets = Vec::new();
        for item in items {
            match item {
                ExcludeItem::Addr(IpAddr::V4(a)) => v4.push((u32::from(a), u32::from(a))),
                ExcludeItem::Addr(IpAddr::V6(a)) => v6.push((u128::from(a), u128::from(a))),
                ExcludeItem::Net(IpNet::V4(n)) => {
                    v4.push((u32::from(n.network()), u32::from(n.broadcast())));
                }
                ExcludeItem::Net(IpNet::V6(n)) => {
                    v6.push((u128::from(n.network()), u128::from(n.broadcast())));
                }
                ExcludeItem::Octets(r) => octets.push(r),
            }
        }
        Excludes {
            v4: merge_intervals(v4),
            v6: merge_intervals(v6),
            octets,
        }
    }

    /// True when nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.octets.is_empty()
    }

    /// True if `addr` must not be scanned.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                in_intervals(&self.v4, u32::from(a)) || self.octets.iter().any(|r| r.contains(a))
            }
            IpAddr::V6(a) => in_intervals(&self.v6, u128::from(a)),
        }
    }
}

/// Sorts inclusive intervals and merges the overlapping or adjacent ones.
fn merge_intervals<T: Copy + Ord + Successor>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            // Saturating: an interval ending at the top address swallows
            // every later one, which is right since they are sorted.
            Some(last) if lo <= last.1.saturating_next() => {
                last.1 = last.1.max(hi);
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn in_intervals<T: Copy + Ord>(intervals: &[(T, T)], x: T) -> bool {
    // The first interval whose end is >= x is the only one that can hold x.
    let i = intervals.partition_point(|&(_, hi)| hi < x);
    intervals.get(i).is_some_and(|&(lo, _)| lo <= x)
}

/// `x + 1` for the two address widths intervals are kept in.
trait Successor {
    fn saturating_next(self) -> Self;
}

impl Successor for u32 {
    fn saturating_next(self) -> Self {
        self.saturating_add(1)
    }
}

impl Successor for u128 {
    fn saturating_next(self) -> Self {
        self.saturating_add(1)
    }
}

/// Parses `--exclude` values and `--exclude-file` contents: tokens
/// separated by commas or whitespace, `#` comments to the end of a line.
/// Unlike targets, an IPv6 network of any size may be excluded.
pub fn parse_exclude_list(text: &str) -> Result<Vec<HostSpec>, SpecError> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|t| !t.is_empty())
        .map(|t| parse_spec(t, "exclude", true))
        .collect()
}

// A failed unwrap is a failed test, with the value in the message.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::target::set::TargetSet;
    use crate::target::spec::parse_host_spec;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    #[test]
    fn exclusions() {
        let specs = parse_exclude_list(
            "192.0.2.1, 192.0.2.8/30\n10.0.*.7 # comment,1.1.1.1\n2001:db8::/32",
        )
        .unwrap();
        assert_eq!(specs.len(), 4);
        let excludes = Excludes::new(
            specs
                .into_iter()
                .filter_map(ExcludeItem::from_spec)
                .collect(),
        );
        for yes in [
            "192.0.2.1",
            "192.0.2.8",
            "192.0.2.11",
            "10.0.200.7",
            "2001:db8::5",
        ] {
            assert!(excludes.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in [
            "192.0.2.2",
            "192.0.2.12",
            "10.0.200.8",
            "1.1.1.1",
            "2001:db9::",
        ] {
            assert!(!excludes.contains(no.parse().unwrap()), "{no}");
        }
        let block = parse_host_spec("192.0.2.0/28").unwrap().to_block().unwrap();
        let set = TargetSet::new(vec![block], excludes);
        assert_eq!(set.len(), 16);
        assert_eq!(set.iter().count(), 16 - 5);
        assert_eq!(set.get(1), None);
        assert_eq!(set.get(2).map(|t| t.addr), Some(v4("192.0.2.2")));

        let err = parse_exclude_list("192.0.2.1,1.2.3.999").unwrap_err();
        assert_eq!((err.kind, err.token.as_str()), ("exclude", "1.2.3.999"));
        assert_eq!(parse_exclude_list(" ,\n").unwrap(), vec![]);
        // Merged intervals: adjacent and overlapping, up to the top address.
        let e = Excludes::new(vec![
            ExcludeItem::Net("255.255.255.0/24".parse().unwrap()),
            ExcludeItem::Addr(v4("255.255.254.255")),
            ExcludeItem::Net("255.255.255.128/25".parse().unwrap()),
        ]);
        assert_eq!(e.v4, vec![(0xffff_feff, u32::MAX)]);
    }
}
