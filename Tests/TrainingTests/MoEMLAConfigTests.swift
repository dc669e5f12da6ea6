import Autograd
import Foundation
import Model
import Runs
import Training
import TestSupport
import XCTest

/// model.attention, model.mla and model.moe: the example config, the policy they make, and errors
/// that name the key.
final class MoEMLAConfigTests: XCTestCase {
    static let repo = Repository.root

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
        assertError(mla + ["model.mla.kv_lora_rank=0"], key: "model.mla.kv_lora_rank", mentions: "in 1...65536")
    }

    /// The trainer on a tiny MoE + MLA policy, for each balancing choice: SFT loss falls, every
    /// parameter moves, expert load and active parameters are logged, the selection bias moves only
    /// under bias_update, and the checkpoint is a DeepseekV3 folder that loads back.
    func testTrainerLearnsWithMoEAndMLA() throws {
        for balance in ["bias_update", "aux_loss"] {
            let run = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-run-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: run) }
            let cfg = try ConfigLoader.parse("""
                seed: 3
                threads: 1
                model:
                  d_model: 32
                  layers: 2
                  heads: 2
                  ff_dim: 64
                  max_context: 64
                  attention: mla
                  mla: {q_lora_rank: 8, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8}
                  moe: {experts: 4, top_k: 2, expert_ff_dim: 16, first_k_dense: 1, balance: \(balance), bias_update_rate: 0.01, aux_loss_coef: 0.01}
                data: {families: [add], datasets: "\(TrainerTests.datasets)"}
                sft: {steps: 30, num_traces: 16, levels: [1], batch_size: 8, learning_rate: 3.0e-3}
                grpo: {steps: 2, prompts_per_step: 2, num_generations: 4, max_completion_length: 40}
                optimizer: {warmup_steps: 2}
                eval: {every: 0, levels: [1], limit_per_level: 4}
                checkpoint: {every: 0}
                """)
            var rng = RNG(seed: cfg.seed, stream: "init")
            let initial = Policy(config: cfg.policyConfig(vocabSize: CharTokenizer().vocabSize), rng: &rng)
            let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
            try trainer.run()
            let rows = try RunReader(runDirectory: run).metrics().rows
            let sft = rows.filter { $0.stage == "sft" }
            let loss = sft.compactMap { $0.values["loss"] }
            XCTAssertEqual(loss.count, 30, balance)
            XCTAssertLessThan(loss.suffix(5).reduce(0, +) / 5, 0.7 * loss.prefix(5).reduce(0, +) / 5, "SFT loss must fall (\(balance))")
            for row in rows where row.stage != "eval" {
                XCTAssertNotNil(row.values["moe/load_max"], "\(balance) step \(row.step)")
                XCTAssertEqual(row.values["active_params"], Double(initial.config.activeParameterCount))
            }
            for ((name, a), (_, b)) in zip(initial.namedParameters, trainer.policy.namedParameters) {
                XCTAssertNotEqual(a.array, b.array, "\(name) never moved (\(balance))")
            }
            let bias = trainer.policy.moeLayers[0].bias.array
            XCTAssertEqual(bias.contains { $0 != 0 }, balance == "bias_update", "\(balance): \(bias)")
            let final = try Checkpoint.load(from: Checkpoints.directory(run).appendingPathComponent("sft-final"))
            XCTAssertEqual(final.policy.config.moe?.experts, 4)
        }
    }
}
