import Foundation
import Tasks
import XCTest

/// The seeded RNG, seed derivation, SHA-256 and the JSON writer: the pieces reproducibility rests on.
final class FoundationTests: XCTestCase {
    func testSplitMix64MatchesReferenceOutputs() {
        // The first outputs of Vigna's reference splitmix64.c for seed 1234567.
        var rng = SplitMix64(seed: 1_234_567)
        let expected: [UInt64] = [
            6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            4_593_380_528_125_082_431, 16_408_922_859_458_223_821,
        ]
        XCTAssertEqual((0..<5).map { _ in rng.next() }, expected)
    }

    func testRangedIntegersStayInRangeAndCoverIt() {
        var rng = SplitMix64(seed: 7)
        var seen = Set<Int>()
        for _ in 0..<5000 {
            let value = rng.int(in: -3...3)
            XCTAssertTrue((-3...3).contains(value))
            seen.insert(value)
        }
        XCTAssertEqual(seen.count, 7)
        XCTAssertEqual(rng.int(in: 5...5), 5)
        var shuffled = Array(0..<50)
        rng.shuffle(&shuffled)
        XCTAssertEqual(shuffled.sorted(), Array(0..<50))
        XCTAssertNotEqual(shuffled, Array(0..<50))
    }

    func testItemSeedsAreNotSeedPlusIndex() {
        // reasoning-gym's seed+i makes (seed, i+1) and (seed+1, i) the same item; hashing must not.
        let a = SeedDerivation.itemSeed(seed: 10, stream: "test", family: "add", level: 1, index: 1)
        let b = SeedDerivation.itemSeed(seed: 11, stream: "test", family: "add", level: 1, index: 0)
        XCTAssertNotEqual(a, b)
        let train = SeedDerivation.itemSeed(seed: 10, stream: "train", family: "add", level: 1, index: 1)
        XCTAssertNotEqual(a, train)
        let otherFamily = SeedDerivation.itemSeed(seed: 10, stream: "test", family: "mul", level: 1, index: 1)
        XCTAssertNotEqual(a, otherFamily)
        XCTAssertEqual(a, SeedDerivation.itemSeed(seed: 10, stream: "test", family: "add", level: 1, index: 1))
        var seeds = Set<UInt64>()
        for seed in 0..<20 { for index in 0..<20 { seeds.insert(SeedDerivation.itemSeed(seed: UInt64(seed), stream: "test", family: "add", level: 1, index: index)) } }
        XCTAssertEqual(seeds.count, 400)
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex("".utf8), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            SHA256.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(
            SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Lengths around the padding boundary (55, 56, 64 bytes) must all differ and be well formed.
        let digests = [55, 56, 63, 64, 65].map { SHA256.hex([UInt8](repeating: 0x62, count: $0)) }
        XCTAssertEqual(Set(digests).count, 5)
        XCTAssertTrue(digests.allSatisfy { $0.count == 64 })
    }

    func testJSONWriterIsCompactOrderedAndEscaped() {
        let value = JSONValue.object([
            ("b", .int(-3)), ("a", .string("q\"uote\\ new\nline\ttab \u{01} /")), ("list", .array([.int(1), .null, .bool(true)])),
        ])
        XCTAssertEqual(value.compact, #"{"b":-3,"a":"q\"uote\\ new\nline\ttab \u0001 /","list":[1,null,true]}"#)
        let decoded = try! JSONSerialization.jsonObject(with: Data(value.compact.utf8)) as! [String: Any]
        XCTAssertEqual(decoded["a"] as? String, "q\"uote\\ new\nline\ttab \u{01} /")
        XCTAssertEqual(JSONValue.object([("k", .array([.int(1), .int(2)]))]).pretty, "{\n  \"k\": [1,2]\n}")
    }
}
