// Rule-based rewards: pure functions of (completion text, problem) -> Double, named and weighted by config.
//
// The completion a reward sees is the decoded text after the prompt, without BOS or EOS. The sampler
// stops at EOS or right after `</answer>`, so the text may or may not end in whitespace. The strict
// `format` reward therefore ignores trailing ASCII whitespace (space, tab, CR, LF) and nothing else; the
// open-r1 variants see the text exactly as given, as open-r1 does.
//
// All matching works on UTF-8 bytes. The tags are ASCII, and UTF-8 never puts an ASCII byte inside a
// multi-byte character, so byte positions match exactly where Python's code-point matching would.

/// Finds the answer a completion gives.
public enum AnswerExtraction {
    /// The text inside the last complete `<answer>...</answer>` pair, trimmed of ASCII whitespace, or nil
    /// when there is no complete pair. "Last" means the last `</answer>` and the nearest `<answer>` before
    /// it, so an unterminated trailing `<answer>` is ignored and nested tags stay inside the text (where
    /// they make the answer wrong).
    public static func lastAnswer(in completion: String) -> String? {
        let bytes = Array(completion.utf8)
        guard let close = Bytes.lastIndex(of: Tags.answerClose, in: bytes, before: bytes.count),
            let open = Bytes.lastIndex(of: Tags.answerOpen, in: bytes, before: close)
        else { return nil }
        let start = open + Tags.answerOpen.count
        guard start <= close else { return nil }
        return Text.trimmed(String(decoding: bytes[start..<close], as: UTF8.self))
    }
}

/// The reward functions. Each is pure and total: any string, however malformed, gets a finite score.
public enum Rewards {
    /// 1 when the last `<answer>` passes the problem's verifier, else 0. An empty answer never scores.
    public static func correctness(_ completion: String, _ problem: Problem) -> Double {
        guard let answer = AnswerExtraction.lastAnswer(in: completion), !answer.isEmpty else { return 0 }
        return problem.check(answer).isCorrect ? 1 : 0
    }

    /// The verifier's partial credit for the last `<answer>`: 1 when correct, the family's fraction
    /// otherwise (bits right, pairs in order, held-out tests passed), 0 for families without one.
    public static func partialCredit(_ completion: String, _ problem: Problem) -> Double {
        guard let answer = AnswerExtraction.lastAnswer(in: completion), !answer.isEmpty else { return 0 }
        return problem.check(answer).score
    }

    /// The strict R1 template: exactly `<think>\n` T `\n</think>\n<answer>\n` A `\n</answer>`, then only
    /// trailing ASCII whitespace. Each of the four tags occurs exactly once, and T and A each contain a
    /// non-whitespace character. 1 or 0.
    public static func format(_ completion: String) -> Double {
        var bytes = Array(completion.utf8)
        while let last = bytes.last, Text.isSpace(last) { bytes.removeLast() }
        for tag in [Tags.thinkOpen, Tags.thinkClose, Tags.answerOpen, Tags.answerClose]
        where Bytes.count(of: tag, in: bytes) != 1 {
            return 0
        }
        let head = Array("<think>\n".utf8)
        let middle = Array("\n</think>\n<answer>\n".utf8)
        let tail = Array("\n</answer>".utf8)
        guard Bytes.hasPrefix(head, bytes), bytes.count >= head.count + middle.count + tail.count,
            Array(bytes.suffix(tail.count)) == tail,
            let split = Bytes.firstIndex(of: middle, in: bytes, from: head.count)
        else { return 0 }
        let answerStart = split + middle.count
        let answerEnd = bytes.count - tail.count
        guard answerStart <= answerEnd else { return 0 }
        let think = bytes[head.count..<split]
        let answer = bytes[answerStart..<answerEnd]
        guard think.contains(where: { !Text.isSpace($0) }), answer.contains(where: { !Text.isSpace($0) }) else { return 0 }
        return 1
    }

    /// open-r1's `format_reward`: Python's `re.match(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$",
    /// text, re.DOTALL | re.MULTILINE)`, reproduced without a regex engine. With MULTILINE, `$` also
    /// matches before any newline, so text after `</answer>` passes when it starts with a newline; with
    /// DOTALL the two bodies may contain anything, tags included. 1 or 0.
    public static func openR1Format(_ completion: String) -> Double {
        let bytes = Array(completion.utf8)
        let head = Array("<think>\n".utf8)
        let middle = Array("\n</think>\n<answer>\n".utf8)
        let tail = Array("\n</answer>".utf8)
        guard Bytes.hasPrefix(head, bytes),
            let split = Bytes.firstIndex(of: middle, in: bytes, from: head.count)
        else { return 0 }
        // The earliest middle leaves the most room for the tail, so it decides whether any match exists.
        var from = split + middle.count
        while let end = Bytes.firstIndex(of: tail, in: bytes, from: from) {
            let after = end + tail.count
            if after == bytes.count || bytes[after] == 0x0A { return 1 }
            from = end + 1
        }
        return 0
    }

    /// open-r1's `tag_count_reward`: 0.25 for each of `<think>\n`, `\n</think>\n`, `\n<answer>\n` and
    /// `\n</answer>` that occurs exactly once, counted as Python's `str.count` does (non-overlapping,
    /// left to right).
    public static func tagCount(_ completion: String) -> Double {
        let bytes = Array(completion.utf8)
        var score = 0.0
        for tag in ["<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>"]
        where Bytes.count(of: Array(tag.utf8), in: bytes) == 1 {
            score += 0.25
        }
        return score
    }

    /// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13) on the completion's length in Unicode
    /// scalars, which is its length in tokens under a character tokenizer: 0 up to `maxLength - cache`,
    /// then falling linearly to -1 at `maxLength`, and -1 beyond.
    public static func softOverlong(_ completion: String, maxLength: Int, cache: Int) -> Double {
        softOverlong(length: completion.unicodeScalars.count, maxLength: maxLength, cache: cache)
    }

    /// DAPO's soft overlong punishment for a completion of `length` tokens.
    public static func softOverlong(length: Int, maxLength: Int, cache: Int) -> Double {
        let safe = maxLength - cache
        if length <= safe { return 0 }
        if length <= maxLength { return Double(safe - length) / Double(max(cache, 1)) }
        return -1
    }

    /// open-r1's n-gram repetition penalty (Yeo et al. 2025, appendix C.2): lowercase, split on
    /// whitespace, and return `(1 - distinct n-grams / n-grams) * maxPenalty`; 0 for empty text or fewer
    /// than `ngram` words. `maxPenalty` is zero or negative.
    public static func repetitionPenalty(_ completion: String, ngram: Int, maxPenalty: Double) -> Double {
        let words = completion.lowercased().unicodeScalars
            .split(whereSeparator: { $0.properties.isWhitespace })
            .map { String(String.UnicodeScalarView($0)) }
        guard ngram > 0, !completion.isEmpty, words.count >= ngram else { return 0 }
        var seen = Set<[String]>()
        var total = 0
        for start in 0...(words.count - ngram) {
            seen.insert(Array(words[start..<(start + ngram)]))
            total += 1
        }
        return (1 - Double(seen.count) / Double(total)) * maxPenalty
    }
}

// MARK: - Named, weighted rewards

/// Which rewards to compute and how to weigh them; part of the training config.
public struct RewardConfig: Codable, Sendable, Equatable {
    /// Weight of each named reward; rewards not listed are not computed. Names: see `RewardSet.names`.
    public var weights: [String: Double]
    /// `soft_overlong`: the length (tokens) at which the penalty reaches -1.
    public var overlongMaxLength: Int
    /// `soft_overlong`: the length of the linear ramp before `overlongMaxLength`.
    public var overlongCache: Int
    /// `repetition`: the n-gram size.
    public var repetitionNgram: Int
    /// `repetition`: the penalty when every n-gram repeats (zero or negative).
    public var repetitionMaxPenalty: Double

    /// DeepSeek-R1's two rule-based rewards with equal weight; shaping is off.
    public init(
        weights: [String: Double] = ["correctness": 1, "format": 1], overlongMaxLength: Int = 512,
        overlongCache: Int = 128, repetitionNgram: Int = 3, repetitionMaxPenalty: Double = -1
    ) {
        self.weights = weights
        self.overlongMaxLength = overlongMaxLength
        self.overlongCache = overlongCache
        self.repetitionNgram = repetitionNgram
        self.repetitionMaxPenalty = repetitionMaxPenalty
    }

    /// Throws a `RewardConfigError` naming the bad key and what would be right.
    public func validate() throws {
        for (name, weight) in weights {
            guard RewardSet.names.contains(name) else {
                throw RewardConfigError(
                    key: "weights.\(name)",
                    message: "unknown reward '\(name)'"
                        + (Spelling.nearest(name, in: RewardSet.names).map { "; did you mean '\($0)'?" } ?? "")
                        + " Known rewards: \(RewardSet.names.joined(separator: ", ")).")
            }
            guard weight.isFinite, abs(weight) <= 1e6 else {
                throw RewardConfigError(key: "weights.\(name)", message: "weight must be a finite number in -1e6...1e6")
            }
        }
        guard overlongCache > 0, overlongMaxLength > overlongCache, overlongMaxLength <= 1 << 20 else {
            throw RewardConfigError(
                key: "overlongCache", message: "need 0 < overlongCache < overlongMaxLength (got \(overlongCache), \(overlongMaxLength))")
        }
        guard (1...1024).contains(repetitionNgram) else {
            throw RewardConfigError(key: "repetitionNgram", message: "n-gram size must be in 1...1024")
        }
        guard repetitionMaxPenalty <= 0, repetitionMaxPenalty.isFinite else {
            throw RewardConfigError(key: "repetitionMaxPenalty", message: "must be zero or negative (a penalty)")
        }
    }
}

/// A reward config that cannot be used: which key, and why.
public struct RewardConfigError: Error, Equatable, CustomStringConvertible {
    /// The offending key.
    public let key: String
    /// What is wrong and what would be right.
    public let message: String

    public var description: String {
        "reward config key '\(key)': \(message)"
    }
}

/// One named reward with its weight.
public struct RewardFunction: Sendable {
    /// The reward's name, as in configs and metrics (`rewards/<name>`).
    public let name: String
    /// Its weight in the total.
    public let weight: Double
    let compute: @Sendable (String, Problem) -> Double

    /// The unweighted reward of `completion` for `problem`.
    public func callAsFunction(_ completion: String, _ problem: Problem) -> Double {
        compute(completion, problem)
    }
}

/// The per-reward values of one completion and their weighted sum.
public struct RewardScores: Sendable, Equatable {
    /// Unweighted values, in the set's order.
    public var values: [(name: String, value: Double)]
    /// The weighted sum.
    public var total: Double

    /// Scores as computed elsewhere (e.g. by another process of a data-parallel job).
    public init(values: [(name: String, value: Double)], total: Double) {
        self.values = values
        self.total = total
    }

    /// The value of the reward called `name`, or nil.
    public subscript(name: String) -> Double? {
        values.first { $0.name == name }?.value
    }

    public static func == (lhs: RewardScores, rhs: RewardScores) -> Bool {
        lhs.total == rhs.total && lhs.values.map(\.name) == rhs.values.map(\.name)
            && lhs.values.map(\.value) == rhs.values.map(\.value)
    }
}

/// The rewards a run computes, built from a `RewardConfig`.
public struct RewardSet: Sendable {
    /// Every reward name, in the order they are reported.
    public static let names = [
        "correctness", "partial_credit", "format", "format_openr1", "tag_count", "soft_overlong", "repetition",
    ]

    /// The configured rewards, in `names` order.
    public let functions: [RewardFunction]

    /// Builds the set; throws `RewardConfigError` if the config is invalid.
    public init(config: RewardConfig = RewardConfig()) throws {
        try config.validate()
        functions = RewardSet.names.compactMap { name in
            guard let weight = config.weights[name] else { return nil }
            return RewardFunction(name: name, weight: weight, compute: RewardSet.function(name, config))
        }
    }

    /// The set of the named rewards, each with weight 1 (for `ponder score`).
    public init(names: [String], config: RewardConfig = RewardConfig()) throws {
        var weighted = config
        weighted.weights = Dictionary(names.map { ($0, 1.0) }, uniquingKeysWith: { a, _ in a })
        try self.init(config: weighted)
    }

    /// Every configured reward of `completion` for `problem`, and their weighted sum.
    public func score(_ completion: String, _ problem: Problem) -> RewardScores {
        var values: [(name: String, value: Double)] = []
        var total = 0.0
        for function in functions {
            let value = function(completion, problem)
            values.append((function.name, value))
            total += function.weight * value
        }
        return RewardScores(values: values, total: total)
    }

    static func function(_ name: String, _ config: RewardConfig) -> @Sendable (String, Problem) -> Double {
        switch name {
        case "correctness": return { completion, problem in Rewards.correctness(completion, problem) }
        case "partial_credit": return { completion, problem in Rewards.partialCredit(completion, problem) }
        case "format": return { completion, _ in Rewards.format(completion) }
        case "format_openr1": return { completion, _ in Rewards.openR1Format(completion) }
        case "tag_count": return { completion, _ in Rewards.tagCount(completion) }
        case "soft_overlong":
            let (maxLength, cache) = (config.overlongMaxLength, config.overlongCache)
            return { completion, _ in Rewards.softOverlong(completion, maxLength: maxLength, cache: cache) }
        default:
            let (n, penalty) = (config.repetitionNgram, config.repetitionMaxPenalty)
            return { completion, _ in Rewards.repetitionPenalty(completion, ngram: n, maxPenalty: penalty) }
        }
    }
}

// MARK: - Byte helpers

enum Tags {
    static let thinkOpen = Array("<think>".utf8)
    static let thinkClose = Array("</think>".utf8)
    static let answerOpen = Array("<answer>".utf8)
    static let answerClose = Array("</answer>".utf8)
}

enum Bytes {
    static func matches(_ needle: [UInt8], _ haystack: [UInt8], at i: Int) -> Bool {
        guard i >= 0, i + needle.count <= haystack.count else { return false }
        for k in 0..<needle.count where haystack[i + k] != needle[k] { return false }
        return true
    }

    static func hasPrefix(_ prefix: [UInt8], _ bytes: [UInt8]) -> Bool {
        matches(prefix, bytes, at: 0)
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        for i in max(start, 0)...(haystack.count - needle.count) where matches(needle, haystack, at: i) { return i }
        return nil
    }

    /// The start of the last occurrence that ends at or before `end`.
    static func lastIndex(of needle: [UInt8], in haystack: [UInt8], before end: Int) -> Int? {
        let last = min(end, haystack.count) - needle.count
        guard last >= 0 else { return nil }
        for i in stride(from: last, through: 0, by: -1) where matches(needle, haystack, at: i) { return i }
        return nil
    }

    /// Non-overlapping occurrences, scanning left to right (Python's `str.count`).
    static func count(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        var count = 0
        var i = 0
        while let found = firstIndex(of: needle, in: haystack, from: i) {
            count += 1
            i = found + needle.count
        }
        return count
    }
}
