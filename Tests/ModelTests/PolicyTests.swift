import Autograd
import Foundation
import Model
import XCTest

final class PolicyTests: XCTestCase {
    static let tiny = PolicyConfig(vocabSize: 23, dModel: 16, layers: 2, heads: 2, ffDim: 24, maxContext: 40)

    func makePolicy(_ config: PolicyConfig = tiny, seed: UInt64 = 1, std: Float = 0.3) -> Policy {
        var c = config
        c.initStd = std  // larger than Llama's 0.02 so logits vary and mistakes show
        var rng = RNG(seed: seed, stream: "init")
        return Policy(config: c, rng: &rng)
    }

    func tokens(_ n: Int, seed: UInt64) -> [Int32] { testTokens(n, seed: seed) }

    /// KV-cached decoding, prefill then one token at a time, gives the full forward's logits at
    /// every real position, for left-padded rows as for unpadded ones.
    func testCachedDecodingMatchesFullForward() {
        let policy = makePolicy()
        let lengths = [9, 6, 4]  // padded to 9 on the left
        let (ids, full, cached, keyStart, t) = cachedAndFullLogits(policy, lengths: lengths)
        let b = lengths.count, v = Self.tiny.vocabSize
        for r in 0..<b {
            for i in keyStart[r]..<t {
                for j in 0..<v {
                    let a = full.data[(r * t + i) * v + j], c = cached[(r * t + i) * v + j]
                    XCTAssertEqual(a, c, accuracy: 1e-5, "row \(r) position \(i) token \(j)")
                }
            }
        }
        // A padded row gives the logits of the same sequence alone, unpadded.
        let alone = Autograd.noGrad { policy.forward(ids: Array(ids[(2 * t + 5)..<(3 * t)]), batch: 1, time: 4) }
        for i in 0..<4 { for j in 0..<v { XCTAssertEqual(alone.data[i * v + j], full.data[(2 * t + 5 + i) * v + j], accuracy: 1e-5) } }
    }

    /// With bf16 linear layers (AMX or avx512_bf16), cached decoding still gives the full forward's logits: the
    /// packed decoding weights compute the same products, so the only differences are float32
    /// attention rounding carried through bf16 roundings; and the logits are not float32's.
    func testCachedDecodingMatchesFullForwardInBF16() throws {
        try XCTSkipUnless(MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "")
        let saved = BLAS.precision
        defer { BLAS.precision = saved }
        let policy = makePolicy()
        let lengths = [9, 6, 4]
        BLAS.precision = .f32
        let (_, f32, _, _, _) = cachedAndFullLogits(policy, lengths: lengths)
        BLAS.precision = .bf16
        let (_, full, cached, keyStart, t) = cachedAndFullLogits(policy, lengths: lengths)
        let v = Self.tiny.vocabSize
        var worst: Float = 0, fromF32: Float = 0
        for r in 0..<lengths.count {
            for i in keyStart[r]..<t {
                for j in 0..<v {
                    let at = (r * t + i) * v + j
                    worst = max(worst, abs(full.data[at] - cached[at]))
                    fromF32 = max(fromF32, abs(full.data[at] - f32.data[at]))
                }
            }
        }
        XCTAssertLessThan(worst, 1e-4, "cached bf16 decoding against the bf16 full forward")
        XCTAssertGreaterThan(fromF32, 1e-4, "bf16 logits equal float32's: the bf16 path did not run")
        XCTAssertLessThan(fromF32, 0.1, "bf16 logits far from float32's")
    }

    /// Central differences through the whole model, on a sample of every parameter tensor.
    func testGradientThroughWholeModel() {
        var cfg = Self.tiny
        cfg.tieEmbeddings = true
        let policy = makePolicy(cfg, std: 0.5)
        let (b, t) = (2, 5)
        let ids = tokens(b * t, seed: 3)
        let targets: [Int32] = (0..<(b * t)).map { i in i % t == t - 1 ? -1 : ids[i + 1] }
        func loss() -> Tensor {
            Tensor.logSoftmaxGather(policy.forward(ids: ids, batch: b, time: t, keyStart: [1, 0]), targets: targets).sum()
        }
        loss().backward()
        checkParameterGradients(policy, loss: loss)
    }

    /// A batch whose rows begin alike (GRPO's groups: a shared prompt, completions that drew the same
    /// tokens, identical completions) run with each distinct prefix once gives the unshared forward's
    /// states at every real slot, value for value, and the same parameter gradients up to the order of
    /// their sums; for multi-head and grouped-query attention, with LoRA adapters too. The layers run
    /// over the rows' distinct prefixes alone.
    func testSharedPrefixesGiveTheUnsharedStatesAndGradients() throws {
        for (kvHeads, lora) in [(2, false), (1, false), (2, true)] {
            var cfg = Self.tiny
            cfg.kvHeads = kvHeads
            let policy = makePolicy(cfg, std: 0.5)
            XCTAssertTrue(policy.sharesPrefixes, "a Llama policy without MoE must take the shared path")
            if lora {
                var rng = RNG(seed: 5)
                try policy.addLoRA(LoRAConfig(rank: 2, alpha: 4)) { _, shape in Tensor.randn(shape, std: 0.3, rng: &rng, requiresGrad: true) }
            }
            // Two groups of three rows (prompts of 4 and 2 tokens), then a row with a prompt of its own
            // and one whose prompt is the first group's first three tokens only; then a group of four
            // whose completions are one completion twice, a second one that shares its first three
            // tokens, and a fourth that ends where the first has two tokens left.
            let prompts = [tokens(4, seed: 21), tokens(2, seed: 22)]
            var rows: [(prompt: [Int32], completion: [Int32])] = []
            for (g, p) in prompts.enumerated() { for j in 0..<3 { rows.append((p, tokens(2 + j + g, seed: UInt64(30 + 3 * g + j)))) } }
            rows.append((tokens(3, seed: 40), tokens(4, seed: 41)))
            rows.append((Array(prompts[0].prefix(3)), tokens(3, seed: 42)))
            let alike = tokens(6, seed: 43), prompt = tokens(3, seed: 44)
            rows += [(prompt, alike), (prompt, alike), (prompt, Array(alike.prefix(3)) + tokens(2, seed: 45)), (prompt, Array(alike.prefix(4)))]
            let b = rows.count, t = rows.map { $0.prompt.count + $0.completion.count }.max()!, c = cfg.dModel
            var ids = [Int32](repeating: 0, count: b * t), targets = [Int32](repeating: -1, count: b * t)
            for (r, row) in rows.enumerated() {
                let seq = row.prompt + row.completion
                for (i, id) in seq.enumerated() { ids[r * t + i] = id }
                for j in row.completion.indices { targets[r * t + row.prompt.count - 1 + j] = row.completion[j] }
            }
            let lengths = rows.map { $0.prompt.count + $0.completion.count }
            let prefixes = Set(rows.flatMap { row in (1...(row.prompt.count + row.completion.count)).map { Array((row.prompt + row.completion).prefix($0)) } })
            let layout = SharedPrefixes(ids: ids, batch: b, time: t, lengths: lengths)
            XCTAssertEqual(layout.packed, prefixes.count)
            // At least the groups' repeated prompts (8 + 4 + 9 tokens), the third prompt (3), the twice-drawn
            // completion (6) and the two that begin like it (3 + 4) are shared.
            XCTAssertLessThanOrEqual(prefixes.count, lengths.reduce(0, +) - 37)
            // Attention runs a row's queries from its first prefix no earlier row had: none for the
            // completion drawn twice and the one that ends inside it.
            var earlier = Set<[Int32]>()
            for (r, row) in rows.enumerated() {
                let seq = row.prompt + row.completion
                let first = (0..<seq.count).first { !earlier.contains(Array(seq.prefix($0 + 1))) } ?? seq.count
                XCTAssertEqual(layout.queries[r], first..<seq.count, "row \(r)")
                for n in 1...seq.count { earlier.insert(Array(seq.prefix(n))) }
            }
            XCTAssertTrue(layout.queries[9].isEmpty && layout.queries[11].isEmpty)
            XCTAssertEqual(layout.queries[0], 0..<lengths[0])
            func run(shared: Bool) -> (states: [Float], grads: [[Float]]) {
                policy.parameters.forEach { $0.zeroGrad() }
                let h = shared ? policy.hidden(prefixes: layout)
                    : policy.hidden(ids: ids, batch: b, time: t)
                let states = h.array
                Tensor.logSoftmaxGather(Tensor.matmul(h, policy.lmHead, transposeB: true), targets: targets).sum().backward()
                return (states, policy.parameters.map(\.gradArray))
            }
            let plain = run(shared: false), shared = run(shared: true)
            for r in 0..<b {
                for i in 0..<lengths[r] {
                    for k in 0..<c {
                        let a = plain.states[(r * t + i) * c + k], s = shared.states[(r * t + i) * c + k]
                        if NativeKernels.enabled { XCTAssertEqual(s, a, "row \(r) slot \(i)") } else { XCTAssertEqual(s, a, accuracy: 1e-5) }
                    }
                }
            }
            for (n, (gp, gs)) in zip(plain.grads, shared.grads).enumerated() {
                let scale = gp.map(abs).max()!
                XCTAssertGreaterThan(scale, 0, "parameter \(n) got no gradient")
                for (x, y) in zip(gp, gs) { XCTAssertEqual(y, x, accuracy: 1e-5 * max(1, scale), "kv \(kvHeads) lora \(lora) parameter \(n)") }
            }
        }
    }

    /// Gradient checkpointing changes memory, not numbers: the loss and every gradient equal a plain
    /// recorded forward's bit for bit, with and without LoRA adapters (whose base gets none).
    func testGradientCheckpointingGivesTheSameGradientsBitForBit() throws {
        for lora in [false, true] {
            let policy = makePolicy(std: 0.5)
            if lora {
                var rng = RNG(seed: 5)
                try policy.addLoRA(LoRAConfig(rank: 2, alpha: 4)) { _, shape in Tensor.randn(shape, std: 0.3, rng: &rng, requiresGrad: true) }
            }
            let (b, t) = (2, 6)
            let ids = tokens(b * t, seed: 8)
            let targets: [Int32] = (0..<(b * t)).map { i in i % t == t - 1 ? -1 : ids[i + 1] }
            func gradients(checkpointing: Bool) -> (loss: Float, grads: [[Float]], pending: Int) {
                policy.gradientCheckpointing = checkpointing
                policy.parameters.forEach { $0.zeroGrad() }
                let loss = Tensor.logSoftmaxGather(policy.forward(ids: ids, batch: b, time: t, keyStart: [1, 0]), targets: targets).sum()
                let pending = Autograd.pendingOps
                loss.backward()
                return (loss.item, policy.parameters.map(\.gradArray), pending)
            }
            let plain = gradients(checkpointing: false), recomputed = gradients(checkpointing: true)
            XCTAssertEqual(recomputed.loss, plain.loss)
            XCTAssertEqual(recomputed.grads, plain.grads, lora ? "LoRA" : "full")
            XCTAssertTrue(plain.grads.allSatisfy { $0.contains { $0 != 0 } })
            XCTAssertLessThan(recomputed.pending, plain.pending / 3, "the layers' ops must not be kept on the tape")
            if lora { for (name, t) in policy.namedTensors { XCTAssertFalse(t.hasGrad, "\(name) got a gradient") } }
        }
    }

    func testSamplerIsDeterministicAndItsLogprobsMatchTheTrainingForward() {
        let policy = makePolicy()
        let prompts = [tokens(5, seed: 1), tokens(3, seed: 2)]
        let opts = SamplingOptions(temperature: 0.8, maxNewTokens: 7)
        var r1 = RNG(seed: 9, stream: "sampling"), r2 = RNG(seed: 9, stream: "sampling"), r3 = RNG(seed: 10, stream: "sampling")
        let a = Sampler.sample(policy: policy, prompts: prompts, group: 3, options: opts, stopTokens: [2], padToken: 0, rng: &r1)
        let b = Sampler.sample(policy: policy, prompts: prompts, group: 3, options: opts, stopTokens: [2], padToken: 0, rng: &r2)
        let c = Sampler.sample(policy: policy, prompts: prompts, group: 3, options: opts, stopTokens: [2], padToken: 0, rng: &r3)
        XCTAssertEqual(a.map(\.tokens), b.map(\.tokens))
        XCTAssertEqual(a.map(\.logprobs), b.map(\.logprobs))
        XCTAssertNotEqual(a.map(\.tokens), c.map(\.tokens))
        XCTAssertEqual(a.map(\.prompt), [0, 0, 0, 1, 1, 1])
        // Recompute each completion's logprobs with the recorded forward at temperature 0.8.
        for comp in a {
            let seq = prompts[comp.prompt] + comp.tokens
            let logits = Autograd.noGrad { policy.forward(ids: seq, batch: 1, time: seq.count) * (1 / Float(0.8)) }
            let n = prompts[comp.prompt].count
            let targets: [Int32] = (0..<seq.count).map { $0 >= n - 1 && $0 < seq.count - 1 ? seq[$0 + 1] : -1 }
            let lp = Autograd.noGrad { Tensor.logSoftmaxGather(logits, targets: targets) }
            for (k, x) in comp.logprobs.enumerated() { XCTAssertEqual(x, lp.data[n - 1 + k], accuracy: 1e-4) }
        }
    }

    /// With more than one thread a small policy's batch is decoded in slices at once (`Sampler.sliceCount`);
    /// the completions, their logprobs and the generators afterwards are one batch's on one thread, bit for bit.
    func testSlicedDecodingOnTwoThreadsEqualsOneBatchOnOneBitForBit() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let policy = makePolicy()
        let prompts = (0..<7).map { tokens(1 + $0 % 4 * 2, seed: UInt64(20 + $0)) }
        let opts = SamplingOptions(temperature: 1, topP: 0.95, maxNewTokens: 12)
        func sample(threads: Int) -> (completions: [Completion], after: [UInt64]) {
            Parallel.threads = threads
            var rngs = prompts.indices.map { RNG(seed: 4 + UInt64($0), stream: "sampling") }
            let out = Sampler.sample(policy: policy, prompts: prompts, group: 3, options: opts, stopTokens: [2], padToken: 0, rngs: &rngs)
            return (out, rngs.indices.map { rngs[$0].next() })
        }
        Parallel.threads = 2
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: prompts.count, group: 3), NativeKernels.enabled ? 4 : 1)
        let one = sample(threads: 1), sliced = sample(threads: 2)
        XCTAssertEqual(sliced.completions.map(\.prompt), (0..<21).map { $0 / 3 })
        XCTAssertEqual(sliced.completions.map(\.tokens), one.completions.map(\.tokens))
        XCTAssertEqual(sliced.completions.map { $0.logprobs.map(\.bitPattern) }, one.completions.map { $0.logprobs.map(\.bitPattern) })
        XCTAssertEqual(sliced.completions.map(\.truncated), one.completions.map(\.truncated))
        XCTAssertEqual(sliced.after, one.after, "each prompt's generator must end where one batch leaves it")
        // Four threads take seven one-prompt slices: another split, the same bits.
        Parallel.threads = 4
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: prompts.count, group: 3), NativeKernels.enabled ? 7 : 1)
        let many = sample(threads: 4)
        XCTAssertEqual(many.completions.map(\.tokens), one.completions.map(\.tokens))
        XCTAssertEqual(many.completions.map { $0.logprobs.map(\.bitPattern) }, one.completions.map { $0.logprobs.map(\.bitPattern) })
        XCTAssertEqual(many.after, one.after)
        // Rows of different lengths, some stopped early: otherwise the slices would show nothing.
        XCTAssertTrue(one.completions.contains { $0.truncated } && one.completions.contains { !$0.truncated })
        XCTAssertGreaterThan(Set(one.completions.map(\.tokens)).count, 12)
    }

    /// Two slices a thread, up to four while each keeps 48 rows (r1-tiny's 48 prompts × 8), never more
    /// slices than prompts.
    func testSliceCountGrowsWithTheBatchUpToFourPerThread() throws {
        try XCTSkipUnless(NativeKernels.enabled, "without the native kernels a batch is never sliced")
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let policy = makePolicy()
        Parallel.threads = 2
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 48, group: 8), 8)
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 36, group: 8), 6)
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 32, group: 8), 4)
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 3, group: 8), 3)
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 400, group: 4), 8)
        Parallel.threads = 4
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 48, group: 8), 8)
        Parallel.threads = 1
        XCTAssertEqual(Sampler.sliceCount(policy: policy, prompts: 48, group: 8), 1)
    }

    /// Completions that have drawn the same tokens decode on one cache row until they differ: the
    /// completions, their logprobs and the generators afterwards are those of a row per completion, bit
    /// for bit, with rows that part at different steps and stop at different steps.
    func testCompletionsDecodeOnOneRowUntilTheyDifferAndGetTheSameBits() throws {
        try XCTSkipUnless(NativeKernels.enabled, "rows are shared only where a row's values depend on that row alone")
        let saved = Sampler.sharesAlikeRows
        defer { Sampler.sharesAlikeRows = saved }
        let policy = makePolicy()
        let prompts = (0..<5).map { tokens(2 + $0, seed: UInt64(60 + $0)) }
        let opts = SamplingOptions(temperature: 0.35, maxNewTokens: 14)
        func sample(shared: Bool) -> (completions: [Completion], after: [UInt64]) {
            Sampler.sharesAlikeRows = shared
            var rngs = prompts.indices.map { RNG(seed: 7 + UInt64($0), stream: "sampling") }
            let out = Sampler.sample(policy: policy, prompts: prompts, group: 4, options: opts, stopTokens: [2, 9], padToken: 0, rngs: &rngs)
            return (out, rngs.indices.map { rngs[$0].next() })
        }
        let own = sample(shared: false), shared = sample(shared: true)
        XCTAssertEqual(shared.completions.map(\.tokens), own.completions.map(\.tokens))
        XCTAssertEqual(shared.completions.map { $0.logprobs.map(\.bitPattern) }, own.completions.map { $0.logprobs.map(\.bitPattern) })
        XCTAssertEqual(shared.completions.map(\.truncated), own.completions.map(\.truncated))
        XCTAssertEqual(shared.after, own.after)
        // What makes the comparison say something: completions of one prompt that drew the same first
        // tokens and then parted (a shared row copied), and others that stopped at different steps.
        var parted = 0
        for p in prompts.indices {
            let group = own.completions.filter { $0.prompt == p }.map(\.tokens)
            for a in group.indices { for b in group.indices where a < b {
                let common = zip(group[a], group[b]).prefix { $0 == $1 }.count
                if common >= 2 && common < min(group[a].count, group[b].count) { parted += 1 }
            } }
        }
        XCTAssertGreaterThan(parted, 0, "no two completions shared a prefix and then parted")
        XCTAssertGreaterThan(Set(own.completions.map(\.tokens.count)).count, 2, "completions must stop at different steps")
    }

    /// After `repeatRows`, a group's rows read their prompt's slots from the group's first row still in
    /// the cache: the logits equal, bit for bit, those of a cache that ran every row's prompt itself, also
    /// after compaction has dropped a group's first row and moved rows into its place.
    /// Attention over packed tokens (each row's slots gathered per head) gives the bits of gathering
    /// q, k and v into the B×T slots, attending there and taking each token's output from its first
    /// row: outputs and all three gradients, with rows that share prefixes, a row whose prefixes an
    /// earlier row holds (nothing read), pads, and rows longer than one chunk of the GEMM's K (T 300).
    func testPackedAttentionGivesTheBitsOfAttentionOverTheSlots() {
        for t in [40, 300] {
            let (h, d) = (2, 8), base = tokens(t, seed: 60)
            let rows: [[Int32]] = [base, Array(base.prefix(20)) + tokens(t - 27, seed: 61), base,
                                   Array(base.prefix(10)) + tokens(t / 2 - 10, seed: 62), tokens(t - 1, seed: 63)]
            let b = rows.count, lengths = rows.map(\.count)
            var ids = [Int32](repeating: 0, count: b * t)
            for (r, row) in rows.enumerated() { for (i, id) in row.enumerated() { ids[r * t + i] = id } }
            let layout = SharedPrefixes(ids: ids, batch: b, time: t, lengths: lengths)
            let n = layout.packed
            XCTAssertTrue(layout.queries[2].isEmpty, "row 2 repeats row 0")
            XCTAssertEqual(layout.queries[1].lowerBound, 20)
            // each packed token's first real slot, in row-major order: where the slot path reads its output
            var fromSlots = [Int32](repeating: -1, count: n)
            for r in 0..<b { for i in 0..<lengths[r] where fromSlots[Int(layout.toSlots[r * t + i])] < 0 { fromSlots[Int(layout.toSlots[r * t + i])] = Int32(r * t + i) } }
            XCTAssertFalse(fromSlots.contains(-1))
            var rng = RNG(seed: 64)
            let values = (0..<4).map { _ in Tensor.randn([n, h * d], rng: &rng).array }
            func run(packed: Bool) -> [[Float]] {
                let q = Tensor(shape: [n, h * d], values[0], requiresGrad: true), k = Tensor(shape: [n, h * d], values[1], requiresGrad: true)
                let v = Tensor(shape: [n, h * d], values[2], requiresGrad: true)
                let out: Tensor
                if packed {
                    out = Tensor.causalAttention(packed: q, k, v, heads: h, scale: 0.35, batch: b, time: t, toSlots: layout.toSlots,
                                                 queries: layout.queries)
                } else {
                    let slots = { (x: Tensor) in x.gatherRows(layout.toSlots).reshaped([b, t, h, d]) }
                    out = Tensor.causalAttention(tokenMajor: slots(q), slots(k), slots(v), scale: 0.35, queries: layout.queries)
                        .reshaped([b * t, h * d]).gatherRows(fromSlots)
                }
                (out * Tensor(shape: [n, h * d], values[3])).sum().backward()
                return [out.array, q.gradArray, k.gradArray, v.gradArray]
            }
            let packed = run(packed: true), slots = run(packed: false)
            func same(_ x: Float, _ y: Float) -> Bool { NativeKernels.trainingGEMM ? x.bitPattern == y.bitPattern : abs(x - y) <= 1e-6 }
            for (i, name) in ["output", "dq", "dk", "dv"].enumerated() {
                let differing = zip(packed[i], slots[i]).filter { !same($0, $1) }.count
                XCTAssertEqual(differing, 0, "\(name) differs in \(differing) of \(n * h * d) (T \(t))")
                XCTAssertGreaterThan(packed[i].filter { $0 != 0 }.count, n * h * d / 2, "\(name) is mostly nonzero (T \(t))")
            }
        }
    }

    func testGroupRowsReadTheirSharedPromptOnceAndGetTheSameBits() throws {
        try XCTSkipUnless(NativeKernels.enabled, "without the native kernels a row's values may depend on the batch")
        let policy = makePolicy(), v = Self.tiny.vocabSize
        let prompts = [tokens(5, seed: 51), tokens(3, seed: 52)], tp = 5, g = 3
        func padded(_ ps: [[Int32]]) -> [Int32] { ps.flatMap { [Int32](repeating: 0, count: tp - $0.count) + $0 } }
        let starts = prompts.map { tp - $0.count }
        let shared = KVCache(config: Self.tiny, seqs: 2, capacity: 12, keyStart: starts, reserve: 6)
        let own = KVCache(config: Self.tiny, seqs: 6, capacity: 12, keyStart: starts.flatMap { Array(repeating: $0, count: g) })
        let first = policy.step(padded(prompts), tokensPerSeq: tp, cache: shared)
        let firstOwn = policy.step(padded(prompts.flatMap { Array(repeating: $0, count: g) }), tokensPerSeq: tp, cache: own)
        for r in 0..<6 {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: firstOwn.data + r * v, count: v)),
                           Array(UnsafeBufferPointer(start: first.data + (r / g) * v, count: v)), "prompt pass, row \(r)")
        }
        shared.repeatRows(g)
        XCTAssertEqual(shared.prefixRow, [0, 0, 0, 3, 3, 3])
        XCTAssertEqual(shared.prefixLength, tp)
        XCTAssertNil(own.prefixRow)
        var rows = Array(0..<6)  // the sequence each cache row decodes
        for step in 0..<6 {
            if step == 2 {  // group 0 loses its first row (its prefix row), group 1 its second; row 5 moves into row 0
                let order = shared.keep(rows: [1, 2, 3, 5])
                XCTAssertEqual(own.keep(rows: [1, 2, 3, 5]), order)
                rows = order.map { rows[$0] }
                XCTAssertEqual(rows.map { $0 / g }, [1, 0, 0, 1])
                XCTAssertEqual(shared.prefixRow, [0, 1, 1, 0], "each row reads the first of its group still here")
            }
            let next = rows.map { Int32(1 + ($0 * 7 + step * 3) % (v - 1)) }
            let a = policy.step(next, tokensPerSeq: 1, cache: shared), b = policy.step(next, tokensPerSeq: 1, cache: own)
            let differ = zip(a.array, b.array).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differ, 0, "step \(step): \(differ) of \(a.count) logits differ")
        }
    }

    /// Rows that stop leave the sampling batch; the rows still decoding keep their own cache and padding.
    func testRowsThatStopLeaveTheBatchAndTheRestDecodeAsAlone() {
        checkSampledLogprobsMatchFullForward(makePolicy(), stopTokens: [2, 5, 11])
    }

    func testGreedyFollowsTheArgmaxAndStopsAtStopTokens() {
        let policy = makePolicy()
        let prompt = tokens(4, seed: 7)
        var rng = RNG(seed: 1)
        let greedy = Sampler.sample(policy: policy, prompts: [prompt], group: 2,
                                    options: SamplingOptions(maxNewTokens: 6, greedy: true), stopTokens: [], padToken: 0, rng: &rng)
        XCTAssertEqual(greedy[0].tokens, greedy[1].tokens)
        XCTAssertTrue(greedy[0].truncated)
        var seq = prompt
        for _ in 0..<6 {
            let logits = Autograd.noGrad { policy.forward(ids: seq, batch: 1, time: seq.count) }
            let row = Array(logits.array.suffix(Self.tiny.vocabSize))
            seq.append(Int32(row.indices.max { row[$0] < row[$1] }!))
        }
        XCTAssertEqual(greedy[0].tokens, Array(seq.suffix(6)))
        // top-k = 1 and a tiny top-p both reduce sampling to the argmax.
        for opts in [SamplingOptions(topK: 1, maxNewTokens: 6), SamplingOptions(topP: 1e-6, maxNewTokens: 6)] {
            var o = opts
            o.temperature = 1
            let s = Sampler.sample(policy: policy, prompts: [prompt], group: 1, options: o, stopTokens: [], padToken: 0, rng: &rng)
            XCTAssertEqual(s[0].tokens, greedy[0].tokens)
        }
        // Stopping at the third greedy token.
        let stop = greedy[0].tokens[2]
        let firstStop = greedy[0].tokens.firstIndex(of: stop)!
        let stopped = Sampler.sample(policy: policy, prompts: [prompt], group: 1,
                                     options: SamplingOptions(maxNewTokens: 6, greedy: true), stopTokens: [stop], padToken: 0, rng: &rng)
        XCTAssertEqual(stopped[0].tokens, Array(greedy[0].tokens[...firstStop]))
        XCTAssertFalse(stopped[0].truncated)
    }

    func testCheckpointRoundTripIsBitExact() throws {
        let tok = CharTokenizer()
        var cfg = PolicyConfig(vocabSize: tok.vocabSize, dModel: 16, layers: 2, heads: 2, ffDim: 24, maxContext: 32)
        cfg.initStd = 0.3
        for tied in [false, true] {
            cfg.tieEmbeddings = tied
            var rng = RNG(seed: 4)
            let policy = Policy(config: cfg, rng: &rng)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-ckpt-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            try Checkpoint.save(policy: policy, tokenizer: tok, to: dir, metadata: ["step": "3"])
            let (loaded, ltok, meta) = try Checkpoint.load(from: dir)
            XCTAssertEqual(loaded.config, Self.withoutInitStd(cfg))
            XCTAssertEqual(ltok as? CharTokenizer, tok)
            XCTAssertEqual(meta["step"], "3")
            XCTAssertEqual(loaded.namedParameters.map(\.0), policy.namedParameters.map(\.0))
            for ((name, a), (_, b)) in zip(policy.namedParameters, loaded.namedParameters) {
                XCTAssertEqual(a.array.map(\.bitPattern), b.array.map(\.bitPattern), name)
            }
        }
    }

    static func withoutInitStd(_ c: PolicyConfig) -> PolicyConfig {
        var c = c
        c.initStd = 0.02
        return c
    }

    func testLoadingAFolderWithAMissingTensorNamesIt() throws {
        let tok = CharTokenizer()
        let cfg = PolicyConfig(vocabSize: tok.vocabSize, dModel: 8, layers: 1, heads: 2, ffDim: 8, maxContext: 16)
        var rng = RNG(seed: 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Checkpoint.save(policy: Policy(config: cfg, rng: &rng), tokenizer: tok, to: dir)
        let url = dir.appendingPathComponent("model.safetensors")
        var file = try SafeTensorsFile.read(from: url)
        file.tensors["model.layers.0.mlp.up_proj.weight"] = nil
        try file.write(to: url)
        XCTAssertThrowsError(try Checkpoint.load(from: dir)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.0.mlp.up_proj.weight"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.load(from: dir.appendingPathComponent("nope"))) { error in
            XCTAssertTrue("\(error)".contains("not a checkpoint"), "\(error)")
        }
    }
}
