// The DeepseekV3 decoder layer: multi-head latent attention (DeepSeek-V2 §2.1, as DeepSeek-V3 and
// transformers' DeepseekV3 use it), then a dense SwiGLU or mixture-of-experts feed-forward (MoE.swift).
// One forward serves training (recorded) and decoding, whose cache holds only the latent c (Rkv) and
// the shared RoPE key (R) per token (KVCache.swift).
//
//   q  = W_UQ·norm(W_DQ·h)  (or W_Q·h)     split per head into q_nope (Dn) and q_rope (R)
//   [c; k_r] = W_DKV·h,  c ← norm(c)        one latent c and one RoPE key k_r per token
//   [k_nope; v] = W_UKV·c per head          (kv_b_proj: Dn rows of W_UK then Dv rows of W_UV per head)
//   score = (q_nope·k_nope + rope(q_r)·rope(k_r)) / √(Dn + R)
//
// Cached decoding never re-expands the cache: q_nope·k_nope = (W_UKᵀ·q_nope)·c, so each query is
// folded into latent space once, attends over the latents directly, and W_UV is applied after.
//
// Dimensions: B rows (S sequences when decoding), T tokens per row (L new ones when decoding),
// N = B·T, C = d_model, H heads, Dn, R, Dv, Dk = Dn + R, Rq, Rkv as in DeepseekV3Config.swift.

import Autograd
import Foundation

// MARK: - Attention weights

/// One layer's MLA weights, in HF DeepseekV3 names and (out, in) layouts.
public final class MLAAttention {
    public let config: MLAConfig
    public let heads: Int
    let layer: Int
    /// RoPE over qk_rope_head_dim, shared by the layers.
    let rope: RoPETable
    /// W_Q (H·Dk, C) when q_lora_rank is 0.
    public let qProj: Tensor?
    /// W_DQ (Rq, C), its RMSNorm (Rq) and W_UQ (H·Dk, Rq) when q_lora_rank > 0.
    public let qA: Tensor?, qANorm: Tensor?, qB: Tensor?
    /// W_DKV and W_KR stacked (Rkv + R, C): kv_a_proj_with_mqa.
    public let kvA: Tensor
    /// RMSNorm of the latent (Rkv).
    public let kvANorm: Tensor
    /// W_UK and W_UV interleaved per head (H·(Dn + Dv), Rkv): kv_b_proj.
    public let kvB: Tensor
    /// Output projection (C, H·Dv).
    public let o: Tensor

    /// transformers builds q_a_layernorm and kv_a_layernorm with its default eps, not rms_norm_eps.
    static let latentNormEps: Float = 1e-6

    init(_ c: PolicyConfig, layer: Int, rope: RoPETable, make: (String, [Int]) throws -> Tensor) rethrows {
        let m = c.mla!, h = c.heads
        (config, heads, self.layer, self.rope) = (m, h, layer, rope)
        if m.qLoraRank > 0 {
            qProj = nil
            qA = try make("self_attn.q_a_proj.weight", [m.qLoraRank, c.dModel])
            qANorm = try make("self_attn.q_a_layernorm.weight", [m.qLoraRank])
            qB = try make("self_attn.q_b_proj.weight", [h * m.qkHeadDim, m.qLoraRank])
        } else {
            qProj = try make("self_attn.q_proj.weight", [h * m.qkHeadDim, c.dModel])
            (qA, qANorm, qB) = (nil, nil, nil)
        }
        kvA = try make("self_attn.kv_a_proj_with_mqa.weight", [m.kvLoraRank + m.qkRopeHeadDim, c.dModel])
        kvANorm = try make("self_attn.kv_a_layernorm.weight", [m.kvLoraRank])
        kvB = try make("self_attn.kv_b_proj.weight", [h * (m.qkNopeHeadDim + m.vHeadDim), m.kvLoraRank])
        o = try make("self_attn.o_proj.weight", [c.dModel, h * m.vHeadDim])
    }

    var named: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        if let qProj { out.append(("self_attn.q_proj.weight", qProj)) }
        if let qA, let qANorm, let qB {
            out += [("self_attn.q_a_proj.weight", qA), ("self_attn.q_a_layernorm.weight", qANorm), ("self_attn.q_b_proj.weight", qB)]
        }
        return out + [("self_attn.kv_a_proj_with_mqa.weight", kvA), ("self_attn.kv_a_layernorm.weight", kvANorm),
                      ("self_attn.kv_b_proj.weight", kvB), ("self_attn.o_proj.weight", o)]
    }

    /// Queries (N, H·Dk) of normed input hn (N, C).
    func queries(_ hn: Tensor, _ pass: ForwardPass) -> Tensor {
        if let qProj { return pass.linear(hn, qProj) }
        let qa = Tensor.rmsNorm(pass.linear(hn, qA!), weight: qANorm!, eps: Self.latentNormEps)
        return pass.linear(qa, qB!)
    }

    /// The normed latent c (N, Rkv) and the unrotated RoPE key (N, R).
    func latent(_ hn: Tensor, _ pass: ForwardPass) -> (c: Tensor, kRope: Tensor) {
        let rkv = config.kvLoraRank, r = config.qkRopeHeadDim
        let ckv = pass.linear(hn, kvA)  // (N, Rkv + R)
        let c = Tensor.rmsNorm(ckv.slice(axis: 1, 0..<rkv), weight: kvANorm, eps: Self.latentNormEps)
        return (c, ckv.slice(axis: 1, rkv..<(rkv + r)))
    }

    /// RoPE on x (B, T, H', R). With rope_interleave the pairs are (x0, x1), (x2, x3), …: they are
    /// de-interleaved first (evens, then odds), after which rotating i with i + R/2 is exactly
    /// transformers' `apply_rotary_pos_emb_interleave`, output layout included.
    func rotate(_ x: Tensor, positions: [Int32]) -> Tensor {
        var y = x
        if config.ropeInterleave {
            let (b, t, h, r) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            y = x.reshaped([b * t * h, r / 2, 2]).transposed(1, 2).reshaped([b, t, h, r])
        }
        return Tensor.rope(y, positions: positions, table: rope)
    }

    /// Attention on normed input hn (N, C) → (N, C): over the whole rows when recording; when
    /// decoding, this step's latents and RoPE keys join the cache and the queries attend over it.
    func callAsFunction(_ hn: Tensor, _ pass: ForwardPass) -> Tensor {
        let (b, t, h) = (pass.rows, pass.tokens, heads)
        let (dn, r, dv) = (config.qkNopeHeadDim, config.qkRopeHeadDim, config.vHeadDim)
        let dk = dn + r, n = b * t
        let q = queries(hn, pass).reshaped([n, h, dk])
        let qRope = rotate(q.slice(axis: 2, dn..<dk).reshaped([b, t, h, r]), positions: pass.positions)
        let (c, kr) = latent(hn, pass)
        let kRope = rotate(kr.reshaped([b, t, 1, r]), positions: pass.positions)
        let scale = 1 / Float(dk).squareRoot()
        if let cache = pass.cache {
            let lc = cache.latent!, rkv = config.kvLoraRank, cap = cache.capacity, t0 = cache.length
            let cc = lc.c[layer], kc = lc.kr[layer]
            for s in 0..<b {  // append: (S, L, ·) → slots t0..<t0+L of (S, cap, ·)
                (cc + (s * cap + t0) * rkv).update(from: c.data + s * t * rkv, count: t * rkv)
                (kc + (s * cap + t0) * r).update(from: kRope.data + s * t * r, count: t * r)
            }
            let out = Tensor(uninitialized: [n, h * dv])
            let qNope = q.slice(axis: 2, 0..<dn)  // (N, H, Dn)
            if pass.absorbMLA {
                attendAbsorbed(qNope: qNope, qRope: qRope, cache: cache, l: t, out: out, scale: scale)
            } else {
                attendExpanded(qNope: qNope, qRope: qRope, cache: cache, l: t, out: out, scale: scale)
            }
            return pass.linear(out, o)
        }
        let kv = Tensor.matmul(c, kvB, transposeB: true).reshaped([n, h, dn + dv])  // (N, H, Dn + Dv)
        let qAll = Tensor.concat([q.slice(axis: 2, 0..<dn), qRope.reshaped([n, h, r])], axis: 2)
        let kAll = Tensor.concat([kv.slice(axis: 2, 0..<dn), Tensor.concat(Array(repeating: kRope.reshaped([n, 1, r]), count: h), axis: 1)], axis: 2)
        let a = Tensor.causalAttention(tokenMajor: qAll.reshaped([b, t, h, dk]), kAll.reshaped([b, t, h, dk]),
                                       kv.slice(axis: 2, dn..<(dn + dv)).reshaped([b, t, h, dv]), scale: scale, keyStart: pass.keyStart)
        return pass.linear(a.reshaped([n, h * dv]), o)
    }
}

// MARK: - Block

/// A DeepseekV3 decoder layer: RMSNorm → MLA → residual, RMSNorm → dense SwiGLU or MoE → residual.
public final class DeepseekV3Block: DecoderLayer {
    public let attnNorm: Tensor   // (C)
    public let attention: MLAAttention
    public let mlpNorm: Tensor    // (C)
    /// Dense SwiGLU (F, C), (F, C), (C, F) in the first first_k_dense layers (or without MoE).
    public let wGate: Tensor?, wUp: Tensor?, wDown: Tensor?
    /// The MoE feed-forward in the other layers.
    public let moe: MoELayer?
    let rmsEps: Float

    public static func rope(_ c: PolicyConfig) -> RoPETable {
        RoPETable(headDim: c.mla!.qkRopeHeadDim, base: c.ropeTheta, maxPositions: c.maxContext)
    }

    public init(_ c: PolicyConfig, layer: Int, rope: RoPETable, make: (String, [Int]) throws -> Tensor) rethrows {
        rmsEps = c.rmsEps
        attnNorm = try make("input_layernorm.weight", [c.dModel])
        attention = try MLAAttention(c, layer: layer, rope: rope, make: make)
        mlpNorm = try make("post_attention_layernorm.weight", [c.dModel])
        if let e = c.moe, c.isMoELayer(layer) {
            moe = try MoELayer(e, dModel: c.dModel, make: make)
            (wGate, wUp, wDown) = (nil, nil, nil)
        } else {
            moe = nil
            wGate = try make("mlp.gate_proj.weight", [c.ffDim, c.dModel])
            wUp = try make("mlp.up_proj.weight", [c.ffDim, c.dModel])
            wDown = try make("mlp.down_proj.weight", [c.dModel, c.ffDim])
        }
    }

    public var named: [(String, Tensor)] {
        var out = [("input_layernorm.weight", attnNorm)] + attention.named + [("post_attention_layernorm.weight", mlpNorm)]
        if let moe { out += moe.named }
        if let wGate, let wUp, let wDown {
            out += [("mlp.gate_proj.weight", wGate), ("mlp.up_proj.weight", wUp), ("mlp.down_proj.weight", wDown)]
        }
        return out
    }

    public func callAsFunction(_ x: Tensor, _ pass: ForwardPass) -> Tensor {
        let h = x + attention(Tensor.rmsNorm(x, weight: attnNorm, eps: rmsEps), pass)
        let hn = Tensor.rmsNorm(h, weight: mlpNorm, eps: rmsEps)
        if let moe { return h + moe.forward(hn) }
        return h + pass.linear(Tensor.swiglu(gate: pass.linear(hn, wGate!), up: pass.linear(hn, wUp!)), wDown!)
    }
}

// MARK: - Mixture of experts in the policy

extension Policy {
    /// Every MoE layer of the policy, in layer order (empty without MoE).
    public var moeLayers: [MoELayer] { layers.compactMap(\.moe) }

    /// The sum of the MoE layers' auxiliary balance losses from the last recorded forward, to add to
    /// the training loss (nil when no layer uses balance: aux_loss).
    public var auxiliaryLoss: Tensor? {
        let losses = moeLayers.compactMap(\.auxLoss)
        guard var total = losses.first else { return nil }
        for l in losses.dropFirst() { total = total + l }
        return total
    }

    /// After an optimizer step: moves each MoE layer's selection bias toward equal load (balance:
    /// bias_update) and forgets the step's aux losses and counts.
    public func afterOptimizerStep() {
        for m in moeLayers {
            m.updateBias()
            m.clearAuxLoss()
        }
    }

    /// Per-step routing metrics: `moe/load_max` and `moe/load_min` (fraction of routed slots the
    /// busiest and idlest expert took in any MoE layer; 1/E is balanced) and `active_params`.
    public var routingMetrics: [String: Double] {
        let loads = moeLayers.flatMap(\.lastLoad)
        guard !loads.isEmpty else { return [:] }
        return ["moe/load_max": loads.max()!, "moe/load_min": loads.min()!,
                "active_params": Double(config.activeParameterCount)]
    }
}

// MARK: - Cached attention in latent space

extension MLAAttention {
    /// Absorbed MLA decoding: q_lat = W_UKᵀ·q_nope per head (one sgemm per head over all S·L
    /// queries), scores q_lat·c_j + q_r·k_r,j against the cached latents, o_lat = Σ p_j c_j, and
    /// out = W_UV·o_lat (one sgemm per head).
    func attendAbsorbed(qNope: Tensor, qRope: Tensor, cache: KVCache, l: Int, out: Tensor, scale: Float) {
        let m = config, s = cache.seqs, h = heads, lc = cache.latent!
        let (dn, r, dv, rkv) = (m.qkNopeHeadDim, m.qkRopeHeadDim, m.vHeadDim, m.kvLoraRank)
        let t0 = cache.length, cap = cache.capacity, n = s * l
        let qLat = Tensor(uninitialized: [n, h, rkv]), oLat = Tensor(uninitialized: [n, h, rkv])
        for hh in 0..<h {  // q_lat[:, h] = q_nope[:, h] · W_UK,h  with W_UK,h = kv_b rows h(Dn+Dv) ..< h(Dn+Dv)+Dn
            BLAS.sgemm(transA: false, transB: false, m: n, n: rkv, k: dn, a: qNope.data + hh * dn, lda: h * dn,
                       b: kvB.data + hh * (dn + dv) * rkv, ldb: rkv, beta: 0, c: qLat.data + hh * rkv, ldc: h * rkv, precision: .f32)
        }
        let cc = lc.c[layer], kc = lc.kr[layer], ql = qLat.data, qr = qRope.data, ol = oLat.data
        Parallel.forRanges(s * h, cost: l * (t0 + l) * (2 * rkv + r)) { range in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: t0 + l)
            defer { p.deallocate() }
            for sh in range {
                let q = sh / h, hh = sh % h, start = cache.keyStart[q]
                for i in 0..<l {
                    let row = (q * l + i) * h + hh
                    let qi = ql + row * rkv, ri = qr + row * r, oi = ol + row * rkv
                    oi.update(repeating: 0, count: rkv)
                    let end = t0 + i
                    if start > end { continue }
                    Kernels.softmaxOver(start, end, p, score: { j in
                        (Kernels.dot(qi, cc + (q * cap + j) * rkv, rkv) + Kernels.dot(ri, kc + (q * cap + j) * r, r)) * scale
                    }, accumulate: { j, pj in Kernels.axpy(pj, cc + (q * cap + j) * rkv, oi, rkv) })
                }
            }
        }
        for hh in 0..<h {  // out[:, h] = o_lat[:, h] · W_UV,hᵀ
            BLAS.sgemm(transA: false, transB: true, m: n, n: dv, k: rkv, a: oLat.data + hh * rkv, lda: h * rkv,
                       b: kvB.data + (hh * (dn + dv) + dn) * rkv, ldb: rkv, beta: 0, c: out.data + hh * dv, ldc: h * dv, precision: .f32)
        }
    }

    /// Naive MLA decoding, for checking the absorbed one: re-expands every cached latent into
    /// per-head keys and values with kv_b_proj, then attends as MHA does.
    func attendExpanded(qNope: Tensor, qRope: Tensor, cache: KVCache, l: Int, out: Tensor, scale: Float) {
        let m = config, s = cache.seqs, h = heads, lc = cache.latent!
        let (dn, r, dv, rkv) = (m.qkNopeHeadDim, m.qkRopeHeadDim, m.vHeadDim, m.kvLoraRank)
        let t0 = cache.length, cap = cache.capacity, tot = t0 + l
        let kv = Tensor(uninitialized: [s * tot, h * (dn + dv)])  // (S·T, H·(Dn+Dv))
        for q in 0..<s {
            BLAS.sgemm(transA: false, transB: true, m: tot, n: h * (dn + dv), k: rkv, a: lc.c[layer] + q * cap * rkv, lda: rkv,
                       b: kvB.data, ldb: rkv, beta: 0, c: kv.data + q * tot * h * (dn + dv), ldc: h * (dn + dv), precision: .f32)
        }
        let kc = lc.kr[layer], qn = qNope.data, qr = qRope.data, od = out.data, kd = kv.data, w = dn + dv
        Parallel.forRanges(s * h, cost: l * tot * (dn + r + dv)) { range in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: tot)
            defer { p.deallocate() }
            for sh in range {
                let q = sh / h, hh = sh % h, start = cache.keyStart[q]
                for i in 0..<l {
                    let row = (q * l + i) * h + hh
                    let oi = od + row * dv
                    oi.update(repeating: 0, count: dv)
                    let end = t0 + i
                    if start > end { continue }
                    Kernels.softmaxOver(start, end, p, score: { j in
                        let kj = kd + ((q * tot + j) * h + hh) * w
                        return (Kernels.dot(qn + row * dn, kj, dn) + Kernels.dot(qr + row * r, kc + (q * cap + j) * r, r)) * scale
                    }, accumulate: { j, pj in Kernels.axpy(pj, kd + ((q * tot + j) * h + hh) * w + dn, oi, dv) })
                }
            }
        }
    }
}
