// Big→small distillation by rejection sampling (DeepSeek-R1 §2.4): a trained teacher answers training
// problems k times; only completions that are both correct (the task's verifier) and well formatted
// (`<think>…</think><answer>…</answer>`) are kept, and the student's SFT stage trains on those instead
// of the task solvers' traces. The kept set is written as JSONL so a run can resume without sampling
// again, and so a user can read what the student learns from.

import Autograd
import Foundation
import Model
import Tasks

/// One kept teacher completion.
public struct DistilledTrace: Codable, Equatable, Sendable {
    /// The training problem's id, family and level.
    public var problemID: String
    public var family: String
    public var level: Int
    /// The problem text (without the layout's newline) and the teacher's completion text (tags
    /// included, without EOS).
    public var prompt: String
    public var completion: String

    public init(problemID: String, family: String, level: Int, prompt: String, completion: String) {
        self.problemID = problemID
        self.family = family
        self.level = level
        self.prompt = prompt
        self.completion = completion
    }
}

/// How many teacher completions were tried and kept, for one family or overall.
public struct DistillCount: Codable, Equatable, Sendable {
    /// Problems the teacher answered.
    public var problems = 0
    /// Problems with at least one kept completion.
    public var problemsKept = 0
    /// Completions sampled.
    public var tried = 0
    /// Completions that were correct and well formatted.
    public var accepted = 0
    /// Completions kept for SFT (accepted, distinct, within keep_per_problem).
    public var kept = 0

    public init() {}

    public var acceptRate: Double { tried == 0 ? 0 : Double(accepted) / Double(tried) }
}

/// What rejection sampling produced: the kept traces and the counts per family.
public struct DistillResult: Codable, Equatable, Sendable {
    /// The teacher checkpoint's path.
    public var teacher: String
    /// The teacher's held-out eval scalars on the student config's eval set (when measured).
    public var teacherEval: [String: Double]?
    public var perFamily: [String: DistillCount]
    public var traces: [DistilledTrace]

    public init(teacher: String, teacherEval: [String: Double]?, perFamily: [String: DistillCount], traces: [DistilledTrace]) {
        self.teacher = teacher
        self.teacherEval = teacherEval
        self.perFamily = perFamily
        self.traces = traces
    }

    public var total: DistillCount {
        perFamily.values.reduce(into: DistillCount()) {
            $0.problems += $1.problems
            $0.problemsKept += $1.problemsKept
            $0.tried += $1.tried
            $0.accepted += $1.accepted
            $0.kept += $1.kept
        }
    }
}

public enum Distill {
    /// Name of the kept-trace file in a run folder.
    public static let tracesFile = "distill/traces.jsonl"
    /// Name of the counts file in a run folder.
    public static let statsFile = "distill/stats.json"

    /// Whether a completion passes the rejection filter: the verifier accepts its answer and the
    /// R1 format reward is 1.
    public static func accepts(_ text: String, _ problem: Problem) -> Bool {
        Rewards.correctness(text, problem) == 1 && Rewards.format(text) == 1
    }

    /// Samples `config.distill.samples_per_problem` teacher completions for each problem (in batches
    /// of `promptsPerBatch` prompts), keeps the accepted ones (distinct texts first, at most
    /// keep_per_problem each) and counts per family. Deterministic in `rng`.
    public static func collect(
        teacher: Policy, tokenizer: any Tokenizer, problems: [Problem], config: TrainConfig,
        teacherName: String, promptsPerBatch: Int = 16, rng: inout RNG,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> DistillResult {
        let d = config.distill, k = d.samplesPerProblem
        let options = SamplingOptions(
            temperature: max(d.temperature, 1e-6), topP: d.topP,
            maxNewTokens: d.maxNewTokens > 0 ? d.maxNewTokens : config.grpo.maxCompletionLength,
            greedy: d.temperature == 0)
        var result = DistillResult(teacher: teacherName, teacherEval: nil, perFamily: [:], traces: [])
        var done = 0
        for start in stride(from: 0, to: problems.count, by: promptsPerBatch) {
            let chunk = Array(problems[start..<min(problems.count, start + promptsPerBatch)])
            let prompts = try chunk.map { try tokenizer.encodePrompt($0.prompt).map(Int32.init) }
            let completions = Sampler.sample(policy: teacher, prompts: prompts, group: k, options: options,
                                             stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rng: &rng)
            for (i, p) in chunk.enumerated() {
                var count = result.perFamily[p.family, default: DistillCount()]
                count.problems += 1
                count.tried += k
                var seen = Set<String>()
                var distinct: [String] = [], repeats: [String] = []
                for c in completions[(i * k)..<((i + 1) * k)] {
                    let text = tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true)
                    guard accepts(text, p) else { continue }
                    count.accepted += 1
                    if seen.insert(text).inserted { distinct.append(text) } else { repeats.append(text) }
                }
                // Distinct completions first; repeats only when keep_per_problem asks for more.
                var kept = distinct + (d.keepPerProblem > 0 ? repeats : [])
                if d.keepPerProblem > 0 { kept = Array(kept.prefix(d.keepPerProblem)) }
                count.kept += kept.count
                if !kept.isEmpty { count.problemsKept += 1 }
                result.traces += kept.map {
                    DistilledTrace(problemID: p.id, family: p.family, level: p.difficulty, prompt: p.prompt, completion: $0)
                }
                result.perFamily[p.family] = count
            }
            done += chunk.count
            progress?(done, problems.count)
        }
        return result
    }

    /// SFT examples from kept traces: prompt, the teacher's completion, EOS. Traces are text, so the
    /// student may use another tokenizer than the teacher, as long as it can spell the text.
    public static func examples(_ traces: [DistilledTrace], tokenizer: any Tokenizer) throws -> [SFTExample] {
        try traces.map { t in
            let prompt = try tokenizer.encodePrompt(t.prompt)
            let completion = try tokenizer.encode(t.completion) + [tokenizer.eos]
            return SFTExample(ids: (prompt + completion).map(Int32.init), promptLength: prompt.count)
        }
    }

    // MARK: - Files

    /// Writes the traces (one JSON object per line) and the counts into `runDirectory/distill/`,
    /// each file atomically.
    public static func save(_ result: DistillResult, runDirectory: URL) throws {
        let dir = runDirectory.appendingPathComponent("distill")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = Data()
        for t in result.traces {
            lines.append(try enc.encode(t))
            lines.append(0x0A)
        }
        try AtomicFile.write(lines, to: runDirectory.appendingPathComponent(tracesFile))
        var stats = result
        stats.traces = []
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(stats), to: runDirectory.appendingPathComponent(statsFile))
    }

    /// Reads back what `save` wrote; nil when the run folder has no complete distillation. A
    /// malformed line is an error naming the file and the line.
    public static func load(runDirectory: URL) throws -> DistillResult? {
        let tracesURL = runDirectory.appendingPathComponent(tracesFile)
        let statsURL = runDirectory.appendingPathComponent(statsFile)
        let fm = FileManager.default
        guard fm.fileExists(atPath: tracesURL.path), fm.fileExists(atPath: statsURL.path) else { return nil }
        var result: DistillResult
        do {
            result = try JSONDecoder().decode(DistillResult.self, from: Data(contentsOf: statsURL))
        } catch {
            throw DistillError.badFile(statsURL.path, line: nil, "\(error)")
        }
        let text = try String(contentsOf: tracesURL, encoding: .utf8)
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() where !line.isEmpty {
            do {
                result.traces.append(try JSONDecoder().decode(DistilledTrace.self, from: Data(line.utf8)))
            } catch {
                throw DistillError.badFile(tracesURL.path, line: n + 1, "\(error)")
            }
        }
        guard result.traces.count == result.total.kept else {
            throw DistillError.badFile(tracesURL.path, line: nil,
                                       "holds \(result.traces.count) traces but stats.json counts \(result.total.kept) kept; delete the distill folder to sample again")
        }
        return result
    }

    /// A per-family table of tried and kept completions.
    public static func table(_ r: DistillResult) -> String {
        func row(_ name: String, _ c: DistillCount) -> String {
            name.padding(toLength: 12, withPad: " ", startingAt: 0)
                + [c.problems, c.tried, c.accepted, c.kept, c.problemsKept].map { String($0).leftPad(10) }.joined()
                + String(format: "%10.3f", c.acceptRate)
        }
        var lines = ["family".padding(toLength: 12, withPad: " ", startingAt: 0)
            + ["problems", "tried", "accepted", "kept", "covered", "accept"].map { $0.leftPad(10) }.joined()]
        for f in r.perFamily.keys.sorted() { lines.append(row(f, r.perFamily[f]!)) }
        if r.perFamily.count > 1 { lines.append(row("all", r.total)) }
        return lines.joined(separator: "\n")
    }
}

public enum DistillError: Error, CustomStringConvertible {
    case badFile(String, line: Int?, String)
    case noTraces(String)
    case tokenizerMismatch(String)

    public var description: String {
        switch self {
        case .badFile(let path, let line, let why): return "\(path)\(line.map { ":\($0)" } ?? ""): \(why)"
        case .noTraces(let why): return why
        case .tokenizerMismatch(let why): return why
        }
    }
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}
