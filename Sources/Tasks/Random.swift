// Seeded randomness for task generation. Every generator takes a `SplitMix64` passed `inout`; nothing in
// Tasks touches the system RNG. Ranged integers and shuffles are implemented here rather than through the
// standard library, whose algorithms may change between Swift releases: committed datasets must be
// reproducible byte for byte.

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
///
/// Small, fast, and good enough for drawing problems; its whole state is one `UInt64`, so it is `Codable`
/// and can be saved in a checkpoint.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    /// The generator's entire state.
    public var state: UInt64

    /// Creates a generator whose stream is fixed by `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function: a bijective avalanche of 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range`, without modulo bias (rejection sampling).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound)) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }  // the full 64-bit range
        let limit = UInt64.max - (UInt64.max % span)
        var draw = next()
        while draw >= limit { draw = next() }
        return range.lowerBound &+ Int(truncatingIfNeeded: draw % span)
    }

    /// A uniform integer in `range`.
    public mutating func int(in range: Range<Int>) -> Int {
        precondition(!range.isEmpty, "int(in:) needs a non-empty range")
        return int(in: range.lowerBound...(range.upperBound - 1))
    }

    /// True with probability one half.
    public mutating func bool() -> Bool {
        next() >> 63 == 1
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    public mutating func unit() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniformly chosen element of a non-empty array.
    public mutating func pick<T>(_ items: [T]) -> T {
        precondition(!items.isEmpty, "pick needs a non-empty array")
        return items[int(in: 0..<items.count)]
    }

    /// Shuffles `items` in place (Fisher-Yates).
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = int(in: 0...i)
            if i != j { items.swapAt(i, j) }
        }
    }

    /// A shuffled copy of `items`.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var copy = items
        shuffle(&copy)
        return copy
    }

    /// `count` distinct elements of `items`, in random order.
    public mutating func sample<T>(_ items: [T], count: Int) -> [T] {
        precondition(count <= items.count, "cannot sample \(count) of \(items.count)")
        return Array(shuffled(items).prefix(count))
    }
}

/// Derives independent seeds for individual problems by hashing, never by `seed + i`.
///
/// reasoning-gym seeds item *i* with `seed + i`, so a training stream seeded one higher than a test set
/// replays that test set shifted by one item. Hashing every coordinate (seed, stream, family, level,
/// index) through SplitMix64's avalanche makes neighbouring items and neighbouring seeds unrelated.
public enum SeedDerivation {
    /// The seed for item `index` of `family` at `level` in the named `stream` ("test", "train", ...).
    public static func itemSeed(seed: UInt64, stream: String, family: String, level: Int, index: Int) -> UInt64 {
        var h = SplitMix64.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        h = SplitMix64.mix(h ^ fnv1a64(stream))
        h = SplitMix64.mix(h ^ fnv1a64(family))
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(level)))
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(index)))
        return h
    }

    /// FNV-1a over the UTF-8 bytes of `text`: a stable string hash (Swift's `Hasher` is seeded per process).
    public static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}
