// Ponder's tiny language, and the sandbox that runs it. The `program` family asks what a program returns;
// the `synth` family asks the model to write one, and its verifier runs the model's text here.
//
// The language has integers only:
//
//     program := stmt (';' stmt)* [';']
//     stmt    := 'rep' expr block | 'while' expr block | 'if' expr block ['else' block]
//              | 'ret' expr | name '=' expr | expr
//     block   := '{' [stmt (';' stmt)* [';']] '}'
//     expr    := sum [('<' | '>' | '<=' | '>=' | '==' | '!=') sum]     comparisons give 1 or 0
//     sum     := prod (('+' | '-') prod)*
//     prod    := unary (('*' | '/' | '%') unary)*                        '/' and '%' floor, as in Python
//     unary   := '-' unary | number | name | '(' expr ')'
//
// A program's value is that of the first `ret` executed, or else of its last top-level expression
// statement. Names are lowercase letters and digits; `x` holds the input in synthesis problems.
//
// The sandbox has no I/O, no host access and no recursion beyond the parse depth limit. Every statement,
// loop iteration and expression node costs one step; a run that exceeds the step budget stops with a
// timeout verdict. Overflow, division by zero and unknown names stop it with an error verdict.

/// A tiny-language expression.
public indirect enum TinyExpr: Equatable, Sendable {
    case number(Int)
    case name(String)
    case negate(TinyExpr)
    case binary(String, TinyExpr, TinyExpr)

    /// Source text with only the parentheses that precedence requires.
    public var source: String {
        render { .name($0) }
    }

    /// Source text with every name replaced by its value in `values` (for teacher traces).
    func substituted(_ values: [String: Int]) -> String {
        render { name in values[name].map { .number($0) } ?? .name(name) }
    }

    private func render(_ leaf: (String) -> TinyExpr) -> String {
        switch self {
        case .number(let value): return value < 0 ? "(\(value))" : "\(value)"
        case .name(let name):
            if case .number(let value) = leaf(name) { return value < 0 ? "(\(value))" : "\(value)" }
            return name
        case .negate(let inner):
            let text = inner.render(leaf)
            return inner.precedence < 4 ? "-(\(text))" : "-" + text
        case .binary(let op, let lhs, let rhs):
            let p = TinyExpr.precedence(of: op)
            var left = lhs.render(leaf)
            var right = rhs.render(leaf)
            if lhs.precedence < p || (p == 1 && lhs.precedence == 1) { left = "(\(left))" }
            if rhs.precedence <= p { right = "(\(right))" }
            return left + op + right
        }
    }

    var precedence: Int {
        if case .binary(let op, _, _) = self { return TinyExpr.precedence(of: op) }
        return 4
    }

    static func precedence(of op: String) -> Int {
        switch op {
        case "+", "-": return 2
        case "*", "/", "%": return 3
        default: return 1
        }
    }
}

/// A tiny-language statement.
public indirect enum TinyStmt: Equatable, Sendable {
    case assign(String, TinyExpr)
    case rep(TinyExpr, [TinyStmt])
    case whileLoop(TinyExpr, [TinyStmt])
    case ifElse(TinyExpr, [TinyStmt], [TinyStmt])
    case ret(TinyExpr)
    case expr(TinyExpr)

    /// Source text.
    public var source: String {
        switch self {
        case .assign(let name, let value): return name + "=" + value.source
        case .rep(let count, let body): return "rep \(count.source) {\(TinyStmt.source(body))}"
        case .whileLoop(let cond, let body): return "while \(cond.source) {\(TinyStmt.source(body))}"
        case .ifElse(let cond, let then, let otherwise):
            let head = "if \(cond.source) {\(TinyStmt.source(then))}"
            return otherwise.isEmpty ? head : head + " else {\(TinyStmt.source(otherwise))}"
        case .ret(let value): return "ret " + value.source
        case .expr(let value): return value.source
        }
    }

    /// Statements joined with `;`.
    public static func source(_ statements: [TinyStmt]) -> String {
        statements.map(\.source).joined(separator: ";")
    }
}

/// Parses and runs tiny-language programs under hard limits.
public enum Sandbox {
    /// Resource limits. The defaults are generous for every generated problem and tight for runaways.
    public struct Limits: Sendable {
        /// Longest accepted source, in bytes.
        public var maxSourceBytes = 400
        /// Deepest nesting of parentheses, unary minus and blocks.
        public var maxDepth = 24
        /// Steps (statements, loop iterations, expression nodes) before a run times out.
        public var maxSteps = 20_000
        /// Most distinct variables a run may create.
        public var maxVariables = 32
        /// Steps all runs of one completion may take together (the synthesis verifier runs a program
        /// once per test), so a dataset with many tests cannot make one score slow.
        public var maxTotalSteps = 200_000

        /// The default limits.
        public init() {}
    }

    /// How a run ended.
    public enum Outcome: Equatable, Sendable {
        /// The program's value.
        case value(Int)
        /// The step budget ran out.
        case timeout(steps: Int)
        /// A runtime error: overflow, division by zero, an unknown name, no value, too many variables.
        case runtimeError(String)
        /// The source was refused before running: too large, nested too deeply, or a syntax error.
        case rejected(String)
    }

    /// Parses `source`, or returns why it was refused.
    public static func parse(_ source: String, limits: Limits = Limits()) -> Result<[TinyStmt], SandboxRejection> {
        guard source.utf8.count <= limits.maxSourceBytes else {
            return .failure(SandboxRejection(message: "program is \(source.utf8.count) bytes; the limit is \(limits.maxSourceBytes)"))
        }
        do {
            var parser = try TinyParser(source: source, maxDepth: limits.maxDepth)
            return .success(try parser.parseProgram())
        } catch let rejection as SandboxRejection {
            return .failure(rejection)
        } catch {
            return .failure(SandboxRejection(message: "\(error)"))
        }
    }

    /// Parses and runs `source` with the given input variables.
    public static func run(_ source: String, input: [String: Int] = [:], limits: Limits = Limits()) -> Outcome {
        switch parse(source, limits: limits) {
        case .failure(let rejection): return .rejected(rejection.message)
        case .success(let program): return run(program, input: input, limits: limits)
        }
    }

    /// Runs a parsed program with the given input variables.
    public static func run(_ program: [TinyStmt], input: [String: Int] = [:], limits: Limits = Limits()) -> Outcome {
        var machine = TinyMachine(variables: input, limits: limits, trace: nil)
        return machine.runProgram(program)
    }

    /// Runs a program and records the teacher's trace, one group of lines per event: each assignment with
    /// its values substituted and its arithmetic worked out, each branch decision and each loop round.
    static func trace(_ program: [TinyStmt], input: [String: Int] = [:]) -> (Outcome, [[String]]) {
        var machine = TinyMachine(variables: input, limits: Limits(), trace: [])
        let outcome = machine.runProgram(program)
        return (outcome, machine.trace ?? [])
    }

    /// The synthesis verifier: runs `answer` with `x` set to each held-out input. Correct when every
    /// output matches; partial credit is the fraction that match.
    static func checkSynthesis(_ answer: String, tests: [[Int]], limits: Limits = Limits()) -> Verdict {
        let program: [TinyStmt]
        switch parse(answer) {
        case .failure(let rejection): return .wrong("rejected: \(rejection.message)")
        case .success(let parsed): program = parsed
        }
        var passed = 0
        var firstFailure = ""
        var budget = limits.maxTotalSteps
        for test in tests where test.count == 2 {
            var runLimits = limits
            runLimits.maxSteps = min(limits.maxSteps, budget)
            var machine = TinyMachine(variables: ["x": test[0]], limits: runLimits, trace: nil)
            let outcome = machine.runProgram(program)
            budget -= machine.steps
            if outcome == .value(test[1]) {
                passed += 1
                continue
            }
            if case .timeout = outcome, runLimits.maxSteps < limits.maxSteps {  // the completion's budget, not this run, ran out
                if firstFailure.isEmpty { firstFailure = "the sandbox's work limit per completion (\(limits.maxTotalSteps) steps) ran out at x=\(test[0])" }
                break
            }
            if firstFailure.isEmpty {
                switch outcome {
                case .value(let got): firstFailure = "x=\(test[0]) gave \(got), expected \(test[1])"
                case .timeout(let steps): firstFailure = "x=\(test[0]) timed out after \(steps) steps"
                case .runtimeError(let message): firstFailure = "x=\(test[0]) failed: \(message)"
                case .rejected(let message): firstFailure = "rejected: \(message)"
                }
            }
        }
        if passed == tests.count { return .correct }
        return .wrong(firstFailure, partial: Double(passed) / Double(max(tests.count, 1)))
    }
}

/// Why the sandbox refused a program before running it.
public struct SandboxRejection: Error, Equatable, Sendable {
    /// What was wrong, in words.
    public let message: String
}

// MARK: - Machine

private struct TinyMachine {
    enum Stop: Error {
        case timeout, failure(String)
    }

    enum Flow {
        case normal(Int?)
        case returned(Int)
    }

    var variables: [String: Int]
    let limits: Sandbox.Limits
    var trace: [[String]]?
    var steps = 0

    init(variables: [String: Int], limits: Sandbox.Limits, trace: [[String]]?) {
        self.variables = variables
        self.limits = limits
        self.trace = trace
    }

    mutating func runProgram(_ program: [TinyStmt]) -> Sandbox.Outcome {
        do {
            switch try execute(program) {
            case .returned(let value): return .value(value)
            case .normal(let last):
                // The value of the last top-level statement, when that statement is an expression.
                if let last, case .expr = program.last { return .value(last) }
                return .runtimeError("the program produced no value (end with an expression or use ret)")
            }
        } catch Stop.timeout {
            return .timeout(steps: steps)
        } catch Stop.failure(let message) {
            return .runtimeError(message)
        } catch {
            return .runtimeError("\(error)")
        }
    }

    mutating func tick() throws {
        steps += 1
        if steps > limits.maxSteps { throw Stop.timeout }
    }

    mutating func execute(_ statements: [TinyStmt]) throws -> Flow {
        var last: Int?
        for statement in statements {
            try tick()
            last = nil
            switch statement {
            case .assign(let name, let expr):
                let value = try evaluate(expr)
                if variables[name] == nil, variables.count >= limits.maxVariables {
                    throw Stop.failure("more than \(limits.maxVariables) variables")
                }
                if trace != nil { trace!.append(TinyMachine.assignmentLines(name, expr, variables, value)) }
                variables[name] = value
            case .rep(let countExpr, let body):
                let count = try evaluate(countExpr)
                if count > 0 {
                    for round in 1...count {
                        try tick()
                        trace?.append(["round \(round) of \(count)"])
                        if case .returned(let value) = try execute(body) { return .returned(value) }
                    }
                }
            case .whileLoop(let cond, let body):
                while true {
                    try tick()
                    let holds = try evaluate(cond) != 0
                    trace?.append(["while \(cond.substituted(variables)): \(holds ? "yes" : "no")"])
                    if !holds { break }
                    if case .returned(let value) = try execute(body) { return .returned(value) }
                }
            case .ifElse(let cond, let then, let otherwise):
                let holds = try evaluate(cond) != 0
                if trace != nil {  // only when tracing: the verifiers run programs untraced, once per completion
                    let shown = cond.substituted(variables)
                    trace!.append(["if \(cond.source): " + (shown == cond.source ? "" : shown + " ") + (holds ? "yes" : "no")])
                }
                if case .returned(let value) = try execute(holds ? then : otherwise) { return .returned(value) }
            case .ret(let expr):
                let value = try evaluate(expr)
                trace?.append([TinyMachine.show("ret", expr.substituted(variables), value)])
                return .returned(value)
            case .expr(let expr):
                let value = try evaluate(expr)
                if case .name(let name) = expr {  // the returned variable, named: `b=33`
                    trace?.append(["\(name)=\(value)"])
                } else {
                    trace?.append([TinyMachine.show("", expr.substituted(variables), value)])
                }
                last = value
            }
        }
        return .normal(last)
    }

    /// The teacher's lines for `name=expr`: the statement as the program writes it, its values, and a sum or
    /// product of two values worked out as the math families do (`Worked`; a product of two factors up to 12 is
    /// a times-table fact, one line), the last line ending `name=value` so that a later lookup of `name` finds
    /// its value at the end of the line that set it.
    static func assignmentLines(_ name: String, _ expr: TinyExpr, _ values: [String: Int], _ value: Int) -> [String] {
        func leaf(_ e: TinyExpr) -> Int? {
            switch e {
            case .number(let n): return n
            case .name(let n): return values[n]
            default: return nil
            }
        }
        let source = expr.source
        let shown = expr.substituted(values)
        var work: [String]
        if case .binary(let op, let lhs, let rhs) = expr, let a = leaf(lhs), let b = leaf(rhs), ["+", "-", "*"].contains(op) {
            work = op != "*" ? Worked.sum(a, Character(op), b)
                : max(abs(a), abs(b)) <= 12 ? ["\(a.parenthesized)*\(b.parenthesized)=\(value)"] : Worked.product(a, b)
        } else {
            work = [shown == "\(value)" ? "\(value)" : "\(shown)=\(value)"]
        }
        if source != shown { work[0] = source + "=" + work[0] }
        return Worked.labelled(name, work)
    }

    static func show(_ prefix: String, _ shown: String, _ value: Int) -> String {
        let head = prefix.isEmpty ? "" : prefix + " "
        return shown == "\(value)" ? "\(head)\(value)" : "\(head)\(shown)=\(value)"
    }

    mutating func evaluate(_ expr: TinyExpr) throws -> Int {
        try tick()
        switch expr {
        case .number(let value):
            return value
        case .name(let name):
            guard let value = variables[name] else { throw Stop.failure("unknown name '\(name)'") }
            return value
        case .negate(let inner):
            guard let value = Checked.sub(0, try evaluate(inner)) else { throw Stop.failure("overflow") }
            return value
        case .binary(let op, let lhs, let rhs):
            let a = try evaluate(lhs)
            let b = try evaluate(rhs)
            return try TinyMachine.apply(op, a, b)
        }
    }

    static func apply(_ op: String, _ a: Int, _ b: Int) throws -> Int {
        switch op {
        case "+": if let r = Checked.add(a, b) { return r }
        case "-": if let r = Checked.sub(a, b) { return r }
        case "*": if let r = Checked.mul(a, b) { return r }
        case "/", "%":
            guard b != 0 else { throw Stop.failure("division by zero") }
            guard !(a == Int.min && b == -1) else { throw Stop.failure("overflow") }
            var q = a / b
            var r = a % b
            if r != 0 && ((r < 0) != (b < 0)) {  // floor semantics, as Python's // and %
                q -= 1
                r += b
            }
            return op == "/" ? q : r
        case "<": return a < b ? 1 : 0
        case ">": return a > b ? 1 : 0
        case "<=": return a <= b ? 1 : 0
        case ">=": return a >= b ? 1 : 0
        case "==": return a == b ? 1 : 0
        case "!=": return a != b ? 1 : 0
        default: throw Stop.failure("unknown operator \(op)")
        }
        throw Stop.failure("overflow")
    }
}
