// The GRPO objective against values computed by hand, in Double, from the formulas of
// DeepSeekMath §4.1.1 and TRL's GRPOTrainer._compute_loss.

import Autograd
import Model
import Tasks
import Training
import XCTest

final class GRPOLossTests: XCTestCase {
    // Two sequences of 3 positions; the last position of sequence 0 and the first of sequence 1
    // are masked. Ratios differ from 1 (as after a first update when μ > 1), and two tokens fall
    // outside the clip range on the side where clipping binds.
    let logp: [Float] = [-1.0, -0.5, -2.0, -0.7, -1.2, -0.3]
    let old: [Float] = [-1.1, -0.9, -2.0, -0.7, -1.0, -0.31]
    let ref: [Float] = [-1.05, -0.6, -1.9, -0.8, -1.1, -0.35]
    let adv: [Float] = [0.8, 0.8, 0.8, -1.5, -1.5, -1.5]
    let mask: [Float] = [1, 1, 0, 0, 1, 1]
    let eps: Float = 0.2, epsHigh: Float = 0.28

    /// Per-token loss and d(loss)/d(logp), straight from the definitions.
    func reference(beta: Double) -> (loss: [Double], grad: [Double]) {
        var loss = [Double](), grad = [Double]()
        for i in 0..<6 {
            let r = exp(Double(logp[i]) - Double(old[i])), a = Double(adv[i])
            let lo = 1 - Double(eps), hi = 1 + Double(epsHigh)
            let c = min(max(r, lo), hi)
            // −min(r·a, c·a): the unclipped term is chosen when r·a ≤ c·a
            let unclipped = r * a <= c * a
            var l = -min(r * a, c * a)
            var g = unclipped ? -a * r : 0
            let d = Double(ref[i]) - Double(logp[i])
            l += beta * (exp(d) - d - 1)
            g += beta * (1 - exp(d))
            loss.append(l)
            grad.append(g)
        }
        return (loss, grad)
    }

    func check(_ type: LossType, beta: Float, expectedWeights: [Double], file: StaticString = #filePath, line: UInt = #line) {
        let w = GRPOLoss.weights(mask: mask, sequences: 2, type: type, maxCompletionLength: 4, totalTokens: 8)
        for (a, b) in zip(w, expectedWeights) { XCTAssertEqual(Double(a), b, accuracy: 1e-7, "\(type) weights", file: file, line: line) }
        let t = Tensor(shape: [6], logp, requiresGrad: true)
        let (loss, stats) = GRPOLoss.loss(logp: t, old: old, ref: beta > 0 ? ref : nil, advantages: adv, weights: w, mask: mask,
                                          epsilonLow: eps, epsilonHigh: epsHigh, beta: beta)
        let (l, g) = reference(beta: Double(beta))
        let expected = zip(l, expectedWeights).map(*).reduce(0, +)
        XCTAssertEqual(Double(loss.item), expected, accuracy: 1e-6, "\(type) loss", file: file, line: line)
        loss.backward()
        for i in 0..<6 {
            XCTAssertEqual(Double(t.gradArray[i]), g[i] * expectedWeights[i], accuracy: 1e-6, "\(type) grad \(i)", file: file, line: line)
        }
        // Token 1: r = e^0.4 ≈ 1.49 > 1.28 with A > 0 (high-clipped); token 4: r = e^-0.2 ≈ 0.82, inside.
        // Token 5: r = e^0.01, inside. So 1 of 4 unmasked tokens is high-clipped.
        XCTAssertEqual(stats.clipHigh, 0.25, accuracy: 1e-9, file: file, line: line)
        XCTAssertEqual(stats.clipLow, 0, accuracy: 1e-9, file: file, line: line)
        XCTAssertEqual(stats.clipRegion, 0.25, accuracy: 1e-9, file: file, line: line)
    }

    func testGRPOReductionMeansPerSequenceThenOverSequences() {
        // sequence 0 has 2 tokens, sequence 1 has 2: w = 1/(2·2)
        check(.grpo, beta: 0, expectedWeights: [0.25, 0.25, 0, 0, 0.25, 0.25])
        check(.grpo, beta: 0.04, expectedWeights: [0.25, 0.25, 0, 0, 0.25, 0.25])
    }

    func testBNPOReductionMeansOverTheBatchTokens() {
        check(.bnpo, beta: 0.1, expectedWeights: [0.25, 0.25, 0, 0, 0.25, 0.25].map { $0 > 0 ? 1.0 / 4 : 0 })
    }

    func testDrGRPOReductionDividesBySequencesTimesMaxLength() {
        check(.drGRPO, beta: 0, expectedWeights: [1, 1, 0, 0, 1, 1].map { $0 / 8.0 })
    }

    func testDAPOReductionDividesByTokensOfTheWholeGenerationBatch() {
        check(.dapo, beta: 0.04, expectedWeights: [1, 1, 0, 0, 1, 1].map { $0 / 8.0 })
    }

    func testUnequalLengthsWeightShortSequencesMoreUnderGRPO() {
        let m: [Float] = [1, 1, 1, 1, 0, 0]  // lengths 3 and 1
        let w = GRPOLoss.weights(mask: m, sequences: 2, type: .grpo, maxCompletionLength: 3, totalTokens: 4)
        XCTAssertEqual(w.map(Double.init), [1.0 / 6, 1.0 / 6, 1.0 / 6, 0.5, 0, 0].map { $0 }, accuracy: 1e-7)
        let b = GRPOLoss.weights(mask: m, sequences: 2, type: .bnpo, maxCompletionLength: 3, totalTokens: 4)
        XCTAssertEqual(b.map(Double.init), [0.25, 0.25, 0.25, 0.25, 0, 0], accuracy: 1e-7)
    }

    func testLowClippingWithNegativeAdvantage() {
        // r = e^-0.5 ≈ 0.61 < 0.8 with A < 0: the clipped term binds and the gradient is zero.
        let t = Tensor(shape: [2], [-1.5, -1.0], requiresGrad: true)
        let (loss, stats) = GRPOLoss.loss(logp: t, old: [-1.0, -1.0], ref: nil, advantages: [-1, -1], weights: [0.5, 0.5],
                                          mask: [1, 1], epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0)
        XCTAssertEqual(Double(loss.item), 0.5 * 0.8 + 0.5 * 1.0, accuracy: 1e-6)
        loss.backward()
        XCTAssertEqual(t.gradArray[0], 0)
        XCTAssertEqual(Double(t.gradArray[1]), 0.5, accuracy: 1e-6)  // −A·r·w = 1·1·0.5
        XCTAssertEqual(stats.clipLow, 0.5)
    }

    /// GSPO (importance_sampling_level: sequence): each token's ratio is its row's exp(mean over the
    /// row's unmasked tokens of logp − old), and the gradient reaches every token of the row through it.
    func testSequenceLevelRatioIsTheRowsGeometricMean() {
        let w = GRPOLoss.weights(mask: mask, sequences: 2, type: .grpo, maxCompletionLength: 4, totalTokens: 8)
        let t = Tensor(shape: [6], logp, requiresGrad: true)
        let (loss, stats) = GRPOLoss.loss(logp: t, old: old, ref: nil, advantages: adv, weights: w, mask: mask,
                                          epsilonLow: eps, epsilonHigh: epsHigh, beta: 0, sequences: 2, level: .sequence)
        // row 0: tokens 0, 1: mean log-ratio (0.1 + 0.4) / 2 = 0.25, s = e^0.25 ≈ 1.284 > 1.28, A > 0: clipped, no gradient.
        // row 1: tokens 4, 5: mean (−0.2 + 0.01) / 2 = −0.095, s = e^−0.095 ≈ 0.909, inside: ℓ = −s·A each.
        let s0 = exp(0.25), s1 = exp(-0.095), a1 = -1.5
        let expected = 0.25 * 2 * -(1.28 * 0.8) + 0.25 * 2 * -(s1 * a1)
        XCTAssertEqual(Double(loss.item), expected, accuracy: 1e-5)
        XCTAssertGreaterThan(s0, 1.28)
        loss.backward()
        // d/dlogp_t of Σ_{t' in row 1} w·(−s1·A) = −A·s1·(1/2)·Σ w = −A·s1·0.5·0.5 for t = 4, 5
        let g1 = -a1 * s1 * 0.5 * 0.5
        let want: [Double] = [0, 0, 0, 0, g1, g1]
        for i in 0..<6 { XCTAssertEqual(Double(t.gradArray[i]), want[i], accuracy: 1e-6, "grad \(i)") }
        XCTAssertEqual(stats.clipHigh, 0.5, accuracy: 1e-9)  // both tokens of row 0
    }

    /// CISPO: ℓ_t = −sg(min(r_t, ε_high))·A_t·logp_t, reduced as dapo: every token keeps a gradient,
    /// −min(r_t, ε_high)·A_t·w_t, the capped weight itself carrying none.
    func testCISPOClipsTheWeightNotTheUpdate() {
        let w = GRPOLoss.weights(mask: mask, sequences: 2, type: .cispo, maxCompletionLength: 4, totalTokens: 8)
        XCTAssertEqual(w.map(Double.init), [1, 1, 0, 0, 1, 1].map { $0 / 8.0 }, accuracy: 1e-7)
        let cap: Float = 1.3
        let t = Tensor(shape: [6], logp, requiresGrad: true)
        let (loss, stats) = GRPOLoss.loss(logp: t, old: old, ref: nil, advantages: adv, weights: w, mask: mask,
                                          epsilonLow: eps, epsilonHigh: cap, beta: 0, cispo: true)
        var expected = 0.0
        var grads = [Double](repeating: 0, count: 6)
        for i in 0..<6 {
            let c = min(exp(Double(logp[i]) - Double(old[i])), Double(cap))
            expected += Double(w[i]) * -c * Double(adv[i]) * Double(logp[i])
            grads[i] = Double(w[i]) * -c * Double(adv[i])
        }
        XCTAssertEqual(Double(loss.item), expected, accuracy: 1e-6)
        loss.backward()
        for i in 0..<6 { XCTAssertEqual(Double(t.gradArray[i]), grads[i], accuracy: 1e-6, "grad \(i)") }
        XCTAssertNotEqual(t.gradArray[1], 0, "token 1's weight is capped (e^0.4 > 1.3) but it still learns")
        XCTAssertEqual(stats.clipHigh, 0.25, accuracy: 1e-9)  // token 1 of 4
    }

    /// top_entropy_quantile ρ: the threshold is the (1 − ρ) quantile of the pool (linear interpolation,
    /// as torch.quantile), the policy term keeps tokens at or above it, the KL term keeps every token.
    func testHighEntropyTokensAloneCarryThePolicyTerm() {
        let pool: [Double] = [0.1, 0.4, 0.2, 0.8]  // sorted 0.1 0.2 0.4 0.8; q = 0.5·3 = 1.5 → 0.3
        let keep = GRPOLoss.highEntropyKeep(entropies: [0.1, 0.4, 9, 0.2, 0.8, 0.3], mask: [1, 1, 0, 1, 1, 1], pool: pool, quantile: 0.5)
        XCTAssertEqual(keep, [0, 1, 0, 0, 1, 1])  // masked 9 is dropped; 0.3 sits exactly at the threshold
        XCTAssertEqual(GRPOLoss.highEntropyKeep(entropies: [0.1, 0.4], mask: [1, 1], pool: [0.1, 0.4], quantile: 1), [1, 1])
        let w = GRPOLoss.weights(mask: mask, sequences: 2, type: .bnpo, maxCompletionLength: 4, totalTokens: 8)
        let k: [Float] = [1, 0, 0, 0, 0, 1]
        let t = Tensor(shape: [6], logp, requiresGrad: true)
        let (loss, _) = GRPOLoss.loss(logp: t, old: old, ref: ref, advantages: adv, weights: w, mask: mask,
                                      epsilonLow: eps, epsilonHigh: epsHigh, beta: 0.1, keep: k)
        let policyOnly = reference(beta: 0), withKL = reference(beta: 0.1)
        var expected = 0.0
        for i in 0..<6 { expected += Double(w[i]) * (Double(k[i]) * policyOnly.loss[i] + (withKL.loss[i] - policyOnly.loss[i])) }
        XCTAssertEqual(Double(loss.item), expected, accuracy: 1e-6)
        loss.backward()
        for i in 0..<6 {
            let g = Double(k[i]) * policyOnly.grad[i] + (withKL.grad[i] - policyOnly.grad[i])
            XCTAssertEqual(Double(t.gradArray[i]), g * Double(w[i]), accuracy: 1e-6, "grad \(i)")
        }
    }

    func testGroupAdvantages() {
        let r: [Double] = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5]
        let (a, signal) = GRPOLoss.advantages(rewards: r, group: 4, scale: "group")
        let std = (4.0 * 0.25 / 3).squareRoot()  // n−1
        XCTAssertEqual(a[0], 0.5 / (std + 1e-4), accuracy: 1e-12)
        XCTAssertEqual(a[1], -0.5 / (std + 1e-4), accuracy: 1e-12)
        XCTAssertEqual(Array(a[4...]), [0, 0, 0, 0])
        XCTAssertEqual(signal, [true, false], "the second group's rewards are all equal")
        let (n, _) = GRPOLoss.advantages(rewards: r, group: 4, scale: "none")
        XCTAssertEqual(n[0], 0.5, accuracy: 1e-12)
        let (b, _) = GRPOLoss.advantages(rewards: r, group: 4, scale: "batch")
        let m = r.reduce(0, +) / 8
        let bstd = (r.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 7).squareRoot()
        XCTAssertEqual(b[0], 0.5 / (bstd + 1e-4), accuracy: 1e-12)
    }

    func testScheduleWarmsUpThenDecaysToItsFloor() {
        let s = Schedule(peak: 1, warmup: 4, total: 14, cosine: true, minRatio: 0.1)
        XCTAssertEqual(s.lr(at: 0), 0.25, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 3), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 4), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 9), 0.55, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(Schedule(peak: 2, warmup: 0, total: 10, cosine: false, minRatio: 0).lr(at: 7), 2)
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}

/// Dynamic sampling's choice of groups, and how many prompts it samples.
final class DynamicSamplingTests: XCTestCase {
    func testGroupsWithSignalAreThoseWhoseRewardsDiffer() {
        let rewards: [Double] = [1, 1, 1, 0.1, 1.1, 1.1, 0, 0, 0, 1.1, 0.1, 0]
        XCTAssertEqual(GRPOLoss.advantages(rewards: rewards, group: 3, scale: "group").signal, [false, true, false, true])
        XCTAssertEqual(GRPOLoss.advantages(rewards: [0.5, 0.5], group: 2, scale: "none").signal, [false])
    }

    func testKeepsOnlyGroupsWithSignalUpToTheWantedCount() {
        let signal = [false, true, false, true, true, false, true]
        XCTAssertEqual(GRPOStep.keptGroups(signal: signal, want: 3, dynamic: true), [1, 3, 4],
                       "enough groups disagree: no zero-variance group is kept")
        XCTAssertEqual(GRPOStep.keptGroups(signal: signal, want: 10, dynamic: true), [1, 3, 4, 6], "fewer than wanted: only those")
        XCTAssertEqual(GRPOStep.keptGroups(signal: [false, false], want: 2, dynamic: true), [], "none disagree: nothing to train on")
        XCTAssertEqual(GRPOStep.keptGroups(signal: signal, want: 0, dynamic: true), [])
        XCTAssertEqual(GRPOStep.keptGroups(signal: signal, want: 3, dynamic: false), Array(0..<7), "off: every group")
    }

    func testOversamplingAddsAFractionOfPrompts() throws {
        var config = TrainConfig()
        config.grpo.oversample = 0.5
        let step = GRPOStep(config: config, tokenizer: CharTokenizer(), rewards: try RewardSet(config: config.grpo.rewards))
        XCTAssertEqual(step.promptsToSample(missing: 16), 24)
        XCTAssertEqual(step.promptsToSample(missing: 3), 5, "rounded up")
        config.grpo.dynamicSampling = false
        let plain = GRPOStep(config: config, tokenizer: CharTokenizer(), rewards: try RewardSet(config: config.grpo.rewards))
        XCTAssertEqual(plain.promptsToSample(missing: 16), 16)
    }
}

/// SFT's plateau rule on synthetic validation curves.
final class PlateauTests: XCTestCase {
    /// Feeds (score, loss) checks every 100 steps; returns the step where the plateau was declared and the best step.
    func run(_ checks: [(Double, Double)], patience: Int) -> (stop: Int?, best: Int?) {
        var tracker = PlateauTracker()
        for (i, (score, loss)) in checks.enumerated() {
            if tracker.check(step: (i + 1) * 100, score: score, loss: loss, patience: patience) == .plateau {
                return ((i + 1) * 100, tracker.bestStep)
            }
        }
        return (nil, tracker.bestStep)
    }

    func testStopsPatienceStepsAfterTheBestCheck() {
        // Rises to 0.8 at step 400, then wobbles below it.
        let curve: [(Double, Double)] = [(0.2, 1), (0.5, 0.5), (0.7, 0.3), (0.8, 0.2), (0.75, 0.2), (0.8, 0.25), (0.79, 0.2), (0.6, 0.3), (0.9, 0.1)]
        let r = run(curve, patience: 300)
        XCTAssertEqual(r.stop, 700, "three checks without a better one after step 400")
        XCTAssertEqual(r.best, 400, "an equal score at a higher loss is not better")
    }

    func testAnEqualScoreAtALowerLossIsProgress() {
        let curve: [(Double, Double)] = [(1, 0.5), (1, 0.4), (1, 0.3), (1, 0.35), (1, 0.36), (1, 0.2)]
        XCTAssertEqual(run(curve, patience: 300).best, 600)
        XCTAssertNil(run(curve, patience: 300).stop, "the loss kept falling within the patience")
        XCTAssertEqual(run(curve, patience: 200).stop, 500)
    }

    func testSmoothingIgnoresOneLuckyCheck() {
        // A spike at step 300 on a slowly rising curve: alone it would end SFT three checks later.
        let curve: [(Double, Double)] = [(0.40, 1), (0.42, 1), (0.60, 1), (0.45, 1), (0.47, 1), (0.50, 1), (0.52, 1), (0.54, 1)]
        XCTAssertEqual(run(curve, patience: 300).stop, 600, "unsmoothed, the spike is the best check")
        var tracker = PlateauTracker()
        var outcomes: [PlateauTracker.Outcome] = []
        for (i, (score, loss)) in curve.enumerated() {
            outcomes.append(tracker.check(step: (i + 1) * 100, score: score, loss: loss, patience: 300, smoothing: 3))
        }
        XCTAssertFalse(outcomes.contains(.plateau), "smoothed over 3 checks, the rise continues: \(outcomes)")
        XCTAssertEqual(tracker.bestStep, 800)
        XCTAssertEqual(tracker.bestScore!, (0.50 + 0.52 + 0.54) / 3, accuracy: 1e-12)
    }

    func testAStillRisingCurveNeverStops() {
        let curve = (1...50).map { (Double($0) / 50, 1 / Double($0)) }
        XCTAssertNil(run(curve, patience: 100).stop)
    }
}
