// The curriculum and the training problem source. Training problems are generated on the fly, level by
// level as the curriculum decides, and none whose canonical form is in a held-out set is ever served.

import Foundation

/// Chooses a difficulty level per family: moves up when the recent reward at the current level is high,
/// down when it is low, and keeps drawing some problems from the levels below. Its whole state is
/// `Codable` so that a checkpoint can resume it.
public struct Curriculum: Codable, Sendable, Equatable {
    /// How the curriculum moves; part of the training config.
    public struct Config: Codable, Sendable, Equatable {
        /// The level every family starts at (clamped to its training levels).
        public var startLevel: Int = 1
        /// How many rewards at the current level decide a move.
        public var window: Int = 32
        /// Move up when the mean reward over the window is at least this.
        public var promoteAbove: Double = 0.8
        /// Move down when the mean reward over the window is at most this.
        public var demoteBelow: Double = 0.2
        /// The probability of drawing a level below the current one instead of the current one.
        public var lowerLevelFraction: Double = 0.25
        /// The highest level the curriculum may reach (0: each family's highest training level).
        public var maxLevel: Int = 0

        /// The defaults above.
        public init() {}

        /// Throws a `CurriculumConfigError` naming the bad key.
        public func validate() throws {
            func fail(_ key: String, _ message: String) -> CurriculumConfigError {
                CurriculumConfigError(key: key, message: message)
            }
            guard startLevel >= 1 else { throw fail("startLevel", "must be at least 1") }
            guard window >= 1 else { throw fail("window", "must be at least 1") }
            guard (0...1).contains(promoteAbove) else { throw fail("promoteAbove", "must be in [0, 1]") }
            guard (0...1).contains(demoteBelow), demoteBelow < promoteAbove else {
                throw fail("demoteBelow", "must be in [0, 1] and below promoteAbove (\(promoteAbove))")
            }
            guard (0...1).contains(lowerLevelFraction) else { throw fail("lowerLevelFraction", "must be in [0, 1]") }
            guard maxLevel == 0 || maxLevel >= startLevel else { throw fail("maxLevel", "must be 0 (no cap) or at least startLevel (\(startLevel))") }
        }
    }

    /// One family's position.
    public struct FamilyState: Codable, Sendable, Equatable {
        /// The current (highest) level drawn.
        public var level: Int
        /// Rewards recorded at `level` since the last move, oldest first, at most `window` of them.
        public var recent: [Double]
        /// Moves up so far, for logging.
        public var promotions: Int
        /// Moves down so far, for logging.
        public var demotions: Int
    }

    /// The settings.
    public let config: Config
    /// Each family's position, by family name.
    public private(set) var families: [String: FamilyState]
    /// Each family's lowest and highest training level, by family name.
    public private(set) var bounds: [String: ClosedRange<Int>]

    /// A curriculum over `families`, each starting at `config.startLevel` within its training levels.
    public init(families: [any TaskFamily], config: Config = Config()) throws {
        try config.validate()
        self.config = config
        var states: [String: FamilyState] = [:]
        var bounds: [String: ClosedRange<Int>] = [:]
        for family in families {
            let top = config.maxLevel > 0 ? max(family.trainingLevels.lowerBound, min(config.maxLevel, family.trainingLevels.upperBound))
                : family.trainingLevels.upperBound
            let range = family.trainingLevels.lowerBound...top
            bounds[family.name] = range
            let start = min(max(config.startLevel, range.lowerBound), range.upperBound)
            states[family.name] = FamilyState(level: start, recent: [], promotions: 0, demotions: 0)
        }
        self.families = states
        self.bounds = bounds
    }

    /// The current level of `family`.
    public func level(of family: String) -> Int {
        families[family]?.level ?? 1
    }

    /// Draws a level for `family`: the current level, or with probability `lowerLevelFraction` a uniform
    /// level below it.
    public func sampleLevel(family: String, rng: inout SplitMix64) -> Int {
        let current = level(of: family)
        let lowest = bounds[family]?.lowerBound ?? 1
        if current > lowest && rng.unit() < config.lowerLevelFraction {
            return rng.int(in: lowest...(current - 1))
        }
        return current
    }

    /// Records the reward (ideally correctness, in [0, 1]) of a problem. Only rewards at the family's
    /// current level count; when `window` of them have accumulated the level may move, and the window
    /// starts afresh after a move. Returns the new level when it moved.
    @discardableResult
    public mutating func record(family: String, level: Int, reward: Double) -> Int? {
        guard var state = families[family], let range = bounds[family], level == state.level, reward.isFinite else { return nil }
        state.recent.append(reward)
        if state.recent.count > config.window { state.recent.removeFirst(state.recent.count - config.window) }
        var moved: Int?
        if state.recent.count == config.window {
            let mean = state.recent.reduce(0, +) / Double(state.recent.count)
            if mean >= config.promoteAbove && state.level < range.upperBound {
                state.level += 1
                state.promotions += 1
                moved = state.level
            } else if mean <= config.demoteBelow && state.level > range.lowerBound {
                state.level -= 1
                state.demotions += 1
                moved = state.level
            }
            if moved != nil { state.recent = [] }
        }
        families[family] = state
        return moved
    }
}

/// A curriculum setting that cannot be used.
public struct CurriculumConfigError: Error, Equatable, CustomStringConvertible {
    /// The offending key.
    public let key: String
    /// What is wrong and what would be right.
    public let message: String

    public var description: String {
        "curriculum config key '\(key)': \(message)"
    }
}

/// The canonical forms of every held-out problem; training never serves one of them.
public struct HeldOutSet: Sendable {
    /// Canonical forms of the held-out problems.
    public private(set) var canonical: Set<String>

    /// A set holding the canonical forms of `problems`.
    public init(problems: [Problem] = []) {
        canonical = Set(problems.map(\.canonical))
    }

    /// Whether `problem` is held out.
    public func contains(_ problem: Problem) -> Bool {
        canonical.contains(problem.canonical)
    }

    /// Adds more held-out problems (a user's own test file, say).
    public mutating func insert(contentsOf problems: [Problem]) {
        for problem in problems { canonical.insert(problem.canonical) }
    }

    /// Every `<family>/test.jsonl` under `directory` (normally `datasets/`).
    public static func load(directory: URL) throws -> HeldOutSet {
        var set = HeldOutSet()
        for (_, problems) in try Datasets.loadDirectory(directory) { set.insert(contentsOf: problems) }
        return set
    }

    /// The built-in test sets, regenerated in memory: the same problems as the committed files.
    public static func builtIn() -> HeldOutSet {
        HeldOutSet(problems: TaskRegistry.all.flatMap { Datasets.testSet(for: $0) })
    }
}

/// Generates training problems on the fly: picks a family by weight, a level from the curriculum, and
/// a problem seeded by hashing (seed, "train", family, level, index); skips any that is held out.
public struct TrainingSampler: Sendable {
    /// Everything that changes as problems are drawn; save it in checkpoints to resume the stream.
    public struct State: Codable, Sendable, Equatable {
        /// Draws families and levels.
        public var rng: SplitMix64
        /// The curriculum's state.
        public var curriculum: Curriculum
        /// Problems generated so far, held-out ones included: the next item index.
        public var generated: Int
        /// Generated problems that were held out and skipped.
        public var skipped: Int
    }

    /// The families drawn from.
    public let families: [any TaskFamily]
    /// The families' relative weights, in the same order.
    public let weights: [Double]
    /// The seed of the problem stream.
    public let seed: UInt64
    /// Problems never served.
    public let heldOut: HeldOutSet
    /// The mutable state.
    public var state: State

    /// A sampler over the named families. Throws `SamplerError` for unknown names or bad weights.
    public init(
        families names: [String], weights: [Double]? = nil, seed: UInt64, heldOut: HeldOutSet,
        curriculum: Curriculum.Config = Curriculum.Config()
    ) throws {
        var families: [any TaskFamily] = []
        for name in names {
            guard let family = TaskRegistry.family(named: name) else {
                throw SamplerError.unknownFamily(name, suggestion: Spelling.nearest(name, in: TaskRegistry.names))
            }
            families.append(family)
        }
        guard !families.isEmpty else { throw SamplerError.noFamilies }
        let weights = weights ?? Array(repeating: 1.0, count: families.count)
        guard weights.count == families.count, weights.allSatisfy({ $0 >= 0 && $0.isFinite }), weights.contains(where: { $0 > 0 }) else {
            throw SamplerError.badWeights(count: families.count)
        }
        self.families = families
        self.weights = weights
        self.seed = seed
        self.heldOut = heldOut
        state = State(
            rng: SplitMix64(seed: SeedDerivation.itemSeed(seed: seed, stream: "sampler", family: "", level: 0, index: 0)),
            curriculum: try Curriculum(families: families, config: curriculum), generated: 0, skipped: 0)
    }

    /// The next training problem. Throws `SamplerError.exhausted` only if a million draws in a row were
    /// all held out, which means the held-out set covers the level's whole problem space.
    public mutating func next() throws -> Problem {
        let family = families[pickFamily()]
        let level = state.curriculum.sampleLevel(family: family.name, rng: &state.rng)
        for _ in 0..<1_000_000 {
            let index = state.generated
            state.generated += 1
            let problem = family.problem(
                seed: seed, stream: "train", level: level, index: index,
                id: "train-\(family.name)-L\(level)-\(index)")
            if heldOut.contains(problem) {
                state.skipped += 1
                continue
            }
            return problem
        }
        throw SamplerError.exhausted(family: family.name, level: level)
    }

    /// The next `count` training problems.
    public mutating func next(_ count: Int) throws -> [Problem] {
        try (0..<count).map { _ in try next() }
    }

    /// Feeds a problem's reward to the curriculum. Returns the family's new level when it moved.
    @discardableResult
    public mutating func record(_ problem: Problem, reward: Double) -> Int? {
        state.curriculum.record(family: problem.family, level: problem.difficulty, reward: reward)
    }

    private mutating func pickFamily() -> Int {
        let total = weights.reduce(0, +)
        var draw = state.rng.unit() * total
        for (i, weight) in weights.enumerated() {
            if draw < weight { return i }
            draw -= weight
        }
        return weights.lastIndex(where: { $0 > 0 })!
    }
}

/// Why a training sampler cannot be built or cannot continue.
public enum SamplerError: Error, Equatable, CustomStringConvertible {
    /// A family name that is not in the registry, with the nearest known name.
    case unknownFamily(String, suggestion: String?)
    /// An empty family list.
    case noFamilies
    /// Weights that do not match the families or are not usable.
    case badWeights(count: Int)
    /// Every draw at a level was held out.
    case exhausted(family: String, level: Int)

    public var description: String {
        switch self {
        case .unknownFamily(let name, let suggestion):
            return "unknown task family '\(name)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
                + " Families: \(TaskRegistry.names.joined(separator: ", "))."
        case .noFamilies:
            return "no task families given; list at least one of \(TaskRegistry.names.joined(separator: ", "))"
        case .badWeights(let count):
            return "family weights must be \(count) finite, non-negative numbers, at least one positive"
        case .exhausted(let family, let level):
            return "every generated \(family) problem at level \(level) is held out; raise the level or shrink the test set"
        }
    }
}
