// Run-time checks of a config against what it asks the model to do, caught before training starts.

import Foundation
import Autograd
import Model
import Tasks
import Training
import XCTest

final class TrainerValidationTests: XCTestCase {
    /// Addition traces of levels 3-5 are longer than a 64-token context; a release build would
    /// read past the RoPE table (NaN losses) if the trainer did not stop first.
    func testSFTTracesLongerThanTheContextAreAClearError() throws {
        var cfg = try TrainerTests.tinyConfig()
        cfg.sft.levels = [5]
        let run = temporaryRun()
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: false)) { error in
            let e = error as? ConfigError
            XCTAssertEqual(e?.key, "model.max_context", "\(error)")
            XCTAssertTrue(e?.message.contains("SFT trace") ?? false, "\(error)")
        }
        cfg.sft.levels = [1]
        XCTAssertNoThrow(try Trainer(config: cfg, runDirectory: run, resume: false), "level-1 traces fit")
    }

    /// A held-out prompt, or a prompt of a level GRPO may draw, that leaves too little of the context
    /// for the completion stops the run at once, not at its first eval or GRPO batch after SFT.
    func testPromptsThatLeaveTooLittleRoomStopBeforeTheFirstStep() throws {
        var cfg = try TrainerTests.tinyConfig()  // max_context 64
        cfg.grpo.maxCompletionLength = 48  // leaves 16 tokens: level-4 addition chains need up to 19
        cfg.eval.levels = [4]
        cfg.eval.limitPerLevel = 100
        let run = temporaryRun()
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: false)) { error in
            let e = error as? ConfigError
            XCTAssertEqual(e?.key, "grpo.max_completion_length", "\(error)")
            XCTAssertTrue(e?.message.contains("held-out problem add-L4") ?? false, "names the problem: \(error)")
        }
        cfg.eval.levels = [1]
        cfg.data.curriculum.maxLevel = 4
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: false)) { error in
            let e = error as? ConfigError
            XCTAssertEqual(e?.key, "grpo.max_completion_length", "\(error)")
            XCTAssertTrue(e?.message.contains("level-4 add prompt") ?? false, "names the family and level: \(error)")
        }
        cfg.data.curriculum.maxLevel = 1
        XCTAssertNoThrow(try Trainer(config: cfg, runDirectory: run, resume: false), "level-1 prompts leave room")
    }
}

final class GRPOPromptLengthTests: XCTestCase {
    func testAPromptThatLeavesNoRoomForTheCompletionIsAClearError() throws {
        var cfg = try TrainerTests.tinyConfig()
        cfg.grpo.maxCompletionLength = 40
        let tokenizer = CharTokenizer()
        var rng = RNG(seed: 1, stream: "init")
        let policy = Policy(config: cfg.policyConfig(vocabSize: tokenizer.vocabSize), rng: &rng)  // max_context 64
        let step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet())
        let long = try XCTUnwrap(TaskRegistry.family(named: "add")).problem(seed: 1, stream: "t", level: 5, index: 0, id: "long")
        XCTAssertGreaterThan(try tokenizer.encodePrompt(long.prompt).count + 40, 64, "the test needs a prompt that does not fit")
        var srng = RNG(seed: 2, stream: "sampling")
        XCTAssertThrowsError(try step.generate(policy: policy, problems: [long], rng: &srng)) { error in
            XCTAssertEqual((error as? ConfigError)?.key, "model.max_context", "\(error)")
            XCTAssertTrue("\(error)".contains("long"), "names the problem: \(error)")
        }
        let short = try XCTUnwrap(TaskRegistry.family(named: "add")).problem(seed: 1, stream: "t", level: 1, index: 0, id: "short")
        XCTAssertEqual(try step.generate(policy: policy, problems: [short], rng: &srng).count, cfg.grpo.numGenerations)
    }
}
