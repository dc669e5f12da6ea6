// Held-out datasets: generation (byte-for-byte reproducible), the manifest, and loading JSONL files,
// Ponder's own and users'. The schema is documented in datasets/README.md.

import Foundation

/// Builds, writes and loads datasets.
public enum Datasets {
    /// Bumped whenever a generator's output changes; recorded in the manifest.
    public static let generatorVersion = 4
    /// The seed of every committed test set.
    public static let seed: UInt64 = 20_250_120
    /// Problems per level in each committed test set.
    public static let perLevel = 100

    /// The test set of `family`: `perLevel` problems at each of its levels (training and beyond), distinct
    /// by canonical form, seeded by hashing (seed, "test", family, level, index).
    public static func testSet(for family: any TaskFamily, seed: UInt64 = seed, perLevel: Int = perLevel) -> [Problem] {
        var seen = Set<String>()
        var problems: [Problem] = []
        for level in family.levels {
            var index = 0
            var kept = 0
            while kept < perLevel {
                let problem = family.problem(
                    seed: seed, stream: "test", level: level, index: index,
                    id: "\(family.name)-L\(level)-" + String(String(kept + 10_000).dropFirst()))
                index += 1
                precondition(index < 1_000_000, "\(family.name) level \(level) cannot fill a test set of \(perLevel)")
                guard seen.insert(problem.canonical).inserted else { continue }
                problems.append(problem)
                kept += 1
            }
        }
        return problems
    }

    /// The text of a test file: one JSON object per line, each ending in a newline.
    public static func fileContents(_ problems: [Problem], family: any TaskFamily) -> String {
        problems.map { $0.jsonLine(tier: family.tier(of: $0.difficulty)) + "\n" }.joined()
    }

    /// Every file `ponder tasks generate` writes, as (path relative to the dataset folder, contents):
    /// `<family>/test.jsonl` for each family, then `manifest.json`.
    public static func files() -> [(path: String, contents: String)] {
        var files: [(path: String, contents: String)] = []
        var entries: [JSONValue] = []
        for family in TaskRegistry.all {
            let problems = testSet(for: family)
            let contents = fileContents(problems, family: family)
            let path = "\(family.name)/test.jsonl"
            files.append((path, contents))
            let beyond = problems.filter { !family.trainingLevels.contains($0.difficulty) }.count
            entries.append(
                .object([
                    ("family", .string(family.name)), ("domain", .string(family.domain.rawValue)), ("path", .string(path)),
                    ("count", .int(problems.count)), ("training_count", .int(problems.count - beyond)),
                    ("beyond_count", .int(beyond)),
                    ("training_levels", .array([.int(family.trainingLevels.lowerBound), .int(family.trainingLevels.upperBound)])),
                    ("beyond_levels", .array([.int(family.beyondLevels.lowerBound), .int(family.beyondLevels.upperBound)])),
                    ("bytes", .int(contents.utf8.count)), ("sha256", .string(SHA256.hex(contents.utf8))),
                ]))
        }
        let manifest = JSONValue.object([
            ("format", .string("ponder-datasets")), ("generator_version", .int(generatorVersion)),
            ("seed", .int(Int(seed))), ("per_level", .int(perLevel)),
            ("regenerate", .string("ponder tasks generate --out datasets")), ("files", .array(entries)),
        ])
        files.append(("manifest.json", manifest.pretty + "\n"))
        return files
    }

    /// Writes every dataset file under `directory` (each atomically: a temporary file, then a rename) and
    /// returns the paths written.
    @discardableResult
    public static func write(to directory: URL) throws -> [URL] {
        var written: [URL] = []
        for (path, contents) in files() {
            let url = directory.appendingPathComponent(path)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(contents.utf8).write(to: url, options: .atomic)
            } catch {
                throw DatasetError(file: url.path, line: nil, key: nil, message: "cannot write: \(error.localizedDescription)")
            }
            written.append(url)
        }
        return written
    }

    /// Loads every `<family>/test.jsonl` under `directory`, by folder name.
    public static func loadDirectory(_ directory: URL) throws -> [(family: String, problems: [Problem])] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        } catch {
            throw DatasetError(
                file: directory.path, line: nil, key: nil,
                message: "cannot read the dataset folder; run `ponder tasks generate --out \(directory.path)` to create it")
        }
        var result: [(family: String, problems: [Problem])] = []
        for name in names {
            let file = directory.appendingPathComponent(name).appendingPathComponent("test.jsonl")
            guard FileManager.default.fileExists(atPath: file.path) else { continue }
            result.append((name, try load(file)))
        }
        return result
    }

    /// Loads a JSONL dataset: Ponder's own test files or a user's. Blank lines are skipped; any other
    /// malformed line throws a `DatasetError` with its file and line number.
    public static func load(_ url: URL) throws -> [Problem] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DatasetError(file: url.path, line: nil, key: nil, message: "no such file; check the path")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DatasetError(file: url.path, line: nil, key: nil, message: "cannot read the file (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError(file: url.path, line: nil, key: nil, message: "the file is not UTF-8 text")
        }
        return try parse(text, file: url.path)
    }

    /// Parses JSONL text; `file` names the source in errors.
    public static func parse(_ text: String, file: String) throws -> [Problem] {
        var problems: [Problem] = []
        var ids: [String: Int] = [:]
        let base = (file as NSString).lastPathComponent
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            guard line.contains(where: { !$0.isWhitespace }) else { continue }
            let problem = try decodeProblem(String(line), file: file, line: number, defaultID: "\(base):\(number)")
            if let first = ids[problem.id] {
                throw DatasetError(
                    file: file, line: number, key: "id", message: "id '\(problem.id)' repeats line \(first); ids must be unique")
            }
            ids[problem.id] = number
            problems.append(problem)
        }
        return problems
    }

    /// Decodes one JSON line into a problem, validating it. Used for datasets and for `ponder score`.
    static func decodeProblem(_ line: String, file: String, line number: Int, defaultID: String) throws -> Problem {
        let record: ProblemRecord = try decodeLine(line, file: file, line: number)
        return try record.problem(file: file, line: number, defaultID: defaultID)
    }

    /// Decodes one JSON line, mapping decoding failures to a `DatasetError` that names the key.
    static func decodeLine<T: Decodable>(_ line: String, file: String, line number: Int) throws -> T {
        if let key = JSONKeys.firstDuplicate(in: line) {
            throw DatasetError(file: file, line: number, key: key, message: "appears twice in one object; keep one (readers disagree on which wins)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(line.utf8))
        } catch let error as DecodingError {
            throw DatasetError(decoding: error, file: file, line: number)
        } catch {
            throw DatasetError(file: file, line: number, key: nil, message: "\(error)")
        }
    }
}

/// One dataset line as written; only `prompt` and `answer` are required.
struct ProblemRecord: Decodable {
    var id: String?
    var family: String?
    var domain: Domain?
    var difficulty: Int?
    var prompt: String
    var answer: String
    var verifier: Verifier?
    var canonical: String?
    var steps: [String]?

    func problem(file: String, line: Int, defaultID: String) throws -> Problem {
        guard !Text.trimmed(prompt).isEmpty else {
            throw DatasetError(file: file, line: line, key: "prompt", message: "the prompt is empty")
        }
        guard !Text.trimmed(answer).isEmpty else {
            throw DatasetError(file: file, line: line, key: "answer", message: "the answer is empty; an empty answer can never be scored")
        }
        let isInteger = CanonicalInteger(Text.trimmed(answer)) != nil
        let verifier = self.verifier ?? (isInteger ? .integer : .exact)
        if verifier == .integer && !isInteger {
            throw DatasetError(
                file: file, line: line, key: "answer",
                message: "'\(answer)' is not a canonical integer (digits with an optional sign, no commas); "
                    + "use \"verifier\": \"exact\" for text answers")
        }
        if let difficulty, difficulty < 0 {
            throw DatasetError(file: file, line: line, key: "difficulty", message: "must be a non-negative integer")
        }
        let family = self.family ?? "custom"
        return Problem(
            id: id ?? defaultID, family: family, domain: domain ?? .custom, difficulty: difficulty ?? 1, prompt: prompt,
            answer: answer, verifier: verifier, canonical: canonical, steps: steps ?? [])
    }
}

/// A dataset or completions file that cannot be used: which file, line and key, and what would be right.
public struct DatasetError: Error, Equatable, CustomStringConvertible {
    /// The file's path.
    public let file: String
    /// The 1-based line number, when one line is at fault.
    public let line: Int?
    /// The key at fault, when there is one.
    public let key: String?
    /// What is wrong and how to fix it.
    public let message: String

    /// Creates an error.
    public init(file: String, line: Int?, key: String?, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    init(decoding error: DecodingError, file: String, line: Int) {
        func path(_ keys: [CodingKey]) -> String? {
            keys.isEmpty ? nil : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let full = path(context.codingPath + [key]) ?? key.stringValue
            self.init(
                file: file, line: line, key: full,
                message: "missing key '\(full)'; every line needs \"prompt\" and \"answer\" strings (see datasets/README.md)")
        case .typeMismatch(let type, let context):
            self.init(file: file, line: line, key: path(context.codingPath), message: "expected \(DatasetError.name(type))")
        case .valueNotFound(let type, let context):
            self.init(file: file, line: line, key: path(context.codingPath), message: "expected \(DatasetError.name(type)), found null")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                self.init(file: file, line: line, key: nil, message: "not a valid JSON object; each line must be one JSON object")
            } else {
                self.init(file: file, line: line, key: path(context.codingPath), message: context.debugDescription)
            }
        @unknown default:
            self.init(file: file, line: line, key: nil, message: "\(error)")
        }
    }

    static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is [String].Type: return "a list of strings"
        case is Domain.Type: return "one of \(Domain.allCases.map(\.rawValue).joined(separator: ", "))"
        default: return "\(type)".contains("Dictionary") ? "a JSON object" : "a value of type \(type)"
        }
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { location += ": key '\(key)'" }
        return "\(location): \(message)"
    }
}
