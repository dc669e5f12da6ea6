import Autograd
import Foundation
import Model
import XCTest

/// LoRA adapters: what PEFT's initialisation promises (no change until trained), a frozen base, exact
/// gradients for the adapters, cached decoding equal to the full forward, the base policy with the
/// adapters off, and merging.
final class LoRATests: XCTestCase {
    static let config = PolicyConfig(vocabSize: 23, dModel: 16, layers: 2, heads: 2, ffDim: 24, maxContext: 40)

    func makePolicy(qkvBias: Bool = false) -> Policy {
        var c = Self.config
        c.initStd = 0.3
        c.qkvBias = qkvBias
        var rng = RNG(seed: 1, stream: "init")
        return Policy(config: c, rng: &rng)
    }

    /// Adapters with B ≠ 0 (as after training), so that they change the outputs.
    func adapted(_ lora: LoRAConfig = LoRAConfig(rank: 4, alpha: 8), qkvBias: Bool = false) throws -> Policy {
        let policy = makePolicy(qkvBias: qkvBias)
        var rng = RNG(seed: 7)
        try policy.addLoRA(lora) { _, shape in Tensor.randn(shape, std: 0.3, rng: &rng, requiresGrad: true) }
        return policy
    }

    func logits(_ policy: Policy) -> [Float] {
        Autograd.noGrad { policy.forward(ids: testTokens(12, seed: 3), batch: 2, time: 6).array }
    }

    /// PEFT's init (A uniform, B zero) leaves the logits as they were; only the adapters train, under
    /// PEFT's names, two per target module per layer.
    func testFreshAdaptersChangeNothingAndOnlyTheyTrain() throws {
        let policy = makePolicy()
        let before = logits(policy)
        var rng = RNG(seed: 2)
        try policy.addLoRA(LoRAConfig(rank: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"]), rng: &rng)
        XCTAssertEqual(logits(policy), before)
        let names = policy.namedParameters.map(\.0)
        XCTAssertEqual(names.count, 2 * 3 * 2)
        XCTAssertTrue(names.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), "\(names)")
        XCTAssertTrue(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), "\(names)")
        XCTAssertTrue(policy.namedTensors.allSatisfy { !$0.1.requiresGrad }, "the base must be frozen")
        let a = try XCTUnwrap(policy.loraTensors.first { $0.0.hasSuffix("q_proj.lora_A.weight") }?.1)
        XCTAssertEqual(a.shape, [4, 16])
        XCTAssertTrue(a.array.allSatisfy { abs($0) <= 0.25 } && a.array.contains { $0 != 0 }, "A ~ U(±1/√16)")
    }

    /// Finite differences on every adapter; the frozen base gets no gradient at all.
    func testAdapterGradientsMatchFiniteDifferencesAndTheBaseGetsNone() throws {
        let policy = try adapted(qkvBias: true)
        let ids = testTokens(12, seed: 4)
        let targets = testTokens(12, seed: 9)
        func loss() -> Tensor {
            Tensor.logSoftmaxGather(policy.forward(ids: ids, batch: 2, time: 6), targets: targets).mean() * -1
        }
        loss().backward()
        let (checked, _) = checkParameterGradients(policy, label: "lora ", loss: loss)
        XCTAssertEqual(checked, 4 * 2 * 7 * 2)
        for (name, t) in policy.namedTensors { XCTAssertFalse(t.hasGrad, "\(name) got a gradient") }
    }

    /// Cached decoding (merged weights, packed once) gives the full forward's logits.
    func testCachedDecodingWithAdaptersMatchesTheFullForward() throws {
        let policy = try adapted()
        let lengths = [9, 6, 4]
        let (_, full, cached, keyStart, t) = cachedAndFullLogits(policy, lengths: lengths)
        let v = Self.config.vocabSize
        for r in 0..<lengths.count {
            for i in keyStart[r]..<t {
                for j in 0..<v { XCTAssertEqual(full.data[(r * t + i) * v + j], cached[(r * t + i) * v + j], accuracy: 1e-4) }
            }
        }
    }

    /// With the adapters off the policy is its base (LoRA's KL reference); merged, it gives the adapted
    /// logits with no adapters left.
    func testAdaptersOffIsTheBaseAndMergingKeepsTheLogits() throws {
        let base = logits(makePolicy())
        let policy = try adapted()
        let adaptedLogits = logits(policy)
        XCTAssertNotEqual(adaptedLogits, base)
        XCTAssertEqual(policy.withoutAdapters { logits(policy) }, base)
        policy.mergeLoRA()
        XCTAssertNil(policy.lora)
        XCTAssertTrue(policy.loraTensors.isEmpty)
        for (a, b) in zip(logits(policy), adaptedLogits) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    /// Merging gives each weight exactly W + (B·A)·(α/r), rounded as the tensor ops round it (the merge
    /// works in place to spare the temporaries).
    func testMergedWeightsAreWPlusScaledBAExactly() throws {
        let policy = try adapted()
        let named = Dictionary(uniqueKeysWithValues: policy.namedTensors.map { ($0.0, $0.1) })
        let lora = Dictionary(uniqueKeysWithValues: policy.loraTensors.map { ($0.0, $0.1) })
        var expected: [String: [Float]] = [:]
        for (name, a) in lora where name.hasSuffix(".lora_A.weight") {
            let module = String(name.dropFirst("base_model.model.".count).dropLast(".lora_A.weight".count))
            let w = try XCTUnwrap(named[module + ".weight"], module)
            let b = try XCTUnwrap(lora[name.replacingOccurrences(of: "lora_A", with: "lora_B")])
            expected[module + ".weight"] = Autograd.noGrad { (w.detached() + Tensor.matmul(b, a) * Float(2)).array }  // α/r = 8/4
        }
        XCTAssertEqual(expected.count, 2 * 7)
        policy.mergeLoRA()
        for (name, values) in expected { XCTAssertEqual(named[name]!.array, values, name) }
    }

    func testBadSettingsNameTheKey() {
        let policy = makePolicy()
        var rng = RNG(seed: 1)
        for (cfg, key) in [(LoRAConfig(rank: 4, dropout: 0.1), "lora.dropout"), (LoRAConfig(rank: 4, targetModules: ["qproj"]), "lora.target_modules"),
                           (LoRAConfig(rank: -1), "lora.rank")] {
            XCTAssertThrowsError(try policy.addLoRA(cfg, rng: &rng)) { XCTAssertTrue("\($0)".contains(key), "\($0)") }
        }
    }
}
