// Elementwise ops: broadcasting binary arithmetic, unary math, and the clamp/min/max/where family
// that the clipped surrogate and the masks need. Each backward sits under its forward.

// MARK: - Broadcasting

/// How two shapes broadcast (NumPy rules, right-aligned), padded to 4-D.
struct Broadcast {
    let shape: [Int]                 // output shape
    let dims: (Int, Int, Int, Int)   // output dims padded to 4
    let sa: (Int, Int, Int, Int)     // strides of a per output dim (0 where broadcast)
    let sb: (Int, Int, Int, Int)

    init(_ a: [Int], _ b: [Int]) {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
            out[i] = max(da, db)
        }
        shape = out
        func strides(_ s: [Int]) -> [Int] {
            var padded = [Int](repeating: 1, count: 4 - s.count) + s
            var st = [Int](repeating: 0, count: 4)
            var acc = 1
            for i in stride(from: 3, through: 0, by: -1) {
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            padded.removeAll()
            return st
        }
        let o = [Int](repeating: 1, count: 4 - r) + out
        let x = strides(a), y = strides(b)
        dims = (o[0], o[1], o[2], o[3])
        sa = (x[0], x[1], x[2], x[3])
        sb = (y[0], y[1], y[2], y[3])
    }

    /// Calls body(outIndex, aIndex, bIndex) for every output element, in row-major order over the
    /// output rows [lo, hi) (a row is the innermost dimension).
    @inline(__always)
    func forEach(rows: Range<Int>, _ body: (Int, Int, Int) -> Void) {
        let (d0, d1, d2, d3) = dims
        _ = d0
        for row in rows {
            let i2 = row % d2, i1 = (row / d2) % d1, i0 = row / (d2 * d1)
            let oBase = row * d3
            let aBase = i0 * sa.0 + i1 * sa.1 + i2 * sa.2
            let bBase = i0 * sb.0 + i1 * sb.1 + i2 * sb.2
            let a3 = sa.3, b3 = sb.3
            for i3 in 0..<d3 { body(oBase + i3, aBase + i3 * a3, bBase + i3 * b3) }
        }
    }

    var rows: Int { dims.0 * dims.1 * dims.2 }
}

extension Tensor {
    @inline(__always)
    static func binary(
        _ a: Tensor, _ b: Tensor,
        _ f: (Float, Float) -> Float,
        backward: @escaping (_ plan: Broadcast, _ out: Tensor) -> Void
    ) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitialized: a.shape)
            let pa = a.data, pb = b.data, po = out.data
            Parallel.forRanges(out.count) { r in for i in r { po[i] = f(pa[i], pb[i]) } }
            if Autograd.needsGrad(out, a, b) {
                let plan = Broadcast(a.shape, b.shape)
                Autograd.record { backward(plan, out) }
            }
            return out
        }
        let plan = Broadcast(a.shape, b.shape)
        let out = Tensor(uninitialized: plan.shape)
        let pa = a.data, pb = b.data, po = out.data
        Parallel.forRanges(plan.rows, cost: plan.dims.3) { rows in
            plan.forEach(rows: rows) { o, ia, ib in po[o] = f(pa[ia], pb[ib]) }
        }
        if Autograd.needsGrad(out, a, b) { Autograd.record { backward(plan, out) } }
        return out
    }

    /// Adds `term(o, ia, ib)` into `target`'s gradient for every output element. Runs in parallel
    /// only when `target` has the output's full size (no two outputs write the same element).
    @inline(__always)
    static func accumulate(
        into target: Tensor, plan: Broadcast, fullSize: Bool, _ term: (Int, Int, Int) -> Float,
        index: (Int, Int, Int) -> Int
    ) {
        guard target.requiresGrad else { return }
        let g = target.grad
        if fullSize {
            Parallel.forRanges(plan.rows, cost: plan.dims.3) { rows in
                plan.forEach(rows: rows) { o, ia, ib in g[index(o, ia, ib)] += term(o, ia, ib) }
            }
        } else {
            plan.forEach(rows: 0..<plan.rows) { o, ia, ib in g[index(o, ia, ib)] += term(o, ia, ib) }
        }
    }

    /// Backward of a binary op: dA += ga(o, ia, ib), dB += gb(o, ia, ib), reducing over broadcast dims.
    @inline(__always)
    static func binaryBackward(
        _ a: Tensor, _ b: Tensor, _ out: Tensor, _ plan: Broadcast,
        da: (UnsafeMutablePointer<Float>, Int, Int, Int) -> Float,
        db: (UnsafeMutablePointer<Float>, Int, Int, Int) -> Float
    ) {
        guard let g = outGrad(out) else { return }
        if a.count == out.count && b.count == out.count {  // same shapes: flat loops
            if a.requiresGrad {
                let (ga, fresh) = a.storage.gradForOverwrite()
                Parallel.forRanges(out.count) { r in
                    if fresh { for i in r { ga[i] = da(g, i, i, i) } } else { for i in r { ga[i] += da(g, i, i, i) } }
                }
            }
            if b.requiresGrad {
                let (gb, fresh) = b.storage.gradForOverwrite()
                Parallel.forRanges(out.count) { r in
                    if fresh { for i in r { gb[i] = db(g, i, i, i) } } else { for i in r { gb[i] += db(g, i, i, i) } }
                }
            }
            return
        }
        accumulate(into: a, plan: plan, fullSize: a.count == out.count, { da(g, $0, $1, $2) }, index: { _, ia, _ in ia })
        accumulate(into: b, plan: plan, fullSize: b.count == out.count, { db(g, $0, $1, $2) }, index: { _, _, ib in ib })
    }

    /// a + b with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        guard a.shape == b.shape else {
            return binary(a, b, { $0 + $1 }) { plan, out in
                binaryBackward(a, b, out, plan, da: { g, o, _, _ in g[o] }, db: { g, o, _, _ in g[o] })
            }
        }
        return sameShapeSum(a, b, sign: 1)
    }

    /// a − b with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        guard a.shape == b.shape else {
            return binary(a, b, { $0 - $1 }) { plan, out in
                binaryBackward(a, b, out, plan, da: { g, o, _, _ in g[o] }, db: { g, o, _, _ in -g[o] })
            }
        }
        return sameShapeSum(a, b, sign: -1)
    }

    /// a + sign·b (sign ±1) for same shapes, as vector loops forward and backward: the generic
    /// binary op calls its closure per element, and the residual stream's adds took ~5% of a d=256
    /// training step that way (perf). a + (−1·b) is a − b exactly, so values are the closures'.
    static func sameShapeSum(_ a: Tensor, _ b: Tensor, sign: Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let (pa, pb, po) = (a.data, b.data, out.data)
        Parallel.forRanges(out.count) { r in
            Kernels.axpy(sign, pb + r.lowerBound, pa + r.lowerBound, into: po + r.lowerBound, r.count)
        }
        if Autograd.needsGrad(out, a, b) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                passGradient(g, to: a, sign: 1)
                passGradient(g, to: b, sign: sign)
            }
        }
        return out
    }

    /// dT = sign·g, or dT += sign·g when T already has a gradient (sign ±1).
    @inline(__always)
    static func passGradient(_ g: UnsafeMutablePointer<Float>, to t: Tensor, sign: Float) {
        guard t.requiresGrad else { return }
        let (gt, fresh) = t.storage.gradForOverwrite()
        Parallel.forRanges(t.count) { r in
            let (src, dst, n) = (g + r.lowerBound, gt + r.lowerBound, r.count)
            if !fresh {
                Kernels.axpy(sign, src, dst, n)
            } else if sign > 0 {
                dst.update(from: src, count: n)
            } else {
                for i in 0..<n { dst[i] = -src[i] }
            }
        }
    }

    /// a ⊙ b with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, { $0 * $1 }) { plan, out in
            let pa = a.data, pb = b.data
            binaryBackward(a, b, out, plan, da: { g, o, _, ib in g[o] * pb[ib] }, db: { g, o, ia, _ in g[o] * pa[ia] })
        }
    }

    /// a / b with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, { $0 / $1 }) { plan, out in
            let pa = a.data, pb = b.data
            binaryBackward(
                a, b, out, plan, da: { g, o, _, ib in g[o] / pb[ib] },
                db: { g, o, ia, ib in -g[o] * pa[ia] / (pb[ib] * pb[ib]) })
        }
    }

    /// Elementwise minimum of same-shape tensors; the gradient goes to the smaller (to `a` on ties).
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "minimum needs equal shapes, got \(a.shape) and \(b.shape)")
        return binary(a, b, { $0 <= $1 ? $0 : $1 }) { plan, out in
            let pa = a.data, pb = b.data
            binaryBackward(
                a, b, out, plan, da: { g, o, ia, ib in pa[ia] <= pb[ib] ? g[o] : 0 },
                db: { g, o, ia, ib in pa[ia] <= pb[ib] ? 0 : g[o] })
        }
    }

    /// Elementwise maximum of same-shape tensors; the gradient goes to the larger (to `a` on ties).
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "maximum needs equal shapes, got \(a.shape) and \(b.shape)")
        return binary(a, b, { $0 >= $1 ? $0 : $1 }) { plan, out in
            let pa = a.data, pb = b.data
            binaryBackward(
                a, b, out, plan, da: { g, o, ia, ib in pa[ia] >= pb[ib] ? g[o] : 0 },
                db: { g, o, ia, ib in pa[ia] >= pb[ib] ? 0 : g[o] })
        }
    }
}

// MARK: - Unary

extension Tensor {
    /// y = f(x) elementwise; backward adds g · dfdx(x, y).
    @inline(__always)
    func unary(_ f: (Float) -> Float, _ dfdx: @escaping (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let px = data, py = out.data
        Parallel.forRanges(count, cost: 4) { r in for i in r { py[i] = f(px[i]) } }
        if Autograd.needsGrad(out, self) {
            Autograd.record { [self] in
                guard let g = outGrad(out) else { return }
                let (gx, fresh) = self.storage.gradForOverwrite()
                Parallel.forRanges(self.count, cost: 4) { r in
                    if fresh {
                        for i in r { gx[i] = g[i] * dfdx(px[i], py[i]) }
                    } else {
                        for i in r { gx[i] += g[i] * dfdx(px[i], py[i]) }
                    }
                }
            }
        }
        return out
    }

    public func exp() -> Tensor { unary({ Foundation.exp($0) }, { _, y in y }) }
    public func log() -> Tensor { unary({ Foundation.log($0) }, { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { unary({ $0.squareRoot() }, { _, y in 0.5 / y }) }
    public static prefix func - (x: Tensor) -> Tensor { x.unary({ -$0 }, { _, _ in -1 }) }
    /// x · s for a constant s.
    public func scaled(by s: Float) -> Tensor { unary({ $0 * s }, { _, _ in s }) }
    /// x + s for a constant s.
    public func shifted(by s: Float) -> Tensor { unary({ $0 + s }, { _, _ in 1 }) }
    /// SiLU, x·σ(x).
    public func silu() -> Tensor {
        unary({ $0 / (1 + Foundation.exp(-$0)) }, { x, _ in
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        })
    }
    /// Clamps into [lo, hi]; the gradient passes where lo ≤ x ≤ hi (as torch.clamp).
    public func clamped(_ lo: Float, _ hi: Float) -> Tensor {
        unary({ Swift.min(Swift.max($0, lo), hi) }, { x, _ in x >= lo && x <= hi ? 1 : 0 })
    }

    public static func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
    public static func + (a: Tensor, s: Float) -> Tensor { a.shifted(by: s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.shifted(by: -s) }

    /// Picks `a` where `mask` is nonzero and `b` elsewhere. The mask is a constant (no gradient).
    public static func where_(_ mask: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(mask.shape == a.shape && a.shape == b.shape, "where needs equal shapes: \(mask.shape) \(a.shape) \(b.shape)")
        let out = Tensor(uninitialized: a.shape)
        let pm = mask.data, pa = a.data, pb = b.data, po = out.data
        Parallel.forRanges(out.count) { r in for i in r { po[i] = pm[i] != 0 ? pa[i] : pb[i] } }
        if Autograd.needsGrad(out, a, b) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                if a.requiresGrad { let ga = a.grad; for i in 0..<out.count where pm[i] != 0 { ga[i] += g[i] } }
                if b.requiresGrad { let gb = b.grad; for i in 0..<out.count where pm[i] == 0 { gb[i] += g[i] } }
            }
        }
        return out
    }
}

import Foundation
