// The one problem value shared by generators, datasets, rewards and the trainer, and the text layout it
// is rendered in (DESIGN.md, Conventions):
//
//     prompt      BOS + "<problem text>\n"
//     completion  "<think>\n<steps, one per line>\n</think>\n<answer>\n<answer text>\n</answer>" + EOS
//
// BOS and EOS belong to the tokenizer; everything between them is produced here.

/// The three task domains, plus `custom` for problems users bring in their own JSONL.
public enum Domain: String, Codable, CaseIterable, Sendable {
    case math, code, logic, custom
}

/// One verifiable problem: what the model is asked, the reference answer, how any answer is checked, and
/// the teacher's step-by-step trace.
public struct Problem: Codable, Sendable, Equatable {
    /// Unique within its dataset, e.g. `add-L2-0041`; generated training problems use `train-<family>-L<n>-<k>`.
    public var id: String
    /// The family that generated it (`add`, `sudoku`, ...), or `custom`.
    public var family: String
    /// The domain of the family.
    public var domain: Domain
    /// The difficulty level, 1 being the easiest.
    public var difficulty: Int
    /// The problem text, one line, without the trailing newline that the layout adds.
    public var prompt: String
    /// The reference answer text, as the teacher writes it inside `<answer>`.
    public var answer: String
    /// How an extracted answer is checked.
    public var verifier: Verifier
    /// The canonical form of the question: equal canonical forms mean the same problem. Used for
    /// de-duplication and for keeping held-out problems out of training.
    public var canonical: String
    /// The teacher's reasoning, one step per line, written inside `<think>`. Empty for custom problems.
    public var steps: [String]

    /// Creates a problem. `canonical` defaults to the family and prompt with runs of spaces collapsed.
    public init(
        id: String, family: String, domain: Domain, difficulty: Int, prompt: String, answer: String,
        verifier: Verifier, canonical: String? = nil, steps: [String] = []
    ) {
        self.id = id
        self.family = family
        self.domain = domain
        self.difficulty = difficulty
        self.prompt = prompt
        self.answer = answer
        self.verifier = verifier
        self.canonical = canonical ?? Problem.defaultCanonical(family: family, prompt: prompt)
        self.steps = steps
    }

    /// The text that follows BOS: the prompt and its newline.
    public var promptText: String {
        prompt + "\n"
    }

    /// The teacher's full completion in the R1 layout, without EOS. It scores 1 under `format`,
    /// `format_openr1`, `tag_count` and `correctness`.
    public var teacherCompletion: String {
        Problem.completion(steps: steps, answer: answer)
    }

    /// A completion in the R1 layout with the given steps and answer.
    public static func completion(steps: [String], answer: String) -> String {
        "<think>\n" + steps.joined(separator: "\n") + "\n</think>\n<answer>\n" + answer + "\n</answer>"
    }

    /// Checks an answer text (already extracted from `<answer>`) against this problem.
    public func check(_ response: String) -> Verdict {
        verifier.check(response: response, reference: answer)
    }

    /// The family's name and the prompt with whitespace runs collapsed to one space.
    public static func defaultCanonical(family: String, prompt: String) -> String {
        family + ":" + prompt.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            .joined(separator: " ")
    }

    /// The line written to a dataset file, with keys in a fixed order.
    public func jsonLine(tier: String?) -> String {
        var pairs: [(String, JSONValue)] = [
            ("id", .string(id)), ("family", .string(family)), ("domain", .string(domain.rawValue)),
            ("difficulty", .int(difficulty)),
        ]
        if let tier { pairs.append(("tier", .string(tier))) }
        pairs += [
            ("prompt", .string(prompt)), ("answer", .string(answer)), ("verifier", verifier.json),
            ("canonical", .string(canonical)), ("steps", .array(steps.map { .string($0) })),
        ]
        return JSONValue.object(pairs).compact
    }
}

/// The outcome of checking one answer.
public struct Verdict: Equatable, Sendable {
    /// Whether the answer is fully correct.
    public var isCorrect: Bool
    /// Partial credit in [0, 1]: 1 when correct; for families with a natural partial score (per-position
    /// bits, pairwise order, held-out tests passed) the fraction achieved; otherwise 0.
    public var score: Double
    /// Why the answer failed, in words, or empty when it is correct.
    public var detail: String

    /// A fully correct verdict.
    public static let correct = Verdict(isCorrect: true, score: 1, detail: "")

    /// A wrong verdict with the reason and optional partial credit.
    public static func wrong(_ detail: String, partial: Double = 0) -> Verdict {
        Verdict(isCorrect: false, score: partial, detail: detail)
    }
}

/// ASCII whitespace handling shared by verifiers and rewards. Only space, tab, CR and LF count: other
/// Unicode spaces are content, so a completion cannot hide an answer behind them.
enum Text {
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// `text` without leading or trailing ASCII whitespace.
    static func trimmed(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// `text` with every ASCII whitespace byte removed.
    static func compacted(_ text: String) -> String {
        String(decoding: text.utf8.filter { !isSpace($0) }, as: UTF8.self)
    }
}
