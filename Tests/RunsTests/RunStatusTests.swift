import Foundation
import Runs
import XCTest

final class RunStatusTests: XCTestCase {
    func testStatusRoundTripsWithSnakeCaseKeys() throws {
        let directory = try temporaryDirectory(self)
        let status = RunStatus(
            state: .running, pid: 42, step: 10, totalSteps: 150, stage: "grpo",
            updated: Date(timeIntervalSince1970: 0), message: nil)
        try RunStatus.write(status, to: directory)
        XCTAssertEqual(try RunStatus.read(from: directory), status)
        let json = text(RunStatus.url(directory))
        XCTAssertTrue(json.contains(#""total_steps" : 150"#), json)
        XCTAssertTrue(json.contains(#""updated" : "1970-01-01T00:00:00Z""#), json)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        XCTAssertEqual(leftovers, ["status.json"], "no temporary file is left behind")
    }

    func testMissingStatusIsATypedErrorNamingTheFile() throws {
        let directory = try temporaryDirectory(self)
        XCTAssertThrowsError(try RunStatus.read(from: directory)) { error in
            XCTAssertEqual(error as? RunsError, .missingFile(path: RunStatus.url(directory).path))
        }
        XCTAssertEqual(RunStatus.state(of: directory), .unknown)
    }

    func testStatesFromStatusLivenessAndCheckpoints() throws {
        let directory = try temporaryDirectory(self)
        let alive = Int(ProcessInfo.processInfo.processIdentifier)
        let dead = Int(Int32.max)
        XCTAssertTrue(RunStatus.processIsAlive(alive))
        XCTAssertFalse(RunStatus.processIsAlive(dead))

        func state(_ state: RunStatus.State, pid: Int) throws -> RunState {
            try RunStatus.write(RunStatus(state: state, pid: pid, step: 5, totalSteps: 10, stage: "grpo"), to: directory)
            return RunStatus.state(of: directory)
        }
        XCTAssertEqual(try state(.running, pid: alive), .running)
        XCTAssertEqual(try state(.running, pid: dead), .crashed)
        XCTAssertEqual(try state(.failed, pid: dead), .failed)
        XCTAssertEqual(try state(.finished, pid: dead), .finished)

        // A checkpoint being written (not yet renamed into place) does not make the run resumable.
        let checkpoints = Checkpoints.directory(directory)
        try FileManager.default.createDirectory(
            at: checkpoints.appendingPathComponent(".step-000004.tmp"), withIntermediateDirectories: true)
        XCTAssertEqual(try state(.running, pid: dead), .crashed)
        try FileManager.default.createDirectory(
            at: checkpoints.appendingPathComponent(Checkpoints.folderName(step: 4)), withIntermediateDirectories: true)
        XCTAssertEqual(try state(.running, pid: dead), .resumable)
        XCTAssertEqual(try state(.failed, pid: dead), .resumable)
        XCTAssertEqual(try state(.running, pid: alive), .running)
        XCTAssertEqual(try state(.finished, pid: alive), .finished)
    }

    func testCheckpointListBestAndPrune() throws {
        let directory = try temporaryDirectory(self)
        XCTAssertEqual(Checkpoints.folderName(step: 120), "step-000120")
        for step in [30, 10, 20, 40] {
            try FileManager.default.createDirectory(
                at: Checkpoints.directory(directory).appendingPathComponent(Checkpoints.folderName(step: step)),
                withIntermediateDirectories: true)
        }
        XCTAssertEqual(Checkpoints.list(in: directory).map(\.step), [10, 20, 30, 40])
        // best/ counts only once its config.json is there (the trainer renames a complete folder into place).
        let best = Checkpoints.directory(directory).appendingPathComponent("best")
        try FileManager.default.createDirectory(at: best, withIntermediateDirectories: true)
        XCTAssertNil(Checkpoints.best(in: directory))
        try Data("{}".utf8).write(to: best.appendingPathComponent("config.json"))
        XCTAssertEqual(Checkpoints.best(in: directory)?.lastPathComponent, "best")
        XCTAssertEqual(try Checkpoints.prune(in: directory, keepLast: 2), [10, 20])
        XCTAssertEqual(Checkpoints.list(in: directory).map(\.step), [30, 40])
        XCTAssertEqual(Checkpoints.best(in: directory)?.lastPathComponent, "best")
        XCTAssertEqual(Checkpoints.latest(in: directory)?.step, 40)
    }
}
