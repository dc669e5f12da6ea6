// Learning-rate schedules: linear warmup, then cosine decay to a floor, or constant.

import Foundation

public struct Schedule: Sendable {
    public var peak: Float
    public var warmup: Int
    public var total: Int
    public var cosine: Bool
    public var minRatio: Float

    public init(peak: Float, warmup: Int, total: Int, cosine: Bool, minRatio: Float) {
        self.peak = peak
        self.warmup = warmup
        self.total = total
        self.cosine = cosine
        self.minRatio = minRatio
    }

    /// The learning rate for 0-based step `step` of `total`.
    public func lr(at step: Int) -> Float {
        if step < warmup { return peak * Float(step + 1) / Float(warmup) }
        guard cosine, total > warmup else { return peak }
        let progress = min(1, Float(step - warmup) / Float(max(1, total - warmup)))
        return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Foundation.cos(Float.pi * progress)))
    }
}
