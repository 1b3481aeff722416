//! Seed mixing shared by the env and the trainer: derived seeds and hashes that are fixed
//! functions of their inputs, the same on every machine.

/// SplitMix64's finaliser: a well-mixed 64-bit function of its input.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
