import Autograd
import XCTest

final class NNTests: XCTestCase {
    func testEmbeddingGatherWithRepeatedIds() {
        let table = param([6, 4], seed: 50)
        let ids: [Int32] = [3, 0, 3, 5, 1]
        GradCheck.check([table]) { Tensor.embedding($0[0], ids: ids) }
        let e = Autograd.noGrad { Tensor.embedding(table, ids: ids) }
        XCTAssertEqual(Array(e.array[0..<4]), Array(table.array[12..<16]))
    }

    func testRMSNorm() {
        let x = param([3, 7], seed: 51), w = param([7], seed: 52, lo: 0.5, hi: 1.5)
        GradCheck.check([x, w]) { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-5) }
        let x3 = param([2, 2, 5], seed: 53), w3 = param([5], seed: 54)
        GradCheck.check([x3, w3]) { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-6) }
        GradCheck.sameAs([x, w], fused: { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-5) }) { t in
            let ms = (t[0] * t[0]).mean(axis: -1, keepDim: true)  // (N, 1)
            return t[0] / ms.shifted(by: 1e-5).sqrt() * t[1]
        }
    }

    func testSwiGLU() {
        let g = param([4, 6], seed: 55, lo: -3, hi: 3), u = param([4, 6], seed: 56)
        GradCheck.check([g, u]) { Tensor.swiglu(gate: $0[0], up: $0[1]) }
        GradCheck.sameAs([g, u], fused: { Tensor.swiglu(gate: $0[0], up: $0[1]) }) { $0[0].silu() * $0[1] }
    }

    func testLogSoftmaxGather() {
        let logits = param([5, 7], seed: 57, lo: -3, hi: 3)
        let targets: [Int32] = [0, 6, 3, -1, 2]
        GradCheck.check([logits]) { Tensor.logSoftmaxGather($0[0], targets: targets) }
        // Unfused: log-softmax by composition, then pick the target with a one-hot mask.
        var onehot = [Float](repeating: 0, count: 35)
        for (i, t) in targets.enumerated() where t >= 0 { onehot[i * 7 + Int(t)] = 1 }
        let hot = Tensor(shape: [5, 7], onehot)
        GradCheck.sameAs([logits], fused: { Tensor.logSoftmaxGather($0[0], targets: targets) }) { t in
            let shiftBy = Autograd.noGrad { t[0].copy() }  // a constant row max keeps exp in range
            var mx = [Float](repeating: 0, count: 5)
            for i in 0..<5 { mx[i] = (0..<7).map { shiftBy.data[i * 7 + $0] }.max()! }
            let z = t[0] - Tensor(shape: [5, 1], mx)
            let logp = z - z.exp().sum(axis: 1, keepDim: true).log()
            return (logp * hot).sum(axis: 1)
        }
        // Ignored targets give exactly 0 and no gradient.
        logits.zeroGrad()
        let lp = Tensor.logSoftmaxGather(logits, targets: targets)
        XCTAssertEqual(lp.data[3], 0)
        lp.sum().backward()
        XCTAssertTrue(logits.gradArray[21..<28].allSatisfy { $0 == 0 })
        // Each valid row's gradient sums to 0 (softmax minus one-hot).
        XCTAssertEqual(logits.gradArray[0..<7].reduce(0, +), 0, accuracy: 1e-6)
    }

    func testEntropyOfUniformAndPeakedRows() {
        let t = Tensor(shape: [2, 4], [0, 0, 0, 0, 50, 0, 0, 0])
        let h = Tensor.softmaxEntropy(t)
        XCTAssertEqual(h[0], Float(log(4.0)), accuracy: 1e-6)
        XCTAssertEqual(h[1], 0, accuracy: 1e-6)
    }

    func testRoPE() {
        let table = RoPETable(headDim: 4, base: 10_000, maxPositions: 16)
        let x = param([2, 3, 2, 4], seed: 58)
        let positions: [Int32] = [0, 1, 2, 5, 6, 7]
        GradCheck.check([x]) { Tensor.rope($0[0], positions: positions, table: table) }
        // Position 0 is the identity; rotation keeps each pair's norm.
        let y = Autograd.noGrad { Tensor.rope(x, positions: positions, table: table) }
        XCTAssertEqual(Array(y.array[0..<8]), Array(x.array[0..<8]))
        let n0 = x.data[8] * x.data[8] + x.data[10] * x.data[10]
        let n1 = y.data[8] * y.data[8] + y.data[10] * y.data[10]
        XCTAssertEqual(n0, n1, accuracy: 1e-5)
        // Unfused composition in rotate_half form: x·cos + rotate_half(x)·sin.
        var cosv = [Float](), sinv = [Float]()
        for p in positions {
            for _ in 0..<2 {
                for i in 0..<4 {
                    let freq = 1 / pow(10_000, Double(2 * (i % 2)) / 4)
                    cosv.append(Float(cos(Double(p) * freq)))
                    sinv.append(Float(sin(Double(p) * freq)))
                }
            }
        }
        let c = Tensor(shape: [2, 3, 2, 4], cosv), s = Tensor(shape: [2, 3, 2, 4], sinv)
        GradCheck.sameAs([x], fused: { Tensor.rope($0[0], positions: positions, table: table) }) { t in
            let x1 = t[0].slice(axis: 3, 0..<2), x2 = t[0].slice(axis: 3, 2..<4)
            return t[0] * c + Tensor.concat([-x2, x1], axis: 3) * s
        }
    }

    /// Attention by composition: scores, an additive mask, softmax by ops, then values.
    func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyStart: [Int]?) -> Tensor {
        let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let scores = Tensor.matmul(q, k, transposeB: true) * (1 / Float(d).squareRoot())
        var allowed = [Float](repeating: 0, count: b * h * t * t)
        for bb in 0..<b {
            for hh in 0..<h {
                for i in 0..<t {
                    for j in 0..<t where j <= i && j >= (keyStart?[bb] ?? 0) {
                        allowed[((bb * h + hh) * t + i) * t + j] = 1
                    }
                }
            }
        }
        let mask = Tensor(shape: [b, h, t, t], allowed)
        let e = Tensor.where_(mask, scores, Tensor.zeros(scores.shape)).exp() * mask
        let denom = e.sum(axis: 3, keepDim: true) + Tensor(shape: [1], [1e-30])
        return Tensor.matmul(e / denom, v)
    }

    func testCausalAttention() {
        let q = param([2, 2, 5, 3], seed: 60), k = param([2, 2, 5, 3], seed: 61), v = param([2, 2, 5, 3], seed: 62)
        GradCheck.check([q, k, v]) { Tensor.causalAttention($0[0], $0[1], $0[2]) }
        GradCheck.sameAs([q, k, v], fused: { Tensor.causalAttention($0[0], $0[1], $0[2]) }) {
            self.referenceAttention($0[0], $0[1], $0[2], keyStart: nil)
        }
        // The first query attends only to itself.
        let out = Autograd.noGrad { Tensor.causalAttention(q, k, v) }
        XCTAssertEqual(Array(out.array[0..<3]), Array(v.array[0..<3]))
    }

    /// Longer than one 64-row causal block (150 = 64 + 64 + 22), with a left pad that ends inside the
    /// second block: values and gradients equal the unfused reference over the whole T×T mask.
    func testCausalAttentionAcrossBlocks() {
        let q = param([2, 2, 150, 8], seed: 66), k = param([2, 2, 150, 8], seed: 67), v = param([2, 2, 150, 8], seed: 68)
        for start in [nil, [70, 0]] {
            GradCheck.sameAs([q, k, v], fused: { Tensor.causalAttention($0[0], $0[1], $0[2], keyStart: start) }) {
                self.referenceAttention($0[0], $0[1], $0[2], keyStart: start)
            }
        }
    }

    /// Heads read in place from (B, T, H, D) give the bits of the permuted (B, H, T, D) form: output
    /// and the three gradients, across causal blocks (T = 150), with left padding, values narrower
    /// than keys (as MLA's), and a gradient already holding something (accumulated, not overwritten).
    func testTokenMajorAttentionEqualsHeadMajorBitForBit() {
        let (b, t, h, dk, dv) = (2, 150, 3, 16, 8)
        let qv = param([b, t, h, dk], seed: 90).array, kv = param([b, t, h, dk], seed: 91).array
        let vv = param([b, t, h, dv], seed: 92).array, w = param([b, t, h, dv], seed: 93)
        let earlier = param([b, t, h, dk], seed: 94).array
        for start in [nil, [70, 3]] {
            func run(tokenMajor: Bool) -> [[Float]] {
                let q = Tensor(shape: [b, t, h, dk], qv, requiresGrad: true), k = Tensor(shape: [b, t, h, dk], kv, requiresGrad: true)
                let v = Tensor(shape: [b, t, h, dv], vv, requiresGrad: true)
                (q * Tensor(shape: [b, t, h, dk], earlier)).sum().backward()  // q's gradient already holds something
                let out = tokenMajor
                    ? Tensor.causalAttention(tokenMajor: q, k, v, scale: 0.3, keyStart: start)
                    : Tensor.causalAttention(q.transposed(1, 2), k.transposed(1, 2), v.transposed(1, 2), scale: 0.3, keyStart: start).transposed(1, 2)
                (out * w).sum().backward()
                return [out.array, q.gradArray, k.gradArray, v.gradArray]
            }
            let a = run(tokenMajor: true), c = run(tokenMajor: false)
            for (i, name) in ["output", "dq", "dk", "dv"].enumerated() {
                let differing = zip(a[i], c[i]).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(name) differs in \(differing) of \(a[i].count), keyStart \(String(describing: start))")
            }
        }
    }

    /// Attention over chosen query rows (`queries`, as rows sharing a prefix use it) gives the read
    /// rows the bits of attention over every row, and q, k, v the same gradient bits when the unread
    /// rows take no gradient (as the shared layout's gather gives them); unread rows give 0. Ranges
    /// start and end inside causal blocks, one row reads nothing, T = 150 (dK and dV sum each key's
    /// queries in one chunk of Ponder's kernel, so the unread rows before `read` are skipped) and T =
    /// 300 (over 256: the first keys' sums span two chunks and run over every row), and q's gradient
    /// already holds something for one pass (accumulated, not overwritten). Bit for bit with Ponder's
    /// own kernels; OpenBLAS sums in an order that depends on a product's shape.
    func testAttentionOverChosenQueriesGivesTheBitsOfEveryQuery() {
        for (t, reads) in [(150, [0..<150, 70..<130, 150..<150]), (300, [0..<300, 100..<290, 290..<290])] {
            let (b, h, d) = (3, 2, 8)
            let qv = param([b, t, h, d], seed: 95).array, kv = param([b, t, h, d], seed: 96).array, vv = param([b, t, h, d], seed: 97).array
            let earlier = param([b, t, h, d], seed: 98).array
            var wv = param([b, t, h, d], seed: 99).array
            for r in 0..<b { for i in 0..<t where !reads[r].contains(i) { for c in 0..<(h * d) { wv[(r * t + i) * h * d + c] = 0 } } }
            for accumulate in [false, true] {
                func run(_ queries: [Range<Int>]?) -> [[Float]] {
                    let q = Tensor(shape: [b, t, h, d], qv, requiresGrad: true), k = Tensor(shape: [b, t, h, d], kv, requiresGrad: true)
                    let v = Tensor(shape: [b, t, h, d], vv, requiresGrad: true)
                    if accumulate { (q * Tensor(shape: [b, t, h, d], earlier)).sum().backward() }
                    let out = Tensor.causalAttention(tokenMajor: q, k, v, scale: 0.35, queries: queries)
                    (out * Tensor(shape: [b, t, h, d], wv)).sum().backward()
                    return [out.array, q.gradArray, k.gradArray, v.gradArray]
                }
                let chosen = run(reads), every = run(nil)
                func same(_ x: Float, _ y: Float) -> Bool { NativeKernels.trainingGEMM ? x.bitPattern == y.bitPattern : abs(x - y) <= 1e-6 }
                var readOut = 0, differing = 0, unreadNonZero = 0
                for r in 0..<b {
                    for i in 0..<t {
                        let row = (r * t + i) * h * d
                        for c in row..<(row + h * d) {
                            if reads[r].contains(i) {
                                readOut += 1
                                if !same(chosen[0][c], every[0][c]) { differing += 1 }
                            } else if chosen[0][c] != 0 { unreadNonZero += 1 }
                        }
                    }
                }
                XCTAssertEqual(readOut, reads.map(\.count).reduce(0, +) * h * d)
                XCTAssertEqual(differing, 0, "read outputs differ (T \(t))")
                XCTAssertEqual(unreadNonZero, 0, "unread rows give 0 (T \(t))")
                for (i, name) in ["dq", "dk", "dv"].enumerated() {
                    let n = zip(chosen[i + 1], every[i + 1]).filter { !same($0, $1) }.count
                    XCTAssertEqual(n, 0, "\(name) differs in \(n) of \(b * t * h * d) (T \(t), accumulate \(accumulate))")
                }
                XCTAssertGreaterThan(chosen[2].filter { $0 != 0 }.count, 0)
            }
        }
    }

    func testCausalAttentionWithLeftPadding() {
        let q = param([2, 1, 6, 4], seed: 63), k = param([2, 1, 6, 4], seed: 64), v = param([2, 1, 6, 4], seed: 65)
        let start = [2, 0]
        GradCheck.check([q, k, v]) { Tensor.causalAttention($0[0], $0[1], $0[2], keyStart: start) }
        GradCheck.sameAs([q, k, v], fused: { Tensor.causalAttention($0[0], $0[1], $0[2], keyStart: start) }) {
            self.referenceAttention($0[0], $0[1], $0[2], keyStart: start)
        }
        // A padded row gives the same output as the unpadded sequence on its own.
        let qs = q.slice(axis: 0, 0..<1).slice(axis: 2, 2..<6), ks = k.slice(axis: 0, 0..<1).slice(axis: 2, 2..<6)
        let vs = v.slice(axis: 0, 0..<1).slice(axis: 2, 2..<6)
        Autograd.clearTape()
        let alone = Autograd.noGrad { Tensor.causalAttention(qs, ks, vs) }
        let padded = Autograd.noGrad { Tensor.causalAttention(q, k, v, keyStart: start) }
        for i in 0..<16 { XCTAssertEqual(padded.data[8 + i], alone.data[i], accuracy: 1e-6) }
        XCTAssertTrue(padded.array[0..<8].allSatisfy { $0 == 0 })
    }
}

/// The LM head applied in chunks of rows (`Tensor.headLogprobs`) against the whole-logits path.
final class HeadLogprobsTests: XCTestCase {
    /// Values, entropies and both gradients equal the unchunked logits' (chunk 3 over 7 computed rows,
    /// so the last chunk is partial); rows without a target give 0 and no gradient.
    func testChunksEqualTheWholeLogitsPath() {
        var rng = RNG(seed: 4)
        let (n, c, v) = (9, 5, 11)
        let hv = (0..<(n * c)).map { _ in Float(rng.uniform() * 2 - 1) }, wv = (0..<(v * c)).map { _ in Float(rng.uniform() * 2 - 1) }
        let targets: [Int32] = [3, -1, 0, 10, 7, -1, 2, 2, 5]
        let g = (0..<n).map { _ in Float(rng.uniform()) }
        func run(chunked: Bool) -> (logp: [Float], ent: [Float], gh: [Float], gw: [Float]) {
            let h = Tensor(shape: [n, c], hv, requiresGrad: true), w = Tensor(shape: [v, c], wv, requiresGrad: true)
            let logp: Tensor, ent: [Float]
            if chunked {
                let r = Tensor.headLogprobs(h, head: w, scale: 0.7, targets: targets, entropy: true, chunk: 3)
                (logp, ent) = (r.logp, r.entropy!)
            } else {
                let logits = Tensor.matmul(h, w, transposeB: true) * 0.7
                ent = Autograd.noGrad { Tensor.softmaxEntropy(logits) }.enumerated().map { targets[$0.offset] < 0 ? 0 : $0.element }
                logp = Tensor.logSoftmaxGather(logits, targets: targets)
            }
            (logp * Tensor(shape: [n], g)).sum().backward()
            return (logp.array, ent, h.gradArray, w.gradArray)
        }
        let a = run(chunked: true), b = run(chunked: false)
        for (x, y) in zip(a.logp, b.logp) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        for (x, y) in zip(a.ent, b.ent) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        for (x, y) in zip(a.gh, b.gh) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        for (x, y) in zip(a.gw, b.gw) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        XCTAssertEqual(a.logp[1], 0)
        // Without the entropy metric the loss is the same bits, and no entropies come back.
        let quiet = Tensor.headLogprobs(Tensor(shape: [n, c], hv), head: Tensor(shape: [v, c], wv), scale: 0.7, targets: targets, chunk: 3)
        XCTAssertEqual(quiet.logp.array.map(\.bitPattern), a.logp.map(\.bitPattern))
        XCTAssertNil(quiet.entropy)
        XCTAssertEqual(Array(a.gh[(1 * c)..<(2 * c)]), [Float](repeating: 0, count: c), "a row without a target gets no gradient")
        GradCheck.check([Tensor(shape: [n, c], hv), Tensor(shape: [v, c], wv)]) {
            Tensor.headLogprobs($0[0], head: $0[1], scale: 0.7, targets: targets, chunk: 4).logp.sum()
        }
    }
}
