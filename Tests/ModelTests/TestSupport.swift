import Autograd
import Foundation
import Model
import XCTest

/// A fresh, empty directory.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-model-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

extension XCTestCase {
    /// A fresh, empty directory, removed when the test ends.
    func temporaryDirectory() throws -> URL {
        let url = try makeTemporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}

/// A seeded character-level policy for the command-line tests (d=16, 2 layers, 40 positions), with
/// init_std 0.3 so that what it samples depends visibly on every weight.
func tinyCharPolicy() -> (policy: Policy, tokenizer: CharTokenizer) {
    let tokenizer = CharTokenizer()
    var cfg = PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 16, layers: 2, heads: 2, ffDim: 24, maxContext: 40)
    cfg.initStd = 0.3
    var rng = RNG(seed: 1, stream: "init")
    return (Policy(config: cfg, rng: &rng), tokenizer)
}

/// `n` seeded token ids in 3..<23 (no specials).
func testTokens(_ n: Int, seed: UInt64) -> [Int32] {
    var rng = RNG(seed: seed)
    return (0..<n).map { _ in Int32(3 + rng.int(below: 20)) }
}

/// Rows of `lengths` seeded tokens, left-padded to the longest: the full forward's logits (keyStart
/// nil when no row is padded), and the logits of a 5-token prefill then one-token cached steps, at
/// every slot ((B·T, V) row-major; pad slots of `cached` are compared by no one).
func cachedAndFullLogits(_ policy: Policy, lengths: [Int]) -> (ids: [Int32], full: Tensor, cached: [Float], keyStart: [Int], t: Int) {
    let t = lengths.max()!, b = lengths.count, v = policy.config.vocabSize, prefill = 5
    var ids = [Int32](repeating: 0, count: b * t)
    let keyStart = lengths.map { t - $0 }
    for (r, len) in lengths.enumerated() {
        let seq = testTokens(len, seed: UInt64(r + 10))
        for i in 0..<len { ids[r * t + keyStart[r] + i] = seq[i] }
    }
    let padded = keyStart.contains { $0 > 0 }
    let full = Autograd.noGrad { policy.forward(ids: ids, batch: b, time: t, keyStart: padded ? keyStart : nil) }
    let cache = KVCache(config: policy.config, seqs: b, capacity: t, keyStart: keyStart)
    var cached = [Float](repeating: 0, count: b * t * v)
    var chunk = [Int32]()
    for r in 0..<b { chunk += ids[(r * t)..<(r * t + prefill)] }
    let first = policy.step(chunk, tokensPerSeq: prefill, cache: cache, allPositions: true)
    for r in 0..<b { for i in 0..<prefill { for j in 0..<v { cached[(r * t + i) * v + j] = first.data[(r * prefill + i) * v + j] } } }
    for i in prefill..<t {
        let step = policy.step((0..<b).map { ids[$0 * t + i] }, tokensPerSeq: 1, cache: cache)
        for r in 0..<b { for j in 0..<v { cached[(r * t + i) * v + j] = step.data[r * v + j] } }
    }
    return (ids, full, cached, keyStart, t)
}

/// Central differences on 4 seeded elements of every parameter tensor of `policy`, against the
/// gradients already in them (the caller has run `loss().backward()`). Float32 forward, h = 1e-2,
/// smooth O(1) functions: tolerance 3e-3 + 2% of the numeric value, as `GradCheck`. An element is
/// skipped when `valid()` is false after either perturbed loss (an MoE selection flipped).
/// Returns how many elements were checked and skipped.
@discardableResult
func checkParameterGradients(_ policy: Policy, label: String = "", loss: () -> Tensor, valid: () -> Bool = { true },
                             file: StaticString = #filePath, line: UInt = #line) -> (checked: Int, skipped: Int) {
    var rng = RNG(seed: 5)
    let h: Float = 1e-2
    var checked = 0, skipped = 0
    for (name, p) in policy.namedParameters {
        let analytic = p.gradArray
        for _ in 0..<4 {
            let i = rng.int(below: p.count)
            let saved = p.data[i]
            p.data[i] = saved + h
            let lp = Autograd.noGrad { Double(loss().item) }
            let validPlus = valid()
            p.data[i] = saved - h
            let lm = Autograd.noGrad { Double(loss().item) }
            let validMinus = valid()
            p.data[i] = saved
            guard validPlus && validMinus else {
                skipped += 1
                continue
            }
            checked += 1
            let numeric = (lp - lm) / Double(2 * h)
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 3e-3 + 2e-2 * abs(numeric), "\(label)\(name)[\(i)]",
                           file: file, line: line)
        }
    }
    return (checked, skipped)
}

/// Samples 3 prompts × 4 completions at temperature 0.8 with `stopTokens` common enough that rows end
/// at different steps (each finished row leaves the batch, and the cache keeps the rest), then checks
/// each completion's logprobs against the full forward over its prompt and tokens: a row read from
/// another row's cache slots or with another row's padding would not match.
func checkSampledLogprobsMatchFullForward(_ policy: Policy, stopTokens: Set<Int32>,
                                          file: StaticString = #filePath, line: UInt = #line) {
    let prompts = [testTokens(5, seed: 31), testTokens(2, seed: 32), testTokens(7, seed: 33)]
    var rng = RNG(seed: 4, stream: "sampling")
    let opts = SamplingOptions(temperature: 0.8, maxNewTokens: 12)
    let out = Sampler.sample(policy: policy, prompts: prompts, group: 4, options: opts, stopTokens: stopTokens, padToken: 0, rng: &rng)
    let lengths = out.map(\.tokens.count)
    XCTAssertGreaterThanOrEqual(Set(lengths).count, 3, "rows must end at different steps, or nothing leaves the batch: \(lengths)", file: file, line: line)
    XCTAssertTrue(out.contains { !$0.truncated } && out.contains { $0.truncated }, "some rows stop, some run to the end: \(lengths)", file: file, line: line)
    for comp in out {
        let seq = prompts[comp.prompt] + comp.tokens, n = prompts[comp.prompt].count
        let logits = Autograd.noGrad { policy.forward(ids: seq, batch: 1, time: seq.count) * (1 / Float(0.8)) }
        let targets: [Int32] = (0..<seq.count).map { $0 >= n - 1 && $0 < seq.count - 1 ? seq[$0 + 1] : -1 }
        let lp = Autograd.noGrad { Tensor.logSoftmaxGather(logits, targets: targets) }
        for (k, x) in comp.logprobs.enumerated() {
            XCTAssertEqual(x, lp.data[n - 1 + k], accuracy: 1e-4, "prompt \(comp.prompt) token \(k)", file: file, line: line)
        }
    }
}
