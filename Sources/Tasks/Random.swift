// Item seeds for task generation: every problem's generator (a `SplitMix64`, Basics/Random.swift) is
// seeded by hashing its coordinates, so committed datasets are reproducible byte for byte.

/// Derives independent seeds for individual problems by hashing, never by `seed + i`.
///
/// reasoning-gym seeds item *i* with `seed + i`, so a training stream seeded one higher than a test set
/// replays that test set shifted by one item. Hashing every coordinate (seed, stream, family, level,
/// index) through SplitMix64's avalanche makes neighbouring items and neighbouring seeds unrelated.
public enum SeedDerivation {
    /// The seed for item `index` of `family` at `level` in the named `stream` ("test", "train", ...).
    public static func itemSeed(seed: UInt64, stream: String, family: String, level: Int, index: Int) -> UInt64 {
        var h = SplitMix64.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        h = SplitMix64.mix(h ^ FNV1a.hash(stream))
        h = SplitMix64.mix(h ^ FNV1a.hash(family))
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(level)))
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(index)))
        return h
    }
}
