// The training run: cold-start SFT, then GRPO, with held-out evals, checkpoints and resume.
// Everything a run writes goes through Runs (metrics.jsonl, TensorBoard events, completions.jsonl,
// status.json, report.html); checkpoints are folders in Hugging Face layout plus trainer state.

import Autograd
import Foundation
import Model
import Runs
import Tasks

/// The part of a run's state that is not weights: saved in every checkpoint, restored on resume.
public struct TrainerState: Codable, Equatable, Sendable {
    /// Global optimizer steps completed (SFT steps, then GRPO steps).
    public var step = 0
    /// Order of the SFT trace batches.
    public var sftRNG: RNG
    /// Root of the GRPO sampling streams: group i of round r of GRPO step k draws from its own
    /// generator keyed by (k, r, i), so its samples do not depend on how groups are split over ranks.
    public var samplingRNG: RNG
    /// The training problem stream and its curriculum.
    public var sampler: TrainingSampler.State?
    /// The SFT result's held-out eval (the GRPO baseline).
    public var startEval: [String: Double]?
    /// The latest held-out eval.
    public var lastEval: [String: Double]?
    /// Best held-out pass@1 seen during GRPO, and at which step.
    public var bestPassAt1: Double?
    public var bestStep: Int?
    /// The step at which SFT ended, at its plateau or its cap (nil while it runs).
    public var sftEnd: Int?
    /// SFT's best validation check so far (its score is greedy pass@1 over levels).
    public var sftPlateau: PlateauTracker?
    /// Prompt and completion tokens sampled by GRPO so far (TRL's num_tokens); nil in older checkpoints.
    public var numTokens: Int?
    /// Ponder's checkpoint state version.
    public var version = 1
}

/// How a run reports progress on the terminal.
public protocol TrainerConsole: AnyObject {
    func progress(_ line: String, final: Bool)
    func message(_ text: String)
}

public final class Trainer {
    public let config: TrainConfig
    public let runDirectory: URL
    /// The model's tokenizer, laid out in `data.prompt_format` (prompts, SFT traces, sampling).
    public let tokenizer: any Tokenizer
    /// The model's own tokenizer, written into checkpoints.
    let baseTokenizer: any Tokenizer
    public private(set) var policy: Policy
    public internal(set) var state: TrainerState
    /// The processes of a data-parallel run; rank 0 alone writes the run folder.
    public let communicator: Communicator
    /// The run's metrics, events and completions (rank 0 only).
    let log: MetricsLog?
    let heldOut: HeldOutSet
    let evalProblems: [Problem]
    let rewards: RewardSet
    let traces: [SFTExample]
    /// SFT's validation split (problems drawn like the traces, never among them) and its teacher traces.
    let validation: [Problem]
    public let validationExamples: [SFTExample]
    /// The weights of SFT's best validation check, by tensor name (kept in SFT checkpoints for resume).
    var sftBest: [String: [Float]]?
    var optimizer: AdamW
    var sampler: TrainingSampler
    var reference: Policy?
    weak var console: TrainerConsole?
    var history: [(step: Int, reward: Double)] = []
    /// The step of the checkpoint this process resumed from (nil for a fresh start).
    var resumedAt: Int?
    var evalHistory: [(step: Int, passAt1: Double)] = []

    /// Return from `run()` once this many global steps are done, as if the process were killed
    /// there (for tests of resume, and for a time-boxed run).
    public var stopAfterStep: Int?
    var stopRequested: Bool { stopAfterStep.map { state.step >= $0 } ?? false }

    /// SFT steps: where it ended (its plateau), or the cap while it runs; and the run's steps in all.
    static func stepCounts(_ state: TrainerState, _ config: TrainConfig) -> (sft: Int, total: Int) {
        let sft = state.sftEnd ?? config.sft.steps
        return (sft, sft + config.grpo.steps)
    }
    var sftSteps: Int { Self.stepCounts(state, config).sft }
    var totalSteps: Int { Self.stepCounts(state, config).total }
    var checkpointsDirectory: URL { Checkpoints.directory(runDirectory) }

    /// Sets up a run in `runDirectory`: fresh, or resumed from its newest complete checkpoint. Under
    /// data parallelism every rank calls this with the same config and run folder, and every rank
    /// loads the same checkpoint. `sftTraces` replaces the task solvers' traces as the SFT set
    /// (distillation's kept teacher completions, tokenised with this run's tokenizer).
    /// Long on purpose: a Swift initializer sets every stored property before it may call a method, so the
    /// steps stay here in the order a run needs them, each a named helper where it can be.
    public init(config: TrainConfig, runDirectory: URL, resume: Bool, console: TrainerConsole? = nil,
                sftTraces: [DistilledTrace]? = nil, communicator: Communicator = .single) throws {
        try config.validate()  // a config built in code gets the loader's checks too
        self.config = config
        self.runDirectory = runDirectory
        self.console = console
        self.communicator = communicator
        try Self.setKernels(config)
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        heldOut = try Self.heldOutSet(config)
        // The weights and tokenizer: the newest checkpoint on resume, else model.from, else fresh.
        let latest = resume ? Checkpoints.latest(in: runDirectory) : nil
        let from = latest?.url ?? (config.model.from.isEmpty ? nil : URL(fileURLWithPath: config.model.from))
        let loaded = try from.map { try Checkpoint.load(from: $0) }
        baseTokenizer = loaded?.tokenizer ?? CharTokenizer()
        do {
            tokenizer = try config.data.promptFormat.apply(to: baseTokenizer)
        } catch {
            throw ConfigError(file: nil, key: "data.prompt_format", message: "\(error)")
        }
        rewards = try RewardSet(config: config.grpo.rewards)
        evalProblems = try Self.evalProblems(config)
        (traces, validation, validationExamples) = try Self.sftSets(config, tokenizer: tokenizer, heldOut: heldOut, distilled: sftTraces)
        sampler = try TrainingSampler(families: config.data.families, weights: config.data.weights.isEmpty ? nil : config.data.weights,
                                      seed: config.seed, heldOut: heldOut, curriculum: config.data.curriculum)

        if resume && latest == nil { console?.message("no complete checkpoint in \(runDirectory.path): starting fresh") }
        if let latest, let loaded {
            policy = loaded.policy
            (state, optimizer, sftBest) = try Self.restore(from: latest.url, policy: policy)
            if let s = state.sampler { sampler.state = s }
            console?.message("resuming from \(latest.url.lastPathComponent) (step \(state.step) of \(config.sft.steps + config.grpo.steps))")
        } else {
            if let loaded {  // model.from
                policy = loaded.policy
            } else {
                var initRNG = RNG(seed: config.seed, stream: "init")
                policy = Policy(config: config.policyConfig(vocabSize: tokenizer.vocabSize), rng: &initRNG)
            }
            if config.model.lora.enabled && policy.lora == nil {  // adapters on the base; a LoRA model.from keeps its own
                var loraRNG = RNG(seed: config.seed, stream: "lora")
                do { try policy.addLoRA(config.model.lora, rng: &loraRNG) } catch {
                    throw ConfigError(file: nil, key: "model.lora", message: "\(error)")
                }
            }
            state = TrainerState(sftRNG: RNG(seed: config.seed, stream: "sft"), samplingRNG: RNG(seed: config.seed, stream: "sampling"))
            optimizer = AdamW(policy.parameters, lr: 0)
        }
        Self.configureOptimizer(optimizer, config)
        policy.gradientCheckpointing = config.model.gradientCheckpointing
        // Expert-load counts and the balance loss are per process; summing them across ranks is not
        // built yet, and ranks with different routing biases would drift apart.
        if communicator.size > 1 && !policy.moeLayers.isEmpty {
            throw ConfigError(file: nil, key: "model.moe.experts", message: "is not supported under mpirun yet (expert-load balancing is per process): train MoE policies in one process")
        }
        // Release builds skip preconditions, so an over-long sequence would read past the RoPE
        // table instead of stopping: check the SFT set against the context here.
        if config.grpo.sftCoef > 0 && traces.isEmpty {
            throw ConfigError(file: nil, key: "grpo.sft_coef", message: "is \(config.grpo.sftCoef), but there are no teacher traces to take its loss on: raise sft.num_traces or set grpo.sft_coef to 0")
        }
        if config.sft.steps > 0 || config.grpo.sftCoef > 0, let longest = (traces + validationExamples).max(by: { $0.ids.count < $1.ids.count }),
           longest.ids.count > policy.config.maxContext {
            throw ConfigError(file: nil, key: "model.max_context", message: "is \(policy.config.maxContext) tokens, but an SFT trace is \(longest.ids.count) tokens long: raise model.max_context or choose shorter sft.levels (`ponder tasks show FAMILY --level N`)")
        }
        try Self.checkPromptRoom(config, maxContext: policy.config.maxContext, tokenizer: tokenizer, evalProblems: evalProblems)
        // A run trained on past its first grpo.steps (RunFolder.open) and killed: resuming it with the
        // shorter config would end it where it stands, so it is refused.
        let (sftTaken, asked) = Self.stepCounts(state, config)  // sftSteps and totalSteps, before self is whole
        if latest != nil && state.step > asked {
            let inGRPO = state.sftEnd != nil
            throw ConfigError(file: nil, key: inGRPO ? "grpo.steps" : "sft.steps", message:
                "asks for \(asked) steps in all, but this run has taken \(state.step): resume with the steps it was given (its config.yaml)"
                + (inGRPO ? ", e.g. --set grpo.steps=\(state.step - sftTaken) or more" : ""))
        }
        let resumedStep: Int? = latest == nil ? nil : state.step
        resumedAt = resumedStep
        log = communicator.isWriter ? try MetricsLog(runDirectory: runDirectory, resumeAfterStep: resumedStep) : nil
        if config.grpo.beta > 0 && state.startEval != nil {  // resumed inside GRPO: the reference is the SFT result
            reference = policy.lora != nil ? policy  // LoRA: the base, with the adapters off
                : try Checkpoint.load(from: Checkpoints.directory(runDirectory).appendingPathComponent("sft-final")).policy
        }
        try checkRanksAgree()
    }

    /// Stops before the first step when a held-out prompt, or a training prompt of a level GRPO may
    /// draw, leaves too little of the context for the new tokens after it: otherwise the first eval
    /// or GRPO batch would stop the run after SFT had spent its time. Training prompts are checked on
    /// 64 generated problems per family and level (the sampler checks every batch as it goes).
    static func checkPromptRoom(_ config: TrainConfig, maxContext: Int, tokenizer: any Tokenizer, evalProblems: [Problem]) throws {
        // The problem with the longest prompt, and its length in tokens (each prompt encoded once).
        func longest(_ problems: [Problem]) -> (problem: Problem, tokens: Int)? {
            problems.map { ($0, (try? tokenizer.encodePrompt($0.prompt).count) ?? 0) }.max { $0.1 < $1.1 }
        }
        let evalNew = evalOptions(config).maxNewTokens
        if let (problem, tokens) = longest(evalProblems), tokens + evalNew > maxContext {
            let key = config.eval.maxNewTokens > 0 ? "eval.max_new_tokens" : "grpo.max_completion_length"
            throw ConfigError(file: nil, key: key, message: "is \(evalNew), but held-out problem \(problem.id) has a \(tokens)-token prompt and model.max_context is \(maxContext): use at most \(maxContext - tokens)\(config.eval.maxNewTokens > 0 ? "" : " or set eval.max_new_tokens"), raise model.max_context, or narrow eval.levels")
        }
        guard config.grpo.steps > 0 else { return }
        let cap = config.data.curriculum.maxLevel
        for family in config.data.families.compactMap(TaskRegistry.family(named:)) {  // validate() checked the names
            let (low, high) = (family.trainingLevels.lowerBound, family.trainingLevels.upperBound)
            for level in low...(cap > 0 ? max(low, min(cap, high)) : high) {
                let drawn = (0..<64).map { family.problem(seed: config.seed, stream: "prompt-room", level: level, index: $0, id: "\(family.name)-L\(level)") }
                if let (problem, tokens) = longest(drawn), tokens + config.grpo.maxCompletionLength > maxContext {
                    throw ConfigError(file: nil, key: "grpo.max_completion_length", message: "is \(config.grpo.maxCompletionLength), but a level-\(level) \(family.name) prompt (\(problem.prompt)) is \(tokens) tokens and model.max_context is \(maxContext): use at most \(maxContext - tokens), raise model.max_context, or cap data.curriculum.max_level")
                }
            }
        }
    }

    /// Threads and matmul precision for the whole process, as the config asks.
    static func setKernels(_ config: TrainConfig) throws {
        if config.threads > 0 { Parallel.threads = config.threads }
        if config.precision == .bf16, let why = MatmulPrecision.bf16Unavailable {
            throw ConfigError(file: nil, key: "precision", message: "is bf16, but \(why)")
        }
        BLAS.precision = config.precision.resolved
    }

    /// The held-out problems in `data.datasets` (never trained on).
    static func heldOutSet(_ config: TrainConfig) throws -> HeldOutSet {
        let datasets = URL(fileURLWithPath: config.data.datasets)
        guard FileManager.default.fileExists(atPath: datasets.path) else {
            throw ConfigError(file: nil, key: "data.datasets", message: "names '\(datasets.path)', which does not exist; run `ponder tasks generate` or point it at the datasets folder")
        }
        return try HeldOutSet.load(directory: datasets)
    }

    /// The SFT traces (the task solvers', or distillation's kept teacher completions) and the
    /// validation split: problems drawn like the traces, never one of theirs, with their traces.
    static func sftSets(_ config: TrainConfig, tokenizer: any Tokenizer, heldOut: HeldOutSet, distilled: [DistilledTrace]?) throws
        -> (traces: [SFTExample], validation: [Problem], validationExamples: [SFTExample]) {
        var traces: [SFTExample] = []
        var traceSet = Set<String>()  // distilled traces carry no canonical form
        if let distilled {
            traces = try Distill.examples(distilled, tokenizer: tokenizer)
        } else {
            let traceProblems = SFT.traces(families: config.data.families, levels: config.sft.levels, count: config.sft.numTraces,
                                           seed: config.seed, heldOut: heldOut)
            traces = try traceProblems.map { try SFT.example($0, tokenizer: tokenizer) }
            traceSet = Set(traceProblems.map(\.canonical))
        }
        if config.sft.steps > 0 && traces.isEmpty && distilled != nil {
            throw ConfigError(file: nil, key: "sft.steps", message: "has no examples to train on: the teacher kept no completions (raise distill.samples_per_problem or distill.problems, or use a stronger teacher)")
        }
        if config.sft.steps > 0 && traces.isEmpty {
            throw ConfigError(file: nil, key: "sft.levels", message: "leaves no teacher traces to train on: choose levels the families have (`ponder tasks list`)")
        }
        guard config.sft.steps > 0 && config.sft.validationPerLevel > 0 else { return (traces, [], []) }
        let validation = SFT.validation(families: config.data.families, levels: config.sft.levels, perLevel: config.sft.validationPerLevel,
                                        seed: config.seed, heldOut: heldOut, exclude: traceSet)
        return (traces, validation, try validation.map { try SFT.example($0, tokenizer: tokenizer) })
    }

    /// Throws unless every rank starts from the same config, weights, optimizer step and trainer state.
    func checkRanksAgree() throws {
        guard communicator.size > 1 else { return }
        var d = FNV1a()
        d.add(try ConfigLoader.yaml(config))
        for p in policy.parameters + (reference?.parameters ?? []) { d.add(p.data, count: p.count) }
        d.add("\(optimizer.step) \(state.step) \(state.sftRNG.state) \(state.samplingRNG.state)")
        try communicator.checkSame(d.value, what: "config, checkpoint or trainer state")
    }

    static func configureOptimizer(_ opt: AdamW, _ c: TrainConfig) {
        opt.beta1 = c.optimizer.beta1
        opt.beta2 = c.optimizer.beta2
        opt.eps = c.optimizer.eps
        opt.weightDecay = c.optimizer.weightDecay
    }

    func schedule(sft: Bool) -> Schedule {
        Schedule(peak: sft ? config.sft.learningRate : config.grpo.learningRate, warmup: config.optimizer.warmupSteps,
                 total: sft ? config.sft.steps : config.grpo.steps,
                 cosine: sft || config.grpo.schedule == .inherit ? config.optimizer.schedule == .cosine : config.grpo.schedule == .cosine,
                 minRatio: config.optimizer.minLrRatio)
    }

    // MARK: - The run

    /// Runs (or continues) SFT then GRPO to the end. Returns the final held-out eval.
    @discardableResult
    public func run() throws -> [String: Double] {
        try writeStatus(.running)
        do {
            while state.step < sftSteps {
                do { try sftStep() } catch var e as NumericalError {
                    (e.stage, e.step) = ("sft", state.step + 1)
                    throw e
                }
                if stopRequested { return [:] }
            }
            if state.step == sftSteps && state.startEval == nil {
                endSFT()
                try startGRPO()
            }
            while state.step < totalSteps {
                do { try grpoStep() } catch var e as NumericalError {
                    (e.stage, e.step) = ("grpo", state.step + 1)
                    throw e
                }
                if stopRequested { return [:] }
            }
            let final = try finish()
            try writeStatus(.finished)
            return final
        } catch {
            try? writeStatus(.failed, message: "\(error)")
            throw error
        }
    }

    func sftStep() throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let s = state.step
        optimizer.lr = schedule(sft: true).lr(at: s)
        var batch: [SFTExample] = []
        for _ in 0..<config.sft.batchSize { batch.append(traces[state.sftRNG.int(below: traces.count)]) }
        // Each rank takes the loss of its share of the batch over the whole batch's tokens; the
        // summed gradients are the one-process gradient.
        let tokens = batch.reduce(0) { $0 + SFT.targetCount($1) }
        let mine = communicator.share(batch.count)
        var localLoss = 0.0
        if !mine.isEmpty {
            localLoss = SFT.accumulateGradients(policy: policy, batch: Array(batch[mine]), pad: Int32(tokenizer.pad), normalizer: tokens)
        }
        communicator.sumGradients(policy.parameters)
        let loss = communicator.sum([localLoss])[0]
        let norm = try applyUpdate(policy: policy, optimizer: optimizer, loss: loss, maxGradNorm: config.optimizer.maxGradNorm)
        state.step += 1
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        var metrics = ["loss": loss, "learning_rate": Double(optimizer.lr), "grad_norm": norm, "step_time": dt,
                       "tokens_per_s": Double(tokens) / dt].merging(policy.routingMetrics) { a, _ in a }
        var fields = String(format: "loss %.4f", loss)
        if !validation.isEmpty && (state.step % config.sft.evalEvery == 0 || state.step == config.sft.steps) {
            let (score, valLoss) = try validate()
            metrics["val/pass@1"] = score
            metrics["val/loss"] = valLoss
            fields += String(format: " | val pass@1 %.3f loss %.4f", score, valLoss)
        }
        try log?.log(step: state.step, stage: "sft", metrics)
        progress(stage: "sft", dt: dt, fields: fields)
        // The last SFT step's checkpoint is written by startGRPO, after the baseline eval.
        if state.step < sftSteps && config.checkpoint.every > 0 && state.step % config.checkpoint.every == 0 {
            try saveCheckpoint()
        }
    }

    /// Checks the validation split: greedy pass@1 averaged over its levels, and the teacher traces' loss.
    /// A better check (a higher score, or the same score at a lower loss) becomes the best one and its
    /// weights are kept; `patience` checks without one mark SFT's plateau, which ends SFT here.
    func validate() throws -> (score: Double, loss: Double) {
        let report = try Evaluator.evaluate(
            policy: policy, tokenizer: tokenizer, problems: validation,
            options: EvalOptions(samples: 1, temperature: 0, maxNewTokens: validationMaxNewTokens, promptsPerBatch: 64, seed: config.seed),
            communicator: communicator)
        let score = SFT.validationScore(report)
        let tokens = validationExamples.reduce(0) { $0 + SFT.targetCount($1) }
        let loss = Autograd.noGrad {
            SFT.lengthGroups(validationExamples.map(\.ids.count)).reduce(0.0) { sum, g in
                sum + Double(SFT.loss(policy: policy, batch: g.map { validationExamples[$0] }, pad: Int32(tokenizer.pad), normalizer: tokens).0.item)
            }
        }
        var plateau = state.sftPlateau ?? PlateauTracker()
        switch plateau.check(step: state.step, score: score, loss: loss, patience: config.sft.patience * config.sft.evalEvery,
                              smoothing: config.sft.smoothing) {
        case .improved: sftBest = Dictionary(uniqueKeysWithValues: policy.allTensors.map { ($0.0, $0.1.array) })
        case .plateau: state.sftEnd = state.step
        case .waiting: break
        }
        state.sftPlateau = plateau
        return (score, loss)
    }

    /// Tokens a validation completion may take: the longest teacher trace's, with room to spare, within the context.
    var validationMaxNewTokens: Int {
        let longest = validationExamples.map { SFT.targetCount($0) }.max() ?? 1
        let prompt = validationExamples.map(\.promptLength).max() ?? 0
        return max(1, min(longest + 16, policy.config.maxContext - prompt))
    }

    /// SFT is over (its plateau or its cap): go on from the best validation check's weights.
    func endSFT() {
        state.sftEnd = state.step
        guard let best = sftBest, let plateau = state.sftPlateau, let bestStep = plateau.bestStep else { return }
        if bestStep != state.step {  // every tensor is there, at its shape: taken from this policy, or checked on resume
            for (name, t) in policy.allTensors {
                best[name]!.withUnsafeBufferPointer { t.data.update(from: $0.baseAddress!, count: t.count) }
            }
        }
        console?.message(String(format: "SFT ended at step %ld (%@); going on from step %ld (smoothed validation pass@1 %.3f, loss %.4f)",
                                state.step, state.step < config.sft.steps ? "plateau" : "step cap", bestStep,
                                plateau.bestScore ?? 0, plateau.bestLoss ?? 0))
        sftBest = nil
    }

    /// The SFT result becomes the reference policy and the baseline of the held-out eval.
    func startGRPO() throws {
        let sftFinal = checkpointsDirectory.appendingPathComponent("sft-final")
        try saveFolder(sftFinal)
        if config.grpo.beta > 0 && policy.lora != nil {
            reference = policy  // LoRA's reference is the base: this policy with its adapters off (GRPOStep.update)
        } else if config.grpo.beta > 0 {  // a copy of what sft-final holds, without waiting for rank 0 to write it
            let weights = Dictionary(uniqueKeysWithValues: policy.namedParameters)
            reference = Policy(config: policy.config) { name, _ in weights[name]!.copy() }
        }
        let eval = try evaluate()
        state.startEval = eval
        state.lastEval = eval
        optimizer = AdamW(policy.parameters, lr: config.grpo.learningRate)
        Self.configureOptimizer(optimizer, config)
        console?.message(String(format: "held-out pass@1 after SFT: %.3f (format %.3f)", eval["eval/pass@1"] ?? 0, eval["eval/format"] ?? 0))
        try saveCheckpoint()
    }

    func finish() throws -> [String: Double] {
        // Killed after the final checkpoint (which follows the final eval) but before status.json said
        // finished: the eval and the checkpoint are there already, and a second eval row would repeat a step.
        if resumedAt == totalSteps, let last = state.lastEval { return last }
        if config.grpo.steps > 0 || state.lastEval == nil { state.lastEval = try evaluate() }
        try saveCheckpoint()
        return state.lastEval ?? [:]
    }

    /// The curriculum's view of each family: the adaptive mode's pass-rate estimate per training level,
    /// the most drawn level (the ladder's current level) and, with several families, the share of the
    /// next fresh prompts each family gets.
    func curriculumMetrics() -> [String: Double] {
        let c = sampler.state.curriculum
        var m: [String: Double] = [:]
        let weights = sampler.familyWeights(), total = weights.reduce(0, +)
        if sampler.families.count > 1 && total > 0 {
            for (family, w) in zip(sampler.families, weights) { m["curriculum/\(family.name)/share"] = w / total }
        }
        for (family, range) in c.bounds {
            m["curriculum/\(family)/level"] = Double(c.level(of: family))
            guard c.config.mode == .adaptive else { continue }
            for level in range {
                if let s = c.stats(family: family, level: level) { m["curriculum/\(family)/L\(level)/pass_rate"] = s.passRate }
            }
        }
        return m
    }

    // MARK: - Evaluation

    /// The families a config evaluates on: eval.families, or the training families.
    public static func evalFamilies(_ config: TrainConfig) -> [String] {
        config.eval.families.isEmpty ? config.data.families : config.eval.families
    }

    /// The held-out problems a config evaluates on (eval.families, or the training families).
    public static func evalProblems(_ config: TrainConfig) throws -> [Problem] {
        try EvalSet.select(families: evalFamilies(config), levels: config.eval.levels.isEmpty ? nil : config.eval.levels,
                                  limitPerLevel: config.eval.limitPerLevel, datasetsDirectory: URL(fileURLWithPath: config.data.datasets))
    }

    /// How a config's held-out evals sample.
    public static func evalOptions(_ config: TrainConfig) -> EvalOptions {
        EvalOptions(samples: config.eval.samples, temperature: config.eval.temperature, topP: config.eval.topP,
                    maxNewTokens: config.eval.maxNewTokens > 0 ? config.eval.maxNewTokens : config.grpo.maxCompletionLength,
                    promptsPerBatch: 64, seed: config.seed)
    }

    /// Held-out eval of the current policy, logged as stage "eval"; tracks the best checkpoint.
    func evaluate() throws -> [String: Double] {
        let report = try Evaluator.evaluate(policy: policy, tokenizer: tokenizer, problems: evalProblems, options: Self.evalOptions(config),
                                            communicator: communicator)
        let scalars = report.scalars()
        try log?.log(step: state.step, stage: "eval", scalars)
        evalHistory.append((state.step, scalars["eval/pass@1"] ?? 0))
        if state.step > sftSteps, let p = scalars["eval/pass@1"], p > (state.bestPassAt1 ?? -1) {
            state.bestPassAt1 = p
            state.bestStep = state.step
            try saveFolder(checkpointsDirectory.appendingPathComponent("best"))
        }
        return scalars
    }

    func writeStatus(_ s: RunStatus.State, message: String? = nil) throws {
        guard communicator.isWriter else { return }
        try RunStatus.write(RunStatus(state: s, step: state.step, totalSteps: totalSteps,
                                      stage: state.step < sftSteps ? "sft" : "grpo", message: message), to: runDirectory)
    }

    // MARK: - Terminal

    var stageTime: [String: (seconds: Double, steps: Int)] = [:]

    /// One progress line; the ETA sums each stage's remaining steps at that stage's mean step time
    /// (GRPO steps cost far more than SFT ones, so one average would mislead).
    func progress(stage: String, dt: Double, fields: String) {
        let t = stageTime[stage, default: (0, 0)]
        stageTime[stage] = (t.seconds + dt, t.steps + 1)
        func mean(_ s: String) -> Double? { stageTime[s].map { $0.seconds / Double($0.steps) } }
        let sftLeft = max(0, sftSteps - state.step), grpoLeft = min(config.grpo.steps, totalSteps - state.step)
        var eta = Double(sftLeft) * (mean("sft") ?? 0)
        var known = true
        if grpoLeft > 0 {
            if let g = mean("grpo") { eta += Double(grpoLeft) * g } else { known = false }
        }
        let etaText = Self.duration(eta) + (known ? "" : " + GRPO")
        let line = String(format: "[%@] step %ld/%ld | %.2fs/step | ETA %@ | ", stage, state.step, totalSteps, dt, etaText) + fields
        console?.progress(line, final: state.step % max(1, config.logging.printEvery) == 0 || state.step == totalSteps)
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0, s < 1e9 else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%ldh%02ldm", t / 3600, t % 3600 / 60) : String(format: "%ldm%02lds", t / 60, t % 60)
    }

    /// (step, reward) of the GRPO steps run by this process.
    public var rewardHistory: [(step: Int, reward: Double)] { history }
    /// (step, held-out pass@1) of the evals run by this process.
    public var passHistory: [(step: Int, passAt1: Double)] { evalHistory }
}
