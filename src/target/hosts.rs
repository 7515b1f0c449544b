//! Host specifications in nmap's syntax, exclusions, and the target set: an
//! indexable, lazily iterated list of addresses that never expands a network
//! into memory.
//!
//! A token is an address (`192.0.2.1`, `2001:db8::1`), a CIDR network
//! (`10.0.0.0/8`, `fd00::/120`), an IPv4 octet range (`198.18.0-3.1-254`,
//! `10.0.0,3,5-7.*`) or a host name. Names are resolved by the caller (that
//! is async and lives elsewhere), which hands the addresses back as a
//! [`Block::List`]. A [`TargetSet`] is a list of blocks with prefix sums, so
//! that its length is known up front and its `i`-th target is computed by
//! arithmetic: the scanner walks it in a permuted order (see
//! [`super::permute`]) without ever holding 16 million addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::SpecError;

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
    fn expand(&self) -> [Vec<u8>; 4] {
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

/// Parses an `-iL` target file: tokens separated by whitespace or newlines,
/// `#` comments to the end of a line. Commas belong to octet ranges here.
pub fn parse_target_file(text: &str) -> Result<Vec<HostSpec>, SpecError> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(parse_host_spec)
        .collect()
}

fn parse_spec(token: &str, kind: &'static str, any_v6_size: bool) -> Result<HostSpec, SpecError> {
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
    use proptest::prelude::*;

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
    /// target::hosts -- --ignored --nocapture`.
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
