// Vector kernels for the paths that do not go through sgemm (attention's softmax, RoPE, RMSNorm, SwiGLU,
// AdamW, a KV cache). Float sums are not reassociated by the compiler, so these use SIMD with several
// accumulators. Swift compiles SIMD16 for baseline x86-64 (128-bit SSE); where the AVX-512 kernels run
// (NativeKernels.enabled), each kernel here hands its 16-lane steps to CKernels/vector.c instead, lane for
// lane the same operations, so the results are the same bits either way. Callers go through these
// functions, never vector.c directly, so that choice is made in one place.

import CKernels
import Foundation

public enum Kernels {
    /// Σ a[i]·b[i] for i < n.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        if NativeKernels.enabled { i = withUnsafeMutableBytes(of: &acc0) { ponder_dot_lanes(a, b, n, $0.baseAddress!.assumingMemoryBound(to: Float.self)) } }
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 32 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
            i += 32
        }
        while i + 16 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var s = (acc0 + acc1).sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// y[i] += alpha·x[i] for i < n.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        axpy(alpha, x, UnsafePointer(y), into: y, n)
    }

    /// out[i] = y[i] + alpha·x[i] for i < n (out may be x or y: each element is read before it is written).
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                            into out: UnsafeMutablePointer<Float>, _ n: Int) {
        if NativeKernels.enabled { return ponder_axpy(alpha, x, y, out, n) }
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y), ro = UnsafeMutableRawPointer(out)
        let a = SIMD16<Float>(repeating: alpha)
        while i + 16 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                + a * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            ro.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n {
            out[i] = y[i] + alpha * x[i]
            i += 1
        }
    }
}

extension Kernels {
    /// e^x for 16 lanes: range reduction by ln 2, a degree-6 polynomial on |r| ≤ ln2/2 (truncation
    /// error r⁷/7! ≤ 1.2e-7, about 1 ulp), and the exponent put back through the float's bits.
    /// libm's expf is scalar; softmax and SwiGLU spent a fifth of a forward pass in it.
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Only plain lane arithmetic and bit casts: Swift's generic SIMD clamp, rounding and
        // Float→Int conversions compile to per-lane calls.
        var xc = x.replacing(with: -87.3, where: x .< -87.3)
        xc = xc.replacing(with: 88.7, where: xc .> 88.7)
        // Adding 1.5·2²³ rounds x·log₂e to an integer n held in the low mantissa bits.
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let t = xc * 1.442_695_04 + magic
        let n = t - magic
        let r = xc - n * 0.693_145_75 - n * 1.428_606_8e-6  // ln 2 split in two so n·ln2 is exact
        var p = SIMD16<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let nBits = unsafeBitCast(t, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        let scale = (nBits &+ 127) &<< 23
        return p * unsafeBitCast(scale, to: SIMD16<Float>.self)
    }

    /// y[i] = e^(x[i] − shift) for i < n; returns Σ y. x and y may be the same buffer.
    @inline(__always)
    public static func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        var i = 0
        var acc = SIMD16<Float>()
        if NativeKernels.enabled {  // y's tail written too: the sum adds it in order
            i = withUnsafeMutableBytes(of: &acc) { ponder_exp_shifted(x, y, n, shift, $0.baseAddress!.assumingMemoryBound(to: Float.self)) }
            var s = acc.sum()
            for j in i..<n { s += y[j] }
            return s
        }
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= n {
            let e = exp(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - shift)
            ry.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
            acc += e
            i += 16
        }
        var s = acc.sum()
        if i < n {  // the tail, through one padded vector
            var v = SIMD16<Float>(repeating: -100)
            for j in i..<n { v[j - i] = x[j] - shift }
            let e = exp(v)
            for j in i..<n {
                y[j] = e[j - i]
                s += e[j - i]
            }
        }
        return s
    }

    /// Largest of x[0..<n] (n > 0).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        if NativeKernels.enabled { return ponder_max(x, n) }
        var i = 0
        var m = SIMD16<Float>(repeating: -.infinity)
        let rx = UnsafeRawPointer(x)
        // A compare and blend, not `pointwiseMax`: Swift's generic SIMD max compiles to a
        // per-lane loop through the stack (perf: 6% of a training step at d=256).
        while i + 16 <= n {
            let v = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        var s = m.max()
        while i < n {
            s = Swift.max(s, x[i])
            i += 1
        }
        return s
    }

    /// y[i] = silu(g[i])·u[i], with σ from the fast exp.
    @inline(__always)
    public static func swiglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        var i = range.lowerBound
        if NativeKernels.enabled { i += ponder_swiglu(g + i, u + i, y + i, range.count) }
        let rg = UnsafeRawPointer(g), ru = UnsafeRawPointer(u), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= range.upperBound {
            let x = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let s = 1 / (1 + exp(-x))
            ry.storeBytes(of: x * s * ru.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        if i < range.upperBound {  // the tail through one padded vector: each element as the body computes it,
            // wherever a parallel range puts it (libm's exp and a true division differ in the last bits)
            let n = range.upperBound - i
            var x = SIMD16<Float>(), uu = SIMD16<Float>()
            for j in 0..<n { (x[j], uu[j]) = (g[i + j], u[i + j]) }
            let s = 1 / (1 + exp(-x))
            let v = x * s * uu
            for j in 0..<n { y[i + j] = v[j] }
        }
    }

    /// The SwiGLU backward: dg += dy·u·σ(g)(1 + g(1 − σ(g))), du += dy·g·σ(g) (either may be nil;
    /// an `overwrite` flag assigns instead of adding, for a gradient buffer not yet written).
    @inline(__always)
    public static func swigluBackward(
        _ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        _ dg: UnsafeMutablePointer<Float>?, _ du: UnsafeMutablePointer<Float>?, _ range: Range<Int>,
        overwriteGate: Bool = false, overwriteUp: Bool = false
    ) {
        var i = range.lowerBound
        if NativeKernels.enabled {
            let lo = range.lowerBound
            i += ponder_swiglu_backward(g + lo, u + lo, dy + lo, dg.map { $0 + lo }, du.map { $0 + lo }, range.count,
                                        overwriteGate ? 1 : 0, overwriteUp ? 1 : 0)
        }
        let rg = UnsafeRawPointer(g), ru = UnsafeRawPointer(u), rdy = UnsafeRawPointer(dy)
        while i + 16 <= range.upperBound {
            let x = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let d = rdy.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let s = 1 / (1 + exp(-x))
            if let dg {
                let r = UnsafeMutableRawPointer(dg)
                let uu = ru.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                let old = overwriteGate ? SIMD16<Float>() : r.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                let v = old + d * uu * s * (1 + x * (1 - s))
                r.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            }
            if let du {
                let r = UnsafeMutableRawPointer(du)
                let old = overwriteUp ? SIMD16<Float>() : r.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                let v = old + d * x * s
                r.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            }
            i += 16
        }
        if i < range.upperBound {  // the tail through one padded vector, as in `swiglu`
            let n = range.upperBound - i
            var x = SIMD16<Float>(), d = SIMD16<Float>(), uu = SIMD16<Float>()
            for j in 0..<n { (x[j], d[j], uu[j]) = (g[i + j], dy[i + j], u[i + j]) }
            let s = 1 / (1 + exp(-x))
            if let dg {
                let v = d * uu * s * (1 + x * (1 - s))
                for j in 0..<n { dg[i + j] = (overwriteGate ? 0 : dg[i + j]) + v[j] }
            }
            if let du {
                let v = d * x * s
                for j in 0..<n { du[i + j] = (overwriteUp ? 0 : du[i + j]) + v[j] }
            }
        }
    }
}

extension Kernels {
    /// AdamW's update of parameters j in `range` (Training's AdamW.update): m = b1·m + (1 − b1)·g,
    /// v = b2·v + (1 − b2)·g·g, w = w·decay − stepSize·m / (√v / c2s + eps), each in that order.
    @inline(__always)
    public static func adamW(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                             _ v: UnsafeMutablePointer<Float>, _ range: Range<Int>, b1: Float, b2: Float, decay: Float,
                             stepSize: Float, c2s: Float, eps: Float) {
        if NativeKernels.enabled {
            let lo = range.lowerBound
            return ponder_adamw(w + lo, g + lo, m + lo, v + lo, range.count, b1, 1 - b1, b2, 1 - b2, decay, stepSize, c2s, eps)
        }
        for j in range {
            let gj = g[j]
            m[j] = b1 * m[j] + (1 - b1) * gj
            v[j] = b2 * v[j] + (1 - b2) * gj * gj
            w[j] = w[j] * decay - stepSize * m[j] / (v[j].squareRoot() / c2s + eps)
        }
    }
}

extension Kernels {
    /// y[j] = x[j]·s·w[j] for j < n (RMSNorm's forward after the row's scale).
    @inline(__always)
    public static func scaleMul(_ x: UnsafePointer<Float>, _ s: Float, _ w: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        if NativeKernels.enabled { return ponder_scale_mul(x, s, w, y, n) }
        for j in 0..<n { y[j] = x[j] * s * w[j] }
    }

    /// out[j] = a[j]·b[j] for j < n.
    @inline(__always)
    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ n: Int) {
        if NativeKernels.enabled { return ponder_mul(a, b, out, n) }
        for j in 0..<n { out[j] = a[j] * b[j] }
    }

    /// dx[j] (+)= s·gw[j] − k·x[j] for j < n (RMSNorm's input gradient for one row; `overwrite` assigns).
    @inline(__always)
    public static func rmsNormDx(_ s: Float, _ gw: UnsafePointer<Float>, _ k: Float, _ x: UnsafePointer<Float>,
                                 into dx: UnsafeMutablePointer<Float>, _ n: Int, overwrite: Bool) {
        if NativeKernels.enabled { return ponder_rmsnorm_dx(s, gw, k, x, dx, n, overwrite ? 1 : 0) }
        if overwrite {
            for j in 0..<n { dx[j] = s * gw[j] - k * x[j] }
        } else {
            for j in 0..<n { dx[j] += s * gw[j] - k * x[j] }
        }
    }

    /// acc[j] += g[j]·x[j]·s for j < n (RMSNorm's weight gradient, one row).
    @inline(__always)
    public static func rmsNormDw(_ acc: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ s: Float, _ n: Int) {
        if NativeKernels.enabled { return ponder_rmsnorm_dw(acc, g, x, s, n) }
        for j in 0..<n { acc[j] += g[j] * x[j] * s }
    }

    /// x[j] *= s for j < n (a softmax row's normalisation).
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, _ n: Int) {
        if NativeKernels.enabled { return ponder_scale(x, s, n) }
        for j in 0..<n { x[j] *= s }
    }

    /// d[j] = p[j]·(d[j] − dot)·scale for j < n (a softmax row's backward, dot = Σ p·d).
    @inline(__always)
    public static func softmaxGrad(_ p: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ n: Int, dot: Float, scale: Float) {
        if NativeKernels.enabled { return ponder_softmax_grad(p, d, n, dot, scale) }
        for j in 0..<n { d[j] = p[j] * (d[j] - dot) * scale }
    }

    /// One token's RoPE over `heads` heads of size d (h = d/2): a = x[i], b = x[i + h], si = sign·sin[i],
    /// y[i] (+)= a·cos[i] − b·si, y[i + h] (+)= b·cos[i] + a·si.
    @inline(__always)
    public static func rope(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, cos c: UnsafePointer<Float>,
                            sin s: UnsafePointer<Float>, heads: Int, d: Int, sign: Float, accumulate: Bool) {
        if NativeKernels.enabled { return ponder_rope(x, y, c, s, heads, d, sign, accumulate ? 1 : 0) }
        let h = d / 2
        for hh in 0..<heads {
            let xi = x + hh * d, yi = y + hh * d
            for i in 0..<h {
                let a = xi[i], b = xi[i + h], si = sign * s[i]
                let ya = a * c[i] - b * si, yb = b * c[i] + a * si
                if accumulate { yi[i] += ya; yi[i + h] += yb } else { yi[i] = ya; yi[i + h] = yb }
            }
        }
    }
}
