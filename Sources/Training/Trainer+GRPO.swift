// The trainer's GRPO step, stage by stage (docs/grpo.md maps each stage to its metrics).

import Autograd
import Foundation
import Model
import Runs
import Tasks

extension Trainer {
    /// One GRPO step: collect groups that disagree → optimise on them for μ passes (GRPOStep.update:
    /// reference logprobs, clipped loss, all-reduce, clipping, AdamW) → log → maybe evaluate → maybe
    /// checkpoint.
    func grpoStep() throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let k = state.step - sftSteps
        optimizer.lr = schedule(sft: false).lr(at: k)
        let step = GRPOStep(config: config, tokenizer: tokenizer, rewards: rewards)
        let groups = try collectGroups(step, k: k)
        var metrics = groups.metrics(step, curriculum: curriculumMetrics())
        // Without signal every advantage is 0: no update, unless sft_coef's traces still have a loss to take.
        let signal = groups.batch.contains(where: { $0.advantage != 0 }), traces = sftTraces(step: k)
        if signal || !traces.isEmpty {
            metrics.merge(try step.update(policy: policy, reference: reference, optimizer: optimizer, samples: signal ? groups.batch : [],
                                          traces: traces, communicator: communicator)) { a, _ in a }
        }
        state.step += 1
        try logStep(metrics, groups, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        let k1 = k + 1
        if config.eval.every > 0 && k1 % config.eval.every == 0 && k1 < config.grpo.steps {
            state.lastEval = try evaluate()
        }
        if config.checkpoint.every > 0 && k1 % config.checkpoint.every == 0 && k1 < config.grpo.steps {
            try saveCheckpoint()
        }
    }

    /// The teacher traces whose next-token loss joins GRPO step `k`'s update (grpo.sft_coef > 0),
    /// drawn from a stream of the seed and the step alone, so a resumed run draws the same ones.
    func sftTraces(step k: Int) -> [SFTExample] {
        guard config.grpo.sftCoef > 0, !traces.isEmpty else { return [] }
        var rng = SplitMix64(seed: config.seed, stream: "grpo-sft-\(k)")
        return (0..<config.grpo.sftBatchSize).map { _ in traces[rng.int(below: traces.count)] }
    }

    /// What one step sampled, and the groups it trains on.
    struct CollectedGroups {
        /// Every scored completion of the step, group by group.
        var generated: [ScoredCompletion] = []
        /// The groups kept for the loss (those whose rewards differ, under dynamic sampling).
        var batch: [ScoredCompletion] = []
        var rounds = 0, zeroGroups = 0, replayed = 0, groupSize: Int

        /// Reward metrics over everything sampled (the policy's reward, not the filtered batch's),
        /// dynamic sampling's counts and the curriculum's state.
        func metrics(_ step: GRPOStep, curriculum: [String: Double]) -> [String: Double] {
            var m = step.rewardMetrics(generated, zeroStdFraction: Double(zeroGroups) / Double(max(1, generated.count / groupSize)))
            m["dynamic_sampling/kept_groups"] = Double(batch.count / groupSize)
            m["dynamic_sampling/dropped_groups"] = Double((generated.count - batch.count) / groupSize)
            m["dynamic_sampling/rounds"] = Double(rounds)
            m["curriculum/replayed_prompts"] = Double(replayed)
            return m.merging(curriculum) { a, _ in a }
        }
    }

    /// generate → score → advantages → keep the groups that disagree (DAPO's dynamic sampling, Yu et
    /// al. 2025): a group whose rewards are all equal has zero advantages and no gradient. The extra
    /// prompts ride in the same batched sampling call, so filtering costs a fraction more sampling
    /// rather than whole extra rounds. Each group's pass rate feeds the curriculum.
    func collectGroups(_ step: GRPOStep, k: Int) throws -> CollectedGroups {
        let g = config.grpo.numGenerations, want = config.grpo.promptsPerStep
        var c = CollectedGroups(groupSize: g)
        repeat {
            let pooled = sampler.state.pool.count
            let problems = try sampler.next(step.promptsToSample(missing: want - c.batch.count / g))
            c.replayed += pooled - sampler.state.pool.count
            let root = state.samplingRNG.state, round = UInt64(c.rounds)
            var scored = try step.generate(policy: policy, problems: problems, communicator: communicator, stream: {
                RNG(seed: root, stream: "grpo", keys: [UInt64(k), round, UInt64($0)])
            })
            let signal = step.assignAdvantages(&scored)
            for (i, hasSignal) in signal.enumerated() {
                let group = scored[(i * g)..<((i + 1) * g)]
                let passRate = group.map { $0.rewards["correctness"] ?? $0.rewards.total }.reduce(0, +) / Double(g)
                sampler.record(group.first!.problem, passRate: passRate, signal: hasSignal)
                if !hasSignal { c.zeroGroups += 1 }
            }
            for i in GRPOStep.keptGroups(signal: signal, want: want - c.batch.count / g, dynamic: config.grpo.dynamicSampling) {
                c.batch += scored[(i * g)..<((i + 1) * g)]
            }
            c.generated += scored
            c.rounds += 1
        } while config.grpo.dynamicSampling && c.batch.count < want * g && c.rounds <= config.grpo.maxResampleRounds
        state.sampler = sampler.state
        return c
    }

    /// Writes the step's metrics row, its first completions and the progress line.
    func logStep(_ stepMetrics: [String: Double], _ groups: CollectedGroups, seconds dt: Double) throws {
        var metrics = stepMetrics
        metrics["learning_rate"] = Double(optimizer.lr)
        metrics["step_time"] = dt
        metrics.merge(policy.routingMetrics) { a, _ in a }
        metrics["tokens_per_s"] = groups.generated.map { Double($0.completion.tokens.count) }.reduce(0, +) / dt
        // Each completion's prompt and completion tokens, as TRL counts its attention mask; a group's
        // completions share one prompt, encoded once per group.
        let g = groups.groupSize
        let promptTokens = try stride(from: 0, to: groups.generated.count, by: g).reduce(0) {
            $0 + g * (try tokenizer.encodePrompt(groups.generated[$1].problem.prompt).count)
        }
        let sampled = promptTokens + groups.generated.reduce(0) { $0 + $1.completion.tokens.count }
        state.numTokens = (state.numTokens ?? 0) + sampled
        metrics["num_tokens"] = Double(state.numTokens ?? 0)
        try log?.log(step: state.step, stage: "grpo", metrics)
        for sc in groups.generated.prefix(config.logging.completionsPerStep) {
            try log?.logCompletion(CompletionRecord(
                step: state.step, prompt: sc.problem.prompt, completion: sc.text, answer: sc.problem.answer,
                family: sc.problem.family, level: sc.problem.difficulty,
                rewards: Dictionary(uniqueKeysWithValues: sc.rewards.values.map { ($0.name, $0.value) }),
                reward: sc.rewards.total, advantage: sc.advantage))
        }
        history.append((state.step, metrics["reward"] ?? 0))
        progress(stage: "grpo", dt: dt, fields: String(
            format: "reward %.3f | acc %.3f | kl %.4f | groups kept %ld/%ld", metrics["reward"] ?? 0, metrics["rewards/correctness/mean"] ?? 0,
            metrics["kl"] ?? 0, groups.batch.count / g, groups.generated.count / g))
    }
}
