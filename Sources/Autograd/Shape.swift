// Shape ops: reshape (a view), transpose, slice, concat and row gathers (copies).

extension Tensor {
    /// The same values under a new shape (one dimension may be -1). Shares storage and gradient
    /// with `self`, so it needs no backward.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) (\(count) values) to \(newShape)")
        let recording = Autograd.isRecording && requiresGrad
        return Tensor(shape: s, storage: storage, requiresGrad: recording)
    }

    /// Swaps dimensions `d0` and `d1` (a copy).
    public func transposed(_ d0: Int, _ d1: Int) -> Tensor {
        let a0 = d0 < 0 ? rank + d0 : d0, a1 = d1 < 0 ? rank + d1 : d1
        var outShape = shape
        outShape.swapAt(a0, a1)
        let out = Tensor(uninitialized: outShape)
        let perm = Tensor.permutation(shape, a0, a1)
        Tensor.permute(from: data, to: out.data, shape: shape, perm: perm, accumulate: false)
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                // The inverse of a swap is the same swap, read from the output's shape.
                let (gx, fresh) = self.storage.gradForOverwrite()
                Tensor.permute(from: g, to: gx, shape: outShape, perm: perm, accumulate: !fresh)
            }
        }
        return out
    }

    static func permutation(_ shape: [Int], _ a0: Int, _ a1: Int) -> [Int] {
        var p = Array(0..<shape.count)
        p.swapAt(a0, a1)
        return p
    }

    /// Writes `src` (of `shape`) into `dst` laid out with dimensions reordered by `perm`.
    static func permute(
        from src: UnsafeMutablePointer<Float>, to dst: UnsafeMutablePointer<Float>, shape: [Int], perm: [Int],
        accumulate: Bool
    ) {
        let s = [Int](repeating: 1, count: 4 - shape.count) + shape
        let p = Array(0..<(4 - shape.count)) + perm.map { $0 + 4 - shape.count }
        let outDims = p.map { s[$0] }
        var outStride = [Int](repeating: 1, count: 4)
        for i in stride(from: 2, through: 0, by: -1) { outStride[i] = outStride[i + 1] * outDims[i + 1] }
        // stride in dst of each source dimension
        var ds = [Int](repeating: 0, count: 4)
        for (outDim, srcDim) in p.enumerated() { ds[srcDim] = outStride[outDim] }
        let (n0, n1, n2, n3) = (s[0], s[1], s[2], s[3])
        let (t0, t1, t2, t3) = (ds[0], ds[1], ds[2], ds[3])
        Parallel.forRanges(n0 * n1, cost: n2 * n3) { r in
            for i01 in r {
                let i0 = i01 / n1, i1 = i01 % n1
                var si = i01 * n2 * n3
                for i2 in 0..<n2 {
                    let base = i0 * t0 + i1 * t1 + i2 * t2
                    if accumulate {
                        for i3 in 0..<n3 { dst[base + i3 * t3] += src[si + i3] }
                    } else {
                        for i3 in 0..<n3 { dst[base + i3 * t3] = src[si + i3] }
                    }
                    si += n3
                }
            }
        }
    }

    /// Rows of `self` (N, C) picked by `rows` (any count M, each in 0..<N, repeats allowed) → (M, C).
    /// Backward adds each output row's gradient into the row it came from, in output order, so a row
    /// picked several times sums its gradients in a fixed order; threads split the columns.
    public func gatherRows(_ rows: [Int32]) -> Tensor {
        precondition(rank == 2, "gatherRows needs (N, C), got \(shape)")
        let n = shape[0], c = shape[1], m = rows.count
        let out = Tensor(uninitialized: [m, c])
        let px = data, po = out.data
        rows.withUnsafeBufferPointer { idx in
            Parallel.forRanges(m, cost: c) { r in
                for i in r {
                    let j = Int(idx[i])
                    precondition(j >= 0 && j < n, "row \(j) outside 0..<\(n)")
                    (po + i * c).update(from: px + j * c, count: c)
                }
            }
        }
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                let gx = self.grad
                rows.withUnsafeBufferPointer { idx in
                    Parallel.forRanges(c, cost: m) { cols in
                        for i in 0..<m {
                            let dst = gx + Int(idx[i]) * c, src = g + i * c
                            for k in cols { dst[k] += src[k] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = axis < 0 ? rank + axis : axis
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice \(range) out of bounds for dim \(a) of \(shape)")
        let (outer, n, inner) = split(at: a)
        var outShape = shape
        outShape[a] = range.count
        let out = Tensor(uninitialized: outShape)
        let len = range.count * inner, px = data, po = out.data
        for o in 0..<outer { (po + o * len).update(from: px + (o * n + range.lowerBound) * inner, count: len) }
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                let gx = self.grad
                for o in 0..<outer {
                    let dst = gx + (o * n + range.lowerBound) * inner, src = g + o * len
                    for i in 0..<len { dst[i] += src[i] }
                }
            }
        }
        return out
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat of nothing")
        let first = parts[0]
        let a = axis < 0 ? first.rank + axis : axis
        for p in parts {
            precondition(p.rank == first.rank && (0..<p.rank).allSatisfy { $0 == a || p.shape[$0] == first.shape[$0] },
                         "concat along \(a) needs matching shapes, got \(parts.map(\.shape))")
        }
        var outShape = first.shape
        outShape[a] = parts.map { $0.shape[a] }.reduce(0, +)
        let out = Tensor(uninitialized: outShape)
        let (outer, total, inner) = out.split(at: a)
        var offset = 0
        var offsets: [Int] = []
        for p in parts {
            offsets.append(offset)
            let len = p.shape[a] * inner
            for o in 0..<outer { (out.data + (o * total + offset) * inner).update(from: p.data + o * len, count: len) }
            offset += p.shape[a]
        }
        var needs = false
        for p in parts where Autograd.needsGrad(out, p) { needs = true }
        if needs {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                for (p, off) in zip(parts, offsets) where p.requiresGrad {
                    let len = p.shape[a] * inner, gp = p.grad
                    for o in 0..<outer {
                        let src = g + (o * total + off) * inner, dst = gp + o * len
                        for i in 0..<len { dst[i] += src[i] }
                    }
                }
            }
        }
        return out
    }
}
