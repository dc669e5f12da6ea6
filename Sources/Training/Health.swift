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

enum Health {
    /// Throws when `value` (the loss or the gradient norm) is a NaN or an infinity.
    static func check(_ value: Double, _ what: String) throws {
        if !value.isFinite { throw NumericalError(what: what) }
    }

    /// Throws naming the first parameter that holds a NaN or an infinity.
    static func checkWeights(_ policy: Policy) throws {
        for (name, t) in policy.namedParameters {
            let p = t.data
            var bad = false
            for i in 0..<t.count where !p[i].isFinite { bad = true; break }
            if bad { throw NumericalError(what: "weight \(name)") }
        }
    }
}
