// Run-time checks of a config against what it asks the model to do, caught before training starts.

import Foundation
import Training
import XCTest

final class TrainerValidationTests: XCTestCase {
    /// Addition traces of levels 3-5 are longer than a 64-token context; a release build would
    /// read past the RoPE table (NaN losses) if the trainer did not stop first.
    func testSFTTracesLongerThanTheContextAreAClearError() throws {
        var cfg = try TrainerTests.tinyConfig()
        cfg.sft.levels = [5]
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-run-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: run) }
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: false)) { error in
            let e = error as? ConfigError
            XCTAssertEqual(e?.key, "model.max_context", "\(error)")
            XCTAssertTrue(e?.message.contains("SFT trace") ?? false, "\(error)")
        }
        cfg.sft.levels = [1]
        XCTAssertNoThrow(try Trainer(config: cfg, runDirectory: run, resume: false), "level-1 traces fit")
    }
}
