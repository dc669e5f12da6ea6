// Reading a run folder, possibly while its trainer is still writing it or after the trainer was killed.
// A writer appends whole lines with one write(2) each, so only the last line can be incomplete; it is
// skipped with a warning. A bad line anywhere else is damage, and an error naming the line.

import Foundation

/// One line of metrics.jsonl.
public struct MetricRow: Equatable {
    /// The step.
    public var step: Int
    /// "sft", "grpo" or "eval".
    public var stage: String
    /// The metrics by name; null values are NaN.
    public var values: [String: Double]

    /// A row with the given fields.
    public init(step: Int, stage: String, values: [String: Double]) {
        self.step = step
        self.stage = stage
        self.values = values
    }

    public static func == (lhs: MetricRow, rhs: MetricRow) -> Bool {
        lhs.step == rhs.step && lhs.stage == rhs.stage && lhs.values.keys == rhs.values.keys
            && lhs.values.allSatisfy { key, value in
                let other = rhs.values[key]!
                return value == other || (value.isNaN && other.isNaN)
            }
    }
}

/// The rows of a metrics.jsonl.
public struct MetricsTable {
    /// The rows in file order.
    public var rows: [MetricRow]
    /// What was skipped (a truncated last line), one sentence each, naming the file and line.
    public var warnings: [String]

    /// A table of the given rows.
    public init(rows: [MetricRow], warnings: [String] = []) {
        self.rows = rows
        self.warnings = warnings
    }

    /// The metric tags present, sorted (TensorBoard's tags: see `MetricsLog.tag(name:stage:)`).
    public var tags: [String] {
        Set(rows.flatMap { row in row.values.keys.map { MetricsLog.tag(name: $0, stage: row.stage) } }).sorted()
    }

    /// The (step, value) points of one tag, in file order; null values are left out.
    public func points(_ tag: String) -> [(x: Double, y: Double)] {
        rows.compactMap { row in
            guard let name = MetricsTable.name(of: tag, stage: row.stage), let value = row.values[name], value.isFinite
            else { return nil }
            return (Double(row.step), value)
        }
    }

    /// The last finite value of a tag, with its step.
    public func last(_ tag: String) -> (step: Int, value: Double)? {
        points(tag).last.map { (Int($0.x), $0.y) }
    }

    /// The metric name a tag has in a row of `stage`, or nil when rows of that stage cannot hold the tag.
    private static func name(of tag: String, stage: String) -> String? {
        if stage == "grpo" || stage == "eval" { return tag }
        return tag.hasPrefix(stage + "/") ? String(tag.dropFirst(stage.count + 1)) : nil
    }
}

/// Reads the files of one run folder.
public struct RunReader {
    /// The run folder.
    public let runDirectory: URL

    /// The run's name: its folder's name.
    public var name: String { runDirectory.lastPathComponent }

    /// A reader of the run in `runDirectory`; throws `RunsError.missingRun` when there is no such folder.
    public init(runDirectory: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw RunsError.missingRun(path: runDirectory.path) }
        self.runDirectory = runDirectory
    }

    /// Finds a run given on the command line: `name` as a path, or else as a folder of `runsDirectory`.
    public static func locate(_ name: String, runsDirectory: URL = URL(fileURLWithPath: "runs")) throws -> RunReader {
        let direct = URL(fileURLWithPath: name)
        if let reader = try? RunReader(runDirectory: direct) { return reader }
        if !name.contains("/"), let reader = try? RunReader(runDirectory: runsDirectory.appendingPathComponent(name)) {
            return reader
        }
        let alsoTried = name.contains("/") ? "" : " (nor \(runsDirectory.appendingPathComponent(name).path))"
        throw RunsError.missingRun(path: direct.path + alsoTried)
    }

    /// The rows of metrics.jsonl; none when the file does not exist yet.
    public func metrics() throws -> MetricsTable {
        let (objects, warnings) = try RunReader.jsonLines(MetricsLog.metricsURL(runDirectory))
        let rows = try objects.map { line, object -> MetricRow in
            guard let step = JSONText.step(object["step"]) else {
                throw RunsError.badLine(path: MetricsLog.metricsURL(runDirectory).path, line: line, reason: "no \"step\" that is an integer in 0...1e15")
            }
            var values: [String: Double] = [:]
            for (key, value) in object where key != "step" && key != "stage" {
                if value is NSNumber || value is NSNull { values[key] = JSONText.double(value) }
            }
            return MetricRow(step: step, stage: object["stage"] as? String ?? "grpo", values: values)
        }
        return MetricsTable(rows: rows, warnings: warnings)
    }

    /// The records of completions.jsonl and the warnings about skipped lines; none when the file does not exist.
    public func completions() throws -> (records: [CompletionRecord], warnings: [String]) {
        let url = MetricsLog.completionsURL(runDirectory)
        let (objects, warnings) = try RunReader.jsonLines(url)
        let records = try objects.map { line, object -> CompletionRecord in
            guard let record = CompletionRecord(json: object) else {
                throw RunsError.badLine(path: url.path, line: line, reason: "no \"step\"")
            }
            return record
        }
        return (records, warnings)
    }

    /// The resolved config text (config.yaml), or nil when the run has none.
    public func config() -> String? {
        FileManager.default.contents(atPath: runDirectory.appendingPathComponent("config.yaml").path)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    /// The trainer's status, or nil when it has not written one (or it is unreadable).
    public func status() -> RunStatus? { try? RunStatus.read(from: runDirectory) }

    /// What the run is now: running, finished, crashed, resumable…
    public func state() -> RunState { RunStatus.state(of: runDirectory) }

    /// The JSON objects of a JSONL file with their line numbers. An unparsable last line that does not end
    /// in a newline was cut short by a crash or is being written: it is skipped with a warning.
    static func jsonLines(_ url: URL) throws -> (objects: [(Int, [String: Any])], warnings: [String]) {
        guard let data = FileManager.default.contents(atPath: url.path) else { return ([], []) }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        var objects: [(Int, [String: Any])] = []
        var warnings: [String] = []
        for (index, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            if let object = JSONText.parseObject(line) {
                objects.append((index + 1, object))
            } else if index == lines.count - 1 {
                warnings.append("\(url.path):\(index + 1): skipped an incomplete last line (\(line.utf8.count) bytes)")
            } else {
                throw RunsError.badLine(path: url.path, line: index + 1, reason: "not a JSON object")
            }
        }
        return (objects, warnings)
    }
}
