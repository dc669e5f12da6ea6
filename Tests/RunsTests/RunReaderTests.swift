import Foundation
import Runs
import XCTest

final class RunReaderTests: XCTestCase {
    func testTruncatedLastLineIsSkippedWithAWarning() throws {
        let directory = try temporaryDirectory(self)
        let metrics = MetricsLog.metricsURL(directory)
        try (#"{"step":1,"stage":"grpo","reward":0.5}"# + "\n" + #"{"step":2,"stage":"grpo","rew"#)
            .write(to: metrics, atomically: true, encoding: .utf8)
        let table = try RunReader(runDirectory: directory).metrics()
        XCTAssertEqual(table.rows, [MetricRow(step: 1, stage: "grpo", values: ["reward": 0.5])])
        XCTAssertEqual(table.warnings, ["\(metrics.path):2: skipped an incomplete last line (29 bytes)"])
        XCTAssertEqual(table.last("reward")?.value, 0.5)
    }

    func testCompleteLastLineWithoutNewlineIsRead() throws {
        let directory = try temporaryDirectory(self)
        try #"{"step":3,"stage":"eval","eval/pass@1":null}"#.write(
            to: MetricsLog.metricsURL(directory), atomically: true, encoding: .utf8)
        let table = try RunReader(runDirectory: directory).metrics()
        XCTAssertEqual(table.rows.count, 1)
        XCTAssertTrue(table.warnings.isEmpty)
        XCTAssertTrue(table.points("eval/pass@1").isEmpty, "null values are not plotted")
        XCTAssertEqual(table.tags, ["eval/pass@1"])
    }

    func testBadLineInTheMiddleIsAnErrorNamingTheLine() throws {
        let directory = try temporaryDirectory(self)
        let url = MetricsLog.completionsURL(directory)
        try "{\"step\":1}\nnot json\n{\"step\":2}\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunReader(runDirectory: directory).completions()) { error in
            XCTAssertEqual(error as? RunsError, .badLine(path: url.path, line: 2, reason: "not a JSON object"))
            XCTAssertEqual("\(error)", "\(url.path):2: not a JSON object")
        }
    }

    func testMissingRunIsATypedError() throws {
        let directory = try temporaryDirectory(self)
        XCTAssertThrowsError(try RunReader.locate("nope", runsDirectory: directory)) { error in
            XCTAssertEqual(
                "\(error)",
                "\(URL(fileURLWithPath: "nope").path) (nor \(directory.appendingPathComponent("nope").path)): no such run folder")
        }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("quick"), withIntermediateDirectories: true)
        XCTAssertEqual(try RunReader.locate("quick", runsDirectory: directory).name, "quick")
    }

    func testReadsARunWhileItIsBeingWritten() throws {
        let directory = try temporaryDirectory(self)
        let log = try MetricsLog(runDirectory: directory)
        let reader = try RunReader(runDirectory: directory)
        for step in 1...5 {
            try log.log(step: step, stage: "grpo", ["reward": Double(step)])
            XCTAssertEqual(try reader.metrics().rows.count, step, "each line is visible as soon as it is logged")
        }
        log.close()
        XCTAssertNil(reader.config())
        XCTAssertEqual(reader.state(), .unknown)
    }
}
