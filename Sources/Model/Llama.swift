// The Llama decoder layer (Touvron et al. 2023), which Qwen2 shares (biases on q, k and v):
// RMSNorm → attention with RoPE → residual, RMSNorm → SwiGLU MLP → residual. One forward serves
// training (recorded, over whole sequences) and decoding (against the KV cache).
//
// Dimensions: N = rows · tokens, C = d_model, H heads, K key/value heads (K = H: multi-head
// attention; K < H: grouped-query attention, Ainslie et al. 2023, query head h reading kv head
// h / (H/K)), D head size (C/H unless set), F ff size.

import Autograd
import Foundation

/// One Llama/Qwen2 decoder layer's weights, in Hugging Face layouts (linear weights are (out, in)).
public final class LlamaBlock: DecoderLayer {
    public let attnNorm: Tensor   // (C)
    public let wq: Tensor         // (H·D, C)
    public let wk, wv: Tensor     // (K·D, C)
    public let wo: Tensor         // (C, H·D)
    public let bq, bk, bv: Tensor?  // (H·D), (K·D), (K·D): Qwen2's biases, else nil
    public let mlpNorm: Tensor    // (C)
    public let wGate, wUp: Tensor  // (F, C)
    public let wDown: Tensor      // (C, F)
    let config: PolicyConfig
    let layer: Int
    let rope: RoPETable
    /// LoRA adapters by target name (q_proj, …, down_proj; LoRA.swift); empty without LoRA.
    var adapters: [String: LoRAAdapter] = [:]

    public static func rope(_ c: PolicyConfig) -> RoPETable {
        RoPETable(headDim: c.headDim, base: c.ropeTheta, maxPositions: c.maxContext,
                  inverseFrequencies: c.ropeScaling?.inverseFrequencies(headDim: c.headDim, base: c.ropeTheta))
    }

    public init(_ c: PolicyConfig, layer: Int, rope: RoPETable, make: (String, [Int]) throws -> Tensor) rethrows {
        (config, self.layer, self.rope) = (c, layer, rope)
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

    public var named: [(String, Tensor)] {
        [("input_layernorm.weight", attnNorm), ("self_attn.q_proj.weight", wq), ("self_attn.k_proj.weight", wk),
         ("self_attn.v_proj.weight", wv), ("self_attn.o_proj.weight", wo)]
            + [("self_attn.q_proj.bias", bq), ("self_attn.k_proj.bias", bk), ("self_attn.v_proj.bias", bv)]
            .compactMap { name, t in t.map { (name, $0) } }
            + [("post_attention_layernorm.weight", mlpNorm), ("mlp.gate_proj.weight", wGate),
               ("mlp.up_proj.weight", wUp), ("mlp.down_proj.weight", wDown)]
    }

    public func callAsFunction(_ x: Tensor, _ pass: ForwardPass) -> Tensor {
        let h = x + attention(Tensor.rmsNorm(x, weight: attnNorm, eps: config.rmsEps), pass)
        let hn = Tensor.rmsNorm(h, weight: mlpNorm, eps: config.rmsEps)
        return h + pass.linear(Tensor.swiglu(gate: pass.linear(hn, wGate, adapter: adapters["gate_proj"]),
                                             up: pass.linear(hn, wUp, adapter: adapters["up_proj"])),
                               wDown, adapter: adapters["down_proj"])
    }

    /// Attention on normed input hn (N, C) → (N, C): over the whole rows when recording, against the
    /// cache (after appending this step's keys and values) when decoding.
    func attention(_ hn: Tensor, _ pass: ForwardPass) -> Tensor {
        let (b, t, h, kv, d) = (pass.rows, pass.tokens, config.heads, config.kvHeadCount, config.headDim)
        func project(_ w: Tensor, _ bias: Tensor?, _ module: String) -> Tensor {
            let y = pass.linear(hn, w, adapter: adapters[module])
            return bias.map { y + $0 } ?? y
        }
        if let shared = pass.shared {  // packed tokens in, packed tokens out
            let n = shared.packed
            let q = Tensor.rope(project(wq, bq, "q_proj").reshaped([1, n, h, d]), positions: pass.positions, table: rope).reshaped([n, h * d])
            let k = Tensor.rope(project(wk, bk, "k_proj").reshaped([1, n, kv, d]), positions: pass.positions, table: rope).reshaped([n, kv * d])
            let v = project(wv, bv, "v_proj")
            let a: Tensor
            if kv == h {  // each row's slots gathered per head, inside the attention
                a = Tensor.causalAttention(packed: q, k, v, heads: h, scale: 1 / Float(d).squareRoot(), batch: b, time: t,
                                           toSlots: shared.toSlots, queries: shared.queries)
            } else {  // grouped-query attention over the B×T slots, each token's output from its first row
                let slots = { (x: Tensor, heads: Int) in x.gatherRows(shared.toSlots).reshaped([b, t, heads, d]) }
                a = attend(slots(q, h), slots(k, kv), slots(v, kv), b: b, t: t, keyStart: nil, queries: shared.queries)
                    .gatherRows(shared.fromSlots)
            }
            return pass.linear(a, wo, adapter: adapters["o_proj"])
        }
        let q = Tensor.rope(project(wq, bq, "q_proj").reshaped([b, t, h, d]), positions: pass.positions, table: rope)
        let k = Tensor.rope(project(wk, bk, "k_proj").reshaped([b, t, kv, d]), positions: pass.positions, table: rope)
        let v = project(wv, bv, "v_proj")
        let a: Tensor
        if let cache = pass.cache {
            a = Tensor.cachedAttention(q, k, v, cache: cache.buffer(layer: layer), heads: h, scale: 1 / Float(d).squareRoot())
        } else {
            a = attend(q, k, v.reshaped([b, t, kv, d]), b: b, t: t, keyStart: pass.keyStart)
        }
        return pass.linear(a, wo, adapter: adapters["o_proj"])
    }

    /// Causal attention of q (B, T, H, D) over k, v (B, T, K, D) → (B·T, H·D); only the query rows
    /// `queries` (per row; nil: all) are computed, the others give 0.
    func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, b: Int, t: Int, keyStart: [Int]?, queries: [Range<Int>]? = nil) -> Tensor {
        let (h, kv, d) = (config.heads, config.kvHeadCount, config.headDim)
        if kv == h {  // heads read in place, (B, T, H, D)
            return Tensor.causalAttention(tokenMajor: q, k, v, scale: 1 / Float(d).squareRoot(), keyStart: keyStart, queries: queries)
                .reshaped([b * t, h * d])
        }
        func perHead(_ p: Tensor) -> Tensor {  // (B, T, K, D) → (B, H, T, D)
            // GQA: repeat each kv head H/K times, as HF's repeat_kv does
            let one = p.reshaped([b, t, kv, 1, d])
            return Tensor.concat(Array(repeating: one, count: h / kv), axis: 3).reshaped([b, t, h, d]).transposed(1, 2)
        }
        return Tensor.causalAttention(q.transposed(1, 2), perHead(k), perHead(v), scale: 1 / Float(d).squareRoot(), keyStart: keyStart,
                                      queries: queries).transposed(1, 2).reshaped([b * t, h * d])
    }
}
