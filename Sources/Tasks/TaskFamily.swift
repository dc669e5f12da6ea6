// The task abstraction: one family per kind of problem, each with a seeded generator over difficulty
// levels, a teacher solver (the steps and answer it writes into the generated problem), a verifier (the
// problem's `Verifier`) and a canonical form of the question.

/// A family of procedurally generated, verifiable problems.
public protocol TaskFamily: Sendable {
    /// Short name used in ids, file paths and configs, e.g. `add`.
    var name: String { get }
    /// The family's domain.
    var domain: Domain { get }
    /// One line describing the problems.
    var summary: String { get }
    /// The levels training draws from; the curriculum moves within them.
    var trainingLevels: ClosedRange<Int> { get }
    /// Harder levels beyond training, generated only for the held-out "beyond" tier.
    var beyondLevels: ClosedRange<Int> { get }
    /// One line per level saying what it contains, indexed by level - 1.
    var levelNotes: [String] { get }
    /// Generates one problem at `level`, drawing every random choice from `rng`. The result carries the
    /// teacher's steps and answer, the verifier and the canonical form; its id is empty until `problem`
    /// assigns one.
    func generate(level: Int, rng: inout SplitMix64) -> Problem
}

extension TaskFamily {
    /// Every level the family has, training and beyond.
    public var levels: ClosedRange<Int> {
        trainingLevels.lowerBound...beyondLevels.upperBound
    }

    /// The dataset tier a level belongs to: `training` or `beyond`.
    public func tier(of level: Int) -> String {
        trainingLevels.contains(level) ? "training" : "beyond"
    }

    /// The problem at `index` of the named stream, seeded by hashing (seed, stream, family, level, index).
    public func problem(seed: UInt64, stream: String, level: Int, index: Int, id: String) -> Problem {
        var rng = SplitMix64(seed: SeedDerivation.itemSeed(seed: seed, stream: stream, family: name, level: level, index: index))
        var problem = generate(level: level, rng: &rng)
        problem.id = id
        return problem
    }

    /// Builds a problem of this family with an empty id.
    func make(
        level: Int, prompt: String, answer: String, verifier: Verifier, canonical: String? = nil, steps: [String]
    ) -> Problem {
        Problem(
            id: "", family: name, domain: domain, difficulty: level, prompt: prompt, answer: answer,
            verifier: verifier, canonical: canonical, steps: steps)
    }
}

/// The built-in families.
public enum TaskRegistry {
    /// All families, math first, then code, then logic.
    public static let all: [any TaskFamily] = [
        AddSubTask(), MultiplyTask(), LinearEquationTask(), CountdownTask(),
        ProgramOutputTask(), StackMachineTask(), ListFunctionTask(), SynthesisTask(),
        KnightsTask(), BooleanTask(), MiniSudokuTask(), OrderingTask(),
    ]

    /// The family called `name`, or nil.
    public static func family(named name: String) -> (any TaskFamily)? {
        all.first { $0.name == name }
    }

    /// All family names, in registry order.
    public static var names: [String] {
        all.map(\.name)
    }
}

/// The characters that built-in prompts and teacher completions are made of, so that a tokenizer can
/// cover them. A test generates problems from every family at every level and checks each character.
public enum TaskAlphabet {
    /// Newline, space, digits, letters, and the punctuation the families and the R1 tags use.
    public static let characters: [Character] = Array(
        "\n !\"%&()*+,-./:;<=>?[]^{|}" + "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz")

    /// Whether every character of `text` is in the alphabet.
    public static func covers(_ text: String) -> Bool {
        text.allSatisfy { set.contains($0) }
    }

    private static let set = Set(characters)
}
