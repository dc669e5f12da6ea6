import ArgumentParser
import Autograd
import Foundation
import Model
import Tasks
import Training

/// The flags of ../shared/bench/torch_peer.py, with its defaults.
struct ModelShape: ParsableArguments {
    @Option(help: "Model width.") var d = 256
    @Option(help: "Decoder blocks.") var layers = 4
    @Option(help: "Attention heads.") var heads = 4
    @Option(help: "SwiGLU hidden size.") var ff = 768
    @Option(help: "Vocabulary size.") var vocab = 64
    @Option(help: "Context length of the model.") var ctx = 256
    @Option(help: "Training batch (sequences).") var batch = 16
    @Option(help: "Training sequence length.") var seq = 256
    @Option(name: .customLong("gen-batch"), help: "Sequences generated together.") var genBatch = 64
    @Option(help: "Prompt tokens per generated sequence.") var prompt = 32
    @Option(help: "New tokens per generated sequence.") var new = 128
    @Option(help: "Timed steps.") var steps = 5

    func config() throws -> PolicyConfig {
        let c = PolicyConfig(vocabSize: vocab, dModel: d, layers: layers, heads: heads, ffDim: ff,
                             maxContext: max(ctx, seq, prompt + new))
        try c.validate()
        return c
    }

    /// A freshly initialised policy of this shape (seed 0) and the "data" stream for its inputs.
    func policy() throws -> (Policy, RNG) {
        var rng = RNG(seed: 0, stream: "init")
        return (Policy(config: try config(), rng: &rng), RNG(seed: 0, stream: "data"))
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training step (forward, backward, AdamW) tokens/s, as torch_peer.py --what train.")
    @OptionGroup var shape: ModelShape
    @OptionGroup var output: BenchOutput

    func run() throws {
        var (policy, data) = try shape.policy()
        let cfg = policy.config
        let opt = AdamW(policy.parameters, lr: 1e-4)
        let (b, t) = (shape.batch, shape.seq)
        let ids = (0..<(b * t)).map { _ in Int32(data.int(below: cfg.vocabSize)) }
        var targets = [Int32](repeating: -1, count: b * t)  // next token; the last position has none
        for r in 0..<b { for i in 0..<(t - 1) { targets[r * t + i] = ids[r * t + i + 1] } }
        var loss: Float = 0
        let s = medianSeconds(repeats: shape.steps, body: {
            let logits = policy.forward(ids: ids, batch: b, time: t)
            let l = Tensor.logSoftmaxGather(logits, targets: targets).sum() * (-1 / Float(b * (t - 1)))
            loss = l.item
            l.backward()
            opt.update()
            opt.zeroGrad()
        })
        let tokens = b * t
        let flops = 6.0 * Double(cfg.parameterCount) * Double(tokens) + 12.0 * Double(cfg.layers * cfg.dModel * t * tokens)
        output.emit(
            ["bench": "train", "params": cfg.parameterCount, "d": cfg.dModel, "layers": cfg.layers, "tokens": tokens,
             "step_s": s, "tokens_per_s": Double(tokens) / s, "gflops": flops / s / 1e9, "loss": Double(loss),
             "threads": Parallel.threads, "kernel": BLAS.info.kernel],
            text: String(format: "train step d=%d L=%d, %d×%d tokens: %.3f s, %.0f tokens/s, %.1f GFLOP/s (loss %.3f)",
                         cfg.dModel, cfg.layers, b, t, s, Double(tokens) / s, flops / s / 1e9, loss))
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sampling tokens/s with the KV cache, as torch_peer.py --what generate.")
    @OptionGroup var shape: ModelShape
    @OptionGroup var output: BenchOutput

    func run() throws {
        var (policy, data) = try shape.policy()
        let cfg = policy.config
        let prompts = (0..<shape.genBatch).map { _ in (0..<shape.prompt).map { _ in Int32(data.int(below: cfg.vocabSize)) } }
        let opts = SamplingOptions(temperature: 1, maxNewTokens: shape.new, minNewTokens: shape.new)
        var sampling = RNG(seed: 0, stream: "sampling")
        var produced = 0
        let s = medianSeconds(repeats: max(1, shape.steps / 2), body: {
            let out = Sampler.sample(policy: policy, prompts: prompts, group: 1, options: opts,
                                     stopTokens: [], padToken: 0, rng: &sampling)
            produced = out.map(\.tokens.count).reduce(0, +)
        })
        output.emit(
            ["bench": "generate", "d": cfg.dModel, "layers": cfg.layers, "batch": shape.genBatch,
             "new_tokens": shape.new, "gen_s": s, "tokens_per_s": Double(produced) / s,
             "threads": Parallel.threads, "kernel": BLAS.info.kernel],
            text: String(format: "generate d=%d L=%d, %d sequences × %d new tokens: %.3f s, %.0f tokens/s",
                         cfg.dModel, cfg.layers, shape.genBatch, shape.new, s, Double(produced) / s))
    }
}

struct BenchGRPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "One full GRPO step (sample, score, reference and policy passes, AdamW), as trl_peer.py.")
    @Option(help: "Model width.") var d = 256
    @Option(help: "Decoder blocks.") var layers = 4
    @Option(help: "Attention heads.") var heads = 4
    @Option(help: "SwiGLU hidden size.") var ff = 768
    @Option(help: "Prompts per step.") var prompts = 8
    @Option(name: .customLong("G"), help: "Completions per prompt.") var g = 8
    @Option(help: "New tokens per completion (exactly, as the peer's min_new_tokens).") var new = 128
    @Option(help: "KL coefficient (a reference pass runs when > 0).") var beta: Float = 0.04
    @Option(help: "Timed steps after one warm-up step.") var steps = 4
    @Option(help: "Hugging Face or Ponder model folder to load instead of a fresh d/layers/heads/ff model.") var from: String?
    @Option(help: "Prompt layout (plain, chat, chatml, llama3).") var promptFormat = "plain"
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var cfg = TrainConfig()
        cfg.model.dModel = d
        cfg.model.layers = layers
        cfg.model.heads = heads
        cfg.model.ffDim = ff
        cfg.model.maxContext = 32 + new
        cfg.grpo.promptsPerStep = prompts
        cfg.grpo.numGenerations = g
        cfg.grpo.maxCompletionLength = new
        cfg.grpo.beta = beta
        cfg.grpo.learningRate = 1e-4
        cfg.grpo.rewards = RewardConfig(weights: ["correctness": 1, "format": 1])
        try cfg.validate()
        cfg.data.promptFormat = promptFormat
        let tokenizer: any Tokenizer
        let policy: Policy, reference: Policy
        if let from {
            let loaded = try Checkpoint.load(from: URL(fileURLWithPath: from))
            tokenizer = try PromptFormat(rawValue: promptFormat).map { try $0.apply(to: loaded.tokenizer) } ?? loaded.tokenizer
            policy = loaded.policy
            reference = beta > 0 ? try Checkpoint.load(from: URL(fileURLWithPath: from)).policy : policy
        } else {
            tokenizer = CharTokenizer()
            var rng = RNG(seed: 0, stream: "init")
            policy = Policy(config: cfg.policyConfig(vocabSize: tokenizer.vocabSize), rng: &rng)
            var refRNG = RNG(seed: 0, stream: "init")
            reference = Policy(config: policy.config, rng: &refRNG)
        }
        let optimizer = AdamW(policy.parameters, lr: cfg.grpo.learningRate)
        var step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet(config: cfg.grpo.rewards))
        step.minNewTokens = new
        // Problems like the peer's ("what is x+y?" over 2-3 digit numbers): addition levels 1-2.
        let family = TaskRegistry.family(named: "add")!
        var index = 0
        var sampling = RNG(seed: 0, stream: "sampling")
        var times: [Double] = []
        for i in 0...steps {
            let problems = (0..<prompts).map { _ -> Problem in
                index += 1
                return family.problem(seed: 0, stream: "bench", level: 1 + index % 2, index: index, id: "bench-\(index)")
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            var batch = try step.generate(policy: policy, problems: problems, rng: &sampling)
            _ = step.assignAdvantages(&batch)
            _ = try step.update(policy: policy, reference: beta > 0 ? reference : nil, optimizer: optimizer, samples: batch)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        let median = times.sorted()[times.count / 2]
        let completions = Double(prompts * g)
        if json {
            print(String(format: "{\"bench\":\"grpo\",\"params\":%d,\"d\":%d,\"layers\":%d,\"prompts\":%d,\"G\":%d,\"new_tokens\":%d,\"step_s\":%.4g,\"completions_per_s\":%.4g,\"completion_tokens_per_s\":%.4g,\"threads\":%d,\"kernel\":\"%@\"}",
                         policy.config.parameterCount, policy.config.dModel, policy.config.layers, prompts, g, new, median, completions / median,
                         completions * Double(new) / median, Parallel.threads, BLAS.info.kernel as NSString))
        } else {
            print(String(format: "GRPO step d=%d L=%d, %d prompts × G=%d × %d tokens, beta %.2f: median %.3f s over %d steps",
                         policy.config.dModel, policy.config.layers, prompts, g, new, beta, median, times.count))
        }
    }
}
