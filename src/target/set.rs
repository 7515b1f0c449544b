//! The target set: an indexable, lazily iterated list of addresses that
//! never expands a network into memory.
//!
//! A [`TargetSet`] is a list of blocks with prefix sums, so that its length
//! is known up front and its `i`-th target is computed by arithmetic: the
//! scanner walks it in a permuted order (see [`super::permute`]) without ever
//! holding 16 million addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::exclude::Excludes;
use super::spec::OctetRange;

/// One address to scan, with the name it was given as, if any (kept for
/// reports: "scan report for example.com (192.0.2.1)").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: IpAddr,
    pub name: Option<Arc<str>>,
}

impl From<IpAddr> for Target {
    fn from(addr: IpAddr) -> Self {
        Target { addr, name: None }
    }
}

/// A run of targets that can be counted and indexed without expanding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `len` consecutive IPv4 addresses from `base` (`base + len <= 2^32`).
    V4Net {
        base: u32,
        len: u64,
    },
    /// `len` consecutive IPv6 addresses from `base`.
    V6Net {
        base: u128,
        len: u64,
    },
    Octets(OctetRange),
    /// Addresses given one by one: resolved names, mostly.
    List(Vec<Target>),
}

impl Block {
    /// Number of targets in the block.
    pub fn len(&self) -> u64 {
        match self {
            Block::V4Net { len, .. } | Block::V6Net { len, .. } => *len,
            Block::Octets(r) => r.len(),
            Block::List(list) => list.len() as u64,
        }
    }

    /// True when the block holds no target.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th target of the block, in O(1) (O(4) for octet ranges).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn get(&self, i: u64) -> Target {
        assert!(i < self.len(), "block index {i} out of 0..{}", self.len());
        self.get_in_range(i)
    }

    /// [`Block::get`] for an index known to be in range.
    #[inline]
    fn get_in_range(&self, i: u64) -> Target {
        match self {
            // Wrapping: fields are public, and a malformed block should give
            // wrong addresses rather than overflow panics mid-scan.
            Block::V4Net { base, .. } => {
                Target::from(IpAddr::V4(Ipv4Addr::from(base.wrapping_add(i as u32))))
            }
            Block::V6Net { base, .. } => {
                Target::from(IpAddr::V6(Ipv6Addr::from(base.wrapping_add(u128::from(i)))))
            }
            Block::Octets(r) => Target::from(IpAddr::V4(r.get(i))),
            Block::List(list) => list[i as usize].clone(),
        }
    }

    /// The targets of the block in order, lazily.
    pub fn iter(&self) -> impl Iterator<Item = Target> + '_ {
        BlockIter::new(self)
    }
}

/// Sequential walk of one block: one variant per block kind, so that each
/// step is a single match and an addition (no division, no search): counters
/// for networks, an odometer over the expanded octet sets, the list itself.
enum BlockIter<'a> {
    V4 {
        next: u64,
        end: u64,
    },
    V6 {
        base: u128,
        next: u64,
        end: u64,
    },
    Octets {
        values: Box<[Vec<u8>; 4]>,
        /// Position in each expanded set; `None` when done.
        pos: Option<[usize; 4]>,
    },
    List(std::slice::Iter<'a, Target>),
}

impl<'a> BlockIter<'a> {
    fn new(block: &'a Block) -> Self {
        match block {
            // next/end are absolute u32 values held in u64, so `end` may be
            // 2^32 for a block that reaches 255.255.255.255.
            Block::V4Net { base, len } => BlockIter::V4 {
                next: u64::from(*base),
                end: u64::from(*base).saturating_add(*len).min(1 << 32),
            },
            Block::V6Net { base, len } => BlockIter::V6 {
                base: *base,
                next: 0,
                end: *len,
            },
            Block::Octets(r) => BlockIter::Octets {
                values: Box::new(r.expand()),
                pos: Some([0; 4]),
            },
            Block::List(list) => BlockIter::List(list.iter()),
        }
    }
}

impl Iterator for BlockIter<'_> {
    type Item = Target;

    #[inline]
    fn next(&mut self) -> Option<Target> {
        match self {
            BlockIter::V4 { next, end } => {
                if *next >= *end {
                    return None;
                }
                let addr = Ipv4Addr::from(*next as u32);
                *next += 1;
                Some(Target::from(IpAddr::V4(addr)))
            }
            BlockIter::V6 { base, next, end } => {
                if *next >= *end {
                    return None;
                }
                let addr = Ipv6Addr::from(base.wrapping_add(u128::from(*next)));
                *next += 1;
                Some(Target::from(IpAddr::V6(addr)))
            }
            BlockIter::Octets { values, pos } => next_octets(values, pos),
            BlockIter::List(list) => list.next().cloned(),
        }
    }
}

/// The odometer step of [`BlockIter::Octets`], kept out of line so that the
/// common network step inlines into the caller's loop.
#[inline(never)]
fn next_octets(values: &[Vec<u8>; 4], pos: &mut Option<[usize; 4]>) -> Option<Target> {
    let p = pos.as_mut()?;
    let addr = Ipv4Addr::new(
        values[0][p[0]],
        values[1][p[1]],
        values[2][p[2]],
        values[3][p[3]],
    );
    // Advance the odometer, last octet fastest.
    let mut k = 4;
    loop {
        if k == 0 {
            *pos = None;
            break;
        }
        k -= 1;
        p[k] += 1;
        if p[k] < values[k].len() {
            break;
        }
        p[k] = 0;
    }
    Some(Target::from(IpAddr::V4(addr)))
}

/// Every target of a scan: blocks in the order given, with prefix sums so
/// that the `i`-th target is found by binary search, and the exclusions.
#[derive(Debug, Clone)]
pub struct TargetSet {
    blocks: Vec<Block>,
    /// `prefix[b]`: targets in `blocks[..=b]` (saturating).
    prefix: Vec<u64>,
    excludes: Excludes,
}

impl TargetSet {
    /// A set over `blocks`, in order, minus `excludes`.
    pub fn new(blocks: Vec<Block>, excludes: Excludes) -> Self {
        let mut total = 0u64;
        let prefix = blocks
            .iter()
            .map(|b| {
                total = total.saturating_add(b.len());
                total
            })
            .collect();
        TargetSet {
            blocks,
            prefix,
            excludes,
        }
    }

    /// Number of targets before exclusion: the range of [`TargetSet::get`]
    /// indexes (and of the permutation that orders a scan).
    pub fn len(&self) -> u64 {
        self.prefix.last().copied().unwrap_or(0)
    }

    /// True when there is no target, excluded or not.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The exclusions.
    pub fn excludes(&self) -> &Excludes {
        &self.excludes
    }

    /// The `i`-th target, or `None` if it is excluded or `i >= len()`.
    pub fn get(&self, i: u64) -> Option<Target> {
        let b = self.prefix.partition_point(|&end| end <= i);
        let block = self.blocks.get(b)?;
        let start = if b == 0 { 0 } else { self.prefix[b - 1] };
        let target = block.get_in_range(i - start);
        (!self.excludes.contains(target.addr)).then_some(target)
    }

    /// The targets in spec order, excluded ones skipped, lazily: a block is
    /// walked sequentially rather than indexed, so a /8 takes milliseconds.
    pub fn iter(&self) -> impl Iterator<Item = Target> + '_ {
        TargetIter {
            blocks: self.blocks.iter(),
            current: None,
            excludes: (!self.excludes.is_empty()).then_some(&self.excludes),
        }
    }
}

/// [`TargetSet::iter`]: hand-written rather than `flat_map` + `filter`,
/// whose `next()` (what a scanner pulling targets calls) measured two to
/// ten times slower over a /8 than this loop.
struct TargetIter<'a> {
    blocks: std::slice::Iter<'a, Block>,
    current: Option<BlockIter<'a>>,
    /// `None` when nothing is excluded, to skip the lookup.
    excludes: Option<&'a Excludes>,
}

impl Iterator for TargetIter<'_> {
    type Item = Target;

    #[inline]
    fn next(&mut self) -> Option<Target> {
        loop {
            if let Some(block) = &mut self.current {
                match self.excludes {
                    None => {
                        if let Some(t) = block.next() {
                            return Some(t);
                        }
                    }
                    Some(excludes) => {
                        if let Some(t) = block.find(|t| !excludes.contains(t.addr)) {
                            return Some(t);
                        }
                    }
                }
            }
            self.current = Some(BlockIter::new(self.blocks.next()?));
        }
    }
}

// A failed unwrap is a failed test, with the value in the message.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::target::exclude::ExcludeItem;
    use crate::target::spec::{HostSpec, parse_host_spec};
    use ipnet::IpNet;
    use proptest::prelude::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    /// The reference expansion of a spec, by plain loops.
    fn expand_spec(spec: &HostSpec) -> Vec<IpAddr> {
        match spec {
            HostSpec::Addr(a) => vec![*a],
            HostSpec::Net(IpNet::V4(n)) => {
                // Not ipnet's hosts(): it skips network and broadcast
                // addresses, which nmap, and we, scan.
                let base = u32::from(n.network());
                let len = 1u64 << (32 - n.prefix_len());
                (0..len)
                    .map(|i| IpAddr::V4(Ipv4Addr::from(base + i as u32)))
                    .collect()
            }
            HostSpec::Net(IpNet::V6(n)) => {
                let base = u128::from(n.network());
                let len = 1u128 << (128 - n.prefix_len());
                (0..len)
                    .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
                    .collect()
            }
            HostSpec::Octets(r) => {
                let [a, b, c, d] = r.expand();
                let mut out = Vec::new();
                for &w in &a {
                    for &x in &b {
                        for &y in &c {
                            for &z in &d {
                                out.push(IpAddr::V4(Ipv4Addr::new(w, x, y, z)));
                            }
                        }
                    }
                }
                out
            }
            HostSpec::Name(_) => vec![],
        }
    }

    #[test]
    fn get_matches_reference_expansion() {
        for token in [
            "192.0.2.7",
            "::1",
            "192.0.2.0/24",
            "192.0.2.0/30",
            "192.0.2.5/32",
            "255.255.255.0/24",
            "fd00::/120",
            "fd00::ff/127",
            "198.18.0-3.1-254",
            "10.0.0,3,5-7.1",
            "1,3.2-4.*.250-",
            "198.18.0.-5",
        ] {
            let spec = parse_host_spec(token).unwrap();
            let block = spec.to_block().unwrap();
            let want = expand_spec(&spec);
            assert_eq!(block.len(), want.len() as u64, "{token}");
            let by_get: Vec<IpAddr> = (0..block.len()).map(|i| block.get(i).addr).collect();
            assert_eq!(by_get, want, "{token}: get");
            let by_iter: Vec<IpAddr> = block.iter().map(|t| t.addr).collect();
            assert_eq!(by_iter, want, "{token}: iter");
        }
    }

    #[test]
    fn octet_contains_matches_expansion() {
        // Every address of the bounding box is in the range exactly when the
        // expansion lists it.
        let spec = parse_host_spec("10.0-1.2,4-5,9.250-").unwrap();
        let HostSpec::Octets(r) = &spec else {
            panic!("not octets")
        };
        let listed = expand_spec(&spec);
        let mut inside = Vec::new();
        for c in 0..=255u8 {
            for d in 0..=255u8 {
                for b in 0..=2u8 {
                    let addr = Ipv4Addr::new(10, b, c, d);
                    if r.contains(addr) {
                        inside.push(IpAddr::V4(addr));
                    }
                }
            }
        }
        inside.sort();
        assert_eq!(inside, listed);
        assert_eq!(r.sets()[2], vec![(2, 2), (4, 5), (9, 9)]);
        assert!(!r.contains(Ipv4Addr::new(11, 0, 2, 250)));
    }

    #[test]
    fn list_blocks_keep_names() {
        let name: Arc<str> = Arc::from("example.com");
        let list = Block::List(vec![
            Target {
                addr: v4("192.0.2.1"),
                name: Some(name.clone()),
            },
            Target {
                addr: v4("192.0.2.2"),
                name: Some(name.clone()),
            },
        ]);
        assert_eq!(list.len(), 2);
        assert_eq!(list.get(1).name.as_deref(), Some("example.com"));
        assert_eq!(list.iter().count(), 2);
        assert_eq!(parse_host_spec("example.com").unwrap().to_block(), None);
    }

    #[test]
    fn a_slash_8_is_counted_not_expanded() {
        let block = parse_host_spec("10.0.0.0/8").unwrap().to_block().unwrap();
        let set = TargetSet::new(vec![block], Excludes::default());
        assert_eq!(set.len(), 16_777_216);
        assert_eq!(set.get(0).map(|t| t.addr), Some(v4("10.0.0.0")));
        assert_eq!(
            set.get(16_777_215).map(|t| t.addr),
            Some(v4("10.255.255.255"))
        );
        assert_eq!(set.get(16_777_216), None);
        let whole = parse_host_spec("0.0.0.0/0").unwrap().to_block().unwrap();
        assert_eq!(whole.len(), 1 << 32);
        assert_eq!(whole.get((1 << 32) - 1).addr, v4("255.255.255.255"));
    }

    #[test]
    fn target_set_spans_blocks() {
        let blocks = ["192.0.2.0/30", "198.51.100.9", "10.0.0.1-2", "fd00::/127"]
            .map(|t| parse_host_spec(t).unwrap().to_block().unwrap())
            .to_vec();
        let set = TargetSet::new(blocks, Excludes::default());
        let addrs: Vec<String> = set.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "192.0.2.0",
                "192.0.2.1",
                "192.0.2.2",
                "192.0.2.3",
                "198.51.100.9",
                "10.0.0.1",
                "10.0.0.2",
                "fd00::",
                "fd00::1"
            ]
        );
        assert_eq!(set.len(), 9);
        let by_get: Vec<String> = (0..set.len())
            .filter_map(|i| set.get(i))
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(by_get, addrs);
        assert!(TargetSet::new(vec![], Excludes::default()).is_empty());
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        let net = (any::<u32>(), 0u64..40).prop_map(|(base, len)| Block::V4Net {
            base: base.min(u32::MAX - 40),
            len,
        });
        let v6 = (any::<u128>(), 0u64..20).prop_map(|(base, len)| Block::V6Net {
            base: base >> 1,
            len,
        });
        let set = prop::collection::vec((any::<u8>(), 0u8..4), 1..3).prop_map(|v| {
            v.into_iter()
                .map(|(lo, w)| (lo, lo.saturating_add(w)))
                .collect::<Vec<_>>()
        });
        let octets = [set.clone(), set.clone(), set.clone(), set]
            .prop_map(|sets| Block::Octets(OctetRange::new(sets).unwrap()));
        let list = prop::collection::vec(any::<u32>(), 0..5).prop_map(|v| {
            Block::List(
                v.into_iter()
                    .map(|a| Target::from(IpAddr::V4(Ipv4Addr::from(a))))
                    .collect(),
            )
        });
        prop_oneof![net, v6, octets, list]
    }

    proptest! {
        #[test]
        fn get_agrees_with_iter(
            blocks in prop::collection::vec(arb_block(), 0..5),
            exclude_picks in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let plain = TargetSet::new(blocks.clone(), Excludes::default());
            let all: Vec<Target> = plain.iter().collect();
            prop_assert_eq!(all.len() as u64, plain.len());
            // Exclude a few of the set's own addresses, so exclusion bites.
            let items: Vec<ExcludeItem> = if all.is_empty() {
                vec![]
            } else {
                exclude_picks.iter().map(|ix| ExcludeItem::Addr(ix.get(&all).addr)).collect()
            };
            let set = TargetSet::new(blocks, Excludes::new(items));
            let by_get: Vec<Target> = (0..set.len()).filter_map(|i| set.get(i)).collect();
            let by_iter: Vec<Target> = set.iter().collect();
            prop_assert_eq!(&by_get, &by_iter);
            for ix in &exclude_picks {
                if !all.is_empty() {
                    let gone = ix.get(&all).addr;
                    prop_assert!(by_iter.iter().all(|t| t.addr != gone));
                }
            }
        }
    }

    /// Timing, not a correctness test: `cargo test --release --lib
    /// target::set -- --ignored --nocapture`.
    #[test]
    #[ignore]
    #[allow(clippy::print_stderr)]
    fn speed_of_iter_over_a_slash_8() {
        for excl in [
            vec![],
            vec![ExcludeItem::Net("10.1.0.0/16".parse().unwrap()); 1],
        ] {
            let block = parse_host_spec("10.0.0.0/8").unwrap().to_block().unwrap();
            let set = TargetSet::new(vec![block], Excludes::new(excl.clone()));
            let start = std::time::Instant::now();
            let count = set.iter().count();
            let took = start.elapsed();
            eprintln!(
                "TargetSet::iter /8 ({} excludes): {count} targets in {took:?}",
                excl.len()
            );
        }
        let block = parse_host_spec("10.*.*.*").unwrap().to_block().unwrap();
        let set = TargetSet::new(vec![block], Excludes::default());
        let start = std::time::Instant::now();
        let count = set.iter().count();
        eprintln!(
            "TargetSet::iter 10.*.*.*: {count} targets in {:?}",
            start.elapsed()
        );
    }
}
