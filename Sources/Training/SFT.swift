// Cold-start SFT (DeepSeek-R1 §2.3.1): a fixed, limited set of teacher traces in the R1 template,
// the loss masked to the completion.

import Autograd
import Foundation
import Model
import Tasks

/// One tokenised training example: prompt then completion, with where the completion starts.
public struct SFTExample: Sendable {
    public var ids: [Int32]
    public var promptLength: Int
}

public enum SFT {
    /// The cold-start trace set: `count` distinct training problems, drawn round-robin over
    /// `families` and uniformly over `levels` (each family's training levels when empty), never
    /// from a held-out set. Deterministic in `seed`.
    public static func traces(families: [String], levels: [Int], count: Int, seed: UInt64, heldOut: HeldOutSet) -> [Problem] {
        var out: [Problem] = []
        var seen = Set<String>()
        var index = 0
        var rng = SplitMix64(seed: seed ^ 0x5f7_cafe)
        let fams = families.compactMap(TaskRegistry.family(named:))
        var attempts = 0
        while out.count < count && attempts < count * 100 {
            attempts += 1
            let family = fams[out.count % fams.count]
            let choices = levels.isEmpty ? Array(family.trainingLevels) : levels.filter { family.levels.contains($0) }
            guard !choices.isEmpty else { break }
            let level = rng.pick(choices)
            let p = family.problem(seed: seed, stream: "sft", level: level, index: index, id: "sft-\(family.name)-L\(level)-\(index)")
            index += 1
            if heldOut.contains(p) || !seen.insert(p.canonical).inserted { continue }
            out.append(p)
        }
        return out
    }

    /// The validation split of the cold start: `perLevel` problems for each family and each level the
    /// traces are drawn from (`levels`, or every training level), from their own stream, never one of
    /// `exclude` (the traces' canonical forms) nor held out. Deterministic in `seed`.
    public static func validation(families: [String], levels: [Int], perLevel: Int, seed: UInt64, heldOut: HeldOutSet,
                                  exclude: Set<String>) -> [Problem] {
        var out: [Problem] = []
        for family in families.compactMap(TaskRegistry.family(named:)) {
            let chosen = levels.isEmpty ? Array(family.trainingLevels) : Array(Set(levels.filter { family.levels.contains($0) })).sorted()
            for level in chosen {
                var seen = exclude, index = 0, got = 0
                while got < perLevel && index < perLevel * 100 {
                    let p = family.problem(seed: seed, stream: "sft-validation", level: level, index: index,
                                           id: "sft-val-\(family.name)-L\(level)-\(index)")
                    index += 1
                    if heldOut.contains(p) || !seen.insert(p.canonical).inserted { continue }
                    out.append(p)
                    got += 1
                }
            }
        }
        return out
    }

    /// The plateau score of a validation report: greedy pass@1 averaged over its (family, level)
    /// cells, so a level with few traces counts as much as a common one.
    public static func validationScore(_ report: EvalReport) -> Double {
        let cells = report.families.flatMap { $0.levels.map(\.stats.passAt1) }
        return cells.isEmpty ? 0 : cells.reduce(0, +) / Double(cells.count)
    }

    /// Completion tokens of an example: the targets its loss counts.
    public static func targetCount(_ ex: SFTExample) -> Int { ex.ids.count - ex.promptLength }

    /// Prompt + teacher completion + EOS, tokenised.
    public static func example(_ p: Problem, tokenizer: any Tokenizer) throws -> SFTExample {
        let prompt = try tokenizer.encodePrompt(p.prompt)
        let completion = try tokenizer.encode(p.teacherCompletion) + [tokenizer.eos]
        return SFTExample(ids: (prompt + completion).map(Int32.init), promptLength: prompt.count)
    }

    /// Splits a batch into micro-batches of similar length, to cut padding: rows are padded to
    /// their micro-batch's longest, not the batch's. Returns row indices in groups, each group
    /// ascending by length, chosen (dynamic programming over the sorted lengths) to minimise the
    /// padded tokens plus `overhead` token-equivalents per extra micro-batch. A forward and
    /// backward pass has a fixed cost (at d=128, 4 layers, about 100 tokens' worth in `ponder bench
    /// train`), and a small micro-batch runs its products less efficiently, hence the default 256.
    /// The quickstart's traces are ~54 tokens (2-digit) or ~73 (3-digit), so its batches split where
    /// the few long traces begin.
    public static func lengthGroups(_ lengths: [Int], overhead: Int = 256) -> [[Int]] {
        let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        let n = order.count
        guard n > 1 else { return n == 0 ? [] : [order] }
        // best[j]: least cost of rows order[0..<j]; from[j]: where its last group starts.
        var best = [Int](repeating: 0, count: n + 1), from = [Int](repeating: 0, count: n + 1)
        for j in 1...n {
            best[j] = Int.max
            for i in 0..<j {
                let cost = best[i] + (j - i) * lengths[order[j - 1]] + (i > 0 ? overhead : 0)
                if cost < best[j] { (best[j], from[j]) = (cost, i) }
            }
        }
        var groups: [[Int]] = [], j = n
        while j > 0 {
            groups.append(Array(order[from[j]..<j]))
            j = from[j]
        }
        return groups.reversed()
    }

    /// Accumulates the gradient of the masked loss of `batch` (normalised by `normalizer`
    /// completion tokens) over length micro-batches; returns the loss. A policy with MoE layers
    /// takes the batch whole, as its balance loss and routing metrics are per forward.
    /// `weight` scales the loss and its gradient (GRPO's sft_coef); the returned loss is unscaled.
    public static func accumulateGradients(policy: Policy, batch: [SFTExample], pad: Int32, normalizer: Int, overhead: Int = 256,
                                           weight: Float = 1) -> Double {
        let groups = policy.moeLayers.isEmpty ? lengthGroups(batch.map(\.ids.count), overhead: overhead) : [Array(batch.indices)]
        var total = 0.0
        for g in groups {
            let (loss, _) = loss(policy: policy, batch: g.map { batch[$0] }, pad: pad, normalizer: normalizer)
            (weight == 1 ? loss : loss * weight).backward()
            total += Double(loss.item)
        }
        return total
    }

    /// The masked next-token loss of a batch: mean negative logprob over completion tokens.
    /// Rows are right-padded with `pad`; returns the loss and the number of completion tokens.
    /// `normalizer` replaces this batch's token count as the divisor when the batch is one rank's
    /// shard of a data-parallel batch (the whole batch's completion tokens).
    public static func loss(policy: Policy, batch: [SFTExample], pad: Int32, normalizer: Int? = nil) -> (Tensor, Int) {
        let t = batch.map(\.ids.count).max()!, b = batch.count
        var ids = [Int32](repeating: pad, count: b * t), targets = [Int32](repeating: -1, count: b * t)
        var tokens = 0
        for (r, ex) in batch.enumerated() {
            for (i, id) in ex.ids.enumerated() { ids[r * t + i] = id }
            // position i predicts token i+1; only completion tokens are targets
            for i in (ex.promptLength - 1)..<(ex.ids.count - 1) {
                targets[r * t + i] = ex.ids[i + 1]
                tokens += 1
            }
        }
        // the LM head on the completion positions alone, in chunks of rows (no [rows × vocabulary] logits)
        // each distinct prefix through the layers once: no pad slot, and a prompt's opening shared between rows
        let layout = SharedPrefixes(ids: ids, batch: b, time: t, lengths: batch.map(\.ids.count))
        let logp = Tensor.headLogprobs(policy.hidden(prefixes: layout), head: policy.lmHead, targets: targets).logp
        let loss = logp.sum() * (-1 / Float(max(1, normalizer ?? tokens)))
        return (policy.auxiliaryLoss.map { loss + $0 } ?? loss, tokens)  // MoE balance loss, when configured
    }
}

/// SFT's stopping rule (early stopping with patience, as in Keras' EarlyStopping with
/// restore_best_weights): a check's score is the mean of the last `smoothing` raw scores, so one lucky
/// check on a small validation set does not end SFT; a check is better when that score is higher, or
/// equal at a lower loss; the plateau is reached when `patience` steps have passed since the best check.
public struct PlateauTracker: Codable, Equatable, Sendable {
    /// The best check so far: its step, smoothed score and loss.
    public var bestStep: Int?
    public var bestScore: Double?
    public var bestLoss: Double?
    /// The latest raw scores, oldest first.
    public var recent: [Double] = []

    /// What a check concluded.
    public enum Outcome: Equatable, Sendable {
        /// The best check so far: keep these weights.
        case improved
        /// Not better, and still within the patience.
        case waiting
        /// Not better, and `patience` steps have passed since the best one.
        case plateau
    }

    public init() {}

    /// Records a check at `step` and says whether it improved, or whether the plateau is reached.
    public mutating func check(step: Int, score raw: Double, loss: Double, patience: Int, smoothing: Int = 1) -> Outcome {
        recent.append(raw)
        if recent.count > max(1, smoothing) { recent.removeFirst(recent.count - max(1, smoothing)) }
        let score = recent.reduce(0, +) / Double(recent.count)
        let better: Bool
        if let bestScore, let bestLoss {
            better = score > bestScore + 1e-12 || (abs(score - bestScore) <= 1e-12 && loss < bestLoss)
        } else {
            better = true
        }
        if better {
            (bestStep, bestScore, bestLoss) = (step, score, loss)
            return .improved
        }
        return step - (bestStep ?? step) >= patience ? .plateau : .waiting
    }
}
