// Training a model imported in Hugging Face layout, with a byte-level BPE tokenizer (the committed
// Qwen2-style fixture) and the ChatML prompt format: SFT then GRPO run, the loss falls, and the
// checkpoints are Qwen2 folders carrying the original tokenizer.json unchanged.

import Autograd
import Foundation
import Model
import Runs
import Training
import TestSupport
import XCTest

final class ImportedModelTrainingTests: XCTestCase {
    static let root = Repository.root

    func testSFTAndGRPOFromAQwen2FolderWithChatPrompts() throws {
        let fm = FileManager.default
        let base = fm.temporaryDirectory.appendingPathComponent("ponder-import-\(UUID().uuidString)")
        addTeardownBlock { try? fm.removeItem(at: base) }
        let tokenizerURL = Self.root.appendingPathComponent("Tests/Fixtures/bpe/qwen2.json")
        let tokenizer = try BPETokenizer.load(from: tokenizerURL)
        var pc = PolicyConfig(vocabSize: tokenizer.vocabSize + 8, dModel: 32, layers: 1, heads: 4, ffDim: 64, maxContext: 128, tieEmbeddings: true)
        pc.kvHeads = 2
        pc.qkvBias = true
        var rng = RNG(seed: 1, stream: "init")
        let folder = base.appendingPathComponent("model")
        try Checkpoint.save(policy: Policy(config: pc, rng: &rng), tokenizer: tokenizer, to: folder)

        let run = base.appendingPathComponent("run")
        let cfg = try ConfigLoader.parse("""
            seed: 3
            threads: 1
            model: {from: "\(folder.path)"}
            data: {families: [add], datasets: "\(Self.root.appendingPathComponent("datasets").path)", prompt_format: chat}
            sft: {steps: 12, num_traces: 8, levels: [1], batch_size: 4, learning_rate: 3.0e-3}
            grpo: {steps: 2, prompts_per_step: 2, num_generations: 2, max_completion_length: 24, beta: 0.04}
            eval: {every: 2, levels: [1], limit_per_level: 2, max_new_tokens: 24}
            checkpoint: {every: 0}
            """)
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        XCTAssertTrue(trainer.tokenizer is ChatTokenizer)
        let prompt = try trainer.tokenizer.encodePrompt("What is 1+2?")
        XCTAssertEqual(trainer.tokenizer.decode(prompt), "<|im_start|>user\nWhat is 1+2?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(trainer.tokenizer.eos, tokenizer.id(of: "<|im_end|>"))
        try trainer.run()

        let rows = try RunReader(runDirectory: run).metrics().rows
        let sftLoss = rows.filter { $0.stage == "sft" }.compactMap { $0.values["loss"] }
        XCTAssertEqual(sftLoss.count, 12)
        XCTAssertLessThan(sftLoss.suffix(3).reduce(0, +), sftLoss.prefix(3).reduce(0, +), "SFT loss must fall")
        XCTAssertEqual(rows.filter { $0.stage == "grpo" }.count, 2)
        let latest = try XCTUnwrap(Checkpoints.latest(in: run)).url
        XCTAssertEqual(try Data(contentsOf: latest.appendingPathComponent("tokenizer.json")), try Data(contentsOf: tokenizerURL))
        let config = try LlamaConfigJSON.read(from: latest.appendingPathComponent("config.json"))
        XCTAssertEqual(config.modelType, "qwen2")
        XCTAssertEqual(config.numKeyValueHeads, 2)
        let (loaded, loadedTokenizer, _) = try Checkpoint.load(from: latest)
        XCTAssertTrue(loadedTokenizer is BPETokenizer)
        XCTAssertEqual(loaded.config.kvHeadCount, 2)
    }
}
