//! A seeded pseudo-random permutation of `0..n`, computed index by index,
//! and the shards that split a scan between several processes.
//!
//! Scanning targets in a shuffled order spreads the load over networks and
//! hosts, but a shuffled list of a /8 times 1000 ports would not fit in
//! memory. Instead [`Permutation::get`] encrypts the index with a small
//! keyed Feistel network over `w` bits, the smallest `2^w >= n`, and
//! "cycle-walks" (encrypts again) until the value falls in `0..n`: following
//! a cycle of a bijection of `0..2^w` until it comes back into `0..n` is a
//! bijection of `0..n`. Since `2^w < 2n`, a walk takes fewer than two
//! passes on average. When `w` is odd the two Feistel halves differ by a bit
//! and alternate, as in NIST's FF1; an even-width-only network would let the
//! domain reach `4n` and double the walking (measured: walking, with its
//! unpredictable branch, is what costs).
//!
//! The order depends only on `(n, seed)`. It is stable across versions of
//! sockeye within one major version (a scan can be resumed or split with the
//! same seed), and may change between major versions.

/// Feistel rounds. Four rounds of a good round function make a strong
/// pseudo-random permutation (Luby-Rackoff); more cost speed for nothing a
/// scanner needs.
const ROUNDS: usize = 4;
const _: () = assert!(
    ROUNDS.is_multiple_of(2),
    "halves must end where they started"
);

/// A bijection on `0..n` chosen by a seed; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permutation {
    n: u64,
    /// Width of the low half `b`; the high half `a` has `w - low_bits` bits,
    /// the same or one fewer.
    low_bits: u32,
    /// `2^low_bits - 1`.
    low_mask: u64,
    /// `64 - width` of the half each round writes: even rounds the high
    /// half's, odd rounds the low half's. The round function's top bits are
    /// its best mixed, so it is shifted down rather than masked.
    shifts: [u32; 2],
    /// Per round: a key xored into the half, and an odd multiplier.
    keys: [(u64, u64); ROUNDS],
}

impl Permutation {
    /// The permutation of `0..n` for `seed`. Any `n` works, 0 and 1 included.
    pub fn new(n: u64, seed: u64) -> Self {
        // ceil(log2(n)) bits hold 0..n; at least 2 so that both halves have
        // a bit (n <= 2 then walks a domain of 4, which is still cheap).
        let width = if n <= 1 {
            0
        } else {
            64 - (n - 1).leading_zeros()
        }
        .max(2);
        let high_bits = width / 2;
        let low_bits = width - high_bits;
        let mut state = seed;
        let keys = std::array::from_fn(|_| (splitmix64(&mut state), splitmix64(&mut state) | 1));
        Permutation {
            n,
            low_bits,
            low_mask: u64::MAX >> (64 - low_bits),
            shifts: [64 - high_bits, 64 - low_bits],
            keys,
        }
    }

    /// The size of the permuted range.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when the range is empty (`n == 0`).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `i`-th value of the permuted order, for `i < n`.
    ///
    /// An index outside `0..n` is a caller bug; it is returned unchanged
    /// rather than panicking on the scanner's hot path.
    #[inline]
    pub fn get(&self, i: u64) -> u64 {
        if i >= self.n {
            debug_assert!(i < self.n, "permutation index {i} out of 0..{}", self.n);
            return i;
        }
        // Terminates: the walk follows i's cycle in the domain permutation,
        // and that cycle contains i itself, which is < n.
        let mut x = i;
        loop {
            x = self.encrypt(x);
            if x < self.n {
                return x;
            }
        }
    }

    /// One pass of the Feistel network over the domain `0..2^width`. Each
    /// round is invertible (`a = c ^ f(b)`), hence so is the whole.
    #[inline]
    fn encrypt(&self, x: u64) -> u64 {
        let mut a = x >> self.low_bits;
        let mut b = x & self.low_mask;
        for (r, &(xor, mul)) in self.keys.iter().enumerate() {
            // `a` has exactly the bits the shift leaves, so `c` stays in
            // its half without a mask.
            let c = a ^ ((b ^ xor).wrapping_mul(mul) >> self.shifts[r % 2]);
            a = b;
            b = c;
        }
        // After an even number of rounds the halves are back in place.
        (a << self.low_bits) | b
    }

    /// The values of shard `index` of `count`: `get(i)` for
    /// `i = index, index + count, index + 2 * count, ... < n`.
    ///
    /// The shards `0..count` of one `(n, seed)` are disjoint and together
    /// yield all of `0..n`. The caller checks `count >= 1` and
    /// `index < count`; if not, the shard is empty.
    pub fn shard(&self, index: u32, count: u32) -> impl Iterator<Item = u64> + use<> {
        let perm = *self;
        let (start, step) = if count == 0 || index >= count {
            (perm.n, 1)
        } else {
            (u64::from(index), count as usize)
        };
        (start..perm.n).step_by(step).map(move |i| perm.get(i))
    }
}

/// splitmix64: turns the seed into independent-looking round keys, so
/// that nearby seeds (0, 1, 2) still give unrelated orders.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// A failed unwrap is a failed test, with the value in the message.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Asserts that `values` is exactly `0..n`, each once.
    fn assert_covers(n: u64, values: impl Iterator<Item = u64>, what: &str) {
        let mut seen = vec![0u64; (n as usize).div_ceil(64)];
        let mut count = 0u64;
        for v in values {
            assert!(v < n, "{what}: value {v} out of 0..{n}");
            let (w, b) = ((v / 64) as usize, v % 64);
            assert!(seen[w] & (1 << b) == 0, "{what}: value {v} twice");
            seen[w] |= 1 << b;
            count += 1;
        }
        assert_eq!(count, n, "{what}: wrong number of values");
    }

    fn sizes() -> Vec<u64> {
        let mut sizes = vec![
            0, 1, 2, 3, 4, 5, 7, 16, 17, 64, 100, 1000, 4097, 65535, 65536,
        ];
        // Random sizes up to 200k, from a fixed seed so failures reproduce.
        let mut state = 0x5eed;
        sizes.extend((0..6).map(|_| splitmix64(&mut state) % 200_000));
        sizes
    }

    #[test]
    fn every_index_exactly_once() {
        for n in sizes() {
            for seed in [0, 1, 42, u64::MAX] {
                let p = Permutation::new(n, seed);
                assert_covers(n, (0..n).map(|i| p.get(i)), &format!("n={n} seed={seed}"));
            }
        }
    }

    #[test]
    fn shards_partition_the_range() {
        for n in sizes() {
            let p = Permutation::new(n, 7);
            for count in 1..=7 {
                let all = (0..count).flat_map(|index| p.shard(index, count));
                assert_covers(n, all, &format!("n={n} count={count}"));
            }
        }
    }

    #[test]
    fn shard_matches_strided_get() {
        let p = Permutation::new(1000, 3);
        let shard: Vec<u64> = p.shard(2, 5).collect();
        let strided: Vec<u64> = (2..1000).step_by(5).map(|i| p.get(i)).collect();
        assert_eq!(shard, strided);
        assert_eq!(p.shard(5, 5).count(), 0);
        assert_eq!(p.shard(0, 0).count(), 0);
    }

    #[test]
    fn seeds_choose_the_order() {
        let order = |seed| {
            (0..1000)
                .map(|i| Permutation::new(1000, seed).get(i))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(9), order(9));
        assert_ne!(order(9), order(10));
        assert_ne!(order(0), order(1));
    }

    #[test]
    fn order_is_not_sequential() {
        let n = 65535;
        let p = Permutation::new(n, 1);
        let steps = (1..n).filter(|&i| p.get(i) == p.get(i - 1) + 1).count();
        assert!(steps < (n / 100) as usize, "{steps} sequential pairs");
        let identity = (0..n).filter(|&i| p.get(i) == i).count();
        assert!(identity < (n / 100) as usize, "{identity} fixed points");
    }

    #[test]
    fn huge_ranges_stay_in_range() {
        for n in [1 << 62, (1 << 62) + 1, 1 << 63, u64::MAX] {
            let p = Permutation::new(n, 5);
            let values: Vec<u64> = (0..1000).chain(n - 1000..n).map(|i| p.get(i)).collect();
            assert!(values.iter().all(|&v| v < n));
            let mut distinct = values.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), values.len());
        }
    }

    proptest! {
        #[test]
        fn bijection_for_any_size_and_seed(n in 0u64..5000, seed in any::<u64>()) {
            let p = Permutation::new(n, seed);
            assert_covers(n, (0..n).map(|i| p.get(i)), "proptest");
        }
    }

    /// Timing, not a correctness test: `cargo test --release --lib
    /// target::permute -- --ignored --nocapture`.
    #[test]
    #[ignore]
    #[allow(clippy::print_stderr)]
    fn speed_of_get() {
        for n in [1_000_000u64, (1 << 40) + 1, 16_777_216 * 1000] {
            let p = Permutation::new(n, 99);
            let count = 20_000_000u64;
            let start = std::time::Instant::now();
            let mut acc = 0u64;
            for i in 0..count {
                acc = acc.wrapping_add(p.get(std::hint::black_box(i % n)));
            }
            let ns = start.elapsed().as_nanos() as f64 / count as f64;
            std::hint::black_box(acc);
            eprintln!("Permutation::get n={n}: {ns:.1} ns");
        }
    }
}
