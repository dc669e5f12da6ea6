import Autograd
import Foundation
import Model
import Tasks
import Training
import XCTest

/// Held-out evaluation: the pass@k estimator, majority voting, aggregation on hand-written completions,
/// problem selection, and an end-to-end run of a tiny random policy.
final class EvaluationTests: XCTestCase {
    let add = Problem(id: "a", family: "add", domain: .math, difficulty: 1, prompt: "5+7=?", answer: "12", verifier: .integer)

    func completion(_ answer: String) -> EvalSample {
        EvalSample(text: Problem.completion(steps: ["work"], answer: answer), tokens: 10)
    }

    // MARK: pass@k and voting

    func testPassAtKMatchesHandComputedValues() {
        // n = 5, c = 2: 1 − C(3, k)/C(5, k) = 1 − {3/5, 3/10, 1/10, 0, 0}.
        let expected = [0.4, 0.7, 0.9, 1, 1]
        for k in 1...5 { XCTAssertEqual(Evaluator.passAtK(n: 5, c: 2, k: k), expected[k - 1], accuracy: 1e-12, "k=\(k)") }
        for k in 1...5 {
            XCTAssertEqual(Evaluator.passAtK(n: 5, c: 0, k: k), 0)
            XCTAssertEqual(Evaluator.passAtK(n: 5, c: 5, k: k), 1)
        }
        XCTAssertEqual(Evaluator.passAtK(n: 1, c: 1, k: 1), 1)
        XCTAssertEqual(Evaluator.passAtK(n: 10, c: 3, k: 1), 0.3, accuracy: 1e-12)
    }

    func testMajorityVoteBreaksTiesByFirstOccurrence() {
        XCTAssertEqual(Evaluator.majorityVote(["5", "7", "7", "5"]), 0)
        XCTAssertEqual(Evaluator.majorityVote(["7", "5", "5", "7", "5"]), 1)
        XCTAssertEqual(Evaluator.majorityVote(["3", "05", "+5"]), 1, "05 and +5 both normalize to 5")
        XCTAssertEqual(Evaluator.majorityVote(["3", "05", "+5", " 3"]), 0, "2-2: the answer seen first wins")
        XCTAssertEqual(Evaluator.majorityVote([nil, "", "9"]), 2, "missing and empty answers do not vote")
        XCTAssertNil(Evaluator.majorityVote([nil, nil, ""]))
        XCTAssertEqual(Evaluator.majorityVote(["a b", "c", "a \n b"]), 0)
        XCTAssertEqual(Evaluator.normalizedAnswer(" -007 "), "-7")
        XCTAssertEqual(Evaluator.normalizedAnswer("x  =\t5"), "x = 5")
    }

    func testGradeCountsCorrectFormatAndMajority() {
        let wrongMajority = Evaluator.grade(add, [completion("13"), completion("12"), completion("13")])
        XCTAssertEqual(wrongMajority.correct, 1)
        XCTAssertEqual(wrongMajority.formatted, 3)
        XCTAssertEqual(wrongMajority.majorityAnswer, "13")
        XCTAssertFalse(wrongMajority.majorityCorrect)

        let tie = Evaluator.grade(add, [completion("012"), completion("13"), EvalSample(text: "no answer", tokens: 4, truncated: true)])
        XCTAssertEqual(tie.correct, 1)
        XCTAssertEqual(tie.formatted, 2)
        XCTAssertEqual(tie.majorityAnswer, "12")
        XCTAssertTrue(tie.majorityCorrect, "a 1-1 tie goes to the first answer, 012, which the integer verifier accepts")
        XCTAssertEqual(tie.tokens, 24)
        XCTAssertEqual(tie.truncated, 1)
        XCTAssertEqual(tie.firstCompletion, completion("012").text)
    }

    // MARK: aggregation on scripted completions

    func testTeacherCompletionsScoreOneAndGarbageZero() throws {
        let problems = try EvalSet.select(families: nil, levels: nil, limitPerLevel: 1, datasetsDirectory: nil)
        XCTAssertEqual(Set(problems.map(\.family)).count, TaskRegistry.all.count)
        let teacher = Evaluator.report(problems.map { ($0, [EvalSample(text: $0.teacherCompletion, tokens: 20)]) })
        XCTAssertEqual(teacher.overall.count, problems.count)
        for name in ["pass@1", "pass@k", "maj@k", "format"] {
            XCTAssertEqual(teacher.scalars()["eval/\(name)"], 1, name)
        }
        XCTAssertEqual(teacher.overall.meanLength, 20)
        for family in teacher.families {
            XCTAssertEqual(family.stats.passAt1, 1, family.family)
            XCTAssertEqual(family.levels.map(\.level), Array(TaskRegistry.family(named: family.family)!.levels))
        }
        let garbage = Evaluator.report(problems.map {
            ($0, [EvalSample(text: "<think>\n\n</think>\n<answer>\n\n</answer>", tokens: 128, truncated: true)])
        })
        XCTAssertEqual(garbage.overall.passAt1, 0)
        XCTAssertEqual(garbage.overall.format, 0, "empty think and answer bodies fail the strict format")
        XCTAssertEqual(garbage.overall.majAtK, 0)
        XCTAssertEqual(garbage.overall.truncated, 1)
    }

    func testMixedSamplesAggregatePerProblemThenOverProblems() throws {
        let problems = try EvalSet.select(families: ["add", "ordering"], levels: [1, 2], limitPerLevel: 2, datasetsDirectory: nil)
        XCTAssertEqual(problems.count, 8)
        let graded = problems.map { p -> (problem: Problem, samples: [EvalSample]) in
            let right = EvalSample(text: p.teacherCompletion, tokens: 30)
            let wrong = EvalSample(text: Problem.completion(steps: ["guess"], answer: "Z"), tokens: 10)
            let none = EvalSample(text: "rambling", tokens: 40, truncated: true)
            // add: 1 right of 4 and no rival answer → the vote is right; ordering: 2 right, 2 identical wrong → tie → first (wrong).
            return p.family == "add" ? (p, [none, right, none, none]) : (p, [wrong, right, wrong, right])
        }
        let report = Evaluator.report(graded)
        XCTAssertEqual(report.k, 4)
        let addStats = try XCTUnwrap(report.stats(family: "add"))
        XCTAssertEqual(addStats.passAt1, 0.25)
        XCTAssertEqual(addStats.passAtK, 1)
        XCTAssertEqual(addStats.majAtK, 1)
        XCTAssertEqual(addStats.format, 0.25)
        XCTAssertEqual(addStats.meanLength, 37.5)
        XCTAssertEqual(addStats.truncated, 0.75)
        let ordering = try XCTUnwrap(report.stats(family: "ordering", level: 2))
        XCTAssertEqual(ordering.count, 2)
        XCTAssertEqual(ordering.passAt1, 0.5)
        XCTAssertEqual(ordering.majAtK, 0)
        XCTAssertEqual(ordering.format, 1)
        XCTAssertEqual(report.overall.passAt1, 0.375)
        XCTAssertEqual(report.overall.majAtK, 0.5)
        XCTAssertEqual(Evaluator.report(graded, k: 2).overall.passAtK, (0.5 + (1 - 1.0 / 6)) / 2, accuracy: 1e-12)

        let scalars = report.scalars()
        XCTAssertEqual(Set(scalars.keys), [
            "eval/pass@1", "eval/pass@k", "eval/maj@k", "eval/format", "eval/mean_length",
            "eval/add/pass@1", "eval/add/L1/pass@1", "eval/add/L2/pass@1",
            "eval/ordering/pass@1", "eval/ordering/L1/pass@1", "eval/ordering/L2/pass@1",
            "eval/math/pass@1", "eval/logic/pass@1",
        ])
        // Domains pool their problems: math is add's, logic is ordering's.
        XCTAssertEqual(scalars["eval/math/pass@1"], addStats.passAt1)
        XCTAssertEqual(scalars["eval/logic/pass@1"], try XCTUnwrap(report.stats(family: "ordering")).passAt1)
        XCTAssertEqual(report.scalars(prefix: "heldout")["heldout/ordering/L2/pass@1"], 0.5)

        let data = try JSONEncoder().encode(report)
        XCTAssertEqual(try JSONDecoder().decode(EvalReport.self, from: data), report)
        let json = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(json.contains(#""pass@1":0.375"#), json)
    }

    // MARK: selection

    func testSelectionIsFirstNPerLevelAndMatchesTheCommittedFiles() throws {
        let datasets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("datasets")
        let fromFiles = try EvalSet.select(families: ["mul", "knights"], levels: [1, 5], limitPerLevel: 3, datasetsDirectory: datasets)
        let inMemory = try EvalSet.select(families: ["mul", "knights"], levels: [1, 5], limitPerLevel: 3, datasetsDirectory: nil)
        XCTAssertEqual(fromFiles, inMemory)
        XCTAssertEqual(fromFiles.map(\.id), [
            "mul-L1-0000", "mul-L1-0001", "mul-L1-0002", "mul-L5-0000", "mul-L5-0001", "mul-L5-0002",
            "knights-L1-0000", "knights-L1-0001", "knights-L1-0002", "knights-L5-0000", "knights-L5-0001", "knights-L5-0002",
        ])
        XCTAssertThrowsError(try EvalSet.select(families: ["ad"], levels: nil, limitPerLevel: 1, datasetsDirectory: nil)) { error in
            XCTAssertEqual((error as? EvalError)?.description.hasPrefix("unknown family 'ad'. Did you mean 'add'?"), true, "\(error)")
        }
        XCTAssertThrowsError(try EvalSet.select(families: ["add"], levels: [99], limitPerLevel: 1, datasetsDirectory: nil)) { error in
            guard case .noProblems = error as? EvalError else { return XCTFail("\(error)") }
        }
    }

    func testUserDatasetLoadsFiltersAndReportsBadLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("mine.jsonl")
        try """
            {"prompt":"1+1=?","answer":"2"}
            {"prompt":"2+2=?","answer":"4","difficulty":2}
            {"prompt":"3+3=?","answer":"6","difficulty":2}
            """.write(to: good, atomically: true, encoding: .utf8)
        XCTAssertEqual(try EvalSet.load(dataset: good, families: nil, levels: nil, limitPerLevel: nil).count, 3)
        XCTAssertEqual(try EvalSet.load(dataset: good, families: ["custom"], levels: [2], limitPerLevel: 1).map(\.prompt), ["2+2=?"])
        XCTAssertThrowsError(try EvalSet.load(dataset: good, families: ["add"], levels: nil, limitPerLevel: nil))
        let bad = dir.appendingPathComponent("bad.jsonl")
        try "{\"prompt\":\"1+1=?\",\"answer\":\"2\"}\n{\"prompt\": 3}\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try EvalSet.load(dataset: bad, families: nil, levels: nil, limitPerLevel: nil)) { error in
            XCTAssertEqual((error as? DatasetError)?.line, 2, "\(error)")
        }
    }

    func testOptionsDecodeWithDefaultsAndValidate() throws {
        let options = try JSONDecoder().decode(EvalOptions.self, from: Data(#"{"samples": 4, "top_p": 0.9}"#.utf8))
        XCTAssertEqual(options, EvalOptions(samples: 4, topP: 0.9))
        XCTAssertEqual(options.resolvedTemperature, 1)
        XCTAssertFalse(options.sampling.greedy)
        XCTAssertEqual(options.maxNewTokens, 128)
        XCTAssertTrue(EvalOptions().sampling.greedy)
        XCTAssertThrowsError(try EvalOptions(samples: 0).validate()) { error in
            XCTAssertEqual(error as? EvalError, .invalidOption(key: "samples", message: "must be in 1...1024 (got 0)"))
        }
        XCTAssertThrowsError(try EvalOptions(topP: 0).validate())
    }

    // MARK: end to end

    func testTinyPolicyEvaluationIsDeterministicAndCountsAddUp() throws {
        let tokenizer = CharTokenizer()
        var rng = RNG(seed: 7, stream: "init")
        let config = PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 16, layers: 1, heads: 2, ffDim: 32, maxContext: 40)
        let policy = Policy(config: config, rng: &rng)
        let problems = try EvalSet.select(families: ["add"], levels: [1, 2], limitPerLevel: 3, datasetsDirectory: nil)
        let options = EvalOptions(samples: 3, maxNewTokens: 12, promptsPerBatch: 4, seed: 1)
        var calls: [Int] = []
        let report = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems, options: options) { done, _ in
            calls.append(done)
        }
        XCTAssertEqual(calls, [4, 6])
        XCTAssertEqual(report.overall.count, 6)
        XCTAssertEqual(report.problems.map(\.id), problems.map(\.id))
        XCTAssertEqual(report.families.map(\.family), ["add"])
        XCTAssertEqual(report.families[0].levels.map(\.stats.count), [3, 3])
        XCTAssertEqual(report.options?.temperature, 1, "the default temperature for k > 1, resolved")
        for r in report.problems {
            XCTAssertEqual(r.samples, 3)
            XCTAssertLessThanOrEqual(r.tokens, 36)
            XCTAssertGreaterThanOrEqual(r.tokens, 12 * r.truncated + (3 - r.truncated))
        }
        let tokens = report.problems.reduce(0) { $0 + $1.tokens }
        XCTAssertEqual(report.overall.meanLength, Double(tokens) / 18, accuracy: 1e-12)

        let again = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems, options: options)
        XCTAssertEqual(again, report)
        var reseeded = options
        reseeded.seed = 2
        let other = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems, options: reseeded)
        XCTAssertNotEqual(other.problems.map(\.firstCompletion), report.problems.map(\.firstCompletion))

        let greedy = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems,
                                            options: EvalOptions(maxNewTokens: 12, promptsPerBatch: 6))
        XCTAssertEqual(greedy.k, 1)
        let greedyOneByOne = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems,
                                                    options: EvalOptions(maxNewTokens: 12, promptsPerBatch: 1, seed: 9))
        XCTAssertEqual(greedy.problems, greedyOneByOne.problems, "greedy decoding does not depend on batching or seed")

        XCTAssertThrowsError(try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems,
                                                    options: EvalOptions(maxNewTokens: 35))) { error in
            guard case .promptTooLong(let id, _, 35, 40) = error as? EvalError else { return XCTFail("\(error)") }
            XCTAssertEqual(id, problems.max { $0.prompt.count < $1.prompt.count }!.id, "the longest prompt, first among equals")
        }
        // `ponder eval` without --max-new: each problem gets at most what its own prompt leaves of the
        // 40-token context, not what the longest prompt leaves, whatever the batch it shares.
        let lengths = try problems.map { try tokenizer.encodePrompt($0.prompt).count }
        let longest = lengths.max()!
        XCTAssertGreaterThan(longest, lengths.min()!, "the test needs prompts of different lengths")
        let fitted = EvalOptions(samples: 3, maxNewTokens: 35, promptsPerBatch: 4, seed: 1, fitToContext: true)
        let fit = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems, options: fitted)
        for (length, result) in zip(lengths, fit.problems) {
            XCTAssertEqual(result.maxNewTokens, min(35, 40 - length), result.id)
            XCTAssertLessThanOrEqual(result.tokens, 3 * min(35, 40 - length), result.id)
        }
        XCTAssertEqual(Set(report.problems.map(\.maxNewTokens)), [12], "without fitToContext every problem gets max_new")
        XCTAssertTrue(zip(lengths, fit.problems).contains { $0.0 < longest && $0.1.tokens > 3 * (40 - longest) },
                      "a shorter prompt got more new tokens than the longest prompt leaves")
        var oneByOne = fitted
        oneByOne.promptsPerBatch = 1
        XCTAssertEqual(try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems, options: oneByOne).problems,
                       fit.problems)
        var tooLong = problems[0]
        tooLong.prompt = String(repeating: "1", count: 60) + "+1=?"
        tooLong.id = "too-long"  // no room at all: an error naming it, not a problem with 0 new tokens
        XCTAssertThrowsError(try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: problems + [tooLong], options: fitted)) { error in
            guard case .promptTooLong(let id, _, _, 40) = error as? EvalError else { return XCTFail("\(error)") }
            XCTAssertEqual(id, tooLong.id)
        }
    }
}
