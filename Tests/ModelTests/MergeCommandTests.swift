import Autograd
import Foundation
import Model
import TestSupport
import XCTest

/// `ponder merge CHECKPOINT OUT`, the binary itself: the folder it writes is an ordinary model (no
/// adapters) whose weights are the in-process merge's bit for bit, keeping the checkpoint's step and
/// evaluated families and no other metadata; it refuses a folder that exists and a checkpoint without
/// adapters, saying which, and writes nothing then.
final class MergeCommandTests: XCTestCase {
    func testMergeWritesTheMergedWeightsAndKeepsStepAndFamilies() throws {
        let (policy, tokenizer) = tinyCharPolicy()
        var loraRNG = RNG(seed: 7)  // trained-looking adapters (B ≠ 0), so that merging changes the weights
        try policy.addLoRA(LoRAConfig(rank: 4, alpha: 8)) { _, shape in Tensor.randn(shape, std: 0.3, rng: &loraRNG, requiresGrad: true) }
        let source = try temporaryDirectory()
        try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: source,
                            metadata: ["step": "12", Checkpoint.evalFamiliesKey: "add,mul", Checkpoint.precisionKey: "bf16", "sft_best_step": "9"])
        let out = try temporaryDirectory().appendingPathComponent("merged")

        let run = try Repository.ponder(["merge", source.path, out.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let (merged, _, metadata) = try Checkpoint.load(from: out)
        XCTAssertNil(merged.lora)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter_config.json").path))
        XCTAssertEqual(metadata["step"], "12")
        XCTAssertEqual(metadata[Checkpoint.evalFamiliesKey], "add,mul")
        XCTAssertEqual(metadata[Checkpoint.precisionKey], "bf16", "the precision the adapters were trained in")
        XCTAssertNil(metadata["sft_best_step"], "training state is not carried into a merged model")
        let base = policy.namedTensors.map { $0.1.array }
        policy.mergeLoRA()
        XCTAssertEqual(merged.namedTensors.map(\.0), policy.namedTensors.map(\.0))
        var changed = 0
        for (((name, a), (_, b)), before) in zip(zip(merged.namedTensors, policy.namedTensors), base) {
            XCTAssertEqual(a.array.map(\.bitPattern), b.array.map(\.bitPattern), name)
            if a.array != before { changed += 1 }
        }
        XCTAssertEqual(changed, 2 * 7, "every adapted projection of both layers changed")

        let again = try Repository.ponder(["merge", source.path, out.path])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("exists already"), again.stderr)
        let plain = out.deletingLastPathComponent().appendingPathComponent("plain")
        let none = try Repository.ponder(["merge", out.path, plain.path])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("has no LoRA adapters"), none.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: plain.path))
    }
}
