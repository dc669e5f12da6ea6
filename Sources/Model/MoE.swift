// DeepSeek-V3's mixture-of-experts feed-forward (Liu et al. 2024, §2.1.2), read top to bottom:
// route (affinities, top-k selection with the balancing bias, gating weights), then the experts,
// each run on its own tokens only, then the weighted combine and the shared experts.
//
// N tokens, C = d_model, E routed experts, k experts per token, Fe expert hidden size,
// M = N·k routed rows.

import Autograd
import Foundation

/// The routing decision for N tokens.
public struct Routing {
    /// Experts chosen per token, (N, k) row-major; within a token, by descending selection score.
    public var experts: [Int32]
    /// Gating weights of the chosen experts (N, k), on the tape: gradients reach the router
    /// through them (the selection itself is held fixed).
    public var weights: Tensor
    /// Affinities s (N, E), on the tape.
    public var scores: Tensor
}

/// One layer's MoE weights (HF DeepseekV3 names) and its load statistics.
public final class MoELayer {
    public let config: MoEConfig
    /// Router Wg (E, C): mlp.gate.weight.
    public let router: Tensor
    /// Selection bias b (E): mlp.gate.e_score_correction_bias. Not trained by gradients.
    public let bias: Tensor
    /// Per-expert SwiGLU weights: gate, up (Fe, C) and down (C, Fe).
    public let gate: [Tensor], up: [Tensor], down: [Tensor]
    /// Shared experts' SwiGLU, hidden size shared × Fe (empty tensors when there are none).
    public let sharedGate: Tensor, sharedUp: Tensor, sharedDown: Tensor
    /// Tokens each expert took in recorded forwards (E), summed since the last bias update.
    public private(set) var tokenCounts: [Int]
    /// Fraction of the routed slots each expert took in the last forward (E; sums to 1).
    public private(set) var lastLoad: [Double]
    /// The auxiliary balance loss of the last forward (nil unless balance is aux_loss).
    public private(set) var auxLoss: Tensor?
    /// The experts chosen in the last forward, (N, k) row-major.
    public private(set) var lastExperts: [Int32] = []

    init(_ c: MoEConfig, dModel: Int, make: (String, [Int]) throws -> Tensor) rethrows {
        config = c
        let fe = c.expertFfDim, fs = c.expertFfDim * c.sharedExperts, d = dModel
        router = try make("mlp.gate.weight", [c.experts, d])
        bias = try make("mlp.gate.e_score_correction_bias", [c.experts])
        bias.requiresGrad = false
        var g: [Tensor] = [], u: [Tensor] = [], dn: [Tensor] = []
        for e in 0..<c.experts {
            g.append(try make("mlp.experts.\(e).gate_proj.weight", [fe, d]))
            u.append(try make("mlp.experts.\(e).up_proj.weight", [fe, d]))
            dn.append(try make("mlp.experts.\(e).down_proj.weight", [d, fe]))
        }
        (gate, up, down) = (g, u, dn)
        sharedGate = try make("mlp.shared_experts.gate_proj.weight", [fs, d])
        sharedUp = try make("mlp.shared_experts.up_proj.weight", [fs, d])
        sharedDown = try make("mlp.shared_experts.down_proj.weight", [d, fs])
        tokenCounts = [Int](repeating: 0, count: c.experts)
        lastLoad = [Double](repeating: 0, count: c.experts)
    }

    /// (HF name suffix, tensor) pairs, in model order; `trainable` is false for the bias.
    var named: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("mlp.gate.weight", router), ("mlp.gate.e_score_correction_bias", bias)]
        for e in 0..<config.experts {
            out += [("mlp.experts.\(e).gate_proj.weight", gate[e]), ("mlp.experts.\(e).up_proj.weight", up[e]),
                    ("mlp.experts.\(e).down_proj.weight", down[e])]
        }
        out += [("mlp.shared_experts.gate_proj.weight", sharedGate), ("mlp.shared_experts.up_proj.weight", sharedUp),
                ("mlp.shared_experts.down_proj.weight", sharedDown)]
        return out
    }

    // MARK: Route

    /// Affinities s = f(h·Wgᵀ), top-k of s + b per token (b for selection only: V3 eq. 16), and the
    /// gating weights g = s_selected (/ Σ s_selected when norm_topk_prob) · routed_scaling_factor.
    /// Ties in s + b go to the lower expert index.
    public func route(_ h: Tensor) -> Routing {
        let n = h.shape[0], e = config.experts, k = config.topK
        let logits = Tensor.matmul(h, router, transposeB: true, precision: .f32)  // (N, E): routing stays float32
        let scores = config.scoring == .sigmoid ? logits.sigmoid() : Tensor.softmax(logits)
        var experts = [Int32](repeating: 0, count: n * k), flat = [Int32](repeating: 0, count: n * k)
        let ps = scores.data, pb = bias.data
        var choice = [Float](repeating: 0, count: e)
        for t in 0..<n {
            for j in 0..<e { choice[j] = ps[t * e + j] + pb[j] }
            for slot in 0..<k {  // k passes of argmax: k is small
                var best = -1
                for j in 0..<e where choice[j] != -.infinity && (best < 0 || choice[j] > choice[best]) { best = j }
                choice[best] = -.infinity
                experts[t * k + slot] = Int32(best)
                flat[t * k + slot] = Int32(t * e + best)
            }
        }
        var w = Tensor.gatherRows(scores.reshaped([n * e, 1]), flat).reshaped([n, k])  // (N, k)
        if config.normTopkProb { w = w / (w.sum(axis: 1, keepDim: true) + 1e-20) }
        if config.routedScalingFactor != 1 { w = w * config.routedScalingFactor }
        return Routing(experts: experts, weights: w, scores: scores)
    }

    // MARK: Forward

    /// The MoE feed-forward on normed input h (N, C) → (N, C). Tokens are gathered per expert and
    /// each expert runs its SwiGLU (three sgemms) on its own tokens only.
    public func forward(_ h: Tensor) -> Tensor {
        let n = h.shape[0], k = config.topK
        let r = route(h)
        lastExperts = r.experts
        // Group the routed slots by expert, in token order within an expert (deterministic).
        var tokens = [[Int32]](repeating: [], count: config.experts), slots = tokens
        for t in 0..<n {
            for j in 0..<k {
                let x = Int(r.experts[t * k + j])
                tokens[x].append(Int32(t))
                slots[x].append(Int32(t * k + j))
            }
        }
        var outs: [Tensor] = [], rows: [Int32] = [], order: [Int32] = []
        for x in 0..<config.experts where !tokens[x].isEmpty {
            let hx = Tensor.gatherRows(h, tokens[x])  // (n_x, C)
            let a = Tensor.swiglu(gate: Tensor.matmul(hx, gate[x], transposeB: true), up: Tensor.matmul(hx, up[x], transposeB: true))
            outs.append(Tensor.matmul(a, down[x], transposeB: true))  // (n_x, C)
            rows += tokens[x]
            order += slots[x]
        }
        let y = Tensor.concat(outs, axis: 0)  // (M, C)
        let w = Tensor.gatherRows(r.weights.reshaped([n * k, 1]), order).reshaped([n * k])
        var out = Tensor.combineRows(y, weights: w, rows: rows, count: n)
        if config.sharedExperts > 0 {
            let a = Tensor.swiglu(gate: Tensor.matmul(h, sharedGate, transposeB: true), up: Tensor.matmul(h, sharedUp, transposeB: true))
            out = out + Tensor.matmul(a, sharedDown, transposeB: true)
        }
        recordLoad(tokens.map(\.count), tokens: n, scores: r.scores)
        return out
    }

    /// Load statistics; the aux loss α·E·Σ_e f_e·P_e with f_e = (E/kN)·count_e (a constant) and
    /// P_e the mean over tokens of s_e/Σ s (V3 eq. 17–20, taken over the whole batch).
    private func recordLoad(_ counts: [Int], tokens n: Int, scores: Tensor) {
        let slots = Double(n * config.topK)
        lastLoad = counts.map { Double($0) / max(1, slots) }
        if Autograd.isRecording { for (e, c) in counts.enumerated() { tokenCounts[e] += c } }
        auxLoss = nil
        if config.balance == .auxLoss && config.auxLossCoef > 0 {
            let e = Float(config.experts)
            let f = Tensor(shape: [config.experts], counts.map { Float($0) * e / Float(max(1, slots)) })
            let p = (scores / scores.sum(axis: 1, keepDim: true)).mean(axis: 0)  // (E)
            auxLoss = (p * f).sum() * config.auxLossCoef
        }
    }

    /// V3's auxiliary-loss-free balancing: b_e += γ·sign(mean load − load_e) over the tokens routed
    /// since the last update, then the counts restart. Call after each optimizer step.
    func updateBias() {
        let total = tokenCounts.reduce(0, +)
        if total > 0 && config.balance == .biasUpdate {
            let mean = Double(total) / Double(config.experts), rate = config.biasUpdateRate
            for e in 0..<config.experts {
                let d = mean - Double(tokenCounts[e])
                bias.data[e] += d > 0 ? rate : d < 0 ? -rate : 0
            }
        }
        tokenCounts = [Int](repeating: 0, count: config.experts)
    }

    /// Forgets the aux loss (after it was added to a loss) and the counts.
    func clearAuxLoss() { auxLoss = nil }
}
