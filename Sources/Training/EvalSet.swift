// Which held-out problems an evaluation runs on: the built-in test sets (from a dataset folder, or
// regenerated in memory, which gives the same problems as the committed files) or a user's JSONL,
// filtered by family and level and cut to the first N per level in file order, so every selection
// is deterministic.

import Foundation
import Tasks

/// Selects evaluation problems.
public enum EvalSet {
    /// Problems from the test sets of `families` (nil: all), at `levels` (nil: all), the first
    /// `limitPerLevel` (nil: all) of each (family, level) in file order. With `datasetsDirectory` the
    /// sets are read from `<dir>/<family>/test.jsonl`; without it they are generated in memory.
    public static func select(
        families: [String]?, levels: [Int]?, limitPerLevel: Int?, datasetsDirectory: URL?
    ) throws -> [Problem] {
        var problems: [Problem] = []
        if let dir = datasetsDirectory {
            let known = available(in: dir)
            for name in try checked(families, known: known) {
                problems += try Datasets.load(dir.appendingPathComponent(name).appendingPathComponent("test.jsonl"))
            }
        } else {
            for name in try checked(families, known: TaskRegistry.names) {
                // testSet fills each level in order, so its first N per level are the file's first N.
                let perLevel = min(limitPerLevel ?? Datasets.perLevel, Datasets.perLevel)
                problems += Datasets.testSet(for: TaskRegistry.family(named: name)!, perLevel: max(perLevel, 1))
            }
        }
        return try nonEmpty(filter(problems, families: nil, levels: levels, limitPerLevel: limitPerLevel),
                            what: "the test sets")
    }

    /// Problems of a JSONL dataset (Ponder's schema, datasets/README.md), filtered like `select`.
    /// Malformed lines throw a `DatasetError` naming the file and line.
    public static func load(
        dataset: URL, families: [String]?, levels: [Int]?, limitPerLevel: Int?
    ) throws -> [Problem] {
        let all = try Datasets.load(dataset)
        var seen: [String] = []
        for p in all where !seen.contains(p.family) { seen.append(p.family) }
        _ = try checked(families, known: seen)
        return try nonEmpty(filter(all, families: families, levels: levels, limitPerLevel: limitPerLevel),
                            what: dataset.path)
    }

    /// Keeps problems of `families` and `levels` (nil: all), at most `limitPerLevel` per (family, level),
    /// in their original order.
    public static func filter(_ problems: [Problem], families: [String]?, levels: [Int]?, limitPerLevel: Int?) -> [Problem] {
        var taken: [String: Int] = [:]
        return problems.filter { p in
            if let families, !families.contains(p.family) { return false }
            if let levels, !levels.contains(p.difficulty) { return false }
            let key = "\(p.family)\u{0}\(p.difficulty)"
            if let limit = limitPerLevel, taken[key, default: 0] >= limit { return false }
            taken[key, default: 0] += 1
            return true
        }
    }

    /// The family folders under `dir` that hold a test.jsonl, sorted.
    static func available(in dir: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().filter {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).appendingPathComponent("test.jsonl").path)
        }
    }

    /// `requested` (nil: all of `known`), each checked against `known`.
    static func checked(_ requested: [String]?, known: [String]) throws -> [String] {
        guard let requested else { return known }
        for name in requested where !known.contains(name) {
            throw EvalError.unknownFamily(name: name, suggestion: Spelling.nearest(name, in: known), known: known)
        }
        return requested
    }

    static func nonEmpty(_ problems: [Problem], what: String) throws -> [Problem] {
        guard !problems.isEmpty else { throw EvalError.noProblems("no problems in \(what) match the chosen families and levels") }
        return problems
    }
}
