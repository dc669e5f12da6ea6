// Seeded randomness with named streams (STYLE.md §9): one config seed feeds separate generators
// ("init", "data", "sampling", …), each passed explicitly and inout. Never the system RNG.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny state, fast, passes BigCrush; enough for ML sampling.
public struct RNG: Codable, Equatable, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for the named stream of `seed`: different names give independent sequences.
    public init(seed: UInt64, stream: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the name, then mixed with the seed
        for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        var mixer = RNG(seed: seed ^ h)
        state = mixer.next()
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

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
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }
}

@inline(__always) func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Foundation.cos(x) }

import Foundation
