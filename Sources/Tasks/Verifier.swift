// Verifiers: how an extracted answer text is judged against a problem. Every check is exact. Integers are
// compared as canonical digit strings, so a 400-digit answer neither overflows nor gets float tolerance.

/// How a problem's answers are checked. The reference is always the problem's `answer`; the cases that
/// need more data carry it.
///
/// In JSON a verifier is either a bare kind name for the simple kinds (`"integer"`, `"exact"`,
/// `"compact"`, `"positional"`, `"ordering"`) or an object with a `"kind"` key and that kind's fields.
public enum Verifier: Equatable, Sendable {
    /// A canonical integer: optional sign, digits, leading zeros allowed; no commas, spaces or decimals.
    case integer
    /// Exact text after trimming ASCII whitespace at both ends.
    case exact
    /// Exact text after removing all ASCII whitespace (lists such as `[3, 2, 1]`).
    case compact
    /// Exact text after removing whitespace; partial credit is the fraction of positions that match.
    case positional
    /// A permutation of the reference's symbols (`>` and `,` separators allowed); partial credit is the
    /// fraction of pairs in the right relative order.
    case ordering
    /// An integer `x` with `a*x + b == c*x + d`, checked by substitution. `x=` before the number is allowed.
    case linear(a: Int, b: Int, c: Int, d: Int)
    /// An arithmetic expression that uses exactly the multiset `numbers` and equals `target` exactly.
    case countdown(numbers: [Int], target: Int)
    /// A program in Ponder's tiny language, run in the sandbox on each held-out `(input, output)` pair.
    case synthesis(tests: [[Int]])
    /// A full 4x4 grid (16 digits, `/` and spaces ignored) that keeps the puzzle's givens and is valid.
    case sudoku(puzzle: String)

    /// The kind name used in JSON.
    public var kind: String {
        switch self {
        case .integer: return "integer"
        case .exact: return "exact"
        case .compact: return "compact"
        case .positional: return "positional"
        case .ordering: return "ordering"
        case .linear: return "linear"
        case .countdown: return "countdown"
        case .synthesis: return "synthesis"
        case .sudoku: return "sudoku"
        }
    }

    /// All kind names, for error messages and documentation.
    public static let kinds = [
        "integer", "exact", "compact", "positional", "ordering", "linear", "countdown", "synthesis", "sudoku",
    ]

    /// Judges `response` (the text inside the last `<answer>` tag) against `reference`.
    /// An answer that is empty after trimming is never correct.
    public func check(response: String, reference: String) -> Verdict {
        let answer = Text.trimmed(response)
        if answer.isEmpty { return .wrong("empty answer") }
        switch self {
        case .integer:
            guard let got = CanonicalInteger(answer) else { return .wrong("not a canonical integer") }
            guard let want = CanonicalInteger(reference) else { return .wrong("reference is not an integer") }
            return got == want ? .correct : .wrong("expected \(want.text)")
        case .exact:
            return answer == Text.trimmed(reference) ? .correct : .wrong("text differs")
        case .compact:
            return Text.compacted(answer) == Text.compacted(reference) ? .correct : .wrong("text differs")
        case .positional:
            let got = Array(Text.compacted(answer).utf8)
            let want = Array(Text.compacted(reference).utf8)
            if got == want { return .correct }
            guard got.count == want.count, !want.isEmpty else { return .wrong("expected \(want.count) symbols") }
            let matches = zip(got, want).filter { $0 == $1 }.count
            return .wrong("\(want.count - matches) positions wrong", partial: Double(matches) / Double(want.count))
        case .ordering:
            return Verifier.checkOrdering(answer, reference: reference)
        case .linear(let a, let b, let c, let d):
            var text = Text.compacted(answer)
            if text.hasPrefix("x=") { text.removeFirst(2) }
            guard let value = CanonicalInteger(text) else { return .wrong("not a canonical integer") }
            guard let x = value.intValue else { return .wrong("does not satisfy the equation") }
            let lhs = Checked.add(Checked.mul(a, x), b)
            let rhs = Checked.add(Checked.mul(c, x), d)
            guard let lhs, let rhs, lhs == rhs else { return .wrong("does not satisfy the equation") }
            return .correct
        case .countdown(let numbers, let target):
            return Countdown.check(answer, numbers: numbers, target: target)
        case .synthesis(let tests):
            return Sandbox.checkSynthesis(answer, tests: tests)
        case .sudoku(let puzzle):
            return MiniSudoku.check(answer, puzzle: puzzle)
        }
    }

    private static func checkOrdering(_ answer: String, reference: String) -> Verdict {
        let strip: (String) -> [UInt8] = { text in
            Text.compacted(text).utf8.filter { $0 != UInt8(ascii: ">") && $0 != UInt8(ascii: ",") }
        }
        let got = strip(answer)
        let want = strip(reference)
        if got == want { return .correct }
        guard got.count == want.count, got.sorted() == want.sorted(), Set(want).count == want.count else {
            return .wrong("not a permutation of the items")
        }
        guard want.count > 1 else { return .wrong("wrong order") }
        var rank: [UInt8: Int] = [:]
        for (i, symbol) in got.enumerated() { rank[symbol] = i }
        var agree = 0
        var pairs = 0
        for i in 0..<want.count {
            for j in (i + 1)..<want.count {
                pairs += 1
                if rank[want[i]]! < rank[want[j]]! { agree += 1 }
            }
        }
        return .wrong("wrong order", partial: Double(agree) / Double(pairs))
    }
}

// MARK: - JSON form

extension Verifier: Codable {
    private enum Keys: String, CodingKey {
        case kind, a, b, c, d, numbers, target, tests, puzzle
    }

    public init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            self = try Verifier.simple(name, codingPath: decoder.codingPath)
            return
        }
        let box = try decoder.container(keyedBy: Keys.self)
        let kind = try box.decode(String.self, forKey: .kind)
        switch kind {
        case "linear":
            self = .linear(
                a: try box.decode(Int.self, forKey: .a), b: try box.decode(Int.self, forKey: .b),
                c: try box.decode(Int.self, forKey: .c), d: try box.decode(Int.self, forKey: .d))
        case "countdown":
            self = .countdown(
                numbers: try box.decode([Int].self, forKey: .numbers), target: try box.decode(Int.self, forKey: .target))
        case "synthesis":
            let tests = try box.decode([[Int]].self, forKey: .tests)
            guard !tests.isEmpty, tests.count <= 1_000, tests.allSatisfy({ $0.count == 2 }) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .tests, in: box, debugDescription: "tests must be a list of 1 to 1000 [input, output] pairs")
            }
            self = .synthesis(tests: tests)
        case "sudoku":
            self = .sudoku(puzzle: try box.decode(String.self, forKey: .puzzle))
        default:
            self = try Verifier.simple(kind, codingPath: decoder.codingPath + [Keys.kind])
        }
    }

    private static func simple(_ name: String, codingPath: [CodingKey]) throws -> Verifier {
        switch name {
        case "integer": return .integer
        case "exact": return .exact
        case "compact": return .compact
        case "positional": return .positional
        case "ordering": return .ordering
        default:
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: codingPath,
                    debugDescription: "unknown verifier '\(name)'; use one of \(kinds.joined(separator: ", "))"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .integer, .exact, .compact, .positional, .ordering:
            var single = encoder.singleValueContainer()
            try single.encode(kind)
        case .linear(let a, let b, let c, let d):
            var box = encoder.container(keyedBy: Keys.self)
            try box.encode(kind, forKey: .kind)
            try box.encode(a, forKey: .a); try box.encode(b, forKey: .b)
            try box.encode(c, forKey: .c); try box.encode(d, forKey: .d)
        case .countdown(let numbers, let target):
            var box = encoder.container(keyedBy: Keys.self)
            try box.encode(kind, forKey: .kind)
            try box.encode(numbers, forKey: .numbers)
            try box.encode(target, forKey: .target)
        case .synthesis(let tests):
            var box = encoder.container(keyedBy: Keys.self)
            try box.encode(kind, forKey: .kind)
            try box.encode(tests, forKey: .tests)
        case .sudoku(let puzzle):
            var box = encoder.container(keyedBy: Keys.self)
            try box.encode(kind, forKey: .kind)
            try box.encode(puzzle, forKey: .puzzle)
        }
    }

    /// The verifier as written in dataset files, keys in a fixed order.
    public var json: JSONValue {
        switch self {
        case .integer, .exact, .compact, .positional, .ordering:
            return .string(kind)
        case .linear(let a, let b, let c, let d):
            return .object([("kind", .string(kind)), ("a", .int(a)), ("b", .int(b)), ("c", .int(c)), ("d", .int(d))])
        case .countdown(let numbers, let target):
            return .object([
                ("kind", .string(kind)), ("numbers", .array(numbers.map { .int($0) })), ("target", .int(target)),
            ])
        case .synthesis(let tests):
            return .object([("kind", .string(kind)), ("tests", .array(tests.map { .array($0.map { .int($0) }) }))])
        case .sudoku(let puzzle):
            return .object([("kind", .string(kind)), ("puzzle", .string(puzzle))])
        }
    }
}

// MARK: - Integers

/// An integer in canonical text form: `[+-]?[0-9]+` in ASCII, of any length. Leading zeros and a sign are
/// allowed; commas, spaces, decimal points and non-ASCII digits are not.
public struct CanonicalInteger: Equatable, Sendable {
    /// Normalised text: no leading zeros, `-` only for negative values, `0` for zero.
    public let text: String

    /// Parses `raw`, or returns nil if it is not a canonical integer.
    public init?(_ raw: String) {
        var bytes = Substring(raw).utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let digits = bytes.drop(while: { $0 == 0x30 })
        if digits.isEmpty {
            text = "0"
        } else {
            text = (negative ? "-" : "") + String(decoding: digits, as: UTF8.self)
        }
    }

    /// The value as an `Int`, or nil when it does not fit.
    public var intValue: Int? {
        Int(text)
    }
}

/// Integer arithmetic that reports overflow as nil instead of trapping.
enum Checked {
    static func add(_ a: Int?, _ b: Int?) -> Int? {
        guard let a, let b else { return nil }
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }

    static func sub(_ a: Int?, _ b: Int?) -> Int? {
        guard let a, let b else { return nil }
        let (r, o) = a.subtractingReportingOverflow(b)
        return o ? nil : r
    }

    static func mul(_ a: Int?, _ b: Int?) -> Int? {
        guard let a, let b else { return nil }
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }
}

// MARK: - Exact rationals

/// An exact rational number with overflow-checked operations; `nil` results mean overflow or division by zero.
public struct Rational: Equatable, Sendable, CustomStringConvertible {
    /// Numerator, carrying the sign.
    public let num: Int
    /// Denominator, always positive.
    public let den: Int

    /// Creates `num/den` in lowest terms, or nil when `den` is zero or normalising overflows.
    public init?(_ num: Int, _ den: Int = 1) {
        guard den != 0, num != Int.min, den != Int.min else { return nil }
        let g = Rational.gcd(abs(num), abs(den))
        let sign = den < 0 ? -1 : 1
        self.num = sign * num / g
        self.den = abs(den) / g
    }

    public var description: String {
        den == 1 ? "\(num)" : "\(num)/\(den)"
    }

    /// Whether the value is a whole number.
    public var isInteger: Bool { den == 1 }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return max(x, 1)
    }

    static func + (l: Rational, r: Rational) -> Rational? {
        guard let a = Checked.mul(l.num, r.den), let b = Checked.mul(r.num, l.den), let n = Checked.add(a, b),
            let d = Checked.mul(l.den, r.den)
        else { return nil }
        return Rational(n, d)
    }

    static func - (l: Rational, r: Rational) -> Rational? {
        guard let a = Checked.mul(l.num, r.den), let b = Checked.mul(r.num, l.den), let n = Checked.sub(a, b),
            let d = Checked.mul(l.den, r.den)
        else { return nil }
        return Rational(n, d)
    }

    static func * (l: Rational, r: Rational) -> Rational? {
        guard let n = Checked.mul(l.num, r.num), let d = Checked.mul(l.den, r.den) else { return nil }
        return Rational(n, d)
    }

    static func / (l: Rational, r: Rational) -> Rational? {
        guard r.num != 0, let n = Checked.mul(l.num, r.den), let d = Checked.mul(l.den, r.num) else { return nil }
        return Rational(n, d)
    }
}
