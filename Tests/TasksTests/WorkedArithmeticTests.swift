import XCTest
import Tasks

/// The arithmetic the linear, stack, synth, mul and program teachers write out: every line a true equation,
/// the last line the result, columns exactly where an operand has two or more digits; and listfn's sorts and
/// sums written one item at a time.
final class WorkedArithmeticTests: XCTestCase {
    func testEverySumLineIsTrueAndTheLastIsTheResult() {
        for x in stride(from: -1_200, through: 1_200, by: 37) {
            for y in stride(from: -1_100, through: 1_100, by: 41) {
                for op: Character in ["+", "-"] {
                    let lines = Worked.sum(x, op, y)
                    let result = op == "+" ? x + y : x - y
                    XCTAssertEqual(Self.value(ofLast: lines), result, "\(x)\(op)\(y): \(lines)")
                    for line in lines { XCTAssertTrue(Self.isTrue(line), "\(x)\(op)\(y): '\(line)' in \(lines)") }
                    let columns = max(abs(x), abs(y)) >= 10 && max(abs(x), abs(y)) <= 999 && x != 0 && y != 0
                    XCTAssertEqual(lines.count > 1, columns, "\(x)\(op)\(y): \(lines)")
                }
            }
        }
        XCTAssertEqual(Worked.sum(53, "-", 29), ["53-29", "13-9=4 r4", "5-2-1=2 r24", "=24"])
        XCTAssertEqual(Worked.sum(-9, "-", -5), ["-9+5=-4"], "a negative subtrahend is added")
    }

    func testEveryProductLineIsTrueAndTheLastIsTheResult() {
        for x in -120...120 where x % 7 == 0 || abs(x) < 12 {
            for y in -110...110 {
                let lines = Worked.product(x, y)
                XCTAssertEqual(Self.value(ofLast: lines), x * y, "\(x)*\(y): \(lines)")
                for line in lines { XCTAssertTrue(Self.isTrue(line), "\(x)*\(y): '\(line)' in \(lines)") }
            }
        }
        XCTAssertEqual(Worked.product(23, 28), [
            "23*28=23*20+23*8", "23*20=460", "23*8=184", "460+184", "0+4=4 r4", "6+8=14 r44", "4+1+1=6 r644", "=644",
        ])
        XCTAssertEqual(Worked.product(-7, 19), ["(-7)*19=-(10*7+9*7)", "10*7=70", "9*7=63", "70+63", "0+3=3 r3", "7+6=13 r33", "=133", "=-133"])
        XCTAssertEqual(Worked.product(7, 8), ["7*8=56"])
        XCTAssertEqual(Worked.product(23, 20), ["23*20=460"], "one nonzero digit: one line")
        XCTAssertEqual(Worked.product(144, 12), ["144*12=1728"], "past two digits: one line")
    }

    func testTeachersWriteTheirArithmeticOut() {
        let linear = TaskRegistry.family(named: "linear")!
        let stack = TaskRegistry.family(named: "stack")!
        let mul = TaskRegistry.family(named: "mul")!
        for index in 0..<300 {
            // x+b=d: the subtraction d-b in columns whenever a number has two digits, ending in x=answer.
            let l = linear.problem(seed: 4, stream: "worked", level: 1, index: index, id: "l")
            let solved = l.steps[l.steps.count - 2]
            XCTAssertTrue(solved.hasPrefix("x=") && solved.hasSuffix("=" + l.answer), "\(l.prompt): \(l.steps)")
            for line in l.steps.dropFirst().dropLast(2) { XCTAssertTrue(Self.isTrue(line), "\(l.prompt): '\(line)'") }
            // Every product and partial sum in a multiplication trace is a true equation.
            let m = mul.problem(seed: 4, stream: "worked", level: 2, index: index, id: "m")
            for line in m.steps { XCTAssertTrue(Self.isTrue(line), "\(m.prompt): '\(line)'") }
            XCTAssertTrue(m.steps.last!.hasSuffix("=" + m.answer), "\(m.prompt): \(m.steps)")
            // RPN: the work, true line by line, comes before the operator's stack line.
            let s = stack.problem(seed: 4, stream: "worked", level: 1, index: index, id: "s")
            let work = s.steps.filter { !$0.contains(":") }
            for line in work { XCTAssertTrue(Self.isTrue(line), "\(s.prompt): '\(line)'") }
            let tokens = s.prompt.dropFirst(5).split(separator: " ")
            if tokens.last != "*", tokens.compactMap({ Int($0) }).contains(where: { $0 >= 10 }) {
                XCTAssertEqual(s.steps.count, 2 + work.count + 1, "\(s.prompt): \(s.steps)")
                XCTAssertGreaterThan(work.count, 1, "\(s.prompt): a sum with a two-digit operand is worked in columns: \(s.steps)")
            }
        }
    }

    /// Each assignment is written as the program has it, then with the values each name held at that moment,
    /// then worked out, its group ending `name=value`; the trace ends naming the returned variable.
    func testProgramTracesLookUpEachNameAndWorkTheArithmeticOut() {
        let program = TaskRegistry.family(named: "program")!
        var worked = 0
        for level in 1...4 {
            for index in 0..<300 {
                let p = program.problem(seed: 4, stream: "worked", level: level, index: index, id: "p")
                var state: [Character: Int] = [:]
                for line in p.steps {
                    guard let name = line.first, "abcd".contains(name), line.dropFirst().first == "=" else {
                        if !line.hasPrefix("if ") && !line.hasPrefix("round ") {
                            XCTAssertTrue(Self.isTrue(line), "\(p.prompt): '\(line)' in \(p.steps)")
                        }
                        continue
                    }
                    let sides = line.dropFirst(2).split(separator: "=", omittingEmptySubsequences: false).map(String.init)
                    if sides.count == 1 {
                        state[name] = Int(sides[0])
                        XCTAssertNotNil(state[name], "\(p.prompt): '\(line)'")
                        continue
                    }
                    // The source, its names replaced by the values the trace gave them before this line.
                    let looked = String(sides[0].flatMap { c -> String in
                        guard "abcd".contains(c) else { return String(c) }
                        guard let v = state[c] else { return "?" }
                        return v < 0 ? "(\(v))" : "\(v)"
                    })
                    XCTAssertNotNil(Self.evaluate(sides[1]), "\(p.prompt): '\(line)'")
                    XCTAssertEqual(Self.evaluate(looked), Self.evaluate(sides[1]), "\(p.prompt): '\(line)' looks a name up wrongly in \(p.steps)")
                    XCTAssertTrue(Self.isTrue(sides.dropFirst().joined(separator: "=")), "\(p.prompt): '\(line)'")
                    if let value = Int(sides.last!), sides.count > 2 { state[name] = value } else { worked += 1 }
                }
                let returned = p.prompt.split(separator: ";").last!
                XCTAssertEqual(p.steps.last, "\(returned)=\(p.answer)", "\(p.prompt): \(p.steps)")
                XCTAssertEqual(state[returned.first!].map(String.init), p.answer, "\(p.prompt): \(p.steps)")
            }
        }
        XCTAssertGreaterThan(worked, 300, "sums with two-digit operands and products beyond the times table are worked in columns")
    }

    /// listfn writes a sort as an insertion sort (the sorted prefix after each input item) and a sum of three
    /// or more numbers as running totals; each step on the previous step's result.
    func testListTracesSortOneItemAtATimeAndSumWithRunningTotals() {
        let listfn = TaskRegistry.family(named: "listfn")!
        var sorts = 0, textSorts = 0, sums = 0
        for level in 1...2 {
            for index in 0..<400 {
                let p = listfn.problem(seed: 4, stream: "worked", level: level, index: index, id: "l")
                for (i, line) in p.steps.enumerated() where line.hasPrefix("sort(") && line.hasSuffix(":") {
                    // A list's items, or a string's letters, each line the sorted prefix in the same notation.
                    let argument = line.dropFirst(5).dropLast(2)
                    let isText = argument.hasPrefix("\"")
                    let items = isText ? argument.dropFirst().dropLast().map(String.init) : Self.list(argument).map(String.init)
                    let inserted = Array(p.steps[(i + 1)...].prefix(items.count))
                    XCTAssertEqual(inserted.count, items.count, "\(p.prompt): one line per item in \(p.steps)")
                    for (k, prefix) in inserted.enumerated() {
                        let sorted = isText ? items.prefix(k + 1).sorted() : items.prefix(k + 1).map { Int($0)! }.sorted().map(String.init)
                        let expected = isText ? "\"" + sorted.joined() + "\"" : "[" + sorted.joined(separator: ",") + "]"
                        XCTAssertEqual(prefix, expected, "\(p.prompt): \(p.steps)")
                    }
                    if isText { textSorts += 1 } else { sorts += 1 }
                }
                for (i, line) in p.steps.enumerated() where line.hasPrefix("sum([") && line.hasSuffix(":") {
                    let items = Self.list(line.dropFirst(4).dropLast(2))
                    var total = items[0]
                    for (k, item) in items.dropFirst().enumerated() {
                        XCTAssertEqual(p.steps[i + 1 + k], "\(total)+\(item)=\(total + item)", "\(p.prompt): \(p.steps)")
                        total += item
                    }
                    XCTAssertEqual(p.steps[i + items.count], "=\(total)", "\(p.prompt): \(p.steps)")
                    sums += 1
                }
            }
        }
        XCTAssertGreaterThan(sorts, 50)
        XCTAssertGreaterThan(textSorts, 10)
        XCTAssertGreaterThan(sums, 20)
    }

    static func list<S: StringProtocol>(_ text: S) -> [Int] {
        text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Int($0) }
    }

    // MARK: - A checker for the traces' equations

    /// A line `e1=e2=...` (a column line's " r…" suffix dropped) whose non-empty sides all have one value.
    /// A line starting with `=` states a value, which is true by itself.
    static func isTrue(_ line: String) -> Bool {
        let body = line.split(separator: " ").first.map(String.init) ?? line
        let sides = body.split(separator: "=", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        let values = sides.map { evaluate($0) }
        guard values.allSatisfy({ $0 != nil }) else { return false }
        return Set(values.map { $0! }).count == 1
    }

    static func value(ofLast lines: [String]) -> Int? {
        lines.last.flatMap { $0.split(separator: "=").last }.flatMap { Int($0) }
    }

    /// Integers with + - * and parentheses, unary minus, the usual precedence.
    static func evaluate(_ text: String) -> Int? {
        var chars = Array(text)[...]
        func number() -> Int? {
            if chars.first == "(" {
                chars.removeFirst()
                guard let v = sum(), chars.first == ")" else { return nil }
                chars.removeFirst()
                return v
            }
            if chars.first == "-" { chars.removeFirst(); return number().map { -$0 } }
            let digits = chars.prefix { $0.isNumber }
            guard !digits.isEmpty else { return nil }
            chars.removeFirst(digits.count)
            return Int(String(digits))
        }
        func product() -> Int? {
            guard var v = number() else { return nil }
            while chars.first == "*" {
                chars.removeFirst()
                guard let w = number() else { return nil }
                v *= w
            }
            return v
        }
        func sum() -> Int? {
            guard var v = product() else { return nil }
            while let op = chars.first, op == "+" || op == "-" {
                chars.removeFirst()
                guard let w = product() else { return nil }
                v = op == "+" ? v + w : v - w
            }
            return v
        }
        let v = sum()
        return chars.isEmpty ? v : nil
    }
}
