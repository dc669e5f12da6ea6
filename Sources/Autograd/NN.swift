// Fused neural-network ops. Each is fused for a stated reason; each has a test against its unfused
// composition.
//
// Dimensions: N rows (tokens), C channels, V vocabulary, B batch, H heads, T time, D head size.

import Foundation

extension Tensor {
    // MARK: - Embedding

    /// Rows of `table` (V, C) picked by `ids` (any count N) → (N, C), reshaped to `shape` + [C] when given.
    /// Backward scatter-adds into the picked rows.
    public static func embedding(_ table: Tensor, ids: [Int32]) -> Tensor {
        precondition(table.rank == 2, "embedding table must be (V, C), got \(table.shape)")
        let v = table.shape[0], c = table.shape[1], n = ids.count
        let out = Tensor(uninitialized: [n, c])
        let pt = table.data, po = out.data
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < v, "token id \(id) out of range 0..<\(v)")
            (po + i * c).update(from: pt + Int(id) * c, count: c)
        }
        if Autograd.needsGrad(out, table) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gt = table.grad
                for (i, id) in ids.enumerated() {
                    let dst = gt + Int(id) * c, src = g + i * c
                    for j in 0..<c { dst[j] += src[j] }
                }
            }
        }
        return out
    }

    // MARK: - RMSNorm

    /// y = x / sqrt(mean(x²) + eps) · w over the last dimension; x (…, C), w (C).
    /// Fused: one pass per row, and backward needs only the saved `rstd` (one float per row).
    public static func rmsNorm(_ x: Tensor, weight w: Tensor, eps: Float) -> Tensor {
        let c = x.dim(-1), rows = x.count / c
        precondition(w.count == c, "rmsNorm weight has \(w.count) values for \(c) channels")
        let out = Tensor(uninitialized: x.shape)
        var rstd = [Float](repeating: 0, count: rows)
        let px = x.data, pw = w.data, py = out.data
        rstd.withUnsafeMutableBufferPointer { rs in
            Parallel.forRanges(rows, cost: c * 3) { r in
                for i in r {
                    let xi = px + i * c, yi = py + i * c
                    let s = 1 / (Kernels.dot(xi, xi, c) / Float(c) + eps).squareRoot()
                    rs[i] = s
                    Kernels.scaleMul(xi, s, pw, into: yi, c)
                }
            }
        }
        if Autograd.needsGrad(out, x, w) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                rstd.withUnsafeBufferPointer { rs in
                    if x.requiresGrad {
                        // dx = rstd · (g·w − x · rstd² · mean(g·w·x))
                        let (gx, fresh) = x.storage.gradForOverwrite()
                        Parallel.forRanges(rows, cost: c * 4) { r in
                            let gw = UnsafeMutablePointer<Float>.allocate(capacity: c)  // g·w for the row
                            defer { gw.deallocate() }
                            for i in r {
                                let xi = px + i * c, dxi = gx + i * c, s = rs[i]
                                Kernels.mul(g + i * c, pw, into: gw, c)
                                let k = s * s * s * Kernels.dot(gw, xi, c) / Float(c)
                                Kernels.rmsNormDx(s, gw, k, xi, into: dxi, c, overwrite: fresh)
                            }
                        }
                    }
                    if w.requiresGrad {
                        // dw = Σ_rows g · x · rstd, summed in fixed chunks (thread-count independent).
                        let chunks = Swift.max(1, Swift.min(16, rows / 64))
                        var partial = [Float](repeating: 0, count: chunks * c)
                        partial.withUnsafeMutableBufferPointer { part in
                            Parallel.forFixedChunks(rows, chunks: chunks, cost: c * 2) { ch, r in
                                let acc = part.baseAddress! + ch * c
                                for i in r {
                                    Kernels.rmsNormDw(acc, g + i * c, px + i * c, rs[i], c)
                                }
                            }
                        }
                        let gw = w.grad
                        for ch in 0..<chunks { for j in 0..<c { gw[j] += partial[ch * c + j] } }
                    }
                }
            }
        }
        return out
    }

    // MARK: - SwiGLU

    /// silu(gate) ⊙ up (Shazeer 2020). Fused so the MLP's widest activation is made once, not thrice.
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu needs equal shapes, got \(gate.shape) and \(up.shape)")
        let out = Tensor(uninitialized: gate.shape)
        let pg = gate.data, pu = up.data, po = out.data, n = out.count
        Parallel.forRanges(n, cost: 8) { r in Kernels.swiglu(pg, pu, po, r) }
        if Autograd.needsGrad(out, gate, up) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gg = gate.requiresGrad ? gate.storage.gradForOverwrite() : nil
                let gu = up.requiresGrad ? up.storage.gradForOverwrite() : nil
                Parallel.forRanges(n, cost: 10) { r in
                    Kernels.swigluBackward(pg, pu, g, gg?.pointer, gu?.pointer, r,
                                           overwriteGate: gg?.fresh ?? false, overwriteUp: gu?.fresh ?? false)
                }
            }
        }
        return out
    }

    // MARK: - Log-softmax with target gather

    /// log softmax(logits)[target] per row: logits (N, V), targets N ids → (N).
    /// A target < 0 is ignored (its output is 0 and gets no gradient).
    /// Fused: the policy-gradient loss needs one logprob per token, and the (N, V) log-softmax
    /// would be written and read back for nothing. Saves the row's log-sum-exp only.
    public static func logSoftmaxGather(_ logits: Tensor, targets: [Int32]) -> Tensor {
        let v = logits.dim(-1), n = logits.count / v
        precondition(targets.count == n, "\(targets.count) targets for \(n) rows")
        let out = Tensor(uninitialized: [n])
        var lse = [Float](repeating: 0, count: n)
        let pl = logits.data, po = out.data
        lse.withUnsafeMutableBufferPointer { ls in
            targets.withUnsafeBufferPointer { tg in
                Parallel.forRanges(n, cost: v * 3) { r in
                    for i in r {
                        let row = pl + i * v
                        var mx = -Float.infinity
                        for j in 0..<v { mx = Swift.max(mx, row[j]) }
                        var s: Float = 0
                        for j in 0..<v { s += Foundation.exp(row[j] - mx) }
                        let l = mx + Foundation.log(s)
                        ls[i] = l
                        let t = Int(tg[i])
                        precondition(t < v, "target \(t) out of range 0..<\(v)")
                        po[i] = t >= 0 ? row[t] - l : 0
                    }
                }
            }
        }
        if Autograd.needsGrad(out, logits) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gl = logits.grad
                lse.withUnsafeBufferPointer { ls in
                    targets.withUnsafeBufferPointer { tg in
                        Parallel.forRanges(n, cost: v * 3) { r in
                            for i in r {
                                let t = Int(tg[i])
                                if t < 0 { continue }
                                let row = pl + i * v, grow = gl + i * v, gi = g[i], l = ls[i]
                                for j in 0..<v { grow[j] -= gi * Foundation.exp(row[j] - l) }
                                grow[t] += gi
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// log softmax(scale · h·Wᵀ)[target] per row, for hidden states h (N, C) and an LM head W (V, C),
    /// without ever holding the (N, V) logits: rows go through in chunks of `chunk`, each chunk's logits
    /// made, used and dropped, in the forward and again in the backward (which recomputes them), so a
    /// 150k-token vocabulary costs `chunk` rows of logits, not N. Rows whose target is < 0 (prompt
    /// positions) give 0 and are never computed. With `entropy`, also each computed row's entropy of
    /// softmax(scale · logits) (a metric, off the tape; 0 for skipped rows). The products run in
    /// `BLAS.precision`, as every linear layer.
    /// Equal to `logSoftmaxGather(matmul(h, W, transposeB: true) * scale, targets)` on the rows it computes.
    /// Long on purpose: the chunked forward and its backward, which recomputes the same chunks, sit side by side.
    public static func headLogprobs(_ h: Tensor, head w: Tensor, scale: Float = 1, targets: [Int32], entropy: Bool = false,
                                    chunk: Int = 256) -> (logp: Tensor, entropy: [Float]?) {
        let c = h.dim(-1), n = h.count / c, v = w.dim(0)
        precondition(w.rank == 2 && w.dim(1) == c && targets.count == n, "headLogprobs: h \(h.shape), head \(w.shape), \(targets.count) targets")
        let rows = targets.indices.filter { targets[$0] >= 0 }
        let out = Tensor(shape: [n], repeating: 0)
        var lse = [Float](repeating: 0, count: n), ent = [Float](repeating: 0, count: entropy ? n : 0)
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * c), zs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * v)
        defer { xs.deallocate(); zs.deallocate() }
        /// The scaled logits of `chunk` rows into zs (their hidden states gathered into xs), forward and backward alike.
        func logits(_ chunk: ArraySlice<Int>, xs: UnsafeMutablePointer<Float>, zs: UnsafeMutablePointer<Float>) {
            for (k, r) in chunk.enumerated() { (xs + k * c).update(from: h.data + r * c, count: c) }
            BLAS.gemm(transA: false, transB: true, m: chunk.count, n: v, k: c, alpha: scale, a: xs, lda: c, b: w.data, ldb: c,
                      beta: 0, c: zs, ldc: v)
        }
        for lo in stride(from: 0, to: rows.count, by: chunk) {
            let hi = Swift.min(rows.count, lo + chunk)
            logits(rows[lo..<hi], xs: xs, zs: zs)
            lse.withUnsafeMutableBufferPointer { ls in
                ent.withUnsafeMutableBufferPointer { es in
                    Parallel.forRanges(hi - lo, cost: v * 4) { range in
                        for k in range {
                            let i = rows[lo + k], z = zs + k * v
                            if entropy { (ls[i], es[i]) = Self.logSumExpAndEntropy(z, v) } else { ls[i] = Self.logSumExp(z, v) }
                            precondition(Int(targets[i]) < v, "target \(targets[i]) out of range 0..<\(v)")
                            out.data[i] = z[Int(targets[i])] - ls[i]
                        }
                    }
                }
            }
        }
        if Autograd.needsGrad(out, h, w) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let xs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * c), zs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * v)
                let dx = UnsafeMutablePointer<Float>.allocate(capacity: chunk * c)
                defer { xs.deallocate(); zs.deallocate(); dx.deallocate() }
                for lo in stride(from: 0, to: rows.count, by: chunk) {
                    let hi = Swift.min(rows.count, lo + chunk), m = hi - lo
                    logits(rows[lo..<hi], xs: xs, zs: zs)
                    // d logp_i / d(h·Wᵀ)_ij = g_i · scale · (δ_j,t − softmax_j), written over the logits
                    lse.withUnsafeBufferPointer { ls in
                        Parallel.forRanges(m, cost: v * 2) { range in
                            for k in range {
                                let i = rows[lo + k], z = zs + k * v, gi = g[i] * scale, l = ls[i]
                                for j in 0..<v { z[j] = -gi * Foundation.exp(z[j] - l) }
                                z[Int(targets[i])] += gi
                            }
                        }
                    }
                    if h.requiresGrad {  // dh rows += dZ · W
                        BLAS.gemm(transA: false, transB: false, m: m, n: c, k: v, a: zs, lda: v, b: w.data, ldb: c, beta: 0, c: dx, ldc: c)
                        let gh = h.grad
                        for (k, r) in rows[lo..<hi].enumerated() { for q in 0..<c { gh[r * c + q] += dx[k * c + q] } }
                    }
                    if w.requiresGrad {  // dW += dZᵀ · h rows
                        BLAS.gemm(transA: true, transB: false, m: v, n: c, k: m, a: zs, lda: v, b: xs, ldb: c, beta: 1, c: w.grad, ldc: c)
                    }
                }
            }
        }
        return (out, entropy ? ent : nil)
    }

    /// Entropy of softmax(logits) per row, (N, V) → (N). A metric: not recorded.
    public static func softmaxEntropy(_ logits: Tensor) -> [Float] {
        let v = logits.dim(-1), n = logits.count / v, pl = logits.data
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { po in
            Parallel.forRanges(n, cost: v * 4) { r in
                for i in r { po[i] = Self.logSumExpAndEntropy(pl + i * v, v).entropy }
            }
        }
        return out
    }

    /// log Σ exp(z) over one row of v logits (max-shifted, so no overflow): `logSumExpAndEntropy`
    /// without the entropy's sum, for the loss when the metric is not asked for. The same sum in the
    /// same order, so both give the same bits.
    @inline(__always)
    static func logSumExp(_ z: UnsafeMutablePointer<Float>, _ v: Int) -> Float {
        var mx = -Float.infinity
        for j in 0..<v { mx = Swift.max(mx, z[j]) }
        var sum: Float = 0
        for j in 0..<v { sum += Foundation.exp(z[j] - mx) }
        return mx + Foundation.log(sum)
    }

    /// log Σ exp(z) and the entropy of softmax(z) for one row of v logits (max-shifted, so no overflow).
    @inline(__always)
    static func logSumExpAndEntropy(_ z: UnsafeMutablePointer<Float>, _ v: Int) -> (lse: Float, entropy: Float) {
        var mx = -Float.infinity
        for j in 0..<v { mx = Swift.max(mx, z[j]) }
        var sum: Float = 0, sx: Float = 0
        for j in 0..<v {
            let e = Foundation.exp(z[j] - mx)
            sum += e
            sx += e * (z[j] - mx)
        }
        return (mx + Foundation.log(sum), Foundation.log(sum) - sx / sum)
    }
}
