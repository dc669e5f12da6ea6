// Ops for mixture-of-experts routing (Shazeer et al. 2017; DeepSeek-V3, Liu et al. 2024). Attention
// whose values are narrower than its keys (MLA) is `causalAttention(_:_:_:scale:keyStart:)` in
// Attention.swift.
//
// N tokens, E experts, k experts per token, M = N·k routed rows, C channels.

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
}
