// grpo.sft_coef (InstructGPT's PPO-ptx): the update's gradient is GRPO's plus sft_coef times the
// teacher traces' next-token gradient, and its loss is logged.

import Autograd
import Model
import Tasks
import Training
import XCTest

final class GRPOSFTCoefTests: XCTestCase {
    /// After one AdamW step from zero moments the first moment is (1 − β₁) times the gradient, so the
    /// moments of an update with traces must be those of the GRPO update alone plus those of the
    /// traces' loss scaled by sft_coef (gradient clipping off, so nothing rescales either part).
    func testTheUpdateAddsTheTracesLossTimesItsCoefficient() throws {
        let tokenizer = CharTokenizer()
        let add = try XCTUnwrap(TaskRegistry.family(named: "add"))
        let problems = (0..<2).map { add.problem(seed: 3, stream: "t", level: 1, index: $0, id: "p\($0)") }
        let traces = try (0..<3).map {
            try SFT.example(add.problem(seed: 4, stream: "traces", level: 1, index: $0, id: "t\($0)"), tokenizer: tokenizer)
        }
        let coef = 0.5
        var cfg = TrainConfig()
        cfg.grpo.numGenerations = 2
        cfg.grpo.maxCompletionLength = 10
        cfg.grpo.sftCoef = coef
        cfg.optimizer.maxGradNorm = 0
        func policy() -> Policy {
            var rng = RNG(seed: 2, stream: "init")
            return Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 1, heads: 2, ffDim: 64, maxContext: 64), rng: &rng)
        }
        let step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet(config: cfg.grpo.rewards))
        var sampling = RNG(seed: 5, stream: "sampling")
        var batch = try step.generate(policy: policy(), problems: problems, rng: &sampling)
        for i in batch.indices { batch[i].advantage = i % 2 == 0 ? 1 : -1 }

        func firstMoments(_ run: (Policy, AdamW) throws -> Void) rethrows -> [String: [Float]] {
            let p = policy()
            let optimizer = AdamW(p.parameters, lr: 1e-3)
            try run(p, optimizer)
            return optimizer.stateArrays().filter { $0.key.hasPrefix("m.") }
        }
        var metrics: [String: Double] = [:]
        let both = try firstMoments { p, o in metrics = try step.update(policy: p, reference: nil, optimizer: o, samples: batch, traces: traces) }
        let grpoOnly = try firstMoments { p, o in
            let m = try step.update(policy: p, reference: nil, optimizer: o, samples: batch)
            XCTAssertNil(m["sft/loss"], "no traces, no trace loss")
        }
        let tokens = traces.reduce(0) { $0 + SFT.targetCount($1) }
        var traceLoss = 0.0
        let tracesOnly = firstMoments { p, o in
            traceLoss = SFT.accumulateGradients(policy: p, batch: traces, pad: Int32(tokenizer.pad), normalizer: tokens, weight: Float(coef))
            o.update()
        }
        XCTAssertEqual(try XCTUnwrap(metrics["sft/loss"]), traceLoss, accuracy: 1e-6 * traceLoss, "the logged loss is the traces' own")
        XCTAssertGreaterThan(traceLoss, 0)
        var moved = 0.0
        for (name, expected) in grpoOnly {
            let got = try XCTUnwrap(both[name]), traced = try XCTUnwrap(tracesOnly[name])
            let scale = zip(expected, traced).map { abs($0) + abs($1) }.max()! + 1e-12
            for i in got.indices { XCTAssertEqual(got[i], expected[i] + traced[i], accuracy: 1e-4 * scale, name) }
            moved = max(moved, traced.map { Double(abs($0)) }.max()!)
        }
        XCTAssertGreaterThan(moved, 0, "the traces' gradient must reach the weights")
    }
}
