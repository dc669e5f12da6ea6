// The training config: one typed value (STYLE.md §7). Every field has a default and a `///` line;
// configs/README.md documents the same keys. YAML keys are the snake_case of these names.

import Autograd
import Model
import Tasks

public struct TrainConfig: Codable, Equatable, Sendable {
    // MARK: - Sections

    /// The policy's architecture.
    public var model = ModelSection()
    /// Which problems to train and evaluate on.
    public var data = DataSection()
    /// Cold-start supervised fine-tuning on teacher traces.
    public var sft = SFTSection()
    /// Group-relative policy optimisation.
    public var grpo = GRPOSection()
    /// AdamW and the learning-rate schedule, shared by both stages.
    public var optimizer = OptimizerSection()
    /// Held-out evaluation during training.
    public var eval = EvalSection()
    /// What the run folder records.
    public var logging = LoggingSection()
    /// Checkpoint cadence and retention.
    public var checkpoint = CheckpointSection()
    /// Big→small distillation (`ponder distill`): rejection sampling from a teacher checkpoint.
    public var distill = DistillSection()
    /// Seed of every random stream (init, data, sampling, eval).
    public var seed: UInt64 = 0
    /// Threads for Ponder's kernels (0: all cores).
    public var threads = 0
    /// Matrix products of the linear layers: f32, bf16 (bfloat16 operands, float32 sums, on AMX or
    /// avx512_bf16), or auto (bf16 where the CPU runs it, else f32).
    public var precision = PrecisionSetting.f32

    public init() {}

    public struct ModelSection: Codable, Equatable, Sendable {
        /// Width of the residual stream.
        public var dModel = 128
        /// Decoder blocks.
        public var layers = 4
        /// Attention heads (head size is d_model / heads, even).
        public var heads = 4
        /// SwiGLU hidden size.
        public var ffDim = 384
        /// Longest prompt + completion, in tokens.
        public var maxContext = 256
        /// RoPE base.
        public var ropeTheta = 10_000.0
        /// RMSNorm epsilon.
        public var rmsEps: Float = 1e-5
        /// Share the token embedding with the LM head.
        public var tieEmbeddings = false
        /// Std of the normal init of every matrix.
        public var initStd: Float = 0.02
        /// Start from this checkpoint folder instead of a fresh init ("" for none).
        public var from = ""
        /// Attention: mha (Llama) or mla (multi-head latent attention; checkpoints are HF DeepseekV3).
        public var attention = AttentionKind.mha
        /// Sizes of multi-head latent attention (used when attention is mla): Model's own MLAConfig.
        public var mla = MLAConfig()
        /// Mixture-of-experts feed-forward, Model's own MoEConfig (off while experts is 0; needs attention: mla).
        public var moe = MoEConfig()
        /// LoRA adapters, Model's own LoRAConfig (off while rank is 0): the base weights freeze and only
        /// the adapters train; checkpoints add them in PEFT's format.
        public var lora = LoRAConfig()
        /// Recompute each layer's activations at backward instead of keeping them (less memory, about
        /// a third more compute per update; gradients unchanged).
        public var gradientCheckpointing = false
    }

    public struct DataSection: Codable, Equatable, Sendable {
        /// Task families to train on (`ponder tasks list`).
        public var families = ["add"]
        /// Relative sampling weight of each family (empty: equal).
        public var weights: [Double] = []
        /// Curriculum over difficulty levels.
        public var curriculum = Curriculum.Config()
        /// Folder of held-out test sets, never served for training.
        public var datasets = "datasets"
        /// Prompt layout: plain (BOS + problem + newline), or a chat template for an imported chat model: chat (ChatML or Llama-3, whichever the tokenizer has), chatml, llama3.
        public var promptFormat = PromptFormat.plain
    }

    public struct SFTSection: Codable, Equatable, Sendable {
        /// Optimizer steps of cold-start SFT (0: skip SFT).
        public var steps = 400
        /// Distinct teacher traces (the cold-start set, reused across epochs).
        public var numTraces = 300
        /// Levels the traces are drawn from, uniformly over this list, so a repeated level weighs
        /// more (empty: every training level).
        public var levels: [Int] = []
        /// Sequences per step.
        public var batchSize = 32
        /// Peak learning rate.
        public var learningRate: Float = 1e-3
        /// Validation problems per family and level of the trace set, drawn like the traces but never
        /// among them nor in a test set; SFT stops at their plateau (0: no validation, run sft.steps).
        public var validationPerLevel = 32
        /// Check the validation problems every N SFT steps (greedy pass@1, macro-averaged over levels).
        public var evalEvery = 100
        /// Stop after this many checks without a better one, and go on from the best check's weights;
        /// sft.steps stays the cap.
        public var patience = 5
        /// A check's score is the mean of this many latest checks' pass@1 (1: the check alone).
        public var smoothing = 3
    }

    public struct GRPOSection: Codable, Equatable, Sendable {
        /// Optimizer steps of GRPO (each with num_iterations updates on one generation batch).
        public var steps = 100
        /// Prompts per step; each gets num_generations completions.
        public var promptsPerStep = 8
        /// Group size G (TRL: num_generations), at least 2.
        public var numGenerations = 8
        /// Most tokens per completion (TRL: max_completion_length).
        public var maxCompletionLength = 64
        /// Sampling temperature.
        public var temperature: Float = 1
        /// Top-k filter (0: off).
        public var topK = 0
        /// Top-p filter (1: off).
        public var topP: Float = 1
        /// Min-p filter (0: off).
        public var minP: Float = 0
        /// Weight of each reward function; also choose shaping parameters here.
        public var rewards = RewardConfig(weights: ["correctness": 1, "format": 0.1])
        /// Advantage scaling: group (TRL default), batch, or none (Dr. GRPO).
        public var scaleRewards = RewardScaling.group
        /// Loss: grpo, bnpo, dr_grpo or dapo (the clipped objective with those reductions; TRL's default
        /// is dapo, ours grpo), or cispo (clipped importance weights, dapo's reduction).
        public var lossType = LossType.grpo
        /// Importance ratio per token (token), or one per completion, the geometric mean of its tokens'
        /// ratios (sequence: Zheng et al. 2025, GSPO), as TRL's importance_sampling_level.
        public var importanceSamplingLevel = ImportanceSamplingLevel.token
        /// Train only on the fraction ρ of completion tokens with the highest entropy (Wang et al. 2025,
        /// "Beyond the 80/20 rule"; TRL's top_entropy_quantile); 1 keeps every token.
        public var topEntropyQuantile: Double = 1
        /// Lower clip range ε of the ratio.
        public var epsilon: Float = 0.2
        /// Upper clip range (clip-higher, DAPO); 0 means equal to epsilon.
        public var epsilonHigh: Float = 0
        /// KL coefficient against the frozen reference (the policy at the start of GRPO); 0 skips it.
        public var beta: Float = 0
        /// Updates per generation batch (μ); old logprobs are the sampling policy's.
        public var numIterations = 1
        /// Exclude completions that hit max_completion_length from the loss.
        public var maskTruncatedCompletions = false
        /// DAPO dynamic sampling: sample `oversample` more prompts, train only on groups whose rewards
        /// differ (at most prompts_per_step of them); zero-variance groups carry no gradient.
        public var dynamicSampling = true
        /// Extra prompts sampled per step for dynamic sampling, as a fraction of prompts_per_step, in the
        /// same batched sampling call.
        public var oversample = 0.5
        /// Extra generation rounds dynamic sampling may use per step when too few groups disagree.
        public var maxResampleRounds = 0
        /// Peak learning rate.
        public var learningRate: Float = 5e-5
        /// GRPO's own learning-rate schedule, cosine or constant ("": optimizer.schedule).
        public var schedule = StageSchedule.inherit
        /// Weight γ of a next-token loss on a batch of the cold start's teacher traces, added to every
        /// update (InstructGPT's PPO-ptx, Ouyang et al. 2022), to hold the policy near what SFT taught
        /// while GRPO moves it (0: off).
        public var sftCoef: Double = 0
        /// Traces in that batch, drawn afresh each step.
        public var sftBatchSize = 8
    }

    public struct OptimizerSection: Codable, Equatable, Sendable {
        /// AdamW β₁.
        public var beta1: Float = 0.9
        /// AdamW β₂.
        public var beta2: Float = 0.99
        /// AdamW ε.
        public var eps: Float = 1e-8
        /// Decoupled weight decay.
        public var weightDecay: Float = 0
        /// Learning-rate schedule per stage: cosine or constant.
        public var schedule = ScheduleKind.cosine
        /// Linear warmup steps at the start of each stage.
        public var warmupSteps = 10
        /// Cosine floor, as a fraction of the peak.
        public var minLrRatio: Float = 0.1
        /// Clip the global gradient norm to this (0: off).
        public var maxGradNorm: Float = 1
    }

    public struct EvalSection: Codable, Equatable, Sendable {
        /// Evaluate every N GRPO steps (0: only at the start and end of GRPO).
        public var every = 25
        /// Families to evaluate (empty: the training families).
        public var families: [String] = []
        /// Levels to evaluate (empty: every level in the test sets, the beyond tier included).
        public var levels: [Int] = []
        /// Held-out problems per family and level.
        public var limitPerLevel = 50
        /// Samples per problem (pass@1 is their mean; pass@k and maj@k use all).
        public var samples = 1
        /// Sampling temperature (0: greedy). DeepSeek-R1 reports pass@1 at 0.6 with top-p 0.95.
        public var temperature: Float = 0
        /// Top-p filter of eval sampling (1: off).
        public var topP: Float = 1
        /// Most tokens per completion (0: grpo.max_completion_length).
        public var maxNewTokens = 0
    }

    public struct LoggingSection: Codable, Equatable, Sendable {
        /// Completions written to completions.jsonl per GRPO step.
        public var completionsPerStep = 8
        /// Print a progress line every N steps when the output is not a terminal.
        public var printEvery = 10
    }

    public struct CheckpointSection: Codable, Equatable, Sendable {
        /// Save every N steps of each stage (0: only at the end of each stage).
        public var every = 50
        /// Step checkpoints kept (the last K); the SFT result and the best are always kept.
        public var keepLast = 2
    }

    public struct DistillSection: Codable, Equatable, Sendable {
        /// Training problems the teacher answers (0: sft.num_traces).
        public var problems = 0
        /// Completions the teacher samples per problem (k).
        public var samplesPerProblem = 4
        /// Most kept completions per problem, distinct ones first, then repeats (0: every distinct correct one).
        public var keepPerProblem = 0
        /// Teacher sampling temperature (DeepSeek-R1's distillation data used 0.6 with top-p 0.95).
        public var temperature: Float = 0.6
        /// Teacher top-p filter (1: off).
        public var topP: Float = 0.95
        /// Most tokens per teacher completion (0: grpo.max_completion_length).
        public var maxNewTokens = 0
    }

    // MARK: - Derived

    /// The policy architecture for a tokenizer's vocabulary.
    public func policyConfig(vocabSize: Int) -> PolicyConfig {
        var c = PolicyConfig(vocabSize: vocabSize, dModel: model.dModel, layers: model.layers, heads: model.heads,
                             ffDim: model.ffDim, maxContext: model.maxContext, ropeTheta: model.ropeTheta, rmsEps: model.rmsEps,
                             tieEmbeddings: model.tieEmbeddings, initStd: model.initStd)
        if model.attention == .mla { c.mla = model.mla }
        if model.moe.experts > 0 { c.moe = model.moe }
        return c
    }

    /// The upper clip range in force.
    public var epsilonHigh: Float { grpo.epsilonHigh > 0 ? grpo.epsilonHigh : grpo.epsilon }

    // MARK: - Validation

    /// Throws a `ConfigError` naming the first key whose value is impossible, and what would work.
    /// Every number is checked against its range before any arithmetic uses it, so no value can
    /// overflow a sum or a product below; then the run's memory is estimated and refused when it
    /// cannot fit on this machine.
    /// Long on purpose: one flat list of checks in the order of the config's sections, so a key's check is
    /// found where its section is; splitting it would scatter them.
    public func validate() throws {
        func need(_ ok: Bool, _ key: String, _ message: String) throws {
            if !ok { throw ConfigError(file: nil, key: key, message: message) }
        }
        func range<T: Comparable>(_ value: T, _ r: ClosedRange<T>, _ key: String, _ note: String = "") throws {
            if !r.contains(value) {
                throw ConfigError(file: nil, key: key, message: "is \(value); it must be in \(r.lowerBound)...\(r.upperBound)" + note)
            }
        }
        func positive(_ value: Float, max: Float, _ key: String, _ note: String = "") throws {
            if !(value > 0 && value <= max) {
                throw ConfigError(file: nil, key: key, message: "is \(value); it must be in (0, \(max)]" + note)
            }
        }
        try range(model.dModel, 2...Limits.width, "model.d_model")
        try range(model.heads, 1...Limits.heads, "model.heads")
        try need(model.dModel % model.heads == 0, "model.d_model", "must be a multiple of model.heads (\(model.heads))")
        try need((model.dModel / model.heads) % 2 == 0, "model.heads", "gives an odd head size \(model.dModel / model.heads); RoPE needs it even")
        try range(model.layers, 1...Limits.layers, "model.layers")
        try range(model.ffDim, 1...Limits.hidden, "model.ff_dim")
        try range(model.maxContext, 16...Limits.context, "model.max_context")
        try need(model.ropeTheta.isFinite && model.ropeTheta >= 1 && model.ropeTheta <= 1e12, "model.rope_theta", "is \(model.ropeTheta); it must be in 1...1e12")
        try positive(model.rmsEps, max: 1, "model.rms_eps")
        try positive(model.initStd, max: 1, "model.init_std", " (a larger init overflows the activations)")
        try validateMoEMLA(need)
        try need(!data.families.isEmpty, "data.families", "must name at least one family (see `ponder tasks list`)")
        for f in data.families where TaskRegistry.family(named: f) == nil {
            throw ConfigError(file: nil, key: "data.families", message: "has unknown family '\(f)'"
                + (Spelling.nearest(f, in: TaskRegistry.names).map { "; did you mean '\($0)'?" } ?? "")
                + " Known: \(TaskRegistry.names.joined(separator: ", ")).")
        }
        try need(data.weights.isEmpty || data.weights.count == data.families.count, "data.weights",
                 "needs one weight per family (\(data.families.count)), or none")
        try need(data.weights.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1e6 } && (data.weights.isEmpty || data.weights.contains { $0 > 0 }),
                 "data.weights", "must be finite numbers in 0...1e6, at least one of them positive")
        do { try data.curriculum.validate() } catch { throw ConfigError(file: nil, key: "data.curriculum", message: "\(error)") }
        try range(sft.steps, 0...Limits.steps, "sft.steps")
        try range(sft.numTraces, 0...Limits.problems, "sft.num_traces")
        try range(sft.batchSize, 0...Limits.batch, "sft.batch_size")
        try need(sft.steps == 0 || (sft.numTraces > 0 && sft.batchSize > 0), "sft.num_traces", "and sft.batch_size must be positive when sft.steps > 0")
        try need(sft.levels.allSatisfy { (1...100).contains($0) }, "sft.levels", "must be levels in 1...100 (see `ponder tasks list`)")
        try range(sft.validationPerLevel, 0...10_000, "sft.validation_per_level", " (0: no plateau rule)")
        try range(sft.evalEvery, 1...Limits.steps, "sft.eval_every")
        try range(sft.patience, 1...10_000, "sft.patience")
        try range(sft.smoothing, 1...100, "sft.smoothing")
        try positive(sft.learningRate, max: 1, "sft.learning_rate")
        try range(grpo.steps, 0...Limits.steps, "grpo.steps")
        try range(grpo.numGenerations, 2...Limits.batch, "grpo.num_generations", "; GRPO compares completions within a group, so it needs at least 2")
        try range(grpo.promptsPerStep, 1...Limits.batch, "grpo.prompts_per_step")
        try range(grpo.maxCompletionLength, 1...Limits.context, "grpo.max_completion_length")
        try positive(grpo.temperature, max: 100, "grpo.temperature")
        try range(grpo.topK, 0...Limits.vocabulary, "grpo.top_k", " (0: off)")
        try need(grpo.topP > 0 && grpo.topP <= 1, "grpo.top_p", "must be in (0, 1]")
        try need(grpo.minP >= 0 && grpo.minP < 1, "grpo.min_p", "must be in [0, 1)")
        try need(grpo.epsilon > 0 && grpo.epsilon < 1, "grpo.epsilon", "must be in (0, 1)")
        try need(grpo.epsilonHigh >= 0 && grpo.epsilonHigh <= 10, "grpo.epsilon_high", "must be 0 (same as epsilon) or in (0, 10]")
        try need(grpo.lossType != .cispo || epsilonHigh >= 1, "grpo.epsilon_high",
                 "is the cap ε_max of the importance weight under loss_type cispo and must be at least 1 (ScaleRL uses 4 or 5); left at epsilon it would cap every weight below 1")
        try need(grpo.topEntropyQuantile > 0 && grpo.topEntropyQuantile <= 1, "grpo.top_entropy_quantile",
                 "must be in (0, 1]: the fraction of completion tokens, by entropy, that the loss keeps")
        try need(grpo.beta >= 0 && grpo.beta <= 1000, "grpo.beta", "must be in 0...1000")
        try need(grpo.oversample >= 0 && grpo.oversample <= 8, "grpo.oversample", "must be in [0, 8] (a fraction of prompts_per_step)")
        try range(grpo.maxResampleRounds, 0...16, "grpo.max_resample_rounds")
        try range(grpo.numIterations, 1...64, "grpo.num_iterations")
        try need(grpo.sftCoef >= 0 && grpo.sftCoef <= 100, "grpo.sft_coef", "must be in 0...100 (0: off)")
        try range(grpo.sftBatchSize, 1...Limits.batch, "grpo.sft_batch_size")
        do { try grpo.rewards.validate() } catch { throw ConfigError(file: nil, key: "grpo.rewards", message: "\(error)") }
        try positive(grpo.learningRate, max: 1, "grpo.learning_rate")
        try need(optimizer.beta1 >= 0 && optimizer.beta1 < 1, "optimizer.beta1", "is \(optimizer.beta1); it must be in [0, 1) (AdamW divides by 1 - beta1^t)")
        try need(optimizer.beta2 >= 0 && optimizer.beta2 < 1, "optimizer.beta2", "is \(optimizer.beta2); it must be in [0, 1) (AdamW divides by 1 - beta2^t)")
        try need(optimizer.eps >= 1e-12 && optimizer.eps <= 1, "optimizer.eps", "is \(optimizer.eps); it must be in 1e-12...1 (AdamW divides by sqrt(v) + eps, which is 0 for a weight without gradient)")
        try need(optimizer.weightDecay >= 0 && optimizer.weightDecay <= 1, "optimizer.weight_decay", "is \(optimizer.weightDecay); it must be in 0...1")
        try range(optimizer.warmupSteps, 0...Limits.steps, "optimizer.warmup_steps")
        try need(optimizer.minLrRatio >= 0 && optimizer.minLrRatio <= 1, "optimizer.min_lr_ratio", "must be in 0...1")
        try need(optimizer.maxGradNorm >= 0 && optimizer.maxGradNorm <= 1e6, "optimizer.max_grad_norm", "must be in 0...1e6 (0: off)")
        try range(eval.every, 0...Limits.steps, "eval.every")
        try need(eval.levels.allSatisfy { (1...100).contains($0) }, "eval.levels", "must be levels in 1...100")
        try range(eval.limitPerLevel, 1...Limits.problems, "eval.limit_per_level")
        try range(eval.samples, 1...Limits.samples, "eval.samples")
        try need(eval.temperature >= 0 && eval.temperature <= 100, "eval.temperature", "must be in 0...100 (0: greedy)")
        try need(eval.topP > 0 && eval.topP <= 1, "eval.top_p", "must be in (0, 1]")
        try range(eval.maxNewTokens, 0...Limits.context, "eval.max_new_tokens", " (0: grpo.max_completion_length)")
        try range(logging.completionsPerStep, 0...1_000_000, "logging.completions_per_step")
        try range(logging.printEvery, 1...Limits.steps, "logging.print_every")
        try range(checkpoint.every, 0...Limits.steps, "checkpoint.every", " (0: only at the end of each stage)")
        try range(checkpoint.keepLast, 1...1000, "checkpoint.keep_last")
        try range(distill.problems, 0...Limits.problems, "distill.problems", " (0: sft.num_traces)")
        try range(distill.samplesPerProblem, 1...Limits.samples, "distill.samples_per_problem")
        try range(distill.keepPerProblem, 0...Limits.samples, "distill.keep_per_problem", " (0: every distinct correct one)")
        try need(distill.temperature >= 0 && distill.temperature <= 100, "distill.temperature", "must be in 0...100 (0: greedy)")
        try need(distill.topP > 0 && distill.topP <= 1, "distill.top_p", "must be in (0, 1]")
        try range(distill.maxNewTokens, 0...Limits.context, "distill.max_new_tokens", " (0: grpo.max_completion_length)")
        try range(threads, 0...1024, "threads", " (0: all cores)")
        // The ranges above keep these sums far from overflow.
        try need(model.maxContext >= 16 + grpo.maxCompletionLength, "model.max_context",
                 "(\(model.maxContext)) must leave room for a prompt beside grpo.max_completion_length (\(grpo.maxCompletionLength))")
        try need(model.maxContext >= 16 + eval.maxNewTokens, "model.max_context",
                 "(\(model.maxContext)) must leave room for a prompt beside eval.max_new_tokens (\(eval.maxNewTokens))")
        try need(model.maxContext >= 16 + distill.maxNewTokens, "model.max_context",
                 "(\(model.maxContext)) must leave room for a prompt beside distill.max_new_tokens (\(distill.maxNewTokens))")
        try checkMemory()
    }

    /// Upper bounds of the config's sizes: the policy's (`PolicyConfig.Limits`) and the run's, low
    /// enough that no product of them overflows (the memory check then refuses what would not fit).
    public enum Limits {
        public static let width = PolicyConfig.Limits.width, heads = PolicyConfig.Limits.heads
        public static let layers = PolicyConfig.Limits.layers, hidden = PolicyConfig.Limits.hidden
        public static let context = PolicyConfig.Limits.context, vocabulary = PolicyConfig.Limits.vocabulary
        public static let experts = PolicyConfig.Limits.experts, sharedExperts = PolicyConfig.Limits.sharedExperts
        public static let batch = 65_536
        public static let steps = 100_000_000
        public static let problems = 10_000_000
        public static let samples = 1_024
    }
}

extension TrainConfig {
    /// The model.attention, model.mla, model.moe and model.lora keys.
    func validateMoEMLA(_ need: (Bool, String, String) throws -> Void) throws {
        do { try model.lora.validate() } catch let PolicyError.invalidConfig(message) {
            let key = String(message.prefix { $0 != " " })
            try need(false, "model." + key, String(message.dropFirst(key.count + 1)))
        }
        try need(!model.lora.enabled || model.attention == .mha, "model.lora.rank",
                 "is \(model.lora.rank), but LoRA adapters are built for Llama and Qwen2 policies (attention: mha), not MLA/MoE ones")
        if model.attention == .mla {
            let m = model.mla
            let w = Limits.width
            try need((0...w).contains(m.qLoraRank), "model.mla.q_lora_rank", "must be 0 (direct q_proj) or in 1...\(w)")
            try need((1...w).contains(m.kvLoraRank), "model.mla.kv_lora_rank", "must be in 1...\(w)")
            try need((1...w).contains(m.qkNopeHeadDim), "model.mla.qk_nope_head_dim", "must be in 1...\(w)")
            try need((2...w).contains(m.qkRopeHeadDim) && m.qkRopeHeadDim % 2 == 0, "model.mla.qk_rope_head_dim", "is \(m.qkRopeHeadDim); RoPE needs it even, in 2...\(w)")
            try need((1...w).contains(m.vHeadDim), "model.mla.v_head_dim", "must be in 1...\(w)")
        }
        let e = model.moe
        try need((0...Limits.experts).contains(e.experts), "model.moe.experts", "is \(e.experts); it must be 0 (no MoE) or in 1...\(Limits.experts)")
        guard e.experts > 0 else { return }
        try need(model.attention == .mla, "model.moe.experts",
                 "needs model.attention: mla (an MoE policy is saved as Hugging Face DeepseekV3, which has MLA attention only)")
        try need(e.topK >= 1 && e.topK <= e.experts, "model.moe.top_k", "is \(e.topK); it must be in 1...model.moe.experts (\(e.experts))")
        try need((0...Limits.sharedExperts).contains(e.sharedExperts), "model.moe.shared_experts", "must be in 0...\(Limits.sharedExperts)")
        try need((1...Limits.hidden).contains(e.expertFfDim), "model.moe.expert_ff_dim", "must be in 1...\(Limits.hidden)")
        try need(e.routedScalingFactor > 0 && e.routedScalingFactor <= 1000, "model.moe.routed_scaling_factor", "must be in (0, 1000]")
        try need(e.firstKDense >= 0 && e.firstKDense < model.layers, "model.moe.first_k_dense",
                 "is \(e.firstKDense); it must be in 0..<model.layers (\(model.layers)) so some layer has experts")
        try need(e.auxLossCoef >= 0 && e.auxLossCoef <= 1000, "model.moe.aux_loss_coef", "must be in 0...1000")
        try need(e.biasUpdateRate >= 0 && e.biasUpdateRate <= 1, "model.moe.bias_update_rate", "must be in 0...1")
    }
}

/// `precision`: a matmul precision, or `auto`, the faster of the two on this CPU (bf16 where it has AMX, or
/// avx512_bf16 on an AMD core; else f32: `BLAS.bf16Faster`).
public enum PrecisionSetting: String, ConfigChoice {
    case f32, bf16, auto

    /// The precision a run on this CPU uses.
    public var resolved: MatmulPrecision {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        case .auto: BLAS.bf16Faster ? .bf16 : .f32
        }
    }
}

/// The attention of a policy: Llama's multi-head attention, or DeepSeek's multi-head latent attention.
public enum AttentionKind: String, ConfigChoice {
    case mha, mla
}

/// How GRPO scales advantages: by the group's std (TRL's default), the batch's, or not (Dr. GRPO).
public enum RewardScaling: String, ConfigChoice {
    case group, batch, none
}

/// A learning-rate schedule after warmup.
public enum ScheduleKind: String, ConfigChoice {
    case cosine, constant
}

/// GRPO's own schedule, or the optimizer's ("").
public enum StageSchedule: String, ConfigChoice {
    case inherit = "", cosine, constant
}

/// GRPO loss reductions, with TRL's meanings.
public enum LossType: String, ConfigChoice {
    /// Mean over each sequence's tokens, then over sequences (DeepSeekMath).
    case grpo
    /// Sum over all tokens of the batch / their count.
    case bnpo
    /// Sum over all tokens / (sequences × max_completion_length) (Liu et al. 2025, Dr. GRPO).
    case drGRPO = "dr_grpo"
    /// Sum over all tokens / tokens in the whole generation batch (Yu et al. 2025, DAPO).
    case dapo
    /// −sg(min(ratio, ε_high))·A·logp per token, reduced as dapo (MiniMax-M1's CISPO, as TRL): the
    /// importance weight is clipped, not the update, so every token keeps a gradient.
    case cispo
}

/// Where the importance ratio of the clipped objective is taken (TRL's importance_sampling_level).
public enum ImportanceSamplingLevel: String, ConfigChoice {
    /// One ratio per token.
    case token
    /// One per completion: exp of the mean of its tokens' log-ratios (GSPO).
    case sequence
}

/// A config problem, naming the file (when known) and the key.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var file: String?
    public var key: String
    public var message: String

    public init(file: String?, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String { (file.map { "\($0): " } ?? "") + (key.isEmpty ? "" : "\(key) ") + message }
}
