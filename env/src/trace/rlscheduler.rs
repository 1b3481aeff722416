//! The test windows of RLScheduler (Zhang et al., SC'20), drawn exactly as its comparison
//! script draws them, so that lepton can evaluate on the same job sequences.
//!
//! That script seeds its environment with gym's (2019) `seeding.np_random(seed)` and then
//! draws each window's first job as numpy's legacy `RandomState.randint(len, n − len − 1)`
//! for windows of `len` jobs of a trace of `n` jobs. Reproduced here step by step:
//!
//! 1. **gym's seed hashing**: the first 8 bytes of SHA-512 of the seed written in decimal,
//!    read as little-endian 32-bit words; high words that are 0 are dropped (gym turns the
//!    bytes into an integer and back into a word list), and a seed hashing to 0 keys `[0]`.
//! 2. **numpy's seeding**: MT19937 seeded by `init_by_array` with that key (the reference
//!    generator of Matsumoto and Nishimura, from the `rand_mt` crate).
//! 3. **numpy's bounded integer** in `[low, high)`: with `range = high − 1 − low` and `mask`
//!    the smallest `2^k − 1 ≥ range`, draw 32-bit outputs, AND them with `mask` and reject
//!    those above `range`; the result is `low +` the first accepted value (no output is drawn
//!    when `range` is 0).
//!
//! The k-th draw (k = 0, 1, …) is the k-th test window; each costs about two outputs, so
//! [`rlscheduler_starts`] draws a bounded number of them up front.

use rand_mt::Mt;
use sha2::{Digest, Sha512};

/// The most windows one sampler may draw (8 MB of starts): enough for any evaluation, small
/// enough that a mistyped count fails at load rather than hanging.
pub const MAX_EPISODES: usize = 1_000_000;

/// The `init_by_array` key of gym's `seeding.np_random(seed)`.
pub fn gym_seed_key(seed: u64) -> Vec<u32> {
    let digest = Sha512::digest(seed.to_string().as_bytes());
    let mut key: Vec<u32> = digest[..8]
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    while key.len() > 1 && key.last() == Some(&0) {
        key.pop();
    }
    key
}

/// numpy's legacy bounded integer in `[low, high)` (`low < high`) from 32-bit outputs.
pub fn bounded(mut next_u32: impl FnMut() -> u32, low: u32, high: u32) -> u32 {
    let range = high - 1 - low;
    if range == 0 {
        return low;
    }
    let mask = u32::MAX >> range.leading_zeros();
    loop {
        let v = next_u32() & mask;
        if v <= range {
            return low + v;
        }
    }
}

/// The first `count` window starts (0-based job indices) that RLScheduler's comparison
/// script draws with `--seed seed` for windows of `len` jobs of a trace of `n` jobs. The
/// error says why there are none: numpy refuses `randint(len, n − len − 1)` unless
/// `n ≥ 2·len + 2`.
pub fn rlscheduler_starts(
    seed: u64,
    len: usize,
    n: usize,
    count: usize,
) -> Result<Vec<usize>, String> {
    let needed = len.saturating_mul(2).saturating_add(2);
    if n < needed {
        return Err(format!(
            "RLScheduler draws a window of {len} jobs from [{len}, {n} − {len} − 1), which \
             needs at least 2 × {len} + 2 = {needed} jobs; the trace has {n}"
        ));
    }
    let (Ok(low), Ok(high)) = (u32::try_from(len), u32::try_from(n - len - 1)) else {
        return Err(format!("a trace of {n} jobs is past numpy's 32-bit draws"));
    };
    let mut mt = Mt::new_with_key(gym_seed_key(seed));
    Ok((0..count)
        .map(|_| bounded(|| mt.next_u32(), low, high) as usize)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gym_hashes_seed_1_to_two_words() {
        // sha512("1") begins 4d ff 4e a3 40 f0 a8 23: little-endian words 0xa34eff4d and
        // 0x23a8f040.
        assert_eq!(gym_seed_key(1), vec![2739863373, 598274112]);
        assert_eq!(gym_seed_key(1), vec![0xa34e_ff4d, 0x23a8_f040]);
    }

    /// The reference `mt19937ar.c` seeded with init_by_array({0x123, 0x234, 0x345, 0x456})
    /// prints 1067595299 955945823 477289528 first: the key schedule numpy uses.
    #[test]
    fn mt19937_init_by_array_matches_the_reference_output() {
        let mut mt = Mt::new_with_key([0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..3).map(|_| mt.next_u32()).collect();
        assert_eq!(first, vec![1067595299, 955945823, 477289528]);
    }

    /// randint(3, 9): range = 9 − 1 − 3 = 5, mask 7. Outputs 14 (& 7 = 6 > 5, rejected),
    /// then 9 (& 7 = 1): 3 + 1 = 4. A range of 0 draws nothing.
    #[test]
    fn bounded_masks_and_rejects_like_numpy() {
        let mut outputs = [14u32, 9, 0].into_iter();
        assert_eq!(bounded(|| outputs.next().unwrap(), 3, 9), 4);
        assert_eq!(outputs.next(), Some(0), "exactly two outputs drawn");
        assert_eq!(bounded(|| unreachable!("no draw"), 7, 8), 7);
        // range 2^32 − 2 (mask all ones): u32::MAX is rejected, then 5 accepted.
        let mut outputs = [u32::MAX, 5].into_iter();
        assert_eq!(bounded(|| outputs.next().unwrap(), 0, u32::MAX), 5);
    }

    /// RLScheduler's compare script with seed 1 on Lublin-256 (10,000 jobs, 1024-job
    /// windows), as numpy draws them.
    #[test]
    fn seed_1_gives_rlschedulers_ten_lublin_windows() {
        assert_eq!(
            rlscheduler_starts(1, 1024, 10_000, 10).unwrap(),
            vec![1981, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085]
        );
        let err = rlscheduler_starts(1, 1024, 2049, 1).unwrap_err();
        assert!(err.contains("at least 2 × 1024 + 2 = 2050 jobs"), "{err}");
        assert_eq!(rlscheduler_starts(1, 1024, 2050, 3).unwrap(), vec![1024; 3]);
    }
}
