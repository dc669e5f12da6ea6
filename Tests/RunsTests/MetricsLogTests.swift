import Foundation
import Runs
import XCTest

final class MetricsLogTests: XCTestCase {
    private func completion(step: Int) -> CompletionRecord {
        CompletionRecord(
            step: step, prompt: "12+30=", completion: "<think>\n2+0=2\n</think>\n<answer>\n42\n</answer>",
            answer: "42", family: "add", level: 1, rewards: ["format": 1, "correctness": 1], reward: 1.1,
            advantage: 0.5)
    }

    func testLinesHaveStepStageThenSortedKeysAndRoundTripNumbers() throws {
        let directory = try temporaryDirectory(self)
        let log = try MetricsLog(runDirectory: directory)
        try log.log(step: 7, stage: "grpo", ["reward": 0.1, "kl": 1e-5, "loss": .nan, "grad_norm": 1 / 3])
        try log.logCompletion(completion(step: 7))
        log.close()
        XCTAssertEqual(
            text(MetricsLog.metricsURL(directory)),
            #"{"step":7,"stage":"grpo","grad_norm":0.3333333333333333,"kl":1e-05,"loss":null,"reward":0.1}"# + "\n")
        XCTAssertEqual(
            text(MetricsLog.completionsURL(directory)),
            #"{"step":7,"prompt":"12+30=","completion":"<think>\n2+0=2\n</think>\n<answer>\n42\n</answer>","answer":"42","family":"add","level":1,"rewards":{"correctness":1.0,"format":1.0},"reward":1.1,"advantage":0.5}"#
                + "\n")
        let row = try RunReader(runDirectory: directory).metrics()
        XCTAssertEqual(row.rows.count, 1)
        XCTAssertEqual(row.rows[0].values["grad_norm"], 1 / 3)
        XCTAssertEqual(row.rows[0].values["kl"], 1e-5)
        XCTAssertTrue(row.rows[0].values["loss"]!.isNaN)
    }

    func testSFTTagsArePrefixedAndGRPOAndEvalTagsAreNot() {
        XCTAssertEqual(MetricsLog.tag(name: "loss", stage: "sft"), "sft/loss")
        XCTAssertEqual(MetricsLog.tag(name: "loss", stage: "grpo"), "loss")
        XCTAssertEqual(MetricsLog.tag(name: "eval/pass@1", stage: "eval"), "eval/pass@1")
    }

    func testResumedLogEqualsAnUninterruptedOne() throws {
        let straight = try temporaryDirectory(self)
        let crashed = try temporaryDirectory(self)
        func write(_ log: MetricsLog, steps: ClosedRange<Int>) throws {
            for step in steps {
                try log.log(step: step, stage: "grpo", ["reward": Double(step) / 10])
                try log.logCompletion(completion(step: step))
            }
        }
        let whole = try MetricsLog(runDirectory: straight)
        try write(whole, steps: 1...6)
        whole.close()

        // The crashed run got to step 5 and died mid-line; its last checkpoint is step 3.
        let first = try MetricsLog(runDirectory: crashed)
        try write(first, steps: 1...5)
        first.close()
        let metrics = MetricsLog.metricsURL(crashed)
        try (text(metrics) + #"{"step":6,"stage":"gr"#).write(to: metrics, atomically: false, encoding: .utf8)
        let resumed = try MetricsLog(runDirectory: crashed, resumeAfterStep: 3)
        XCTAssertEqual(try RunReader(runDirectory: crashed).metrics().rows.map(\.step), [1, 2, 3])
        try write(resumed, steps: 4...6)
        resumed.close()

        XCTAssertEqual(text(MetricsLog.metricsURL(crashed)), text(MetricsLog.metricsURL(straight)))
        XCTAssertEqual(text(MetricsLog.completionsURL(crashed)), text(MetricsLog.completionsURL(straight)))
        let files = TensorBoardWriter.eventFiles(in: crashed)
        XCTAssertEqual(files.count, 1, "the old event file is replaced by one holding the kept events")
        let events = try TensorBoardWriter.readEvents(at: files[0])
        XCTAssertEqual(events.map(\.step), [0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(events.last?.scalars.first?.tag, "reward")
        XCTAssertEqual(events.last?.scalars.first?.value, 0.6)
    }

    func testANewRunStartsEmpty() throws {
        let directory = try temporaryDirectory(self)
        let old = try MetricsLog(runDirectory: directory)
        try old.log(step: 1, stage: "grpo", ["reward": 1])
        old.close()
        let fresh = try MetricsLog(runDirectory: directory)
        fresh.close()
        XCTAssertEqual(text(MetricsLog.metricsURL(directory)), "")
        XCTAssertEqual(try TensorBoardWriter.readEvents(in: directory).map(\.step), [0])
    }

    func testWritingAfterCloseIsATypedError() throws {
        let directory = try temporaryDirectory(self)
        let log = try MetricsLog(runDirectory: directory)
        log.close()
        XCTAssertThrowsError(try log.log(step: 1, stage: "grpo", [:])) { error in
            XCTAssertEqual(error as? RunsError, .io(path: MetricsLog.metricsURL(directory).path, reason: "written after close"))
        }
    }
}
