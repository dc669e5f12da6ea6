// Held-out evaluation: sample K completions per problem, grade them with the problems' verifiers, and
// aggregate pass@1, pass@k (the unbiased estimator of Chen et al. 2021, "Evaluating Large Language
// Models Trained on Code"), maj@k, the strict R1 format rate and completion lengths, overall, per
// family and per (family, level). Sampling (`Evaluator.evaluate`) is kept apart from grading and
// aggregation (`Evaluator.grade`, `EvalReport.init`), which are pure, so the metrics can be checked
// on hand-written completions without a model.
//
// Dimensions: P problems per batch, K samples per problem.

import Autograd
import Foundation
import Model
import Tasks

// MARK: - Options

/// How a held-out evaluation samples. Every field has a default, also when decoding.
public struct EvalOptions: Codable, Equatable, Sendable {
    /// Samples per problem: the k of pass@k and maj@k.
    public var samples: Int = 1
    /// Sampling temperature, 0 meaning greedy; nil picks 0 when `samples` is 1 and 1.0 otherwise.
    public var temperature: Float? = nil
    /// Nucleus sampling mass (1: off).
    public var topP: Float = 1
    /// Most tokens generated per completion.
    public var maxNewTokens: Int = 128
    /// Problems sampled together, each with `samples` completions; bigger batches are faster.
    public var promptsPerBatch: Int = 32
    /// Seed of the "eval" RNG stream.
    public var seed: UInt64 = 0
    /// Whether each problem gets at most what its own prompt leaves of the context, min(maxNewTokens,
    /// max_context − prompt tokens), instead of every problem getting `maxNewTokens` (and an error when
    /// a prompt leaves less): `ponder eval` without --max-new, where a checkpoint's small context may
    /// be asked about families with longer prompts than those it trained on.
    public var fitToContext = false

    /// Creates options; see each field for its meaning.
    public init(samples: Int = 1, temperature: Float? = nil, topP: Float = 1, maxNewTokens: Int = 128,
                promptsPerBatch: Int = 32, seed: UInt64 = 0, fitToContext: Bool = false) {
        self.samples = samples
        self.temperature = temperature
        self.topP = topP
        self.maxNewTokens = maxNewTokens
        self.promptsPerBatch = promptsPerBatch
        self.seed = seed
        self.fitToContext = fitToContext
    }

    enum CodingKeys: String, CodingKey {
        case samples, temperature, topP = "top_p", maxNewTokens = "max_new_tokens"
        case promptsPerBatch = "prompts_per_batch", seed, fitToContext = "fit_to_context"
    }

    /// Decodes options; a missing key keeps its default.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EvalOptions()
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? d.samples
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? d.topP
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? d.maxNewTokens
        promptsPerBatch = try c.decodeIfPresent(Int.self, forKey: .promptsPerBatch) ?? d.promptsPerBatch
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        fitToContext = try c.decodeIfPresent(Bool.self, forKey: .fitToContext) ?? d.fitToContext
    }

    /// The temperature used: `temperature`, or 0 (greedy) for one sample and 1.0 for several.
    public var resolvedTemperature: Float { temperature ?? (samples == 1 ? 0 : 1) }

    /// The sampler's options for these settings.
    public var sampling: SamplingOptions {
        let t = resolvedTemperature
        return SamplingOptions(temperature: t == 0 ? 1 : t, topP: topP, maxNewTokens: maxNewTokens, greedy: t == 0)
    }

    /// Throws `EvalError.invalidOption` naming the first key out of range.
    public func validate() throws {
        func fail(_ key: CodingKeys, _ message: String) -> EvalError { .invalidOption(key: key.rawValue, message: message) }
        guard (1...TrainConfig.Limits.samples).contains(samples) else { throw fail(.samples, "must be in 1...\(TrainConfig.Limits.samples) (got \(samples))") }
        guard resolvedTemperature >= 0, resolvedTemperature.isFinite else {
            throw fail(.temperature, "must be ≥ 0, 0 meaning greedy (got \(resolvedTemperature))")
        }
        guard topP > 0 && topP <= 1 else { throw fail(.topP, "must be in (0, 1] (got \(topP))") }
        guard (1...TrainConfig.Limits.context).contains(maxNewTokens) else { throw fail(.maxNewTokens, "must be in 1...\(TrainConfig.Limits.context) (got \(maxNewTokens))") }
        guard (1...4_096).contains(promptsPerBatch) else { throw fail(.promptsPerBatch, "must be in 1...4096 (got \(promptsPerBatch))") }
    }
}

// MARK: - Results

/// One sampled completion as evaluation sees it.
public struct EvalSample: Sendable {
    /// The decoded text after the prompt, tags kept, EOS and PAD dropped.
    public var text: String
    /// Generated tokens, the stop token included.
    public var tokens: Int
    /// Whether it hit max_new_tokens without a stop token.
    public var truncated: Bool

    /// Creates a sample.
    public init(text: String, tokens: Int, truncated: Bool = false) {
        self.text = text
        self.tokens = tokens
        self.truncated = truncated
    }
}

/// The graded samples of one problem.
public struct EvalProblemResult: Codable, Equatable, Sendable {
    /// The problem's id.
    public var id: String
    /// Its family.
    public var family: String
    /// Its difficulty level.
    public var level: Int
    /// Samples drawn (n).
    public var samples: Int
    /// Samples whose answer passes the verifier (c).
    public var correct: Int
    /// Samples in the strict R1 format.
    public var formatted: Int
    /// The majority answer, normalized, or nil when no sample gave an answer.
    public var majorityAnswer: String?
    /// Whether the majority answer passes the verifier.
    public var majorityCorrect: Bool
    /// Tokens generated over all samples.
    public var tokens: Int
    /// Samples that hit max_new_tokens.
    public var truncated: Int
    /// The first sample's text, for inspection.
    public var firstCompletion: String
    /// The most new tokens each sample could have (less than the options' under `fitToContext` when
    /// the prompt left less of the context); nil for completions graded without sampling.
    public var maxNewTokens: Int?

    enum CodingKeys: String, CodingKey {
        case id, family, level, samples, correct, formatted, majorityAnswer = "majority_answer"
        case majorityCorrect = "majority_correct", tokens, truncated, firstCompletion = "first_completion"
        case maxNewTokens = "max_new_tokens"
    }
}

/// Metrics over a set of problems, each averaged per problem first.
public struct EvalStats: Codable, Equatable, Sendable {
    /// Problems.
    public var count: Int
    /// Mean correctness over the samples, averaged over problems.
    public var passAt1: Double
    /// The unbiased pass@k estimator, averaged over problems.
    public var passAtK: Double
    /// Fraction of problems whose majority answer is correct.
    public var majAtK: Double
    /// Mean strict R1 format reward.
    public var format: Double
    /// Mean completion length in tokens.
    public var meanLength: Double
    /// Fraction of completions that hit max_new_tokens.
    public var truncated: Double

    enum CodingKeys: String, CodingKey {
        case count, passAt1 = "pass@1", passAtK = "pass@k", majAtK = "maj@k", format, meanLength = "mean_length", truncated
    }

    /// Aggregates per-problem results, with k samples per problem counted by pass@k.
    public init(_ results: [EvalProblemResult], k: Int) {
        count = results.count
        let n = Double(max(count, 1))
        let drawn = Double(max(results.reduce(0) { $0 + $1.samples }, 1))
        func mean(_ f: (EvalProblemResult) -> Double) -> Double { results.reduce(0) { $0 + f($1) } / n }
        passAt1 = mean { Double($0.correct) / Double($0.samples) }
        passAtK = mean { Evaluator.passAtK(n: $0.samples, c: $0.correct, k: k) }
        majAtK = mean { $0.majorityCorrect ? 1 : 0 }
        format = mean { Double($0.formatted) / Double($0.samples) }
        meanLength = Double(results.reduce(0) { $0 + $1.tokens }) / drawn
        truncated = Double(results.reduce(0) { $0 + $1.truncated }) / drawn
    }
}

/// The stats of one level of a family.
public struct EvalLevelStats: Codable, Equatable, Sendable {
    /// The difficulty level.
    public var level: Int
    /// Its stats.
    public var stats: EvalStats
}

/// The stats of one family, and of each of its levels in ascending order.
public struct EvalFamilyStats: Codable, Equatable, Sendable {
    /// The family's name.
    public var family: String
    /// Its stats over all levels.
    public var stats: EvalStats
    /// Per level.
    public var levels: [EvalLevelStats]
}

/// A held-out evaluation: stats overall, per family and per (family, level), and per problem.
public struct EvalReport: Codable, Equatable, Sendable {
    /// The checkpoint evaluated, when the caller names one.
    public var checkpoint: String?
    /// The k of pass@k and maj@k.
    public var k: Int
    /// The sampling options with the temperature resolved, when the report comes from `Evaluator.evaluate`.
    public var options: EvalOptions?
    /// Stats over every problem.
    public var overall: EvalStats
    /// Per family, in order of first appearance among the problems.
    public var families: [EvalFamilyStats]
    /// Per problem, in evaluation order.
    public var problems: [EvalProblemResult]

    /// Aggregates per-problem results (a pure function).
    public init(results: [EvalProblemResult], k: Int, options: EvalOptions? = nil, checkpoint: String? = nil) {
        self.checkpoint = checkpoint
        self.k = k
        self.options = options
        overall = EvalStats(results, k: k)
        var order: [String] = []
        var byFamily: [String: [EvalProblemResult]] = [:]
        for r in results {
            if byFamily[r.family] == nil { order.append(r.family) }
            byFamily[r.family, default: []].append(r)
        }
        families = order.map { name in
            let rs = byFamily[name]!
            let levels = Dictionary(grouping: rs, by: \.level).sorted { $0.key < $1.key }
                .map { EvalLevelStats(level: $0.key, stats: EvalStats($0.value, k: k)) }
            return EvalFamilyStats(family: name, stats: EvalStats(rs, k: k), levels: levels)
        }
        problems = results
    }

    /// The stats of a family, or of one of its levels; nil when absent.
    public func stats(family: String, level: Int? = nil) -> EvalStats? {
        guard let f = families.first(where: { $0.family == family }) else { return nil }
        guard let level else { return f.stats }
        return f.levels.first { $0.level == level }?.stats
    }

    /// Metrics for metrics.jsonl: `<prefix>/pass@1`, `/pass@k`, `/maj@k`, `/format`, `/mean_length`,
    /// `<prefix>/<family>/pass@1` and `<prefix>/<family>/L<level>/pass@1`.
    public func scalars(prefix: String = "eval") -> [String: Double] {
        var out = [
            "\(prefix)/pass@1": overall.passAt1, "\(prefix)/pass@k": overall.passAtK, "\(prefix)/maj@k": overall.majAtK,
            "\(prefix)/format": overall.format, "\(prefix)/mean_length": overall.meanLength,
        ]
        for f in families {
            out["\(prefix)/\(f.family)/pass@1"] = f.stats.passAt1
            for l in f.levels { out["\(prefix)/\(f.family)/L\(l.level)/pass@1"] = l.stats.passAt1 }
        }
        // Per domain (math, code, logic) when the report spans more than one: problems weigh equally.
        let byDomain = Dictionary(grouping: problems) { TaskRegistry.family(named: $0.family)?.domain.rawValue ?? "custom" }
        if byDomain.count > 1 {
            for (domain, results) in byDomain { out["\(prefix)/\(domain)/pass@1"] = EvalStats(results, k: k).passAt1 }
        }
        return out
    }
}

// MARK: - Evaluator

/// Runs held-out evaluations and holds the pure metric functions they use.
public enum Evaluator {
    /// Samples `options.samples` completions for each problem (batches of `promptsPerBatch` problems
    /// with the same limit on new tokens through `Sampler.sample`; problem i draws from its own RNG,
    /// stream "eval" of `options.seed` keyed by i), grades and aggregates them. Deterministic for given
    /// inputs, whatever the batch size or number of ranks. `progress` is called with (problems done,
    /// total) after each batch.
    ///
    /// With a `communicator` of several ranks, each rank samples and grades its share of the problems,
    /// and every rank returns the whole report.
    public static func evaluate(
        policy: Policy, tokenizer: any Tokenizer, problems: [Problem], options: EvalOptions,
        communicator: Communicator = .single, progress: ((Int, Int) -> Void)? = nil
    ) throws -> EvalReport {
        try options.validate()
        guard !problems.isEmpty else { throw EvalError.noProblems("the problem list is empty") }
        let maxContext = policy.config.maxContext
        let prompts: [[Int32]] = try problems.map { problem in
            do {
                return try tokenizer.encodePrompt(problem.prompt).map(Int32.init)
            } catch {
                throw EvalError.unencodable(id: problem.id, reason: "\(error)")
            }
        }
        // Each problem's limit on new tokens: maxNewTokens, or under fitToContext what its prompt leaves
        // of the context. A prompt that leaves no room is an error naming it; without fitToContext, the
        // longest prompt is named, so the limit the error suggests fits every problem.
        let limits = prompts.map { options.fitToContext ? min(options.maxNewTokens, maxContext - $0.count) : options.maxNewTokens }
        let longest = prompts.indices.max { prompts[$0].count < prompts[$1].count || (prompts[$0].count == prompts[$1].count && $0 > $1) }!
        guard prompts[longest].count + limits[longest] <= maxContext, limits[longest] >= 1 else {
            throw EvalError.promptTooLong(
                id: problems[longest].id, promptTokens: prompts[longest].count, maxNewTokens: options.maxNewTokens,
                maxContext: maxContext)
        }
        let k = options.samples
        let mine = communicator.share(problems.count)
        // Problems with the same limit are sampled together, in batches of promptsPerBatch, in order
        // (one run of batches when every limit is maxNewTokens). A problem's samples depend only on the
        // policy, its prompt, its limit and its own generator, never on the batch it shares.
        var byLimit: [Int: [Int]] = [:]
        for i in mine { byLimit[limits[i], default: []].append(i) }
        var graded = [EvalProblemResult?](repeating: nil, count: problems.count)
        var done = 0
        for limit in byLimit.keys.sorted(by: >) {
            let indices = byLimit[limit]!
            var sampling = options.sampling
            sampling.maxNewTokens = limit
            for start in stride(from: 0, to: indices.count, by: options.promptsPerBatch) {
                let batch = Array(indices[start..<min(start + options.promptsPerBatch, indices.count)])
                var rngs = batch.map { RNG(seed: options.seed, stream: "eval", keys: [UInt64($0)]) }
                let out = Sampler.sample(
                    policy: policy, prompts: batch.map { prompts[$0] }, group: k, options: sampling,
                    stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rngs: &rngs)  // (P·K) prompt-major
                for (p, i) in batch.enumerated() {
                    let samples = out[(p * k)..<((p + 1) * k)].map { c in
                        EvalSample(text: tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true),
                                   tokens: c.tokens.count, truncated: c.truncated)
                    }
                    graded[i] = grade(problems[i], samples, maxNewTokens: limit)
                }
                done += batch.count
                progress?(done, mine.count)
            }
        }
        var results = mine.map { graded[$0]! }
        if communicator.size > 1 {  // every rank's results, in rank order: the problems' order
            let parts = communicator.allGather(Array(try JSONEncoder().encode(results)))
            results = try parts.flatMap { try JSONDecoder().decode([EvalProblemResult].self, from: Data($0)) }
        }
        var used = options
        used.temperature = options.resolvedTemperature  // the report says what ran, not "default"
        return EvalReport(results: results, k: k, options: used)
    }

    /// Grades hand-written or sampled completions without a model: one (problem, samples) pair per
    /// problem; k defaults to the fewest samples any problem has.
    public static func report(_ graded: [(problem: Problem, samples: [EvalSample])], k: Int? = nil) -> EvalReport {
        let k = k ?? graded.map(\.samples.count).min() ?? 1
        return EvalReport(results: graded.map { grade($0.problem, $0.samples) }, k: k)
    }

    /// Grades the samples of one problem: correctness and strict format per sample, and the majority vote.
    public static func grade(_ problem: Problem, _ samples: [EvalSample], maxNewTokens: Int? = nil) -> EvalProblemResult {
        precondition(!samples.isEmpty, "no samples for \(problem.id)")
        let answers = samples.map { AnswerExtraction.lastAnswer(in: $0.text) }
        let vote = majorityVote(answers)
        return EvalProblemResult(
            id: problem.id, family: problem.family, level: problem.difficulty, samples: samples.count,
            correct: samples.filter { Rewards.correctness($0.text, problem) == 1 }.count,
            formatted: samples.filter { Rewards.format($0.text) == 1 }.count,
            majorityAnswer: vote.map { normalizedAnswer(answers[$0]!) },
            majorityCorrect: vote.map { problem.check(answers[$0]!).isCorrect } ?? false,
            tokens: samples.reduce(0) { $0 + $1.tokens }, truncated: samples.filter(\.truncated).count,
            firstCompletion: samples[0].text, maxNewTokens: maxNewTokens)
    }

    /// The unbiased pass@k estimator 1 − C(n−c, k) / C(n, k) for n samples of which c are correct,
    /// computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i) to stay exact in floating point (Chen et al. 2021).
    public static func passAtK(n: Int, c: Int, k: Int) -> Double {
        precondition(n >= 1 && (0...n).contains(c) && (1...n).contains(k), "pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n")
        if c == 0 { return 0 }
        if n - c < k { return 1 }
        var fail = 1.0
        for i in (n - c + 1)...n { fail *= 1 - Double(k) / Double(i) }
        return 1 - fail
    }

    /// The index of the first answer carrying the most frequent normalized answer; ties go to the
    /// answer that occurs first. Missing and empty answers do not vote; nil when none voted.
    public static func majorityVote(_ answers: [String?]) -> Int? {
        var counts: [String: (count: Int, first: Int)] = [:]
        for (i, answer) in answers.enumerated() {
            guard let answer else { continue }
            let key = normalizedAnswer(answer)
            guard !key.isEmpty else { continue }
            counts[key, default: (0, i)].count += 1
        }
        return counts.values.max { a, b in a.count < b.count || (a.count == b.count && a.first > b.first) }?.first
    }

    /// The form answers are compared in for voting: ASCII whitespace trimmed and runs of it collapsed
    /// to one space; an integer in canonical form (no leading zeros or plus sign).
    public static func normalizedAnswer(_ answer: String) -> String {
        let words = answer.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        let text = words.joined(separator: " ")
        return CanonicalInteger(text)?.text ?? text
    }
}

// MARK: - Errors

/// An evaluation that cannot run, with what to change.
public enum EvalError: Error, Equatable, CustomStringConvertible {
    /// An option out of range.
    case invalidOption(key: String, message: String)
    /// Nothing to evaluate.
    case noProblems(String)
    /// The longest prompt, which does not fit the context with `maxNewTokens` after it.
    case promptTooLong(id: String, promptTokens: Int, maxNewTokens: Int, maxContext: Int)
    /// A prompt with a character the tokenizer lacks.
    case unencodable(id: String, reason: String)
    /// A family that is not in the test sets, with the nearest valid name.
    case unknownFamily(name: String, suggestion: String?, known: [String])

    public var description: String {
        switch self {
        case .invalidOption(let key, let message):
            return "eval option '\(key)' \(message)"
        case .noProblems(let why):
            return "nothing to evaluate: \(why)"
        case .promptTooLong(let id, let promptTokens, let maxNewTokens, let maxContext):
            let fits = maxContext - promptTokens
            return "problem \(id): its prompt (\(promptTokens) tokens) + max_new_tokens \(maxNewTokens) exceeds the model's "
                + "context of \(maxContext) tokens; "
                + (fits >= 1 ? "use max_new_tokens ≤ \(fits) (--max-new)" : "leave its family or level out")
        case .unencodable(let id, let reason):
            return "problem \(id): its prompt cannot be tokenized: \(reason)"
        case .unknownFamily(let name, let suggestion, let known):
            let hint = suggestion.map { " Did you mean '\($0)'?" } ?? ""
            return "unknown family '\(name)'.\(hint) Families: \(known.joined(separator: ", "))."
        }
    }
}
