import Foundation
import Tasks
import XCTest

/// Every family: deterministic by seed, the teacher passes its own verifier, known wrong answers fail,
/// text stays in the alphabet, and each level's problem space is large next to its test set.
final class FamilyTests: XCTestCase {
    func testThereAreAtLeastFourFamiliesPerDomain() {
        for domain in [Domain.math, .code, .logic] {
            XCTAssertGreaterThanOrEqual(TaskRegistry.all.filter { $0.domain == domain }.count, 4, "\(domain)")
        }
        XCTAssertEqual(Set(TaskRegistry.names).count, TaskRegistry.all.count, "names are unique")
        for family in TaskRegistry.all {
            XCTAssertEqual(family.levelNotes.count, family.levels.count, family.name)
            XCTAssertGreaterThan(family.beyondLevels.lowerBound, family.trainingLevels.upperBound, family.name)
        }
    }

    func testGeneratorsAreDeterministicBySeed() {
        for family in TaskRegistry.all {
            for level in family.levels {
                let a = family.problem(seed: 42, stream: "test", level: level, index: 3, id: "x")
                let b = family.problem(seed: 42, stream: "test", level: level, index: 3, id: "x")
                XCTAssertEqual(a, b, "\(family.name) L\(level)")
                let others = (0..<8).map { family.problem(seed: 43, stream: "test", level: level, index: $0, id: "x").canonical }
                XCTAssertGreaterThan(Set(others + [a.canonical]).count, 4, "\(family.name) L\(level): different seeds, different problems")
            }
        }
    }

    func testTeacherPassesItsOwnVerifierOnAThousandProblemsPerLevel() {
        for family in TaskRegistry.all {
            for level in family.levels {
                for index in 0..<1000 {
                    let problem = family.problem(seed: 7, stream: "teacher", level: level, index: index, id: "t")
                    XCTAssertEqual(problem.difficulty, level)
                    XCTAssertEqual(problem.family, family.name)
                    XCTAssertFalse(problem.steps.isEmpty, "\(family.name): the teacher writes steps")
                    let verdict = problem.check(problem.answer)
                    if !verdict.isCorrect {
                        XCTFail("\(family.name) L\(level) #\(index): teacher answer '\(problem.answer)' fails: \(verdict.detail)\n\(problem.prompt)")
                        return
                    }
                    let completion = problem.teacherCompletion
                    guard Rewards.correctness(completion, problem) == 1, Rewards.format(completion) == 1,
                        Rewards.openR1Format(completion) == 1, Rewards.tagCount(completion) == 1
                    else {
                        XCTFail("\(family.name) L\(level) #\(index): teacher completion does not score 1 everywhere:\n\(completion)")
                        return
                    }
                }
            }
        }
    }

    func testKnownWrongAnswersFail() {
        for family in TaskRegistry.all {
            for level in family.levels {
                for index in 0..<100 {
                    let problem = family.problem(seed: 9, stream: "wrong", level: level, index: index, id: "w")
                    for wrong in wrongAnswers(for: problem) {
                        let verdict = problem.check(wrong)
                        if verdict.isCorrect {
                            XCTFail("\(family.name) L\(level): '\(wrong)' accepted for '\(problem.prompt)' (answer \(problem.answer))")
                            return
                        }
                        XCTAssertLessThan(verdict.score, 1)
                        XCTAssertEqual(Rewards.correctness(Problem.completion(steps: ["x"], answer: wrong), problem), 0)
                    }
                }
            }
        }
    }

    /// Answers that must be rejected: off by one, empty, or a mutation of the reference.
    private func wrongAnswers(for problem: Problem) -> [String] {
        var wrong = ["", "   "]
        switch problem.verifier {
        case .integer, .linear:
            let value = Int(problem.answer)!
            wrong += [String(value + 1), String(value - 1), "\(problem.answer).5", "1,\(problem.answer)"]
        case .countdown(let numbers, let target):
            wrong.append(numbers.map(String.init).joined(separator: "+") + "+1")  // uses a number not given
            wrong.append(numbers.dropLast().map(String.init).joined(separator: "+"))  // leaves one out
            wrong.append("\(target)")
            wrong.append("(\(problem.answer))+1-1+0")
        case .synthesis:
            wrong += ["x*1000+7", "while 1 {x=x+1}", "(" + problem.answer, "y"]
        case .sudoku:
            let digits = Array(problem.answer.filter { $0 != "/" })
            var swapped = digits
            swapped.swapAt(0, 1)  // breaks two columns of a valid grid
            wrong += [String(swapped), String(digits.prefix(15)), String(digits) + "1"]
            wrong.append(String(repeating: "1234", count: 4))
        case .positional, .ordering, .compact, .exact:
            wrong.append(String(problem.answer.reversed()) == problem.answer ? problem.answer + "1" : String(problem.answer.reversed()))
            wrong.append(problem.answer + "0")
            wrong.append(String(problem.answer.dropLast()))
        }
        return wrong
    }

    func testPromptsAndCompletionsUseTheAlphabetAndOneLinePrompts() {
        for family in TaskRegistry.all {
            for level in family.levels {
                for index in 0..<200 {
                    let problem = family.problem(seed: 11, stream: "alphabet", level: level, index: index, id: "a")
                    XCTAssertFalse(problem.prompt.contains("\n"), "\(family.name): prompts are one line")
                    XCTAssertFalse(problem.answer.contains("\n"), "\(family.name): answers are one line")
                    let text = problem.promptText + problem.teacherCompletion
                    if !TaskAlphabet.covers(text) {
                        let missing = Set(text.filter { !TaskAlphabet.characters.contains($0) })
                        XCTFail("\(family.name) L\(level) uses characters outside the alphabet: \(missing.sorted())")
                        return
                    }
                }
            }
        }
        XCTAssertLessThanOrEqual(TaskAlphabet.characters.count, 96)
        XCTAssertTrue(TaskAlphabet.characters.allSatisfy { $0 == "\n" || ($0.asciiValue.map { (32...126).contains($0) } ?? false) })
    }

    func testLowestLevelsAreShort() {
        // A tiny character-level model must manage level 1: short prompts and short answers.
        for family in TaskRegistry.all {
            for index in 0..<100 {
                let problem = family.problem(seed: 5, stream: "short", level: 1, index: index, id: "s")
                XCTAssertLessThanOrEqual(problem.prompt.count, 110, "\(family.name): \(problem.prompt)")
                XCTAssertLessThanOrEqual(problem.answer.count, 20, "\(family.name): \(problem.answer)")
                XCTAssertLessThanOrEqual(problem.teacherCompletion.count, 200, "\(family.name)")
            }
        }
        let add = TaskRegistry.family(named: "add")!.problem(seed: 1, stream: "s", level: 1, index: 0, id: "s")
        let operands = add.prompt.dropLast(2).split(separator: "+")
        XCTAssertEqual(operands.count, 2)
        XCTAssertTrue(operands.allSatisfy { $0.count == 2 }, "level 1 of add is 2-digit + 2-digit: \(add.prompt)")
    }

    func testEachLevelHasRoomForTrainingBeyondItsTestSet() {
        // Every level's space must be at least five times its held-out share, or training at that level
        // would mostly be skipped or memorised. 2,000 draws from a space of N give N(1 - e^(-2000/N))
        // distinct problems, which exceeds 5 x perLevel = 500 only when N is above about 510.
        for family in TaskRegistry.all {
            for level in family.levels {
                let forms = Set((0..<2000).map { family.problem(seed: 3, stream: "space", level: level, index: $0, id: "s").canonical })
                XCTAssertGreaterThan(forms.count, 5 * Datasets.perLevel, "\(family.name) L\(level) has only \(forms.count) distinct problems in 2000 draws")
            }
        }
    }

    func testCanonicalFormsIgnoreSurfaceOrderWhereTheProblemIsTheSame() {
        // Countdown's numbers are a multiset: the order shown does not make a new problem.
        let countdown = TaskRegistry.family(named: "countdown")!
        for index in 0..<50 {
            let problem = countdown.problem(seed: 1, stream: "c", level: 3, index: index, id: "c")
            guard case .countdown(let numbers, let target) = problem.verifier else { return XCTFail("countdown verifier") }
            XCTAssertEqual(problem.canonical, "countdown:\(numbers.sorted().map(String.init).joined(separator: ","))=\(target)")
        }
    }
}
