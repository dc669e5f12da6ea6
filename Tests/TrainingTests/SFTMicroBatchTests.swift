// Length micro-batches (SFT's and GRPO's): the grouping is a partition with the least padded cost,
// and the gradient accumulated over the groups is the one-batch gradient.

import Autograd
import Model
import Tasks
import Training
import XCTest

final class SFTMicroBatchTests: XCTestCase {
    /// The cost the grouping minimises: each group padded to its longest row, plus the overhead
    /// of every group after the first.
    func cost(_ groups: [[Int]], _ lengths: [Int], overhead: Int) -> Int {
        groups.reduce(0) { $0 + $1.count * $1.map { lengths[$0] }.max()! } + (groups.count - 1) * overhead
    }

    func testGroupsPartitionTheBatchAtTheLeastPaddedCost() {
        let overhead = 256
        // The quickstart's shape: many short traces and a few long ones split in two.
        let quick = Array(repeating: 54, count: 20) + [73, 70] + Array(repeating: 52, count: 9) + [75]
        let g = SFT.lengthGroups(quick, overhead: overhead)
        XCTAssertEqual(g.count, 2)
        XCTAssertEqual(Set(g[1]), [20, 21, 31], "the three long traces form their own micro-batch")
        XCTAssertLessThan(cost(g, quick, overhead: overhead), quick.count * 75)
        // Equal lengths, or a spread smaller than the overhead: one batch.
        XCTAssertEqual(SFT.lengthGroups([40, 40, 40]).count, 1)
        XCTAssertEqual(SFT.lengthGroups([40, 41, 42, 43], overhead: 256).count, 1)
        XCTAssertEqual(SFT.lengthGroups([7]), [[0]])
        XCTAssertEqual(SFT.lengthGroups([]), [])
        // Against every split of the sorted rows into contiguous runs, on small random batches.
        var rng = SplitMix64(seed: 5)
        for _ in 0..<200 {
            let n = 1 + Int(rng.next() % 7), over = Int(rng.next() % 40)
            let lengths = (0..<n).map { _ in 1 + Int(rng.next() % 30) }
            let groups = SFT.lengthGroups(lengths, overhead: over)
            XCTAssertEqual(groups.flatMap { $0 }.sorted(), Array(0..<n), "a partition of the rows")
            for grp in groups { XCTAssertEqual(grp.map { lengths[$0] }, grp.map { lengths[$0] }.sorted()) }
            let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
            var bestCost = Int.max
            for cuts in 0..<(1 << (n - 1)) {  // bit c set: a group ends after sorted row c
                var parts: [[Int]] = [[]]
                for (c, i) in order.enumerated() {
                    parts[parts.count - 1].append(i)
                    if c < n - 1 && cuts & (1 << c) != 0 { parts.append([]) }
                }
                bestCost = min(bestCost, cost(parts, lengths, overhead: over))
            }
            XCTAssertEqual(cost(groups, lengths, overhead: over), bestCost, "lengths \(lengths), overhead \(over)")
        }
    }

    /// SFT's loss runs each distinct prefix of its rows once (no pad slot, a prompt's opening shared
    /// between rows): its loss and gradient are those of the padded B×T forward, to float32 rounding.
    func testSFTLossOverSharedPrefixesEqualsThePaddedForward() throws {
        let tokenizer = CharTokenizer()
        let add = try XCTUnwrap(TaskRegistry.family(named: "add"))
        let examples = try (0..<6).map { i in
            try SFT.example(add.problem(seed: 4, stream: "t", level: i < 3 ? 1 : 3, index: i, id: "p\(i)"), tokenizer: tokenizer)
        }
        var rng = RNG(seed: 3, stream: "init")
        let policy = Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 2, heads: 2, ffDim: 64, maxContext: 128), rng: &rng)
        let pad = Int32(tokenizer.pad), b = examples.count, t = examples.map(\.ids.count).max()!
        var ids = [Int32](repeating: pad, count: b * t), targets = [Int32](repeating: -1, count: b * t)
        for (r, ex) in examples.enumerated() {
            for (i, id) in ex.ids.enumerated() { ids[r * t + i] = id }
            for i in (ex.promptLength - 1)..<(ex.ids.count - 1) { targets[r * t + i] = ex.ids[i + 1] }
        }
        let layout = SharedPrefixes(ids: ids, batch: b, time: t, lengths: examples.map(\.ids.count))
        XCTAssertLessThan(layout.realTokens, b * t, "rows of different lengths: pads")
        XCTAssertLessThan(layout.packed, layout.realTokens, "prompts that open alike: shared tokens")

        let (loss, count) = SFT.loss(policy: policy, batch: examples, pad: pad)
        loss.backward()
        let got = policy.parameters.map(\.gradArray)
        for p in policy.parameters { p.zeroGrad() }
        let padded = Tensor.headLogprobs(policy.hidden(ids: ids, batch: b, time: t), head: policy.lmHead, targets: targets).logp.sum()
            * (-1 / Float(count))
        padded.backward()
        XCTAssertEqual(loss.item, padded.item, accuracy: 1e-6 * abs(padded.item))
        for (g, e) in zip(got, policy.parameters.map(\.gradArray)) {
            let scale = e.map { abs($0) }.max()! + 1e-12
            for (x, y) in zip(g, e) { XCTAssertEqual(x, y, accuracy: 1e-5 * scale) }
        }
    }

    /// Two micro-batches of a mixed-length batch accumulate the gradient and loss of the whole
    /// padded batch (right padding never reaches a real position under causal attention).
    func testMicroBatchedGradientEqualsTheWholeBatchGradient() throws {
        let tokenizer = CharTokenizer()
        let add = try XCTUnwrap(TaskRegistry.family(named: "add"))
        let examples = try (0..<6).map { i in
            try SFT.example(add.problem(seed: 3, stream: "t", level: i < 4 ? 1 : 3, index: i, id: "p\(i)"), tokenizer: tokenizer)
        }
        let lengths = examples.map(\.ids.count)
        XCTAssertGreaterThan(SFT.lengthGroups(lengths, overhead: 0).count, 1, "lengths \(lengths) split")
        var rng = RNG(seed: 2, stream: "init")
        let policy = Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 2, heads: 2, ffDim: 64, maxContext: 128), rng: &rng)
        let tokens = examples.reduce(0) { $0 + SFT.targetCount($1) }
        let pad = Int32(tokenizer.pad)

        let (whole, count) = SFT.loss(policy: policy, batch: examples, pad: pad)
        XCTAssertEqual(count, tokens)
        whole.backward()
        let expected = policy.parameters.map { $0.gradArray }
        for p in policy.parameters { p.zeroGrad() }

        let loss = SFT.accumulateGradients(policy: policy, batch: examples, pad: pad, normalizer: tokens, overhead: 0)
        XCTAssertEqual(loss, Double(whole.item), accuracy: 1e-5 * abs(Double(whole.item)))
        for (p, e) in zip(policy.parameters, expected) {
            let got = p.gradArray
            let scale = e.map { abs($0) }.max()! + 1e-12
            for (a, b) in zip(got, e) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale) }
        }
    }

    /// GRPO's update over length micro-batches takes the step of the whole batch: rows of short
    /// (add) and long (program) prompts, split at no overhead or kept whole, leave the same AdamW
    /// moments and report the same loss.
    /// Also with GSPO's sequence-level ratios, CISPO and top_entropy_quantile: the entropy threshold is
    /// the whole batch's, so the micro-batch split moves nothing there either.
    func testGRPOMicroBatchesTakeTheWholeBatchStep() throws {
        var base = TrainConfig()
        base.grpo.numGenerations = 2
        base.grpo.maxCompletionLength = 10
        base.model.maxContext = 256
        var variant = base
        variant.grpo.importanceSamplingLevel = .sequence
        variant.grpo.lossType = .cispo
        variant.grpo.epsilonHigh = 5
        variant.grpo.topEntropyQuantile = 0.3
        let losses = try [base, variant].map { try checkMicroBatches($0) }
        XCTAssertNotEqual(losses[0], losses[1], accuracy: 1e-6, "the objective options changed nothing")
    }

    /// The update over micro-batches equals the whole batch's; returns the loss.
    func checkMicroBatches(_ cfg: TrainConfig) throws -> Double {
        let tokenizer = CharTokenizer()
        let problems = try ["add", "program", "add", "program"].enumerated().map { i, name in
            try XCTUnwrap(TaskRegistry.family(named: name)).problem(seed: 3, stream: "t", level: 1, index: i, id: "p\(i)")
        }
        func run(overhead: Int) throws -> (metrics: [String: Double], moments: [String: [Float]]) {
            var rng = RNG(seed: 2, stream: "init")
            let policy = Policy(config: PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 2, heads: 2, ffDim: 64, maxContext: 256), rng: &rng)
            var step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet(config: cfg.grpo.rewards))
            step.microBatchOverhead = overhead
            var sampling = RNG(seed: 5, stream: "sampling")
            var batch = try step.generate(policy: policy, problems: problems, rng: &sampling)
            for i in batch.indices { batch[i].advantage = i % 2 == 0 ? 1 : -1 }  // a random policy earns no reward
            if overhead == 0 {  // rows of several lengths, so the update really runs more than one micro-batch
                let rows = try batch.map { try tokenizer.encodePrompt($0.problem.prompt).count + $0.completion.tokens.count }
                XCTAssertGreaterThan(SFT.lengthGroups(rows, overhead: 0).count, 1, "row lengths \(rows)")
            }
            let optimizer = AdamW(policy.parameters, lr: 1e-3)
            let metrics = try step.update(policy: policy, reference: nil, optimizer: optimizer, samples: batch)
            if overhead > 0 {  // one micro-batch: its layers ran the rows' distinct prefixes (a group's prompt once)
                let rows = try batch.map { try tokenizer.encodePrompt($0.problem.prompt).map(Int32.init) + $0.completion.tokens }
                let prefixes = Set(rows.flatMap { row in (1...row.count).map { Array(row.prefix($0)) } }).count
                let real = rows.reduce(0) { $0 + $1.count }
                XCTAssertLessThan(prefixes, real, "the groups' rows must share their prompts")
                XCTAssertEqual(try XCTUnwrap(metrics["update/distinct_prefix_fraction"]), Double(prefixes) / Double(real), accuracy: 1e-12)
            }
            return (metrics, optimizer.stateArrays())
        }
        let lengths = problems.map { (try? tokenizer.encodePrompt($0.prompt).count) ?? 0 }
        XCTAssertGreaterThan(lengths.max()!, 2 * lengths.min()!, "prompt lengths \(lengths) must differ for the split to matter")
        let (split, whole) = (try run(overhead: 0), try run(overhead: 1_000_000))
        XCTAssertEqual(split.metrics["loss"]!, whole.metrics["loss"]!, accuracy: 1e-6)
        XCTAssertEqual(split.metrics["grad_norm"]!, whole.metrics["grad_norm"]!, accuracy: 1e-4 * whole.metrics["grad_norm"]!)
        XCTAssertGreaterThan(whole.metrics["grad_norm"]!, 0)
        for (name, expected) in whole.moments {
            let got = try XCTUnwrap(split.moments[name])
            let scale = expected.map { abs($0) }.max()! + 1e-12
            for (a, b) in zip(got, expected) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale, name) }
        }
        return whole.metrics["loss"]!
    }
}
