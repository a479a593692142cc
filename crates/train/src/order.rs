//! Deterministic data order: the PRNG, the per-epoch shuffle and the per-sample augmentation streams.
//!
//! Everything here is specified exactly, because the JAX export must reproduce the same order with
//! plain Python integers (no numpy). All arithmetic is on unsigned 64-bit integers, modulo 2⁶⁴
//! (`& MASK` in Python, `MASK = 2**64 - 1`).
//!
//! **Mixer** (the SplitMix64 output function):
//! ```text
//! mix64(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//!            z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//!            return z ^ (z >> 31)
//! ```
//! **Generator** (SplitMix64): a state `s`; each draw does `s = s + 0x9E3779B97F4A7C15` and returns
//! `mix64(s)`.
//!
//! **Bounded draw** `below(m)` for `m ≥ 1` (unbiased, by rejection): let
//! `limit = 2⁶⁴ − (2⁶⁴ mod m)`; draw `x` until `x < limit`; return `x mod m`.
//!
//! **Shuffle of epoch `e`** (0-based) over `n` items: the generator starts at
//! `s = mix64(mix64(seed ^ 0x5348) ^ e)`; `p = [0, 1, …, n−1]`; for `i` from `n−1` down to `1`:
//! `j = below(i + 1)`, swap `p[i]` and `p[j]` (Fisher–Yates). The epoch visits `p[0], p[1], …`.
//! With `shuffle: false` the order is the identity, every epoch.
//!
//! **Augmentation stream** of the sample at position `k` of epoch `e` (its place in the epoch's
//! order, 0-based, not its index in the dataset): the generator starts at
//! `s = mix64(mix64(mix64(seed ^ 0x4155) ^ e) ^ k)`. [`crate::augment`] says which draws it makes.
//! Because every sample has its own stream, batches can be produced on any thread, in any order, and
//! from any resume position with identical results.
//!
//! A reference in Python:
//! ```text
//! M = (1 << 64) - 1
//! def mix64(z):
//!     z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//!     z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//!     return z ^ (z >> 31)
//! class SplitMix64:
//!     def __init__(self, s): self.s = s & M
//!     def next(self):
//!         self.s = (self.s + 0x9E3779B97F4A7C15) & M
//!         return mix64(self.s)
//!     def below(self, m):
//!         limit = (1 << 64) - ((1 << 64) % m)
//!         while True:
//!             x = self.next()
//!             if x < limit: return x % m
//! def permutation(n, seed, epoch):
//!     r = SplitMix64(mix64(mix64(seed ^ 0x5348) ^ epoch))
//!     p = list(range(n))
//!     for i in range(n - 1, 0, -1):
//!         j = r.below(i + 1)
//!         p[i], p[j] = p[j], p[i]
//!     return p
//! ```

/// The SplitMix64 increment (2⁶⁴ divided by the golden ratio, odd).
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// Domain tag of the shuffle streams ("SH").
pub const SHUFFLE_TAG: u64 = 0x5348;
/// Domain tag of the augmentation streams ("AU").
pub const AUGMENT_TAG: u64 = 0x4155;

/// The SplitMix64 output function: a bijective 64-bit mixer.
pub fn mix64(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 generator (see the module doc for the exact definition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(state: u64) -> SplitMix64 {
        SplitMix64 { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// A uniform draw from `0..m` (`m ≥ 1`), unbiased by rejection.
    pub fn below(&mut self, m: u64) -> u64 {
        assert!(m >= 1, "below(0) has no values");
        // 2^64 mod m, computed without 128-bit arithmetic: (2^64 − 1) mod m, plus one, mod m.
        let rem = (u64::MAX % m + 1) % m;
        loop {
            let x = self.next_u64();
            // x < limit = 2^64 − rem  ⇔  x ≤ u64::MAX − rem (no overflow for rem = 0).
            if x <= u64::MAX - rem {
                return x % m;
            }
        }
    }

    /// A uniform draw from `[0, 1)`: the top 53 bits of a draw times 2⁻⁵³ (used by the random-resized
    /// crop of [`crate::augment`]; the JAX export does not use it).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One fair coin: the top bit of a draw.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

/// The generator that shuffles epoch `epoch`.
pub fn shuffle_rng(seed: u64, epoch: u64) -> SplitMix64 {
    SplitMix64::new(mix64(mix64(seed ^ SHUFFLE_TAG) ^ epoch))
}

/// The generator of the sample at `position` of epoch `epoch`.
pub fn augment_rng(seed: u64, epoch: u64, position: u64) -> SplitMix64 {
    SplitMix64::new(mix64(mix64(mix64(seed ^ AUGMENT_TAG) ^ epoch) ^ position))
}

/// Fisher–Yates permutation of `0..n` for `epoch` (see the module doc).
pub fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    assert!(
        n <= u32::MAX as usize,
        "datasets hold fewer than 2^32 items"
    );
    let mut rng = shuffle_rng(seed, epoch);
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// The order in which epoch `epoch` visits a dataset of `n` items.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<u32> {
    if shuffle {
        permutation(n, seed, epoch)
    } else {
        (0..n as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SplitMix64::new(7);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn below_rejects_the_biased_tail() {
        // m = 2^63 + 1: limit = 2^64 − (2^64 mod m) = 2^64 − (2^63 − 1) = 2^63 + 1, so about half of
        // all draws are rejected; every accepted value must still be < m.
        let m = (1u64 << 63) + 1;
        let mut r = SplitMix64::new(1);
        for _ in 0..200 {
            assert!(r.below(m) < m);
        }
        // m = 2^64 − 1 ... rem = 1: only u64::MAX is rejected.
        assert!(SplitMix64::new(3).below(u64::MAX) < u64::MAX);
    }

    #[test]
    fn permutation_is_a_permutation() {
        for n in [0usize, 1, 2, 3, 10, 1000] {
            let mut p = permutation(n, 42, 3);
            p.sort_unstable();
            assert_eq!(p, (0..n as u32).collect::<Vec<_>>());
        }
    }
}
