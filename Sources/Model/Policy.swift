// The policy: token embedding → decoder layers → RMSNorm → LM head, with one forward for
// training (recorded on the tape) and decoding (against a KV cache, KVCache.swift). Each
// architecture is one file behind `DecoderLayer`: Llama.swift (Llama, Qwen2) and DeepseekV3.swift
// (multi-head latent attention, dense or mixture-of-experts feed-forward).
//
// Dimensions: B batch, T time, C = d_model, V vocabulary; S sequences being decoded, L new tokens
// per sequence in a cached step.

import Autograd
import Foundation

// MARK: - Layers

/// One forward through the layers: `rows` × `tokens` tokens with their RoPE positions and left
/// padding, recorded for training (`cache` nil) or decoded against `cache`.
public struct ForwardPass {
    /// B rows of T tokens, or the cache's S sequences of L new tokens.
    public let rows: Int, tokens: Int
    /// RoPE position of each token (rows · tokens).
    public let positions: [Int32]
    /// Left-pad tokens per row (nil: none).
    public let keyStart: [Int]?
    /// The cache this step appends to and attends over; nil for a recorded forward.
    public let cache: KVCache?
    /// MLA decoding in latent space (see `Policy.absorbMLA`).
    let absorbMLA: Bool
    /// Whether LoRA adapters add their term (off for the base policy, LoRA's reference).
    var useAdapters = true
    /// Set when rows share prefixes (`Policy.hidden(prefixes:)`): the layers' per-token work
    /// runs over the packed tokens, and `positions` are theirs.
    var shared: SharedPrefixes? = nil

    /// x · wᵀ: recorded on the tape, or through the cache's packed copy of w when decoding.
    func linear(_ x: Tensor, _ w: Tensor) -> Tensor {
        cache.map { $0.linear(x, w) } ?? Tensor.matmul(x, w, transposeB: true)
    }

    /// x · wᵀ plus a LoRA adapter's ((α/r)·x·Aᵀ)·Bᵀ when there is one: recorded as the two products,
    /// or, when decoding, through the cache's packed copy of the merged W + (α/r)·B·A.
    func linear(_ x: Tensor, _ w: Tensor, adapter: LoRAAdapter?) -> Tensor {
        guard let adapter, useAdapters else { return linear(x, w) }
        if let cache { return cache.linear(x, w, merging: adapter) }
        // The scaling applies to the rank-r product, not to the (N, out) one: one weight-wide
        // temporary fewer per projection on the tape.
        let low = Tensor.matmul(Tensor.matmul(x, adapter.a, transposeB: true) * adapter.scaling, adapter.b, transposeB: true)
        return Tensor.matmul(x, w, transposeB: true) + low
    }
}

/// A recorded batch of B rows × T slots whose rows begin alike, run with each distinct prefix once
/// (a trie over the rows' tokens, as a radix attention cache shares prefixes when serving, but for a
/// recorded pass): slot i of row r holds the packed token of the prefix ids[r][0...i], made when the
/// first row with that prefix reached it. Per-token work (norms, projections, MLP) runs over the
/// packed tokens; attention reads each row's slots (gathered per head, `Tensor.causalAttention(packed:)`;
/// into the B×T layout for grouped-query attention), runs causally per row, and each packed token
/// takes its output from one slot, its first row's. Rows' values equal
/// those of the unshared batch: a row's attention reads the same keys and values (a prefix's token
/// depends on that prefix alone), and the per-token ops act on each token alone. Made once per batch
/// by its owner (a GRPO micro-batch's, for the policy's and the reference's passes alike).
public struct SharedPrefixes: Sendable {
    /// The rows (B×T, right-padded), rows, slots per row, and each row's real (unpadded) tokens.
    public let ids: [Int32], batch: Int, time: Int, lengths: [Int]
    /// For each B×T slot, the packed token it holds (a pad slot holds its row's last real token:
    /// causal attention never lets a real slot read it, and the slot's output is never read back).
    public let toSlots: [Int32]
    /// For each packed token, the slot whose attention output it takes (its first row's).
    let fromSlots: [Int32]
    /// Each packed token's id and position.
    let packedIDs: [Int32]
    public let positions: [Int32]
    /// For each row, the slots whose attention outputs a packed token takes: from the first token
    /// the row added to the trie to its length (empty when an earlier row holds all its prefixes).
    /// Attention computes only these queries (`Tensor.causalAttention(tokenMajor:queries:)`).
    public let queries: [Range<Int>]
    /// Packed tokens: the rows' distinct prefixes, what the layers' per-token work runs over.
    public var packed: Int { fromSlots.count }
    /// Real tokens of the rows, what the unshared forward's per-token work runs over.
    public var realTokens: Int { lengths.reduce(0, +) }

    /// The layout of right-padded rows `ids` (B×T) of which `lengths[r]` tokens are real.
    public init(ids: [Int32], batch b: Int, time t: Int, lengths: [Int]) {
        precondition(ids.count == b * t && lengths.count == b, "shape of the shared batch")
        (self.ids, batch, time, self.lengths) = (ids, b, t, lengths)
        var toSlots = [Int32](repeating: 0, count: b * t), fromSlots: [Int32] = [], packedIDs: [Int32] = [], positions: [Int32] = []
        packedIDs.reserveCapacity(b * t)
        // (parent's packed token, or -1 at a row's first slot; this token) → its packed token
        var child: [SIMD2<Int32>: Int32] = [:]
        var queries: [Range<Int>] = []
        for r in 0..<b {
            let n = lengths[r], row = r * t
            precondition(0 < n && n <= t, "row \(r): length \(n) in \(t) slots")
            var parent: Int32 = -1, first = n
            for i in 0..<n {
                let key = SIMD2(parent, ids[row + i])
                if let p = child[key] {
                    parent = p
                } else {  // once a row leaves the trie, each further prefix is new
                    parent = Int32(packedIDs.count)
                    child[key] = parent
                    packedIDs.append(ids[row + i]); positions.append(Int32(i)); fromSlots.append(Int32(row + i))
                    first = Swift.min(first, i)
                }
                toSlots[row + i] = parent
            }
            for i in n..<t { toSlots[row + i] = toSlots[row + n - 1] }
            queries.append(first..<n)
        }
        (self.toSlots, self.fromSlots, self.packedIDs, self.positions, self.queries) = (toSlots, fromSlots, packedIDs, positions, queries)
    }
}

/// A decoder layer of one architecture: its weights under their Hugging Face names, and its one
/// forward, x (N, C) → x + attention + feed-forward over `pass`.
public protocol DecoderLayer: AnyObject {
    /// The RoPE table the architecture's layers share, made once per policy.
    static func rope(_ config: PolicyConfig) -> RoPETable
    /// Layer `layer`'s weights from `make(HF name suffix, shape)`, in checkpoint order.
    init(_ config: PolicyConfig, layer: Int, rope: RoPETable, make: (String, [Int]) throws -> Tensor) rethrows
    /// (HF name suffix, tensor) pairs.
    var named: [(String, Tensor)] { get }
    /// The mixture-of-experts feed-forward, if this layer has one.
    var moe: MoELayer? { get }
    func callAsFunction(_ x: Tensor, _ pass: ForwardPass) -> Tensor
}

extension DecoderLayer {
    public var moe: MoELayer? { nil }
}

extension PolicyConfig {
    /// The layer type of this config's architecture.
    var layerType: any DecoderLayer.Type { isDeepseek ? DeepseekV3Block.self : LlamaBlock.self }
}

// MARK: - Policy

public final class Policy {
    public let config: PolicyConfig
    public let embed: Tensor      // (V, C)
    /// The decoder layers, of the config's architecture (`PolicyConfig.layerType`).
    public let layers: [any DecoderLayer]
    public let norm: Tensor       // (C)
    let head: Tensor?             // (V, C), nil when tied
    /// MLA's cached decoding folds W_UK into the queries (true) or re-expands the cache (false, for checks).
    public var absorbMLA = true
    /// The LoRA adapters' settings, when the policy has adapters (LoRA.swift).
    public internal(set) var lora: LoRAConfig?
    /// Whether the adapters add their term (`withoutAdapters` turns them off for a while).
    public internal(set) var adaptersEnabled = true
    /// Recompute each decoder layer's activations at backward instead of keeping them from the
    /// forward (`Autograd.checkpoint`): a recorded forward keeps only the layers' inputs, for about a
    /// third more compute. Gradients are unchanged bit for bit. Layers with mixture-of-experts are not
    /// recomputed (their routing statistics count each forward).
    public var gradientCheckpointing = false

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
        let layerType = config.layerType, rope = layerType.rope(config)
        layers = try (0..<config.layers).map { i in
            try layerType.init(config, layer: i, rope: rope) { try make("model.layers.\(i).\($0)", $1) }
        }
        norm = try make("model.norm.weight", [config.dModel])
        head = config.tieEmbeddings ? nil : try make("lm_head.weight", [config.vocabSize, config.dModel])
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

    /// Every trained parameter under its Hugging Face name (Llama, or DeepseekV3 with MLA), in a fixed
    /// order; with LoRA, the adapters under PEFT's names (the frozen base weights are not trained).
    public var namedParameters: [(String, Tensor)] { namedTensors.filter { $0.1.requiresGrad } + loraTensors }

    /// Every stored tensor: the parameters and buffers that gradients do not train (MoE selection bias).
    public var namedTensors: [(String, Tensor)] {
        var out = [("model.embed_tokens.weight", embed)]
        for (i, layer) in layers.enumerated() {
            out += layer.named.map { ("model.layers.\(i).\($0.0)", $0.1) }
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
        run(ids, recordedPass(ids, batch: b, time: t, keyStart: keyStart), lastOnly: false)
    }

    /// The pass of a recorded forward over B rows of T tokens.
    private func recordedPass(_ ids: [Int32], batch b: Int, time t: Int, keyStart: [Int]?) -> ForwardPass {
        precondition(ids.count == b * t, "\(ids.count) ids for batch \(b) × time \(t)")
        checkLength(t)
        return ForwardPass(rows: b, tokens: t, positions: Self.positions(rows: b, length: t, keyStart: keyStart),
                           keyStart: keyStart, cache: nil, absorbMLA: absorbMLA, useAdapters: adaptersEnabled)
    }

    /// Stops on a recorded row longer than max_context. Not a precondition: release builds
    /// (-Ounchecked) drop those, and positions past the RoPE table would be read silently. Callers
    /// (trainer, sampler, eval) check first with clear errors.
    private func checkLength(_ t: Int) {
        guard t <= config.maxContext else { fatalError("sequence of \(t) tokens exceeds max_context \(config.maxContext)") }
    }

    /// embedding → layers: (N, C), before the final norm.
    private func trunk(_ ids: [Int32], _ pass: ForwardPass) -> Tensor {
        var x = Tensor.embedding(embed, ids: ids)
        for layer in layers {
            if gradientCheckpointing && pass.cache == nil && layer.moe == nil {
                x = Autograd.checkpoint(x) { layer($0, pass) }
            } else {
                x = layer(x, pass)
            }
        }
        return x
    }

    /// The final normed hidden states (B·T, C) on the tape: `forward` without the LM head, for
    /// `Tensor.headLogprobs`, which applies the head in chunks of rows (`lmHead`).
    public func hidden(ids: [Int32], batch b: Int, time t: Int, keyStart: [Int]? = nil) -> Tensor {
        Tensor.rmsNorm(trunk(ids, recordedPass(ids, batch: b, time: t, keyStart: keyStart)), weight: norm, eps: config.rmsEps)
    }

    /// Whether `hidden(prefixes:)` computes shared prefixes once: Llama layers without
    /// mixture-of-experts (an MoE layer's routing statistics and balance loss count every row's
    /// tokens; MLA's attention is not written for the packed layout).
    public var sharesPrefixes: Bool { !config.isDeepseek && moeLayers.isEmpty }

    /// `hidden(ids:batch:time:)` for the rows of `prefixes` (rows that may begin alike: a GRPO
    /// group's G completions share their prompt, and a trained policy's completions most of their
    /// tokens): every distinct prefix runs through the layers once, and a row's slots past its length
    /// (pads) not at all. Returns the (B·T, C) states of the unshared forward, equal value for value
    /// (the pad slots aside, which hold their row's last real token's); gradients sum each prefix's
    /// rows' contributions once. Without `sharesPrefixes`, the unshared forward.
    public func hidden(prefixes layout: SharedPrefixes) -> Tensor {
        let (b, t) = (layout.batch, layout.time)
        guard sharesPrefixes else { return hidden(ids: layout.ids, batch: b, time: t) }
        checkLength(t)
        let pass = ForwardPass(rows: b, tokens: t, positions: layout.positions, keyStart: nil, cache: nil, absorbMLA: absorbMLA,
                               useAdapters: adaptersEnabled, shared: layout)
        return Tensor.rmsNorm(trunk(layout.packedIDs, pass), weight: norm, eps: config.rmsEps).gatherRows(layout.toSlots)
    }

    /// Feeds `l` new tokens for each of the cache's S sequences (ids (S, L), row-major), appends their
    /// keys and values, and returns logits for the last position of each sequence (S, V), or for all
    /// positions (S·L, V) when `allPositions`. Runs without recording.
    public func step(_ ids: [Int32], tokensPerSeq l: Int, cache: KVCache, allPositions: Bool = false) -> Tensor {
        Autograd.noGrad {
            let s = cache.seqs, t0 = cache.length
            precondition(ids.count == s * l && t0 + l <= cache.capacity, "cache overflow: \(t0) + \(l) > \(cache.capacity)")
            let pass = ForwardPass(rows: s, tokens: l, positions: Self.positions(rows: s, length: l, from: t0, keyStart: cache.keyStart),
                                   keyStart: cache.keyStart, cache: cache, absorbMLA: absorbMLA, useAdapters: adaptersEnabled)
            return run(ids, pass, lastOnly: !allPositions && l > 1)
        }
    }

    /// embedding → layers → norm → LM head (in the matmul precision, as the linear layers), for
    /// every token or, with `lastOnly`, each row's last.
    private func run(_ ids: [Int32], _ pass: ForwardPass, lastOnly: Bool) -> Tensor {
        var x = trunk(ids, pass)  // (N, C)
        pass.cache?.advance(pass.tokens)
        if lastOnly {
            let (c, l) = (config.dModel, pass.tokens)
            let last = Tensor(uninitialized: [pass.rows, c])
            for r in 0..<pass.rows { (last.data + r * c).update(from: x.data + (r * l + l - 1) * c, count: c) }
            x = last
        }
        let xn = Tensor.rmsNorm(x, weight: norm, eps: config.rmsEps)
        if let cache = pass.cache { return cache.linear(xn, lmHead) }
        return Tensor.matmul(xn, lmHead, transposeB: true)  // (N, V)
    }
}
