// The tiny language's parser (the grammar is in Sandbox.swift): tokens, then recursive descent with a
// depth limit, so a hostile text fails with a SandboxRejection instead of exhausting the stack.

struct TinyParser {
    enum Token: Equatable {
        case number(Int), name(String), symbol(String), end
    }

    static let keywords: Set<String> = ["rep", "while", "if", "else", "ret"]

    var tokens: [Token] = []
    var position = 0
    var depth = 0
    let maxDepth: Int

    init(source: String, maxDepth: Int) throws {
        self.maxDepth = maxDepth
        let bytes = Array(source.utf8)
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if Text.isSpace(byte) {
                i += 1
            } else if byte >= 0x30 && byte <= 0x39 {
                var j = i
                while j < bytes.count, bytes[j] >= 0x30 && bytes[j] <= 0x39 { j += 1 }
                let digits = String(decoding: bytes[i..<j], as: UTF8.self)
                guard let value = Int(digits) else { throw SandboxRejection(message: "number \(digits.prefix(24)) is too large") }
                tokens.append(.number(value))
                i = j
            } else if byte >= 0x61 && byte <= 0x7A {
                var j = i
                while j < bytes.count, (bytes[j] >= 0x61 && bytes[j] <= 0x7A) || (bytes[j] >= 0x30 && bytes[j] <= 0x39) { j += 1 }
                tokens.append(.name(String(decoding: bytes[i..<j], as: UTF8.self)))
                i = j
            } else {
                let two = i + 1 < bytes.count ? String(decoding: bytes[i...i + 1], as: UTF8.self) : ""
                if ["==", "!=", "<=", ">="].contains(two) {
                    tokens.append(.symbol(two))
                    i += 2
                } else if "+-*/%()<>{};=".utf8.contains(byte) {
                    tokens.append(.symbol(String(UnicodeScalar(byte))))
                    i += 1
                } else {
                    let shown = byte < 0x80 ? "'\(UnicodeScalar(byte))'" : "a non-ASCII byte"
                    throw SandboxRejection(message: "unexpected character \(shown) at byte \(i)")
                }
            }
        }
        tokens.append(.end)
    }

    var current: Token { tokens[position] }

    mutating func advance() { position += 1 }

    mutating func expect(_ symbol: String) throws {
        guard current == .symbol(symbol) else { throw SandboxRejection(message: "expected '\(symbol)' \(where_)") }
        advance()
    }

    var where_: String {
        switch current {
        case .end: return "at the end"
        case .number(let n): return "before \(n)"
        case .name(let n): return "before '\(n)'"
        case .symbol(let s): return "before '\(s)'"
        }
    }

    mutating func enter() throws {
        depth += 1
        if depth > maxDepth { throw SandboxRejection(message: "nested more than \(maxDepth) deep") }
    }

    mutating func parseProgram() throws -> [TinyStmt] {
        let statements = try parseStatements(until: .end)
        guard !statements.isEmpty else { throw SandboxRejection(message: "empty program") }
        return statements
    }

    mutating func parseStatements(until terminator: Token) throws -> [TinyStmt] {
        var statements: [TinyStmt] = []
        while current != terminator {
            statements.append(try parseStatement())
            if current == .symbol(";") {
                advance()
            } else if current != terminator {
                throw SandboxRejection(message: "expected ';' \(where_)")
            }
        }
        return statements
    }

    mutating func parseBlock() throws -> [TinyStmt] {
        try enter()
        defer { depth -= 1 }
        try expect("{")
        let body = try parseStatements(until: .symbol("}"))
        try expect("}")
        return body
    }

    mutating func parseStatement() throws -> TinyStmt {
        if case .name(let word) = current {
            switch word {
            case "rep":
                advance()
                let count = try parseExpr()
                return .rep(count, try parseBlock())
            case "while":
                advance()
                let cond = try parseExpr()
                return .whileLoop(cond, try parseBlock())
            case "if":
                advance()
                let cond = try parseExpr()
                let then = try parseBlock()
                if current == .name("else") {
                    advance()
                    return .ifElse(cond, then, try parseBlock())
                }
                return .ifElse(cond, then, [])
            case "ret":
                advance()
                return .ret(try parseExpr())
            case "else":
                throw SandboxRejection(message: "'else' without 'if'")
            default:
                if tokens[position + 1] == .symbol("=") {
                    advance()
                    advance()
                    return .assign(word, try parseExpr())
                }
            }
        }
        return .expr(try parseExpr())
    }

    mutating func parseExpr() throws -> TinyExpr {
        let lhs = try parseSum()
        if case .symbol(let op) = current, ["<", ">", "<=", ">=", "==", "!="].contains(op) {
            advance()
            return .binary(op, lhs, try parseSum())
        }
        return lhs
    }

    mutating func parseSum() throws -> TinyExpr {
        var value = try parseProduct()
        while case .symbol(let op) = current, op == "+" || op == "-" {
            advance()
            value = .binary(op, value, try parseProduct())
        }
        return value
    }

    mutating func parseProduct() throws -> TinyExpr {
        var value = try parseUnary()
        while case .symbol(let op) = current, op == "*" || op == "/" || op == "%" {
            advance()
            value = .binary(op, value, try parseUnary())
        }
        return value
    }

    mutating func parseUnary() throws -> TinyExpr {
        try enter()
        defer { depth -= 1 }
        switch current {
        case .symbol("-"):
            advance()
            return .negate(try parseUnary())
        case .symbol("("):
            advance()
            let inner = try parseExpr()
            try expect(")")
            return inner
        case .number(let value):
            advance()
            return .number(value)
        case .name(let name):
            guard !TinyParser.keywords.contains(name) else {
                throw SandboxRejection(message: "'\(name)' is a keyword, not a value")
            }
            advance()
            return .name(name)
        default:
            throw SandboxRejection(message: "expected a value \(where_)")
        }
    }
}
