// A run with LoRA adapters (model.lora): only the adapters move, the KL reference is the frozen base,
// checkpoints carry the adapters in PEFT's files, and a stopped run resumes to exactly the metrics of
// an uninterrupted one.

import Autograd
import Foundation
import Model
import Runs
import Tasks
import Training
import XCTest

final class LoRATrainingTests: XCTestCase {
    func config() throws -> TrainConfig {
        var cfg = try TrainerTests.tinyConfig()
        cfg.model.lora = LoRAConfig(rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj", "up_proj"])
        cfg.sft.learningRate = 3e-2
        return cfg
    }

    func testOnlyTheAdaptersTrainAndTheRunResumesExactly() throws {
        let cfg = try config()
        var rng = RNG(seed: cfg.seed, stream: "init")
        let initial = Policy(config: cfg.policyConfig(vocabSize: CharTokenizer().vocabSize), rng: &rng)
        let whole = temporaryRun()
        let trainer = try Trainer(config: cfg, runDirectory: whole, resume: false)
        try trainer.run()
        let policy = trainer.policy
        XCTAssertEqual(policy.namedParameters.count, 2 * 3, "A and B of three modules in one layer, nothing else")
        for ((name, a), (_, b)) in zip(initial.namedTensors, policy.namedTensors) {
            XCTAssertEqual(a.array, b.array, "the frozen base weight \(name) moved")
        }
        for (name, t) in policy.loraTensors where name.hasSuffix("lora_B.weight") {
            XCTAssertTrue(t.array.contains { $0 != 0 }, "\(name) never moved from its zero init")
        }
        let rows = try RunReader(runDirectory: whole).metrics().rows
        let sftLoss = rows.filter { $0.stage == "sft" }.compactMap { $0.values["loss"] }
        // a random frozen base leaves the adapters little to work with, but they do learn
        XCTAssertLessThan(sftLoss.suffix(5).reduce(0, +) / 5, sftLoss.prefix(5).reduce(0, +) / 5, "SFT loss must fall")
        // The checkpoint folder has PEFT's files and loads back with the adapters.
        let last = try XCTUnwrap(Checkpoints.latest(in: whole)).url
        for file in ["adapter_config.json", "adapter_model.safetensors", "model.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: last.appendingPathComponent(file).path), file)
        }
        let loaded = try Checkpoint.load(from: last).policy
        XCTAssertEqual(loaded.loraTensors.map { $0.1.array }, policy.loraTensors.map { $0.1.array })

        let broken = temporaryRun()
        let first = try Trainer(config: cfg, runDirectory: broken, resume: false)
        first.stopAfterStep = 32
        try first.run()
        try Trainer(config: cfg, runDirectory: broken, resume: true).run()
        XCTAssertEqual(try TrainerTests.deterministicMetrics(broken), try TrainerTests.deterministicMetrics(whole))
    }

    /// The reference pass of a policy with adapters runs its base (adapters off): the KL is measured
    /// against the base, and is 0 only when the adapters add nothing.
    func testTheReferenceOfALoRAPolicyIsItsBase() throws {
        var cfg = try config()
        cfg.grpo.beta = 0.1
        let tokenizer = CharTokenizer()
        let problems = try (0..<2).map { i in
            try XCTUnwrap(TaskRegistry.family(named: "add")).problem(seed: 3, stream: "t", level: 1, index: i, id: "p\(i)")
        }
        func kl(adapterStd: Float) throws -> Double {
            var rng = RNG(seed: 2, stream: "init")
            let policy = Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 1, heads: 2, ffDim: 64, maxContext: 64), rng: &rng)
            var loraRNG = RNG(seed: 3)
            try policy.addLoRA(cfg.model.lora) { name, shape in
                name.hasSuffix("lora_B.weight") && adapterStd == 0 ? Tensor.zeros(shape, requiresGrad: true)
                    : Tensor.randn(shape, std: max(adapterStd, 0.1), rng: &loraRNG, requiresGrad: true)
            }
            let step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet(config: cfg.grpo.rewards))
            var sampling = RNG(seed: 5, stream: "sampling")
            var batch = try step.generate(policy: policy, problems: problems, rng: &sampling)
            for i in batch.indices { batch[i].advantage = i % 2 == 0 ? 1 : -1 }
            let metrics = try step.update(policy: policy, reference: policy, optimizer: AdamW(policy.parameters, lr: 1e-3), samples: batch)
            return try XCTUnwrap(metrics["kl"])
        }
        XCTAssertGreaterThan(try kl(adapterStd: 0.3), 1e-4, "trained adapters move the policy away from its base")
        XCTAssertEqual(try kl(adapterStd: 0), 0, accuracy: 1e-7, "zero adapters: the policy is its base")
    }

    func testLoRAOnAnMLAPolicyIsAClearError() throws {
        var cfg = try config()
        cfg.model.attention = .mla
        XCTAssertThrowsError(try cfg.validate()) { XCTAssertTrue("\($0)".contains("model.lora.rank"), "\($0)") }
        cfg = try config()
        cfg.model.lora.dropout = 0.1
        XCTAssertThrowsError(try cfg.validate()) { XCTAssertTrue("\($0)".contains("model.lora.dropout"), "\($0)") }
    }
}
