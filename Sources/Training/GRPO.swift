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

public struct GRPOStep {
    public let config: TrainConfig
    public let tokenizer: any Tokenizer
    public let rewards: RewardSet
    /// Tokens every completion must reach before a stop token ends it (benchmarks fix the length).
    public var minNewTokens = 0
    /// What one more training micro-batch costs, in padded tokens (`SFT.lengthGroups`).
    public var microBatchOverhead = 256

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
        let prompts = try encodePrompts(problems, policy: policy)
        let completions = Sampler.sample(policy: policy, prompts: prompts, group: config.grpo.numGenerations, options: options,
                                         stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rng: &rng)
        return score(completions, problems)
    }

    /// Samples G completions for each of `problems`, problem p's group drawing from `rngs[p]` alone,
    /// and scores them.
    public func generate(policy: Policy, problems: [Problem], rngs: inout [RNG]) throws -> [ScoredCompletion] {
        let prompts = try encodePrompts(problems, policy: policy)
        let completions = Sampler.sample(policy: policy, prompts: prompts, group: config.grpo.numGenerations, options: options,
                                         stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rngs: &rngs)
        return score(completions, problems)
    }

    /// The problems' prompt ids, checked to leave room for max_completion_length in the context
    /// (release builds skip the sampler's own precondition).
    func encodePrompts(_ problems: [Problem], policy: Policy) throws -> [[Int32]] {
        let prompts = try problems.map { try tokenizer.encodePrompt($0.prompt).map(Int32.init) }
        if let i = prompts.indices.max(by: { prompts[$0].count < prompts[$1].count }),
           prompts[i].count + config.grpo.maxCompletionLength > policy.config.maxContext {
            throw ConfigError(file: nil, key: "model.max_context", message: "is \(policy.config.maxContext) tokens, but problem \(problems[i].id) has a \(prompts[i].count)-token prompt and grpo.max_completion_length is \(config.grpo.maxCompletionLength): raise model.max_context, lower the completion length, or cap data.curriculum.max_level")
        }
        return prompts
    }

    func score(_ completions: [Completion], _ problems: [Problem]) -> [ScoredCompletion] {
        completions.map { c in
            let problem = problems[c.prompt]
            let text = tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true)
            return ScoredCompletion(problem: problem, completion: c, text: text, rewards: rewards.score(text, problem))
        }
    }

    /// Prompts to sample when `missing` groups are still wanted: with dynamic sampling,
    /// `grpo.oversample` more (rounded up), since some groups will agree and be dropped.
    public func promptsToSample(missing: Int) -> Int {
        guard config.grpo.dynamicSampling else { return missing }
        return missing + Int((Double(missing) * config.grpo.oversample).rounded(.up))
    }

    /// The groups of one sampling round that go into the loss: with dynamic sampling, the first `want`
    /// groups that have signal (never a zero-variance one, so possibly fewer than `want`, or none);
    /// without it, every group.
    public static func keptGroups(signal: [Bool], want: Int, dynamic: Bool) -> [Int] {
        guard dynamic else { return Array(signal.indices) }
        return Array(signal.indices.filter { signal[$0] }.prefix(max(0, want)))
    }

    /// Fills in group-relative advantages; returns, per group, whether its rewards differ (GRPOLoss.advantages).
    @discardableResult
    public func assignAdvantages(_ batch: inout [ScoredCompletion]) -> [Bool] {
        let (adv, signal) = GRPOLoss.advantages(rewards: batch.map(\.rewards.total), group: config.grpo.numGenerations,
                                                scale: config.grpo.scaleRewards.rawValue)
        for i in batch.indices { batch[i].advantage = adv[i] }
        return signal
    }

    /// A training micro-batch: each row its prompt then its completion, right-padded to the longest row.
    struct Batch {
        /// The rows and their shared-prefix layout, made once for every pass over them.
        var rows: SharedPrefixes
        var targets: [Int32]
        var old: [Float]
        var advantages: [Float]
        var mask: [Float]
        var s: Int { rows.batch }
        var t: Int { rows.time }
    }

    /// The training batch as micro-batches of rows of similar length (`SFT.lengthGroups`), so a row
    /// is padded to its micro-batch's longest rather than the batch's: GRPO's rows mix short and long
    /// prompts and completions. A policy with MoE layers takes the batch whole, as its balance loss and
    /// routing statistics are per forward.
    func batches(_ samples: [ScoredCompletion], policy: Policy) throws -> [Batch] {
        var promptIDs: [String: [Int32]] = [:]  // a group's G rows share one prompt: encode it once
        let prompts = try samples.map { sc in
            if let ids = promptIDs[sc.problem.prompt] { return ids }
            let ids = try tokenizer.encodePrompt(sc.problem.prompt).map(Int32.init)
            promptIDs[sc.problem.prompt] = ids
            return ids
        }
        let lengths = zip(prompts, samples).map { $0.count + $1.completion.tokens.count }
        let groups = policy.moeLayers.isEmpty ? SFT.lengthGroups(lengths, overhead: microBatchOverhead) : [Array(samples.indices)]
        return groups.map { rows in batch(rows.map { samples[$0] }, prompts: rows.map { prompts[$0] }) }
    }

    func batch(_ samples: [ScoredCompletion], prompts: [[Int32]]) -> Batch {
        let lengths = zip(prompts, samples).map { $0.count + $1.completion.tokens.count }
        let s = samples.count, t = lengths.max()!
        var ids = [Int32](repeating: Int32(tokenizer.pad), count: s * t), targets = [Int32](repeating: -1, count: s * t)
        var old = [Float](repeating: 0, count: s * t), advantages = old, mask = old
        for (r, sc) in samples.enumerated() {
            let tp = prompts[r].count
            for (i, id) in prompts[r].enumerated() { ids[r * t + i] = id }
            let masked = config.grpo.maskTruncatedCompletions && sc.completion.truncated
            for (j, id) in sc.completion.tokens.enumerated() {
                ids[r * t + tp + j] = id
                let pos = r * t + tp - 1 + j  // the position whose logits predict completion token j
                targets[pos] = id
                old[pos] = sc.completion.logprobs[j]
                advantages[pos] = Float(sc.advantage)
                mask[pos] = masked ? 0 : 1
            }
        }
        return Batch(rows: SharedPrefixes(ids: ids, batch: s, time: t, lengths: lengths), targets: targets, old: old,
                     advantages: advantages, mask: mask)
    }

    /// Logprobs (S·T) of the batch's targets under `policy` at the sampling temperature, and the
    /// logits' entropy per position when asked (0 at positions without a target). Rows that begin alike
    /// (a group's prompt, and the tokens its completions drew alike) run each shared prefix through the
    /// layers once (`Policy.hidden(prefixes:)`).
    /// The LM head runs on the completion positions alone, in chunks of rows: the [rows × vocabulary]
    /// logits are never held whole (`Tensor.headLogprobs`).
    func logprobs(_ policy: Policy, _ b: Batch, entropy: Bool = false) -> (Tensor, [Float]?) {
        let h = policy.hidden(prefixes: b.rows)
        return Tensor.headLogprobs(h, head: policy.lmHead, scale: 1 / config.grpo.temperature, targets: b.targets, entropy: entropy)
    }

    /// Completion tokens of a sample that the loss counts (none when a truncated one is masked).
    func lossTokens(_ sc: ScoredCompletion) -> Int {
        config.grpo.maskTruncatedCompletions && sc.completion.truncated ? 0 : sc.completion.tokens.count
    }

    /// Parameters from which a policy's pooled buffers are given back to malloc between sampling and
    /// the update, for the other phase to reuse: a 0.5B-parameter policy's phases each hold gigabytes.
    static let trimPoolAbove = 50_000_000

    /// μ optimisation passes over one generation batch (whole groups). Returns the loss-side metrics.
    ///
    /// Under data parallelism every rank passes the same whole batch: each takes the loss of its
    /// `communicator.share` of the groups, normalised by the whole batch's sequence and token
    /// counts, so the ranks' losses sum to the one-process loss; gradients are summed across ranks
    /// before clipping, so every rank takes the same AdamW step.
    ///
    /// `traces` (grpo.sft_coef > 0): teacher traces whose next-token loss, weighted by sft_coef, joins
    /// every pass's gradient, each rank taking its share as SFT does.
    public func update(policy: Policy, reference: Policy?, optimizer: AdamW, samples: [ScoredCompletion],
                       traces: [SFTExample] = [], communicator: Communicator = .single) throws -> [String: Double] {
        // Sampling's buffers (KV caches, packed weights, decode activations) are not the update's: for
        // a large policy, give them back to malloc before it and the update's before the next
        // sampling, so that peak memory is about the larger phase's, not their sum (malloc serves one
        // phase's requests from what the other freed: `BufferPool.keepFreedMemory`). A small policy
        // keeps them in the pool: its buffers are small, and its shapes repeat exactly.
        let trims = policy.config.parameterCount >= Self.trimPoolAbove
        if trims { BufferPool.trim() }
        defer { if trims { BufferPool.trim() } }
        let g = config.grpo.numGenerations
        let groups = communicator.share(samples.count / g)
        let local = Array(samples[(groups.lowerBound * g)..<(groups.upperBound * g)])
        let parts = local.isEmpty ? [] : try batches(local, policy: policy)
        let lossType = config.grpo.lossType
        let totalTokens = samples.reduce(0) { $0 + lossTokens($1) }
        // Each micro-batch's weights use the whole batch's counts, so their losses (and gradients)
        // add up to the whole batch's, as ranks' shards do.
        let weights = parts.map {
            GRPOLoss.weights(mask: $0.mask, sequences: $0.s, type: lossType, maxCompletionLength: config.grpo.maxCompletionLength,
                             totalTokens: totalTokens, globalSequences: samples.count, globalTokens: totalTokens)
        }
        // A reference with LoRA adapters is its base: the adapters are switched off for its pass.
        let refs: [[Float]?] = parts.map { b in
            guard config.grpo.beta > 0, let reference else { return nil }
            return Autograd.noGrad { reference.withoutAdapters { logprobs(reference, b).0.array } }
        }
        // sft_coef's traces: each rank's share, over the whole batch's target tokens, as in SFT.
        let sftCoef = traces.isEmpty ? 0 : config.grpo.sftCoef
        let myTraces = sftCoef > 0 ? Array(traces[communicator.share(traces.count)]) : []
        let traceTokens = traces.reduce(0) { $0 + SFT.targetCount($1) }
        var m: [String: Double] = [:]
        var lossSum = 0.0, normSum = 0.0, sftLossSum = 0.0
        let tokens = max(1, Double(totalTokens))
        for it in 0..<config.grpo.numIterations {
            var sums = LossSums()  // this rank's sums
            if it == 0 && policy.sharesPrefixes {
                sums.packedTokens = Double(parts.reduce(0) { $0 + $1.rows.packed })
                sums.realTokens = Double(parts.reduce(0) { $0 + $1.rows.realTokens })
            }
            let keep = highEntropyKeep(policy, parts, samples: samples, communicator: communicator)
            for (i, b) in parts.enumerated() {
                let (logp, h) = logprobs(policy, b, entropy: it == 0)
                let (loss, stats) = GRPOLoss.loss(
                    logp: logp, old: b.old, ref: refs[i], advantages: b.advantages, weights: weights[i], mask: b.mask,
                    epsilonLow: config.grpo.epsilon, epsilonHigh: config.epsilonHigh, beta: config.grpo.beta, sequences: b.s,
                    level: config.grpo.importanceSamplingLevel, cispo: lossType == .cispo, keep: keep?[i])
                (policy.auxiliaryLoss.map { loss + $0 } ?? loss).backward()  // MoE balance loss, when configured
                let partTokens = Double(b.mask.reduce(0, +))
                sums.loss += Double(loss.item)
                if let h { sums.entropyTokens += zip(h, b.mask).reduce(0.0) { $0 + Double($1.0 * $1.1) } }
                sums.klTokens += stats.kl * partTokens
                sums.clipLowTokens += stats.clipLow * partTokens
                sums.clipHighTokens += stats.clipHigh * partTokens
                sums.clipRegionTokens += stats.clipRegion * partTokens
            }
            if !myTraces.isEmpty {
                sums.sftLoss = SFT.accumulateGradients(policy: policy, batch: myTraces, pad: Int32(tokenizer.pad),
                                                       normalizer: traceTokens, weight: Float(sftCoef))
            }
            communicator.sumGradients(policy.parameters)
            let all = LossSums(communicator.sum(sums.array))
            normSum += try applyUpdate(policy: policy, optimizer: optimizer, loss: all.loss + sftCoef * all.sftLoss, maxGradNorm: config.optimizer.maxGradNorm)
            lossSum += all.loss
            sftLossSum += all.sftLoss
            if it == 0 && !samples.isEmpty {
                m["entropy"] = all.entropyTokens / tokens
                m["kl"] = all.klTokens / tokens
                m["clip_ratio/low_mean"] = all.clipLowTokens / tokens
                m["clip_ratio/high_mean"] = all.clipHighTokens / tokens
                m["clip_ratio/region_mean"] = all.clipRegionTokens / tokens
                if all.realTokens > 0 { m["update/distinct_prefix_fraction"] = all.packedTokens / all.realTokens }
            }
        }
        let mu = Double(config.grpo.numIterations)
        if !samples.isEmpty { m["loss"] = lossSum / mu }
        m["grad_norm"] = normSum / mu
        if sftCoef > 0 { m["sft/loss"] = sftLossSum / mu }
        return m
    }

    /// Under top_entropy_quantile < 1, which tokens of each micro-batch the policy term keeps: the
    /// current policy's entropies (a forward without the tape), thresholded at the quantile of every
    /// completion token of the whole batch, all ranks' included (each adds its own into a zeroed
    /// array at its groups' offset, and one all-reduce sums them), so neither the micro-batch split
    /// nor the rank split moves the threshold. Nil when every token is kept.
    func highEntropyKeep(_ policy: Policy, _ parts: [Batch], samples: [ScoredCompletion],
                         communicator: Communicator) -> [[Float]]? {
        let rho = config.grpo.topEntropyQuantile
        guard rho < 1 else { return nil }
        let entropies = parts.map { b in Autograd.noGrad { logprobs(policy, b, entropy: true).1! } }
        let local = zip(entropies, parts).flatMap { h, b in zip(h, b.mask).filter { $0.1 != 0 }.map { Double($0.0) } }
        var pool = local
        if communicator.size > 1 {
            let g = config.grpo.numGenerations, first = communicator.share(samples.count / g).lowerBound * g
            let offset = samples[..<first].reduce(0) { $0 + lossTokens($1) }
            var all = [Double](repeating: 0, count: samples.reduce(0) { $0 + lossTokens($1) })
            for (i, x) in local.enumerated() { all[offset + i] = x }
            pool = communicator.sum(all)
        }
        return zip(entropies, parts).map { h, b in GRPOLoss.highEntropyKeep(entropies: h, mask: b.mask, pool: pool, quantile: rho) }
    }

    /// Reward and completion metrics of a scored batch, with TRL's names.
    public func rewardMetrics(_ batch: [ScoredCompletion], zeroStdFraction: Double) -> [String: Double] {
        func meanStd(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(max(1, xs.count))
            let v = xs.count > 1 ? xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1) : 0
            return (m, v.squareRoot())
        }
        var out: [String: Double] = [:]
        out["reward"] = meanStd(batch.map(\.rewards.total)).0
        // TRL's reward_std: the mean over groups of each group's standard deviation.
        let g = config.grpo.numGenerations
        let groupStds = stride(from: 0, to: batch.count - g + 1, by: g).map { meanStd(batch[$0..<($0 + g)].map(\.rewards.total)).1 }
        out["reward_std"] = groupStds.reduce(0, +) / Double(max(1, groupStds.count))
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

/// One rank's sums of a GRPO pass, summed across ranks in one all-reduce: the loss, and the entropy,
/// KL and clip fractions times their token counts (divided by the global token count afterwards).
struct LossSums {
    var loss = 0.0, entropyTokens = 0.0, klTokens = 0.0, clipLowTokens = 0.0, clipHighTokens = 0.0, clipRegionTokens = 0.0
    /// The next-token loss on the sft_coef traces (unweighted; each rank's share over the batch's tokens).
    var sftLoss = 0.0
    /// Tokens the layers ran (the micro-batches' distinct prefixes) and the rows' real tokens.
    var packedTokens = 0.0, realTokens = 0.0

    init() {}

    init(_ a: [Double]) {
        (loss, entropyTokens, klTokens, clipLowTokens, clipHighTokens, clipRegionTokens, sftLoss) = (a[0], a[1], a[2], a[3], a[4], a[5], a[6])
        (packedTokens, realTokens) = (a[7], a[8])
    }

    var array: [Double] { [loss, entropyTokens, klTokens, clipLowTokens, clipHighTokens, clipRegionTokens, sftLoss, packedTokens, realTokens] }
}
