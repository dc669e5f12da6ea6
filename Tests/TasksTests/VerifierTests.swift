import Foundation
import Tasks
import XCTest

/// Verifiers judged on tables of right, wrong and hostile answers.
final class VerifierTests: XCTestCase {
    func testCanonicalIntegers() {
        let accepted = ["42", "+42", "0042", "-0", "0", "-17", "000", "+0"]
        let normal = ["42", "42", "42", "0", "0", "-17", "0", "0"]
        for (text, expected) in zip(accepted, normal) {
            XCTAssertEqual(CanonicalInteger(text)?.text, expected, text)
        }
        for text in ["", "+", "-", "4,2", "1,000", "42.0", "4 2", "0x2A", "1e3", "\u{FF14}\u{FF12}", "٤٢", "42abc", "--4", "+-4", "∞"] {
            XCTAssertNil(CanonicalInteger(text), text)
        }
        let huge = String(repeating: "9", count: 400)
        XCTAssertEqual(CanonicalInteger("000" + huge)?.text, huge, "no overflow, no float")
        XCTAssertNil(CanonicalInteger(huge)?.intValue)
    }

    func testIntegerVerifierIsExact() {
        let v = Verifier.integer
        XCTAssertTrue(v.check(response: " 0042\n", reference: "42").isCorrect)
        XCTAssertTrue(v.check(response: "+42", reference: "42").isCorrect)
        XCTAssertTrue(v.check(response: "-0", reference: "0").isCorrect)
        XCTAssertFalse(v.check(response: "42.0", reference: "42").isCorrect, "integers never get float tolerance")
        XCTAssertFalse(v.check(response: "41.9999999999", reference: "42").isCorrect)
        XCTAssertFalse(v.check(response: "1,042", reference: "1042").isCorrect, "no commas")
        XCTAssertFalse(v.check(response: "", reference: "0").isCorrect, "an empty answer never scores")
        XCTAssertFalse(v.check(response: "-42", reference: "42").isCorrect)
        let big = "1" + String(repeating: "0", count: 300)
        XCTAssertTrue(v.check(response: big, reference: big).isCorrect)
        XCTAssertFalse(v.check(response: big + "1", reference: big + "0").isCorrect)
        XCTAssertFalse(v.check(response: "x=42", reference: "42").isCorrect)
    }

    func testLinearEquationsAreCheckedBySubstitution() {
        let v = Verifier.linear(a: 3, b: 5, c: 1, d: 13)  // 3x+5 = x+13  =>  x = 4
        XCTAssertTrue(v.check(response: "4", reference: "4").isCorrect)
        XCTAssertTrue(v.check(response: "x=4", reference: "999").isCorrect, "substitution, not string match")
        XCTAssertTrue(v.check(response: "x = 004", reference: "4").isCorrect)
        XCTAssertFalse(v.check(response: "5", reference: "4").isCorrect)
        XCTAssertFalse(v.check(response: "4.0", reference: "4").isCorrect)
        XCTAssertFalse(v.check(response: "9999999999999999999", reference: "4").isCorrect, "too big for Int: wrong, not a crash")
        XCTAssertFalse(v.check(response: "4611686018427387904", reference: "4").isCorrect, "overflow while substituting: wrong")
    }

    func testCountdownChecksTheMultisetAndUsesExactRationals() {
        let v = Verifier.countdown(numbers: [3, 5, 8], target: 19)
        for good in ["8*3-5", "(8*3)-5", "3*8-5", " 3 * 8 - 5 ", "3*8-5=19", "((3))*8-5", "3*8-(5)", "(3*8-5)", "-5+3*8", "-(5-3*8)", "3*8+-5"] {
            XCTAssertTrue(v.check(response: good, reference: "").isCorrect, good)
        }
        for bad in ["3*8-5=20", "8*3-5+0", "8*3", "5-8+3*8", "3*8-5-3+3", "19", "-(3*8-5)", "--5+3*8-10", "3*8−5", "3×8-5", "(3*8-5", "3*8-5)", "8*3-5 19"] {
            XCTAssertFalse(v.check(response: bad, reference: "").isCorrect, bad)
        }
        // 6/(1-3/4) = 24 exactly; floating point would give 23.999999999999996.
        XCTAssertTrue(Verifier.countdown(numbers: [1, 3, 4, 6], target: 24).check(response: "6/(1-3/4)", reference: "").isCorrect)
        XCTAssertFalse(Verifier.countdown(numbers: [2, 2, 5], target: 5).check(response: "5/(2-2)", reference: "").isCorrect)
        XCTAssertFalse(v.check(response: "99999999999999999999+3+5+8", reference: "").isCorrect)
        XCTAssertFalse(v.check(response: String(repeating: "(", count: 5000) + "3", reference: "").isCorrect)
        XCTAssertFalse(Verifier.countdown(numbers: [1000000, 1000000, 1000000], target: 1)
            .check(response: "1000000*1000000*1000000", reference: "").isCorrect, "overflow is wrong, not a crash")
    }

    func testSudokuAcceptsAnyValidCompletion() {
        let v = Verifier.sudoku(puzzle: "1.../..../..../....")
        XCTAssertTrue(v.check(response: "1234/3412/2143/4321", reference: "1234/3412/2143/4321").isCorrect)
        XCTAssertTrue(v.check(response: "1243/4312/2134/3421", reference: "1234/3412/2143/4321").isCorrect, "a different valid grid")
        XCTAssertTrue(v.check(response: "1243431221343421", reference: "").isCorrect, "separators are optional")
        XCTAssertFalse(v.check(response: "2134/3412/1243/4321", reference: "").isCorrect, "changes a given")
        XCTAssertFalse(v.check(response: "1234/1234/1234/1234", reference: "").isCorrect, "columns repeat")
        XCTAssertFalse(v.check(response: "1234/3412/2143/432", reference: "").isCorrect)
        XCTAssertFalse(v.check(response: "1234/3412/2143/4325", reference: "").isCorrect)
    }

    func testOrderingAndPositionalPartialCredit() {
        let ordering = Verifier.ordering
        XCTAssertTrue(ordering.check(response: "A>B>C>D", reference: "A>B>C>D").isCorrect)
        XCTAssertTrue(ordering.check(response: "ABCD", reference: "A>B>C>D").isCorrect)
        XCTAssertTrue(ordering.check(response: "A, B, C, D", reference: "A>B>C>D").isCorrect)
        let swapped = ordering.check(response: "A>C>B>D", reference: "A>B>C>D")
        XCTAssertFalse(swapped.isCorrect)
        XCTAssertEqual(swapped.score, 5.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(ordering.check(response: "D>C>B>A", reference: "A>B>C>D").score, 0)
        XCTAssertEqual(ordering.check(response: "A>B>C", reference: "A>B>C>D").score, 0)
        XCTAssertEqual(ordering.check(response: "A>A>C>D", reference: "A>B>C>D").score, 0)

        let positional = Verifier.positional
        XCTAssertTrue(positional.check(response: "KNK", reference: "KNK").isCorrect)
        XCTAssertEqual(positional.check(response: "KNN", reference: "KNK").score, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(positional.check(response: "KN", reference: "KNK").score, 0)
        XCTAssertFalse(positional.check(response: "knk", reference: "KNK").isCorrect)
    }

    func testVerifierJSONRoundTrips() throws {
        let all: [Verifier] = [
            .integer, .exact, .compact, .positional, .ordering, .linear(a: 2, b: -3, c: 0, d: 7),
            .countdown(numbers: [1, 2], target: 3), .synthesis(tests: [[1, 2], [3, 4]]), .sudoku(puzzle: "1.../..../..../...."),
        ]
        for verifier in all {
            let viaCodable = try JSONDecoder().decode(Verifier.self, from: JSONEncoder().encode(verifier))
            XCTAssertEqual(viaCodable, verifier)
            let viaWriter = try JSONDecoder().decode(Verifier.self, from: Data(verifier.json.compact.utf8))
            XCTAssertEqual(viaWriter, verifier)
        }
        XCTAssertEqual(try JSONDecoder().decode(Verifier.self, from: Data(#"{"kind":"integer"}"#.utf8)), .integer)
        XCTAssertThrowsError(try JSONDecoder().decode(Verifier.self, from: Data(#""float""#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(Verifier.self, from: Data(#"{"kind":"synthesis","tests":[[1]]}"#.utf8)))
    }
}
