// `ponder tasks list|show|generate` and `ponder score`: thin wrappers over the Tasks library.

import ArgumentParser
import Foundation
import Tasks

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List, show and generate the verifiable task families and their held-out datasets.",
        subcommands: [TasksList.self, TasksShow.self, TasksGenerate.self]
    )
}

struct TasksList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Show the families, their domains and levels.")

    @Flag(help: "Print one JSON object per family.") var json = false

    func run() throws {
        for family in TaskRegistry.all {
            if json {
                let value = JSONValue.object([
                    ("family", .string(family.name)), ("domain", .string(family.domain.rawValue)),
                    ("summary", .string(family.summary)),
                    ("training_levels", .array(family.trainingLevels.map { .int($0) })),
                    ("beyond_levels", .array(family.beyondLevels.map { .int($0) })),
                    ("levels", .array(family.levelNotes.map { .string($0) })),
                ])
                print(value.compact)
            } else {
                let padded = family.name.padding(toLength: 10, withPad: " ", startingAt: 0)
                print("\(padded) \(family.domain.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(family.summary)")
                for (i, note) in family.levelNotes.enumerated() {
                    let level = family.levels.lowerBound + i
                    print("             L\(level) \(family.tier(of: level) == "beyond" ? "(beyond)" : "        ") \(note)")
                }
            }
        }
    }
}

struct TasksShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show generated problems with their teacher traces.")

    @Argument(help: "The family, e.g. add (see `ponder tasks list`).") var family: String
    @Option(help: "The difficulty level.") var level = 1
    @Option(name: .short, help: "How many problems.") var n = 5
    @Option(help: "The seed of the shown problems.") var seed: UInt64 = 0
    @Flag(help: "Print each problem as a dataset JSON line.") var json = false

    func validate() throws {
        guard let found = TaskRegistry.family(named: family) else {
            throw ValidationError(
                "unknown family '\(family)'. Families: \(TaskRegistry.names.joined(separator: ", ")).")
        }
        guard found.levels.contains(level) else {
            throw ValidationError(
                "\(family) has levels \(found.levels.lowerBound) to \(found.levels.upperBound); --level \(level) is outside them.")
        }
        guard n >= 1 else { throw ValidationError("-n must be at least 1.") }
    }

    func run() throws {
        let task = TaskRegistry.family(named: family)!
        for index in 0..<n {
            let problem = task.problem(
                seed: seed, stream: "show", level: level, index: index, id: "\(family)-L\(level)-show\(index)")
            if json {
                print(problem.jsonLine(tier: task.tier(of: level)))
                continue
            }
            print("--- \(problem.id)  [\(task.tier(of: level)), verifier: \(problem.verifier.kind)]")
            print("prompt:     \(problem.prompt)")
            print(problem.teacherCompletion)
        }
    }
}

struct TasksGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write the held-out datasets and their manifest, byte for byte reproducibly.")

    @Option(help: "The dataset folder.") var out = "datasets"
    @Flag(help: "Write nothing; exit with an error if any file differs from what would be generated.")
    var check = false

    func run() throws {
        let directory = URL(fileURLWithPath: out)
        if check {
            var stale: [String] = []
            for (path, contents) in Datasets.files() {
                let existing = FileManager.default.contents(atPath: directory.appendingPathComponent(path).path)
                if existing != Data(contents.utf8) { stale.append(path) }
            }
            guard stale.isEmpty else {
                throw CommandFailure(
                    "\(out): \(stale.joined(separator: ", ")) differ from the generators; run `ponder tasks generate --out \(out)`")
            }
            print("all dataset files in \(out) match the generators")
            return
        }
        let written = try Datasets.write(to: directory)
        for url in written { print("wrote \(url.path)") }
    }
}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score completions from any model with Ponder's verifiers and rewards.",
        discussion: """
            Each line of the completions file is a JSON object with "completion" and either "id" (a problem \
            in --dataset) or "prompt" and "answer" (and optionally "verifier"). See datasets/README.md.
            """
    )

    @Option(help: "JSONL file of completions.") var completions: String
    @Option(help: "JSONL dataset the completions' ids refer to.") var dataset: String?
    @Option(help: "Comma-separated rewards: \(RewardSet.names.joined(separator: ", ")).")
    var rewards = "correctness,format,tag_count"
    @Flag(help: "Print one JSON object per row, then a summary object.") var json = false

    var rewardNames: [String] {
        rewards.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        guard !rewardNames.isEmpty else { throw ValidationError("--rewards needs at least one reward name.") }
        for name in rewardNames where !RewardSet.names.contains(name) {
            throw ValidationError("unknown reward '\(name)' in --rewards. Known: \(RewardSet.names.joined(separator: ", ")).")
        }
    }

    func run() throws {
        let set = try RewardSet(names: rewardNames)
        let report = try Scoring.score(
            completions: URL(fileURLWithPath: completions), dataset: dataset.map { URL(fileURLWithPath: $0) }, rewards: set)
        if json {
            for row in report.rows { print(row.json.compact) }
            print(report.summaryJSON.compact)
            return
        }
        let names = report.names
        print((["line", "id"] + names + ["total"]).joined(separator: "\t"))
        for row in report.rows {
            let values = names.map { name in format(row.scores[name] ?? 0) }
            print(([String(row.line), tsvField(row.id)] + values + [format(row.scores.total)]).joined(separator: "\t"))
        }
        let means = report.means.map { "\($0.name)=\(format($0.value))" }.joined(separator: " ")
        print("rows=\(report.rows.count) mean: \(means) total=\(format(report.meanTotal))")
    }

    private func format(_ value: Double) -> String {
        String(format: "%.3f", value)
    }
}

/// An error whose description is the whole message; ArgumentParser prints it and exits with status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ message: String) {
        description = message
    }
}

/// Throws naming `--flag` when `value` is outside `range`: every numeric flag is checked before any
/// arithmetic or allocation uses it.
func checkFlag<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ flag: String) throws {
    guard range.contains(value) else {
        throw ValidationError("\(flag) is \(value); it must be in \(range.lowerBound)...\(range.upperBound)")
    }
}

/// A text as one tab-separated field: backslash, tab, newline and carriage return escaped as in C, so
/// an id holding them cannot split a row or a line.
func tsvField(_ text: String) -> String {
    [("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")].reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
}
