// Ops for mixture-of-experts routing (Shazeer et al. 2017; DeepSeek-V3, Liu et al. 2024) and for
// attention whose values are narrower than its keys (multi-head latent attention, DeepSeek-V2).
//
// N tokens, E experts, k experts per token, M = N·k routed rows, C channels,
// B batch, H heads, T time, Dk query/key head size, Dv value head size.

import Foundation

extension Tensor {
    // MARK: - Gates

    /// σ(x) = 1 / (1 + e^−x) elementwise (DeepSeek-V3's expert affinity).
    public func sigmoid() -> Tensor {
        unary({ 1 / (1 + Foundation.exp(-$0)) }, { _, y in y * (1 - y) })
    }

    /// Softmax over the last dimension. Fused so each row's max and sum are taken once; saves the
    /// output only (dx = y ⊙ (g − Σ g·y)).
    public static func softmax(_ x: Tensor) -> Tensor {
        let c = x.dim(-1), rows = x.count / c
        let out = Tensor(uninitialized: x.shape)
        let px = x.data, py = out.data
        Parallel.forRanges(rows, cost: c * 4) { r in
            for i in r {
                let xi = px + i * c, yi = py + i * c
                var mx = -Float.infinity
                for j in 0..<c { mx = Swift.max(mx, xi[j]) }
                var s: Float = 0
                for j in 0..<c {
                    yi[j] = Foundation.exp(xi[j] - mx)
                    s += yi[j]
                }
                let inv = 1 / s
                for j in 0..<c { yi[j] *= inv }
            }
        }
        if Autograd.needsGrad(out, x) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gx = x.grad
                Parallel.forRanges(rows, cost: c * 3) { r in
                    for i in r {
                        let yi = py + i * c, gi = g + i * c, dxi = gx + i * c
                        let dot = Kernels.dot(yi, gi, c)
                        for j in 0..<c { dxi[j] += yi[j] * (gi[j] - dot) }
                    }
                }
            }
        }
        return out
    }

    // MARK: - Gather and combine rows

    /// Rows of x (N, C) picked by `rows` → (rows.count, C); backward scatter-adds. The same op as
    /// `embedding`, named for its use on activations (tokens gathered per expert).
    public static func gatherRows(_ x: Tensor, _ rows: [Int32]) -> Tensor {
        embedding(x, ids: rows)
    }

    /// out[rows[i]] += weights[i] · y[i] for the M rows of y (M, C) → (n, C), zero where no row
    /// lands: the weighted sum of each token's expert outputs. Fused so the M weighted rows are not
    /// materialised; saves nothing beyond its inputs. dy[i] = w[i]·g[rows[i]], dw[i] = g[rows[i]]·y[i].
    public static func combineRows(_ y: Tensor, weights w: Tensor, rows: [Int32], count n: Int) -> Tensor {
        precondition(y.rank == 2 && w.count == y.shape[0] && rows.count == y.shape[0],
                     "combineRows needs y (M, C), M weights and M rows; got \(y.shape), \(w.count), \(rows.count)")
        let m = y.shape[0], c = y.shape[1]
        let out = Tensor(shape: [n, c], repeating: 0)
        let py = y.data, pw = w.data, po = out.data
        for i in 0..<m {  // rows may repeat: serial, in a fixed order
            let r = Int(rows[i])
            precondition(r >= 0 && r < n, "row \(r) out of range 0..<\(n)")
            Kernels.axpy(pw[i], py + i * c, po + r * c, c)
        }
        if Autograd.needsGrad(out, y, w) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gy = y.requiresGrad ? y.grad : nil, gw = w.requiresGrad ? w.grad : nil
                Parallel.forRanges(m, cost: c * 2) { r in
                    for i in r {
                        let gr = g + Int(rows[i]) * c
                        if let gy { Kernels.axpy(pw[i], gr, gy + i * c, c) }
                        if let gw { gw[i] += Kernels.dot(gr, py + i * c, c) }
                    }
                }
            }
        }
        return out
    }

    // MARK: - Attention with Dv ≠ Dk

    /// Causal softmax attention softmax(q·kᵀ·scale + mask)·v for q, k (B, H, T, Dk) and v
    /// (B, H, T, Dv) → (B, H, T, Dv). `keyStart[b]` masks the first keys of row b (left padding);
    /// query rows before it give 0. MLA's values are narrower than its keys (DeepSeek-V3: Dk = 192,
    /// Dv = 128), and its scale is 1/√Dk. Fused like `causalAttention`: saves the probabilities only.
    public static func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, keyStart: [Int]? = nil) -> Tensor {
        precondition(q.rank == 4 && q.shape == k.shape && v.rank == 4 && Array(v.shape.prefix(3)) == Array(q.shape.prefix(3)),
                     "attention needs q, k (B, H, T, Dk) and v (B, H, T, Dv), got \(q.shape) \(k.shape) \(v.shape)")
        let (b, h, t, dk) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]), dv = v.shape[3]
        if let keyStart { precondition(keyStart.count == b, "keyStart needs \(b) entries") }
        let out = Tensor(uninitialized: [b, h, t, dv])
        let probs = BufferPool.take(b * h * t * t)  // (B, H, T, T), saved
        let tt = t * t, tdk = t * dk, tdv = t * dv
        Parallel.forRanges(b * h, cost: 2 * tt * (dk + dv)) { range in
            for bh in range {
                let p = probs + bh * tt
                BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: dk, alpha: scale,
                           a: q.data + bh * tdk, lda: dk, b: k.data + bh * tdk, ldb: dk, beta: 0, c: p, ldc: t)
                let start = keyStart?[bh / h] ?? 0
                for i in 0..<t {
                    let row = p + i * t
                    if start > i {
                        row.update(repeating: 0, count: t)
                        continue
                    }
                    let len = i - start + 1
                    let mx = Kernels.max(row + start, len)
                    let inv = 1 / Kernels.expShifted(row + start, row + start, len, shift: mx)
                    for j in 0..<start { row[j] = 0 }
                    for j in start...i { row[j] *= inv }
                    for j in (i + 1)..<t { row[j] = 0 }
                }
                BLAS.sgemm(transA: false, transB: false, m: t, n: dv, k: t,
                           a: p, lda: t, b: v.data + bh * tdv, ldb: dv, beta: 0, c: out.data + bh * tdv, ldc: dv)
            }
        }
        let saved = ProbsBuffer(probs, count: b * h * t * t)
        if Autograd.needsGrad(out, q, k, v) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let gq = q.requiresGrad ? q.storage.gradForOverwrite() : nil
                let gk = k.requiresGrad ? k.storage.gradForOverwrite() : nil
                let gv = v.requiresGrad ? v.storage.gradForOverwrite() : nil
                Parallel.forRanges(b * h, cost: 4 * tt * (dk + dv)) { range in
                    let dp = UnsafeMutablePointer<Float>.allocate(capacity: tt)
                    defer { dp.deallocate() }
                    for bh in range {
                        let p = saved.pointer + bh * tt, go = g + bh * tdv
                        let qd = q.data + bh * tdk, kd = k.data + bh * tdk, vd = v.data + bh * tdv
                        if let gv {  // dV += Pᵀ · dO
                            BLAS.sgemm(transA: true, transB: false, m: t, n: dv, k: t,
                                       a: p, lda: t, b: go, ldb: dv, beta: gv.fresh ? 0 : 1, c: gv.pointer + bh * tdv, ldc: dv)
                        }
                        guard gq != nil || gk != nil else { continue }
                        // dP = dO · Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                        BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: dv,
                                   a: go, lda: dv, b: vd, ldb: dv, beta: 0, c: dp, ldc: t)
                        for i in 0..<t {
                            let pr = p + i * t, dr = dp + i * t
                            let dot = Kernels.dot(pr, dr, i + 1)
                            for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scale }
                            for j in (i + 1)..<t { dr[j] = 0 }
                        }
                        if let gq {  // dQ += dS · K
                            BLAS.sgemm(transA: false, transB: false, m: t, n: dk, k: t,
                                       a: dp, lda: t, b: kd, ldb: dk, beta: gq.fresh ? 0 : 1, c: gq.pointer + bh * tdk, ldc: dk)
                        }
                        if let gk {  // dK += dSᵀ · Q
                            BLAS.sgemm(transA: true, transB: false, m: t, n: dk, k: t,
                                       a: dp, lda: t, b: qd, ldb: dk, beta: gk.fresh ? 0 : 1, c: gk.pointer + bh * tdk, ldc: dk)
                        }
                    }
                }
            }
        }
        return out
    }
}
