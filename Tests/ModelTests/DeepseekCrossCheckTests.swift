// Cross-checks of DeepseekV3 (MoE + MLA) policies against transformers itself, both ways: a Ponder
// checkpoint loads strictly as DeepseekV3ForCausalLM with the same logits and the same greedy
// generation as Ponder's KV-cached sampler, and a folder that transformers saved loads in Ponder with
// the same logits. Skipped without a Python that has torch and transformers (see Python.require).
//
// Tolerance: |Δlogit| ≤ 1e-4 · max(1, max |logit|). Both sides compute in float32 with different
// summation orders (OpenBLAS against torch's CPU kernels); observed differences are ~1e-6 relative.

import Autograd
import Foundation
import Model
import TestSupport
import XCTest

final class DeepseekCrossCheckTests: XCTestCase {
    static let repo = Repository.root
    static let script = repo.appendingPathComponent("scripts/hf_check_deepseek.py").path

    func transformersLogits(_ python: Python, _ dir: URL, _ ids: [Int]) throws -> [[Float]] {
        let out = try python.run(arguments: [Self.script, "logits", dir.path, "--ids", ids.map(String.init).joined(separator: ",")])
        return try JSONDecoder().decode([String: [[Float]]].self, from: Data(out.utf8))["logits"]!
    }

    func assertLogitsMatch(_ policy: Policy, _ theirs: [[Float]], _ ids: [Int], file: StaticString = #filePath, line: UInt = #line) {
        let ours = Autograd.noGrad { policy.forward(ids: ids.map(Int32.init), batch: 1, time: ids.count) }
        let v = policy.config.vocabSize
        XCTAssertEqual(theirs.count, ids.count, file: file, line: line)
        let scale = max(1, theirs.flatMap { $0 }.map(abs).max() ?? 1)
        var worst: Float = 0
        for (i, row) in theirs.enumerated() { for j in 0..<v { worst = max(worst, abs(row[j] - ours.data[i * v + j])) } }
        print("DeepseekV3 cross-check: max |Δlogit| \(worst), max |logit| \(scale)")
        XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "max |Δlogit| \(worst) at scale \(scale)", file: file, line: line)
    }

    func testPonderMoEMLACheckpointLoadsInTransformersWithTheSameLogitsAndGreedyTokens() throws {
        let python = try Python.require(["torch", "transformers", "tokenizers"])
        let tokenizer = CharTokenizer()
        for (qLora, tied) in [(0, false), (8, true)] {
            var config = PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 3, heads: 4, ffDim: 48,
                                      maxContext: 64, tieEmbeddings: tied)
            config.mla = MLAConfig(qLoraRank: qLora, kvLoraRank: 16, qkNopeHeadDim: 8, qkRopeHeadDim: 8, vHeadDim: 12)
            config.moe = MoEConfig(experts: 4, topK: 2, sharedExperts: 1, expertFfDim: 16, routedScalingFactor: qLora == 0 ? 1 : 2.5, firstKDense: 1)  // 1 is written 1.0: transformers rejects an int
            config.initStd = 0.25  // wide logits, so argmax ties cannot decide the comparison
            var rng = RNG(seed: UInt64(qLora + 3), stream: "init")
            let policy = Policy(config: config, rng: &rng)
            var b = RNG(seed: 1, stream: "bias")
            for m in policy.moeLayers { for e in 0..<m.bias.count { m.bias.data[e] = Float(b.normal()) * 0.05 } }
            let dir = try temporaryDirectory()
            try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: dir)
            let prompt = try tokenizer.encodePrompt("What is 12+30?")
            assertLogitsMatch(policy, try transformersLogits(python, dir, prompt), prompt)

            let check = Self.repo.appendingPathComponent("scripts/hf_check.py").path
            let output = try python.run(arguments: [check, dir.path, "--prompt", "What is 12+30?", "--max-new", "24"])
            let answer = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
            var sampling = RNG(seed: 0)
            let ours = Sampler.sample(
                policy: policy, prompts: [prompt.map(Int32.init)], group: 1,
                options: SamplingOptions(maxNewTokens: 24, greedy: true), stopTokens: tokenizer.stopTokens,
                padToken: Int32(tokenizer.pad), rng: &sampling)
            XCTAssertEqual(ours[0].tokens.map(Int.init), answer["new_ids"] as? [Int], "q_lora \(qLora)")
        }
    }

    func testTransformersSavedDeepseekV3LoadsInPonderWithTheSameLogits() throws {
        let python = try Python.require(["torch", "transformers"])
        let tokenizer = CharTokenizer()
        let dir = try temporaryDirectory()
        try python.run(arguments: [Self.script, "make", dir.path, "--vocab", "\(tokenizer.vocabSize)", "--seed", "3"])
        try tokenizer.save(to: dir.appendingPathComponent("tokenizer.json"))
        let (policy, _, _) = try Checkpoint.load(from: dir)
        XCTAssertEqual(policy.config.mla?.qLoraRank, 12)
        XCTAssertEqual(policy.config.moe?.experts, 4)
        XCTAssertEqual(policy.config.moe?.routedScalingFactor, 2.5)
        XCTAssertTrue(policy.moeLayers[0].bias.array.contains { $0 != 0 }, "the selection bias is loaded")
        let ids = try tokenizer.encodePrompt("Sort 5 3 9 1, then add 7+8.")
        assertLogitsMatch(policy, try transformersLogits(python, dir, ids), ids)
    }
}
