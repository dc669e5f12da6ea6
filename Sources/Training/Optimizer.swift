// AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, and global-norm gradient clipping.

import Autograd
import Foundation

public final class AdamW {
    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Number of steps taken (bias correction uses it).
    public internal(set) var step = 0
    let params: [Tensor]
    var m: [UnsafeMutablePointer<Float>]
    var v: [UnsafeMutablePointer<Float>]

    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    public init(_ params: [Tensor], lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0.01) {
        self.params = params
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        m = params.map { p in let b = UnsafeMutablePointer<Float>.allocate(capacity: p.count); b.initialize(repeating: 0, count: p.count); return b }
        v = params.map { p in let b = UnsafeMutablePointer<Float>.allocate(capacity: p.count); b.initialize(repeating: 0, count: p.count); return b }
    }

    deinit {
        m.forEach { $0.deallocate() }
        v.forEach { $0.deallocate() }
    }

    /// One update from the accumulated gradients. Parameters that received no gradient are left
    /// alone, as PyTorch skips parameters whose grad is None.
    public func update() {
        step += 1
        let b1 = beta1, b2 = beta2, lr = lr, eps = eps, decay = 1 - lr * weightDecay
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let stepSize = lr / c1, c2s = c2.squareRoot()
        for (i, p) in params.enumerated() where p.hasGrad {
            let w = p.data, g = p.grad, mi = m[i], vi = v[i]
            Parallel.forRanges(p.count, cost: 8) { r in
                Kernels.adamW(w, g, mi, vi, r, b1: b1, b2: b2, decay: decay, stepSize: stepSize, c2s: c2s, eps: eps)
            }
        }
    }

    /// Zeroes every parameter's gradient.
    public func zeroGrad() { params.forEach { $0.zeroGrad() } }

    /// Drops every parameter's gradient, as PyTorch's `zero_grad(set_to_none=True)`: no gradient
    /// memory is held between updates (while GRPO samples), and a parameter that gets no gradient
    /// before the next update (an expert no token chose) is left alone by it.
    public func releaseGradients() { params.forEach { $0.releaseGrad() } }
}

/// The global L2 norm of the parameters' gradients (accumulated in Double).
public func gradNorm(_ params: [Tensor]) -> Double {
    var s = 0.0
    for p in params where p.hasGrad {
        let g = p.grad
        var part: Float = 0, acc = 0.0
        for j in 0..<p.count {
            part += g[j] * g[j]
            if j & 255 == 255 { acc += Double(part); part = 0 }
        }
        s += acc + Double(part)
    }
    return s.squareRoot()
}

/// Scales gradients so their global norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ params: [Tensor], maxNorm: Double) -> Double {
    let norm = gradNorm(params)
    if norm > maxNorm && norm > 0 {
        let f = Float(maxNorm / (norm + 1e-6))
        for p in params where p.hasGrad {
            let g = p.grad
            for j in 0..<p.count { g[j] *= f }
        }
    }
    return norm
}

extension AdamW {
    /// The moment buffers by parameter index, for checkpoints: ("m.<i>", "v.<i>") → values.
    public func stateArrays() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (i, p) in params.enumerated() {
            out["m.\(i)"] = Array(UnsafeBufferPointer(start: m[i], count: p.count))
            out["v.\(i)"] = Array(UnsafeBufferPointer(start: v[i], count: p.count))
        }
        return out
    }

    /// Restores moments saved by `stateArrays()` and the step count. Throws when a buffer is
    /// missing or has the wrong size.
    public func restore(_ arrays: [String: [Float]], step: Int) throws {
        for (i, p) in params.enumerated() {
            for (name, buf) in [("m.\(i)", m[i]), ("v.\(i)", v[i])] {
                guard let a = arrays[name], a.count == p.count else {
                    throw OptimizerStateError(message: "optimizer state lacks \(name) with \(p.count) values")
                }
                a.withUnsafeBufferPointer { buf.update(from: $0.baseAddress!, count: p.count) }
            }
        }
        self.step = step
    }
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
