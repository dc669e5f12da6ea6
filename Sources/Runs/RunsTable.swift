// `ponder runs`: one line per run folder, with what it is doing, how far it got and how well it does.

import Foundation

/// What `ponder runs` shows of one run.
public struct RunSummary: Equatable {
    /// The run's folder name.
    public var name: String
    /// Running, finished, crashed, resumable…
    public var state: RunState
    /// The last step logged or reported.
    public var step: Int?
    /// The steps the run will take, when its status says.
    public var totalSteps: Int?
    /// The last logged reward.
    public var lastReward: Double?
    /// The best held-out pass@1 and its step.
    public var bestPassAt1: (value: Double, step: Int)?

    public static func == (lhs: RunSummary, rhs: RunSummary) -> Bool {
        lhs.name == rhs.name && lhs.state == rhs.state && lhs.step == rhs.step && lhs.totalSteps == rhs.totalSteps
            && lhs.lastReward == rhs.lastReward && lhs.bestPassAt1?.value == rhs.bestPassAt1?.value
            && lhs.bestPassAt1?.step == rhs.bestPassAt1?.step
    }
}

/// The table of runs in a folder.
public enum RunsTable {
    /// The runs in `directory` (sub-folders holding a status.json, metrics.jsonl or config.yaml), by name,
    /// and the warnings met reading them.
    public static func summaries(in directory: URL) throws -> (runs: [RunSummary], warnings: [String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw RunsError.missingFolder(path: directory.path) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var runs: [RunSummary] = []
        var warnings: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let folder = directory.appendingPathComponent(name)
            let marks = ["status.json", "metrics.jsonl", "config.yaml"]
            guard marks.contains(where: { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }),
                let run = try? RunReader(runDirectory: folder)
            else { continue }
            let metrics: MetricsTable
            do {
                metrics = try run.metrics()
            } catch {
                warnings.append("\(error)")
                metrics = MetricsTable(rows: [], warnings: [])
            }
            warnings += metrics.warnings
            let status = run.status()
            let best = metrics.points("eval/pass@1").max { $0.y < $1.y }
            runs.append(
                RunSummary(
                    name: name, state: run.state(), step: status?.step ?? metrics.rows.last?.step,
                    totalSteps: status?.totalSteps, lastReward: metrics.last("reward")?.value,
                    bestPassAt1: best.map { ($0.y, Int($0.x)) }))
        }
        return (runs, warnings)
    }

    /// The summaries as an aligned text table with a header.
    public static func render(_ runs: [RunSummary]) -> String {
        let header = ["run", "status", "step", "reward", "best eval pass@1"]
        let rows = runs.map { run -> [String] in
            let step = run.step.map { step in run.totalSteps.map { "\(step)/\($0)" } ?? "\(step)" } ?? "–"
            let best = run.bestPassAt1.map { String(format: "%.3f (step %ld)", $0.value, $0.step) } ?? "–"
            return [run.name, run.state.rawValue, step, run.lastReward.map { String(format: "%.3f", $0) } ?? "–", best]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
