// Numerical health: a non-finite loss, gradient norm or weight stops training at once, before the
// step's update (or its weights) can be saved, so the newest checkpoint stays the last good one.

import Autograd
import Model

/// Training produced a NaN or an infinity.
public struct NumericalError: Error, CustomStringConvertible, Equatable {
    /// "sft" or "grpo" (filled in by the trainer).
    public var stage = ""
    /// The step that failed, counted as the run counts (filled in by the trainer).
    public var step = 0
    /// What was not finite: "loss", "gradient norm", or "weight <tensor name>".
    public var what: String

    public init(what: String) { self.what = what }

    public var description: String {
        let rate = stage == "grpo" ? "grpo.learning_rate" : "sft.learning_rate"
        return "\(stage) step \(step): the \(what) is not finite, so training stopped; the newest checkpoint is the last good one. "
            + "Likely causes: \(rate) too high, optimizer.eps, beta1 or beta2, model.init_std or model.rms_eps; lower the learning rate or restore the defaults"
    }
}

/// One optimizer update of SFT and GRPO alike, on gradients already summed across ranks: clip them to
/// `maxGradNorm` (0: only measure), refuse a non-finite `loss` or norm before the update, apply AdamW
/// and the policy's post-step update (MoE routing bias), and refuse a non-finite weight after it.
/// Returns the gradient norm before clipping.
func applyUpdate(policy: Policy, optimizer: AdamW, loss: Double, maxGradNorm: Float) throws -> Double {
    let norm = maxGradNorm > 0 ? clipGradNorm(policy.parameters, maxNorm: Double(maxGradNorm)) : gradNorm(policy.parameters)
    if !loss.isFinite { throw NumericalError(what: "loss") }
    if !norm.isFinite { throw NumericalError(what: "gradient norm") }
    optimizer.update()
    optimizer.releaseGradients()
    policy.afterOptimizerStep()
    for (name, t) in policy.namedParameters where !allFinite(t) { throw NumericalError(what: "weight \(name)") }
    return norm
}

/// Whether every value of `t` is finite: 0·x is NaN exactly when x is a NaN or an infinity, so one
/// SIMD sum of those products answers for the whole tensor without a branch per value.
func allFinite(_ t: Tensor) -> Bool {
    let p = UnsafeRawPointer(t.data), n = t.count
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n {
        acc += 0 * p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        i += 16
    }
    var tail: Float = 0
    while i < n { tail += 0 * t.data[i]; i += 1 }
    return (acc.sum() + tail) == 0
}
