// Seeded randomness with named streams (STYLE.md §9): one config seed feeds separate generators
// ("init", "data", "sampling", …), each passed explicitly and inout. Never the system RNG. Ranged
// integers and shuffles are implemented here rather than through the standard library, whose
// algorithms may change between Swift releases: committed datasets must be reproducible byte for byte.

import Foundation

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014): tiny
/// state, fast, passes BigCrush; its whole state is one `UInt64`, so it is `Codable` and saved in
/// checkpoints. `RNG` is the same type under the name the tensor code uses.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    /// The generator's entire state.
    public var state: UInt64

    /// Creates a generator whose stream is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// A generator for the named stream of `seed`: different names give independent sequences.
    public init(seed: UInt64, stream: String) {
        var mixer = SplitMix64(seed: seed ^ FNV1a.hash(stream))
        state = mixer.next()
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function: a bijective avalanche of 64 bits.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: Tensor code's draws (init, sampling, SFT batches)

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform integer in 0..<n (n > 0), without modulo bias.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        let threshold = (0 &- bound) % bound
        while true {
            let r = next()
            if r >= threshold { return Int(r % bound) }
        }
    }

    /// Standard normal by Box-Muller (one of the pair; simple and deterministic).
    public mutating func normal() -> Double {
        let u1 = Swift.max(uniform(), 0x1.0p-60)
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    // MARK: Task generators' draws (a different rejection rule, kept so datasets stay byte for byte)

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
    public mutating func bool() -> Bool { next() >> 63 == 1 }

    /// A uniform `Double` in [0, 1) with 53 random bits (the same draw as `uniform`).
    public mutating func unit() -> Double { uniform() }

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

/// The generator of the tensor code (init, sampling, batches): SplitMix64.
public typealias RNG = SplitMix64

/// FNV-1a, 64-bit: a stable hash of bytes (Swift's `Hasher` is seeded per process), for stream names,
/// item seeds and the cross-rank agreement check.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    /// Adds `bytes` to the hash.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }

    /// Adds the UTF-8 bytes of `text`.
    public mutating func add(_ text: String) {
        for b in text.utf8 { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }

    /// Adds `count` floats' bytes.
    public mutating func add(_ p: UnsafePointer<Float>, count: Int) {
        add(UnsafeRawBufferPointer(start: p, count: count * 4))
    }

    /// The hash of the UTF-8 bytes of `text`.
    public static func hash(_ text: String) -> UInt64 {
        var h = FNV1a()
        h.add(text)
        return h.value
    }
}
