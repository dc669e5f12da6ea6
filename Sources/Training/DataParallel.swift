// Data-parallel generation: every rank draws the same problems, samples and scores its share of the
// groups, and then every rank holds every group (tokens, logprobs and rewards are exchanged; the
// text is decoded again from the tokens). Advantages, curriculum updates, dynamic sampling and
// reward metrics then run on the whole batch, identically on every rank, exactly as in one process.
// The exchange is small: a few bytes per generated token.

import Autograd
import Foundation
import Model
import Tasks

extension GRPOStep {
    /// Samples and scores G completions for each of `problems` (the same list on every rank), this
    /// rank generating the groups `communicator.share(problems.count)`, group i drawing from
    /// `stream(i)` alone. Returns every group's completions, in problem order, on every rank.
    public func generate(policy: Policy, problems: [Problem], communicator: Communicator,
                         stream: (Int) -> RNG) throws -> [ScoredCompletion] {
        let mine = communicator.share(problems.count)
        var rngs = mine.map(stream)
        var local = mine.isEmpty ? [] : try generate(policy: policy, problems: Array(problems[mine]), rngs: &rngs)
        for i in local.indices { local[i].completion.prompt += mine.lowerBound }  // index into `problems`
        guard communicator.size > 1 else { return local }
        var w = ByteWriter()
        for sc in local { w.write(sc) }
        let g = config.grpo.numGenerations
        var out: [ScoredCompletion] = []
        out.reserveCapacity(problems.count * g)
        for (r, bytes) in communicator.allGather(w.bytes).enumerated() {
            if r == communicator.rank {
                out += local
                continue
            }
            var reader = ByteReader(bytes)
            let theirs = Communicator.share(problems.count, rank: r, size: communicator.size)
            for p in theirs {
                for _ in 0..<g {
                    let c = try reader.readCompletion(prompt: p)
                    let rewardValues = try reader.readDoubles()
                    let total = try reader.readDouble()
                    guard rewardValues.count == rewards.functions.count else {
                        throw DistributedError(message: "rank \(r) scored \(rewardValues.count) rewards, this rank has \(rewards.functions.count): the ranks run different configs")
                    }
                    let scores = RewardScores(values: zip(rewards.functions, rewardValues).map { ($0.name, $1) }, total: total)
                    out.append(ScoredCompletion(problem: problems[p], completion: c,
                                                text: tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true), rewards: scores))
                }
            }
        }
        return out
    }
}

/// Little-endian packing of the completions that ranks exchange.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func write<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { bytes += $0 } }
    mutating func write(_ x: Double) { write(x.bitPattern) }

    mutating func write(_ sc: ScoredCompletion) {
        let c = sc.completion
        write(UInt32(c.tokens.count))
        for t in c.tokens { write(t) }
        for l in c.logprobs { write(l.bitPattern) }
        write(UInt8(c.truncated ? 1 : 0))
        write(UInt32(sc.rewards.values.count))
        for v in sc.rewards.values { write(v.value) }
        write(sc.rewards.total)
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard at + n <= bytes.count else {
            throw DistributedError(message: "a rank sent \(bytes.count) bytes, fewer than its completions need: the ranks run different configs")
        }
        var x: T = 0
        withUnsafeMutableBytes(of: &x) { $0.copyBytes(from: bytes[at..<(at + n)]) }
        at += n
        return T(littleEndian: x)
    }

    mutating func readDouble() throws -> Double { Double(bitPattern: try read(UInt64.self)) }

    mutating func readDoubles() throws -> [Double] {
        let n = Int(try read(UInt32.self))
        return try (0..<n).map { _ in try readDouble() }
    }

    mutating func readCompletion(prompt: Int) throws -> Completion {
        let n = Int(try read(UInt32.self))
        let tokens = try (0..<n).map { _ in try read(Int32.self) }
        let logprobs = try (0..<n).map { _ in Float(bitPattern: try read(UInt32.self)) }
        let truncated = try read(UInt8.self) != 0
        return Completion(prompt: prompt, tokens: tokens, logprobs: logprobs, truncated: truncated)
    }
}
