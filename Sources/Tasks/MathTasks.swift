// Math families: add/subtract chains, multiplication, linear equations and countdown.

/// Chains of additions and subtractions. Level 1 is two-digit plus two-digit.
public struct AddSubTask: TaskFamily {
    public let name = "add"
    public let domain = Domain.math
    public let summary = "add/subtract chains; the teacher works each step in columns, right to left"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "2-digit + 2-digit", "3-digit + 3-digit", "2-3 digit +/- 2-3 digit", "three or four 2-3 digit terms, +/-",
        "six 3-4 digit terms, +/-",
    ]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (terms, range, minus): (Int, ClosedRange<Int>, Bool) = {
            switch level {
            case 1: return (2, 10...99, false)
            case 2: return (2, 100...999, false)
            case 3: return (2, 10...999, true)
            case 4: return (rng.int(in: 3...4), 10...999, true)
            default: return (6, 100...9999, true)
            }
        }()
        var text = String(rng.int(in: range))
        var total = Int(text)!
        var steps: [String] = []
        for _ in 1..<terms {
            let value = rng.int(in: range)
            let subtract = minus && rng.bool()
            steps += Self.columnSteps(total, subtract ? "-" : "+", value)
            text += (subtract ? "-" : "+") + String(value)
            total = subtract ? total - value : total + value
        }
        return make(level: level, prompt: text + "=?", answer: String(total), verifier: .integer, steps: steps)
    }

    /// The trace of `x op y` (y ≥ 0) worked in columns, as a person would on paper. Signs are
    /// settled first, so each step is an addition or a subtraction p − q with p ≥ q ≥ 0:
    ///
    ///     46+97              71-696=-(696-71)
    ///     6+7=13 r3          6-1=5 r5
    ///     4+9+1=14 r43       9-7=2 r25
    ///     =143               6-0=6 r625
    ///                        =-625
    ///
    /// Each column line ends with the digits found so far ("r…"), so the answer is read off the
    /// last line rather than reassembled; a borrow shows as a 1 written before the top digit.
    static func columnSteps(_ x: Int, _ op: Character, _ y: Int) -> [String] {
        let header = "\(x)\(op)\(y)"
        let result = op == "+" ? x + y : x - y
        let (p, q, add, negate): (Int, Int, Bool, Bool)
        switch (x >= 0, op == "+") {
        case (true, true): (p, q, add, negate) = (x, y, true, false)
        case (true, false): (p, q, add, negate) = x >= y ? (x, y, false, false) : (y, x, false, true)
        case (false, true): (p, q, add, negate) = y >= -x ? (y, -x, false, false) : (-x, y, false, true)
        case (false, false): (p, q, add, negate) = (-x, y, true, true)
        }
        let plain = "\(p)\(add ? "+" : "-")\(q)"
        var lines = [header == plain ? header : header + "=" + (negate ? "-(\(plain))" : plain)]
        let a = Array(String(p).reversed()).map { Int(String($0))! }, b = Array(String(q).reversed()).map { Int(String($0))! }
        var carry = 0
        var digits = ""
        for i in 0..<max(a.count, b.count) {
            let da = i < a.count ? a[i] : 0, db = i < b.count ? b[i] : 0
            if add {
                let s = da + db + carry
                lines.append("\(da)+\(db)\(carry > 0 ? "+1" : "")=\(s) r\(s % 10)\(digits)")
                digits = "\(s % 10)" + digits
                carry = s / 10
            } else {
                var d = da - db - carry
                let borrow = d < 0
                if borrow { d += 10 }
                lines.append("\(borrow ? "1" : "")\(da)-\(db)\(carry > 0 ? "-1" : "")=\(d) r\(d)\(digits)")
                digits = "\(d)" + digits
                carry = borrow ? 1 : 0
            }
        }
        if add && carry > 0 { digits = "1" + digits }
        let magnitude = String(Int(digits)!)
        lines.append("=" + (negate && magnitude != "0" ? "-" : "") + magnitude)
        precondition(Int(lines.last!.dropFirst())! == result, "column trace of \(header) gave \(lines.last!)")
        return lines
    }
}

/// Arithmetic as the teachers of other families write it inside their traces: a sum or difference
/// with a number of two or more digits is worked in columns (`AddSubTask.columnSteps`), a product of
/// two-digit numbers is split by place value and its partial products added in columns. Single digits
/// stay one line (`7*8=56`), and so do sums past three digits and products past two, which keeps
/// the traces of the larger levels within a small model's context. A small policy cannot do `53-29`
/// or `23*28` in one step and gets it wrong the same way on every sample; written out, a wrong digit
/// is a slip that differs between samples, which gives GRPO's groups something to compare.
public enum Worked {
    /// `x op y` for op `+` or `-` and any signs; the last line ends with `=result`.
    public static func sum(_ x: Int, _ op: Character, _ y: Int) -> [String] {
        let (op, y): (Character, Int) = y < 0 ? (op == "+" ? "-" : "+", -y) : (op, y)
        let result = op == "+" ? x + y : x - y
        if (abs(x) < 10 && y < 10) || x == 0 || y == 0 || max(abs(x), y) > 999 { return ["\(x)\(op)\(y)=\(result)"] }
        return AddSubTask.columnSteps(x, op, y)
    }

    /// `x*y` for any signs; the last line ends with `=result`.
    public static func product(_ x: Int, _ y: Int) -> [String] {
        // As the mul family does: split the factor with more than one digit, the second when both have several.
        let (p, q) = abs(y) >= 10 ? (abs(x), abs(y)) : (abs(y), abs(x))
        let header = "\(x.parenthesized)*\(y.parenthesized)"
        let parts = placeValues(q)
        if parts.count < 2 || max(p, q) > 99 { return ["\(header)=\(x * y)"] }
        let negative = (x < 0) != (y < 0)
        let term = { (part: Int) in p >= 10 ? "\(p)*\(part)" : "\(part)*\(p)" }
        let split = parts.map(term).joined(separator: "+")
        var lines = [header + "=" + (negative ? "-(\(split))" : split)]
        lines += parts.map { term($0) + "=\(p * $0)" }
        var total = p * parts[0]
        for part in parts.dropFirst() {
            lines += AddSubTask.columnSteps(total, "+", p * part)
            total += p * part
        }
        if negative { lines.append("=\(-total)") }
        precondition(total * (negative ? -1 : 1) == x * y, "product trace of \(header) gave \(lines.last!)")
        return lines
    }

    /// The nonzero digits of n ≥ 0 at their place values, largest first: 3405 → [3000, 400, 5].
    static func placeValues(_ n: Int) -> [Int] {
        var parts: [Int] = []
        var place = 1
        var rest = n
        while rest > 0 {
            if rest % 10 != 0 { parts.insert(rest % 10 * place, at: 0) }
            rest /= 10
            place *= 10
        }
        return parts
    }

    /// The lines with `name` written before the first (`x=53-29`) and, when the work took more than
    /// one line, before the last (`x=24`).
    static func labelled(_ name: String, _ lines: [String]) -> [String] {
        var lines = lines
        lines[0] = name + "=" + lines[0]
        if lines.count > 1 { lines[lines.count - 1] = name + lines[lines.count - 1] }
        return lines
    }
}

/// Multiplication. Level 1 is two-digit times one-digit.
public struct MultiplyTask: TaskFamily {
    public let name = "mul"
    public let domain = Domain.math
    public let summary = "multiplication; the teacher splits one factor by place value and adds the parts in columns"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = ["2-digit x 1-digit", "2-digit x 2-digit", "3-digit x 2-digit", "3-digit x 3-digit", "4-digit x 3-digit"]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (left, right): (ClosedRange<Int>, ClosedRange<Int>) = {
            switch level {
            case 1: return (10...99, 2...9)
            case 2: return (10...99, 10...99)
            case 3: return (100...999, 10...99)
            case 4: return (100...999, 100...999)
            default: return (1000...9999, 100...999)
            }
        }()
        let a = rng.int(in: left)
        let b = rng.int(in: right)
        // Split the factor with more than one digit, the second one when both have several.
        let (whole, split) = b >= 10 ? (a, b) : (b, a)
        let parts = Worked.placeValues(split)
        var steps: [String] = []
        var products: [Int] = []
        for part in parts {
            let product = b >= 10 ? whole * part : part * whole
            steps.append(b >= 10 ? "\(whole)*\(part)=\(product)" : "\(part)*\(whole)=\(product)")
            products.append(product)
        }
        var total = products[0]
        for product in products.dropFirst() {
            steps += AddSubTask.columnSteps(total, "+", product)
            total += product
        }
        return make(level: level, prompt: "\(a)*\(b)=?", answer: String(a * b), verifier: .integer, steps: steps)
    }
}

/// Linear equations in x with an integer solution, verified by substitution.
public struct LinearEquationTask: TaskFamily {
    public let name = "linear"
    public let domain = Domain.math
    public let summary = "solve a*x+b=c*x+d for integer x; answers are checked by substitution"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "x+b=d", "a*x+b=d, a in 2..9", "negative coefficients", "x on both sides", "large coefficients, both sides",
    ]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        var a = 1, b = 0, c = 0, x = 0
        switch level {
        case 1:
            b = rng.bool() ? rng.int(in: 1...40) : -rng.int(in: 1...40)
            x = rng.int(in: 0...40)
        case 2:
            a = rng.int(in: 2...9)
            b = rng.bool() ? rng.int(in: 1...30) : -rng.int(in: 1...30)
            x = rng.int(in: -10...20)
        case 3:
            repeat { a = rng.int(in: -9...9) } while a == 0 || a == 1
            b = rng.int(in: -50...50)
            x = rng.int(in: -20...20)
        case 4:
            repeat {
                a = rng.int(in: -9...9)
                c = rng.int(in: -9...9)
            } while a == 0 || c == 0 || a == c
            b = rng.int(in: -50...50)
            x = rng.int(in: -20...20)
        default:
            repeat {
                a = rng.int(in: -30...30)
                c = rng.int(in: -30...30)
            } while a == 0 || c == 0 || a == c
            b = rng.int(in: -500...500)
            x = rng.int(in: -50...50)
        }
        let d = a * x + b - c * x
        let lhs = LinearEquationTask.side(a, b)
        let rhs = c == 0 ? String(d) : LinearEquationTask.side(c, d)
        var steps: [String] = []
        let k = a - c
        let m = d - b
        if c != 0 {
            steps.append("\(LinearEquationTask.term(a))\(LinearEquationTask.signed(-c))x=\(d)\(LinearEquationTask.signed(-b))")
            let work = Worked.sum(d, "-", b)
            if work.count > 1 { steps += work }
            steps.append("\(LinearEquationTask.term(k))=\(m)")
        } else if b != 0 {
            steps += Worked.labelled(LinearEquationTask.term(a), Worked.sum(d, "-", b))
        }
        if k != 1 { steps.append("x=\(m)/\(k.parenthesized)=\(x)") }
        let check = c == 0
            ? "check \(a == 1 ? "" : a.parenthesized + "*")\(x.parenthesized)\(b == 0 ? "" : LinearEquationTask.signed(b))=\(d)"
            : "check \(a * x + b)=\(c * x + d)"
        steps.append(check)
        return make(
            level: level, prompt: "Solve \(lhs)=\(rhs), x=?", answer: String(x),
            verifier: .linear(a: a, b: b, c: c, d: d), canonical: "linear:\(a),\(b),\(c),\(d)", steps: steps)
    }

    /// `3x+5`, `-x`, `x-2`: a coefficient times x, then a signed constant unless zero.
    static func side(_ coefficient: Int, _ constant: Int) -> String {
        term(coefficient) + (constant == 0 ? "" : signed(constant))
    }

    static func term(_ coefficient: Int) -> String {
        switch coefficient {
        case 1: return "x"
        case -1: return "-x"
        default: return "\(coefficient)x"
        }
    }

    static func signed(_ value: Int) -> String {
        value < 0 ? "\(value)" : "+\(value)"
    }
}

extension Int {
    /// The number, in parentheses when negative, for writing inside an expression.
    var parenthesized: String {
        self < 0 ? "(\(self))" : "\(self)"
    }
}

/// Countdown: reach the target with the given numbers, each used exactly once, with + - * /.
public struct CountdownTask: TaskFamily {
    public let name = "countdown"
    public let domain = Domain.math
    public let summary = "reach the target using every given number once with + - * / (exact rationals)"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = ["2 numbers 1-30", "3 numbers 1-10", "3 numbers 1-25", "4 numbers 1-25", "5 numbers 1-50"]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (count, range): (Int, ClosedRange<Int>) = {
            switch level {
            case 1: return (2, 1...30)
            case 2: return (3, 1...10)
            case 3: return (3, 1...25)
            case 4: return (4, 1...25)
            default: return (5, 1...50)
            }
        }()
        while true {
            let numbers = (0..<count).map { _ in rng.int(in: range) }
            // Combine two random pool items at a time, as a person would, keeping whole positive values.
            var pool: [(value: Int, expr: TinyExpr)] = numbers.map { ($0, .number($0)) }
            var steps: [String] = []
            while pool.count > 1 {
                var i = rng.int(in: 0..<pool.count)
                var j = rng.int(in: 0..<(pool.count - 1))
                if j >= i { j += 1 }
                if pool[i].value < pool[j].value { swap(&i, &j) }
                let (a, b) = (pool[i], pool[j])
                var options = ["+"]
                if a.value > b.value { options.append("-") }
                if a.value * b.value <= 1000 && b.value > 1 { options.append("*") }
                if b.value > 1 && a.value % b.value == 0 { options.append("/") }
                let op = rng.pick(options)
                let value = CountdownTask.apply(op, a.value, b.value)
                steps.append("\(a.value)\(op)\(b.value)=\(value)")
                pool.remove(at: max(i, j))
                pool.remove(at: min(i, j))
                pool.append((value, .binary(op, a.expr, b.expr)))
            }
            let target = pool[0].value
            guard target >= 1, target <= 1000, !(count > 2 && numbers.contains(target)) else { continue }
            let shown = rng.shuffled(numbers)
            let answer = pool[0].expr.source
            return make(
                level: level,
                prompt: "Make \(target) with \(shown.map(String.init).joined(separator: " "))",
                answer: answer, verifier: .countdown(numbers: shown, target: target),
                canonical: "countdown:\(numbers.sorted().map(String.init).joined(separator: ","))=\(target)",
                steps: steps)
        }
    }
}

extension CountdownTask {
    /// Integer arithmetic for the teacher: operands are positive and divisions exact by construction.
    static func apply(_ op: String, _ a: Int, _ b: Int) -> Int {
        switch op {
        case "+": return a + b
        case "-": return a - b
        case "*": return a * b
        default: return a / b
        }
    }
}

/// The countdown verifier: parses an arithmetic expression, checks its numbers against the multiset and
/// evaluates it with exact rationals.
enum Countdown {
    static let maxBytes = 200
    static let maxDepth = 24

    static func check(_ answer: String, numbers: [Int], target: Int) -> Verdict {
        var text = Text.compacted(answer)
        // Allow a trailing "=target", as people write it; any other '=' is an error.
        if let equals = text.firstIndex(of: "=") {
            guard text[text.index(after: equals)...] == String(target) else { return .wrong("the expression must equal \(target)") }
            text = String(text[..<equals])
        }
        guard text.utf8.count <= maxBytes else { return .wrong("expression longer than \(maxBytes) characters") }
        var parser = Parser(bytes: Array(text.utf8))
        guard let value = parser.parseExpression(depth: 0), parser.position == parser.bytes.count else {
            return .wrong(parser.error.isEmpty ? "not an arithmetic expression" : parser.error)
        }
        guard parser.literals.sorted() == numbers.sorted() else {
            return .wrong("must use exactly the numbers \(numbers.map(String.init).joined(separator: " ")) once each")
        }
        guard let result = value else { return .wrong("division by zero or overflow") }
        return result == Rational(target) ? .correct : .wrong("the expression equals \(result), not \(target)")
    }

    /// Recursive descent over `+ - * / ( )`, unary minus and non-negative integer literals. A parse failure is `nil`;
    /// an evaluation failure (division by zero, overflow) is `.some(nil)`, so the multiset is still checked.
    struct Parser {
        let bytes: [UInt8]
        var position = 0
        var literals: [Int] = []
        var error = ""

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func parseExpression(depth: Int) -> Rational?? {
            guard depth <= Countdown.maxDepth else {
                error = "nested more than \(Countdown.maxDepth) deep"
                return nil
            }
            guard var value = parseTerm(depth: depth) else { return nil }
            while let op = peek, op == UInt8(ascii: "+") || op == UInt8(ascii: "-") {
                position += 1
                guard let rhs = parseTerm(depth: depth) else { return nil }
                if let l = value, let r = rhs {
                    value = op == UInt8(ascii: "+") ? l + r : l - r
                } else {
                    value = .none
                }
            }
            return .some(value)
        }

        mutating func parseTerm(depth: Int) -> Rational?? {
            guard var value = parseFactor(depth: depth) else { return nil }
            while let op = peek, op == UInt8(ascii: "*") || op == UInt8(ascii: "/") {
                position += 1
                guard let rhs = parseFactor(depth: depth) else { return nil }
                if let l = value, let r = rhs {
                    value = op == UInt8(ascii: "*") ? l * r : l / r
                } else {
                    value = .none
                }
            }
            return .some(value)
        }

        mutating func parseFactor(depth: Int) -> Rational?? {
            guard let byte = peek else { return nil }
            if byte == UInt8(ascii: "(") {
                position += 1
                guard let inner = parseExpression(depth: depth + 1), peek == UInt8(ascii: ")") else { return nil }
                position += 1
                return inner
            }
            if byte == UInt8(ascii: "-") {  // unary minus, as in -85 + 21*8: it uses no number
                position += 1
                guard depth < Countdown.maxDepth, let inner = parseFactor(depth: depth + 1) else {
                    if depth >= Countdown.maxDepth { error = "nested more than \(Countdown.maxDepth) deep" }
                    return nil
                }
                return .some(inner.flatMap { Rational(-$0.num, $0.den) })
            }
            let start = position
            while let digit = peek, digit >= 0x30 && digit <= 0x39 { position += 1 }
            guard position > start, position - start <= 9 else {
                if position - start > 9 { error = "number too large" }
                return nil
            }
            let literal = Int(String(decoding: bytes[start..<position], as: UTF8.self))!
            literals.append(literal)
            return .some(Rational(literal))
        }
    }
}
