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
    @Option(help: "Matmul precision: f32, or bf16 (mixed precision on AMX or avx512_bf16). Default: $PONDER_PRECISION, else f32.") var precision = defaultPrecision
    @OptionGroup var deepseek: DeepseekShape

    func validate() throws {
        let L = TrainConfig.Limits.self
        for (v, r, f) in [(d, 2...L.width, "--d"), (layers, 1...L.layers, "--layers"), (heads, 1...L.heads, "--heads"), (ff, 1...L.hidden, "--ff"),
                          (vocab, 2...L.vocabulary, "--vocab"), (ctx, 2...L.context, "--ctx"), (batch, 1...L.batch, "--batch"),
                          (seq, 2...L.context, "--seq"), (genBatch, 1...L.batch, "--gen-batch"), (prompt, 1...L.context, "--prompt"),
                          (new, 1...L.context, "--new"), (steps, 1...1_000_000, "--steps")] {
            try checkFlag(v, r, f)
        }
    }

    func config() throws -> PolicyConfig {
        try setMatmulPrecision(precision)
        var c = PolicyConfig(vocabSize: vocab, dModel: d, layers: layers, heads: heads, ffDim: ff,
                             maxContext: max(ctx, seq, prompt + new))
        try deepseek.apply(to: &c)
        try c.validate()
        return c
    }

    /// A freshly initialised policy of this shape (seed 0) and the "data" stream for its inputs.
    func policy() throws -> (Policy, RNG) {
        try policy(config())
    }

    func policy(_ c: PolicyConfig) -> (Policy, RNG) {
        var rng = RNG(seed: 0, stream: "init")
        return (Policy(config: c, rng: &rng), RNG(seed: 0, stream: "data"))
    }
}

/// The benchmarks' --precision default: $PONDER_PRECISION (so that `PONDER_PRECISION=bf16
/// ../shared/bench/compare.sh` compares the bf16 path), else f32.
let defaultPrecision = ProcessInfo.processInfo.environment["PONDER_PRECISION"] ?? "f32"

/// Sets `BLAS.precision` from a --precision flag, or says why it cannot.
func setMatmulPrecision(_ value: String) throws {
    guard let p = MatmulPrecision(rawValue: value) else {
        throw ValidationError("--precision is '\(value)'; use f32 or bf16")
    }
    if p == .bf16, let why = MatmulPrecision.bf16Unavailable { throw ValidationError("--precision bf16: \(why)") }
    BLAS.precision = p
}

/// Sets `BLAS.precision` for a command that runs a checkpoint and was given no --precision: the
/// precision its training run sampled with (its metadata), where this CPU has it, else f32. Says on
/// stderr when the checkpoint's choice decided it.
func setCheckpointPrecision(metadata: [String: String], path: String, announce: Bool = true) {
    guard let recorded = metadata[Checkpoint.precisionKey].flatMap(MatmulPrecision.init(rawValue:)), recorded != .f32 else {
        BLAS.precision = .f32
        return
    }
    if let why = MatmulPrecision.bf16Unavailable {
        BLAS.precision = .f32
        guard announce else { return }
        FileHandle.standardError.write(Data("\(path): its run sampled in \(recorded.rawValue), which this CPU lacks (\(why)); running f32\n".utf8))
    } else {
        BLAS.precision = recorded
        guard announce else { return }
        FileHandle.standardError.write(Data("\(path): \(recorded.rawValue) products, as its run sampled (--precision f32 to choose)\n".utf8))
    }
}

/// MLA and MoE flags. The MLA defaults cache 64 + 32 floats per token per layer, against 2·256 for
/// MHA at the default width: 5.3× smaller.
struct DeepseekShape: ParsableArguments {
    @Option(help: "Attention: mha or mla (default mha; mla when --moe-experts > 0, as MoE needs MLA).") var attention: String?
    @Option(name: .customLong("q-lora-rank"), help: "MLA query rank (0: direct q_proj).") var qLoraRank = 0
    @Option(name: .customLong("kv-lora-rank"), help: "MLA latent rank.") var kvLoraRank = 64
    @Option(name: .customLong("qk-nope-head-dim"), help: "MLA per-head query/key width without RoPE.") var qkNope = 32
    @Option(name: .customLong("qk-rope-head-dim"), help: "MLA RoPE width (per head for queries, shared key).") var qkRope = 32
    @Option(name: .customLong("v-head-dim"), help: "MLA per-head value width.") var vHead = 64
    @Option(name: .customLong("moe-experts"), help: "Routed experts (0: dense).") var moeExperts = 0
    @Option(name: .customLong("moe-top-k"), help: "Experts per token.") var moeTopK = 2
    @Option(name: .customLong("moe-shared"), help: "Shared experts.") var moeShared = 0
    @Option(name: .customLong("moe-expert-ff"), help: "Expert hidden size (default ff / (top-k + shared)).") var moeExpertFF: Int?
    @Option(name: .customLong("moe-first-dense"), help: "Leading dense layers.") var moeFirstDense = 0

    func apply(to c: inout PolicyConfig) throws {
        let kind = attention ?? (moeExperts > 0 ? "mla" : "mha")
        guard ["mha", "mla"].contains(kind) else { throw ValidationError("--attention is '\(kind)'; use mha or mla") }
        if kind == "mla" {
            c.mla = MLAConfig(qLoraRank: qLoraRank, kvLoraRank: kvLoraRank, qkNopeHeadDim: qkNope, qkRopeHeadDim: qkRope, vHeadDim: vHead)
        }
        if moeExperts > 0 {
            c.moe = MoEConfig(experts: moeExperts, topK: moeTopK, sharedExperts: moeShared,
                              expertFfDim: moeExpertFF ?? max(1, c.ffDim / (moeTopK + moeShared)), firstKDense: moeFirstDense)
        }
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training step (forward, backward, AdamW) tokens/s, as torch_peer.py --what train.")
    @OptionGroup var shape: ModelShape
    @OptionGroup var output: BenchOutput

    func run() throws {
        let cfg = try shape.config()
        guard let e = cfg.moe else { return try measure(cfg) }
        // The MoE model, then a dense one with the same active parameters per token: the same
        // attention, and a SwiGLU as wide as the k + shared experts a token uses.
        try measure(cfg)
        var dense = cfg
        dense.moe = nil
        dense.ffDim = (e.topK + e.sharedExperts) * e.expertFfDim
        try measure(dense)
    }

    func measure(_ cfg: PolicyConfig) throws {
        var (policy, data) = shape.policy(cfg)
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
            policy.afterOptimizerStep()
        })
        let tokens = b * t
        let work = ModelWork(cfg)
        let flops = Double(b) * (work.layers(t) + work.head(t) + work.backward(tokens: t, headTokens: t, frozen: false))
        output.emit(
            ["bench": "train", "attention": cfg.mla == nil ? "mha" : "mla", "moe_experts": cfg.moe?.experts ?? 0,
             "params": cfg.parameterCount, "active_params": cfg.activeParameterCount, "d": cfg.dModel, "layers": cfg.layers, "tokens": tokens,
             "step_s": s, "tokens_per_s": Double(tokens) / s, "gflops": flops / s / 1e9, "loss": Double(loss),
             "threads": Parallel.threads, "kernel": BLAS.info.kernel, "precision": BLAS.precision.rawValue],
            text: String(format: "train step d=%d L=%d %@, %d×%d tokens: %.3f s, %.0f tokens/s, %.1f GFLOP/s (loss %.3f), params %d (active %d), matmul %@",
                         cfg.dModel, cfg.layers, (cfg.moe.map { "MoE \($0.experts)×top-\($0.topK)" } ?? "dense") as NSString,
                         b, t, s, Double(tokens) / s, flops / s / 1e9, loss, cfg.parameterCount, cfg.activeParameterCount,
                         BLAS.precision.rawValue as NSString))
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sampling tokens/s with the KV cache, as torch_peer.py --what generate.")
    @OptionGroup var shape: ModelShape
    @OptionGroup var output: BenchOutput
    @Option(help: "Hugging Face or Ponder model folder to decode instead of a fresh --d/--layers model; also reports how close decoding gets to reading every weight once per step at the measured memory bandwidth.") var from: String?

    func run() throws {
        if let from { return try runLoaded(from) }
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
            ["bench": "generate", "attention": cfg.mla == nil ? "mha" : "mla", "moe_experts": cfg.moe?.experts ?? 0,
             "d": cfg.dModel, "layers": cfg.layers, "batch": shape.genBatch,
             "new_tokens": shape.new, "gen_s": s, "tokens_per_s": Double(produced) / s,
             "kv_bytes_per_token": cfg.kvBytesPerToken, "params": cfg.parameterCount,
             "threads": Parallel.threads, "kernel": BLAS.info.kernel, "decode_kernels": NativeKernels.name,
             "precision": BLAS.precision.rawValue],
            text: String(format: "generate d=%d L=%d %@, %d sequences × %d new tokens: %.3f s, %.0f tokens/s, KV cache %d bytes/token; decoding kernels: %@; matmul %@",
                         cfg.dModel, cfg.layers, (cfg.mla == nil ? "mha" : "mla") as NSString, shape.genBatch, shape.new, s,
                         Double(produced) / s, cfg.kvBytesPerToken, NativeKernels.name as NSString, BLAS.precision.rawValue as NSString))
    }
}

extension BenchGenerate {
    /// Decoding a loaded model: --gen-batch random prompts of --prompt tokens, --new tokens each. A
    /// decoding step of a large model reads every weight once, so its bound is the weights' bytes over
    /// the read bandwidth; the step's time (choosing the tokens and one cached forward step) is the
    /// median call's decoding time over its steps, which leaves out the prompt's pass (compute bound)
    /// and packing the weights.
    func runLoaded(_ from: String) throws {
        try setMatmulPrecision(shape.precision)
        let policy = try Checkpoint.load(from: URL(fileURLWithPath: from)).policy
        let cfg = policy.config
        guard shape.prompt + shape.new <= cfg.maxContext else {
            throw ValidationError("--prompt \(shape.prompt) + --new \(shape.new) exceed the model's context of \(cfg.maxContext) tokens")
        }
        var data = RNG(seed: 0, stream: "data")
        let prompts = (0..<shape.genBatch).map { _ in (0..<shape.prompt).map { _ in Int32(data.int(below: cfg.vocabSize)) } }
        var sampling = RNG(seed: 0, stream: "sampling")
        let opts = SamplingOptions(temperature: 1, maxNewTokens: shape.new, minNewTokens: shape.new)
        var prompt: [Double] = [], decode: [Double] = []
        let full = medianSeconds(repeats: max(1, shape.steps / 2)) {
            _ = Sampler.sample(policy: policy, prompts: prompts, group: 1, options: opts, stopTokens: [], padToken: 0, rng: &sampling)
            prompt.append(Sampler.lastTiming.promptSeconds)
            decode.append(Sampler.lastTiming.decodeSeconds / Double(max(1, Sampler.lastTiming.decodeSteps)))
        }
        func median(_ xs: [Double]) -> Double { let t = xs.dropFirst().sorted(); return t[t.count / 2] }  // without the warm-up
        let prefill = median(prompt), step = median(decode)
        // Every matrix once per step: the blocks at the matmul precision, the LM head (the embedding when
        // tied) in float32; an untied embedding is only gathered.
        let head = Double(cfg.vocabSize * cfg.dModel)
        let body = Double(cfg.parameterCount) - head * (cfg.tieEmbeddings ? 1 : 2)
        let bytes = body * (BLAS.precision == .bf16 ? 2 : 4) + head * 4
        let bandwidth = BenchMatmul.readBandwidth(repeats: output.repeats)
        let bound = bytes / (bandwidth * 1e9)
        output.emit(
            ["bench": "generate", "from": from, "params": cfg.parameterCount, "batch": shape.genBatch, "prompt_tokens": shape.prompt,
             "new_tokens": shape.new, "gen_s": full, "prefill_s": prefill, "decode_step_s": step,
             "tokens_per_s": Double(shape.genBatch * shape.new) / full, "weight_bytes_per_step": bytes, "read_gb_s": bandwidth,
             "bound_step_s": bound, "fraction_of_bound": bound / step, "threads": Parallel.threads,
             "decode_kernels": NativeKernels.name, "precision": BLAS.precision.rawValue],
            text: String(format: "generate %@ (%.0fM parameters), %d sequences × %d prompt + %d new tokens: %.2f s (prompt pass and packing %.2f s), %.0f tokens/s\n  decoding step %.1f ms; reading the %.2f GB of weights at %.1f GB/s takes %.1f ms: %.0f%% of the bound; matmul %@",
                         from as NSString, Double(cfg.parameterCount) / 1e6, shape.genBatch, shape.prompt, shape.new, full, prefill,
                         Double(shape.genBatch * shape.new) / full, step * 1e3, bytes / 1e9, bandwidth, bound * 1e3, 100 * bound / step,
                         BLAS.precision.rawValue as NSString))
    }
}

struct BenchGRPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "One full GRPO step (sample, score, reference and policy passes, AdamW), as trl_peer.py.",
        discussion: "Under mpirun the step is data parallel: --prompts is the global batch, each rank samples its share of the groups, and gradients are summed across ranks; rank 0 prints.")
    @Option(help: "Model width.") var d = 256
    @Option(help: "Decoder blocks.") var layers = 4
    @Option(help: "Attention heads.") var heads = 4
    @Option(help: "SwiGLU hidden size.") var ff = 768
    @Option(help: "Prompts per step.") var prompts = 8
    @Option(name: .customLong("G"), help: "Completions per prompt.") var g = 8
    @Option(help: "New tokens per completion: exactly this many (as the peer's min_new_tokens), or with --task at most this many.") var new = 128
    @Option(help: "Real problems of this task family, or of several separated by commas and taken in turn (levels 1-2), whose completions stop when they stop, instead of addition forced to --new tokens; use with --from a model trained on them.") var task: String?
    @Option(help: "KL coefficient (a reference pass runs when > 0).") var beta: Float = 0.04
    @Option(help: "Timed steps after one warm-up step.") var steps = 4
    @Option(help: "Hugging Face or Ponder model folder to load instead of a fresh d/layers/heads/ff model.") var from: String?
    @Option(help: "Prompt layout (plain, chat, chatml, llama3).") var promptFormat = "plain"
    @Option(help: "Matmul precision: f32, or bf16 (mixed precision on AMX or avx512_bf16). Default: $PONDER_PRECISION, else f32.") var precision = defaultPrecision
    @Option(name: .customLong("lora-rank"), help: "Train rank-r LoRA adapters on every projection (alpha 2r) instead of every weight; the reference is the base, adapters off (0: full fine-tuning).") var loraRank = 0
    @Flag(name: .customLong("gradient-checkpointing"), help: "Recompute each layer's activations at backward (model.gradient_checkpointing).") var gradientCheckpointing = false
    @Flag(help: "Print one JSON object.") var json = false

    /// The families `--task` names (none without it).
    var taskNames: [String] { task.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? [] }

    func validate() throws {
        try checkFlag(loraRank, 0...4096, "--lora-rank")
        let L = TrainConfig.Limits.self
        for (v, r, f) in [(d, 2...L.width, "--d"), (layers, 1...L.layers, "--layers"), (heads, 1...L.heads, "--heads"), (ff, 1...L.hidden, "--ff"),
                          (prompts, 1...L.batch, "--prompts"), (g, 2...L.batch, "--G"), (new, 1...L.context, "--new"), (steps, 1...1_000_000, "--steps")] {
            try checkFlag(v, r, f)
        }
        guard beta.isFinite && beta >= 0 else { throw ValidationError("--beta must be a number ≥ 0") }
        if task != nil && taskNames.isEmpty { throw ValidationError("--task is empty; name a task family, or several separated by commas") }
        for name in taskNames where TaskRegistry.family(named: name) == nil {
            throw ValidationError("--task names '\(name)'; use one or more of \(TaskRegistry.all.map(\.name).joined(separator: ", ")), separated by commas")
        }
    }

    /// Long on purpose: the peer script's step in the same order (set up, timed loop, report), so the two
    /// read side by side.
    func run() throws {
        try setMatmulPrecision(precision)
        let comm = try Communicator.world()
        var cfg = TrainConfig()
        cfg.model.dModel = d
        cfg.model.layers = layers
        cfg.model.heads = heads
        cfg.model.ffDim = ff
        cfg.model.maxContext = (task == nil ? 32 : 160) + new
        cfg.grpo.promptsPerStep = prompts
        cfg.grpo.numGenerations = g
        cfg.grpo.maxCompletionLength = new
        cfg.grpo.beta = beta
        cfg.grpo.learningRate = 1e-4
        cfg.grpo.rewards = RewardConfig(weights: ["correctness": 1, "format": 1])
        try cfg.validate()
        guard let format = PromptFormat(rawValue: promptFormat) else {
            throw ValidationError("--prompt-format is '\(promptFormat)'; use \(PromptFormat.spellingList)")
        }
        cfg.data.promptFormat = format
        let tokenizer: any Tokenizer
        let policy: Policy
        var reference: Policy
        if let from {
            let loaded = try Checkpoint.load(from: URL(fileURLWithPath: from))
            tokenizer = try format.apply(to: loaded.tokenizer)
            policy = loaded.policy
            reference = beta > 0 && loraRank == 0 ? try Checkpoint.load(from: URL(fileURLWithPath: from)).policy : policy
        } else {
            tokenizer = CharTokenizer()
            var rng = RNG(seed: 0, stream: "init")
            policy = Policy(config: cfg.policyConfig(vocabSize: tokenizer.vocabSize), rng: &rng)
            var refRNG = RNG(seed: 0, stream: "init")
            reference = Policy(config: policy.config, rng: &refRNG)
        }
        if loraRank > 0 {  // adapters with B ≠ 0, as after some training, so that they cost what trained ones do
            var loraRNG = RNG(seed: 0, stream: "lora")
            try policy.addLoRA(LoRAConfig(rank: loraRank, alpha: Double(2 * loraRank))) { _, shape in
                Tensor.randn(shape, std: 0.01, rng: &loraRNG, requiresGrad: true)
            }
            reference = policy
        }
        policy.gradientCheckpointing = gradientCheckpointing
        let optimizer = AdamW(policy.parameters, lr: cfg.grpo.learningRate)
        var step = GRPOStep(config: cfg, tokenizer: tokenizer, rewards: try RewardSet(config: cfg.grpo.rewards))
        // Without --task, problems like the peer's ("what is x+y?" over 2-3 digit numbers, addition
        // levels 1-2) forced to --new tokens; with it, the families' levels 1-2 as they come.
        step.minNewTokens = task == nil ? new : 0
        let families = (task == nil ? ["add"] : taskNames).map { TaskRegistry.family(named: $0)! }
        var index = 0
        var times: [Double] = [], sampling: [Double] = [], distinct: [Double] = [], generated = 0, work = 0.0
        for i in 0...steps {
            let problems = (0..<prompts).map { _ -> Problem in
                index += 1
                let family = families[index % families.count]  // in turn, each family's levels alternating
                return family.problem(seed: 0, stream: "bench", level: 1 + index / families.count % 2, index: index, id: "bench-\(index)")
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            var batch = try step.generate(policy: policy, problems: problems, communicator: comm) {
                RNG(seed: 0, stream: "sampling", keys: [UInt64(i), UInt64($0)])
            }
            let t1 = DispatchTime.now().uptimeNanoseconds
            step.assignAdvantages(&batch)
            let metrics = try step.update(policy: policy, reference: beta > 0 ? reference : nil, optimizer: optimizer, samples: batch,
                                          communicator: comm)
            if i > 0 {
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                sampling.append(Double(t1 - t0) / 1e9)
                if let f = metrics["update/distinct_prefix_fraction"] { distinct.append(f) }
                // The step's work, counted outside its time.
                generated += batch.reduce(0) { $0 + $1.completion.tokens.count }
                let promptIDs = try problems.map { try tokenizer.encodePrompt($0.prompt).map(Int32.init) }
                let completions = (0..<prompts).map { p in batch[(p * g)..<((p + 1) * g)].map(\.completion.tokens) }
                work += Self.stepFlops(policy.config, prompts: promptIDs, completions: completions, reference: beta > 0,
                                       frozenBase: loraRank > 0, recompute: gradientCheckpointing,
                                       sharedDecoding: Sampler.sharesRows(policy), sharedPrefixes: policy.sharesPrefixes)
            }
        }
        // The gradient sum alone (every rank runs it): what data parallelism adds to a step.
        let reduce = comm.size > 1 ? medianSeconds(repeats: 5) { comm.sumGradients(policy.parameters) } : 0
        comm.finalize()
        guard comm.isWriter else { return }
        let median = times.sorted()[times.count / 2]
        // Where a step goes: sampling and scoring, then the rest (reference pass, policy forward and
        // backward, AdamW), each the median over the timed steps.
        let sample = sampling.sorted()[sampling.count / 2]
        let update = zip(times, sampling).map { $0 - $1 }.sorted()[times.count / 2]
        let completions = Double(prompts * g)
        let meanLength = Double(generated) / (completions * Double(times.count))
        let gflop = work / Double(times.count) / 1e9  // per step, the mean over the timed steps
        // The update's layers' tokens over its rows' real tokens (1 where rows do not share prefixes).
        let distinctFraction = distinct.isEmpty ? 1 : distinct.reduce(0, +) / Double(distinct.count)
        if json {
            print(BenchOutput.jsonRow([
                ("bench", "grpo"), ("task", task ?? ""), ("mean_completion_tokens", meanLength), ("params", policy.config.parameterCount),
                ("d", policy.config.dModel), ("layers", policy.config.layers), ("prompts", prompts), ("G", g), ("new_tokens", new),
                ("step_s", median), ("sample_s", sample), ("update_s", update), ("completions_per_s", completions / median),
                ("completion_tokens_per_s", completions * meanLength / median), ("threads", Parallel.threads), ("ranks", comm.size),
                ("gradient_sum_s", reduce), ("kernel", BLAS.info.kernel), ("decode_kernels", NativeKernels.name),
                ("precision", BLAS.precision.rawValue), ("lora_rank", loraRank), ("gradient_checkpointing", gradientCheckpointing),
                ("gflop", gflop), ("gflops", gflop / median), ("update_distinct_prefix_fraction", distinctFraction),
                ("peak_rss_mib", peakResidentMiB()),
            ]))
        } else {
            BenchCPU.nameOnce()
            let work = task.map { String(format: "%@ problems, mean %.1f of at most %d tokens", $0 as NSString, meanLength, new) } ?? "\(new) tokens"
            print(String(format: "GRPO step d=%d L=%d%@, %d prompts × G=%d × %@, beta %.2f, %d rank(s) × %d thread(s), matmul %@: median %.3f s over %d steps (sampling %.3f s, update %.3f s; %.1f completions/s; %.0f GFLOP per step, %.0f GFLOP/s; gradient sum %.4f s; the update's layers ran %.0f%% of its rows' tokens); peak memory %.0f MiB",
                         policy.config.dModel, policy.config.layers, ((loraRank > 0 ? ", LoRA rank \(loraRank)" : "") + (gradientCheckpointing ? ", gradient checkpointing" : "")) as NSString, prompts, g,
                         work as NSString, beta, comm.size, Parallel.threads,
                         BLAS.precision.rawValue as NSString, median, times.count, sample, update, completions / median, gflop, gflop / median,
                         reduce, 100 * distinctFraction, peakResidentMiB()))
        }
    }

    /// Floating-point operations of one GRPO step (`ModelWork`'s accounting), as Ponder runs it:
    /// sampling (each prompt's pass once, the LM head on its last position only, then one decoding step
    /// per completion token but the last; with `sharedDecoding` (`Sampler.sharesRows`), one per distinct
    /// prefix of a group's completions, as completions that drew the same tokens decode on one row),
    /// the reference's forward when β > 0, and the policy's forward and backward over every row, the LM
    /// head on the completion positions only (its backward recomputes the logits); frozen weights
    /// (LoRA's base and head; the rank-r adapters are left out) compute no weight gradient, and gradient
    /// checkpointing repeats the layers' forward. With `sharedPrefixes` (`Policy.sharesPrefixes`) the
    /// update's per-token work counts a group's distinct prefixes (its prompt once, and the tokens its
    /// completions drew alike once), its attention every row's queries. `bench grpo` divides this by the
    /// step time; bench/README.md compares it with the GEMM's measured peak.
    static func stepFlops(_ c: PolicyConfig, prompts: [[Int32]], completions: [[[Int32]]], reference: Bool, frozenBase: Bool,
                          recompute: Bool, sharedDecoding: Bool, sharedPrefixes: Bool) -> Double {
        let w = ModelWork(c)
        var total = 0.0
        for (prompt, rows) in zip(prompts, completions) {
            let tp = prompt.count, lengths = rows.map(\.count)
            total += w.layers(tp) + w.head(1)
            // The group's rows as the update lays them out: each distinct prefix is one packed token.
            let t = tp + lengths.max()!
            var ids = [Int32](repeating: 0, count: rows.count * t)
            for (r, row) in rows.enumerated() { for (i, id) in (prompt + row).enumerated() { ids[r * t + i] = id } }
            let layout = SharedPrefixes(ids: ids, batch: rows.count, time: t, lengths: lengths.map { tp + $0 })
            // Decoding feeds completion token j back (at context tp + j + 1) for j below its length − 1,
            // once per distinct prefix when rows that drew alike decode together.
            var fed = Set<Int32>()
            for (r, row) in rows.enumerated() where row.count > 1 {
                for j in 0..<(row.count - 1) where !sharedDecoding || fed.insert(layout.toSlots[r * t + tp + j]).inserted {
                    total += w.layers(tp + j + 1) - w.layers(tp + j) + w.head(1)
                }
            }
            // The update: per-token work over `tokens` (the packed tokens when shared), attention over the
            // queries it computes (each packed token's once when shared), the LM head per row.
            let heads = lengths.reduce(0, +)
            let tokens = Double(sharedPrefixes ? layout.packed : layout.realTokens)
            let queries = sharedPrefixes ? layout.queries : lengths.map { 0..<(tp + $0) }
            let attention = w.attention * queries.map { ModelWork.keys($0.upperBound) - ModelWork.keys($0.lowerBound) }.reduce(0, +)
            let layers = 2 * w.trunk * tokens + attention
            let backward = (frozenBase ? 2 : 4) * (w.trunk * tokens + w.headWeights * Double(heads)) + 2 * attention
            total += (layers + w.head(heads)) * (reference ? 2 : 1) + backward + w.head(heads) + (recompute ? layers : 0)
        }
        return total
    }
}

/// Floating-point work of a policy's passes as the benchmarks count it: a multiply-add is 2, useful
/// tokens only (no padding), the embedding lookup free. A weight costs 2 per token forward and 4
/// backward (2 when frozen: no weight gradient); causal attention costs 4·(query width) per query and
/// key it sees and layer forward (QKᵀ and PV), twice that backward. (MLA's attention is counted at
/// heads × head size, an approximation.)
struct ModelWork {
    let trunk: Double, headWeights: Double, attention: Double

    init(_ c: PolicyConfig) {
        headWeights = Double(c.vocabSize * c.dModel)
        trunk = Double(c.activeParameterCount) - headWeights * (c.tieEmbeddings ? 1 : 2)
        attention = 4 * Double(c.layers * c.heads * c.headDim)
    }

    /// Σ over t causal queries of the keys each sees.
    static func keys(_ t: Int) -> Double { Double(t) * Double(t + 1) / 2 }

    /// The layers' forward over a row of t tokens.
    func layers(_ t: Int) -> Double { 2 * trunk * Double(t) + attention * Self.keys(t) }

    /// The LM head's forward on n positions.
    func head(_ n: Int) -> Double { 2 * headWeights * Double(n) }

    /// The backward of a row of `tokens` tokens with the LM head on `headTokens` of them.
    func backward(tokens t: Int, headTokens h: Int, frozen: Bool) -> Double {
        (frozen ? 2 : 4) * (trunk * Double(t) + headWeights * Double(h)) + 2 * attention * Self.keys(t)
    }
}
