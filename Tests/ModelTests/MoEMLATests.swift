// Mixture of experts and multi-head latent attention: routing against a reference computed here,
// gradients against central differences with the top-k selection held fixed, cached (absorbed and
// naive) decoding against the full forward, and the DeepseekV3 checkpoint round trip.

import Autograd
import Foundation
import Model
import XCTest

final class MoEMLATests: XCTestCase {
    static func config(moe: Bool = true, qLora: Int = 0, scoring: MoEConfig.Scoring = .sigmoid, norm: Bool = true,
                       balance: MoEConfig.Balance = .biasUpdate, interleave: Bool = true) -> PolicyConfig {
        var c = PolicyConfig(vocabSize: 23, dModel: 16, layers: 2, heads: 2, ffDim: 24, maxContext: 40)
        c.mla = MLAConfig(qLoraRank: qLora, kvLoraRank: 8, qkNopeHeadDim: 6, qkRopeHeadDim: 4, vHeadDim: 5, ropeInterleave: interleave)
        if moe {
            c.moe = MoEConfig(experts: 4, topK: 2, sharedExperts: 1, expertFfDim: 6, scoring: scoring, normTopkProb: norm,
                              routedScalingFactor: 1.5, firstKDense: 1, balance: balance, auxLossCoef: 0.1)
        }
        return c
    }

    func makePolicy(_ c: PolicyConfig, seed: UInt64 = 1, std: Float = 0.3) -> Policy {
        var c = c
        c.initStd = std
        var rng = RNG(seed: seed, stream: "init")
        let p = Policy(config: c, rng: &rng)
        var b = RNG(seed: seed, stream: "bias")  // a nonzero selection bias, so its role is tested
        for m in p.moeLayers { for e in 0..<m.bias.count { m.bias.data[e] = Float(b.normal()) * 0.05 } }
        return p
    }

    func tokens(_ n: Int, seed: UInt64) -> [Int32] { testTokens(n, seed: seed) }

    /// MLA and MoE policies keep the unshared forward when asked to share prompts: their states are
    /// the plain forward's, bit for bit (an MoE layer's statistics count every row's tokens).
    func testMLAAndMoEPoliciesDoNotSharePrompts() {
        for moe in [false, true] {
            let policy = makePolicy(Self.config(moe: moe), std: 0.5)
            XCTAssertFalse(policy.sharesPrefixes)
            let (b, t) = (3, 6)
            let prompt = tokens(3, seed: 7)
            var ids = [Int32](repeating: 0, count: b * t)
            for r in 0..<b { for (i, id) in (prompt + tokens(3, seed: UInt64(20 + r))).enumerated() { ids[r * t + i] = id } }
            let plain = Autograd.noGrad { policy.hidden(ids: ids, batch: b, time: t).array }
            let asked = Autograd.noGrad { policy.hidden(prefixes: SharedPrefixes(ids: ids, batch: b, time: t, lengths: [6, 6, 6])).array }
            XCTAssertEqual(asked, plain, moe ? "MoE" : "MLA")
        }
    }

    // MARK: Routing

    /// The experts and gating weights equal a plain computation of DeepSeek-V3's rule: scores
    /// s = σ(h·Wgᵀ) (or softmax), top-k of s + b, weights s_sel (/Σ s_sel) · routed_scaling_factor.
    func testRoutingPicksTheReferenceExperts() throws {
        for (scoring, norm) in [(MoEConfig.Scoring.sigmoid, true), (.sigmoid, false), (.softmax, true), (.softmax, false)] {
            let policy = makePolicy(Self.config(scoring: scoring, norm: norm), std: 0.5)
            let moe = try XCTUnwrap(policy.moeLayers.first)
            var rng = RNG(seed: 3)
            let (n, c, e, k) = (12, 16, 4, 2)
            let h = Tensor.randn([n, c], rng: &rng)
            let r = Autograd.noGrad { moe.route(h) }
            for t in 0..<n {
                var logits = [Double](repeating: 0, count: e)
                for x in 0..<e { for j in 0..<c { logits[x] += Double(h.data[t * c + j]) * Double(moe.router.data[x * c + j]) } }
                let s: [Double]
                if scoring == .sigmoid {
                    s = logits.map { 1 / (1 + exp(-$0)) }
                } else {
                    let z = logits.map { exp($0 - logits.max()!) }
                    s = z.map { $0 / z.reduce(0, +) }
                }
                let choice = (0..<e).map { s[$0] + Double(moe.bias.data[$0]) }
                let picked = (0..<e).sorted { choice[$0] > choice[$1] || (choice[$0] == choice[$1] && $0 < $1) }.prefix(k)
                XCTAssertEqual(r.experts[(t * k)..<(t * k + k)].map(Int.init), Array(picked), "\(scoring) token \(t)")
                let sum = picked.map { s[$0] }.reduce(0, +)
                for (slot, x) in picked.enumerated() {
                    let w = s[x] / (norm ? sum : 1) * 1.5
                    XCTAssertEqual(Double(r.weights.data[t * k + slot]), w, accuracy: 1e-5, "\(scoring) norm=\(norm) token \(t)")
                }
            }
        }
    }

    /// The bias moves toward equal load: experts above the mean load go down, those below go up.
    func testBiasUpdateMovesTowardEqualLoad() throws {
        let policy = makePolicy(Self.config())
        let moe = try XCTUnwrap(policy.moeLayers.first)
        let before = moe.bias.array
        _ = policy.forward(ids: tokens(20, seed: 4), batch: 2, time: 10)
        Autograd.clearTape()
        let load = moe.lastLoad
        XCTAssertEqual(load.reduce(0, +), 1, accuracy: 1e-9)
        policy.afterOptimizerStep()
        for x in 0..<4 {
            let d = Double(moe.bias.data[x] - before[x])
            if load[x] > 0.25 { XCTAssertLessThan(d, 0) } else if load[x] < 0.25 { XCTAssertGreaterThan(d, 0) }
        }
        let m = policy.routingMetrics
        XCTAssertEqual(m["moe/load_max"], load.max())
        XCTAssertEqual(m["active_params"], Double(policy.config.activeParameterCount))
        XCTAssertLessThan(policy.config.activeParameterCount, policy.config.parameterCount)
    }

    /// parameterCount is arithmetic on the sizes; it must equal what the tensor list (and so a real
    /// policy) holds, for MLA with and without a query rank, with and without experts, tied or not.
    func testParameterCountMatchesTheTensors() {
        for (moe, qLora, tied) in [(false, 0, false), (false, 6, true), (true, 0, false), (true, 6, true)] {
            var c = Self.config(moe: moe, qLora: qLora)
            c.tieEmbeddings = tied
            let listed = c.deepseekTensorSpecs().filter(\.trainable).reduce(0) { $0 + $1.spec.shape.reduce(1, *) }
            XCTAssertEqual(c.parameterCount, listed, "moe \(moe) q_lora \(qLora) tied \(tied)")
            XCTAssertEqual(makePolicy(c).parameters.reduce(0) { $0 + $1.count }, listed)
        }
    }

    // MARK: Gradients

    /// Central differences through the MoE layer (router, every expert, shared experts, input, and
    /// the aux loss), at inputs whose selection margins exceed what a 1e-2 step can move.
    func testMoELayerGradientMatchesFiniteDifferences() throws {
        let policy = makePolicy(Self.config(balance: .auxLoss), std: 0.5)
        let moe = try XCTUnwrap(policy.moeLayers.first)
        var seed: UInt64 = 1, h = Tensor.zeros([1, 1])
        while true {  // a deterministic search for inputs without near-ties in the top-k
            var rng = RNG(seed: seed)
            h = Tensor.randn([6, 16], rng: &rng, requiresGrad: true)
            let s = Autograd.noGrad { moe.route(h).scores }
            var margin = Float.infinity
            for t in 0..<6 {
                let c = (0..<4).map { s.data[t * 4 + $0] + moe.bias.data[$0] }.sorted(by: >)
                margin = min(margin, c[1] - c[2])
            }
            if margin > 0.03 { break }
            seed += 1
        }
        let inputs = [h, moe.router, moe.sharedGate, moe.sharedDown] + moe.gate + moe.up + moe.down
        var rng = RNG(seed: 9)
        let r = Tensor.randn([6, 16], rng: &rng)
        func loss() -> Tensor { (moe.forward(h) * r).sum() + moe.auxLoss! }
        func numericLoss() -> Double {  // accumulated in Double, as GradCheck does: |L| ≈ 80 here
            Autograd.noGrad {
                let y = moe.forward(h)
                return (0..<y.count).reduce(Double(moe.auxLoss!.item)) { $0 + Double(y.data[$1]) * Double(r.data[$1]) }
            }
        }
        for x in inputs { x.zeroGrad() }
        loss().backward()
        let experts = moe.lastExperts
        let step: Float = 1e-2
        for (n, x) in inputs.enumerated() {
            let analytic = x.gradArray
            for i in 0..<x.count {
                let saved = x.data[i]
                x.data[i] = saved + step
                let lp = numericLoss()
                XCTAssertEqual(moe.lastExperts, experts, "the selection must stay fixed")
                x.data[i] = saved - step
                let lm = numericLoss()
                XCTAssertEqual(moe.lastExperts, experts, "the selection must stay fixed")
                x.data[i] = saved
                let numeric = (lp - lm) / Double(2 * step)
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-3 + 1e-2 * abs(numeric), "input \(n) element \(i)")
            }
        }
        XCTAssertTrue(moe.router.gradArray.contains { $0 != 0 }, "gradient reaches the router through the gating weights")
    }

    /// Central differences through a whole MoE + MLA model (q LoRA path, interleaved RoPE, left
    /// padding), sampling every tensor. An element whose perturbation changes a selection is
    /// skipped (the top-k is held fixed by definition); few may be.
    func testGradientThroughTinyMoEMLAModel() {
        for qLora in [0, 6] {
            let policy = makePolicy(Self.config(qLora: qLora, balance: .auxLoss), seed: 2, std: 0.5)
            let (b, t) = (2, 5)
            let ids = tokens(b * t, seed: 3)
            let targets: [Int32] = (0..<(b * t)).map { i in i % t == t - 1 ? -1 : ids[i + 1] }
            func loss() -> Tensor {
                let l = Tensor.logSoftmaxGather(policy.forward(ids: ids, batch: b, time: t, keyStart: [1, 0]), targets: targets).sum()
                return policy.auxiliaryLoss.map { l + $0 } ?? l
            }
            loss().backward()
            let selection = policy.moeLayers.map(\.lastExperts)
            let (checked, skipped) = checkParameterGradients(policy, label: "q_lora \(qLora) ", loss: loss) {
                policy.moeLayers.map(\.lastExperts) == selection
            }
            XCTAssertLessThan(skipped, checked / 10, "too many selection flips: the check would be vacuous")
        }
    }

    // MARK: Cached decoding

    /// MLA's cached decoding (absorbed and naive) equals its full forward position by position,
    /// with left padding and without; the cache holds Rkv + R floats per token per layer.
    func testMLACachedDecodingMatchesFullForward() {
        for (moe, interleave, qLora) in [(true, true, 0), (false, false, 6), (true, true, 6)] {
            let policy = makePolicy(Self.config(moe: moe, qLora: qLora, interleave: interleave))
            for absorb in [true, false] {
                policy.absorbMLA = absorb
                for lengths in [[9, 6, 4], [9, 9]] {
                    let (_, full, cached, keyStart, t) = cachedAndFullLogits(policy, lengths: lengths)
                    let v = policy.config.vocabSize
                    for r in 0..<lengths.count {
                        for i in keyStart[r]..<t {
                            for j in 0..<v {
                                XCTAssertEqual(full.data[(r * t + i) * v + j], cached[(r * t + i) * v + j], accuracy: 1e-4,
                                               "moe \(moe) absorb \(absorb) row \(r) position \(i)")
                            }
                        }
                    }
                }
            }
        }
        let cache = KVCache(config: Self.config(), seqs: 1, capacity: 4, keyStart: [0])
        XCTAssertEqual(cache.bytesPerToken, 2 * (8 + 4) * 4)
        XCTAssertEqual(Self.config().kvBytesPerToken, cache.bytesPerToken)
    }

    /// Rows that stop leave the batch: MLA's latent cache keeps the rest in place, MoE routes what remains.
    func testMLARowsThatStopLeaveTheBatchAndTheRestDecodeAsAlone() {
        checkSampledLogprobsMatchFullForward(makePolicy(Self.config(moe: true, qLora: 6, interleave: true)), stopTokens: [2, 5, 11])
    }

    /// A mixture of experts records each forward's routing and load in its layers, so its batch is never
    /// decoded in slices on several threads at once; MLA alone may be.
    func testMoEBatchesAreNotDecodedInSlices() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        XCTAssertEqual(Sampler.sliceCount(policy: makePolicy(Self.config(moe: true)), prompts: 8, group: 2), 1)
        XCTAssertEqual(Sampler.sliceCount(policy: makePolicy(Self.config(moe: false)), prompts: 8, group: 2), NativeKernels.enabled ? 4 : 1)
    }

    /// The absorbed path (attention in latent space) equals the naive one (re-expanded cache).
    func testAbsorbedDecodingEqualsNaiveDecoding() {
        let policy = makePolicy(Self.config(qLora: 6))
        let (s, tp) = (3, 6)
        let prompt = tokens(s * tp, seed: 8)
        func run(_ absorb: Bool) -> [[Float]] {
            policy.absorbMLA = absorb
            let cache = KVCache(config: policy.config, seqs: s, capacity: 20, keyStart: [0, 2, 4])
            var out = [policy.step(prompt, tokensPerSeq: tp, cache: cache).array]
            for i in 0..<8 { out.append(policy.step(tokens(s, seed: UInt64(20 + i)), tokensPerSeq: 1, cache: cache).array) }
            return out
        }
        let (a, n) = (run(true), run(false))
        for (x, y) in zip(a, n) { for (p, q) in zip(x, y) { XCTAssertEqual(p, q, accuracy: 1e-5) } }
    }

    // MARK: Checkpoints

    /// A MoE + MLA policy saves as a DeepseekV3 folder and loads back bit for bit (bias included).
    func testDeepseekCheckpointRoundTripIsBitExact() throws {
        let tok = CharTokenizer()
        for (qLora, tied, moe) in [(0, false, true), (6, true, true), (0, false, false)] {
            var cfg = Self.config(moe: moe, qLora: qLora)
            cfg.vocabSize = tok.vocabSize
            cfg.tieEmbeddings = tied
            let policy = makePolicy(cfg)
            let dir = try temporaryDirectory()
            try Checkpoint.save(policy: policy, tokenizer: tok, to: dir, metadata: ["step": "3"])
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
            XCTAssertEqual(json["model_type"] as? String, "deepseek_v3")
            XCTAssertEqual(json["architectures"] as? [String], ["DeepseekV3ForCausalLM"])
            let (loaded, _, meta) = try Checkpoint.load(from: dir)
            XCTAssertEqual(loaded.config, PolicyTests.withoutInitStd(policy.config))
            XCTAssertEqual(meta["step"], "3")
            XCTAssertEqual(loaded.namedTensors.map(\.0), policy.namedTensors.map(\.0))
            for ((name, a), (_, b)) in zip(policy.namedTensors, loaded.namedTensors) {
                XCTAssertEqual(a.array.map(\.bitPattern), b.array.map(\.bitPattern), name)
            }
            XCTAssertEqual(loaded.namedParameters.count, policy.namedParameters.count)
        }
    }

    func testMoEWithMHAIsRejectedWithTheReason() {
        var c = Self.config()
        c.mla = nil
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("attention: mla"), "\($0)") }
    }
}
