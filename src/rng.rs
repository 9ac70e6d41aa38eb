//! The crate's only source of randomness (suite data, random tapes).
//!
//! Every seeded input of the suite comes from [`SplitMix64`], so that the data
//! can be regenerated bit for bit from a seed by any other tool (a Python or
//! C++ comparison, another AD library's bench) without depending on a crate
//! whose output might change between versions.

/// SplitMix64 (Steele, Lea and Flood 2014), exactly as in Vigna's reference
/// `splitmix64.c`.
///
/// Chosen because it is tiny, fully specified and has no dependency; its
/// statistical quality is more than enough for benchmark data. The seeds the
/// suite uses are listed in the [`suite`](crate::suite) module docs.
///
/// ```
/// use tapejit::suite::SplitMix64;
/// let mut rng = SplitMix64::new(0);
/// assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
/// let u = rng.uniform(-1.0, 1.0);
/// assert!((-1.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed` (any value, zero included).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform `f64` in `[0, 1)`: the top 53 bits of [`Self::next_u64`]
    /// times 2^-53, so every value is a multiple of 2^-53 and 1 is never hit.
    pub fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// `lo + (hi - lo) * u` with `u` from [`Self::next_f64`]: uniform in
    /// `[lo, hi)` (up to rounding of that expression; for the suite's ranges,
    /// which are symmetric powers of two or small, `hi` is never reached).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Appends `count` draws of [`Self::uniform`]`(lo, hi)` to `out`.
    ///
    /// Exists so that every seeded vector of the suite is drawn the same way,
    /// in order, one call per value.
    pub(crate) fn fill_uniform(&mut self, out: &mut Vec<f64>, count: usize, lo: f64, hi: f64) {
        out.extend((0..count).map(|_| self.uniform(lo, hi)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_outputs() {
        // First outputs of Vigna's splitmix64.c seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
        // And seeded with 1234567 (the test vector used by several ports).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn floats_stay_in_range() {
        let mut rng = SplitMix64::new(42);
        for _ in 0..10_000 {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
            let v = rng.uniform(-0.5, 0.5);
            assert!((-0.5..0.5).contains(&v));
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut va = Vec::new();
        a.fill_uniform(&mut va, 5, -1.0, 1.0);
        let vb: Vec<f64> = (0..5).map(|_| b.uniform(-1.0, 1.0)).collect();
        assert_eq!(va, vb);
    }
}
