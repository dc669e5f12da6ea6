// The Hugging Face `config.json` of a Llama checkpoint, and the tensor names and shapes that go with
// it in `model.safetensors`, so that `transformers.LlamaForCausalLM.from_pretrained` loads a Ponder
// checkpoint with no missing or unexpected keys.
//
// Names: V vocab, D hidden size, F intermediate (MLP) size, H attention heads, K key/value heads,
// hd head dim. Linear weights are stored as (out_features, in_features), as torch.nn.Linear does:
// y = x · Wᵀ.
//
// RoPE: HF Llama rotates in the "rotate_half" convention. Within each head, dimension i is paired with
// dimension i + hd/2 (not with i + 1 as in the original RoFormer/Meta code), and the pair uses
// frequency θ^(-2i/hd) for i in 0..<hd/2:
//   q'[i]        = q[i] cos(p·f_i) − q[i + hd/2] sin(p·f_i)
//   q'[i + hd/2] = q[i + hd/2] cos(p·f_i) + q[i] sin(p·f_i)
// The policy must rotate the same way, or a checkpoint loads in transformers but generates garbage.

import Basics
import Foundation

/// A Llama or Qwen2 `config.json` as `transformers.LlamaConfig` / `Qwen2Config` reads it
/// (transformers 4.x and 5.x). Qwen2 is Llama with biases on the q, k and v projections.
///
/// Reading ignores keys Ponder does not use (`transformers_version`, `use_cache`, …), as
/// transformers does, and fills absent optional keys with `LlamaConfig`'s defaults. Features Ponder
/// cannot honour (biases, RoPE scaling, an activation other than SiLU) are rejected by `validate()`.
public struct LlamaConfigJSON: Equatable, Sendable {
    // MARK: Identity
    /// `["LlamaForCausalLM"]`.
    public var architectures = ["LlamaForCausalLM"]
    /// `"llama"` or `"qwen2"`.
    public var modelType = "llama"
    /// Qwen2's sliding-window attention; only `false` is supported.
    public var useSlidingWindow = false
    /// Parameter dtype; Ponder writes `"float32"` (key `dtype`, which transformers 5 uses; older
    /// releases default to float32 when it is absent, and `torch_dtype` is accepted on read).
    public var dtype = "float32"

    // MARK: Sizes
    /// V: tokens in the vocabulary.
    public var vocabSize: Int
    /// D: width of the residual stream.
    public var hiddenSize: Int
    /// F: width of the SwiGLU MLP.
    public var intermediateSize: Int
    /// Number of decoder blocks.
    public var numHiddenLayers: Int
    /// H: query heads.
    public var numAttentionHeads: Int
    /// K: key/value heads (K = H is plain multi-head attention; K < H is grouped-query attention).
    public var numKeyValueHeads: Int
    /// hd: width of one head.
    public var headDim: Int
    /// Longest sequence the model is meant for.
    public var maxPositionEmbeddings: Int

    // MARK: Numerics
    /// RMSNorm epsilon.
    public var rmsNormEps: Double
    /// RoPE base θ.
    public var ropeTheta: Double
    /// Llama-3 RoPE scaling (`rope_type: "llama3"`), or nil for plain RoPE.
    public var ropeScaling: Llama3RopeScaling?
    /// Activation of the MLP gate; only `"silu"` is supported.
    public var hiddenAct = "silu"
    /// Bias on q, k, v, o projections; unsupported, always false.
    public var attentionBias = false
    /// Bias on the MLP projections; unsupported, always false.
    public var mlpBias = false
    /// True when the LM head reuses the embedding matrix and `lm_head.weight` is not stored.
    public var tieWordEmbeddings: Bool

    // MARK: Special tokens
    /// Beginning-of-sequence id.
    public var bosTokenId: Int?
    /// End-of-sequence ids (HF allows one id or a list; one id is written as a number).
    public var eosTokenIds: [Int]
    /// Padding id.
    public var padTokenId: Int?

    /// A config with Ponder's choices; `headDim` defaults to `hiddenSize / numAttentionHeads` and
    /// `numKeyValueHeads` to `numAttentionHeads`.
    public init(
        vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
        maxPositionEmbeddings: Int, rmsNormEps: Double = 1e-5, ropeTheta: Double = 10_000,
        tieWordEmbeddings: Bool, bosTokenId: Int?, eosTokenId: Int?, padTokenId: Int?
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenId.map { [$0] } ?? []
        self.padTokenId = padTokenId
    }

    /// Qwen2 puts biases on q, k and v (and none on o).
    public var qkvBias: Bool { modelType == "qwen2" }

    /// The model types Ponder reads.
    public static let modelTypes = ["llama", "qwen2"]

    // MARK: Checks

    /// Throws the first setting Ponder cannot run, naming the `config.json` key and what would work.
    public func validate(file: String = "config.json") throws {
        func fail(_ key: String, _ message: String) -> HFConfigError {
            HFConfigError(file: file, key: key, message: message)
        }
        guard Self.modelTypes.contains(modelType) else {
            throw fail("model_type", "is \"\(modelType)\"; Ponder reads \"llama\" and \"qwen2\"")
        }
        guard !useSlidingWindow else { throw fail("use_sliding_window", "is true; Ponder supports full attention only") }
        for (key, value) in [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
            ("max_position_embeddings", maxPositionEmbeddings),
        ] where value <= 0 {
            throw fail(key, "is \(value); it must be positive")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw fail(
                "num_key_value_heads",
                "is \(numKeyValueHeads); it must divide num_attention_heads (\(numAttentionHeads))")
        }
        guard headDim % 2 == 0 else { throw fail("head_dim", "is \(headDim); RoPE needs an even head_dim") }
        guard rmsNormEps > 0 else { throw fail("rms_norm_eps", "is \(rmsNormEps); it must be positive") }
        guard ropeTheta > 0 else { throw fail("rope_theta", "is \(ropeTheta); it must be positive") }
        guard hiddenAct == "silu" else { throw fail("hidden_act", "is \"\(hiddenAct)\"; Ponder supports \"silu\"") }
        guard !attentionBias else { throw fail("attention_bias", "is true; Ponder's attention has no biases") }
        guard !mlpBias else { throw fail("mlp_bias", "is true; Ponder's MLP has no biases") }
        for (key, id) in [("bos_token_id", bosTokenId), ("pad_token_id", padTokenId)]
            + eosTokenIds.map({ ("eos_token_id", $0 as Int?) })
        {
            if let id, !(0..<vocabSize).contains(id) {
                throw fail(key, "is \(id); it must be in 0..<\(vocabSize) (vocab_size)")
            }
        }
    }

    // MARK: Tensors

    /// The tensors `LlamaForCausalLM` stores for this config, in model order, with their shapes.
    /// `lm_head.weight` is absent when `tieWordEmbeddings`.
    public func tensorSpecs() -> [TensorSpec] {
        let (V, D, F) = (vocabSize, hiddenSize, intermediateSize)
        let (q, kv) = (numAttentionHeads * headDim, numKeyValueHeads * headDim)
        var specs = [TensorSpec("model.embed_tokens.weight", [V, D])]  // (V, D)
        for i in 0..<numHiddenLayers {
            let p = "model.layers.\(i)."
            specs += [
                TensorSpec(p + "input_layernorm.weight", [D]),
                TensorSpec(p + "self_attn.q_proj.weight", [q, D]),  // (H*hd, D)
                TensorSpec(p + "self_attn.k_proj.weight", [kv, D]),  // (K*hd, D)
                TensorSpec(p + "self_attn.v_proj.weight", [kv, D]),  // (K*hd, D)
                TensorSpec(p + "self_attn.o_proj.weight", [D, q]),  // (D, H*hd)
            ]
            if qkvBias {
                specs += [TensorSpec(p + "self_attn.q_proj.bias", [q]), TensorSpec(p + "self_attn.k_proj.bias", [kv]),
                          TensorSpec(p + "self_attn.v_proj.bias", [kv])]
            }
            specs += [
                TensorSpec(p + "post_attention_layernorm.weight", [D]),
                TensorSpec(p + "mlp.gate_proj.weight", [F, D]),
                TensorSpec(p + "mlp.up_proj.weight", [F, D]),
                TensorSpec(p + "mlp.down_proj.weight", [D, F]),
            ]
        }
        specs.append(TensorSpec("model.norm.weight", [D]))
        if !tieWordEmbeddings { specs.append(TensorSpec("lm_head.weight", [V, D])) }
        return specs
    }

    // MARK: Files

    /// Pretty-printed JSON with sorted keys; deterministic.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain numbers, strings and lists cannot fail.
        return try! encoder.encode(self) + Data("\n".utf8)
    }

    /// Writes `config.json` atomically.
    public func write(to url: URL) throws {
        try AtomicFile.write(jsonData(), to: url)
    }

    /// Reads and validates a `config.json`; errors name the file and the key.
    public static func read(from url: URL) throws -> LlamaConfigJSON {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw HFConfigError(file: url.path, key: nil, message: "cannot read: \(error.localizedDescription)")
        }
        let config: LlamaConfigJSON
        do {
            config = try JSONDecoder().decode(LlamaConfigJSON.self, from: data)
        } catch let error as HFConfigError {
            throw HFConfigError(file: url.path, key: error.key, message: error.message)
        } catch {
            let path = codingPath(of: error).map(\.stringValue).joined(separator: ".")
            let problem: String
            switch error as? DecodingError {
            case .keyNotFound?: problem = "is required"
            case .typeMismatch(let type, _)?, .valueNotFound(let type, _)?: problem = "must be \(type)"
            default: problem = "is not valid JSON"
            }
            throw HFConfigError(file: url.path, key: path.isEmpty ? nil : path, message: problem)
        }
        try config.validate(file: url.path)
        return config
    }
}

extension LlamaConfigJSON: Codable {
    private enum Key: String, CodingKey {
        case architectures, dtype, vocab_size, hidden_size, intermediate_size, num_hidden_layers
        case num_attention_heads, num_key_value_heads, head_dim, max_position_embeddings, rms_norm_eps
        case rope_theta, rope_parameters, rope_scaling, hidden_act, attention_bias, mlp_bias
        case tie_word_embeddings, bos_token_id, eos_token_id, pad_token_id, torch_dtype
        case model_type, use_sliding_window, layer_types
    }

    /// transformers 5 keeps RoPE settings here; transformers 4 reads the top-level `rope_theta`.
    private struct RopeParameters: Codable {
        var rope_type: String?
        var type: String?
        var rope_theta: Double?
        var factor: Double?
        var low_freq_factor: Double?
        var high_freq_factor: Double?
        var original_max_position_embeddings: Int?

        /// The Llama-3 scaling these parameters describe, nil for default RoPE; other types throw.
        func scaling(_ fail: (String) -> HFConfigError) throws -> Llama3RopeScaling? {
            switch rope_type ?? type ?? "default" {
            case "default": return nil
            case "llama3":
                guard let factor, let low_freq_factor, let high_freq_factor, let original_max_position_embeddings,
                      factor > 0, high_freq_factor > low_freq_factor, low_freq_factor > 0, original_max_position_embeddings > 0
                else { throw fail("has rope_type \"llama3\" without a valid factor, low_freq_factor < high_freq_factor and original_max_position_embeddings") }
                return Llama3RopeScaling(factor: factor, lowFreqFactor: low_freq_factor, highFreqFactor: high_freq_factor,
                                         originalMaxPositions: original_max_position_embeddings)
            case let other: throw fail("has rope_type \"\(other)\"; Ponder supports \"default\" and \"llama3\" RoPE only")
            }
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        func unsupported(_ key: Key, _ message: String) -> HFConfigError {
            HFConfigError(file: "config.json", key: key.rawValue, message: message)
        }
        modelType = try c.decode(String.self, forKey: .model_type)
        guard Self.modelTypes.contains(modelType) else {
            throw unsupported(.model_type, "is \"\(modelType)\"; Ponder reads \"llama\" and \"qwen2\"")
        }
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .use_sliding_window) ?? false
        if useSlidingWindow {
            throw unsupported(.use_sliding_window, "is true; Ponder supports full attention only (set it to false)")
        }
        if let types = try c.decodeIfPresent([String?].self, forKey: .layer_types),
           let other = types.first(where: { $0 != "full_attention" }) {
            throw unsupported(.layer_types, "contains \(other.map { "\"\($0)\"" } ?? "null"); Ponder supports \"full_attention\" layers only")
        }
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        dtype =
            try c.decodeIfPresent(String.self, forKey: .dtype)
            ?? c.decodeIfPresent(String.self, forKey: .torch_dtype) ?? "float32"
        vocabSize = try c.decode(Int.self, forKey: .vocab_size)
        hiddenSize = try c.decode(Int.self, forKey: .hidden_size)
        intermediateSize = try c.decode(Int.self, forKey: .intermediate_size)
        numHiddenLayers = try c.decode(Int.self, forKey: .num_hidden_layers)
        numAttentionHeads = try c.decode(Int.self, forKey: .num_attention_heads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .num_key_value_heads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .head_dim) ?? hiddenSize / max(numAttentionHeads, 1)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .max_position_embeddings) ?? 2048
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rms_norm_eps) ?? 1e-6
        let rope = try c.decodeIfPresent(RopeParameters.self, forKey: .rope_parameters)
        ropeScaling = try rope?.scaling { unsupported(.rope_parameters, $0) }
        if try c.contains(.rope_scaling) && !c.decodeNil(forKey: .rope_scaling) {
            guard let scaling = try? c.decode(RopeParameters.self, forKey: .rope_scaling) else {
                throw unsupported(.rope_scaling, "must be null or a {\"rope_type\": …} object")
            }
            ropeScaling = try scaling.scaling { unsupported(.rope_scaling, $0) } ?? ropeScaling
        }
        let topTheta = try c.decodeIfPresent(Double.self, forKey: .rope_theta)
        if let inner = rope?.rope_theta, let topTheta, inner != topTheta {
            throw unsupported(.rope_theta, "is \(topTheta) but rope_parameters.rope_theta is \(inner); make them equal (transformers 4 reads the first, 5 the second)")
        }
        ropeTheta = rope?.rope_theta ?? topTheta ?? 10_000
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hidden_act) ?? "silu"
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attention_bias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlp_bias) ?? false
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tie_word_embeddings) ?? false
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bos_token_id)
        if let list = try? c.decodeIfPresent([Int].self, forKey: .eos_token_id) {
            eosTokenIds = list
        } else {
            eosTokenIds = try c.decodeIfPresent(Int.self, forKey: .eos_token_id).map { [$0] } ?? []
        }
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .pad_token_id)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(architectures, forKey: .architectures)
        try c.encode(modelType, forKey: .model_type)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(vocabSize, forKey: .vocab_size)
        try c.encode(hiddenSize, forKey: .hidden_size)
        try c.encode(intermediateSize, forKey: .intermediate_size)
        try c.encode(numHiddenLayers, forKey: .num_hidden_layers)
        try c.encode(numAttentionHeads, forKey: .num_attention_heads)
        try c.encode(numKeyValueHeads, forKey: .num_key_value_heads)
        try c.encode(headDim, forKey: .head_dim)
        try c.encode(maxPositionEmbeddings, forKey: .max_position_embeddings)
        try c.encode(rmsNormEps, forKey: .rms_norm_eps)
        // Both spellings, so transformers 4.x (rope_theta) and 5.x (rope_parameters) read the same θ.
        try c.encode(ropeTheta, forKey: .rope_theta)
        if let s = ropeScaling {
            let p = RopeParameters(rope_type: "llama3", rope_theta: ropeTheta, factor: s.factor, low_freq_factor: s.lowFreqFactor,
                                   high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositions)
            try c.encode(p, forKey: .rope_parameters)
            try c.encode(p, forKey: .rope_scaling)
        } else {
            try c.encode(RopeParameters(rope_type: "default", rope_theta: ropeTheta), forKey: .rope_parameters)
        }
        try c.encode(hiddenAct, forKey: .hidden_act)
        if qkvBias {
            try c.encode(false, forKey: .use_sliding_window)
        } else {
            try c.encode(attentionBias, forKey: .attention_bias)
            try c.encode(mlpBias, forKey: .mlp_bias)
        }
        try c.encode(tieWordEmbeddings, forKey: .tie_word_embeddings)
        try c.encode(bosTokenId, forKey: .bos_token_id)
        if eosTokenIds.count == 1 {
            try c.encode(eosTokenIds[0], forKey: .eos_token_id)
        } else if eosTokenIds.isEmpty {
            try c.encodeNil(forKey: .eos_token_id)
        } else {
            try c.encode(eosTokenIds, forKey: .eos_token_id)
        }
        try c.encode(padTokenId, forKey: .pad_token_id)
    }
}

/// Llama-3's RoPE frequency scaling (Llama 3.1/3.2, `rope_type: "llama3"`): wavelengths longer than
/// original_max_position_embeddings / low_freq_factor are slowed by `factor`, those shorter than
/// … / high_freq_factor are kept, and the band between is interpolated, as transformers'
/// `_compute_llama3_parameters` does (in float32).
public struct Llama3RopeScaling: Codable, Equatable, Sendable {
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositions: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int) {
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositions = originalMaxPositions
    }

    /// The D/2 scaled inverse frequencies.
    public func inverseFrequencies(headDim: Int, base: Double) -> [Float] {
        let (factor, low, high, old) = (Float(self.factor), Float(lowFreqFactor), Float(highFreqFactor), Float(originalMaxPositions))
        let lowWavelen = old / low, highWavelen = old / high
        return (0..<(headDim / 2)).map { i in
            let invFreq = Float(1.0 / Foundation.pow(base, Double(2 * i) / Double(headDim)))
            let wavelen = 2 * Float.pi / invFreq
            if wavelen > lowWavelen { return invFreq / factor }
            if wavelen < highWavelen { return invFreq }
            let smooth = (old / wavelen - low) / (high - low)
            return (1 - smooth) * invFreq / factor + smooth * invFreq
        }
    }
}

/// A `config.json` Ponder cannot use: which file, which key, and what would be right.
public struct HFConfigError: Error, Equatable, CustomStringConvertible {
    /// The file's path.
    public var file: String
    /// The offending key (dotted for nested keys), or nil when the whole file is at fault.
    public var key: String?
    /// What is wrong and what would be right.
    public var message: String

    public init(file: String, key: String?, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String { "\(file): " + (key.map { "\($0) " } ?? "") + message }
}
