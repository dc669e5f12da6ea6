// What a config costs in memory before it runs: parameters with their gradients and AdamW moments,
// the activations a step records, and the KV cache of GRPO's sampling batch. The estimate is rough
// (within a small factor), which is enough to refuse, with the key to change, a config that could
// never fit, instead of dying in an allocation an hour in.

import Foundation
import Model

extension TrainConfig {
    /// Peak bytes of a run, by stage.
    public struct MemoryEstimate: Sendable, Equatable {
        /// Weights, gradients, AdamW's two moments and the frozen reference (when beta > 0).
        public var parameters: Double
        /// A cold-start SFT step's recorded activations.
        public var sft: Double
        /// A GRPO step: the sampling batch's KV cache, then the loss batch's activations.
        public var grpo: Double
        /// A held-out evaluation batch's KV cache.
        public var eval: Double

        public var peak: Double { parameters + max(sft, grpo, eval) }
    }

    /// The estimate for a vocabulary of `vocabSize` tokens (Ponder's character tokenizer has about a
    /// hundred; an imported model's checkpoint is checked with its own when it loads).
    public func memoryEstimate(vocabSize: Int = 128) -> MemoryEstimate {
        let d = Double(model.dModel), layers = Double(model.layers), ctx = Double(model.maxContext)
        let vocab = Double(vocabSize), f = 4.0  // bytes per float
        let p = policyConfig(vocabSize: vocabSize).parameterTotal
        let parameters = p * f * (4 + (grpo.beta > 0 ? 1 : 0))
        // Per recorded token: about 16 floats per layer and width unit (norms, projections, residuals,
        // their gradients), the SwiGLU's three hidden vectors, one attention row per head, and the logits.
        let ff = Double(model.moe.experts > 0 ? model.moe.expertFfDim * (model.moe.topK + model.moe.sharedExperts) : model.ffDim)
        let perToken = layers * (16 * d + 3 * ff + Double(model.heads) * ctx) + 3 * vocab
        let sft = Double(sft.steps > 0 ? sft.batchSize : 0) * ctx * perToken * f
        let rows = (Double(grpo.promptsPerStep) * (1 + grpo.oversample)).rounded(.up) * Double(grpo.numGenerations)
        let kvPerToken = layers * 2 * d * f
        let grpoBytes = grpo.steps > 0
            ? max(rows * ctx * kvPerToken, Double(grpo.promptsPerStep * grpo.numGenerations) * ctx * perToken * f) : 0
        // Evaluation samples EvalOptions' default batch of 32 prompts at a time, each `samples` times.
        let evalRows = Double(eval.samples) * Double(min(eval.limitPerLevel, EvalOptions().promptsPerBatch))
        let evalBytes = evalRows * ctx * kvPerToken
        return MemoryEstimate(parameters: parameters, sft: sft, grpo: grpoBytes, eval: evalBytes)
    }

    /// Refuses a config whose estimate exceeds `available` bytes (default: this machine's memory),
    /// naming the largest part and the keys that size it.
    func checkMemory(available: Double = Double(ProcessInfo.processInfo.physicalMemory)) throws {
        let e = memoryEstimate()
        guard e.peak > available else { return }
        let gib = { (b: Double) in String(format: "%.1f GiB", b / 1_073_741_824) }
        let parts: [(Double, String, String)] = [
            (e.parameters, "parameters and optimizer state", "model.d_model, model.layers, model.ff_dim"),
            (e.sft, "SFT activations", "sft.batch_size, model.max_context"),
            (e.grpo, "GRPO sampling and loss batch", "grpo.prompts_per_step, grpo.num_generations, model.max_context"),
            (e.eval, "evaluation batch", "eval.samples, eval.limit_per_level"),
        ]
        let worst = parts.max { $0.0 < $1.0 }!
        throw ConfigError(file: nil, key: worst.2.components(separatedBy: ", ")[0],
                          message: "makes the run need about \(gib(e.peak)) (\(worst.1): \(gib(worst.0))), more than this machine's \(gib(available)); lower \(worst.2)")
    }
}
