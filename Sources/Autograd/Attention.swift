// Rotary position embedding and causal softmax attention: recorded over whole sequences for
// training, and against a KV cache for decoding.
//
// B batch, H heads, T time, D head size. Scores and weighted values are float32 products whatever
// BLAS.precision says (see MatmulPrecision).

import CKernels
import Foundation

/// Precomputed RoPE angles (Su et al. 2021) in Hugging Face Llama's "rotate_half" layout: dimension
/// i < D/2 pairs with i + D/2, and θ_i = pos · base^(−2i/D).
public final class RoPETable {
    public let headDim: Int
    public let base: Double
    public let maxPositions: Int
    let cos: [Float]  // (maxPositions, D/2)
    let sin: [Float]

    /// `inverseFrequencies` (D/2 values) replaces θ^(-2i/D), for scaled RoPE such as Llama-3's.
    public init(headDim: Int, base: Double = 10_000, maxPositions: Int, inverseFrequencies: [Float]? = nil) {
        precondition(headDim % 2 == 0, "RoPE needs an even head size, got \(headDim)")
        precondition(inverseFrequencies.map { $0.count == headDim / 2 } ?? true, "RoPE needs \(headDim / 2) inverse frequencies")
        self.headDim = headDim
        self.base = base
        self.maxPositions = maxPositions
        let h = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * h), s = c
        for p in 0..<maxPositions {
            for i in 0..<h {
                // As transformers: inv_freq in float32, then the product in float32.
                let invFreq = inverseFrequencies?[i] ?? Float(1.0 / Foundation.pow(base, Double(2 * i) / Double(headDim)))
                let angle = Float(p) * invFreq
                c[p * h + i] = Foundation.cos(angle)
                s[p * h + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }
}

extension Tensor {
    /// Rotates x (B, T, H, D) by the angles of each token's position; `positions` has B·T entries
    /// (so left-padded rows and KV-cache offsets get their true positions).
    /// Fused: a rotation of pairs is one read and one write, where a composition would take six ops.
    public static func rope(_ x: Tensor, positions: [Int32], table: RoPETable) -> Tensor {
        precondition(x.rank == 4 && x.dim(-1) == table.headDim, "rope needs (B, T, H, \(table.headDim)), got \(x.shape)")
        let bt = x.shape[0] * x.shape[1], hd = x.shape[2] * x.shape[3], d = table.headDim, h = d / 2
        precondition(positions.count == bt, "rope needs \(bt) positions, got \(positions.count)")
        let out = Tensor(uninitialized: x.shape)
        let px = x.data, po = out.data, heads = x.shape[2]
        let rotate = { (src: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>, sign: Float, accumulate: Bool) in
            table.cos.withUnsafeBufferPointer { cs in
                table.sin.withUnsafeBufferPointer { sn in
                    Parallel.forRanges(bt, cost: hd * 2) { r in
                        for t in r {
                            let p = Int(positions[t])
                            precondition(p >= 0 && p < table.maxPositions, "position \(p) outside the RoPE table (\(table.maxPositions))")
                            let c = cs.baseAddress! + p * h, s = sn.baseAddress! + p * h
                            Kernels.rope(src + t * hd, into: dst + t * hd, cos: c, sin: s, heads: heads, d: d, sign: sign,
                                         accumulate: accumulate)
                        }
                    }
                }
            }
        }
        rotate(px, po, 1, false)
        if Autograd.needsGrad(out, x) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let (gx, fresh) = x.storage.gradForOverwrite()
                rotate(g, gx, -1, !fresh)  // the transpose of a rotation is the rotation back
            }
        }
        return out
    }

    /// Causal softmax attention: softmax(q·kᵀ/√D + mask)·v for q, k, v (B, H, T, D) → (B, H, T, D).
    /// `keyStart[b]` masks the first keys of batch row b (left padding); query rows before it give 0.
    public static func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyStart: [Int]? = nil) -> Tensor {
        precondition(q.rank == 4 && q.shape == k.shape && k.shape == v.shape, "attention needs equal (B, H, T, D) shapes, got \(q.shape) \(k.shape) \(v.shape)")
        return causalAttention(q, k, v, scale: 1 / Float(q.shape[3]).squareRoot(), keyStart: keyStart)
    }

    /// Causal softmax attention softmax(q·kᵀ·scale + mask)·v for q, k (B, H, T, Dk) and v
    /// (B, H, T, Dv) → (B, H, T, Dv). `keyStart[b]` masks the first keys of row b (left padding);
    /// query rows before it give 0. MLA's values are narrower than its keys (DeepSeek-V3: Dk = 192,
    /// Dv = 128), and its scale is 1/√Dk.
    public static func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, keyStart: [Int]? = nil,
                                       queries: [Range<Int>]? = nil) -> Tensor {
        precondition(q.rank == 4 && q.shape == k.shape && v.rank == 4 && Array(v.shape.prefix(3)) == Array(q.shape.prefix(3)),
                     "attention needs q, k (B, H, T, Dk) and v (B, H, T, Dv), got \(q.shape) \(k.shape) \(v.shape)")
        return causalAttention(q, k, v, dims: (q.shape[0], q.shape[1], q.shape[2], q.shape[3], v.shape[3]), tokenMajor: false,
                               scale: scale, keyStart: keyStart, queries: queries)
    }

    /// `causalAttention` on the projections' own layout: q, k (B, T, H, Dk) and v (B, T, H, Dv) →
    /// (B, T, H, Dv), each head read and written in place by its row stride, so no permute copies
    /// them to (B, H, T, D) and back. The same products on the same values: the same bits.
    ///
    /// `queries[b]`, when given, are the query rows of batch row b whose outputs are read: the others
    /// give 0 and take no gradient, and only these rows' scores, softmax and products run (rows that
    /// share a prefix need its outputs once, `SharedPrefixes.queries`). Read rows get the same bits
    /// as without it: each of their products sums the same terms in the same order, and the
    /// backward's sums over queries still run over every row, the skipped ones adding exact zeros.
    public static func causalAttention(tokenMajor q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, keyStart: [Int]? = nil,
                                       queries: [Range<Int>]? = nil) -> Tensor {
        precondition(q.rank == 4 && q.shape == k.shape && v.rank == 4 && Array(v.shape.prefix(3)) == Array(q.shape.prefix(3)),
                     "attention needs q, k (B, T, H, Dk) and v (B, T, H, Dv), got \(q.shape) \(k.shape) \(v.shape)")
        return causalAttention(q, k, v, dims: (q.shape[0], q.shape[2], q.shape[1], q.shape[3], v.shape[3]), tokenMajor: true,
                               scale: scale, keyStart: keyStart, queries: queries)
    }

    /// The fused causal attention over (b, h, t, dk, dv), with q, k, v and the output either head-major
    /// (B, H, T, D) or token-major (B, T, H, D). Fused so that the (T, T) scores are made once per
    /// head and only the probabilities are saved; heads are independent, so each thread takes whole
    /// (b, h) pairs with single-threaded sgemms (`HeadShape.forward`, `.backward`).
    static func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, dims: (Int, Int, Int, Int, Int), tokenMajor: Bool,
                                scale: Float, keyStart: [Int]?, queries: [Range<Int>]? = nil) -> Tensor {
        let (b, h, t, dk, dv) = dims
        if let keyStart { precondition(keyStart.count == b, "keyStart needs \(b) entries") }
        if let queries { precondition(queries.count == b && queries.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= t },
                                      "queries needs \(b) ranges inside 0..<\(t)") }
        let out = Tensor(uninitialized: v.shape)
        let tt = t * t
        let shape = HeadShape(t: t, dk: dk, dv: dv, scale: scale, training: Autograd.needsGrad(out, q, k, v))
        let saved = shape.savedProbabilities(b * h)
        // Where head (b, h)'s first row starts, and the stride between its rows, for keys (and
        // queries) and for values (and outputs).
        let ldk = tokenMajor ? h * dk : dk, ldv = tokenMajor ? h * dv : dv
        func kOffset(_ bh: Int) -> Int { tokenMajor ? (bh / h) * t * h * dk + (bh % h) * dk : bh * t * dk }
        func vOffset(_ bh: Int) -> Int { tokenMajor ? (bh / h) * t * h * dv + (bh % h) * dv : bh * t * dv }
        Parallel.forRanges(b * h, cost: tt * (dk + dv)) { range in
            let scratch = saved == nil ? UnsafeMutablePointer<Float>.allocate(capacity: tt) : nil
            defer { scratch?.deallocate() }
            for bh in range {
                shape.forward(q: q.data + kOffset(bh), k: k.data + kOffset(bh), ldk: ldk, v: v.data + vOffset(bh),
                              out: out.data + vOffset(bh), ldv: ldv, probs: saved.map { $0.pointer + bh * tt } ?? scratch!,
                              start: keyStart?[bh / h] ?? 0, read: queries?[bh / h] ?? 0..<t, zeroUnread: true)
            }
        }
        if let saved {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gq = q.requiresGrad ? q.storage.gradForOverwrite() : nil
                let gk = k.requiresGrad ? k.storage.gradForOverwrite() : nil
                let gv = v.requiresGrad ? v.storage.gradForOverwrite() : nil
                Parallel.forRanges(b * h, cost: 2 * tt * (dk + dv)) { range in
                    let dp = UnsafeMutablePointer<Float>.allocate(capacity: tt)
                    defer { dp.deallocate() }
                    for bh in range {
                        let ko = kOffset(bh), vo = vOffset(bh)
                        shape.backward(probs: saved.pointer + bh * tt, outGrad: g + vo, q: q.data + ko, k: k.data + ko, ldk: ldk,
                                       v: v.data + vo, ldv: ldv, gq: gq.map { ($0.pointer + ko, $0.fresh) },
                                       gk: gk.map { ($0.pointer + ko, $0.fresh) }, gv: gv.map { ($0.pointer + vo, $0.fresh) },
                                       scratch: dp, read: queries?[bh / h] ?? 0..<t)
                    }
                }
            }
        }
        return out
    }

    /// Causal attention over packed tokens: the rows of a batch whose rows begin alike, each
    /// distinct prefix held once (`SharedPrefixes` in Model). q, k (N, H·Dk) and v (N, H·Dv) hold the
    /// N packed tokens; slot i of batch row r holds packed token `toSlots[r·T + i]`, and the slots
    /// `queries[r]` of row r are the queries computed there (each packed token's in exactly one row,
    /// its first). → (N, H·Dv), each token's output from that row. The same values and gradients,
    /// bit for bit, as gathering q, k and v into the B×T slots, `causalAttention(tokenMajor:queries:)`
    /// and gathering each token's output back: each (row, head) gathers its slots' keys and values
    /// into a scratch that stays in cache and runs the same products on them, and gradients reach
    /// the packed tokens in the order the gathers' backward sums them (rows in order, per head). It
    /// saves writing the slots' copies, their unread outputs and their gradients.
    public static func causalAttention(packed q: Tensor, _ k: Tensor, _ v: Tensor, heads h: Int, scale: Float, batch b: Int,
                                       time t: Int, toSlots: [Int32], queries: [Range<Int>]) -> Tensor {
        let n = q.dim(0), dk = q.dim(1) / h, dv = v.dim(1) / h
        precondition(q.rank == 2 && k.shape == q.shape && v.rank == 2 && v.dim(0) == n && q.dim(1) == h * dk && v.dim(1) == h * dv,
                     "packed attention needs q, k (N, H·Dk) and v (N, H·Dv), got \(q.shape) \(k.shape) \(v.shape) for \(h) heads")
        precondition(toSlots.count == b * t && toSlots.allSatisfy { $0 >= 0 && Int($0) < n }, "toSlots needs \(b * t) tokens inside 0..<\(n)")
        precondition(queries.count == b && queries.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= t },
                     "queries needs \(b) ranges inside 0..<\(t)")
        let out = Tensor(uninitialized: [n, h * dv])
        let tt = t * t, ldo = h * dv
        let shape = HeadShape(t: t, dk: dk, dv: dv, scale: scale, training: Autograd.needsGrad(out, q, k, v))
        let saved = shape.savedProbabilities(b * h)  // rows outside `queries` unwritten
        // Row r's slots of head `head` from a packed (N, H·D) tensor into a (T, D) scratch.
        func gather(_ x: UnsafePointer<Float>, _ d: Int, head: Int, row r: Int, slots: Range<Int>, into s: UnsafeMutablePointer<Float>) {
            for i in slots { (s + i * d).update(from: x + Int(toSlots[r * t + i]) * h * d + head * d, count: d) }
        }
        // ... and back, added to a packed gradient (x + 1·s: the sum's bits).
        func scatter(_ s: UnsafePointer<Float>, _ d: Int, head: Int, row r: Int, slots: Range<Int>, into x: UnsafeMutablePointer<Float>) {
            for i in slots { Kernels.axpy(1, s + i * d, x + Int(toSlots[r * t + i]) * h * d + head * d, d) }
        }
        Parallel.forRanges(b * h, cost: tt * (dk + dv)) { range in
            let qs = UnsafeMutablePointer<Float>.allocate(capacity: t * (2 * dk + 2 * dv) + (saved == nil ? tt : 0))
            defer { qs.deallocate() }
            let ks = qs + t * dk, vs = ks + t * dk, os = vs + t * dv, scratch = os + t * dv
            for bh in range {
                let r = bh / h, head = bh % h, read = queries[r]
                if read.isEmpty { continue }  // an earlier row holds every prefix: nothing of this row is read
                gather(q.data, dk, head: head, row: r, slots: read, into: qs)
                gather(k.data, dk, head: head, row: r, slots: 0..<t, into: ks)
                gather(v.data, dv, head: head, row: r, slots: 0..<t, into: vs)
                shape.forward(q: qs, k: ks, ldk: dk, v: vs, out: os, ldv: dv, probs: saved.map { $0.pointer + bh * tt } ?? scratch,
                              start: 0, read: read, zeroUnread: false)
                for i in read { (out.data + Int(toSlots[r * t + i]) * ldo + head * dv).update(from: os + i * dv, count: dv) }
            }
        }
        if let saved {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                // Packed gradients sum their slots' terms from zero, rows in order (as the gathers'
                // backward does), so each head's rows run in order on one thread; a slot whose term is
                // an exact zero (an unread query's dQ, a row with no query) adds nothing.
                let gq = q.requiresGrad ? q.grad : nil, gk = k.requiresGrad ? k.grad : nil, gv = v.requiresGrad ? v.grad : nil
                Parallel.forRanges(h, cost: b * 2 * tt * (dk + dv)) { heads in
                    let qs = UnsafeMutablePointer<Float>.allocate(capacity: tt + t * (4 * dk + 3 * dv))
                    defer { qs.deallocate() }
                    let ks = qs + t * dk, vs = ks + t * dk, gos = vs + t * dv, dqs = gos + t * dv, dks = dqs + t * dk
                    let dvs = dks + t * dk, dp = dvs + t * dv
                    for head in heads {
                        for r in 0..<b {
                            let read = queries[r]
                            if read.isEmpty { continue }
                            // the unread queries before `read` too where a sum over queries reads them (as zeros' factors)
                            gather(q.data, dk, head: head, row: r, slots: (shape.zeroLeading ? 0 : read.lowerBound)..<read.upperBound, into: qs)
                            gather(k.data, dk, head: head, row: r, slots: 0..<t, into: ks)
                            gather(v.data, dv, head: head, row: r, slots: 0..<t, into: vs)
                            // dO of the read queries; the unread ones before them are summed as zeros where
                            // a sum over queries is longer than one chunk (`HeadShape.summed`)
                            if shape.zeroLeading { gos.update(repeating: 0, count: read.lowerBound * dv) }
                            for i in read { (gos + i * dv).update(from: g + Int(toSlots[r * t + i]) * ldo + head * dv, count: dv) }
                            shape.backward(probs: saved.pointer + (r * h + head) * tt, outGrad: gos, q: qs, k: ks, ldk: dk, v: vs,
                                           ldv: dv, gq: gq.map { _ in (dqs, true) }, gk: gk.map { _ in (dks, true) },
                                           gv: gv.map { _ in (dvs, true) }, scratch: dp, read: read)
                            let slots = 0..<read.upperBound  // keys past the last query take no term
                            if let gq { scatter(dqs, dk, head: head, row: r, slots: read, into: gq) }
                            if let gk { scatter(dks, dk, head: head, row: r, slots: slots, into: gk) }
                            if let gv { scatter(dvs, dv, head: head, row: r, slots: slots, into: gv) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One (row, head) of the fused causal attention, forward and backward, on operands laid out
    /// row after row with strides: what the B×T and the packed entry points share.
    struct HeadShape {
        let t, dk, dv: Int
        let scale: Float
        /// Whether a backward will run (the forward then saves what it reads).
        let training: Bool
        /// Causal blocks: query rows i0..<i1 only meet keys 0..<i1, so each block's products stop
        /// there (at T = 256, 5/8 of the full T×T work). Entries past a block's last key are never
        /// read, and the terms a shorter sum leaves out are exact zeros; values differ from the full
        /// products only in rounding (OpenBLAS's summation order depends on a product's shape).
        let blocks: [(Int, Int)]
        /// The probabilities of `heads` (row, head) pairs, (T, T) each, kept for the backward when
        /// training; nil otherwise, when each thread's forward takes a (T, T) scratch instead.
        func savedProbabilities(_ heads: Int) -> ProbsBuffer? {
            training ? ProbsBuffer(BufferPool.take(heads * t * t), count: heads * t * t) : nil
        }

        /// The K that Ponder's own float32 kernel sums in one chunk (0 under OpenBLAS).
        let oneChunk: Int
        /// Whether unread rows' probabilities and dS are zeroed: only when a sum reads them, which is
        /// before `read`, by a sum longer than one chunk, and only in the backward.
        let zeroLeading: Bool

        init(t: Int, dk: Int, dv: Int, scale: Float, training: Bool) {
            (self.t, self.dk, self.dv, self.scale, self.training) = (t, dk, dv, scale, training)
            blocks = Tensor.causalBlocks(t)
            oneChunk = NativeKernels.trainingGEMM ? ponder_sgemm_chunk_f32() : 0
            zeroLeading = t > oneChunk && training
        }

        /// The queries whose terms dK and dV of keys from k0 on sum: k0..<T, less the unread rows
        /// after `read` (exact zeros at the end of each sum) and, where Ponder's own kernel sums
        /// k0..<T in one chunk, the unread rows before it (exact zeros at the start of one FMA chain).
        func summed(_ k0: Int, _ read: Range<Int>) -> (Int, Int) {
            (t - k0 <= oneChunk ? Swift.max(k0, read.lowerBound) : k0, Swift.max(k0, read.upperBound))
        }

        /// Query rows `read` of one head: probabilities into p (T, T), outputs to out (stride ldv);
        /// q and k have stride ldk, v ldv. Keys before `start` are masked (left padding); a query
        /// before it gives 0. Rows outside `read` give 0 when `zeroUnread` (else are left as they are).
        func forward(q qd: UnsafePointer<Float>, k kd: UnsafePointer<Float>, ldk: Int, v vd: UnsafePointer<Float>,
                     out od: UnsafeMutablePointer<Float>, ldv: Int, probs p: UnsafeMutablePointer<Float>, start: Int,
                     read: Range<Int>, zeroUnread: Bool) {
            for (b0, b1) in blocks {
                let i0 = Swift.min(Swift.max(b0, read.lowerBound), b1), i1 = Swift.max(Swift.min(b1, read.upperBound), i0)
                for i in b0..<b1 where i < i0 || i >= i1 {
                    if zeroLeading && i < i0 { (p + i * t).update(repeating: 0, count: b1) }
                    if zeroUnread { (od + i * ldv).update(repeating: 0, count: dv) }
                }
                guard i0 < i1 else { continue }
                BLAS.sgemm(transA: false, transB: true, m: i1 - i0, n: b1, k: dk, alpha: scale,
                           a: qd + i0 * ldk, lda: ldk, b: kd, ldb: ldk, beta: 0, c: p + i0 * t, ldc: t, precision: .f32)
                for i in i0..<i1 {
                    let row = p + i * t
                    if start > i {
                        row.update(repeating: 0, count: b1)
                        continue
                    }
                    let len = i - start + 1
                    let mx = Kernels.max(row + start, len)
                    let inv = 1 / Kernels.expShifted(row + start, row + start, len, shift: mx)
                    for j in 0..<start { row[j] = 0 }
                    Kernels.scale(row + start, inv, len)
                    for j in (i + 1)..<b1 { row[j] = 0 }
                }
                BLAS.sgemm(transA: false, transB: false, m: i1 - i0, n: dv, k: b1,
                           a: p + i0 * t, lda: t, b: vd, ldb: ldv, beta: 0, c: od + i0 * ldv, ldc: ldv, precision: .f32)
            }
        }

        /// The backward of `forward` for one head: from the saved probabilities p and the output's
        /// gradient dO (stride ldv), dQ, dK (stride ldk) and dV (stride ldv), each written when
        /// `fresh` and added to otherwise; `scratch` holds T×T floats (dP, then dS).
        func backward(probs p: UnsafePointer<Float>, outGrad go: UnsafePointer<Float>, q qd: UnsafePointer<Float>,
                      k kd: UnsafePointer<Float>, ldk: Int, v vd: UnsafePointer<Float>, ldv: Int,
                      gq: (UnsafeMutablePointer<Float>, Bool)?, gk: (UnsafeMutablePointer<Float>, Bool)?,
                      gv: (UnsafeMutablePointer<Float>, Bool)?, scratch dp: UnsafeMutablePointer<Float>, read: Range<Int>) {
            // out += aᵀ · x for a (T, T) over queries × keys and x (T, n), row stride ld for x and
            // out: keys k0..<k1 meet queries k0..<T, of which `summed` gives the terms
            func keyGradient(_ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, n: Int, ld: Int,
                             _ out: UnsafeMutablePointer<Float>, fresh: Bool) {
                for (k0, k1) in blocks {
                    let (i0, i1) = summed(k0, read)
                    guard i0 < i1 else {
                        if fresh { for j in k0..<k1 { (out + j * ld).update(repeating: 0, count: n) } }
                        continue
                    }
                    BLAS.sgemm(transA: true, transB: false, m: k1 - k0, n: n, k: i1 - i0, a: a + i0 * t + k0, lda: t,
                               b: x + i0 * ld, ldb: ld, beta: fresh ? 0 : 1, c: out + k0 * ld, ldc: ld, precision: .f32)
                }
            }
            if let (gv, fresh) = gv { keyGradient(p, go, n: dv, ld: ldv, gv, fresh: fresh) }  // dV += Pᵀ · dO
            guard gq != nil || gk != nil else { return }
            for (b0, b1) in blocks {
                // rows outside `read`: dS = 0, and so dQ = 0
                let i0 = Swift.min(Swift.max(b0, read.lowerBound), b1), i1 = Swift.max(Swift.min(b1, read.upperBound), i0)
                for i in b0..<b1 where i < i0 || i >= i1 {
                    if zeroLeading && i < i0 { (dp + i * t).update(repeating: 0, count: b1) }
                    if let (gq, fresh) = gq, fresh { (gq + i * ldk).update(repeating: 0, count: dk) }
                }
                guard i0 < i1 else { continue }
                // dP = dO · Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                BLAS.sgemm(transA: false, transB: true, m: i1 - i0, n: b1, k: dv,
                           a: go + i0 * ldv, lda: ldv, b: vd, ldb: ldv, beta: 0, c: dp + i0 * t, ldc: t, precision: .f32)
                for i in i0..<i1 {
                    let pr = p + i * t, dr = dp + i * t
                    let dot = Kernels.dot(pr, dr, i + 1)
                    Kernels.softmaxGrad(pr, dr, i + 1, dot: dot, scale: scale)
                    for j in (i + 1)..<b1 { dr[j] = 0 }
                }
                if let (gq, fresh) = gq {  // dQ += dS · K
                    BLAS.sgemm(transA: false, transB: false, m: i1 - i0, n: dk, k: b1,
                               a: dp + i0 * t, lda: t, b: kd, ldb: ldk, beta: fresh ? 0 : 1,
                               c: gq + i0 * ldk, ldc: ldk, precision: .f32)
                }
            }
            if let (gk, fresh) = gk { keyGradient(dp, qd, n: dk, ld: ldk, gk, fresh: fresh) }  // dK += dSᵀ · Q
        }
    }
}

/// One layer's KV cache of S left-padded sequences, as `Tensor.cachedAttention` reads it: keys and
/// values (S, K, capacity, D), `length` slots filled, sequence s's first `keyStart[s]` slots padding.
public struct KVBuffer {
    public let keys, values: UnsafeMutablePointer<Float>
    public let kvHeads, headDim, capacity, length: Int
    public let keyStart: [Int]
    /// Where sequence s reads its slots below `prefixLength` from: sequence prefixRow[s], which holds
    /// the same values there (a group's copies of one prompt), so that a group's rows, attended one
    /// after another, read their prompt's keys and values from memory once between them. Nil: each
    /// sequence reads its own.
    public let prefixRow: [Int]?
    public let prefixLength: Int

    public init(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, kvHeads: Int, headDim: Int,
                capacity: Int, length: Int, keyStart: [Int], prefixRow: [Int]? = nil, prefixLength: Int = 0) {
        precondition(prefixRow.map { $0.count == keyStart.count && $0.allSatisfy { $0 >= 0 && $0 < keyStart.count } } ?? true,
                     "KVBuffer: one prefix row per sequence, each a sequence of the buffer")
        (self.keys, self.values, self.kvHeads, self.headDim) = (keys, values, kvHeads, headDim)
        (self.capacity, self.length, self.keyStart) = (capacity, length, keyStart)
        (self.prefixRow, self.prefixLength) = (prefixRow, prefixLength)
    }
}

extension Tensor {
    /// Causal attention of L new tokens per sequence against a KV cache, for decoding (never
    /// recorded): appends k and v (S·L, K·D) at slots length..<length+L of `cache`, then each query
    /// of q (S·L, H·D) attends over its sequence's slots keyStart...its own, query head h reading kv
    /// head h / (H/K) (grouped-query attention). A query before its sequence's padding ends gives 0.
    /// → (S·L, H·D). The caller advances the cache's length once every layer has appended.
    public static func cachedAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, cache: KVBuffer, heads h: Int, scale: Float) -> Tensor {
        let s = cache.keyStart.count, kvh = cache.kvHeads, d = cache.headDim, cap = cache.capacity, t0 = cache.length
        let qw = h * d, kw = kvh * d, rep = h / kvh, l = q.count / (s * qw)
        precondition(q.count == s * l * qw && k.count == s * l * kw && v.count == k.count && t0 + l <= cap && h % kvh == 0,
                     "cachedAttention: q \(q.shape), k \(k.shape) for \(s) sequences, \(h) heads, cache \(t0) + \(l) of \(cap)")
        let kc = cache.keys, vc = cache.values
        for r in 0..<s {  // append: (S, L, K, D) → slots t0..<t0+L of (S, K, cap, D)
            for i in 0..<l {
                for hh in 0..<kvh {
                    let src = (r * l + i) * kw + hh * d, dst = ((r * kvh + hh) * cap + t0 + i) * d
                    (kc + dst).update(from: k.data + src, count: d)
                    (vc + dst).update(from: v.data + src, count: d)
                }
            }
        }
        let out = Tensor(uninitialized: [s * l, qw])
        let qd = q.data, od = out.data
        // Up to four heads of a sequence at a time: the same slots, independent sums that overlap.
        let groups = (h + 3) / 4
        Parallel.forRanges(s * groups, cost: 4 * l * (t0 + l) * d * 4) { range in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: 4 * (t0 + l))
            // Each group's rows: queries, keys, values (own, then the shared prefix's) and outputs (the
            // kernel's pointer arrays).
            let qs = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: 20), ks = qs + 4, vs = qs + 8
            let pks = qs + 12, pvs = qs + 16
            let os = UnsafeMutablePointer<UnsafeMutablePointer<Float>?>.allocate(capacity: 4)
            defer { p.deallocate(); qs.deallocate(); os.deallocate() }
            for sg in range {
                let r = sg / groups, h0 = (sg % groups) * 4, n = Swift.min(4, h - h0), start = cache.keyStart[r]
                let source = cache.prefixRow?[r] ?? r, split = source == r ? 0 : cache.prefixLength
                for g in 0..<n {
                    let kvIndex = r * kvh + (h0 + g) / rep, sourceIndex = source * kvh + (h0 + g) / rep
                    ks[g] = UnsafePointer(kc + kvIndex * cap * d)
                    vs[g] = UnsafePointer(vc + kvIndex * cap * d)
                    pks[g] = UnsafePointer(kc + sourceIndex * cap * d)
                    pvs[g] = UnsafePointer(vc + sourceIndex * cap * d)
                }
                for i in 0..<l {
                    for g in 0..<n {
                        qs[g] = UnsafePointer(qd + (r * l + i) * qw + (h0 + g) * d)
                        os[g] = od + (r * l + i) * qw + (h0 + g) * d
                    }
                    let end = t0 + i  // causal: keys start...end
                    if start > end {
                        for g in 0..<n { os[g]!.update(repeating: 0, count: d) }
                        continue
                    }
                    Kernels.attendRows(n, q: qs, keys: ks, values: vs, prefixKeys: pks, prefixValues: pvs, split: split,
                                       start: start, end: end, d: d, scale: scale, p: p, pStride: t0 + l, out: os)
                }
            }
        }
        return out
    }
}

extension Tensor {
    /// Query blocks of the fused causal attention: 64 rows each (the last may be shorter).
    static func causalBlocks(_ t: Int) -> [(Int, Int)] {
        stride(from: 0, to: t, by: 64).map { ($0, Swift.min(t, $0 + 64)) }
    }
}

/// Owns the saved attention probabilities until the backward closure that reads them is released.
final class ProbsBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ p: UnsafeMutablePointer<Float>, count: Int) {
        pointer = p
        self.count = count
    }
    deinit { BufferPool.give(pointer, count) }
}
