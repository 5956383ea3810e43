//! Random helpers: seeding, distributions, hashing and keyed permutations for source keys.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator used everywhere.
pub(crate) type Rand = ChaCha8Rng;

/// SplitMix64 finaliser: a good 64-bit mixer.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of several values (order-sensitive).
pub(crate) fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x1234_5678_9ABC_DEF0u64;
    for &p in parts {
        h = mix64(h ^ p);
    }
    h
}

/// Uniform [0,1) from a hash value.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An independent stream for `(seed, domain, index)`, identical regardless of threading.
pub(crate) fn stream(seed: u64, domain: u64, index: u64) -> Rand {
    let mut r = Rand::seed_from_u64(mix64(seed ^ mix64(domain)));
    r.set_stream(index);
    r
}

/// Distribution helpers on any RNG.
pub(crate) trait RandExt: Rng {
    /// Uniform [0,1).
    fn u(&mut self) -> f64 {
        self.random::<f64>()
    }
    /// Bernoulli.
    fn p(&mut self, p: f64) -> bool {
        self.random::<f64>() < p
    }
    /// Standard normal (Box-Muller, one value).
    fn normal(&mut self) -> f64 {
        let u1 = self.random::<f64>().max(1e-300);
        let u2 = self.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Normal with mean and sd.
    fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        mean + sd * self.normal()
    }
    /// Log-normal with a given median and log-sd.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    /// Integer in [lo, hi] inclusive.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo { lo } else { self.random_range(lo..=hi) }
    }
    /// Pick an index by weights.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}
impl<R: Rng + ?Sized> RandExt for R {}

/// A keyed bijection on `[0, modulus)` (4-round Feistel network with cycle walking).
/// Used to turn person / household indexes into source keys that do not reveal the true index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Perm {
    key: u64,
    half_bits: u32,
    modulus: u64,
}

impl Perm {
    /// A permutation of `[0, modulus)` keyed by `key`.
    pub(crate) fn new(key: u64, modulus: u64) -> Perm {
        let bits = 64 - (modulus.max(4) - 1).leading_zeros();
        let half_bits = bits.div_ceil(2);
        Perm { key, half_bits, modulus }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for i in 0..4u64 {
            let f = mix64(r ^ self.key.wrapping_add(i.wrapping_mul(0x9E37_79B9))) & mask;
            let nl = r;
            r = l ^ f;
            l = nl;
        }
        (l << self.half_bits) | r
    }

    /// Image of `x` (must be below the modulus).
    pub(crate) fn apply(&self, x: u64) -> u64 {
        debug_assert!(x < self.modulus);
        let mut y = self.round(x);
        while y >= self.modulus {
            y = self.round(y);
        }
        y
    }
}

/// Smallest power of ten that is at least `n` and at least `10^min_digits`; returns (digits, 10^digits).
pub(crate) fn digits_for(n: u64, min_digits: u32) -> (u32, u64) {
    let mut d = min_digits;
    while 10u64.pow(d) < n {
        d += 1;
    }
    (d, 10u64.pow(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perm_is_bijective() {
        for m in [10u64, 1000, 12345] {
            let p = Perm::new(42, m);
            let mut seen = vec![false; m as usize];
            for x in 0..m {
                let y = p.apply(x);
                assert!(y < m);
                assert!(!seen[y as usize]);
                seen[y as usize] = true;
            }
        }
    }
}
