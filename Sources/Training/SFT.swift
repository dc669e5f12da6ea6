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

    /// Completion tokens of an example: the targets its loss counts.
    public static func targetCount(_ ex: SFTExample) -> Int { ex.ids.count - ex.promptLength }

    /// Prompt + teacher completion + EOS, tokenised.
    public static func example(_ p: Problem, tokenizer: any Tokenizer) throws -> SFTExample {
        let prompt = try tokenizer.encodePrompt(p.prompt)
        let completion = try tokenizer.encode(p.teacherCompletion) + [tokenizer.eos]
        return SFTExample(ids: (prompt + completion).map(Int32.init), promptLength: prompt.count)
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
        let logits = policy.forward(ids: ids, batch: b, time: t)
        let logp = Tensor.logSoftmaxGather(logits, targets: targets)
        let loss = logp.sum() * (-1 / Float(max(1, normalizer ?? tokens)))
        return (policy.auxiliaryLoss.map { loss + $0 } ?? loss, tokens)  // MoE balance loss, when configured
    }
}
