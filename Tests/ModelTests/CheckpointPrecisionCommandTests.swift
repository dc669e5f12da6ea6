import Autograd
import Foundation
import Model
import TestSupport
import XCTest

/// `ponder sample` and `ponder eval` without --precision run a checkpoint in the precision its training
/// run sampled in (recorded in its metadata) where the CPU has it, else in f32, saying which on stderr;
/// --precision overrides it, and a checkpoint of an f32 run stays f32 without a word.
final class CheckpointPrecisionCommandTests: XCTestCase {
    func testSampleAndEvalRunACheckpointInItsRunsPrecision() throws {
        let (policy, tokenizer) = tinyCharPolicy()
        let bf16 = try temporaryDirectory(), f32 = try temporaryDirectory()
        try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: bf16, metadata: [Checkpoint.precisionKey: "bf16"])
        try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: f32, metadata: [Checkpoint.precisionKey: "f32"])
        let hasBF16 = MatmulPrecision.bf16Unavailable == nil
        let said = hasBF16 ? "bf16 products, as its run sampled" : "which this CPU lacks"

        let sample = ["sample", bf16.path, "--prompt", "12+34=?", "--max-new", "6", "-n", "2", "--json"]
        let byDefault = try Repository.ponder(sample)
        XCTAssertEqual(byDefault.status, 0, byDefault.stderr)
        XCTAssertTrue(byDefault.stderr.contains(said), byDefault.stderr)
        let asF32 = try Repository.ponder(sample + ["--precision", "f32"])
        XCTAssertEqual(asF32.status, 0, asF32.stderr)
        XCTAssertFalse(asF32.stderr.contains(bf16.path), "a chosen precision needs no word: \(asF32.stderr)")
        if hasBF16 {
            let asBF16 = try Repository.ponder(sample + ["--precision", "bf16"])
            XCTAssertEqual(byDefault.stdout, asBF16.stdout, "the default is the bf16 run, logprobs and all")
            XCTAssertNotEqual(byDefault.stdout, asF32.stdout, "bf16 operands change the logprobs")
        } else {
            XCTAssertEqual(byDefault.stdout, asF32.stdout)
        }
        let plain = try Repository.ponder(["sample", f32.path, "--prompt", "12+34=?", "--max-new", "6", "-n", "2", "--json"])
        XCTAssertEqual(plain.stdout, asF32.stdout)
        XCTAssertFalse(plain.stderr.contains(f32.path), plain.stderr)

        let eval = try Repository.ponder(["eval", bf16.path, "--family", "add", "--level", "1", "--limit", "2", "--max-new", "8"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stderr.contains(said), eval.stderr)
    }
}
