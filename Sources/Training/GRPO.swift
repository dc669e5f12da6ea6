// One GRPO step as named stages (STYLE.md §11): generate → score → advantages → loss → update.
// Metric names are TRL's.

import Autograd
import Foundation
import Model
import Tasks

/// A sampled completion with its problem, rewards and advantage.
public struct ScoredCompletion: Sendable {
    public var problem: Problem
    public var completion: Completion
    public var text: String
    public var rewards: RewardScores
    public var advantage: Double = 0
}

/// What one GRPO step produced.
public struct GRPOStepResult {
    public var metrics: [String: Double]
    public var samples: [ScoredCompletion]
}

public struct GRPOStep {
    public let config: TrainConfig
    public let tokenizer: any Tokenizer
    public let rewards: RewardSet
    /// Tokens every completion must reach before a stop token ends it (benchmarks fix the length).
    public var minNewTokens = 0

    public init(config: TrainConfig, tokenizer: any Tokenizer, rewards: RewardSet) {
        self.config = config
        self.tokenizer = tokenizer
        self.rewards = rewards
    }

    var options: SamplingOptions {
        SamplingOptions(temperature: config.grpo.temperature, topK: config.grpo.topK, topP: config.grpo.topP,
                        minP: config.grpo.minP, maxNewTokens: config.grpo.maxCompletionLength, minNewTokens: minNewTokens)
    }

    // MARK: - Stages

    /// Samples G completions for each of `problems` and scores them.
    public func generate(policy: Policy, problems: [Problem], rng: inout RNG) throws -> [ScoredCompletion] {
        let g = config.grpo.numGenerations
        let prompts = try problems.map { try tokenizer.encodePrompt($0.prompt).map(Int32.init) }
        let completions = Sampler.sample(policy: policy, prompts: prompts, group: g, options: options,
                                         stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rng: &rng)
        return completions.map { c in
            let problem = problems[c.prompt]
            let text = tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true)
            return ScoredCompletion(problem: problem, completion: c, text: text, rewards: rewards.score(text, problem))
        }
    }

    /// Fills in group-relative advantages; returns the fraction of zero-variance groups.
    public func assignAdvantages(_ batch: inout [ScoredCompletion]) -> Double {
        let (adv, zero) = GRPOLoss.advantages(rewards: batch.map(\.rewards.total), group: config.grpo.numGenerations,
                                              scale: config.grpo.scaleRewards)
        for i in batch.indices { batch[i].advantage = adv[i] }
        return zero
    }

    /// The padded training batch: prompts left-padded to a common length, completions right-padded.
    struct Batch {
        var ids: [Int32]
        var targets: [Int32]
        var keyStart: [Int]
        var old: [Float]
        var advantages: [Float]
        var mask: [Float]
        var s: Int
        var t: Int
    }

    func batch(_ samples: [ScoredCompletion]) throws -> Batch {
        let prompts = try samples.map { try tokenizer.encodePrompt($0.problem.prompt).map(Int32.init) }
        let tp = prompts.map(\.count).max()!, tc = samples.map(\.completion.tokens.count).max()!
        let s = samples.count, t = tp + tc
        var b = Batch(ids: .init(repeating: Int32(tokenizer.pad), count: s * t), targets: .init(repeating: -1, count: s * t),
                      keyStart: [], old: .init(repeating: 0, count: s * t), advantages: .init(repeating: 0, count: s * t),
                      mask: .init(repeating: 0, count: s * t), s: s, t: t)
        for (r, sc) in samples.enumerated() {
            let pad = tp - prompts[r].count
            b.keyStart.append(pad)
            for (i, id) in prompts[r].enumerated() { b.ids[r * t + pad + i] = id }
            let toks = sc.completion.tokens
            let masked = config.grpo.maskTruncatedCompletions && sc.completion.truncated
            for (j, id) in toks.enumerated() {
                b.ids[r * t + tp + j] = id
                let pos = r * t + tp - 1 + j  // the position whose logits predict completion token j
                b.targets[pos] = id
                b.old[pos] = sc.completion.logprobs[j]
                b.advantages[pos] = Float(sc.advantage)
                b.mask[pos] = masked ? 0 : 1
            }
        }
        return b
    }

    /// Logprobs (S·T) of the batch's targets under `policy` at the sampling temperature, and the
    /// logits' entropy per position when asked.
    func logprobs(_ policy: Policy, _ b: Batch, entropy: Bool = false) -> (Tensor, [Float]?) {
        let logits = policy.forward(ids: b.ids, batch: b.s, time: b.t, keyStart: b.keyStart) * (1 / config.grpo.temperature)
        let h = entropy ? Autograd.noGrad { Tensor.softmaxEntropy(logits) } : nil
        return (Tensor.logSoftmaxGather(logits, targets: b.targets), h)
    }

    /// μ optimisation passes over one generation batch. Returns the loss-side metrics.
    public func update(policy: Policy, reference: Policy?, optimizer: AdamW, samples: [ScoredCompletion]) throws -> [String: Double] {
        let b = try batch(samples)
        let lossType = LossType(rawValue: config.grpo.lossType)!
        let totalTokens = Int(b.mask.reduce(0, +))
        let weights = GRPOLoss.weights(mask: b.mask, sequences: b.s, type: lossType,
                                       maxCompletionLength: config.grpo.maxCompletionLength, totalTokens: totalTokens)
        let ref: [Float]? = config.grpo.beta > 0 && reference != nil
            ? Autograd.noGrad { logprobs(reference!, b).0.array } : nil
        var m: [String: Double] = [:]
        var lossSum = 0.0, normSum = 0.0
        for it in 0..<config.grpo.numIterations {
            let (logp, h) = logprobs(policy, b, entropy: it == 0)
            let (loss, stats) = GRPOLoss.loss(
                logp: logp, old: b.old, ref: ref, advantages: b.advantages, weights: weights, mask: b.mask,
                epsilonLow: config.grpo.epsilon, epsilonHigh: config.epsilonHigh, beta: config.grpo.beta)
            lossSum += Double(loss.item)
            loss.backward()
            normSum += config.optimizer.maxGradNorm > 0
                ? clipGradNorm(policy.parameters, maxNorm: Double(config.optimizer.maxGradNorm))
                : gradNorm(policy.parameters)
            optimizer.update()
            optimizer.zeroGrad()
            if let h {
                let tokens = max(1, Double(totalTokens))
                m["entropy"] = zip(h, b.mask).reduce(0.0) { $0 + Double($1.0 * $1.1) } / tokens
            }
            if it == 0 {
                m["kl"] = stats.kl
                m["clip_ratio/low_mean"] = stats.clipLow
                m["clip_ratio/high_mean"] = stats.clipHigh
                m["clip_ratio/region_mean"] = stats.clipRegion
            }
        }
        let mu = Double(config.grpo.numIterations)
        m["loss"] = lossSum / mu
        m["grad_norm"] = normSum / mu
        m["num_tokens"] = Double(totalTokens)
        return m
    }

    /// Reward and completion metrics of a scored batch, with TRL's names.
    public func rewardMetrics(_ batch: [ScoredCompletion], zeroStdFraction: Double) -> [String: Double] {
        func meanStd(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(max(1, xs.count))
            let v = xs.count > 1 ? xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1) : 0
            return (m, v.squareRoot())
        }
        var out: [String: Double] = [:]
        let (r, rs) = meanStd(batch.map(\.rewards.total))
        out["reward"] = r
        out["reward_std"] = rs
        for f in rewards.functions {
            let (m, s) = meanStd(batch.map { $0.rewards[f.name] ?? 0 })
            out["rewards/\(f.name)/mean"] = m
            out["rewards/\(f.name)/std"] = s
        }
        out["frac_reward_zero_std"] = zeroStdFraction
        let lengths = batch.map { Double($0.completion.tokens.count) }
        out["completions/mean_length"] = lengths.reduce(0, +) / Double(max(1, lengths.count))
        out["completions/min_length"] = lengths.min() ?? 0
        out["completions/max_length"] = lengths.max() ?? 0
        out["completions/clipped_ratio"] = Double(batch.filter(\.completion.truncated).count) / Double(max(1, batch.count))
        return out
    }
}
