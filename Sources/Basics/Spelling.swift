// The nearest known name to a misspelt one, for "did you mean" in config, flag and task errors.

/// Nearest-name suggestions for misspelt keys and names (Levenshtein distance).
public enum Spelling {
    public static func nearest(_ word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(Array(word), Array($0))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
        return best.0
    }

    public static func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

/// A closed set of choices that configs spell by their raw values (`precision: bf16`, `loss_type:
/// dr_grpo`): the config loader accepts exactly these spellings and names them when one is wrong.
public protocol ConfigChoice: CaseIterable, Codable, Sendable, RawRepresentable where RawValue == String {}

extension ConfigChoice {
    /// Every spelling, in declaration order.
    public static var spellings: [String] { allCases.map(\.rawValue) }

    /// "a, b or c", for messages.
    public static var spellingList: String {
        let quoted = spellings.map { $0.isEmpty ? "\"\"" : $0 }
        return quoted.count < 2 ? quoted.joined() : quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
    }
}
