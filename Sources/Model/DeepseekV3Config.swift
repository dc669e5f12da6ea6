// The two DeepSeek options of a policy, mixture of experts (MoE) and multi-head latent attention
// (MLA), and the Hugging Face `config.json` of a DeepseekV3ForCausalLM that carries them.
//
// A policy with MLA is saved as `model_type: deepseek_v3`. transformers' DeepseekV3 has no plain
// multi-head attention, so MoE requires MLA (`PolicyConfig.validate` says so); a dense MHA policy
// stays a LlamaForCausalLM. Tensor names follow the DeepSeek-V3 checkpoints on the Hub, which
// transformers 5 reads and writes (it fuses the per-expert weights in memory only):
//
//   model.layers.i.self_attn.{q_proj | q_a_proj, q_a_layernorm, q_b_proj}.weight
//   model.layers.i.self_attn.{kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj}.weight
//   model.layers.i.mlp.{gate_proj, up_proj, down_proj}.weight                   (i < first_k_dense)
//   model.layers.i.mlp.gate.{weight, e_score_correction_bias}                  (i ≥ first_k_dense)
//   model.layers.i.mlp.experts.e.{gate_proj, up_proj, down_proj}.weight
//   model.layers.i.mlp.shared_experts.{gate_proj, up_proj, down_proj}.weight
//
// Names: C hidden size, H heads, Dn = qk_nope_head_dim, R = qk_rope_head_dim, Dv = v_head_dim,
// Rq = q_lora_rank, Rkv = kv_lora_rank, E routed experts, Fe expert hidden size, F dense hidden size.

import Autograd
import Foundation

// MARK: - Options

/// Multi-head latent attention (DeepSeek-V2 §2.1), with DeepSeek-V3's names and meanings.
public struct MLAConfig: Codable, Equatable, Sendable {
    /// Rq: rank of the query's low-rank projection (q_a_proj → q_a_layernorm → q_b_proj); 0 projects
    /// queries directly (q_proj), as transformers does for `q_lora_rank: null`.
    public var qLoraRank: Int = 0
    /// Rkv: rank of the compressed key/value latent, the part of the KV cache that carries content.
    public var kvLoraRank: Int = 48
    /// Dn: per-head query/key width without RoPE.
    public var qkNopeHeadDim: Int = 16
    /// R: width of the decoupled RoPE query per head and of the one RoPE key shared by all heads.
    public var qkRopeHeadDim: Int = 16
    /// Dv: per-head value width.
    public var vHeadDim: Int = 32
    /// Rotate interleaved pairs (x0, x1), (x2, x3), … as DeepSeek's weights expect (transformers'
    /// `rope_interleave`, default true); false pairs dimension i with i + R/2 (Llama's rotate_half).
    public var ropeInterleave = true

    public init(qLoraRank: Int = 0, kvLoraRank: Int = 48, qkNopeHeadDim: Int = 16, qkRopeHeadDim: Int = 16, vHeadDim: Int = 32,
                ropeInterleave: Bool = true) {
        self.qLoraRank = qLoraRank
        self.kvLoraRank = kvLoraRank
        self.qkNopeHeadDim = qkNopeHeadDim
        self.qkRopeHeadDim = qkRopeHeadDim
        self.vHeadDim = vHeadDim
        self.ropeInterleave = ropeInterleave
    }

    /// Dk = Dn + R: query/key width per head (the softmax scale is 1/√Dk).
    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
}

/// DeepSeek-V3's mixture-of-experts feed-forward (DeepSeekMoE, Dai et al. 2024; V3 §2.1.2).
public struct MoEConfig: Codable, Equatable, Sendable {
    /// How affinities s = f(h·Wgᵀ) are made from router logits.
    public enum Scoring: String, ConfigChoice {
        /// σ(logit) per expert (DeepSeek-V3; the only one transformers' DeepseekV3 implements).
        case sigmoid
        /// Softmax over the experts (DeepSeek-V2, Mixtral).
        case softmax
    }

    /// How expert load is balanced during training.
    public enum Balance: String, ConfigChoice {
        /// V3's auxiliary-loss-free strategy: a per-expert bias, added to the scores for selection
        /// only, moves by ±bias_update_rate after each step toward equal load.
        case biasUpdate = "bias_update"
        /// An auxiliary loss α·E·Σ_e f_e·P_e (Switch Transformer; V3 eq. 17–20, over the whole batch).
        case auxLoss = "aux_loss"
        /// No balancing.
        case none
    }

    /// E: routed experts (0 only in a training config's `model.moe`, where it means a dense policy).
    public var experts: Int = 0
    /// k: routed experts per token (num_experts_per_tok).
    public var topK: Int = 2
    /// Shared experts that every token passes through (their hidden size is shared × Fe).
    public var sharedExperts = 1
    /// Fe: hidden size of each expert's SwiGLU (moe_intermediate_size).
    public var expertFfDim: Int = 128
    /// The affinity function.
    public var scoring = Scoring.sigmoid
    /// Divide the k selected affinities by their sum (norm_topk_prob).
    public var normTopkProb = true
    /// Multiply the gating weights by this (routed_scaling_factor).
    public var routedScalingFactor: Float = 1
    /// The first K layers keep a dense SwiGLU of width ff_dim (first_k_dense_replace).
    public var firstKDense = 1
    /// The balancing strategy.
    public var balance = Balance.biasUpdate
    /// α of the auxiliary loss.
    public var auxLossCoef: Float = 1e-3
    /// γ of the bias update.
    public var biasUpdateRate: Float = 1e-3

    public init(experts: Int = 0, topK: Int = 2, sharedExperts: Int = 1, expertFfDim: Int = 128, scoring: Scoring = .sigmoid,
                normTopkProb: Bool = true, routedScalingFactor: Float = 1, firstKDense: Int = 1,
                balance: Balance = .biasUpdate, auxLossCoef: Float = 1e-3, biasUpdateRate: Float = 1e-3) {
        self.experts = experts
        self.topK = topK
        self.sharedExperts = sharedExperts
        self.expertFfDim = expertFfDim
        self.scoring = scoring
        self.normTopkProb = normTopkProb
        self.routedScalingFactor = routedScalingFactor
        self.firstKDense = firstKDense
        self.balance = balance
        self.auxLossCoef = auxLossCoef
        self.biasUpdateRate = biasUpdateRate
    }
}

extension PolicyConfig {
    /// Whether this policy is a DeepseekV3 (MLA attention, dense or MoE feed-forward).
    public var isDeepseek: Bool { mla != nil }

    /// Whether layer `i` has the MoE feed-forward.
    public func isMoELayer(_ i: Int) -> Bool { moe.map { i >= $0.firstKDense } ?? false }

    /// Checks the MLA and MoE options; messages name the field.
    func validateDeepseek() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw PolicyError.invalidConfig(msg) } }
        if let m = mla {
            let w = 1...Limits.width
            try need(m.qLoraRank == 0 || w.contains(m.qLoraRank), "q_lora_rank must be 0 (direct q_proj) or in \(w)")
            try need(w.contains(m.kvLoraRank) && w.contains(m.qkNopeHeadDim) && w.contains(m.vHeadDim),
                     "kv_lora_rank, qk_nope_head_dim and v_head_dim must be in \(w)")
            try need(w.contains(m.qkRopeHeadDim) && m.qkRopeHeadDim % 2 == 0, "qk_rope_head_dim (\(m.qkRopeHeadDim)) must be even and in 2...\(Limits.width) for RoPE")
        }
        if let e = moe {
            try need(mla != nil, "moe needs attention: mla (an MoE policy is saved as Hugging Face DeepseekV3, which has MLA attention only)")
            try need((1...Limits.experts).contains(e.experts), "moe.experts (\(e.experts)) must be in 1...\(Limits.experts)")
            try need(e.topK >= 1 && e.topK <= e.experts, "moe.top_k (\(e.topK)) must be in 1...moe.experts (\(e.experts))")
            try need((1...Limits.hidden).contains(e.expertFfDim), "moe.expert_ff_dim must be in 1...\(Limits.hidden)")
            try need((0...Limits.sharedExperts).contains(e.sharedExperts), "moe.shared_experts must be in 0...\(Limits.sharedExperts)")
            try need(e.firstKDense >= 0 && e.firstKDense <= layers, "moe.first_k_dense (\(e.firstKDense)) must be in 0...layers (\(layers))")
            try need(e.routedScalingFactor > 0, "moe.routed_scaling_factor must be positive")
            try need(e.auxLossCoef >= 0 && e.biasUpdateRate >= 0, "moe.aux_loss_coef and moe.bias_update_rate must be 0 or more")
        }
    }

    /// The trainable parameters `deepseekTensorSpecs` lists, counted from the sizes alone.
    var deepseekParameterTotal: Double {
        guard let m = mla else { return 0 }
        let (C, H) = (Double(dModel), Double(heads))
        let (qr, kv, rope, nope, v) = (Double(m.qLoraRank), Double(m.kvLoraRank), Double(m.qkRopeHeadDim), Double(m.qkNopeHeadDim), Double(m.vHeadDim))
        let query = qr > 0 ? qr * C + qr + H * (nope + rope) * qr : H * (nope + rope) * C
        let attention = query + (kv + rope) * C + kv + H * (nope + v) * kv + C * H * v
        let moeLayers = Double(moe.map { max(0, layers - $0.firstKDense) } ?? 0)
        let routed = moe.map { Double($0.experts) * C + 3 * Double($0.expertFfDim) * C * Double($0.experts + $0.sharedExperts) } ?? 0
        return Double(vocabSize) * C * (tieEmbeddings ? 1 : 2) + C + Double(layers) * (2 * C + attention)
            + (Double(layers) - moeLayers) * 3 * Double(ffDim) * C + moeLayers * routed
    }

    /// Every tensor of a DeepseekV3 policy in model order, with its shape; `trainable` is false for
    /// the selection bias (a buffer, moved by the bias update, never by gradients).
    public func deepseekTensorSpecs() -> [(spec: TensorSpec, trainable: Bool)] {
        guard let m = mla else { return [] }
        let (C, H, V) = (dModel, heads, vocabSize)
        var out = [(TensorSpec("model.embed_tokens.weight", [V, C]), true)]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            func add(_ name: String, _ shape: [Int], _ trainable: Bool = true) { out.append((TensorSpec(p + name, shape), trainable)) }
            add("input_layernorm.weight", [C])
            if m.qLoraRank > 0 {
                add("self_attn.q_a_proj.weight", [m.qLoraRank, C])
                add("self_attn.q_a_layernorm.weight", [m.qLoraRank])
                add("self_attn.q_b_proj.weight", [H * m.qkHeadDim, m.qLoraRank])
            } else {
                add("self_attn.q_proj.weight", [H * m.qkHeadDim, C])
            }
            add("self_attn.kv_a_proj_with_mqa.weight", [m.kvLoraRank + m.qkRopeHeadDim, C])
            add("self_attn.kv_a_layernorm.weight", [m.kvLoraRank])
            add("self_attn.kv_b_proj.weight", [H * (m.qkNopeHeadDim + m.vHeadDim), m.kvLoraRank])
            add("self_attn.o_proj.weight", [C, H * m.vHeadDim])
            add("post_attention_layernorm.weight", [C])
            if let e = moe, isMoELayer(i) {
                let fe = e.expertFfDim, fs = e.expertFfDim * e.sharedExperts
                add("mlp.gate.weight", [e.experts, C])
                add("mlp.gate.e_score_correction_bias", [e.experts], false)
                for x in 0..<e.experts {
                    add("mlp.experts.\(x).gate_proj.weight", [fe, C])
                    add("mlp.experts.\(x).up_proj.weight", [fe, C])
                    add("mlp.experts.\(x).down_proj.weight", [C, fe])
                }
                add("mlp.shared_experts.gate_proj.weight", [fs, C])
                add("mlp.shared_experts.up_proj.weight", [fs, C])
                add("mlp.shared_experts.down_proj.weight", [C, fs])
            } else {
                add("mlp.gate_proj.weight", [ffDim, C])
                add("mlp.up_proj.weight", [ffDim, C])
                add("mlp.down_proj.weight", [C, ffDim])
            }
        }
        out.append((TensorSpec("model.norm.weight", [C]), true))
        if !tieEmbeddings { out.append((TensorSpec("lm_head.weight", [V, C]), true)) }
        return out
    }

    /// Parameters that one token uses: all but the (E − k) routed experts it skips in each MoE layer
    /// (and the embedding rows it does not look up are counted, as is usual).
    public var activeParameterCount: Int {
        guard let e = moe else { return parameterCount }
        let moeLayers = (0..<layers).filter(isMoELayer).count
        return parameterCount - moeLayers * (e.experts - e.topK) * 3 * dModel * e.expertFfDim
    }

    /// Bytes of KV cache per token per sequence, over all layers: K and V (2·C floats) per layer for
    /// MHA; the latent and the shared RoPE key (Rkv + R floats) per layer for MLA.
    public var kvBytesPerToken: Int {
        if let m = mla { return layers * (m.kvLoraRank + m.qkRopeHeadDim) * 4 }
        return layers * 2 * dModel * 4
    }
}

// MARK: - config.json

/// A DeepseekV3 `config.json` as `transformers.DeepseekV3Config` reads it. Ponder writes
/// `n_group: 1, topk_group: 1` (no group-limited routing) and `scoring_func` (DeepSeek's own key,
/// which transformers keeps but ignores: its DeepseekV3 always gates with a sigmoid).
public struct DeepseekV3ConfigJSON: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    public var mla: MLAConfig
    public var moe: MoEConfig?
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?

    /// The config.json for a policy config (which must have MLA).
    public init(_ c: PolicyConfig, bos: Int?, eos: Int?, pad: Int?) {
        precondition(c.mla != nil, "a DeepseekV3 config needs MLA")
        vocabSize = c.vocabSize
        hiddenSize = c.dModel
        intermediateSize = c.ffDim
        numHiddenLayers = c.layers
        numAttentionHeads = c.heads
        maxPositionEmbeddings = c.maxContext
        rmsNormEps = Double(c.rmsEps)
        ropeTheta = c.ropeTheta
        tieWordEmbeddings = c.tieEmbeddings
        mla = c.mla!
        moe = c.moe
        bosTokenId = bos
        eosTokenId = eos
        padTokenId = pad
    }

    /// The policy config it describes.
    public var policyConfig: PolicyConfig {
        var c = PolicyConfig(vocabSize: vocabSize, dModel: hiddenSize, layers: numHiddenLayers, heads: numAttentionHeads,
                             ffDim: intermediateSize, maxContext: maxPositionEmbeddings, ropeTheta: ropeTheta,
                             rmsEps: Float(rmsNormEps), tieEmbeddings: tieWordEmbeddings)
        c.mla = mla
        c.moe = moe
        return c
    }

    /// The keys and values of config.json, with transformers' key names.
    public func jsonFields() -> [String: JSONValue] {
        let e = moe
        func opt(_ x: Int?) -> JSONValue { x.map { .int($0) } ?? .null }
        var o: [String: JSONValue] = [
            "architectures": .array([.string("DeepseekV3ForCausalLM")]), "model_type": .string("deepseek_v3"), "dtype": .string("float32"),
            "vocab_size": .int(vocabSize), "hidden_size": .int(hiddenSize), "intermediate_size": .int(intermediateSize),
            "num_hidden_layers": .int(numHiddenLayers), "num_attention_heads": .int(numAttentionHeads),
            "num_key_value_heads": .int(numAttentionHeads), "max_position_embeddings": .int(maxPositionEmbeddings),
            "rms_norm_eps": .double(rmsNormEps), "rope_theta": .double(ropeTheta),
            "rope_parameters": .object([("rope_theta", .double(ropeTheta)), ("rope_type", .string("default"))]),
            "rope_interleave": .bool(mla.ropeInterleave), "hidden_act": .string("silu"), "attention_bias": .bool(false),
            "tie_word_embeddings": .bool(tieWordEmbeddings),
            "q_lora_rank": mla.qLoraRank > 0 ? .int(mla.qLoraRank) : .null,
            "kv_lora_rank": .int(mla.kvLoraRank), "qk_nope_head_dim": .int(mla.qkNopeHeadDim),
            "qk_rope_head_dim": .int(mla.qkRopeHeadDim), "v_head_dim": .int(mla.vHeadDim),
            // A dense policy is a DeepseekV3 whose every layer is dense: first_k_dense_replace = layers.
            "first_k_dense_replace": .int(e?.firstKDense ?? numHiddenLayers),
            "n_routed_experts": .int(e?.experts ?? 1), "num_experts_per_tok": .int(e?.topK ?? 1),
            "n_shared_experts": .int(e?.sharedExperts ?? 1), "moe_intermediate_size": .int(e?.expertFfDim ?? intermediateSize),
            "norm_topk_prob": .bool(e?.normTopkProb ?? true), "routed_scaling_factor": .double(Double(e?.routedScalingFactor ?? 1)),
            "scoring_func": .string((e?.scoring ?? .sigmoid).rawValue), "n_group": .int(1), "topk_group": .int(1),
            "num_nextn_predict_layers": .int(0),
            "bos_token_id": opt(bosTokenId), "eos_token_id": opt(eosTokenId), "pad_token_id": opt(padTokenId),
        ]
        if let e {  // Ponder's training-only choices; transformers keeps unknown keys and ignores them
            o["ponder_moe_balance"] = .string(e.balance.rawValue)
            o["ponder_aux_loss_coef"] = .double(Double(e.auxLossCoef))
            o["ponder_bias_update_rate"] = .double(Double(e.biasUpdateRate))
        }
        return o
    }

    /// Writes `config.json` atomically (sorted keys, deterministic). Floats are always written with
    /// a decimal point: transformers 5 validates field types strictly, and rejects `1` for a float.
    public func write(to url: URL) throws {
        try AtomicFile.write(Data((JSONValue.object(jsonFields().sorted { $0.key < $1.key }.map { ($0.key, $0.value) }).pretty + "\n").utf8), to: url)
    }

    /// Reads a DeepseekV3 `config.json`; errors name the file and the key.
    /// Long on purpose: one read per key of config.json, in the file's order, each naming its key on error.
    public static func read(from url: URL) throws -> DeepseekV3ConfigJSON {
        let file = url.path
        guard let data = try? Data(contentsOf: url),
              let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw HFConfigError(file: file, key: nil, message: "is not a JSON object")
        }
        func fail(_ key: String, _ m: String) -> HFConfigError { HFConfigError(file: file, key: key, message: m) }
        /// An integer that fits comfortably in an Int (a huge number is refused here, not trapped on later).
        func exact(_ v: Any?) -> Int? {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            return d.isFinite && d == d.rounded() && abs(d) < 9e15 ? Int(d) : nil
        }
        func int(_ key: String, _ def: Int? = nil) throws -> Int {
            if let v = exact(o[key]) { return v }
            if (o[key] == nil || o[key] is NSNull), let def { return def }
            throw fail(key, o[key] == nil ? "is required" : "must be an integer below 9e15")
        }
        func optInt(_ key: String) -> Int? { exact(o[key]) }
        func double(_ key: String, _ def: Double) throws -> Double {
            if let v = o[key] as? NSNumber { return v.doubleValue }
            if o[key] == nil || o[key] is NSNull { return def }
            throw fail(key, "must be a number")
        }
        func bool(_ key: String, _ def: Bool) throws -> Bool {
            if let v = o[key] as? Bool { return v }
            if o[key] == nil || o[key] is NSNull { return def }
            throw fail(key, "must be true or false")
        }
        guard (o["model_type"] as? String) == "deepseek_v3" else { throw fail("model_type", "is not \"deepseek_v3\"") }
        if let act = o["hidden_act"] as? String, act != "silu" { throw fail("hidden_act", "is \"\(act)\"; Ponder supports \"silu\"") }
        if try bool("attention_bias", false) { throw fail("attention_bias", "is true; Ponder's attention has no biases") }
        let heads = try int("num_attention_heads")
        if let kv = optInt("num_key_value_heads"), kv != heads {
            throw fail("num_key_value_heads", "is \(kv); DeepseekV3's MLA needs it equal to num_attention_heads (\(heads))")
        }
        if let rs = o["rope_scaling"], !(rs is NSNull) { throw fail("rope_scaling", "is set; Ponder supports unscaled RoPE only") }
        let rope = o["rope_parameters"] as? [String: Any]
        if let t = rope?["rope_type"] as? String, t != "default" { throw fail("rope_parameters", "has rope_type \"\(t)\"; Ponder supports \"default\" RoPE only") }
        let topTheta = try double("rope_theta", .nan)
        let innerTheta = (rope?["rope_theta"] as? NSNumber)?.doubleValue
        if let innerTheta, !topTheta.isNaN, innerTheta != topTheta {
            throw fail("rope_theta", "is \(topTheta) but rope_parameters.rope_theta is \(innerTheta); make them equal (transformers 4 reads the first, 5 the second)")
        }
        let theta = innerTheta ?? (topTheta.isNaN ? 10_000 : topTheta)
        let layers = try int("num_hidden_layers")
        if let g = optInt("n_group"), let tg = optInt("topk_group"), g != tg {
            throw fail("n_group", "is \(g) with topk_group \(tg); Ponder routes without group limits (use n_group = topk_group)")
        }
        var c = DeepseekV3ConfigJSON.blank
        c.vocabSize = try int("vocab_size")
        c.hiddenSize = try int("hidden_size")
        c.intermediateSize = try int("intermediate_size")
        c.numHiddenLayers = layers
        c.numAttentionHeads = heads
        c.maxPositionEmbeddings = try int("max_position_embeddings", 4096)
        c.rmsNormEps = try double("rms_norm_eps", 1e-6)
        c.ropeTheta = theta
        c.tieWordEmbeddings = try bool("tie_word_embeddings", false)
        c.mla = MLAConfig(qLoraRank: optInt("q_lora_rank") ?? 0, kvLoraRank: try int("kv_lora_rank"),
                          qkNopeHeadDim: try int("qk_nope_head_dim"), qkRopeHeadDim: try int("qk_rope_head_dim"),
                          vHeadDim: try int("v_head_dim"), ropeInterleave: try bool("rope_interleave", true))
        let firstDense = try int("first_k_dense_replace", 3)
        if firstDense < layers {
            let scoringName = (o["scoring_func"] as? String) ?? "sigmoid"
            guard let scoring = MoEConfig.Scoring(rawValue: scoringName) else {
                throw fail("scoring_func", "is \"\(scoringName)\"; Ponder supports \"sigmoid\" or \"softmax\"")
            }
            var e = MoEConfig(experts: try int("n_routed_experts"), topK: try int("num_experts_per_tok"),
                              sharedExperts: try int("n_shared_experts", 1), expertFfDim: try int("moe_intermediate_size"),
                              scoring: scoring, normTopkProb: try bool("norm_topk_prob", true),
                              routedScalingFactor: Float(try double("routed_scaling_factor", 2.5)), firstKDense: firstDense)
            if let b = o["ponder_moe_balance"] as? String, let bal = MoEConfig.Balance(rawValue: b) { e.balance = bal }
            e.auxLossCoef = Float(try double("ponder_aux_loss_coef", Double(e.auxLossCoef)))
            e.biasUpdateRate = Float(try double("ponder_bias_update_rate", Double(e.biasUpdateRate)))
            c.moe = e
        }
        c.bosTokenId = optInt("bos_token_id")
        c.eosTokenId = (o["eos_token_id"] as? NSNumber)?.intValue ?? (o["eos_token_id"] as? [NSNumber])?.first?.intValue
        c.padTokenId = optInt("pad_token_id")
        do {
            try c.policyConfig.validate()
        } catch let e as PolicyError {
            throw HFConfigError(file: file, key: nil, message: e.description)
        }
        return c
    }

    private static var blank: DeepseekV3ConfigJSON {
        var p = PolicyConfig(vocabSize: 1, dModel: 2, layers: 1, heads: 1, ffDim: 1, maxContext: 2)
        p.mla = MLAConfig(kvLoraRank: 1, qkNopeHeadDim: 1, qkRopeHeadDim: 2, vHeadDim: 1)
        return DeepseekV3ConfigJSON(p, bos: nil, eos: nil, pad: nil)
    }
}

// MARK: - Checkpoint

extension Checkpoint {
    /// The `model_type` of a config.json, or nil when it has none or cannot be read.
    static func modelType(of url: URL) -> String? {
        guard let data = try? Data(contentsOf: url),
              let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        return o["model_type"] as? String
    }

    /// Reads a DeepseekV3 checkpoint folder (Ponder's, or one transformers saved): every tensor is
    /// checked for presence and shape, and unexpected tensors are errors, as for Llama folders.
    static func loadDeepseek(from dir: URL) throws -> (policy: Policy, tokenizer: CharTokenizer, metadata: [String: String]) {
        let cfgURL = dir.appendingPathComponent("config.json")
        let hf = try DeepseekV3ConfigJSON.read(from: cfgURL)
        let config = hf.policyConfig
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile.read(from: weightsURL)
        try file.validate(expected: config.deepseekTensorSpecs().map(\.spec), file: weightsURL.path)
        let tokenizer = try CharTokenizer.load(from: dir.appendingPathComponent("tokenizer.json"))
        guard tokenizer.vocabSize == config.vocabSize else {
            throw CheckpointError.mismatch("\(dir.path): tokenizer.json has \(tokenizer.vocabSize) tokens but config.json says vocab_size \(config.vocabSize)")
        }
        let policy = try Policy(config: config) { name, shape in
            Tensor(shape: shape, try file.requireWeights(name, shape: shape, file: weightsURL.path), requiresGrad: true)
        }
        return (policy, tokenizer, file.metadata)
    }
}
