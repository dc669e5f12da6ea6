// The policy with grouped-query attention (K < H kv heads), q/k/v biases (Qwen2) and a head size
// that is not d_model / heads: gradients against central differences, and the KV-cached sampler
// (which caches K heads, not H) against the recorded forward, with and without left padding.

import Autograd
import Foundation
import Model
import XCTest

final class GQAPolicyTests: XCTestCase {
    static let config: PolicyConfig = {
        var c = PolicyConfig(vocabSize: 23, dModel: 16, layers: 2, heads: 4, ffDim: 24, maxContext: 40)
        c.kvHeads = 2
        c.headSize = 6
        c.qkvBias = true
        return c
    }()

    func makePolicy(_ config: PolicyConfig = config, std: Float = 0.3) -> Policy {
        var c = config
        c.initStd = std
        var rng = RNG(seed: 3, stream: "init")
        let policy = Policy(config: c, rng: &rng)
        var brng = RNG(seed: 4)
        for (name, p) in policy.namedParameters where name.hasSuffix(".bias") {  // biases start at 0; make them matter
            for i in 0..<p.count { p.data[i] = Float(brng.normal()) * 0.5 }
        }
        return policy
    }

    func tokens(_ n: Int, seed: UInt64) -> [Int32] { testTokens(n, seed: seed) }

    func testShapesNamesAndCacheSize() {
        let policy = makePolicy()
        let named = Dictionary(uniqueKeysWithValues: policy.namedParameters.map { ($0.0, $0.1.shape) })
        XCTAssertEqual(named["model.layers.0.self_attn.q_proj.weight"], [24, 16])
        XCTAssertEqual(named["model.layers.0.self_attn.k_proj.weight"], [12, 16])
        XCTAssertEqual(named["model.layers.0.self_attn.v_proj.bias"], [12])
        XCTAssertEqual(named["model.layers.0.self_attn.o_proj.weight"], [16, 24])
        XCTAssertNil(named["model.layers.0.self_attn.o_proj.bias"])
        XCTAssertEqual(policy.parameters.reduce(0) { $0 + $1.count }, Self.config.parameterCount)
        let cache = KVCache(config: Self.config, seqs: 1, capacity: 8, keyStart: [0])
        XCTAssertEqual(cache.bytesPerToken, 2 * 2 * 2 * 6 * 4, "K·D per layer for keys and values, not H·D")
        XCTAssertThrowsError(try { var c = Self.config; c.kvHeads = 3; try c.validate() }())
    }

    func testCachedDecodingMatchesFullForwardWithAndWithoutPadding() {
        let policy = makePolicy()
        let v = Self.config.vocabSize
        for lengths in [[9, 9], [9, 6, 4]] {
            let (_, full, cached, keyStart, t) = cachedAndFullLogits(policy, lengths: lengths)
            let b = lengths.count
            for r in 0..<b {
                for i in keyStart[r]..<t {
                    for j in 0..<v {
                        XCTAssertEqual(full.data[(r * t + i) * v + j], cached[(r * t + i) * v + j], accuracy: 1e-5, "lengths \(lengths) row \(r) pos \(i)")
                    }
                }
            }
        }
    }

    /// GQA must equal multi-head attention whose kv heads are the GQA kv heads repeated (HF's repeat_kv).
    func testGQAEqualsMHAWithRepeatedKVHeads() {
        let gqa = makePolicy()
        var mhaConfig = Self.config
        mhaConfig.kvHeads = nil
        let rep = Self.config.heads / Self.config.kvHeadCount, d = Self.config.headDim
        let source = Dictionary(uniqueKeysWithValues: gqa.namedParameters.map { ($0.0, $0.1) })
        let mha = Policy(config: mhaConfig) { name, shape in
            let t = source[name]!
            guard name.contains("k_proj") || name.contains("v_proj") else { return Tensor(shape: shape, t.array) }
            let rowWidth = t.shape.count == 2 ? t.shape[1] : 1
            var out: [Float] = []
            for h in 0..<Self.config.heads {  // query head h reads kv head h / rep
                let kvh = h / rep
                out += t.array[(kvh * d * rowWidth)..<((kvh + 1) * d * rowWidth)]
            }
            return Tensor(shape: shape, out)
        }
        let ids = tokens(7, seed: 2)
        let a = Autograd.noGrad { gqa.forward(ids: ids, batch: 1, time: 7) }
        let b = Autograd.noGrad { mha.forward(ids: ids, batch: 1, time: 7) }
        for i in 0..<a.count { XCTAssertEqual(a.data[i], b.data[i], accuracy: 1e-5) }
    }

    func testGradientThroughGQAModel() {
        var cfg = Self.config
        cfg.tieEmbeddings = true
        let policy = makePolicy(cfg, std: 0.5)
        let (b, t) = (2, 5)
        let ids = tokens(b * t, seed: 3)
        let targets: [Int32] = (0..<(b * t)).map { i in i % t == t - 1 ? -1 : ids[i + 1] }
        func loss() -> Tensor {
            Tensor.logSoftmaxGather(policy.forward(ids: ids, batch: b, time: t, keyStart: [1, 0]), targets: targets).sum()
        }
        loss().backward()
        checkParameterGradients(policy, loss: loss)
    }
}
