// The policy: a Llama-style decoder (Touvron et al. 2023), read top to bottom.
// Config, then the block, then the policy with its two forwards: the recorded one for training, and
// the KV-cached one for sampling. Both run the same ops on the same weights and give the same logits.
//
// Dimensions: B batch, T time, C = d_model, H heads, K key/value heads (K = H: multi-head attention;
// K < H: grouped-query attention, Ainslie et al. 2023, query head h reading kv head h / (H/K)),
// D head size (C/H unless set), F ff size, V vocabulary, S sequences being sampled, L new tokens in
// a cached step.

import Autograd
import Foundation

// MARK: - Config

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

// MARK: - Block

/// One decoder block's weights, in Hugging Face layouts (linear weights are (out, in)).
public final class Block {
    public let attnNorm: Tensor   // (C)
    public let wq: Tensor         // (H·D, C)
    public let wk, wv: Tensor     // (K·D, C)
    public let wo: Tensor         // (C, H·D)
    public let bq, bk, bv: Tensor?  // (H·D), (K·D), (K·D): Qwen2's biases, else nil
    public let mlpNorm: Tensor    // (C)
    public let wGate, wUp: Tensor  // (F, C)
    public let wDown: Tensor      // (C, F)

    /// Weights from `make(HF name suffix, shape)`.
    init(_ c: PolicyConfig, make: (String, [Int]) throws -> Tensor) rethrows {
        attnNorm = try make("input_layernorm.weight", [c.dModel])
        let (q, kv) = (c.heads * c.headDim, c.kvHeadCount * c.headDim)
        wq = try make("self_attn.q_proj.weight", [q, c.dModel])
        wk = try make("self_attn.k_proj.weight", [kv, c.dModel])
        wv = try make("self_attn.v_proj.weight", [kv, c.dModel])
        wo = try make("self_attn.o_proj.weight", [c.dModel, q])
        bq = c.hasQKVBias ? try make("self_attn.q_proj.bias", [q]) : nil
        bk = c.hasQKVBias ? try make("self_attn.k_proj.bias", [kv]) : nil
        bv = c.hasQKVBias ? try make("self_attn.v_proj.bias", [kv]) : nil
        mlpNorm = try make("post_attention_layernorm.weight", [c.dModel])
        wGate = try make("mlp.gate_proj.weight", [c.ffDim, c.dModel])
        wUp = try make("mlp.up_proj.weight", [c.ffDim, c.dModel])
        wDown = try make("mlp.down_proj.weight", [c.dModel, c.ffDim])
    }

    /// (HF name suffix, tensor) pairs.
    var named: [(String, Tensor)] {
        [("input_layernorm.weight", attnNorm), ("self_attn.q_proj.weight", wq), ("self_attn.k_proj.weight", wk),
         ("self_attn.v_proj.weight", wv), ("self_attn.o_proj.weight", wo)]
            + [("self_attn.q_proj.bias", bq), ("self_attn.k_proj.bias", bk), ("self_attn.v_proj.bias", bv)]
            .compactMap { name, t in t.map { (name, $0) } }
            + [("post_attention_layernorm.weight", mlpNorm), ("mlp.gate_proj.weight", wGate),
               ("mlp.up_proj.weight", wUp), ("mlp.down_proj.weight", wDown)]
    }

    /// h·Wᵀ (+ b): (N, C) → (N, out).
    static func project(_ h: Tensor, _ w: Tensor, _ b: Tensor?, linear: (Tensor, Tensor) -> Tensor = linear) -> Tensor {
        let y = linear(h, w)
        return b.map { y + $0 } ?? y
    }

    /// x · wᵀ, recorded for gradients (cached decoding passes `KVCache.linear` instead).
    static func linear(_ x: Tensor, _ w: Tensor) -> Tensor { Tensor.matmul(x, w, transposeB: true) }

    /// The SwiGLU MLP on normed input h (N, C) → (N, C).
    func mlp(_ h: Tensor, linear: (Tensor, Tensor) -> Tensor = linear) -> Tensor {
        linear(Tensor.swiglu(gate: linear(h, wGate), up: linear(h, wUp)), wDown)
    }
}

// MARK: - Policy

public final class Policy {
    public let config: PolicyConfig
    public let embed: Tensor      // (V, C)
    public let blocks: [Block]
    public let norm: Tensor       // (C)
    let head: Tensor?             // (V, C), nil when tied
    let rope: RoPETable
    /// DeepseekV3 blocks (MLA attention, dense or MoE feed-forward) when `config.mla` is set; then
    /// `blocks` is empty. See MLA.swift.
    public let latentBlocks: [LatentBlock]
    let latentRope: RoPETable?    // over qk_rope_head_dim
    /// MLA's cached decoding folds W_UK into the queries (true) or re-expands the cache (false, for checks).
    public var absorbMLA = true

    /// A freshly initialised policy (HF Llama init: N(0, initStd²) matrices, unit norms).
    public convenience init(config: PolicyConfig, rng: inout RNG) {
        var r = rng
        self.init(config: config) { name, shape in
            name.hasSuffix("e_score_correction_bias") ? Tensor.zeros(shape)
                : name.hasSuffix("norm.weight") || name.hasSuffix(".bias")
                ? Tensor(shape: shape, repeating: name.hasSuffix(".bias") ? 0 : 1, requiresGrad: true)
                : Tensor.randn(shape, std: config.initStd, rng: &r, requiresGrad: true)
        }
        rng = r
    }

    /// A policy whose every weight comes from `make(HF name, shape)`, in `namedParameters` order.
    public init(config: PolicyConfig, make: (String, [Int]) throws -> Tensor) rethrows {
        self.config = config
        embed = try make("model.embed_tokens.weight", [config.vocabSize, config.dModel])
        blocks = config.isDeepseek ? [] : try (0..<config.layers).map { i in try Block(config) { try make("model.layers.\(i).\($0)", $1) } }
        latentBlocks = !config.isDeepseek ? [] : try (0..<config.layers).map { i in
            try LatentBlock(config, layer: i) { try make("model.layers.\(i).\($0)", $1) }
        }
        latentRope = config.mla.map { RoPETable(headDim: $0.qkRopeHeadDim, base: config.ropeTheta, maxPositions: config.maxContext) }
        norm = try make("model.norm.weight", [config.dModel])
        head = config.tieEmbeddings ? nil : try make("lm_head.weight", [config.vocabSize, config.dModel])
        rope = RoPETable(headDim: config.headDim, base: config.ropeTheta, maxPositions: config.maxContext,
                         inverseFrequencies: config.ropeScaling?.inverseFrequencies(headDim: config.headDim, base: config.ropeTheta))
    }

    /// RoPE positions (rows·length) of `length` tokens per row starting at slot `from`: row r's real
    /// tokens start after its `keyStart[r]` left-pad slots and count from 0 (pads get 0).
    static func positions(rows: Int, length: Int, from start: Int = 0, keyStart: [Int]?) -> [Int32] {
        var positions = [Int32](repeating: 0, count: rows * length)
        for r in 0..<rows {
            let pad = keyStart?[r] ?? 0
            for i in 0..<length { positions[r * length + i] = Int32(max(0, start + i - pad)) }
        }
        return positions
    }

    /// The LM head weight (the embedding when tied).
    public var lmHead: Tensor { head ?? embed }

    /// Every trained parameter under its Hugging Face name (Llama, or DeepseekV3 with MLA), in a fixed order.
    public var namedParameters: [(String, Tensor)] { namedTensors.filter { $0.1.requiresGrad } }

    /// Every stored tensor: the parameters and buffers that gradients do not train (MoE selection bias).
    public var namedTensors: [(String, Tensor)] {
        var out = [("model.embed_tokens.weight", embed)]
        for (i, b) in blocks.enumerated() {
            out += b.named.map { ("model.layers.\(i).\($0.0)", $0.1) }
        }
        for (i, b) in latentBlocks.enumerated() {
            out += b.named.map { ("model.layers.\(i).\($0.0)", $0.1) }
        }
        out.append(("model.norm.weight", norm))
        if let head { out.append(("lm_head.weight", head)) }
        return out
    }

    public var parameters: [Tensor] { namedParameters.map(\.1) }

    /// Logits (B·T, V) for token ids (B·T, row-major) on the tape.
    /// `keyStart[b]` is the number of left-pad tokens of row b (masked from attention; its real
    /// tokens get positions 0, 1, …). Without it, rows are unpadded.
    public func forward(ids: [Int32], batch b: Int, time t: Int, keyStart: [Int]? = nil) -> Tensor {
        precondition(ids.count == b * t, "\(ids.count) ids for batch \(b) × time \(t)")
        // Not a precondition: release builds (-Ounchecked) drop those, and positions past the RoPE
        // table would be read silently. Callers (trainer, sampler, eval) check first with clear errors.
        guard t <= config.maxContext else { fatalError("sequence of \(t) tokens exceeds max_context \(config.maxContext)") }
        if config.isDeepseek { return latentForward(ids: ids, batch: b, time: t, keyStart: keyStart) }
        let h = config.heads, kv = config.kvHeadCount, d = config.headDim
        let positions = Self.positions(rows: b, length: t, keyStart: keyStart)
        var x = Tensor.embedding(embed, ids: ids)  // (B·T, C)
        for blk in blocks {
            let hn = Tensor.rmsNorm(x, weight: blk.attnNorm, eps: config.rmsEps)
            func heads(_ w: Tensor, _ bias: Tensor?, _ n: Int, rotate: Bool) -> Tensor {
                var p = Block.project(hn, w, bias).reshaped([b, t, n, d])
                if rotate { p = Tensor.rope(p, positions: positions, table: rope) }
                if n < h {  // GQA: repeat each kv head H/K times, as HF's repeat_kv does
                    let one = p.reshaped([b, t, n, 1, d])
                    p = Tensor.concat(Array(repeating: one, count: h / n), axis: 3).reshaped([b, t, h, d])
                }
                return p.transposed(1, 2)  // (B, H, T, D)
            }
            let q = heads(blk.wq, blk.bq, h, rotate: true), k = heads(blk.wk, blk.bk, kv, rotate: true)
            let v = heads(blk.wv, blk.bv, kv, rotate: false)
            let a = Tensor.causalAttention(q, k, v, keyStart: keyStart).transposed(1, 2).reshaped([b * t, h * d])
            x = x + Tensor.matmul(a, blk.wo, transposeB: true)
            x = x + blk.mlp(Tensor.rmsNorm(x, weight: blk.mlpNorm, eps: config.rmsEps))
        }
        let xn = Tensor.rmsNorm(x, weight: norm, eps: config.rmsEps)
        return Tensor.matmul(xn, lmHead, transposeB: true, precision: .f32)  // (B·T, V)
    }
}

// MARK: - KV-cached forward (no tape)

/// Keys and values of S left-padded sequences, per layer (S, K, capacity, D): one slot per kv head,
/// so grouped-query attention caches H/K times less. All sequences are at the same length.
/// `keyStart[s]` is sequence s's left padding. `repeatRows` turns each prompt computed once into its
/// group's rows; `keep(rows:)` drops finished sequences, so later steps compute only the rows still decoding.
public final class KVCache {
    public let heads: Int, headDim: Int, capacity: Int
    public private(set) var seqs: Int
    public private(set) var keyStart: [Int]
    /// Sequences the buffers have room for.
    let rowsAllocated: Int
    public private(set) var length = 0
    let k: [UnsafeMutablePointer<Float>]
    let v: [UnsafeMutablePointer<Float>]
    /// MLA's latent cache (then k and v are empty).
    public let latent: LatentCache?

    /// A cache of `seqs` sequences with room for `reserve` (at least `seqs`; see `repeatRows`).
    public init(config: PolicyConfig, seqs: Int, capacity: Int, keyStart: [Int], reserve: Int? = nil) {
        precondition(keyStart.count == seqs && (reserve ?? seqs) >= seqs)
        // Kept in release builds (see `forward`): a cache past max_context would read past the RoPE table.
        guard capacity <= config.maxContext else { fatalError("KV cache of \(capacity) slots exceeds max_context \(config.maxContext)") }
        self.seqs = seqs
        heads = config.kvHeadCount
        headDim = config.headDim
        self.capacity = capacity
        self.keyStart = keyStart
        rowsAllocated = reserve ?? seqs
        let n = rowsAllocated * heads * capacity * config.headDim
        let mhaLayers = config.isDeepseek ? 0 : config.layers
        k = (0..<mhaLayers).map { _ in .allocate(capacity: n) }
        v = (0..<mhaLayers).map { _ in .allocate(capacity: n) }
        latent = config.isDeepseek ? LatentCache(config: config, seqs: rowsAllocated, capacity: capacity) : nil
    }

    deinit {
        k.forEach { $0.deallocate() }
        v.forEach { $0.deallocate() }
    }

    /// The weights packed for this cache's decode products, made at first use (see `linear`).
    var packed: [ObjectIdentifier: PackedMatrix] = [:]

    /// x · wᵀ through a copy of w packed at this cache's first step: the weights must not change
    /// while a cache is in use (sampling and evaluation hold no optimizer).
    func linear(_ x: Tensor, _ w: Tensor) -> Tensor { linear(x, w, precision: nil) }

    /// `linear` in `precision` (nil: `BLAS.precision`), fixed when w is first packed.
    func linear(_ x: Tensor, _ w: Tensor, precision: MatmulPrecision?) -> Tensor {
        let id = ObjectIdentifier(w)
        if let p = packed[id] { return Tensor.matmul(x, packed: p) }
        let p = PackedMatrix(w, precision: precision)
        packed[id] = p
        return Tensor.matmul(x, packed: p)
    }

    /// Bytes held per sequence per token (K and V over all layers).
    public var bytesPerToken: Int { latent?.bytesPerToken ?? 2 * k.count * heads * headDim * 4 }
    func advance(_ n: Int) { length += n }

    /// Keeps only the sequences `rows` (ascending indices of current ones) as sequences 0..<rows.count:
    /// the next `step` feeds and returns those rows alone. Kept rows below that count stay where they
    /// are and the kept rows above it move into the holes, so a compaction copies only the rows it
    /// moves. Returns, for each new sequence, the old index it holds.
    @discardableResult
    public func keep(rows: [Int]) -> [Int] {
        precondition(zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && (rows.last ?? -1) < seqs && (rows.first ?? 0) >= 0,
                     "keep(rows:) needs ascending indices of current sequences")
        let n = rows.count
        var order = Array(0..<n)
        var kept = [Bool](repeating: false, count: seqs)
        for r in rows { kept[r] = true }
        let holes = (0..<n).filter { !kept[$0] }
        for (hole, from) in zip(holes, rows.drop { $0 < n }) {  // as many rows at or above n as holes below it
            copySequence(from, to: hole)
            order[hole] = from
        }
        keyStart = order.map { keyStart[$0] }
        seqs = n
        return order
    }

    /// Makes each sequence `times` sequences with its filled slots: sequence i becomes i·times ..<
    /// (i+1)·times (a group's shared prompt, computed once, then sampled G ways). Needs room for them
    /// (`reserve`). Rows move from the last down, so no source is overwritten before it is copied.
    public func repeatRows(_ times: Int) {
        precondition(times >= 1 && seqs * times <= rowsAllocated, "repeatRows: \(seqs) × \(times) sequences exceed the \(rowsAllocated) reserved")
        for from in stride(from: seqs - 1, through: 0, by: -1) {
            for to in stride(from: from * times + times - 1, through: from * times, by: -1) where to != from {
                copySequence(from, to: to)
            }
        }
        keyStart = keyStart.flatMap { Array(repeating: $0, count: times) }
        seqs *= times
    }

    /// Copies sequence `from`'s filled slots (every layer and head) over sequence `to`'s.
    private func copySequence(_ from: Int, to: Int) {
        let block = heads * capacity * headDim  // one sequence of one layer
        for buffer in k + v {
            for hh in 0..<heads {
                let offset = hh * capacity * headDim
                (buffer + to * block + offset).update(from: buffer + from * block + offset, count: length * headDim)
            }
        }
        latent?.move(from: from, to: to, capacity: capacity, length: length)
    }
}

extension Policy {
    /// Feeds `l` new tokens for each of the cache's S sequences (ids (S, L), row-major), appends their
    /// keys and values, and returns logits for the last position of each sequence (S, V), or for all
    /// positions (S·L, V) when `allPositions`. Runs without recording.
    public func step(_ ids: [Int32], tokensPerSeq l: Int, cache: KVCache, allPositions: Bool = false) -> Tensor {
        Autograd.noGrad {
            if config.isDeepseek { return latentStep(ids, tokensPerSeq: l, cache: cache, allPositions: allPositions) }
            let s = cache.seqs, h = config.heads, kvh = config.kvHeadCount, d = config.headDim
            let qw = h * d, kw = kvh * d, rep = h / kvh
            let t0 = cache.length
            precondition(ids.count == s * l && t0 + l <= cache.capacity, "cache overflow: \(t0) + \(l) > \(cache.capacity)")
            let positions = Self.positions(rows: s, length: l, from: t0, keyStart: cache.keyStart)
            var x = Tensor.embedding(embed, ids: ids)  // (S·L, C)
            let scale = 1 / Float(d).squareRoot()
            let cap = cache.capacity
            for (layer, blk) in blocks.enumerated() {
                let hn = Tensor.rmsNorm(x, weight: blk.attnNorm, eps: config.rmsEps)
                let q = Tensor.rope(Block.project(hn, blk.wq, blk.bq, linear: cache.linear).reshaped([s, l, h, d]), positions: positions, table: rope)
                let k = Tensor.rope(Block.project(hn, blk.wk, blk.bk, linear: cache.linear).reshaped([s, l, kvh, d]), positions: positions, table: rope)
                let v = Block.project(hn, blk.wv, blk.bv, linear: cache.linear)
                let kc = cache.k[layer], vc = cache.v[layer]
                // Append: (S, L, K, D) → cache slots t0..<t0+L of (S, K, cap, D).
                for r in 0..<s {
                    for i in 0..<l {
                        for hh in 0..<kvh {
                            let src = (r * l + i) * kw + hh * d, dst = ((r * kvh + hh) * cap + t0 + i) * d
                            (kc + dst).update(from: k.data + src, count: d)
                            (vc + dst).update(from: v.data + src, count: d)
                        }
                    }
                }
                let att = Tensor(uninitialized: [s * l, qw])
                let qd = q.data, od = att.data
                Parallel.forRanges(s * h, cost: l * (t0 + l) * d * 4) { range in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: t0 + l)
                    defer { p.deallocate() }
                    for sh in range {
                        let r = sh / h, hh = sh % h, start = cache.keyStart[r]
                        let kvIndex = r * kvh + hh / rep  // GQA: query head hh reads kv head hh / (H/K)
                        let kb = kc + kvIndex * cap * d, vb = vc + kvIndex * cap * d
                        for i in 0..<l {
                            let qi = qd + (r * l + i) * qw + hh * d, oi = od + (r * l + i) * qw + hh * d
                            let end = t0 + i  // causal: keys start...end
                            if start > end { oi.update(repeating: 0, count: d); continue }
                            Kernels.attendRow(q: qi, keys: kb, values: vb, start: start, end: end, d: d, scale: scale,
                                              p: p, out: oi)
                        }
                    }
                }
                x = x + cache.linear(att, blk.wo)
                x = x + blk.mlp(Tensor.rmsNorm(x, weight: blk.mlpNorm, eps: config.rmsEps), linear: cache.linear)
            }
            cache.advance(l)
            if !allPositions && l > 1 {
                let c = config.dModel
                let last = Tensor(uninitialized: [s, c])
                for r in 0..<s { (last.data + r * c).update(from: x.data + (r * l + l - 1) * c, count: c) }
                x = last
            }
            let xn = Tensor.rmsNorm(x, weight: norm, eps: config.rmsEps)
            return cache.linear(xn, lmHead, precision: .f32)
        }
    }
}
