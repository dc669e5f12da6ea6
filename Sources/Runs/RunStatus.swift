// status.json and the checkpoint folders: what `ponder runs` needs to tell a running run from a finished,
// crashed or resumable one, without asking the trainer.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trainer's own account of a run, kept in runs/<run>/status.json and rewritten atomically.
public struct RunStatus: Codable, Equatable {
    /// What the trainer last said it was doing.
    public enum State: String, Codable {
        /// Training; the process `pid` owns the run.
        case running
        /// Done, with its final checkpoint written.
        case finished
        /// Stopped on an error, described in `message`.
        case failed
    }

    /// What the trainer last said it was doing.
    public var state: State
    /// The trainer's process id.
    public var pid: Int
    /// The last step completed.
    public var step: Int
    /// The steps the run will take in all.
    public var totalSteps: Int
    /// The stage: "sft", "grpo" or "eval".
    public var stage: String
    /// When this status was written, ISO 8601.
    public var updated: String
    /// Why the run failed, or a note.
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case state, pid, step, stage, updated, message
        case totalSteps = "total_steps"
    }

    /// A status stamped with the current time; `pid` defaults to this process.
    public init(
        state: State, pid: Int = Int(getpid()), step: Int, totalSteps: Int, stage: String,
        updated: Date = Date(), message: String? = nil
    ) {
        self.state = state
        self.pid = pid
        self.step = step
        self.totalSteps = totalSteps
        self.stage = stage
        self.updated = ISO8601DateFormatter().string(from: updated)
        self.message = message
    }

    /// The status file of a run folder.
    public static func url(_ runDirectory: URL) -> URL { runDirectory.appendingPathComponent("status.json") }

    /// Writes `status` to runs/<run>/status.json atomically (temporary file, then rename).
    public static func write(_ status: RunStatus, to runDirectory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicWrite.write(try encoder.encode(status) + Data("\n".utf8), to: url(runDirectory))
    }

    /// Reads runs/<run>/status.json.
    public static func read(from runDirectory: URL) throws -> RunStatus {
        let file = url(runDirectory)
        guard let data = FileManager.default.contents(atPath: file.path) else { throw RunsError.missingFile(path: file.path) }
        do {
            return try JSONDecoder().decode(RunStatus.self, from: data)
        } catch {
            throw RunsError.badLine(path: file.path, line: 1, reason: "not a run status: \(error)")
        }
    }

    /// Whether a process with this id exists (signal 0 probes without sending anything).
    public static func processIsAlive(_ pid: Int) -> Bool {
        guard pid > 0, pid <= Int(Int32.max) else { return false }
        return kill(pid_t(pid), 0) == 0 || errno == EPERM
    }

    /// What the run in `runDirectory` is now, from its status file, whether its process lives, and its
    /// checkpoints. `isAlive` is the liveness probe (replaceable in tests).
    public static func state(
        of runDirectory: URL, isAlive: (Int) -> Bool = RunStatus.processIsAlive
    ) -> RunState {
        guard let status = try? read(from: runDirectory) else { return .unknown }
        let stopped: RunState
        switch status.state {
        case .finished: return .finished
        case .running:
            if isAlive(status.pid) { return .running }
            stopped = .crashed
        case .failed: stopped = .failed
        }
        return Checkpoints.latest(in: runDirectory) == nil ? stopped : .resumable
    }
}

/// What a run is now, as `ponder runs` shows it.
public enum RunState: String, Equatable {
    /// Its trainer is alive and training.
    case running
    /// It completed.
    case finished
    /// It stopped on an error and has no checkpoint to resume from.
    case failed
    /// Its trainer died without saying so, and it has no checkpoint to resume from.
    case crashed
    /// It crashed or failed, and `ponder train --resume` can continue it from a complete checkpoint.
    case resumable
    /// It has no status.json (not started by the trainer, or the status is unreadable).
    case unknown
}

/// The checkpoints of a run: runs/<run>/checkpoints/step-NNNNNN/, each present only once complete
/// (the trainer writes a temporary folder and renames it), sft-final/ (the cold start's result) and
/// best/ (a copy of the checkpoint with the best held-out pass@1, written the same way).
public enum Checkpoints {
    /// The checkpoints folder of a run folder.
    public static func directory(_ runDirectory: URL) -> URL { runDirectory.appendingPathComponent("checkpoints") }

    /// The folder name of a step's checkpoint: "step-000120".
    public static func folderName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The complete checkpoints of a run, oldest first.
    public static func list(in runDirectory: URL) -> [(step: Int, url: URL)] {
        let root = directory(runDirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.compactMap { name -> (step: Int, url: URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)), step >= 0 else { return nil }
            var isDirectory: ObjCBool = false
            let url = root.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue
            else { return nil }
            return (step, url)
        }.sorted { $0.step < $1.step }
    }

    /// The newest complete checkpoint.
    public static func latest(in runDirectory: URL) -> (step: Int, url: URL)? { list(in: runDirectory).last }

    /// The best checkpoint: the checkpoints/best folder the trainer writes, once it is complete.
    public static func best(in runDirectory: URL) -> URL? {
        let folder = directory(runDirectory).appendingPathComponent("best")
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path, isDirectory: &isFolder),
              !isFolder.boolValue else { return nil }
        return folder
    }

    /// Deletes all but the newest `keepLast` step checkpoints (best/ and sft-final/ are copies of their
    /// own, never pruned); returns the steps deleted.
    @discardableResult
    public static func prune(in runDirectory: URL, keepLast: Int) throws -> [Int] {
        let doomed = list(in: runDirectory).dropLast(max(0, keepLast))
        for checkpoint in doomed {
            // Rename first: a folder half-deleted under its step-NNNNNN name would look complete.
            let doomedURL = checkpoint.url.deletingLastPathComponent()
                .appendingPathComponent(".deleting-\(checkpoint.url.lastPathComponent)-\(getpid())")
            do {
                try FileManager.default.moveItem(at: checkpoint.url, to: doomedURL)
                try FileManager.default.removeItem(at: doomedURL)
            } catch {
                throw RunsError.io(path: checkpoint.url.path, reason: "cannot delete the old checkpoint")
            }
        }
        return doomed.map(\.step)
    }
}
