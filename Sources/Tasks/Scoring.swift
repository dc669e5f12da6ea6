// Scoring completions from any model with Ponder's verifiers and rewards (`ponder score`).

import Foundation

/// The rewards of one completion.
public struct ScoredLine: Sendable {
    /// The 1-based line in the completions file.
    public var line: Int
    /// The problem's id.
    public var id: String
    /// The text inside the last `<answer>`, if any.
    public var extracted: String?
    /// Why the answer was judged wrong, or empty.
    public var detail: String
    /// Each reward and the weighted total.
    public var scores: RewardScores

    /// One JSON object for `--json` output.
    public var json: JSONValue {
        .object([
            ("line", .int(line)), ("id", .string(id)), ("answer", extracted.map { .string($0) } ?? .null),
            ("rewards", .object(scores.values.map { ($0.name, .double($0.value)) })), ("total", .double(scores.total)),
            ("detail", .string(detail)),
        ])
    }
}

/// Per-row rewards and their means.
public struct ScoreReport: Sendable {
    /// One entry per completion, in file order.
    public var rows: [ScoredLine]
    /// The reward names, in report order.
    public var names: [String]

    /// The mean of each reward over all rows, in `names` order.
    public var means: [(name: String, value: Double)] {
        names.map { name in
            let values = rows.compactMap { $0.scores[name] }
            return (name, values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count))
        }
    }

    /// The mean weighted total.
    public var meanTotal: Double {
        rows.isEmpty ? 0 : rows.map(\.scores.total).reduce(0, +) / Double(rows.count)
    }

    /// The summary as one JSON object.
    public var summaryJSON: JSONValue {
        .object([
            ("summary", .object([
                ("count", .int(rows.count)), ("mean", .object(means.map { ($0.name, .double($0.value)) })),
                ("mean_total", .double(meanTotal)),
            ]))
        ])
    }
}

/// One line of a completions file: an `id` found in the dataset, or an inline `prompt` and `answer`
/// (and optionally `verifier`), plus the `completion` to score.
struct CompletionRecord: Decodable {
    var id: String?
    var completion: String
    var prompt: String?
    var answer: String?
    var verifier: Verifier?
}

/// Scores completions files.
public enum Scoring {
    /// Scores every completion in `completions` (JSONL). With `dataset`, lines may refer to its problems
    /// by `id`; without one each line carries `prompt` and `answer`. Throws `DatasetError` naming the
    /// file and line of anything malformed.
    public static func score(completions: URL, dataset: URL?, rewards: RewardSet) throws -> ScoreReport {
        let problems = try dataset.map { try Datasets.load($0) } ?? []
        guard FileManager.default.fileExists(atPath: completions.path) else {
            throw DatasetError(file: completions.path, line: nil, key: nil, message: "no such file; check the --completions path")
        }
        let text: String
        do {
            text = try String(contentsOf: completions, encoding: .utf8)
        } catch {
            throw DatasetError(file: completions.path, line: nil, key: nil, message: "cannot read the completions file as UTF-8 text")
        }
        return try score(text, file: completions.path, problems: problems, datasetName: dataset?.path, rewards: rewards)
    }

    /// Scores JSONL completions text against `problems` (possibly empty).
    public static func score(
        _ text: String, file: String, problems: [Problem], datasetName: String? = nil, rewards: RewardSet
    ) throws -> ScoreReport {
        var byID: [String: Problem] = [:]
        for problem in problems { byID[problem.id] = problem }
        var rows: [ScoredLine] = []
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            guard line.contains(where: { !$0.isWhitespace }) else { continue }
            let record: CompletionRecord = try Datasets.decodeLine(String(line), file: file, line: number)
            let problem: Problem
            if let prompt = record.prompt, let answer = record.answer {
                let inline = ProblemRecord(
                    id: record.id, family: nil, domain: nil, difficulty: nil, prompt: prompt, answer: answer,
                    verifier: record.verifier, canonical: nil, steps: nil)
                problem = try inline.problem(file: file, line: number, defaultID: "line-\(number)")
            } else if let id = record.id {
                guard let datasetName else {
                    throw DatasetError(
                        file: file, line: number, key: "id",
                        message: "refers to problem '\(id)' but no dataset was given; pass --dataset FILE.jsonl or add \"prompt\" and \"answer\"")
                }
                guard let found = byID[id] else {
                    throw DatasetError(file: file, line: number, key: "id", message: "no problem with id '\(id)' in \(datasetName)")
                }
                problem = found
            } else {
                throw DatasetError(
                    file: file, line: number, key: nil,
                    message: "needs \"id\" (with --dataset) or \"prompt\" and \"answer\" next to \"completion\"")
            }
            let extracted = AnswerExtraction.lastAnswer(in: record.completion)
            let verdict = extracted.map { problem.check($0) } ?? .wrong("no <answer>...</answer> found")
            rows.append(
                ScoredLine(
                    line: number, id: problem.id, extracted: extracted, detail: verdict.detail,
                    scores: rewards.score(record.completion, problem)))
        }
        return ScoreReport(rows: rows, names: rewards.functions.map(\.name))
    }
}
