import Autograd
import Basics
import Foundation
import TestSupport
import XCTest

/// `ponder bench` as a user runs it: every figure names the CPU it ran on, and `bench grpo --task` takes
/// several families in turn.
final class BenchCommandTests: XCTestCase {
    private let tiny = ["bench", "grpo", "--d", "32", "--layers", "1", "--heads", "2", "--ff", "32", "--prompts", "4", "--G", "2",
                        "--new", "6", "--steps", "1"]

    func testBenchGRPONamesTheCPUAndTakesSeveralFamilies() throws {
        let json = try Repository.ponder(tiny + ["--task", "add,knights", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let row = try XCTUnwrap(JSONText.parseObject(Substring(json.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), json.stdout)
        XCTAssertEqual(row["cpu"] as? String, cpuDescription())
        XCTAssertEqual(row["task"] as? String, "add,knights")
        let text = try Repository.ponder(tiny)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertEqual(text.stdout.split(separator: "\n").first.map(String.init), "cpu: \(cpuDescription())")
    }

    func testBenchGRPORejectsAnUnknownOrEmptyTaskByName() throws {
        let unknown = try Repository.ponder(tiny + ["--task", "add,nosuch"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("'nosuch'"), unknown.stderr)
        let empty = try Repository.ponder(tiny + ["--task", ","])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("--task is empty"), empty.stderr)
    }
}
