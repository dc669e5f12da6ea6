// Logic families: knights and knaves, boolean evaluation, 4x4 mini-sudoku and transitive ordering.

/// Letters used for people and items. K and N are left out (they name knights and knaves), and I and O,
/// which read like digits.
private let namePool: [String] = "ABCDEFGHJLMPQRSTUVWXYZ".map(String.init)

/// Knights always tell the truth, knaves always lie; only puzzles with exactly one solution are kept.
public struct KnightsTask: TaskFamily {
    public let name = "knights"
    public let domain = Domain.logic
    public let summary = "knights and knaves with a unique solution; the teacher tries every assignment"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "2 people, simple claims", "2 people, and/or claims", "3 people, simple claims", "3 people, and/or claims",
        "4 people, and/or claims",
    ]

    indirect enum Claim {
        case knight(Int), knave(Int), alike(Int, Int), differ(Int, Int), and(Claim, Claim), or(Claim, Claim)

        func holds(_ knights: [Bool]) -> Bool {
            switch self {
            case .knight(let i): return knights[i]
            case .knave(let i): return !knights[i]
            case .alike(let i, let j): return knights[i] == knights[j]
            case .differ(let i, let j): return knights[i] != knights[j]
            case .and(let a, let b): return a.holds(knights) && b.holds(knights)
            case .or(let a, let b): return a.holds(knights) || b.holds(knights)
            }
        }

        func text(_ names: [String]) -> String {
            switch self {
            case .knight(let i): return "\(names[i]) is a knight"
            case .knave(let i): return "\(names[i]) is a knave"
            case .alike(let i, let j): return "\(names[i]) and \(names[j]) are alike"
            case .differ(let i, let j): return "\(names[i]) and \(names[j]) differ"
            case .and(let a, let b): return a.text(names) + " and " + b.text(names)
            case .or(let a, let b): return a.text(names) + " or " + b.text(names)
            }
        }
    }

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (people, compound): (Int, Bool) = {
            switch level {
            case 1: return (2, false)
            case 2: return (2, true)
            case 3: return (3, false)
            case 4: return (3, true)
            default: return (4, true)
            }
        }()
        func atom(_ rng: inout SplitMix64, pairs: Bool) -> Claim {
            let i = rng.int(in: 0..<people)
            var j = rng.int(in: 0..<(people - 1))
            if j >= i { j += 1 }
            switch rng.int(in: 0..<(pairs ? 4 : 2)) {
            case 0: return .knight(i)
            case 1: return .knave(i)
            case 2: return .alike(min(i, j), max(i, j))
            default: return .differ(min(i, j), max(i, j))
            }
        }
        while true {
            let names = rng.sample(namePool, count: people)
            let claims: [Claim] = (0..<people).map { _ in
                if compound && rng.int(in: 0...2) > 0 {
                    let a = atom(&rng, pairs: false)
                    let b = atom(&rng, pairs: false)
                    return rng.bool() ? .and(a, b) : .or(a, b)
                }
                return atom(&rng, pairs: true)
            }
            var solutions: [[Bool]] = []
            var steps: [String] = []
            for mask in 0..<(1 << people) {
                let knights = (0..<people).map { mask >> (people - 1 - $0) & 1 == 0 }
                let label = knights.map { $0 ? "K" : "N" }.joined()
                if let liar = (0..<people).first(where: { claims[$0].holds(knights) != knights[$0] }) {
                    steps.append("\(label): no, \(names[liar])")
                } else {
                    steps.append("\(label): yes")
                    solutions.append(knights)
                }
            }
            guard solutions.count == 1 else { continue }
            let said = (0..<people).map { "\(names[$0]) says \(claims[$0].text(names))." }.joined(separator: " ")
            let prompt = "Knights (K) tell truth, knaves (N) lie. \(said) \(names.joined(separator: ","))=?"
            return make(
                level: level, prompt: prompt, answer: solutions[0].map { $0 ? "K" : "N" }.joined(),
                verifier: .positional, steps: steps)
        }
    }
}

/// A boolean formula evaluated under several assignments; the answer is one bit per assignment.
public struct BooleanTask: TaskFamily {
    public let name = "boolean"
    public let domain = Domain.logic
    public let summary = "evaluate a boolean formula under several assignments; one bit each"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = [
        "2 variables, 2 operators, 3 rows", "3 variables, 2-3 operators, 3 rows", "3 variables, 3 operators, 4 rows",
        "4 variables, 4 operators with xor, 4 rows", "5 variables, 6 operators, 6 rows",
    ]

    indirect enum Formula {
        case variable(Int), not(Formula), binary(String, Formula, Formula)

        func text(_ names: [String]) -> String {
            switch self {
            case .variable(let i): return names[i]
            case .not(let inner):
                if case .binary = inner { return "!(" + inner.text(names) + ")" }
                return "!" + inner.text(names)
            case .binary(let op, let a, let b):
                let wrap: (Formula) -> String = { f in
                    if case .binary = f { return "(" + f.text(names) + ")" }
                    return f.text(names)
                }
                return wrap(a) + op + wrap(b)
            }
        }

        /// The value, appending one `1&0=0` step per operator in evaluation order.
        func evaluate(_ bits: [Bool], steps: inout [String]) -> Bool {
            switch self {
            case .variable(let i): return bits[i]
            case .not(let inner):
                let value = inner.evaluate(bits, steps: &steps)
                steps.append("!\(value ? 1 : 0)=\(value ? 0 : 1)")
                return !value
            case .binary(let op, let a, let b):
                let l = a.evaluate(bits, steps: &steps)
                let r = b.evaluate(bits, steps: &steps)
                let value = op == "&" ? l && r : op == "|" ? l || r : l != r
                steps.append("\(l ? 1 : 0)\(op)\(r ? 1 : 0)=\(value ? 1 : 0)")
                return value
            }
        }

        var variables: Set<Int> {
            switch self {
            case .variable(let i): return [i]
            case .not(let inner): return inner.variables
            case .binary(_, let a, let b): return a.variables.union(b.variables)
            }
        }
    }

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (variables, operators, rows, ops): (Int, ClosedRange<Int>, Int, [String]) = {
            switch level {
            case 1: return (2, 2...2, 3, ["&", "|"])
            case 2: return (3, 2...3, 3, ["&", "|"])
            case 3: return (3, 3...3, 4, ["&", "|"])
            case 4: return (4, 4...4, 4, ["&", "|", "^"])
            default: return (5, 6...6, 6, ["&", "|", "^"])
            }
        }()
        func build(_ count: Int, _ rng: inout SplitMix64, negated: Bool) -> Formula {
            if count == 0 { return .variable(rng.int(in: 0..<variables)) }
            if !negated && rng.int(in: 0...3) == 0 { return .not(build(count - 1, &rng, negated: true)) }
            let left = rng.int(in: 0...(count - 1))
            return .binary(rng.pick(ops), build(left, &rng, negated: false), build(count - 1 - left, &rng, negated: false))
        }
        let letters = "abcdeghpqrsuvwxyz".map(String.init)
        while true {
            let formula = build(rng.int(in: operators), &rng, negated: false)
            guard formula.variables.count == variables else { continue }
            let names = rng.sample(letters, count: variables).sorted()
            let assignments = rng.sample(Array(0..<(1 << variables)), count: rows).map { mask in
                (0..<variables).map { mask >> (variables - 1 - $0) & 1 == 1 }
            }
            var steps: [String] = []
            var answer = ""
            for bits in assignments {
                var work: [String] = []
                let value = formula.evaluate(bits, steps: &work)
                let row = bits.map { $0 ? "1" : "0" }.joined()
                steps.append("\(row): " + work.joined(separator: " "))
                answer += value ? "1" : "0"
            }
            let rowsText = assignments.map { $0.map { $0 ? "1" : "0" }.joined() }.joined(separator: " ")
            let prompt = "f=\(formula.text(names)); \(names.joined())=\(rowsText); f=?"
            return make(level: level, prompt: prompt, answer: answer, verifier: .positional, steps: steps)
        }
    }
}

/// 4x4 sudoku with digits 1-4 and 2x2 boxes; any valid completion of the givens counts.
public struct MiniSudokuTask: TaskFamily {
    public let name = "sudoku"
    public let domain = Domain.logic
    public let summary = "complete a 4x4 sudoku; any valid completion counts"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = ["3-4 blanks", "6 blanks", "8 blanks", "10 blanks", "12 blanks"]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let blanks: Int = [1: rng.int(in: 3...4), 2: 6, 3: 8, 4: 10][level] ?? 12
        // Two base grids under digit relabelling, row and column swaps within bands and stacks, band and
        // stack swaps, and transposition.
        let bases = ["1234341221434321", "1234341223414123"]
        let base = rng.pick(bases).map { Int(String($0))! }
        let digits = rng.shuffled([1, 2, 3, 4])
        func order(_ rng: inout SplitMix64) -> [Int] {
            let bands = rng.bool() ? [0, 2] : [2, 0]
            return bands.flatMap { band in rng.bool() ? [band, band + 1] : [band + 1, band] }
        }
        let rows = order(&rng)
        let cols = order(&rng)
        let transpose = rng.bool()
        var grid = [Int](repeating: 0, count: 16)
        for r in 0..<4 {
            for c in 0..<4 {
                let (sr, sc) = transpose ? (cols[c], rows[r]) : (rows[r], cols[c])
                grid[r * 4 + c] = digits[base[sr * 4 + sc] - 1]
            }
        }
        let holes = Set(rng.sample(Array(0..<16), count: blanks))
        var work = (0..<16).map { holes.contains($0) ? 0 : grid[$0] }
        let puzzle = MiniSudoku.render(work)
        var steps: [String] = []
        while let cell = MiniSudoku.nextCell(work) {
            let candidates = MiniSudoku.candidates(work, cell)
            work[cell] = grid[cell]
            steps.append("r\(cell / 4 + 1)c\(cell % 4 + 1)=\(grid[cell])" + (candidates.count == 1 ? "" : " guess"))
        }
        return make(
            level: level, prompt: "Fill 4x4 sudoku: " + puzzle, answer: MiniSudoku.render(grid),
            verifier: .sudoku(puzzle: puzzle), canonical: "sudoku:" + puzzle, steps: steps)
    }
}

/// Helpers for the 4x4 grid: rendering, candidates and the verifier.
enum MiniSudoku {
    static func render(_ cells: [Int]) -> String {
        stride(from: 0, to: 16, by: 4).map { r in
            cells[r..<r + 4].map { $0 == 0 ? "." : String($0) }.joined()
        }.joined(separator: "/")
    }

    static func peers(_ cell: Int) -> [Int] {
        let (r, c) = (cell / 4, cell % 4)
        let box = (r / 2 * 2, c / 2 * 2)
        return (0..<16).filter { other in
            other != cell && (other / 4 == r || other % 4 == c || (other / 4 / 2 * 2, other % 4 / 2 * 2) == box)
        }
    }

    static func candidates(_ cells: [Int], _ cell: Int) -> [Int] {
        let used = Set(peers(cell).map { cells[$0] })
        return (1...4).filter { !used.contains($0) }
    }

    /// The blank cell to fill next: the first with a single candidate, else the first with fewest.
    static func nextCell(_ cells: [Int]) -> Int? {
        let blanks = (0..<16).filter { cells[$0] == 0 }
        return blanks.min { candidates(cells, $0).count < candidates(cells, $1).count }
    }

    static func check(_ answer: String, puzzle: String) -> Verdict {
        let digits = Text.compacted(answer).utf8.filter { $0 != UInt8(ascii: "/") }
        guard digits.count == 16, digits.allSatisfy({ $0 >= UInt8(ascii: "1") && $0 <= UInt8(ascii: "4") }) else {
            return .wrong("expected 16 digits from 1 to 4, like 1234/3412/2143/4321")
        }
        let cells = digits.map { Int($0) - 48 }
        let givens = puzzle.utf8.filter { $0 != UInt8(ascii: "/") }
        guard givens.count == 16 else { return .wrong("malformed puzzle") }
        for (i, given) in givens.enumerated() where given != UInt8(ascii: ".") && Int(given) - 48 != cells[i] {
            return .wrong("changes the given at r\(i / 4 + 1)c\(i % 4 + 1)")
        }
        for cell in 0..<16 where peers(cell).contains(where: { cells[$0] == cells[cell] }) {
            return .wrong("r\(cell / 4 + 1)c\(cell % 4 + 1) repeats a digit in its row, column or box")
        }
        return .correct
    }
}

/// Transitive ordering: recover the full order from pairwise facts.
public struct OrderingTask: TaskFamily {
    public let name = "ordering"
    public let domain = Domain.logic
    public let summary = "order items largest first from pairwise facts; the teacher chains them"
    public let trainingLevels = 1...4
    public let beyondLevels = 5...5
    public let levelNotes = ["3 items", "4 items", "5 items", "6 items, one redundant fact", "8 items, two redundant facts"]

    public init() {}

    public func generate(level: Int, rng: inout SplitMix64) -> Problem {
        let (count, redundant): (Int, Int) = [1: (3, 0), 2: (4, 0), 3: (5, 0), 4: (6, 1)][level] ?? (8, 2)
        let chain = rng.sample(namePool, count: count)
        var pairs = (0..<(count - 1)).map { ($0, $0 + 1) }
        var extra = Set<Int>()
        while extra.count < redundant {
            let i = rng.int(in: 0...(count - 3))
            let j = rng.int(in: (i + 2)...(count - 1))
            if extra.insert(i * 100 + j).inserted { pairs.append((i, j)) }
        }
        pairs = rng.shuffled(pairs)
        var facts: [String] = []
        var steps: [String] = []
        for (i, j) in pairs {
            if rng.bool() {
                facts.append("\(chain[i])>\(chain[j])")
            } else {
                facts.append("\(chain[j])<\(chain[i])")
                steps.append("\(chain[j])<\(chain[i]) means \(chain[i])>\(chain[j])")
            }
        }
        steps.append("top is \(chain[0])")
        for i in 0..<(count - 1) { steps.append("\(chain[i])>\(chain[i + 1])") }
        let canonical = pairs.map { "\(chain[$0.0])>\(chain[$0.1])" }.sorted().joined(separator: ",")
        return make(
            level: level, prompt: "Order largest first: " + facts.joined(separator: ", "),
            answer: chain.joined(separator: ">"), verifier: .ordering, canonical: "ordering:" + canonical, steps: steps)
    }
}
