// The curriculum and the training problem source. Training problems are generated on the fly, level by
// level as the curriculum decides, and none whose canonical form is in a held-out set is ever served.

import Foundation

/// Chooses a difficulty level per family for each training problem. Its whole state is `Codable` so
/// that a checkpoint can resume it. Two modes:
///
/// - `adaptive` (the default) keeps, per family and level, a running estimate of the policy's pass rate
///   and of how often a group of completions disagreed (some rewards differ, so GRPO has a gradient), and
///   draws each level in proportion to that signal rate, never below `probe`. Levels the policy has
///   mastered and levels it never solves both give groups that agree, so they fall to `probe` (drawn now
///   and then, to notice forgetting or a first success); the levels at its edge of competence take the
///   rest. The estimates start at a signal rate of one half, so every level is tried early on. This is
///   the per-problem difficulty pools of prime-rl (easy / normal / hard by whether a problem's rollouts
///   all passed, all failed, or differed) and the pass-rate band of open-r1's filtering, moved from
///   problems to the levels of generated families, where a problem is seldom seen twice.
/// - `ladder` is reasoning-gym's style of curriculum: one current level per family, promoted when the
///   mean reward over a window reaches `promoteAbove`, demoted when it falls below `demoteBelow`, with
///   `lowerLevelFraction` of draws from the levels below.
public struct Curriculum: Codable, Sendable, Equatable {
    /// How levels are chosen; see the type's comment.
    public enum Mode: String, ConfigChoice {
        case adaptive, ladder
    }

    /// How the curriculum moves; part of the training config.
    public struct Config: Codable, Sendable, Equatable {
        /// adaptive (draw levels where groups disagree) or ladder (promote and demote one level).
        public var mode = Mode.adaptive
        /// The level every family starts at (clamped to its training levels). Ladder only.
        public var startLevel: Int = 1
        /// Ladder: how many rewards at the current level decide a move. Adaptive: how many groups the
        /// running estimates remember (each new group weighs 1/window).
        public var window: Int = 32
        /// Ladder: move up when the mean reward over the window is at least this.
        public var promoteAbove: Double = 0.8
        /// Ladder: move down when the mean reward over the window is below this (0: never).
        public var demoteBelow: Double = 0.2
        /// Ladder: the probability of drawing a level below the current one instead of the current one.
        public var lowerLevelFraction: Double = 0.25
        /// The highest level the curriculum may reach (0: each family's highest training level).
        public var maxLevel: Int = 0
        /// Adaptive: the lowest relative draw weight of a level (its signal rate is used when higher),
        /// so mastered and unsolved levels are still probed now and then.
        public var probe: Double = 0.05
        /// Fraction of each batch of problems served again from the edge pool: problems whose last
        /// group disagreed (0: always fresh problems).
        public var replay: Double = 0.25
        /// How many times one problem may be served again from the edge pool.
        public var replayUses: Int = 2
        /// Adaptive: draw each family in proportion to its weight times its levels' mean draw weight,
        /// so families whose groups disagree get more of the prompts than mastered or unsolved ones.
        public var weighFamilies = true

        /// The defaults above.
        public init() {}

        /// Throws a `CurriculumConfigError` naming the bad key.
        public func validate() throws {
            func fail(_ key: String, _ message: String) -> CurriculumConfigError {
                CurriculumConfigError(key: key, message: message)
            }
            guard (1...100).contains(startLevel) else { throw fail("start_level", "must be in 1...100") }
            guard (1...100_000).contains(window) else { throw fail("window", "must be in 1...100000") }
            guard (0...1).contains(promoteAbove) else { throw fail("promote_above", "must be in [0, 1]") }
            guard (0...1).contains(demoteBelow), demoteBelow < promoteAbove else {
                throw fail("demote_below", "must be in [0, 1] and below promote_above (\(promoteAbove))")
            }
            guard (0...1).contains(lowerLevelFraction) else { throw fail("lower_level_fraction", "must be in [0, 1]") }
            guard maxLevel <= 100 else { throw fail("max_level", "must be at most 100") }
            guard maxLevel == 0 || maxLevel >= startLevel else { throw fail("max_level", "must be 0 (no cap) or at least start_level (\(startLevel))") }
            guard probe > 0 && probe <= 1 else { throw fail("probe", "must be in (0, 1]: a level drawn with weight 0 could never show that it became learnable") }
            guard (0...1).contains(replay) else { throw fail("replay", "must be in [0, 1] (a fraction of each batch)") }
            guard (0...100).contains(replayUses) else { throw fail("replay_uses", "must be in 0...100") }
        }

        enum CodingKeys: String, CodingKey {
            case mode, startLevel, window, promoteAbove, demoteBelow, lowerLevelFraction, maxLevel, probe, replay, replayUses, weighFamilies
        }

        /// Decodes configs saved before `mode` and `probe` existed as ladders (what they ran).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? .ladder
            startLevel = try c.decodeIfPresent(Int.self, forKey: .startLevel) ?? d.startLevel
            window = try c.decodeIfPresent(Int.self, forKey: .window) ?? d.window
            promoteAbove = try c.decodeIfPresent(Double.self, forKey: .promoteAbove) ?? d.promoteAbove
            demoteBelow = try c.decodeIfPresent(Double.self, forKey: .demoteBelow) ?? d.demoteBelow
            lowerLevelFraction = try c.decodeIfPresent(Double.self, forKey: .lowerLevelFraction) ?? d.lowerLevelFraction
            maxLevel = try c.decodeIfPresent(Int.self, forKey: .maxLevel) ?? d.maxLevel
            probe = try c.decodeIfPresent(Double.self, forKey: .probe) ?? d.probe
            replay = try c.decodeIfPresent(Double.self, forKey: .replay) ?? 0  // older runs never replayed
            replayUses = try c.decodeIfPresent(Int.self, forKey: .replayUses) ?? d.replayUses
            weighFamilies = try c.decodeIfPresent(Bool.self, forKey: .weighFamilies) ?? false  // older runs drew families by weight alone
        }
    }

    /// The adaptive mode's running estimates for one level: sums that decay by (1 - 1/window) per group.
    public struct LevelStats: Codable, Sendable, Equatable {
        /// Decayed count of groups recorded.
        public var groups = 0.0
        /// Decayed sum of the groups' pass rates (mean correctness).
        public var passes = 0.0
        /// Decayed count of groups whose rewards differed.
        public var signals = 0.0

        /// The estimated pass rate, starting from one half (one pseudo-group at 0.5).
        public var passRate: Double { (passes + 0.5) / (groups + 1) }
        /// The estimated fraction of groups that disagree, starting from one half.
        public var signalRate: Double { (signals + 0.5) / (groups + 1) }

        /// Adds one group's outcome, forgetting old ones by `decay` (1 - 1/window).
        mutating func add(passRate: Double, signal: Bool, decay: Double) {
            groups = groups * decay + 1
            passes = passes * decay + passRate
            signals = signals * decay + (signal ? 1 : 0)
        }
    }

    /// One family's position.
    public struct FamilyState: Codable, Sendable, Equatable {
        /// Ladder: the current (highest) level drawn. Adaptive: the level with the highest draw weight.
        public var level: Int
        /// Ladder: rewards recorded at `level` since the last move, oldest first, at most `window` of them.
        public var recent: [Double]
        /// Ladder: moves up so far, for logging.
        public var promotions: Int
        /// Ladder: moves down so far, for logging.
        public var demotions: Int
        /// Adaptive: the estimates of each training level, lowest level first.
        public var stats: [LevelStats] = []
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
            states[family.name] = FamilyState(level: start, recent: [], promotions: 0, demotions: 0,
                                              stats: Array(repeating: LevelStats(), count: range.count))
        }
        self.families = states
        self.bounds = bounds
    }

    /// The current level of `family` (adaptive: its most drawn level).
    public func level(of family: String) -> Int {
        families[family]?.level ?? 1
    }

    /// The adaptive mode's estimates for `family` at `level` (nil outside its training levels).
    public func stats(family: String, level: Int) -> LevelStats? {
        guard let range = bounds[family], range.contains(level), let s = families[family]?.stats, s.count == range.count else { return nil }
        return s[level - range.lowerBound]
    }

    /// The adaptive draw weights of `family`'s training levels, lowest level first: each level's
    /// estimated signal rate, at least `probe`.
    public func levelWeights(family: String) -> [Double] {
        guard let range = bounds[family] else { return [] }
        return range.map { max(config.probe, stats(family: family, level: $0)?.signalRate ?? 0.5) }
    }

    /// Draws a level for `family`. Adaptive: in proportion to `levelWeights`. Ladder: the current level,
    /// or with probability `lowerLevelFraction` a uniform level below it.
    public func sampleLevel(family: String, rng: inout SplitMix64) -> Int {
        let lowest = bounds[family]?.lowerBound ?? 1
        if config.mode == .adaptive {
            let weights = levelWeights(family: family)
            guard !weights.isEmpty else { return lowest }
            var draw = rng.unit() * weights.reduce(0, +)
            for (i, w) in weights.enumerated() {
                if draw < w { return lowest + i }
                draw -= w
            }
            return lowest + weights.count - 1
        }
        let current = level(of: family)
        if current > lowest && rng.unit() < config.lowerLevelFraction {
            return rng.int(in: lowest...(current - 1))
        }
        return current
    }

    /// Records one group's outcome: its pass rate (mean correctness, in [0, 1]) and whether its rewards
    /// differed. Adaptive: updates the level's estimates and returns the family's new most-drawn level
    /// when that changed. Ladder: the pass rate counts as one reward (see `record(family:level:reward:)`).
    @discardableResult
    public mutating func record(family: String, level: Int, passRate: Double, signal: Bool) -> Int? {
        guard config.mode == .adaptive else { return record(family: family, level: level, reward: passRate) }
        guard var state = families[family], let range = bounds[family], range.contains(level), passRate.isFinite else { return nil }
        if state.stats.count != range.count { state.stats = Array(repeating: LevelStats(), count: range.count) }
        state.stats[level - range.lowerBound].add(passRate: passRate, signal: signal, decay: 1 - 1 / Double(config.window))
        families[family] = state
        let weights = levelWeights(family: family)
        let top = range.lowerBound + weights.indices.max { (weights[$0], $1) < (weights[$1], $0) }!
        guard top != state.level else { return nil }
        families[family]!.level = top
        return top
    }

    /// Ladder: records the reward (ideally correctness, in [0, 1]) of a problem. Only rewards at the
    /// family's current level count; when `window` of them have accumulated the level may move, and the
    /// window starts afresh after a move. Returns the new level when it moved.
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
            } else if mean < config.demoteBelow && state.level > range.lowerBound {
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
        /// The edge pool: problems whose last group disagreed, oldest first, with how often each was
        /// served again already.
        public var pool: [PoolItem] = []
        /// Problems served from the pool and not yet recorded, by canonical form, with their use count.
        public var inFlight: [String: Int] = [:]
    }

    /// A problem in the edge pool.
    public struct PoolItem: Codable, Sendable, Equatable {
        public var problem: Problem
        /// Times it was served again from the pool so far.
        public var uses: Int
    }

    /// The most problems the edge pool holds; the oldest go first.
    public static let poolCapacity = 256

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

    /// The next `count` training problems: `replay` of them (rounded down) from the edge pool, newest
    /// first, while it has some (prime-rl's difficulty pools serve the "normal" pool, whose rollouts
    /// disagreed, in the same spirit), then fresh ones.
    public mutating func next(_ count: Int) throws -> [Problem] {
        let replayed = min(state.pool.count, Int(Double(count) * state.curriculum.config.replay))
        var out: [Problem] = []
        for _ in 0..<replayed {
            let item = state.pool.removeLast()
            state.inFlight[item.problem.canonical] = item.uses + 1
            out.append(item.problem)
        }
        for _ in replayed..<count { out.append(try next()) }
        return out
    }

    /// Feeds one group's outcome on `problem` to the curriculum: its pass rate and whether its rewards
    /// differed. Returns the family's new (most drawn) level when it moved.
    @discardableResult
    public mutating func record(_ problem: Problem, passRate: Double, signal: Bool) -> Int? {
        let uses = state.inFlight.removeValue(forKey: problem.canonical) ?? 0
        if signal && uses < state.curriculum.config.replayUses && state.curriculum.config.replay > 0 {
            state.pool.append(PoolItem(problem: problem, uses: uses))
            if state.pool.count > Self.poolCapacity { state.pool.removeFirst(state.pool.count - Self.poolCapacity) }
        }
        return state.curriculum.record(family: problem.family, level: problem.difficulty, passRate: passRate, signal: signal)
    }

    /// The families' draw weights now: `weights`, each times the family's mean level draw weight when
    /// the curriculum is adaptive and weighs families (so a family whose groups all agree, mastered or
    /// never solved, falls toward `probe` of the prompts, and one at its edge of competence gets more).
    public func familyWeights() -> [Double] {
        let c = state.curriculum
        guard c.config.mode == .adaptive && c.config.weighFamilies else { return weights }
        return zip(families, weights).map { family, weight in
            let levels = c.levelWeights(family: family.name)
            return levels.isEmpty ? weight : weight * levels.reduce(0, +) / Double(levels.count)
        }
    }

    private mutating func pickFamily() -> Int {
        let weights = familyWeights()
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

// Checkpoints written before the adaptive curriculum and the edge pool lack these fields; they
// decode with the fields empty. (Decoders in extensions keep the memberwise initialisers.)

extension Curriculum.FamilyState {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(level: try c.decode(Int.self, forKey: .level), recent: try c.decode([Double].self, forKey: .recent),
                  promotions: try c.decode(Int.self, forKey: .promotions), demotions: try c.decode(Int.self, forKey: .demotions),
                  stats: try c.decodeIfPresent([Curriculum.LevelStats].self, forKey: .stats) ?? [])
    }
}

extension TrainingSampler.State {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(rng: try c.decode(SplitMix64.self, forKey: .rng), curriculum: try c.decode(Curriculum.self, forKey: .curriculum),
                  generated: try c.decode(Int.self, forKey: .generated), skipped: try c.decode(Int.self, forKey: .skipped),
                  pool: try c.decodeIfPresent([TrainingSampler.PoolItem].self, forKey: .pool) ?? [],
                  inFlight: try c.decodeIfPresent([String: Int].self, forKey: .inFlight) ?? [:])
    }
}
