import Foundation
import Tasks
import XCTest

/// The curriculum's moves, its saved state, and the training sampler's exclusion of held-out problems.
final class CurriculumTests: XCTestCase {
    let add = TaskRegistry.family(named: "add")!

    func config(window: Int = 4) -> Curriculum.Config {
        var config = Curriculum.Config()
        config.mode = .ladder
        config.window = window
        config.promoteAbove = 0.75
        config.demoteBelow = 0.25
        config.lowerLevelFraction = 0.3
        return config
    }

    func testMovesUpWhenRewardIsHighAndDownWhenLow() throws {
        var curriculum = try Curriculum(families: [add], config: config())
        XCTAssertEqual(curriculum.level(of: "add"), 1)
        for _ in 0..<3 { XCTAssertNil(curriculum.record(family: "add", level: 1, reward: 1)) }
        XCTAssertEqual(curriculum.record(family: "add", level: 1, reward: 1), 2, "a full window of high reward promotes")
        XCTAssertEqual(curriculum.level(of: "add"), 2)
        // Rewards from lower levels do not count toward the current level's window.
        for _ in 0..<10 { XCTAssertNil(curriculum.record(family: "add", level: 1, reward: 0)) }
        XCTAssertEqual(curriculum.level(of: "add"), 2)
        for _ in 0..<4 { curriculum.record(family: "add", level: 2, reward: 0) }
        XCTAssertEqual(curriculum.level(of: "add"), 1, "a full window of low reward demotes")
        for _ in 0..<4 { curriculum.record(family: "add", level: 1, reward: 0) }
        XCTAssertEqual(curriculum.level(of: "add"), 1, "never below the lowest level")
        // Middling reward keeps the level.
        for i in 0..<20 { curriculum.record(family: "add", level: 1, reward: i % 2 == 0 ? 1 : 0) }
        XCTAssertEqual(curriculum.level(of: "add"), 1)
    }

    func testNeverLeavesTheTrainingLevels() throws {
        var curriculum = try Curriculum(families: [add], config: config(window: 1))
        for _ in 0..<20 { curriculum.record(family: "add", level: curriculum.level(of: "add"), reward: 1) }
        XCTAssertEqual(curriculum.level(of: "add"), add.trainingLevels.upperBound, "the beyond tier is never trained on")
    }

    func testKeepsSomeLowerLevelMass() throws {
        var curriculum = try Curriculum(families: [add], config: config(window: 1))
        for _ in 0..<3 { curriculum.record(family: "add", level: curriculum.level(of: "add"), reward: 1) }
        XCTAssertEqual(curriculum.level(of: "add"), 4)
        var rng = SplitMix64(seed: 1)
        var counts = [Int: Int]()
        for _ in 0..<10_000 { counts[curriculum.sampleLevel(family: "add", rng: &rng), default: 0] += 1 }
        XCTAssertEqual(Double(counts[4]!) / 10_000, 0.7, accuracy: 0.03)
        for level in 1...3 { XCTAssertEqual(Double(counts[level]!) / 10_000, 0.1, accuracy: 0.02, "level \(level)") }
        XCTAssertNil(counts[5])
    }

    func testStateRoundTripsThroughCodable() throws {
        var curriculum = try Curriculum(families: TaskRegistry.all, config: config())
        for _ in 0..<6 { curriculum.record(family: "mul", level: curriculum.level(of: "mul"), reward: 1) }
        let data = try JSONEncoder().encode(curriculum)
        XCTAssertEqual(try JSONDecoder().decode(Curriculum.self, from: data), curriculum)
        XCTAssertEqual(try JSONDecoder().decode(Curriculum.self, from: data).level(of: "mul"), 2)
    }

    func testInvalidConfigIsATypedError() {
        var bad = Curriculum.Config()
        bad.demoteBelow = 0.9
        XCTAssertThrowsError(try Curriculum(families: [add], config: bad)) { error in
            XCTAssertEqual((error as? CurriculumConfigError)?.key, "demote_below")
        }
        XCTAssertThrowsError(try TrainingSampler(families: ["ad"], seed: 1, heldOut: HeldOutSet())) { error in
            XCTAssertTrue("\(error)".contains("did you mean 'add'"), "\(error)")
        }
    }

    func testSamplerNeverServesAHeldOutProblem() throws {
        // Hold out exactly the first 300 problems an unconstrained sampler would serve; a sampler with
        // the same seed must then skip every one of them and serve none. (A ladder holds one level, so
        // both samplers generate the same problem at each index.)
        let families = ["add"]
        var free = try TrainingSampler(families: families, seed: 99, heldOut: HeldOutSet(), curriculum: config())
        let firstServed = try free.next(300)
        let heldOut = HeldOutSet(problems: firstServed)
        var guarded = try TrainingSampler(families: families, seed: 99, heldOut: heldOut, curriculum: config())
        let served = try guarded.next(300)
        XCTAssertTrue(served.allSatisfy { !heldOut.contains($0) })
        XCTAssertGreaterThanOrEqual(guarded.state.skipped, 300, "the held-out problems were generated and skipped")
        XCTAssertEqual(guarded.state.generated, 300 + guarded.state.skipped)
    }

    func testSamplerNeverServesATestSetProblem() throws {
        // The real held-out sets, read from the committed files; level 1 is where collisions are likeliest.
        let heldOut = try HeldOutSet.load(directory: DatasetTests.committed)
        XCTAssertEqual(heldOut.canonical.count, TaskRegistry.all.count * 5 * Datasets.perLevel)
        var sampler = try TrainingSampler(families: TaskRegistry.names, seed: 5, heldOut: heldOut)
        for problem in try sampler.next(20_000) {
            XCTAssertFalse(heldOut.contains(problem), "served held-out \(problem.canonical)")
        }
        XCTAssertGreaterThan(sampler.state.skipped, 0, "some generated training problems collided with a test set and were skipped")
    }

    func testSamplerResumesFromSavedState() throws {
        var sampler = try TrainingSampler(families: ["add", "knights"], weights: [3, 1], seed: 4, heldOut: HeldOutSet())
        _ = try sampler.next(50)
        for problem in try sampler.next(40) { sampler.record(problem, passRate: 1, signal: false) }
        let saved = try JSONEncoder().encode(sampler.state)
        let expected = try sampler.next(20)
        var resumed = try TrainingSampler(families: ["add", "knights"], weights: [3, 1], seed: 4, heldOut: HeldOutSet())
        resumed.state = try JSONDecoder().decode(TrainingSampler.State.self, from: saved)
        XCTAssertEqual(try resumed.next(20), expected)
        let families = Dictionary(grouping: expected, by: \.family).mapValues(\.count)
        XCTAssertEqual(Set(families.keys), ["add", "knights"])
        let recorded = (1...4).compactMap { sampler.state.curriculum.stats(family: "add", level: $0)?.groups }.reduce(0, +)
        XCTAssertGreaterThan(recorded, 0, "the groups reached the curriculum's estimates")
    }

    // MARK: - The ladder's demotion rule

    func testLadderWithDemoteBelowZeroNeverDemotes() throws {
        var c = config()
        c.startLevel = 2
        c.demoteBelow = 0
        var curriculum = try Curriculum(families: [add], config: c)
        for _ in 0..<40 { XCTAssertNil(curriculum.record(family: "add", level: 2, reward: 0)) }
        XCTAssertEqual(curriculum.level(of: "add"), 2, "a window of zeros is not below 0")
        c.demoteBelow = 0.2
        curriculum = try Curriculum(families: [add], config: c)
        for _ in 0..<3 { curriculum.record(family: "add", level: 2, reward: 0.2) }
        XCTAssertNil(curriculum.record(family: "add", level: 2, reward: 0.2), "a mean equal to demote_below stays")
        for _ in 0..<4 { curriculum.record(family: "add", level: 2, reward: 0) }
        XCTAssertEqual(curriculum.level(of: "add"), 1)
    }

    // MARK: - The adaptive curriculum

    /// Records `n` groups at `level`, with the given pass rate and signal.
    func feed(_ c: inout Curriculum, level: Int, n: Int, passRate: Double, signal: Bool) {
        for _ in 0..<n { c.record(family: "add", level: level, passRate: passRate, signal: signal) }
    }

    func testAdaptiveDrawsLevelsInProportionToTheirSignal() throws {
        var c = Curriculum.Config()
        c.window = 32
        c.probe = 0.05
        var curriculum = try Curriculum(families: [add], config: c)
        XCTAssertEqual(curriculum.levelWeights(family: "add"), [0.5, 0.5, 0.5, 0.5], "untried levels start at a signal rate of one half")
        feed(&curriculum, level: 1, n: 200, passRate: 1, signal: false)      // mastered
        feed(&curriculum, level: 2, n: 200, passRate: 0.4, signal: true)     // at the edge
        feed(&curriculum, level: 3, n: 200, passRate: 0, signal: false)      // never solved; level 4 untried
        let w = curriculum.levelWeights(family: "add")
        XCTAssertEqual(w[0], 0.05, "a mastered level falls to the probe weight")
        XCTAssertEqual(w[1], 32.5 / 33, accuracy: 0.01, "decayed sums remember about `window` groups")
        XCTAssertEqual(w[2], 0.05)
        XCTAssertEqual(w[3], 0.5)
        XCTAssertEqual(curriculum.stats(family: "add", level: 2)!.passRate, 0.4, accuracy: 0.01)
        XCTAssertEqual(curriculum.level(of: "add"), 2, "the most drawn level is the edge")
        var rng = SplitMix64(seed: 7)
        var counts = [Int: Int]()
        let n = 40_000
        for _ in 0..<n { counts[curriculum.sampleLevel(family: "add", rng: &rng), default: 0] += 1 }
        let total = w.reduce(0, +)
        for level in 1...4 {
            XCTAssertEqual(Double(counts[level] ?? 0) / Double(n), w[level - 1] / total, accuracy: 0.01, "level \(level)")
        }
        XCTAssertNil(counts[5], "the beyond tier is never drawn")
    }

    func testAdaptiveGivesFamiliesAtTheirEdgeMoreOfThePrompts() throws {
        var c = Curriculum.Config()
        c.replay = 0
        c.maxLevel = 2
        var sampler = try TrainingSampler(families: ["add", "knights", "stack"], weights: [1, 1, 2], seed: 5, heldOut: HeldOutSet(), curriculum: c)
        XCTAssertEqual(sampler.familyWeights(), [0.5, 0.5, 1.0], "untried families keep their configured ratio")
        for _ in 0..<200 {  // add: both levels at the edge; knights mastered; stack never solved
            let fresh = try sampler.next(3)
            for p in fresh {
                switch p.family {
                case "add": sampler.record(p, passRate: 0.5, signal: true)
                case "knights": sampler.record(p, passRate: 1, signal: false)
                default: sampler.record(p, passRate: 0, signal: false)
                }
            }
        }
        let w = sampler.familyWeights()
        XCTAssertEqual(w[1], 0.05, accuracy: 1e-3, "a mastered family falls to the probe weight")
        XCTAssertEqual(w[2], 2 * 0.05, accuracy: 1e-3, "a never-solved one too, times its configured weight")
        XCTAssertGreaterThan(w[0], 0.9)
        var counts = [String: Int]()
        for _ in 0..<3000 { counts[try sampler.next().family, default: 0] += 1 }
        XCTAssertEqual(Double(counts["add"] ?? 0) / 3000, w[0] / w.reduce(0, +), accuracy: 0.03)
        XCTAssertGreaterThan(counts["knights"] ?? 0, 0, "a mastered family is still probed")
        // Off, or under the ladder, the configured weights alone decide.
        c.weighFamilies = false
        sampler = try TrainingSampler(families: ["add", "knights"], weights: [1, 3], seed: 5, heldOut: HeldOutSet(), curriculum: c)
        sampler.record(try sampler.next(), passRate: 1, signal: false)
        XCTAssertEqual(sampler.familyWeights(), [1, 3])
    }

    func testAdaptiveFollowsTheEdgeAsThePolicyImproves() throws {
        var curriculum = try Curriculum(families: [add], config: Curriculum.Config())
        feed(&curriculum, level: 1, n: 100, passRate: 0.5, signal: true)
        feed(&curriculum, level: 2, n: 100, passRate: 0, signal: false)
        feed(&curriculum, level: 3, n: 100, passRate: 0, signal: false)
        feed(&curriculum, level: 4, n: 100, passRate: 0, signal: false)
        XCTAssertEqual(curriculum.level(of: "add"), 1)
        // Level 1 is mastered and level 2 starts to pay: within a window the draws move up.
        feed(&curriculum, level: 1, n: 100, passRate: 1, signal: false)
        XCTAssertEqual(curriculum.record(family: "add", level: 2, passRate: 0.2, signal: true), nil, "one group is not enough")
        feed(&curriculum, level: 2, n: 40, passRate: 0.3, signal: true)
        XCTAssertEqual(curriculum.level(of: "add"), 2)
        XCTAssertGreaterThan(curriculum.levelWeights(family: "add")[1], 10 * curriculum.levelWeights(family: "add")[0])
    }

    func testConfigSavedBeforeModesExistedDecodesAsALadder() throws {
        let old = #"{"startLevel":2,"window":32,"promoteAbove":0.8,"demoteBelow":0,"lowerLevelFraction":0.2,"maxLevel":2}"#
        let c = try JSONDecoder().decode(Curriculum.Config.self, from: Data(old.utf8))
        XCTAssertEqual(c.mode, .ladder)
        XCTAssertFalse(c.weighFamilies, "older runs drew families by their weights alone")
        XCTAssertEqual(c.startLevel, 2)
        XCTAssertEqual(c.probe, Curriculum.Config().probe)
        XCTAssertThrowsError(try JSONDecoder().decode(Curriculum.Config.self, from: Data(#"{"mode":"adaptiv"}"#.utf8)))
        var bad = Curriculum.Config()
        bad.probe = 0
        XCTAssertThrowsError(try bad.validate()) { XCTAssertEqual(($0 as? CurriculumConfigError)?.key, "probe") }
    }

    // MARK: - The edge pool

    func testProblemsThatDisagreedAreServedAgainUpToTheirUses() throws {
        var c = Curriculum.Config()
        c.replay = 0.5
        c.replayUses = 2
        var sampler = try TrainingSampler(families: ["add"], seed: 3, heldOut: HeldOutSet(), curriculum: c)
        let first = try sampler.next(4)
        XCTAssertEqual(Set(first.map(\.canonical)).count, 4, "an empty pool serves fresh problems")
        sampler.record(first[0], passRate: 0.5, signal: true)
        sampler.record(first[1], passRate: 1, signal: false)
        sampler.record(first[2], passRate: 0.25, signal: true)
        sampler.record(first[3], passRate: 0, signal: false)
        let saved = sampler.state
        let second = try sampler.next(4)
        XCTAssertEqual(Array(second.prefix(2)), [first[2], first[0]], "half the batch from the pool, newest first")
        XCTAssertFalse(second.suffix(2).contains(first[1]), "an agreeing group's problem is not replayed")
        var resumed = try TrainingSampler(families: ["add"], seed: 3, heldOut: HeldOutSet(), curriculum: c)
        resumed.state = try JSONDecoder().decode(TrainingSampler.State.self, from: try JSONEncoder().encode(saved))
        XCTAssertEqual(try resumed.next(4), second, "the pool resumes exactly")
        // first[2] keeps disagreeing: served again once more (2 uses), then never.
        sampler.record(second[0], passRate: 0.5, signal: true)
        XCTAssertEqual(try sampler.next(2).first, first[2])
        sampler.record(first[2], passRate: 0.5, signal: true)
        XCTAssertTrue(sampler.state.pool.isEmpty, "a problem served replay_uses times goes")
    }

    func testSamplerStateSavedBeforeThePoolAndEstimatesExistedStillLoads() throws {
        var sampler = try TrainingSampler(families: ["add"], seed: 3, heldOut: HeldOutSet(), curriculum: config())
        _ = try sampler.next(5)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(sampler.state)) as! [String: Any]
        json["pool"] = nil
        json["inFlight"] = nil
        var curriculum = json["curriculum"] as! [String: Any]
        var families = curriculum["families"] as! [String: Any]
        var add = families["add"] as! [String: Any]
        add["stats"] = nil
        families["add"] = add
        curriculum["families"] = families
        json["curriculum"] = curriculum
        let old = try JSONDecoder().decode(TrainingSampler.State.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertTrue(old.pool.isEmpty && old.inFlight.isEmpty)
        XCTAssertEqual(old.curriculum.families["add"]?.stats, [])
        XCTAssertEqual(old.generated, sampler.state.generated)
        var resumed = try TrainingSampler(families: ["add"], seed: 3, heldOut: HeldOutSet(), curriculum: config())
        resumed.state = old
        XCTAssertEqual(try resumed.next(3), try sampler.next(3), "the old state serves the same problems")
    }
}
