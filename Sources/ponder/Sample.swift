import ArgumentParser
import Autograd
import Foundation
import Model
import Training

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print completions of a prompt from a checkpoint folder.")

    @Argument(help: "Checkpoint folder (model.safetensors, config.json, tokenizer.json).") var checkpoint: String
    @Option(help: "Problem text; the prompt is BOS + text + newline (or the chat template with --prompt-format).") var prompt: String
    @Option(help: "Prompt layout: plain, chat, chatml or llama3 (as data.prompt_format).") var promptFormat = "plain"
    @Flag(help: "Always take the most likely token.") var greedy = false
    @Option(help: "Sampling temperature.") var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: off).") var topK = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1: off).") var topP: Float = 1
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p × the top probability (0: off).") var minP: Float = 0
    @Option(name: .customLong("max-new"), help: "Most new tokens per completion.") var maxNew = 128
    @Option(name: .short, help: "Number of completions.") var n = 1
    @Option(help: "Seed of the sampling stream.") var seed: UInt64 = 0
    @Option(help: "Matmul precision: f32, or bf16 (mixed precision on AMX or avx512_bf16). Default: the precision the checkpoint's run sampled with, where this CPU has it, else f32.")
    var precision: String?
    @Flag(help: "Print one JSON object per completion, with token ids and logprobs.") var json = false

    func validate() throws {
        try checkFlag(n, 1...TrainConfig.Limits.samples, "-n")
        try checkFlag(maxNew, 1...TrainConfig.Limits.context, "--max-new")
        try checkFlag(topK, 0...TrainConfig.Limits.vocabulary, "--top-k")
        guard minP >= 0 && minP < 1 else { throw ValidationError("--min-p must be in [0, 1)") }
        guard temperature > 0 || greedy else { throw ValidationError("--temperature must be > 0 (or use --greedy)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard PromptFormat(rawValue: promptFormat) != nil else {
            throw ValidationError("--prompt-format must be one of \(PromptFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if let precision { try setMatmulPrecision(precision) }  // a wrong flag fails before any loading
        let (policy, base, metadata) = try Checkpoint.load(from: URL(fileURLWithPath: checkpoint))
        if precision == nil { setCheckpointPrecision(metadata: metadata, path: checkpoint) }
        let tokenizer = try PromptFormat(rawValue: promptFormat)!.apply(to: base)
        let ids = try tokenizer.encodePrompt(prompt).map(Int32.init)
        guard ids.count < policy.config.maxContext else {
            throw CommandFailure("the prompt is \(ids.count) tokens; the checkpoint's context holds \(policy.config.maxContext), so shorten it")
        }
        let opts = SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                   maxNewTokens: min(maxNew, policy.config.maxContext - ids.count), greedy: greedy)
        guard opts.maxNewTokens > 0 else {
            throw ValidationError("the prompt (\(ids.count) tokens) fills the model's context (\(policy.config.maxContext))")
        }
        var rng = RNG(seed: seed, stream: "sampling")
        let out = Sampler.sample(policy: policy, prompts: [ids], group: n, options: opts,
                                 stopTokens: tokenizer.stopTokens, padToken: Int32(tokenizer.pad), rng: &rng)
        for (i, c) in out.enumerated() {
            let text = tokenizer.decode(c.tokens.map(Int.init), skipSpecial: true)
            if json {
                let obj: [String: Any] = ["index": i, "prompt_ids": ids.map(Int.init), "new_ids": c.tokens.map(Int.init),
                                          "text": text, "logprobs": c.logprobs.map { $0.isFinite ? Double($0) as Any : NSNull() }, "truncated": c.truncated]
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                if n > 1 { print("--- completion \(i + 1)\(c.truncated ? " (truncated)" : "")") }
                print(text)
            }
        }
    }
}
