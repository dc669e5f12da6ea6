import Autograd
import Foundation
import XCTest

/// Ponder's AVX-512 decoding kernels against OpenBLAS and the portable Swift loops they replace.
final class NativeKernelsTests: XCTestCase {
    private var enabled = NativeKernels.enabled, threads = Parallel.threads

    override func setUp() {
        enabled = NativeKernels.enabled
        threads = Parallel.threads
    }

    override func tearDown() {
        NativeKernels.enabled = enabled
        Parallel.threads = threads
    }

    /// x · wᵀ through a packed weight equals OpenBLAS's product, over row counts that use every
    /// kernel height (8, 4, 2, 1) and more than one 64-row chunk, and column counts that leave
    /// partial panels (masked stores) or a single panel.
    func testPackedMatmulMatchesOpenBLAS() throws {
        try XCTSkipUnless(NativeKernels.enabled, "no avx512f here: PackedMatrix runs OpenBLAS itself")
        var rng = RNG(seed: 7)
        for (m, n, k) in [(1, 5, 3), (3, 31, 17), (7, 33, 64), (15, 64, 1), (64, 100, 96), (70, 257, 40), (130, 32, 512)] {
            let x = Tensor.randn([m, k], rng: &rng), w = Tensor.randn([n, k], rng: &rng)
            let want = Tensor.matmul(x, w, transposeB: true)
            let got = Tensor.matmul(x, packed: PackedMatrix(w))
            XCTAssertEqual(got.shape, [m, n])
            // Rounding bound for a k-term float sum: a few ulps of Σ|x·w| (summation orders differ).
            var worst: Float = 0
            for i in 0..<m {
                for j in 0..<n {
                    var size: Float = 0
                    for t in 0..<k { size += abs(x.data[i * k + t] * w.data[j * k + t]) }
                    worst = max(worst, abs(got.data[i * n + j] - want.data[i * n + j]) / (size * Float.ulpOfOne))
                }
            }
            XCTAssertLessThan(worst, 8, "m=\(m) n=\(n) k=\(k): error in units of Σ|x·w|·ε")
        }
    }

    /// Each packed product is exactly one fused multiply-add chain over k in order, on one thread or
    /// two (weights with a partial last panel and a k that is not a multiple of 16: the packing's
    /// 16 × 16 transposes pad both).
    func testPackedProductIsOneFusedChain() throws {
        try XCTSkipUnless(NativeKernels.enabled, "no avx512f here")
        var rng = RNG(seed: 11)
        for (m, n, k) in [(3, 300, 700), (9, 1000, 77)] {
            let x = Tensor.randn([m, k], rng: &rng), w = Tensor.randn([n, k], rng: &rng)
            var want = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for t in 0..<k { acc = acc.addingProduct(x.data[i * k + t], w.data[j * k + t]) }
                    want[i * n + j] = acc
                }
            }
            for threads in [1, 2] {
                Parallel.threads = threads
                let got = Tensor.matmul(x, packed: PackedMatrix(w, precision: .f32))
                XCTAssertEqual(got.array.map(\.bitPattern), want.map(\.bitPattern), "m=\(m) n=\(n) k=\(k), \(threads) thread(s)")
            }
        }
    }

    /// A row's result does not depend on the other rows in the batch, on the kernel height that
    /// computed it, or on the thread count: the sampler's determinism and "a padded prompt equals
    /// the same prompt alone" rest on this.
    func testPackedRowsAreIndependentOfBatchAndThreads() throws {
        try XCTSkipUnless(NativeKernels.enabled, "no avx512f here")
        var rng = RNG(seed: 3)
        let m = 79, n = 70, k = 48  // rows 64..<79 are one 8-, one 4-, one 2- and one 1-row group
        let x = Tensor.randn([m, k], rng: &rng), w = PackedMatrix(Tensor.randn([n, k], rng: &rng))
        Parallel.threads = 2
        let all = Tensor.matmul(x, packed: w)
        Parallel.threads = 1
        let serial = Tensor.matmul(x, packed: w)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: all.data, count: m * n)),
                       Array(UnsafeBufferPointer(start: serial.data, count: m * n)))
        for row in [9, 70, 73, 77, 78] {  // made by the 8-, 8-, 4-, 2- and 1-row kernels in the full batch
            let alone = Tensor(shape: [1, k], Array(UnsafeBufferPointer(start: x.data + row * k, count: k)))
            let one = Tensor.matmul(alone, packed: w)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: one.data, count: n)),
                           Array(UnsafeBufferPointer(start: all.data + row * n, count: n)), "row \(row)")
        }
    }

    /// A packed matrix is a snapshot, on both paths: changing the tensor afterwards changes nothing.
    func testPackedMatrixIsASnapshot() {
        for native in [true, false] where !native || NativeKernels.supported {
            NativeKernels.enabled = native
            var rng = RNG(seed: 5)
            let x = Tensor.randn([4, 8], rng: &rng), w = Tensor.randn([6, 8], rng: &rng)
            let packed = PackedMatrix(w)
            let before = Array(UnsafeBufferPointer(start: Tensor.matmul(x, packed: packed).data, count: 24))
            w.data.update(repeating: 0, count: 48)
            let after = Array(UnsafeBufferPointer(start: Tensor.matmul(x, packed: packed).data, count: 24))
            XCTAssertEqual(before, after, native ? "packed" : "OpenBLAS fallback")
            XCTAssertNotEqual(before, [Float](repeating: 0, count: 24))
        }
    }

    /// Decoding attention's scores have these bits, which any faster kernel must keep: a key's 16 lanes'
    /// products over d (a multiply, then multiply-adds in order), summed across lanes in
    /// _mm512_reduce_add_ps's pairs (i and i+8, i and i+4, i and i+2, 0 and 1), times the scale; the
    /// scratch then holds exp(score − max).
    func testDecodingScoresSumLanesInTheReductionsPairs() throws {
        try XCTSkipUnless(NativeKernels.supported, "the kernel under test needs avx512f")
        var rng = RNG(seed: 13)
        for (d, start, end) in [(48, 3, 39), (64, 0, 31), (32, 5, 13), (128, 2, 50), (80, 1, 40), (160, 1, 40)] {
            let keys = Tensor.randn([end + 1, d], rng: &rng), values = Tensor.randn([end + 1, d], rng: &rng), q = Tensor.randn([d], rng: &rng)
            let scale = 1 / Float(d).squareRoot()
            let p = UnsafeMutablePointer<Float>.allocate(capacity: end + 1), out = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { p.deallocate(); out.deallocate() }
            Kernels.attendRow(q: q.data, keys: keys.data, values: values.data, start: start, end: end, d: d, scale: scale, p: p, out: out)
            let scores: [Float] = (start...end).map { j in
                var lane = (0..<16).map { q.data[$0] * keys.data[j * d + $0] }
                for c in stride(from: 16, to: d, by: 16) { for l in 0..<16 { lane[l] = lane[l].addingProduct(q.data[c + l], keys.data[j * d + c + l]) } }
                for half in [8, 4, 2, 1] { for l in 0..<half { lane[l] += lane[l + half] } }
                return lane[0] * scale
            }
            let mx = scores.max()!
            let differing = zip(start...end, scores).filter { p[$0].bitPattern != Foundation.exp($1 - mx).bitPattern }.count
            XCTAssertEqual(differing, 0, "d=\(d) keys \(start)...\(end): \(differing) of \(end - start + 1) scores differ")
        }
    }

    /// Up to four heads' rows at once (`attendRows`, as cached decoding runs them) give each row's
    /// `attendRow` result bit for bit, for head sizes the kernel specialises (multiples of 16 to 128) and
    /// others, with two rows sharing one kv head's keys and values (grouped-query attention).
    func testAttendRowsEqualsOneRowAtATimeBitForBit() throws {
        try XCTSkipUnless(NativeKernels.supported, "the kernel under test needs avx512f")
        var rng = RNG(seed: 12)
        for (d, start, end) in [(32, 0, 40), (64, 3, 99), (128, 1, 17), (48, 5, 20), (16, 0, 0), (96, 2, 66), (160, 4, 37)] {
            let keys = (0..<3).map { _ in Tensor.randn([end + 9, d], rng: &rng) }, values = (0..<3).map { _ in Tensor.randn([end + 9, d], rng: &rng) }
            let kv = [0, 1, 1, 2]  // rows 1 and 2 share a kv head
            let q = (0..<4).map { _ in Tensor.randn([d], rng: &rng) }
            let scale = 1 / Float(d).squareRoot(), stride = end + 1
            let p = UnsafeMutablePointer<Float>.allocate(capacity: 4 * stride)
            defer { p.deallocate() }
            let alone: [[Float]] = (0..<4).map { h in
                [Float](unsafeUninitializedCapacity: d) { buf, count in
                    Kernels.attendRow(q: q[h].data, keys: keys[kv[h]].data, values: values[kv[h]].data, start: start, end: end,
                                      d: d, scale: scale, p: p, out: buf.baseAddress!)
                    count = d
                }
            }
            for n in 1...4 {
                let outs = (0..<n).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: d) }
                defer { outs.forEach { $0.deallocate() } }
                let qs: [UnsafePointer<Float>?] = (0..<n).map { UnsafePointer(q[$0].data) }
                let ks: [UnsafePointer<Float>?] = (0..<n).map { UnsafePointer(keys[kv[$0]].data) }
                let vs: [UnsafePointer<Float>?] = (0..<n).map { UnsafePointer(values[kv[$0]].data) }
                let os: [UnsafeMutablePointer<Float>?] = outs
                Kernels.attendRows(n, q: qs, keys: ks, values: vs, start: start, end: end, d: d, scale: scale, p: p, pStride: stride, out: os)
                for h in 0..<n {
                    let differing = zip(UnsafeBufferPointer(start: outs[h], count: d), alone[h]).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(differing, 0, "d=\(d) keys \(start)...\(end), \(n) rows: row \(h) differs in \(differing) of \(d) values")
                }
            }
        }
    }

    /// Slots below `split` read from the prefix rows (a group's shared prompt) give, bit for bit, the
    /// result of one buffer holding the prefix's slots there and the row's own above, on both paths and
    /// for one row or four at once; a split at or below `start` reads no prefix at all.
    func testAttendRowsReadSlotsBelowTheSplitFromThePrefix() {
        var rng = RNG(seed: 13)
        for native in [true, false] where !native || NativeKernels.supported {
            NativeKernels.enabled = native
            for (d, start, end, split) in [(64, 2, 40, 17), (32, 0, 9, 10), (48, 3, 20, 4), (64, 5, 30, 5), (16, 6, 12, 0)] {
                let slots = end + 9
                let own = (0..<2).map { _ in Tensor.randn([slots, d], rng: &rng) }, prefix = (0..<2).map { _ in Tensor.randn([slots, d], rng: &rng) }
                // keys and values alike: row h's own slots, its prefix's below the split
                let stitched = (0..<2).map { i in
                    Tensor(shape: [slots, d], Array(UnsafeBufferPointer(start: prefix[i].data, count: split * d))
                        + Array(UnsafeBufferPointer(start: own[i].data + split * d, count: (slots - split) * d)))
                }
                let q = (0..<4).map { _ in Tensor.randn([d], rng: &rng) }, scale = 1 / Float(d).squareRoot(), stride = end + 1
                let p = UnsafeMutablePointer<Float>.allocate(capacity: 4 * stride)
                defer { p.deallocate() }
                let want: [[Float]] = (0..<4).map { h in
                    [Float](unsafeUninitializedCapacity: d) { buf, count in
                        Kernels.attendRow(q: q[h].data, keys: stitched[0].data, values: stitched[1].data, start: start, end: end,
                                          d: d, scale: scale, p: p, out: buf.baseAddress!)
                        count = d
                    }
                }
                let outs = (0..<4).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: d) }
                defer { outs.forEach { $0.deallocate() } }
                let qs: [UnsafePointer<Float>?] = q.map { UnsafePointer($0.data) }
                let ks = [UnsafePointer<Float>?](repeating: UnsafePointer(own[0].data), count: 4)
                let vs = [UnsafePointer<Float>?](repeating: UnsafePointer(own[1].data), count: 4)
                let pks = [UnsafePointer<Float>?](repeating: UnsafePointer(prefix[0].data), count: 4)
                let pvs = [UnsafePointer<Float>?](repeating: UnsafePointer(prefix[1].data), count: 4)
                let os: [UnsafeMutablePointer<Float>?] = outs
                for n in [1, 4] {
                    Kernels.attendRows(n, q: qs, keys: ks, values: vs, prefixKeys: pks, prefixValues: pvs, split: split,
                                       start: start, end: end, d: d, scale: scale, p: p, pStride: stride, out: os)
                    for h in 0..<n {
                        let differing = zip(UnsafeBufferPointer(start: outs[h], count: d), want[h]).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "native \(native) d=\(d) keys \(start)...\(end) split \(split), \(n) rows: row \(h) differs in \(differing) of \(d)")
                    }
                }
            }
        }
    }

    /// One decoding-attention row (AVX-512, and the Swift loop for head sizes that are not a
    /// multiple of 16 or when the kernels are off) equals softmax(scale·q·Kᵀ)·V computed in Double.
    func testAttendRowMatchesReference() {
        var rng = RNG(seed: 11)
        for native in [true, false] where !native || NativeKernels.supported {
            NativeKernels.enabled = native
            for (d, start, end) in [(64, 0, 0), (64, 3, 40), (32, 0, 99), (48, 5, 20), (16, 7, 7), (128, 2, 30), (96, 1, 17)] {
                let keys = Tensor.randn([end + 9, d], rng: &rng), values = Tensor.randn([end + 9, d], rng: &rng)
                let q = Tensor.randn([d], rng: &rng)
                let scale = 1 / Float(d).squareRoot()
                let p = UnsafeMutablePointer<Float>.allocate(capacity: end + 1)
                defer { p.deallocate() }
                let out = [Float](unsafeUninitializedCapacity: d) { buf, count in
                    Kernels.attendRow(q: q.data, keys: keys.data, values: values.data, start: start, end: end,
                                      d: d, scale: scale, p: p, out: buf.baseAddress!)
                    count = d
                }
                var scores = (start...end).map { j in
                    Double(scale) * (0..<d).reduce(0.0) { $0 + Double(q.data[$1]) * Double(keys.data[j * d + $1]) }
                }
                let mx = scores.max()!
                scores = scores.map { Foundation.exp($0 - mx) }
                let total = scores.reduce(0, +)
                for c in 0..<d {
                    let want = zip(start...end, scores).reduce(0.0) { $0 + $1.1 / total * Double(values.data[$1.0 * d + c]) }
                    XCTAssertEqual(Double(out[c]), want, accuracy: 1e-5, "native \(native) d=\(d) keys \(start)...\(end) col \(c)")
                }
            }
        }
    }

    /// SwiGLU's value and gradients for an element do not depend on where a parallel range starts or
    /// ends (the elements past the last whole vector take the body's formula, not libm's): otherwise
    /// results would change with the thread count, and a row's values with the rows beside it.
    func testSwiGLUElementsDoNotDependOnTheirRange() {
        var rng = RNG(seed: 12)
        let n = 53
        let g = Tensor.randn([n], std: 3, rng: &rng).array, u = Tensor.randn([n], rng: &rng).array
        let dy = Tensor.randn([n], rng: &rng).array, old = Tensor.randn([n], rng: &rng).array
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 3 * n)
        defer { y.deallocate() }
        let dg = y + n, du = y + 2 * n
        func run(_ cuts: [Int], overwrite: Bool) -> [UInt32] {
            dg.update(from: old, count: n)
            du.update(from: old, count: n)
            for (lo, hi) in zip([0] + cuts, cuts + [n]) {
                Kernels.swiglu(g, u, y, lo..<hi)
                Kernels.swigluBackward(g, u, dy, dg, du, lo..<hi, overwriteGate: overwrite, overwriteUp: overwrite)
            }
            return (0..<(3 * n)).map { y[$0].bitPattern }
        }
        for native in [true, false] {
            NativeKernels.enabled = native && enabled
            for overwrite in [false, true] {
                let whole = run([], overwrite: overwrite)
                for cuts in [[1], [7], [17, 30], [26, 27, 40]] {
                    XCTAssertEqual(run(cuts, overwrite: overwrite), whole, "native \(native), overwrite \(overwrite), cuts \(cuts)")
                }
            }
        }
    }

    /// The AVX-512 bodies of dot, axpy, exp, max, SwiGLU, RoPE, RMSNorm, AdamW and attention's softmax rows (vector.c) give the Swift loops' bits: values across
    /// exp's clamps and its range (−100 … 100, ±0, a NaN), lengths with and without a tail, and the
    /// backward's four overwrite/accumulate cases. A lane computed another way (a fused multiply-add, another
    /// sign flip or clamp) would differ in some of these.
    func testVectorKernelsEqualSwiftLoopsBitForBit() throws {
        try XCTSkipUnless(NativeKernels.enabled, "no avx512f here: the Swift loops run anyway")
        var rng = RNG(seed: 11)
        func values(_ n: Int) -> [Float] {
            var v = Tensor.randn([n], std: 30, rng: &rng).array
            let special: [Float] = [0, -0, -100, 100, -87.3, 88.7, -87.4, 88.8, 1e-8, -1e-8, .nan, 0.5]
            for (j, x) in special.enumerated() where j < n { v[j] = x }
            return v
        }
        func bits(_ p: UnsafePointer<Float>, _ n: Int) -> [UInt32] { (0..<n).map { p[$0].bitPattern } }
        func run(_ native: Bool, _ body: () -> [UInt32]) -> [UInt32] {
            NativeKernels.enabled = native
            return body()
        }
        for n in [1, 15, 16, 17, 48, 77, 130] {
            let g = values(n), u = values(n), dy = values(n), old = values(n)
            let y = UnsafeMutablePointer<Float>.allocate(capacity: 2 * n)
            defer { y.deallocate() }
            let forward = { (native: Bool) in run(native) {
                Kernels.swiglu(g, u, y, 0..<n)
                return bits(y, n)
            } }
            XCTAssertEqual(forward(true), forward(false), "swiglu n=\(n)")
            for (overwriteGate, overwriteUp) in [(false, false), (true, true), (true, false), (false, true)] {
                let backward = { (native: Bool) in run(native) {
                    y.update(from: old, count: n)
                    (y + n).update(from: old.reversed(), count: n)
                    Kernels.swigluBackward(g, u, dy, y, y + n, 0..<n, overwriteGate: overwriteGate, overwriteUp: overwriteUp)
                    return bits(y, 2 * n)
                } }
                XCTAssertEqual(backward(true), backward(false), "swigluBackward n=\(n) \(overwriteGate) \(overwriteUp)")
            }
            let finite = g.map { $0.isNaN ? 1 : $0 }
            let expShifted = { (native: Bool) in run(native) {
                let sum = Kernels.expShifted(finite, y, n, shift: 3.5)
                return bits(y, n) + [sum.bitPattern, Kernels.max(finite, n).bitPattern]
            } }
            XCTAssertEqual(expShifted(true), expShifted(false), "expShifted and max n=\(n)")
            let dot = { (native: Bool) in run(native) { [Kernels.dot(finite, u.map { $0.isNaN ? 2 : $0 }, n).bitPattern] } }
            XCTAssertEqual(dot(true), dot(false), "dot n=\(n)")
            let axpy = { (native: Bool) in run(native) {
                Kernels.axpy(-0.37, g, u, into: y, n)
                return bits(y, n)
            } }
            XCTAssertEqual(axpy(true), axpy(false), "axpy n=\(n)")
            let adamW = { (native: Bool) in run(native) {
                let w = UnsafeMutablePointer<Float>.allocate(capacity: 3 * n)
                defer { w.deallocate() }
                w.update(from: finite, count: n)
                (w + n).update(from: u.map { $0.isNaN ? 0.1 : $0 / 30 }, count: n)
                (w + 2 * n).update(from: old.map { $0.isNaN ? 0.2 : abs($0) / 30 }, count: n)
                Kernels.adamW(w, dy.map { $0.isNaN ? -1 : $0 / 30 }, w + n, w + 2 * n, 0..<n, b1: 0.9, b2: 0.999,
                              decay: 0.99985, stepSize: 1.7e-3, c2s: 0.0447, eps: 1e-8)
                return bits(w, 3 * n)
            } }
            XCTAssertEqual(adamW(true), adamW(false), "adamW n=\(n)")
        }
        // RoPE (half sizes 4, 16, 24, 32: masked and whole vectors) and RMSNorm, forward and backward.
        for d in [8, 32, 48, 64] {
            let table = RoPETable(headDim: d, maxPositions: 40)
            let x = Tensor.randn([2, 5, 3, d], std: 3, rng: &rng, requiresGrad: true)
            let w = Tensor.randn([d], rng: &rng, requiresGrad: true)
            let positions = (0..<10).map { Int32($0 * 3 + 1) }
            let both = { (native: Bool) in run(native) {
                x.zeroGrad()
                w.zeroGrad()
                let r = Tensor.rope(x, positions: positions, table: table)
                let y = Tensor.rmsNorm(r.reshaped([30, d]), weight: w, eps: 1e-5)
                ((y * y).sum() + (r * r).sum()).backward()
                return (y.array + x.gradArray + w.gradArray).map(\.bitPattern)
            } }
            XCTAssertEqual(both(true), both(false), "rope and rmsNorm d=\(d)")
            // Causal attention's softmax rows (max, exp, normalisation) and their backward, with left padding.
            let q = Tensor.randn([2, 2, 37, d], rng: &rng, requiresGrad: true)
            let k = Tensor.randn([2, 2, 37, d], rng: &rng, requiresGrad: true)
            let v = Tensor.randn([2, 2, 37, d], rng: &rng, requiresGrad: true)
            let attention = { (native: Bool) in run(native) {
                for t in [q, k, v] { t.zeroGrad() }
                let o = Tensor.causalAttention(q, k, v, keyStart: [0, 5])
                (o * o).sum().backward()
                return (o.array + q.gradArray + k.gradArray + v.gradArray).map(\.bitPattern)
            } }
            XCTAssertEqual(attention(true), attention(false), "causal attention d=\(d)")
        }
    }
}
