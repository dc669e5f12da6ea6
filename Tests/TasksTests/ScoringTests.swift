import Foundation
import Tasks
import XCTest

/// `ponder score`'s library side: completions by id against a dataset, or inline prompt and answer.
final class ScoringTests: XCTestCase {
    let problems = [
        Problem(id: "a", family: "add", domain: .math, difficulty: 1, prompt: "1+1=?", answer: "2", verifier: .integer),
        Problem(id: "b", family: "ordering", domain: .logic, difficulty: 1, prompt: "Order largest first: A>B, B>C", answer: "A>B>C", verifier: .ordering),
    ]

    func testScoresCompletionsByIDAndInline() throws {
        let text = """
            {"id":"a","completion":"<think>\\n1+1=2\\n</think>\\n<answer>\\n2\\n</answer>"}
            {"id":"b","completion":"<answer>C>B>A</answer>"}
            {"prompt":"2*3=?","answer":"6","completion":"<think>\\nx\\n</think>\\n<answer>\\n06\\n</answer>\\n"}
            """
        let set = try RewardSet(names: ["correctness", "format", "tag_count", "partial_credit"])
        let report = try Scoring.score(text, file: "c.jsonl", problems: problems, datasetName: "d.jsonl", rewards: set)
        XCTAssertEqual(report.rows.map(\.id), ["a", "b", "line-3"])
        XCTAssertEqual(report.rows.map { $0.scores["correctness"]! }, [1, 0, 1])
        XCTAssertEqual(report.rows.map { $0.scores["format"]! }, [1, 0, 1])
        XCTAssertEqual(report.rows[1].scores["partial_credit"], 0)
        XCTAssertEqual(report.rows[1].extracted, "C>B>A")
        XCTAssertEqual(report.names, ["correctness", "partial_credit", "format", "tag_count"])
        XCTAssertEqual(report.means.first { $0.name == "correctness" }!.value, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(report.rows[0].scores.total, 4)
        XCTAssertTrue(report.rows[0].json.compact.hasPrefix(#"{"line":1,"id":"a","answer":"2","rewards":{"correctness":1.0"#), report.rows[0].json.compact)
        XCTAssertTrue(report.summaryJSON.compact.contains(#""count":3"#))
    }

    func testErrorsNameTheLineAndTheFix() {
        let set = try! RewardSet(names: ["correctness"])
        let cases: [(String, String)] = [
            (#"{"id":"zzz","completion":"x"}"#, "no problem with id 'zzz'"),
            (#"{"completion":"x"}"#, "needs \"id\""),
            (#"{"id":"a"}"#, "missing key 'completion'"),
            ("nonsense", "not a valid JSON object"),
        ]
        for (line, says) in cases {
            XCTAssertThrowsError(try Scoring.score("\n" + line, file: "c.jsonl", problems: problems, datasetName: "d.jsonl", rewards: set)) { error in
                XCTAssertEqual((error as? DatasetError)?.line, 2, line)
                XCTAssertTrue("\(error)".contains(says), "\(error)")
            }
        }
        XCTAssertThrowsError(try Scoring.score(#"{"id":"a","completion":"x"}"#, file: "c.jsonl", problems: [], rewards: set)) { error in
            XCTAssertTrue("\(error)".contains("--dataset"), "\(error)")
        }
    }

    func testScoresOtherSystemsOutputAgainstACommittedTestSet() throws {
        let file = DatasetTests.committed.appendingPathComponent("countdown/test.jsonl")
        let problems = try Datasets.load(file)
        // A different but valid expression for every problem: the teacher's, with operands of + and *
        // order-insensitive kept as they are, wrapped in parentheses.
        let lines = problems.prefix(50).map { problem -> String in
            let completion = Problem.completion(steps: ["try"], answer: "(" + problem.answer + ")")
            return JSONValue.object([("id", .string(problem.id)), ("completion", .string(completion))]).compact
        }
        let report = try Scoring.score(
            lines.joined(separator: "\n"), file: "other.jsonl", problems: problems, datasetName: file.path,
            rewards: try RewardSet(names: ["correctness", "format"]))
        XCTAssertEqual(report.rows.count, 50)
        XCTAssertTrue(report.rows.allSatisfy { $0.scores.total == 2 })
    }
}
