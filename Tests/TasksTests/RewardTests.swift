import Tasks
import XCTest

/// The rewards on a table of tricky completions. The open-r1 columns are what Python's
/// `re.match(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", s, re.DOTALL | re.MULTILINE)` and
/// open-r1's `count_tags` give for the same strings.
final class RewardTests: XCTestCase {
    let problem = Problem(id: "p", family: "add", domain: .math, difficulty: 1, prompt: "40+2=?", answer: "42", verifier: .integer)

    struct Row {
        let name: String
        let text: String
        let format: Double
        let openR1: Double
        let tags: Double
        let correct: Double
    }

    let good = "<think>\n40+2=42\n</think>\n<answer>\n42\n</answer>"

    var table: [Row] {
        [
            Row(name: "teacher layout", text: good, format: 1, openR1: 1, tags: 1, correct: 1),
            Row(name: "trailing newline", text: good + "\n", format: 1, openR1: 1, tags: 1, correct: 1),
            Row(name: "trailing spaces", text: good + "  \n\t", format: 1, openR1: 0, tags: 1, correct: 1),
            Row(name: "text after answer on a new line", text: good + "\nextra", format: 0, openR1: 1, tags: 1, correct: 1),
            Row(name: "text right after answer", text: good + "extra", format: 0, openR1: 0, tags: 1, correct: 1),
            Row(name: "empty", text: "", format: 0, openR1: 0, tags: 0, correct: 0),
            Row(name: "unterminated think", text: "<think>\nA\n<answer>\n42\n</answer>", format: 0, openR1: 0, tags: 0.75, correct: 1),
            Row(name: "unterminated answer", text: "<think>\nA\n</think>\n<answer>\n42", format: 0, openR1: 0, tags: 0.75, correct: 0),
            Row(
                name: "two answers, last counts", text: "<think>\nA\n</think>\n<answer>\n41\n</answer>\n<answer>\n42\n</answer>",
                format: 0, openR1: 1, tags: 0.5, correct: 1),
            Row(
                name: "two answers, last wrong", text: "<think>\nA\n</think>\n<answer>\n42\n</answer>\n<answer>\n41\n</answer>",
                format: 0, openR1: 1, tags: 0.5, correct: 0),
            Row(
                name: "nested think", text: "<think>\n<think>\nA\n</think>\n</think>\n<answer>\n42\n</answer>",
                format: 0, openR1: 1, tags: 0.75, correct: 1),
            Row(name: "empty think", text: "<think>\n\n</think>\n<answer>\n42\n</answer>", format: 0, openR1: 1, tags: 1, correct: 1),
            Row(name: "no newlines", text: "<think>A</think><answer>42</answer>", format: 0, openR1: 0, tags: 0, correct: 1),
            Row(name: "leading space", text: " " + good, format: 0, openR1: 0, tags: 1, correct: 1),
            Row(name: "preamble", text: "Sure!\n" + good, format: 0, openR1: 0, tags: 1, correct: 1),
            Row(
                name: "no newline between blocks", text: "<think>\nA\n</think><answer>\n42\n</answer>",
                format: 0, openR1: 0, tags: 0.5, correct: 1),
            Row(
                name: "non-ASCII", text: "<think>\nπ≈3.14 ✓\n</think>\n<answer>\n\u{FF14}\u{FF12}\n</answer>",
                format: 1, openR1: 1, tags: 1, correct: 0),
            Row(name: "blank answer", text: "<think>\nA\n</think>\n<answer>\n \n</answer>", format: 0, openR1: 1, tags: 1, correct: 0),
            Row(
                name: "CRLF", text: "<think>\r\nA\r\n</think>\r\n<answer>\r\n42\r\n</answer>",
                format: 0, openR1: 0, tags: 0.25, correct: 1),
            Row(
                name: "answer inside think", text: "<think>\n<answer>\n1\n</answer>\n</think>\n<answer>\n42\n</answer>",
                format: 0, openR1: 1, tags: 0.5, correct: 1),
            Row(
                name: "answer tag in answer", text: "<think>\nA\n</think>\n<answer>\n<answer>42\n</answer>",
                format: 0, openR1: 1, tags: 1, correct: 1),
            Row(
                name: "huge number", text: "<think>\nA\n</think>\n<answer>\n" + String(repeating: "9", count: 5000) + "\n</answer>",
                format: 1, openR1: 1, tags: 1, correct: 0),
            Row(name: "only tags", text: "<think>\n</think>\n<answer>\n</answer>", format: 0, openR1: 0, tags: 1, correct: 0),
            Row(name: "think only", text: "<think>\n42\n</think>", format: 0, openR1: 0, tags: 0.25, correct: 0),
            Row(name: "leading zeros and sign", text: "<think>\nA\n</think>\n<answer>\n+0042\n</answer>", format: 1, openR1: 1, tags: 1, correct: 1),
            Row(name: "comma", text: "<think>\nA\n</think>\n<answer>\n4,2\n</answer>", format: 1, openR1: 1, tags: 1, correct: 0),
        ]
    }

    func testTableOfTrickyCompletions() {
        for row in table {
            XCTAssertEqual(Rewards.format(row.text), row.format, "format: \(row.name)")
            XCTAssertEqual(Rewards.openR1Format(row.text), row.openR1, "format_openr1: \(row.name)")
            XCTAssertEqual(Rewards.tagCount(row.text), row.tags, "tag_count: \(row.name)")
            XCTAssertEqual(Rewards.correctness(row.text, problem), row.correct, "correctness: \(row.name)")
        }
    }

    func testPythonCountIsNonOverlapping() {
        // "\n</think>\n</think>\n" holds two overlapping matches; Python's str.count finds one.
        XCTAssertEqual(Rewards.tagCount("<think>\nA\n</think>\n</think>\n<answer>\nx\n</answer>"), 1)
        XCTAssertEqual(Rewards.tagCount("<think>\nA\n</think>\n<answer>\n<answer>\nx\n</answer>"), 1)
    }

    func testAnswerExtraction() {
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: good), "42")
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: "<answer>1</answer><answer> 2 </answer>"), "2")
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: "<answer>1</answer><answer>2"), "1", "an unterminated answer is ignored")
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: "</answer><answer>"), nil)
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: "<answer></answer>"), "")
        XCTAssertNil(AnswerExtraction.lastAnswer(in: ""))
        XCTAssertNil(AnswerExtraction.lastAnswer(in: "42"))
        XCTAssertEqual(AnswerExtraction.lastAnswer(in: "<answer>é</answer>"), "é")
    }

    func testEmptyAnswerNeverScoresEvenWhenTheReferenceIsLenient() {
        let exact = Problem(id: "e", family: "custom", domain: .custom, difficulty: 1, prompt: "say nothing", answer: "x", verifier: .exact)
        XCTAssertEqual(Rewards.correctness("<answer></answer>", exact), 0)
        XCTAssertEqual(Rewards.correctness("<answer>   </answer>", exact), 0)
        XCTAssertEqual(Rewards.partialCredit("<answer></answer>", exact), 0)
    }

    func testPartialCredit() {
        let bits = Problem(id: "b", family: "boolean", domain: .logic, difficulty: 1, prompt: "f=?", answer: "1010", verifier: .positional)
        XCTAssertEqual(Rewards.partialCredit("<answer>1011</answer>", bits), 0.75)
        XCTAssertEqual(Rewards.correctness("<answer>1011</answer>", bits), 0)
        XCTAssertEqual(Rewards.partialCredit("<answer>1010</answer>", bits), 1)
    }

    func testSoftOverlongPenalty() {
        XCTAssertEqual(Rewards.softOverlong(length: 6, maxLength: 10, cache: 4), 0)
        XCTAssertEqual(Rewards.softOverlong(length: 8, maxLength: 10, cache: 4), -0.5)
        XCTAssertEqual(Rewards.softOverlong(length: 10, maxLength: 10, cache: 4), -1)
        XCTAssertEqual(Rewards.softOverlong(length: 11, maxLength: 10, cache: 4), -1)
        XCTAssertEqual(Rewards.softOverlong("ééééééé", maxLength: 10, cache: 4), -0.25, "length in characters, not bytes")
    }

    func testRepetitionPenalty() {
        XCTAssertEqual(Rewards.repetitionPenalty("a b a b a b", ngram: 2, maxPenalty: -1), -0.6, accuracy: 1e-12)
        XCTAssertEqual(Rewards.repetitionPenalty("A b a B", ngram: 2, maxPenalty: -1), -1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(Rewards.repetitionPenalty("one two three four", ngram: 2, maxPenalty: -1), 0)
        XCTAssertEqual(Rewards.repetitionPenalty("", ngram: 2, maxPenalty: -1), 0)
        XCTAssertEqual(Rewards.repetitionPenalty("just", ngram: 3, maxPenalty: -1), 0)
    }

    func testRewardSetWeightsAndNames() throws {
        var config = RewardConfig(weights: ["correctness": 2, "format": 0.5, "tag_count": 1])
        let set = try RewardSet(config: config)
        XCTAssertEqual(set.functions.map(\.name), ["correctness", "format", "tag_count"])
        let scores = set.score(good, problem)
        XCTAssertEqual(scores.total, 3.5)
        XCTAssertEqual(scores["format"], 1)
        let wrong = set.score("<think>\nA\n</think>\n<answer>\n41\n</answer>", problem)
        XCTAssertEqual(wrong.total, 1.5)

        config.weights = ["corectness": 1]
        XCTAssertThrowsError(try RewardSet(config: config)) { error in
            XCTAssertTrue("\(error)".contains("did you mean 'correctness'"), "\(error)")
        }
        XCTAssertThrowsError(try RewardSet(config: RewardConfig(repetitionMaxPenalty: 0.5)))
        XCTAssertThrowsError(try RewardSet(config: RewardConfig(overlongMaxLength: 10, overlongCache: 20)))
        let shaping = try RewardSet(names: ["soft_overlong", "repetition"], config: RewardConfig(overlongMaxLength: 20, overlongCache: 10))
        XCTAssertLessThan(shaping.score(String(repeating: "x x ", count: 10), problem).total, 0)
        XCTAssertEqual(try RewardSet().functions.map(\.name), ["correctness", "format"], "shaping is off by default")
    }
}
