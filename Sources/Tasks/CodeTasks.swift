// Code families: program output, a stack (RPN) machine, list/string function output (a mini CRUXEval) and
// program synthesis from input/output examples. Programs are in Ponder's tiny language (Sandbox.swift).

/// What a short tiny-language program returns: assignments, then ifs and loops at higher levels.
public struct ProgramOutputTask: TaskFamily {
    public let name = "program"
    public let domain = Domain.code
    public let summary = "what a tiny-language program returns; the teacher traces its execution"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "two assignments with +/-", "four assignments with + - *", "assignments and an if/else",
        "a rep loop and an if", "nested loop and branch, more statements",
    ]

    public init() {}

    /// Long on purpose: one draw-and-check loop (a program that fails, overflows or runs too long is
    /// drawn again) holding one program shape per level, side by side.
    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        while true {
            var program: [TinyStmt] = []
            var defined: [String] = []
            let names = ["a", "b", "c", "d"]
            func operand(_ rng: inout SplitMix64) -> TinyExpr {
                !defined.isEmpty && rng.int(in: 0...2) > 0 ? .name(rng.pick(defined)) : .number(rng.int(in: 1...(level == 1 ? 20 : 12)))
            }
            func expression(_ rng: inout SplitMix64, ops: [String]) -> TinyExpr {
                let lhs: TinyExpr = defined.isEmpty ? .number(rng.int(in: 1...20)) : .name(rng.pick(defined))
                return .binary(rng.pick(ops), lhs, operand(&rng))
            }
            func assignment(_ rng: inout SplitMix64, ops: [String], fresh: Bool) -> TinyStmt {
                let unused = names.filter { !defined.contains($0) }
                let target = fresh && !unused.isEmpty ? unused[0] : rng.pick(defined.isEmpty ? [names[0]] : defined)
                let value = expression(&rng, ops: ops)
                if !defined.contains(target) { defined.append(target) }
                return .assign(target, value)
            }
            func condition(_ rng: inout SplitMix64) -> TinyExpr {
                .binary(rng.pick([">", "<", "=="]), .name(rng.pick(defined)), .number(rng.int(in: 1...20)))
            }
            let all = ["+", "-", "*"]
            switch level {
            case 1:
                program.append(.assign("a", .number(rng.int(in: 1...20))))
                defined = ["a"]
                program.append(.assign("b", .binary(rng.pick(["+", "-"]), .name("a"), .number(rng.int(in: 1...20)))))
                defined.append("b")
            case 2:
                program.append(.assign("a", .number(rng.int(in: 1...12))))
                defined = ["a"]
                for i in 0..<3 { program.append(assignment(&rng, ops: all, fresh: i < 2)) }
            case 3:
                program.append(.assign("a", .number(rng.int(in: 1...12))))
                defined = ["a"]
                program.append(assignment(&rng, ops: all, fresh: true))
                let cond = condition(&rng)
                let then = [assignment(&rng, ops: all, fresh: false)]
                let otherwise = [assignment(&rng, ops: all, fresh: false)]
                program.append(.ifElse(cond, then, otherwise))
                program.append(assignment(&rng, ops: ["+", "-"], fresh: true))
            case 4:
                program.append(.assign("a", .number(rng.int(in: 1...9))))
                defined = ["a"]
                program.append(assignment(&rng, ops: ["+", "-"], fresh: true))
                let body = [assignment(&rng, ops: ["+", "-"], fresh: false)]
                program.append(.rep(.number(rng.int(in: 2...4)), body))
                let cond = condition(&rng)
                program.append(.ifElse(cond, [assignment(&rng, ops: all, fresh: false)], []))
            default:
                program.append(.assign("a", .number(rng.int(in: 1...9))))
                defined = ["a"]
                program.append(assignment(&rng, ops: ["+", "-"], fresh: true))
                program.append(assignment(&rng, ops: all, fresh: true))
                let cond = condition(&rng)
                let inner: [TinyStmt] = [
                    assignment(&rng, ops: ["+", "-"], fresh: false),
                    .ifElse(cond, [assignment(&rng, ops: ["+", "-"], fresh: false)], [assignment(&rng, ops: ["+", "-"], fresh: false)]),
                ]
                program.append(.rep(.number(rng.int(in: 2...4)), inner))
                program.append(assignment(&rng, ops: all, fresh: true))
            }
            let result: TinyStmt = .expr(.name(rng.pick(defined)))
            program.append(result)
            let (outcome, trace) = Sandbox.trace(program)
            guard case .value(let value) = outcome, abs(value) <= 100_000, trace.count <= 40 else { continue }
            return make(
                level: level, prompt: "Run: " + TinyStmt.source(program), answer: String(value), verifier: .integer,
                steps: trace.flatMap { $0 })
        }
    }
}

/// A stack machine in reverse Polish notation with `dup`, `swap` and `drop` at higher levels.
public struct StackMachineTask: TaskFamily {
    public let name = "stack"
    public let domain = Domain.code
    public let summary = "evaluate an RPN stack program; the teacher shows the stack after each token"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "two numbers, one operator", "three numbers, two operators", "four numbers, dup or swap",
        "five numbers, dup/swap/drop", "seven numbers, several stack ops",
    ]

    public init() {}

    /// Long on purpose: one draw-and-check loop (a draw that breaks a rule is drawn again) whose state
    /// the steps share; the level only sets its sizes.
    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (numbers, specials, range): (Int, Int, ClosedRange<Int>) = {
            switch level {
            case 1: return (2, 0, 1...30)
            case 2: return (3, 0, 1...12)
            case 3: return (4, 1, 1...9)
            case 4: return (5, 2, 1...9)
            default: return (7, 3, 1...9)
            }
        }()
        while true {
            var tokens: [String] = []
            var stack: [Int] = []
            var steps: [String] = []
            var toPush = numbers
            var extras = specials
            var valid = true
            while toPush > 0 || extras > 0 || stack.count > 1 {
                var choices: [String] = []
                if toPush > 0 { choices += ["push", "push"] }
                if stack.count >= 2 { choices += ["op", "op"] }
                if extras > 0 && !stack.isEmpty {
                    choices.append("dup")
                    if stack.count >= 2 { choices += ["swap", "drop"] }
                }
                if choices.isEmpty { valid = false; break }
                let token: String
                switch rng.pick(choices) {
                case "push":
                    toPush -= 1
                    let value = rng.int(in: range)
                    stack.append(value)
                    token = String(value)
                case "op":
                    let op = rng.pick(["+", "-", "*"])
                    let b = stack.removeLast()
                    let a = stack.removeLast()
                    stack.append(op == "+" ? a + b : op == "-" ? a - b : a * b)
                    let work = op == "*" ? Worked.product(a, b) : Worked.sum(a, Character(op), b)
                    if work.count > 1 { steps += work }
                    token = op
                case let special:
                    extras -= 1
                    switch special {
                    case "dup": stack.append(stack.last!)
                    case "swap": stack.swapAt(stack.count - 1, stack.count - 2)
                    default: stack.removeLast()
                    }
                    token = special
                }
                if stack.contains(where: { abs($0) > 100_000 }) { valid = false; break }
                tokens.append(token)
                steps.append("\(token): [\(stack.map(String.init).joined(separator: " "))]")
            }
            guard valid, stack.count == 1, tokens.count >= 3 else { continue }
            return make(
                level: level, prompt: "RPN: " + tokens.joined(separator: " "), answer: String(stack[0]),
                verifier: .integer, steps: steps)
        }
    }
}

/// List and string function output, a mini CRUXEval: `rev(sort([3,1,2]))`.
public struct ListFunctionTask: TaskFamily {
    public let name = "listfn"
    public let domain = Domain.code
    public let summary = "output of composed list/string functions; the teacher evaluates inside out"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "one function on a short digit list", "two functions, lists or strings", "two or three functions, more kinds",
        "three functions, longer inputs", "four functions, long inputs",
    ]

    /// A list of integers or a string: the values the functions take and return.
    enum Value: Equatable {
        case list([Int]), text(String), number(Int)

        var source: String {
            switch self {
            case .list(let items): return "[" + items.map(String.init).joined(separator: ",") + "]"
            case .text(let text): return "\"" + text + "\""
            case .number(let n): return String(n)
            }
        }
    }

    public init() {}

    /// Functions from a sequence to a sequence, by name, with whether they need integers.
    static let transforms: [(name: String, numeric: Bool)] = [
        ("rev", false), ("sort", false), ("tail", false), ("uniq", false), ("take2", false), ("drop2", false),
        ("inc", true), ("dbl", true), ("evens", true),
    ]
    /// Functions from a sequence to a number.
    static let reducers: [(name: String, numeric: Bool)] = [
        ("len", false), ("sum", true), ("max", true), ("min", true), ("first", true), ("last", true),
    ]

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (depth, length, maxValue, basic): (Int, ClosedRange<Int>, Int, Bool) = {
            switch level {
            case 1: return (1, 3...4, 9, true)
            case 2: return (2, 4...5, 20, true)
            case 3: return (rng.int(in: 2...3), 5...6, 20, false)
            case 4: return (3, 6...7, 30, false)
            default: return (4, 7...9, 50, false)
            }
        }()
        let basicNames: Set<String> = ["rev", "sort", "len", "sum", "max", "min", "first", "last"]
        while true {
            let useText = level >= 2 && rng.int(in: 0...2) == 0
            let count = rng.int(in: length)
            var value: Value = useText
                ? .text(String((0..<count).map { _ in Character(UnicodeScalar(UInt8(97 + rng.int(in: 0...7)))) }))
                : .list((0..<count).map { _ in rng.int(in: 0...maxValue) })
            var expression = value.source
            var steps: [String] = []
            var ok = true
            for step in 0..<depth {
                let last = step == depth - 1
                var pool = ListFunctionTask.transforms + (last ? ListFunctionTask.reducers : [])
                pool = pool.filter { !(useText && $0.numeric) && (!basic || basicNames.contains($0.name)) }
                let function = rng.pick(pool).name
                guard let next = ListFunctionTask.apply(function, value) else { ok = false; break }
                let call = "\(function)(\(expression))"
                steps += ListFunctionTask.work(function, value, next)
                expression = call
                value = next
            }
            guard ok, value != .text("") else { continue }
            return make(
                level: level, prompt: "Eval: " + expression, answer: value.source, verifier: .compact, steps: steps)
        }
    }

    /// The teacher's lines for `function(value)=result`. A sort is written as an insertion sort, one input
    /// item inserted per line, and a sum of three or more numbers as running totals, because a small
    /// policy copies a list wrongly when it sorts in one step and adds wrongly when it sums in one.
    static func work(_ function: String, _ value: Value, _ result: Value) -> [String] {
        let call = "\(function)(\(value.source))"
        switch (function, value) {
        case ("sort", .list(let items)) where items.count > 2:
            return [call + ":"] + insertionPrefixes(items).map { Value.list($0).source }
        case ("sort", .text(let text)) where text.count > 2:
            return [call + ":"] + insertionPrefixes(Array(text)).map { Value.text(String($0)).source }
        case ("sum", .list(let items)) where items.count > 2:
            var total = items[0]
            return [call + ":"] + items.dropFirst().map { item in
                defer { total += item }
                return "\(total)+\(item)=\(total + item)"
            } + ["=" + result.source]
        default:
            return [call + "=" + result.source]
        }
    }

    /// Insertion sort's states: the sorted prefix after each item is inserted, the last one `items.sorted()`.
    static func insertionPrefixes<T: Comparable>(_ items: [T]) -> [[T]] {
        var sorted: [T] = []
        return items.map { item in
            sorted.insert(item, at: sorted.firstIndex { $0 > item } ?? sorted.count)
            return sorted
        }
    }

    /// Applies a named function; nil when it is undefined on the value (max of an empty list).
    static func apply(_ function: String, _ value: Value) -> Value? {
        switch value {
        case .number: return nil
        case .text(let text):
            let chars = Array(text)
            switch function {
            case "rev": return .text(String(chars.reversed()))
            case "sort": return .text(String(chars.sorted()))
            case "tail": return chars.isEmpty ? nil : .text(String(chars.dropFirst()))
            case "uniq": return .text(String(uniq(chars)))
            case "take2": return .text(String(chars.prefix(2)))
            case "drop2": return .text(String(chars.dropFirst(2)))
            case "len": return .number(chars.count)
            default: return nil
            }
        case .list(let items):
            switch function {
            case "rev": return .list(items.reversed())
            case "sort": return .list(items.sorted())
            case "tail": return items.isEmpty ? nil : .list(Array(items.dropFirst()))
            case "uniq": return .list(uniq(items))
            case "take2": return .list(Array(items.prefix(2)))
            case "drop2": return .list(Array(items.dropFirst(2)))
            case "inc": return .list(items.map { $0 + 1 })
            case "dbl": return .list(items.map { $0 * 2 })
            case "evens": return .list(items.filter { $0 % 2 == 0 })
            case "len": return .number(items.count)
            case "sum": return .number(items.reduce(0, +))
            case "max": return items.max().map { .number($0) }
            case "min": return items.min().map { .number($0) }
            case "first": return items.first.map { .number($0) }
            case "last": return items.last.map { .number($0) }
            default: return nil
            }
        }
    }

    static func uniq<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }
}

/// Program synthesis from input/output examples. The model writes a tiny-language program in `x`; the
/// verifier runs it in the sandbox on held-out inputs that the prompt does not show.
public struct SynthesisTask: TaskFamily {
    public let name = "synth"
    public let domain = Domain.code
    public let summary = "write a tiny-language program f(x) from examples; scored in the sandbox on held-out inputs"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "x+c, x-c or c*x", "a*x+b", "quadratics", "a branch on x", "loops: powers, sums, factorials",
    ]

    public init() {}

    /// Long on purpose: one case per level, each making its program and its traced solution, read as a table.
    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        var program: [TinyStmt]
        var inputs = Array(0...12)
        var shownCount = 3
        var linear: (a: Int, b: Int)? = nil
        switch level {
        case 1:
            let c = rng.int(in: 2...9)
            switch rng.int(in: 0...2) {
            case 0: linear = (1, rng.int(in: 1...20))
            case 1: linear = (1, -rng.int(in: 1...20))
            default: linear = (c, 0)
            }
            program = []
        case 2:
            linear = (rng.int(in: 2...9), rng.bool() ? rng.int(in: 1...20) : -rng.int(in: 1...9))
            program = []
        case 3:
            let a = rng.int(in: 1...3)
            let b = rng.int(in: -5...5)
            let c = rng.int(in: -9...9)
            var expr: TinyExpr = a == 1 ? .binary("*", .name("x"), .name("x")) : .binary("*", .binary("*", .number(a), .name("x")), .name("x"))
            if b != 0 { expr = .binary(b > 0 ? "+" : "-", expr, .binary("*", .number(abs(b)), .name("x"))) }
            if c != 0 { expr = .binary(c > 0 ? "+" : "-", expr, .number(abs(c))) }
            program = [.expr(expr)]
            shownCount = 4
        case 4:
            let cut = rng.int(in: 3...8)
            let high = TinyExpr.binary(rng.pick(["*", "+"]), .name("x"), .number(rng.int(in: 2...5)))
            let low = TinyExpr.binary(rng.pick(["+", "-"]), .name("x"), .number(rng.int(in: 1...9)))
            program = [.ifElse(.binary(">", .name("x"), .number(cut)), [.ret(high)], []), .ret(low)]
            shownCount = 5
        default:
            inputs = Array(0...8)
            let template = rng.int(in: 0...3)
            switch template {
            case 0:
                let base = rng.int(in: 2...3)
                let start = rng.int(in: 1...3)
                program = [.assign("y", .number(start)), .rep(.name("x"), [.assign("y", .binary("*", .name("y"), .number(base)))]), .expr(.name("y"))]
            case 1:
                let scale = rng.int(in: 1...3)
                program = [
                    .assign("s", .number(rng.int(in: 0...5))), .assign("i", .number(0)),
                    .rep(.name("x"), [
                        .assign("i", .binary("+", .name("i"), .number(1))),
                        .assign("s", .binary("+", .name("s"), scale == 1 ? .name("i") : .binary("*", .name("i"), .number(scale)))),
                    ]),
                    .expr(.name("s")),
                ]
            case 2:
                inputs = Array(0...7)
                program = [
                    .assign("y", .number(1)), .assign("i", .number(0)),
                    .rep(.name("x"), [.assign("i", .binary("+", .name("i"), .number(1))), .assign("y", .binary("*", .name("y"), .name("i")))]),
                    .expr(.name("y")),
                ]
            default:
                program = [
                    .assign("a", .number(0)), .assign("b", .number(1)),
                    .rep(.name("x"), [.assign("t", .binary("+", .name("a"), .name("b"))), .assign("a", .name("b")), .assign("b", .name("t"))]),
                    .expr(.name("a")),
                ]
            }
            shownCount = 4
        }
        if let (a, b) = linear {
            var expr: TinyExpr = a == 1 ? .name("x") : .binary("*", .number(a), .name("x"))
            if b != 0 { expr = .binary(b > 0 ? "+" : "-", expr, .number(abs(b))) }
            program = [.expr(expr)]
        }
        let order = rng.shuffled(inputs)
        var shown = Array(order.prefix(shownCount)).sorted()
        if level == 4, case .ifElse(.binary(_, _, .number(let cut)), _, _) = program[0] {
            // Show both sides of the branch: two inputs at or below the cut, the rest above it.
            let low = rng.sample(Array(0...cut), count: 2)
            let high = rng.sample(Array((cut + 1)...12), count: shownCount - 2)
            shown = (low + high).sorted()
        }
        let heldOut = order.filter { !shown.contains($0) }.prefix(5).sorted()
        let output: (Int) -> Int = { x in
            guard case .value(let y) = Sandbox.run(program, input: ["x": x]) else { return 0 }
            return y
        }
        let answer = TinyStmt.source(program)
        var steps: [String] = []
        if let (a, b) = linear {
            let (x1, x2) = (shown[0], shown[1])
            let (y1, y2) = (output(x1), output(x2))
            steps += Worked.labelled("dy", Worked.sum(y2, "-", y1))
            steps.append("dx=\(x2)-\(x1)=\(x2 - x1)")
            steps.append("slope=\((y2 - y1).parenthesized)/\(x2 - x1)=\(a)")
            steps += Worked.product(a, x1)
            steps += Worked.labelled("b", Worked.sum(y1, "-", a * x1))
        }
        steps.append("try \(answer)")
        for x in shown { steps.append("f(\(x))=\(output(x)) ok") }
        let examples = shown.map { "f(\($0))=\(output($0))" }.joined(separator: " ")
        return make(
            level: level, prompt: "Write f(x): " + examples, answer: answer,
            verifier: .synthesis(tests: heldOut.map { [$0, output($0)] }), steps: steps)
    }
}
