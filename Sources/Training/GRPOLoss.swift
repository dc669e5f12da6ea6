// The GRPO objective (Shao et al. 2024, DeepSeekMath §4) with TRL's options: the clipped surrogate
// with clip-higher (Yu et al. 2025, DAPO), token- or sequence-level ratios (GSPO), CISPO, training on
// the highest-entropy tokens only, the k3 KL estimator against a reference policy (Schulman 2020),
// four loss reductions, and group-relative advantages. Pure functions of tensors
// and arrays, so each piece is testable against hand-computed values.
//
// N = tokens of the flattened (sequences × time) batch; S = sequences; G = group size.

import Autograd
import Foundation

/// Token-level statistics of one loss evaluation (means over unmasked tokens).
public struct LossStats: Equatable, Sendable {
    /// Mean k3 KL to the reference (0 without one).
    public var kl: Double = 0
    /// Fraction of tokens whose ratio fell below 1 − ε with a negative advantage.
    public var clipLow: Double = 0
    /// Fraction of tokens whose ratio rose above 1 + ε_high with a positive advantage.
    public var clipHigh: Double = 0
    /// Either of the two.
    public var clipRegion: Double = 0
}

public enum GRPOLoss {
    /// The loss Σ_t w_t · ℓ_t, where ℓ_t = −min(r_t·A_t, clip(r_t, 1−ε, 1+ε_high)·A_t) + β·KL_t,
    /// r_t = exp(logp_t − old_t) and KL_t = exp(ref_t − logp_t) − (ref_t − logp_t) − 1.
    ///
    /// - logp: (N) the current policy's logprobs, on the tape, laid out as `sequences` rows.
    /// - old, ref, advantages, weights, mask: (N) constants. `weights` carries the reduction
    ///   (see `weights(…)`) and is zero wherever `mask` is.
    /// - level: `.sequence` makes r_t its row's exp(mean over the row's unmasked tokens of
    ///   logp − old) (GSPO), the gradient flowing through that mean.
    /// - cispo: ℓ_t = −sg(min(r_t, ε_high))·A_t·logp_t + β·KL_t instead (CISPO).
    /// - keep: 1 for the tokens the policy term keeps, 0 for the rest (top_entropy_quantile); the
    ///   KL term keeps every token, as in TRL.
    public static func loss(
        logp: Tensor, old: [Float], ref: [Float]?, advantages: [Float], weights: [Float], mask: [Float],
        epsilonLow: Float, epsilonHigh: Float, beta: Float, sequences s: Int = 1,
        level: ImportanceSamplingLevel = .token, cispo: Bool = false, keep: [Float]? = nil
    ) -> (loss: Tensor, stats: LossStats) {
        let n = logp.count
        let oldT = Tensor(shape: [n], old), advT = Tensor(shape: [n], advantages), wT = Tensor(shape: [n], weights)
        let ratio: Tensor
        if level == .sequence {
            let t = n / s
            let inverseLengths = (0..<s).map { r in 1 / max(1, mask[(r * t)..<((r + 1) * t)].reduce(0, +)) }
            let meanLogRatio = ((logp - oldT) * Tensor(shape: [n], mask)).reshaped([s, t]).sum(axis: 1, keepDim: true)
                * Tensor(shape: [s, 1], inverseLengths)
            ratio = (meanLogRatio.exp() * Tensor(shape: [s, t], repeating: 1)).reshaped([n])  // each token its row's
        } else {
            ratio = (logp - oldT).exp()
        }
        var perToken: Tensor
        if cispo {
            let capped = Tensor(shape: [n], (0..<n).map { Swift.min(ratio.data[$0], epsilonHigh) })  // a constant: no gradient
            perToken = -(capped * advT * logp)
        } else {
            let clipped = ratio.clamped(1 - epsilonLow, 1 + epsilonHigh)
            perToken = -Tensor.minimum(ratio * advT, clipped * advT)
        }
        if let keep { perToken = perToken * Tensor(shape: [n], keep) }
        var stats = LossStats()
        let tokens = max(1, Double(mask.reduce(0, +)))
        if beta > 0, let ref {
            let d = Tensor(shape: [n], ref) - logp
            let kl = d.exp() - d - 1
            perToken = perToken + kl * beta
            stats.kl = (0..<n).reduce(0.0) { $0 + Double(kl.data[$1] * mask[$1]) } / tokens
        }
        var low = 0.0, high = 0.0, region = 0.0
        for i in 0..<n where mask[i] != 0 {
            let r = ratio.data[i], a = advantages[i]
            let isLow = !cispo && r < 1 - epsilonLow && a < 0
            let isHigh = cispo ? r > epsilonHigh && a > 0 : r > 1 + epsilonHigh && a > 0
            if isLow { low += 1 }
            if isHigh { high += 1 }
            if isLow || isHigh { region += 1 }
        }
        stats.clipLow = low / tokens
        stats.clipHigh = high / tokens
        stats.clipRegion = region / tokens
        return ((perToken * wT).sum(), stats)
    }

    /// Which tokens the policy term keeps under top_entropy_quantile ρ: those whose entropy is at least
    /// the (1 − ρ) quantile (linear interpolation, as torch.quantile) of `pool`, the entropies of every
    /// unmasked completion token of the batch. Returns, per position of `entropies`, 1 or 0 (0 where
    /// `mask` is).
    public static func highEntropyKeep(entropies: [Float], mask: [Float], pool: [Double], quantile rho: Double) -> [Float] {
        guard !pool.isEmpty else { return [Float](repeating: 0, count: entropies.count) }
        let sorted = pool.sorted(), q = (1 - rho) * Double(sorted.count - 1)
        let lo = Int(q.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
        let threshold = sorted[lo] + (q - Double(lo)) * (sorted[hi] - sorted[lo])
        return zip(entropies, mask).map { h, m in m != 0 && Double(h) >= threshold ? 1 : 0 }
    }

    /// Per-token reduction weights for sequences of `lengths` unmasked tokens laid out in `mask`
    /// (S rows of T), so that Σ_t w_t·ℓ_t is the loss of `type`:
    /// grpo: mean over each sequence, then over sequences; bnpo: mean over this batch's tokens;
    /// dr_grpo: sum / (S · max_completion_length); dapo and cispo: sum / `totalTokens` (all tokens of
    /// the generation batch, however it is split into mini-batches).
    /// When `mask` is one rank's shard of a data-parallel batch, `globalSequences` and `globalTokens`
    /// are the whole batch's sequences and unmasked tokens, so the ranks' losses sum to one loss.
    public static func weights(
        mask: [Float], sequences s: Int, type: LossType, maxCompletionLength: Int, totalTokens: Int,
        globalSequences: Int? = nil, globalTokens: Int? = nil
    ) -> [Float] {
        let t = mask.count / s
        var w = [Float](repeating: 0, count: mask.count)
        let batchTokens = globalTokens.map { Float(max(1, $0)) } ?? max(1, mask.reduce(0, +))
        let sAll = Float(globalSequences ?? s)
        for r in 0..<s {
            let len = max(1, mask[(r * t)..<((r + 1) * t)].reduce(0, +))
            let scale: Float
            switch type {
            case .grpo: scale = 1 / (len * sAll)
            case .bnpo: scale = 1 / batchTokens
            case .drGRPO: scale = 1 / (sAll * Float(maxCompletionLength))
            case .dapo, .cispo: scale = 1 / Float(max(1, totalTokens))
            }
            for i in 0..<t { w[r * t + i] = mask[r * t + i] * scale }
        }
        return w
    }

    /// Group-relative advantages: r − mean(group), divided by std + 1e-4 under `scale`
    /// ("group": the group's std; "batch": the whole batch's; "none": not divided). Std uses n − 1,
    /// as torch.std. Rewards are grouped consecutively, G at a time. Also returns, per group, whether it
    /// has a learning signal: a std of at least 1e-6 (a group whose rewards are all equal has none).
    public static func advantages(rewards: [Double], group g: Int, scale: String) -> (advantages: [Double], signal: [Bool]) {
        precondition(g >= 2 && rewards.count % g == 0)
        func std(_ xs: ArraySlice<Double>) -> Double {
            let m = xs.reduce(0, +) / Double(xs.count)
            return (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot()
        }
        let batchStd = std(rewards[...])
        var adv = [Double](repeating: 0, count: rewards.count)
        var signal: [Bool] = []
        for start in stride(from: 0, to: rewards.count, by: g) {
            let grp = rewards[start..<(start + g)]
            let mean = grp.reduce(0, +) / Double(g)
            let s = std(grp)
            signal.append(s >= 1e-6)
            for i in start..<(start + g) {
                let centred = rewards[i] - mean
                switch scale {
                case "group": adv[i] = centred / (s + 1e-4)
                case "batch": adv[i] = centred / (batchStd + 1e-4)
                default: adv[i] = centred
                }
            }
        }
        return (adv, signal)
    }
}
