// The batched group sampler: P prompts × G samples decoded together, one KV cache, one product per
// weight per step for the whole batch. Each prompt is computed once for its group, and a completion
// that stops leaves the batch.

import Autograd
import Foundation

/// How to pick each next token.
public struct SamplingOptions: Codable, Equatable, Sendable {
    /// Softmax temperature (ignored when greedy).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0: off).
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability reaches p (1: off).
    public var topP: Float = 1
    /// Drop tokens less likely than min_p × the top token's probability (0: off).
    public var minP: Float = 0
    /// Most tokens generated per completion.
    public var maxNewTokens: Int = 64
    /// Generate at least this many tokens before a stop token ends a sequence (for benchmarks).
    public var minNewTokens: Int = 0
    /// Always take the most likely token.
    public var greedy: Bool = false

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                maxNewTokens: Int = 64, minNewTokens: Int = 0, greedy: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.maxNewTokens = maxNewTokens
        self.minNewTokens = minNewTokens
        self.greedy = greedy
    }
}

/// One sampled completion.
public struct Completion: Sendable {
    /// Index of the prompt it answers.
    public var prompt: Int
    /// Generated token ids, including the stop token when there is one.
    public var tokens: [Int32]
    /// log π(token) under softmax(logits / temperature) of the sampling policy, one per token.
    public var logprobs: [Float]
    /// Whether it ended at max_new_tokens without a stop token.
    public var truncated: Bool

    /// A completion (e.g. one received from another process of a data-parallel job).
    public init(prompt: Int, tokens: [Int32], logprobs: [Float], truncated: Bool) {
        self.prompt = prompt
        self.tokens = tokens
        self.logprobs = logprobs
        self.truncated = truncated
    }
}

public enum Sampler {
    /// Where the latest `sample` call's time went (for benchmarks): the prompt's pass, with packing
    /// the weights for the cache, then decoding: `decodeSteps` rounds of choosing each row's token and,
    /// but for the last, one cached forward step.
    public struct Timing: Sendable {
        public var promptSeconds = 0.0
        public var decodeSeconds = 0.0
        public var decodeSteps = 0
    }

    /// The latest `sample` call's timing, from whichever thread made it (data-parallel ranks sample at once).
    public static var lastTiming: Timing {
        get { timingLock.withLock { timing } }
        set { timingLock.withLock { timing = newValue } }
    }
    nonisolated(unsafe) private static var timing = Timing()
    private static let timingLock = NSLock()

    /// Samples `group` completions for each prompt. Sequences stop at any of `stopTokens` (EOS and
    /// `</answer>`) or after `options.maxNewTokens`. Results are ordered prompt-major (prompt 0's
    /// group first) and depend only on the policy, the inputs and `rng`.
    public static func sample(
        policy: Policy, prompts: [[Int32]], group: Int, options: SamplingOptions,
        stopTokens: Set<Int32>, padToken: Int32, rng: inout RNG
    ) -> [Completion] {
        var rngs = [rng]
        defer { rng = rngs[0] }
        return sample(policy: policy, prompts: prompts, group: group, options: options, stopTokens: stopTokens,
                      padToken: padToken, rngs: &rngs, rngOfRow: { _ in 0 })
    }

    /// Like `sample(…, rng:)`, but prompt p's group draws only from `rngs[p]`: a prompt's samples
    /// then depend only on the policy, the prompt and its own generator, not on which other prompts
    /// share the batch (so data-parallel ranks and batch sizes do not change them).
    ///
    /// A small policy's batch is split into contiguous slices of prompts decoded at once on the threads
    /// (`sliceCount`), each with its own cache and its ops on its own thread: such a policy's decoding
    /// products are too small to split well (on 2 cores, half the sampling time of `bench grpo --task
    /// add`'s d=128 step went to the serial parts between them and the waits). With the native kernels a
    /// row's values depend on that row alone and each group draws from its own generator, so the
    /// completions are the same bits as one batch's, whatever the split.
    public static func sample(
        policy: Policy, prompts: [[Int32]], group: Int, options: SamplingOptions,
        stopTokens: Set<Int32>, padToken: Int32, rngs: inout [RNG]
    ) -> [Completion] {
        precondition(rngs.count == prompts.count, "one generator per prompt")
        let slices = sliceCount(policy: policy, prompts: prompts.count, group: group)
        if slices <= 1 {
            return sample(policy: policy, prompts: prompts, group: group, options: options, stopTokens: stopTokens,
                          padToken: padToken, rngs: &rngs, rngOfRow: { $0 / group })
        }
        let bounds = (0...slices).map { prompts.count * $0 / slices }
        let packed = PackedWeights()  // each weight packed once for all the slices
        var parts = [[Completion]](repeating: [], count: slices)
        var sliceRNGs = (0..<slices).map { Array(rngs[bounds[$0]..<bounds[$0 + 1]]) }
        var timings = [Timing](repeating: Timing(), count: slices)
        parts.withUnsafeMutableBufferPointer { parts in
            sliceRNGs.withUnsafeMutableBufferPointer { sliceRNGs in
                timings.withUnsafeMutableBufferPointer { timings in
                    Parallel.run(slices) { i in
                        parts[i] = sample(policy: policy, prompts: Array(prompts[bounds[i]..<bounds[i + 1]]), group: group,
                                          options: options, stopTokens: stopTokens, padToken: padToken, rngs: &sliceRNGs[i],
                                          rngOfRow: { $0 / group }, packed: packed, timing: &timings[i])
                    }
                }
            }
        }
        rngs = sliceRNGs.flatMap { $0 }
        // The slowest slice's prompt pass and decoding, each slice's steps at most.
        lastTiming = Timing(promptSeconds: timings.map(\.promptSeconds).max()!, decodeSeconds: timings.map(\.decodeSeconds).max()!,
                            decodeSteps: timings.map(\.decodeSteps).max()!)
        return (0..<slices).flatMap { i in
            parts[i].map { Completion(prompt: $0.prompt + bounds[i], tokens: $0.tokens, logprobs: $0.logprobs, truncated: $0.truncated) }
        }
    }

    static func sample(
        policy: Policy, prompts: [[Int32]], group: Int, options: SamplingOptions,
        stopTokens: Set<Int32>, padToken: Int32, rngs: inout [RNG], rngOfRow: (Int) -> Int
    ) -> [Completion] {
        var timing = Timing()
        defer { lastTiming = timing }
        return sample(policy: policy, prompts: prompts, group: group, options: options, stopTokens: stopTokens,
                      padToken: padToken, rngs: &rngs, rngOfRow: rngOfRow, packed: PackedWeights(), timing: &timing)
    }

    /// Float32 weights at most this large are decoded in slices (see `sample(…, rngs:)`): every slice
    /// reads all of them at every step, which costs nothing while they stay in the last-level cache
    /// (the quickstart's 3 MB, r1-tiny's 8 MB); a larger model's decoding is bound by reading its
    /// weights from memory, and there the threads split each product's columns instead.
    static let sliceWeightBytes = 16 << 20

    /// Rows (prompts × group) a slice keeps at least when a thread takes more than two slices.
    static let minSliceRows = 48

    /// Slices of a batch of `prompts` × `group` rows decoded at once: two to four per thread (fewer when
    /// there are fewer prompts). More slices balance the threads when completions stop at very different
    /// lengths (r1-tiny's families: 20 to 224 tokens), since a thread that finishes takes the next slice;
    /// fewer keep each slice's products wide, so a thread takes more than two only while every slice keeps
    /// `minSliceRows` rows (docs/results.md). One where the rows' values could depend on the batch
    /// (without the native kernels), where the weights are too large, or for a mixture of experts, whose
    /// layers keep each forward's routing and load in their own state.
    public static func sliceCount(policy: Policy, prompts: Int, group: Int) -> Int {
        guard NativeKernels.enabled, Parallel.threads > 1, policy.config.moe == nil,
              policy.config.parameterCount * 4 <= sliceWeightBytes else { return 1 }
        let threads = Parallel.threads
        let perThread = Swift.min(4, Swift.max(2, prompts * group / (minSliceRows * threads)))
        return Swift.min(perThread * threads, prompts)
    }

    /// One batch: the prompts' pass, then decoding every row together, its cache packing weights into
    /// `packed`; where its time went in `timing`.
    static func sample(
        policy: Policy, prompts: [[Int32]], group: Int, options: SamplingOptions,
        stopTokens: Set<Int32>, padToken: Int32, rngs: inout [RNG], rngOfRow: (Int) -> Int,
        packed: PackedWeights, timing: inout Timing
    ) -> [Completion] {
        precondition(!prompts.isEmpty && group >= 1 && prompts.allSatisfy { !$0.isEmpty })
        let s = prompts.count * group
        let tp = prompts.map(\.count).max()!
        let capacity = tp + options.maxNewTokens
        precondition(capacity <= policy.config.maxContext,
                     "prompt (\(tp)) + max_new_tokens (\(options.maxNewTokens)) exceeds max_context \(policy.config.maxContext)")
        // Each prompt runs once, left-padded to the longest; its keys and values and last logits are
        // then copied to its group's G rows (with the native kernels a row's values depend on that
        // row alone, so this equals running every row).
        let n = prompts.count
        var ids = [Int32](repeating: padToken, count: n * tp)
        let keyStart = prompts.map { tp - $0.count }
        for (p, prompt) in prompts.enumerated() {
            for (i, tok) in prompt.enumerated() { ids[p * tp + keyStart[p] + i] = tok }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let cache = KVCache(config: policy.config, seqs: n, capacity: capacity, keyStart: keyStart, reserve: s, sharing: packed)
        let first = policy.step(ids, tokensPerSeq: tp, cache: cache)  // (P, V)
        let decodeStart = DispatchTime.now().uptimeNanoseconds
        var rounds = 0
        defer {
            let end = DispatchTime.now().uptimeNanoseconds
            timing = Timing(promptSeconds: Double(decodeStart - start) / 1e9,
                            decodeSeconds: Double(end - decodeStart) / 1e9, decodeSteps: rounds)
        }
        // A cache row decodes every completion on it (`rowOf`), all of which have drawn the same tokens so
        // far: with the native kernels a row's values depend on that row alone, so their logits are one
        // row's, computed once (vLLM's copy-on-write for parallel samples, at the granularity of a row).
        // A row whose completions draw different tokens is copied (`appendCopy`) for each further token;
        // one whose completions have all stopped leaves the batch (`keep(rows:)`). Otherwise each
        // completion has a row of its own, the prompt's copied to its group's rows.
        let shares = sharesRows(policy)
        var rows: Int  // cache rows decoding
        var logits: Tensor
        if shares {
            cache.markPrompts()
            rows = n
            logits = first
        } else {
            cache.repeatRows(group)
            rows = s
            logits = Tensor(uninitialized: [s, policy.config.vocabSize])
            for r in 0..<s {
                (logits.data + r * policy.config.vocabSize).update(from: first.data + (r / group) * policy.config.vocabSize, count: policy.config.vocabSize)
            }
        }
        var out = (0..<s).map { Completion(prompt: $0 / group, tokens: [], logprobs: [], truncated: true) }
        var rowOf = (0..<s).map { shares ? $0 / group : $0 }  // the cache row each completion decodes on
        var alive = Array(0..<s)  // completions still decoding, ascending: the order of the draws, wherever their rows are
        let v = policy.config.vocabSize
        // Each row's softmax and filters run in parallel (on one core, over a 151,936-token vocabulary,
        // the softmax made a 0.5B model's decoding step 72-76 ms instead of 63-66 ms: `bench generate
        // --from`); only the draws, which share generators, run in completion order. The scratch comes
        // from the buffer pool, as the KV cache does: every GRPO step samples.
        let scratch = BufferPool.take(s * v)
        defer { BufferPool.give(scratch, s * v) }
        var softmaxes = [Softmax](repeating: Softmax(), count: s)
        var drawn = [Int32](repeating: padToken, count: s)
        for step in 0..<options.maxNewTokens {
            rounds += 1
            softmaxes.withUnsafeMutableBufferPointer { results in
                Parallel.forRanges(rows, cost: 4 * v) { range in
                    for i in range { results[i] = softmax(logits.data + i * v, v: v, options: options, into: scratch + i * v) }
                }
            }
            var stillAlive: [Int] = []
            for c in alive {
                let i = rowOf[c]
                let (tok, lp) = draw(logits.data + i * v, v: v, softmaxes[i], greedy: options.greedy, rng: &rngs[rngOfRow(c)],
                                     scratch: scratch + i * v)
                out[c].tokens.append(tok)
                out[c].logprobs.append(lp)
                if stopTokens.contains(tok) && step + 1 >= options.minNewTokens {
                    out[c].truncated = false
                } else {
                    drawn[c] = tok
                    stillAlive.append(c)
                }
            }
            alive = stillAlive
            if step + 1 == options.maxNewTokens || alive.isEmpty { break }
            // Each row's completions still decoding, split by the token they drew (in order of first
            // appearance): the first part stays on the row, each other one gets a copy of it.
            var parts: [[[Int]]] = Array(repeating: [], count: rows)
            for c in alive {
                let i = rowOf[c]
                if let k = parts[i].firstIndex(where: { drawn[$0[0]] == drawn[c] }) { parts[i][k].append(c) } else { parts[i].append([c]) }
            }
            let kept = (0..<rows).filter { !parts[$0].isEmpty }
            if kept.count < rows {
                // Finished rows leave the batch, so a step costs only the rows still decoding.
                let order = cache.keep(rows: kept)
                parts = order.map { parts[$0] }
            }
            var layout = parts.map { $0[0] }  // the completions on each row of the next step
            for i in parts.indices {
                for part in parts[i].dropFirst() {
                    layout.append(part)
                    cache.appendCopy(of: i)
                }
            }
            for (i, m) in layout.enumerated() { for c in m { rowOf[c] = i } }
            rows = layout.count
            let next = layout.map { drawn[$0[0]] }
            logits = policy.step(next, tokensPerSeq: 1, cache: cache)
        }
        return out
    }

    /// Whether a batch's completions that have drawn the same tokens share one cache row: where a row's
    /// values depend on that row alone (the native kernels), and not for a mixture of experts, whose
    /// layers keep each forward's routing and load in their own state.
    public static func sharesRows(_ policy: Policy) -> Bool {
        sharesAlikeRows && NativeKernels.enabled && policy.config.moe == nil
    }

    /// Off: every completion decodes on a row of its own (the same bits, more work; for tests and timing).
    nonisolated(unsafe) public static var sharesAlikeRows = true

    /// One row's softmax at the sampling temperature: its largest logit, that token, log Z and the temperature.
    struct Softmax {
        var max: Float = 0, arg = 0, logZ: Float = 0, temperature: Float = 1
    }

    /// Writes exp((logit − max) / temperature) of each token to `scratch` (v floats), then, unless greedy,
    /// zeroes the tokens that min-p, top-k and top-p exclude (the kept ones stay unnormalised). Needs no
    /// generator, so rows can run it at once.
    static func softmax(_ row: UnsafeMutablePointer<Float>, v: Int, options: SamplingOptions,
                        into base: UnsafeMutablePointer<Float>) -> Softmax {
        let scratch = UnsafeMutableBufferPointer(start: base, count: v)
        let temp = options.greedy ? 1 : max(options.temperature, 1e-6)
        var mx = -Float.infinity, arg = 0
        for j in 0..<v where row[j] > mx { mx = row[j]; arg = j }
        var sum: Float = 0
        for j in 0..<v {
            let e = Foundation.exp((row[j] - mx) / temp)
            scratch[j] = e
            sum += e
        }
        let result = Softmax(max: mx, arg: arg, logZ: Foundation.log(sum), temperature: temp)
        if options.greedy { return result }
        if options.minP > 0 {
            let cut = options.minP * scratch[arg]
            for j in 0..<v where scratch[j] < cut { scratch[j] = 0 }
        }
        if options.topK > 0 && options.topK < v {
            let kth = scratch.sorted(by: >)[options.topK - 1]
            var kept = 0
            for j in 0..<v {  // ties at the k-th value: keep the lowest ids, so exactly k remain
                if scratch[j] > kth { kept += 1 }
            }
            var tiesLeft = options.topK - kept
            for j in 0..<v where scratch[j] <= kth {
                if scratch[j] == kth && tiesLeft > 0 { tiesLeft -= 1 } else { scratch[j] = 0 }
            }
        }
        if options.topP < 1 {
            let order = (0..<v).sorted { scratch[$0] > scratch[$1] || (scratch[$0] == scratch[$1] && $0 < $1) }
            let total = scratch.reduce(0, +)
            var acc: Float = 0
            var keep = true
            for j in order {
                if !keep { scratch[j] = 0; continue }
                acc += scratch[j]
                if acc >= options.topP * total { keep = false }
            }
        }
        return result
    }

    /// Chooses a token from one row of logits after `softmax` filled and filtered `scratch` from it;
    /// returns it with its log-probability under softmax(logits / temperature) (before the filters, as
    /// TRL computes it).
    static func draw(_ row: UnsafeMutablePointer<Float>, v: Int, _ sm: Softmax, greedy: Bool, rng: inout RNG,
                     scratch base: UnsafeMutablePointer<Float>) -> (Int32, Float) {
        let scratch = UnsafeMutableBufferPointer(start: base, count: v)
        let (mx, arg, logZ, temp) = (sm.max, sm.arg, sm.logZ, sm.temperature)
        func logprob(_ j: Int) -> Float { (row[j] - mx) / temp - logZ }
        if greedy { return (Int32(arg), logprob(arg)) }
        let total = scratch.reduce(0, +)
        var u = Float(rng.uniform()) * total
        for j in 0..<v where scratch[j] > 0 {
            u -= scratch[j]
            if u < 0 { return (Int32(j), logprob(j)) }
        }
        // Rounding left u ≥ 0 after the last kept token: take the last kept one.
        let last = (0..<v).last { scratch[$0] > 0 } ?? arg
        return (Int32(last), logprob(last))
    }
}
