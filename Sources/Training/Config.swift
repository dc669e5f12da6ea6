// The training config: one typed value (STYLE.md §7). Every field has a default and a `///` line;
// configs/README.md documents the same keys. YAML keys are the snake_case of these names.

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
    /// Seed of every random stream (init, data, sampling, eval).
    public var seed: UInt64 = 0
    /// Threads for Ponder's kernels (0: all cores).
    public var threads = 0

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
        public var maxContext = 192
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
        public var promptFormat = "plain"
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
        public var scaleRewards = "group"
        /// Loss reduction: grpo, bnpo, dr_grpo or dapo (TRL's default is dapo; ours is grpo).
        public var lossType = "grpo"
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
        /// DAPO dynamic sampling: drop zero-variance groups and sample more prompts to refill.
        public var dynamicSampling = false
        /// Extra generation rounds dynamic sampling may use per step.
        public var maxResampleRounds = 2
        /// Peak learning rate.
        public var learningRate: Float = 5e-5
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
        public var schedule = "cosine"
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

    // MARK: - Derived

    /// The policy architecture for a tokenizer's vocabulary.
    public func policyConfig(vocabSize: Int) -> PolicyConfig {
        PolicyConfig(vocabSize: vocabSize, dModel: model.dModel, layers: model.layers, heads: model.heads,
                     ffDim: model.ffDim, maxContext: model.maxContext, ropeTheta: model.ropeTheta, rmsEps: model.rmsEps,
                     tieEmbeddings: model.tieEmbeddings, initStd: model.initStd)
    }

    /// The upper clip range in force.
    public var epsilonHigh: Float { grpo.epsilonHigh > 0 ? grpo.epsilonHigh : grpo.epsilon }

    // MARK: - Validation

    /// Throws a `ConfigError` naming the first key whose value is impossible, and what would work.
    public func validate() throws {
        func need(_ ok: Bool, _ key: String, _ message: String) throws {
            if !ok { throw ConfigError(file: nil, key: key, message: message) }
        }
        try need(model.dModel > 0 && model.dModel % model.heads == 0, "model.d_model", "must be a positive multiple of model.heads (\(model.heads))")
        try need((model.dModel / max(model.heads, 1)) % 2 == 0, "model.heads", "gives an odd head size \(model.dModel / max(model.heads, 1)); RoPE needs it even")
        try need(model.layers > 0, "model.layers", "must be at least 1")
        try need(model.ffDim > 0, "model.ff_dim", "must be positive")
        try need(!data.families.isEmpty, "data.families", "must name at least one family (see `ponder tasks list`)")
        for f in data.families where TaskRegistry.family(named: f) == nil {
            throw ConfigError(file: nil, key: "data.families", message: "has unknown family '\(f)'"
                + (Spelling.nearest(f, in: TaskRegistry.names).map { "; did you mean '\($0)'?" } ?? "")
                + " Known: \(TaskRegistry.names.joined(separator: ", ")).")
        }
        try need(data.weights.isEmpty || data.weights.count == data.families.count, "data.weights",
                 "needs one weight per family (\(data.families.count)), or none")
        do { try data.curriculum.validate() } catch { throw ConfigError(file: nil, key: "data.curriculum", message: "\(error)") }
        try need(PromptFormat(rawValue: data.promptFormat) != nil, "data.prompt_format",
                 "is '\(data.promptFormat)'; use \(PromptFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        try need(sft.steps >= 0, "sft.steps", "must be 0 or more")
        try need(sft.steps == 0 || (sft.numTraces > 0 && sft.batchSize > 0), "sft.num_traces", "and sft.batch_size must be positive when sft.steps > 0")
        try need(grpo.steps >= 0, "grpo.steps", "must be 0 or more")
        try need(grpo.numGenerations >= 2, "grpo.num_generations", "is \(grpo.numGenerations); GRPO compares completions within a group, so it needs at least 2")
        try need(grpo.promptsPerStep >= 1, "grpo.prompts_per_step", "must be at least 1")
        try need(grpo.maxCompletionLength >= 1, "grpo.max_completion_length", "must be at least 1")
        try need(grpo.temperature > 0, "grpo.temperature", "must be > 0")
        try need(grpo.topP > 0 && grpo.topP <= 1, "grpo.top_p", "must be in (0, 1]")
        try need(grpo.minP >= 0 && grpo.minP < 1, "grpo.min_p", "must be in [0, 1)")
        try need(["group", "batch", "none"].contains(grpo.scaleRewards), "grpo.scale_rewards", "is '\(grpo.scaleRewards)'; use group, batch or none")
        try need(LossType(rawValue: grpo.lossType) != nil, "grpo.loss_type", "is '\(grpo.lossType)'; use grpo, bnpo, dr_grpo or dapo")
        try need(grpo.epsilon > 0 && grpo.epsilon < 1, "grpo.epsilon", "must be in (0, 1)")
        try need(grpo.epsilonHigh >= 0, "grpo.epsilon_high", "must be 0 (same as epsilon) or positive")
        try need(grpo.beta >= 0, "grpo.beta", "must be 0 or more")
        try need(grpo.numIterations >= 1, "grpo.num_iterations", "must be at least 1")
        do { try grpo.rewards.validate() } catch { throw ConfigError(file: nil, key: "grpo.rewards", message: "\(error)") }
        try need(["cosine", "constant"].contains(optimizer.schedule), "optimizer.schedule", "is '\(optimizer.schedule)'; use cosine or constant")
        try need(sft.learningRate > 0, "sft.learning_rate", "must be positive")
        try need(grpo.learningRate > 0, "grpo.learning_rate", "must be positive")
        try need(eval.limitPerLevel >= 1 && eval.samples >= 1, "eval.limit_per_level", "and eval.samples must be at least 1")
        try need(checkpoint.keepLast >= 1, "checkpoint.keep_last", "must be at least 1")
        try need(threads >= 0, "threads", "must be 0 (all cores) or more")
        try need(model.maxContext >= 16 + grpo.maxCompletionLength, "model.max_context",
                 "(\(model.maxContext)) must leave room for a prompt beside grpo.max_completion_length (\(grpo.maxCompletionLength))")
    }
}

/// GRPO loss reductions, with TRL's meanings.
public enum LossType: String, Sendable {
    /// Mean over each sequence's tokens, then over sequences (DeepSeekMath).
    case grpo
    /// Sum over all tokens of the batch / their count.
    case bnpo
    /// Sum over all tokens / (sequences × max_completion_length) (Liu et al. 2025, Dr. GRPO).
    case drGRPO = "dr_grpo"
    /// Sum over all tokens / tokens in the whole generation batch (Yu et al. 2025, DAPO).
    case dapo
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

    public var description: String { (file.map { "\($0): " } ?? "") + "\(key) \(message)" }
}
