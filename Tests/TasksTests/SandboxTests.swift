import Tasks
import XCTest

/// Ponder's tiny language and its sandbox: semantics, limits and verdicts.
final class SandboxTests: XCTestCase {
    func testSemantics() {
        XCTAssertEqual(Sandbox.run("a=3;b=a+4;a=b*2;a"), .value(14))
        XCTAssertEqual(Sandbox.run("2+3*4"), .value(14))
        XCTAssertEqual(Sandbox.run("(2+3)*4"), .value(20))
        XCTAssertEqual(Sandbox.run("-7/2"), .value(-4), "floor division, as Python")
        XCTAssertEqual(Sandbox.run("-7%3"), .value(2), "floor modulo, as Python")
        XCTAssertEqual(Sandbox.run("3<4"), .value(1))
        XCTAssertEqual(Sandbox.run("if x>3 {ret 2*x};ret x+1", input: ["x": 5]), .value(10))
        XCTAssertEqual(Sandbox.run("if x>3 {ret 2*x};ret x+1", input: ["x": 2]), .value(3))
        XCTAssertEqual(Sandbox.run("y=1;rep x {y=y*2};y", input: ["x": 10]), .value(1024))
        XCTAssertEqual(Sandbox.run("s=0;i=0;while i<5 {i=i+1;s=s+i};s"), .value(15))
        XCTAssertEqual(Sandbox.run("a=1;if a==1 {b=5} else {b=6};b"), .value(5))
        XCTAssertEqual(Sandbox.run("rep -3 {a=1};7"), .value(7), "a negative count runs zero times")
        XCTAssertEqual(Sandbox.run(" x * 2 + 1 ;", input: ["x": 4]), .value(9), "spaces and a trailing ';' are fine")
    }

    func testRunawayProgramsTimeOut() {
        for source in ["while 1 {a=1};a", "a=0;while 1==1 {a=a+1}", "rep 1000000000 {a=1};1", "rep 100000 {rep 100000 {a=1}};1",
                       "x=1;while x>0 {x=x+1}"] {
            guard case .timeout(let steps) = Sandbox.run(source) else {
                return XCTFail("\(source) must time out, got \(Sandbox.run(source))")
            }
            XCTAssertGreaterThan(steps, Sandbox.Limits().maxSteps)
        }
        var tight = Sandbox.Limits()
        tight.maxSteps = 50
        guard case .timeout = Sandbox.run("s=0;rep 100 {s=s+1};s", limits: tight) else { return XCTFail("tight budget") }
        XCTAssertEqual(Sandbox.run("s=0;rep 100 {s=s+1};s"), .value(100))
    }

    func testSizeAndNestingLimitsRejectBeforeRunning() {
        let long = String(repeating: "1+", count: 300) + "1"
        guard case .rejected(let message) = Sandbox.run(long) else { return XCTFail("too long") }
        XCTAssertTrue(message.contains("limit"), message)
        // Deep nesting must be refused, never overflow the parser's stack.
        for deep in [String(repeating: "(", count: 100_000), String(repeating: "-", count: 150), String(repeating: "rep 1 {", count: 60)] {
            var limits = Sandbox.Limits()
            limits.maxSourceBytes = 1_000_000
            guard case .rejected = Sandbox.run(deep, limits: limits) else { return XCTFail("deep nesting must be rejected") }
        }
    }

    func testErrorsHaveClearVerdicts() {
        XCTAssertEqual(Sandbox.run("1/0"), .runtimeError("division by zero"))
        XCTAssertEqual(Sandbox.run("5%0"), .runtimeError("division by zero"))
        XCTAssertEqual(Sandbox.run("y+1"), .runtimeError("unknown name 'y'"))
        XCTAssertEqual(Sandbox.run("a=9223372036854775807;a+1"), .runtimeError("overflow"))
        XCTAssertEqual(Sandbox.run("a=3037000500;a*a"), .runtimeError("overflow"))
        guard case .runtimeError = Sandbox.run("a=1") else { return XCTFail("no value") }
        for bad in ["print(1)", "import os", "a=", "1 +", "{", "rep {a=1}", "99999999999999999999999", "a=1;;", "x=\u{00e9}", "\"s\"", "else {1}"] {
            guard case .rejected = Sandbox.run(bad, input: ["x": 1]) else {
                return XCTFail("\(bad) must be rejected, got \(Sandbox.run(bad, input: ["x": 1]))")
            }
        }
        guard case .runtimeError = Sandbox.run("print") else {
            return XCTFail("an unknown name is a runtime error, not host access")
        }
    }

    func testTooManyVariablesIsAnError() {
        let source = (0..<40).map { "v\($0)=1" }.joined(separator: ";") + ";1"
        XCTAssertEqual(Sandbox.run(source), .runtimeError("more than 32 variables"))
    }

    func testSynthesisIsScoredOnHeldOutInputsWithPartialCredit() {
        let verifier = Verifier.synthesis(tests: [[0, 1], [3, 7], [5, 11], [9, 19]])
        XCTAssertTrue(verifier.check(response: "2*x+1", reference: "").isCorrect)
        XCTAssertTrue(verifier.check(response: "y=x+x;y+1", reference: "").isCorrect, "any program that computes it counts")
        XCTAssertTrue(verifier.check(response: "x+x+1", reference: "").isCorrect)
        let partial = verifier.check(response: "if x<4 {ret 2*x+1};0", reference: "")
        XCTAssertFalse(partial.isCorrect)
        XCTAssertEqual(partial.score, 0.5)
        let runaway = verifier.check(response: "while 1 {x=x};x", reference: "")
        XCTAssertFalse(runaway.isCorrect)
        XCTAssertTrue(runaway.detail.contains("timed out"), runaway.detail)
        let broken = verifier.check(response: "2*x+", reference: "")
        XCTAssertTrue(broken.detail.hasPrefix("rejected"), broken.detail)
        XCTAssertEqual(verifier.check(response: "", reference: "").detail, "empty answer")
    }

    func testProgramFamilyAnswersAgreeWithTheSandbox() {
        let family = TaskRegistry.family(named: "program")!
        for level in family.levels {
            for index in 0..<200 {
                let problem = family.problem(seed: 2, stream: "sandbox", level: level, index: index, id: "p")
                let source = String(problem.prompt.dropFirst("Run: ".count))
                XCTAssertEqual(Sandbox.run(source), .value(Int(problem.answer)!), problem.prompt)
            }
        }
    }
}
