// Reductions: sum and mean over one axis, and over everything.

extension Tensor {
    /// (outer, n, inner) view of the shape around axis `axis`.
    func split(at axis: Int) -> (outer: Int, n: Int, inner: Int) {
        let a = axis < 0 ? rank + axis : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    /// Sum over `axis`. With `keepDim` the axis stays with size 1; else it is removed (a 1-D input
    /// gives shape [1]).
    public func sum(axis: Int, keepDim: Bool = false) -> Tensor {
        reduce(axis: axis, keepDim: keepDim, scale: 1)
    }

    /// Mean over `axis`.
    public func mean(axis: Int, keepDim: Bool = false) -> Tensor {
        let n = split(at: axis).n
        return reduce(axis: axis, keepDim: keepDim, scale: 1 / Float(n))
    }

    func reduce(axis: Int, keepDim: Bool, scale: Float) -> Tensor {
        let (outer, n, inner) = split(at: axis)
        let a = axis < 0 ? rank + axis : axis
        var outShape = shape
        if keepDim { outShape[a] = 1 } else { outShape.remove(at: a) }
        if outShape.isEmpty { outShape = [1] }
        let out = Tensor(uninitialized: outShape)
        let px = data, po = out.data
        Parallel.forRanges(outer, cost: n * inner) { r in
            for o in r {
                let dst = po + o * inner
                dst.initialize(repeating: 0, count: inner)
                for j in 0..<n {
                    let src = px + (o * n + j) * inner
                    for i in 0..<inner { dst[i] += src[i] }
                }
                if scale != 1 { for i in 0..<inner { dst[i] *= scale } }
            }
        }
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                let gx = self.grad
                Parallel.forRanges(outer, cost: n * inner) { r in
                    for o in r {
                        for j in 0..<n {
                            let dst = gx + (o * n + j) * inner, src = g + o * inner
                            for i in 0..<inner { dst[i] += src[i] * scale }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Sum of all elements, accumulated in Double in fixed-size blocks (the result does not depend
    /// on the thread count).
    public func sum() -> Tensor { reduceAll(scale: 1) }

    /// Mean of all elements.
    public func mean() -> Tensor { reduceAll(scale: 1 / Double(count)) }

    func reduceAll(scale: Double) -> Tensor {
        let out = Tensor(uninitialized: [1])
        let n = count, px = data
        let chunks = Swift.max(1, Swift.min(64, n / 4096))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { part in
            Parallel.forFixedChunks(n, chunks: chunks) { c, r in
                var s: Float = 0, acc: Double = 0
                var k = 0
                for i in r {  // Float blocks of 256 summed into Double: fast and accurate
                    s += px[i]
                    k += 1
                    if k == 256 { acc += Double(s); s = 0; k = 0 }
                }
                part[c] = acc + Double(s)
            }
        }
        out.data[0] = Float(partial.reduce(0, +) * scale)
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                let gx = self.grad, v = Float(Double(g[0]) * scale)
                Parallel.forRanges(n) { r in for i in r { gx[i] += v } }
            }
        }
        return out
    }
}
