import Foundation
import Model
import Training
import XCTest

/// model.attention, model.mla and model.moe: the example config, the policy they make, and errors
/// that name the key.
final class MoEMLAConfigTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testExampleConfigMakesAnMoEMLAPolicy() throws {
        let c = try ConfigLoader.load(Self.repo.appendingPathComponent("configs/moe-mla-tiny.yaml"))
        let p = c.policyConfig(vocabSize: 103)
        XCTAssertEqual(p.mla, MLAConfig(qLoraRank: 0, kvLoraRank: 32, qkNopeHeadDim: 16, qkRopeHeadDim: 16, vHeadDim: 16))
        XCTAssertEqual(p.moe?.experts, 8)
        XCTAssertEqual(p.moe?.topK, 2)
        XCTAssertEqual(p.moe?.balance, .biasUpdate)
        XCTAssertNoThrow(try p.validate())
        XCTAssertLessThan(p.activeParameterCount, p.parameterCount)
        XCTAssertEqual(p.kvBytesPerToken, 3 * (32 + 16) * 4)  // MHA at d_model 64: 3 · 2 · 64 · 4
        // The default stays a plain Llama.
        XCTAssertNil(TrainConfig().policyConfig(vocabSize: 103).mla)
        XCTAssertNil(TrainConfig().policyConfig(vocabSize: 103).moe)
    }

    func assertError(_ overrides: [String], key: String, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ConfigLoader.parse("", file: "x.yaml", overrides: overrides), file: file, line: line) { e in
            guard let e = e as? ConfigError else { return XCTFail("not a ConfigError: \(e)", file: file, line: line) }
            XCTAssertEqual(e.key, key, file: file, line: line)
            XCTAssertTrue("\(e)".contains(mentions), "\(e)", file: file, line: line)
        }
    }

    func testBadValuesNameTheKey() {
        assertError(["model.attention=gqa"], key: "model.attention", mentions: "use mha or mla")
        assertError(["model.moe.experts=8"], key: "model.moe.experts", mentions: "needs model.attention: mla")
        let mla = ["model.attention=mla", "model.moe.experts=4"]
        assertError(mla + ["model.moe.top_k=5"], key: "model.moe.top_k", mentions: "1...model.moe.experts (4)")
        assertError(mla + ["model.moe.scoring=relu"], key: "model.moe.scoring", mentions: "sigmoid or softmax")
        assertError(mla + ["model.moe.balance=loss"], key: "model.moe.balance", mentions: "bias_update, aux_loss or none")
        assertError(mla + ["model.moe.first_k_dense=4"], key: "model.moe.first_k_dense", mentions: "0..<model.layers")
        assertError(mla + ["model.mla.qk_rope_head_dim=7"], key: "model.mla.qk_rope_head_dim", mentions: "even")
        assertError(mla + ["model.mla.kv_lora_rank=0"], key: "model.mla.kv_lora_rank", mentions: "positive")
    }
}
