// A policy's sizes and constants (Hugging Face LlamaConfig names where one exists), their limits and
// validation, and the parameter count. DeepSeek-V3's MLA and MoE sections: DeepseekV3Config.swift.

import Autograd
import Foundation


/// Sizes and constants of a policy. Field names follow Hugging Face's LlamaConfig where one exists.
public struct PolicyConfig: Codable, Equatable, Sendable {
    /// Vocabulary size V.
    public var vocabSize: Int
    /// Model width C.
    public var dModel: Int
    /// Number of decoder blocks.
    public var layers: Int
    /// Attention heads H (head size is dModel / heads).
    public var heads: Int
    /// SwiGLU hidden size F.
    public var ffDim: Int
    /// Longest sequence (prompt + completion) the RoPE table covers.
    public var maxContext: Int
    /// RoPE base θ.
    public var ropeTheta: Double = 10_000
    /// RMSNorm epsilon.
    public var rmsEps: Float = 1e-5
    /// Whether the LM head reuses the token embedding.
    public var tieEmbeddings: Bool = false
    /// Std of the normal init of every matrix (HF's initializer_range).
    public var initStd: Float = 0.02
    /// Multi-head latent attention instead of MHA (nil: MHA); see DeepseekV3Config.swift.
    public var mla: MLAConfig? = nil
    /// Mixture-of-experts feed-forward (nil: dense SwiGLU everywhere); needs `mla`.
    public var moe: MoEConfig? = nil
    /// K key/value heads (nil: K = H). Fewer than `heads` is grouped-query attention.
    public var kvHeads: Int?
    /// D when it is not dModel / heads (HF's head_dim); nil: dModel / heads.
    public var headSize: Int?
    /// Biases on the q, k and v projections (Qwen2); nil or false: none.
    public var qkvBias: Bool?
    /// Llama-3 RoPE frequency scaling (Llama 3.1/3.2); nil: plain RoPE.
    public var ropeScaling: Llama3RopeScaling?

    public init(vocabSize: Int, dModel: Int, layers: Int, heads: Int, ffDim: Int, maxContext: Int,
                ropeTheta: Double = 10_000, rmsEps: Float = 1e-5, tieEmbeddings: Bool = false, initStd: Float = 0.02) {
        self.vocabSize = vocabSize
        self.dModel = dModel
        self.layers = layers
        self.heads = heads
        self.ffDim = ffDim
        self.maxContext = maxContext
        self.ropeTheta = ropeTheta
        self.rmsEps = rmsEps
        self.tieEmbeddings = tieEmbeddings
        self.initStd = initStd
    }

    /// D, the width of one head.
    public var headDim: Int { headSize ?? dModel / heads }
    /// K, the key/value heads.
    public var kvHeadCount: Int { kvHeads ?? heads }
    /// Whether q, k and v carry biases.
    public var hasQKVBias: Bool { qkvBias ?? false }

    /// Upper bounds of a policy's sizes, for a training config, a checkpoint's config.json and the
    /// benchmarks' flags alike: far above any model trained on a CPU, and low enough that no product
    /// of them overflows an Int (a memory check then refuses what would not fit).
    public enum Limits {
        public static let width = 65_536
        public static let heads = 1_024
        public static let layers = 1_024
        public static let hidden = 1 << 20
        public static let context = 1 << 20
        public static let vocabulary = 1 << 22
        public static let experts = 4_096
        public static let sharedExperts = 64
    }

    /// Checks the sizes fit together; the message names the field.
    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw PolicyError.invalidConfig(msg) } }
        // Ranges first, so that no size below can overflow a product.
        let L = Limits.self
        try need((1...L.vocabulary).contains(vocabSize), "vocab_size (\(vocabSize)) must be in 1...\(L.vocabulary)")
        try need((1...L.width).contains(dModel), "d_model (\(dModel)) must be in 1...\(L.width)")
        try need((1...L.layers).contains(layers), "layers (\(layers)) must be in 1...\(L.layers)")
        try need((1...L.heads).contains(heads), "heads (\(heads)) must be in 1...\(L.heads)")
        try need((1...L.hidden).contains(ffDim), "ff (intermediate size, \(ffDim)) must be in 1...\(L.hidden)")
        try need(headSize.map { (1...L.width).contains($0) } ?? true, "head size must be in 1...\(L.width)")
        try need(kvHeads.map { (1...L.heads).contains($0) } ?? true, "kv heads must be in 1...\(L.heads)")
        try need((2...L.context).contains(maxContext), "max_context (max_position_embeddings, \(maxContext)) must be in 2...\(L.context)")
        try need(ropeTheta.isFinite && ropeTheta > 0, "rope_theta (\(ropeTheta)) must be a positive number")
        try need(rmsEps.isFinite && rmsEps > 0, "rms_eps (\(rmsEps)) must be a positive number")
        try need(headSize != nil || dModel % heads == 0, "d_model (\(dModel)) must be a multiple of heads (\(heads))")
        try need(headDim > 0 && headDim % 2 == 0, "head size \(headDim) must be positive and even for RoPE")
        try need(kvHeadCount > 0 && heads % kvHeadCount == 0, "kv heads (\(kvHeadCount)) must divide heads (\(heads))")
        try validateDeepseek()
        // The weights alone (float32) and the RoPE tables must fit in this machine's memory.
        let bytes = 4 * (parameterTotal + Double(maxContext) * Double(headDim))
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        try need(bytes <= memory, String(format: "the weights need %.1f GiB, more than this machine's %.1f GiB", bytes / 1_073_741_824, memory / 1_073_741_824))
    }

    /// Parameters, counting a tied head once (for a validated config; `parameterTotal` for any).
    public var parameterCount: Int { Int(parameterTotal) }

    /// Parameters counted from the sizes in floating point, so that any sizes within `Limits` give a
    /// number (which the memory check then refuses) rather than an Int overflow, and a DeepseekV3
    /// policy's without listing its tensors by name (millions of strings at the largest sizes). Tests
    /// check it against the tensor lists.
    public var parameterTotal: Double {
        if isDeepseek { return deepseekParameterTotal }
        let (d, q, kv) = (Double(dModel), Double(heads * headDim), Double(kvHeadCount * headDim))
        let block = 2 * d + 2 * d * (q + kv) + 3 * d * Double(ffDim) + (hasQKVBias ? q + 2 * kv : 0)
        return Double(vocabSize) * d * (tieEmbeddings ? 1 : 2) + Double(layers) * block + d
    }
}

public enum PolicyError: Error, CustomStringConvertible {
    case invalidConfig(String)
    public var description: String {
        switch self {
        case .invalidConfig(let m): return "invalid model config: \(m)"
        }
    }
}
