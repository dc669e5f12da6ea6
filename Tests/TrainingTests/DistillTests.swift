// Distillation by rejection sampling: the filter keeps exactly the correct, well-formatted
// completions, the counts add up, kept traces become the same SFT examples as the solver's trace,
// and the kept set survives a save/load round trip (with clear errors for a damaged file).

import Autograd
import Foundation
import Model
import Tasks
import Training
import XCTest

final class DistillTests: XCTestCase {
    let tokenizer = CharTokenizer()

    func addProblem(_ index: Int) throws -> Problem {
        try XCTUnwrap(TaskRegistry.family(named: "add")).problem(seed: 7, stream: "test", level: 1, index: index, id: "p\(index)")
    }

    func testTheFilterKeepsOnlyCorrectWellFormattedCompletions() throws {
        let p = try addProblem(0)
        XCTAssertTrue(Distill.accepts(p.teacherCompletion, p))
        let wrong = p.teacherCompletion.replacingOccurrences(of: "<answer>\n\(p.answer)\n</answer>", with: "<answer>\n\(Int(p.answer)! + 1)\n</answer>")
        XCTAssertNotEqual(wrong, p.teacherCompletion)
        XCTAssertFalse(Distill.accepts(wrong, p), "a wrong answer is rejected")
        XCTAssertFalse(Distill.accepts("<answer>\n\(p.answer)\n</answer>", p), "a right answer without thinking is rejected")
        XCTAssertFalse(Distill.accepts("\(p.answer)", p))
    }

    /// A teacher that has memorised one problem's trace: greedy sampling answers it right every
    /// time, so k identical accepted samples are counted, and kept once (distinct) or up to
    /// keep_per_problem times; a problem it gets wrong keeps nothing.
    func testCollectCountsTriedAcceptedAndKeptPerProblem() throws {
        let known = try addProblem(0), other = try addProblem(1)
        XCTAssertNotEqual(known.answer, other.answer)
        var rng = RNG(seed: 11, stream: "init")
        let teacher = Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 1, heads: 2, ffDim: 64, maxContext: 64), rng: &rng)
        let example = try SFT.example(known, tokenizer: tokenizer)
        let opt = AdamW(teacher.parameters, lr: 1e-2)
        for _ in 0..<150 {
            let (loss, _) = SFT.loss(policy: teacher, batch: [example], pad: Int32(tokenizer.pad))
            loss.backward()
            opt.update()
            opt.zeroGrad()
        }
        var cfg = TrainConfig()
        cfg.grpo.maxCompletionLength = 48
        cfg.distill.samplesPerProblem = 3
        cfg.distill.temperature = 0  // greedy: the memorised trace every time
        var srng = RNG(seed: 1, stream: "distill")
        let result = try Distill.collect(teacher: teacher, tokenizer: tokenizer, problems: [known, other], config: cfg,
                                         teacherName: "t", rng: &srng)
        let add = try XCTUnwrap(result.perFamily["add"])
        XCTAssertEqual(add.problems, 2)
        XCTAssertEqual(add.tried, 6)
        XCTAssertGreaterThanOrEqual(add.accepted, 3, "the memorised problem is answered right by all 3 greedy samples")
        let keptKnown = result.traces.filter { $0.problemID == known.id }
        XCTAssertEqual(keptKnown.count, 1, "identical accepted samples are kept once by default")
        XCTAssertEqual(keptKnown.first?.completion, known.teacherCompletion)
        XCTAssertEqual(add.kept, result.traces.count)
        for t in result.traces {
            let p = t.problemID == known.id ? known : other
            XCTAssertTrue(Distill.accepts(t.completion, p), "every kept trace passes the filter")
        }
        // The kept completion becomes the same SFT example as the solver's trace.
        XCTAssertEqual(try Distill.examples(keptKnown, tokenizer: tokenizer).first?.ids, example.ids)

        cfg.distill.keepPerProblem = 2
        var srng2 = RNG(seed: 1, stream: "distill")
        let two = try Distill.collect(teacher: teacher, tokenizer: tokenizer, problems: [known], config: cfg, teacherName: "t", rng: &srng2)
        XCTAssertEqual(two.traces.count, 2, "keep_per_problem 2 keeps a repeat after the distinct one")
        XCTAssertEqual(two.total.kept, 2)
        XCTAssertEqual(two.total.problemsKept, 1)
    }

    func testSavedTracesLoadBackAndADamagedLineIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-distill-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let p = try addProblem(2)
        let trace = DistilledTrace(problemID: p.id, family: "add", level: 1, prompt: p.prompt, completion: p.teacherCompletion)
        var count = DistillCount()
        count.problems = 1
        count.tried = 4
        count.accepted = 2
        count.kept = 2
        count.problemsKept = 1
        let result = DistillResult(teacher: "t", teacherEval: ["eval/pass@1": 0.5], perFamily: ["add": count], traces: [trace, trace])
        XCTAssertNil(try Distill.load(runDirectory: dir), "no distillation yet")
        try Distill.save(result, runDirectory: dir)
        XCTAssertEqual(try Distill.load(runDirectory: dir), result)
        XCTAssertTrue(Distill.table(result).contains("0.500"), "accept rate 2/4 is shown")

        let url = dir.appendingPathComponent(Distill.tracesFile)
        var lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[1] = "{\"prompt\": 3"
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Distill.load(runDirectory: dir)) { error in
            XCTAssertTrue("\(error)".contains("traces.jsonl:2"), "\(error)")
        }
        try lines.prefix(1).joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Distill.load(runDirectory: dir)) { error in
            XCTAssertTrue("\(error)".contains("counts 2 kept"), "a truncated file is caught: \(error)")
        }
    }

    func testATeacherThatKeptNothingIsAClearError() throws {
        let run = temporaryRun()
        XCTAssertThrowsError(try Trainer(config: try TrainerTests.tinyConfig(), runDirectory: run, resume: false, sftTraces: [])) { error in
            XCTAssertEqual((error as? ConfigError)?.key, "sft.steps")
        }
    }
}
