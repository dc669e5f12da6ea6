import ArgumentParser
import Autograd
import Basics
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Ponder on the same work as the peer scripts in ../shared/bench.",
        subcommands: [BenchMatmul.self, BenchTrain.self, BenchGenerate.self, BenchGRPO.self]
    )
}

/// The CPU a benchmark ran on, in every JSON row and on a line before the first text one, so that no
/// figure leaves without it.
enum BenchCPU {
    static let name = cpuDescription()
    /// `"cpu":"…"`, to open a JSON row.
    static let jsonField = JSONText.string("cpu") + ":" + JSONText.string(name)
    nonisolated(unsafe) private static var named = false

    static func nameOnce() {
        if !named { print("cpu: \(name)"); named = true }
    }
}

/// Flags every benchmark takes.
struct BenchOutput: ParsableArguments {
    @Flag(help: "Print one JSON object per measurement.") var json = false
    @Option(help: "Timed repetitions; the median is reported.") var repeats = 5

    func validate() throws { try checkFlag(repeats, 1...10_000, "--repeats") }

    func emit(_ fields: KeyValuePairs<String, Any>, text: String) { emit(fields.map { ($0.key, $0.value) }, text: text) }

    /// One JSON object: the CPU's field (`BenchCPU`), then `fields` in their order; doubles to four
    /// significant digits.
    static func jsonRow(_ fields: [(String, Any)]) -> String {
        var parts = [BenchCPU.jsonField]
        for (k, v) in fields {
            switch v {
            case let s as String: parts.append(JSONText.string(k) + ":" + JSONText.string(s))
            case let d as Double: parts.append(JSONText.string(k) + ":" + String(format: "%.4g", d))
            default: parts.append(JSONText.string(k) + ":\(v)")
            }
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// `emit` for fields assembled at run time, in their order, after the CPU's.
    func emit(_ fields: [(String, Any)], text: String) {
        if json {
            print(Self.jsonRow(fields))
        } else {
            BenchCPU.nameOnce()
            print(text)
        }
        fflush(stdout)
    }
}

/// The process's peak resident memory so far, in MiB (getrusage's ru_maxrss, in KiB on Linux).
func peakResidentMiB() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576  // bytes on macOS
    #endif
}

/// Seconds taken by `body`, the median over `repeats` runs after one warm-up.
func medianSeconds(repeats: Int, body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return times.sorted()[times.count / 2]
}

struct BenchMatmul: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "GEMM GFLOP/s at 2048³ and at a training step's shapes: OpenBLAS (with its kernel in use) beside Ponder's AVX-512 GEMM, and bf16 (AMX or avx512_bf16) where the CPU has it; then the packed decoding GEMM.")
    @OptionGroup var output: BenchOutput

    /// (M, N, K, op(A) transposed, op(B) transposed): the square reference, then a training step's
    /// MLP up-projection at d=256, ff=768 over 4096 tokens: forward x·Wᵀ, backward dY·W and dYᵀ·X.
    static let shapes = [(2048, 2048, 2048, false, false), (4096, 768, 256, false, true), (4096, 256, 768, false, false),
                         (768, 256, 4096, true, false)]

    func run() throws {
        let info = BLAS.info
        if !output.json {
            BenchCPU.nameOnce()
            let why = info.requested == nil ? info.reason : "chosen by Ponder from " + info.reason
            print("OpenBLAS kernel: \(info.kernel) (\(why)), \(info.threads) threads; training GEMM: \(NativeKernels.gemmName); bf16: \(MatmulPrecision.bf16Unit ?? "none")\(MatmulPrecision.bf16Unit != nil && !BLAS.bf16Faster ? " (slower than float32 on this CPU: precision auto runs f32)" : "")")
            print("library: \(info.library)")
        }
        for (m, n, k, ta, tb) in Self.shapes {
            var rng = RNG(seed: 1)
            let a = Tensor.randn([m, k], rng: &rng), b = Tensor.randn([k, n], rng: &rng)
            let c = Tensor(uninitialized: [m, n])
            let op = (ta ? "T" : "N") + (tb ? "T" : "N")
            emitRates(String(format: "gemm %@ %5d x %4d x %4d", op as NSString, m, n, k),
                      [("bench", "matmul"), ("m", m), ("n", n), ("k", k), ("op", op)]) { precision in
                Self.gflops(m, n, k, repeats: output.repeats) {
                    BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.data, lda: ta ? m : k,
                              b: b.data, ldb: tb ? k : n, beta: 0, c: c.data, ldc: n, precision: precision)
                }
            }
        }
        // The same products as a step runs them: activations written long before they are read.
        emitRates(String(format: "step MLP d256 ff768, %d tokens, from memory", Self.stepTokens),
                  [("bench", "matmul_step"), ("tokens", Self.stepTokens)]) {
            Self.stepProducts(precision: $0, repeats: output.repeats)
        }
        // Decoding: x · wᵀ for the 64 rows of one step, against a weight packed once (Ponder's
        // kernel) and through OpenBLAS (which packs it on every call).
        if !output.json { print("decoding kernels: \(NativeKernels.name)") }
        for (m, n, k) in Self.decodeShapes {
            var rng = RNG(seed: 1)
            let x = Tensor.randn([m, k], rng: &rng), w = Tensor.randn([n, k], rng: &rng)
            let packed = PackedMatrix(w)
            let c = Tensor(uninitialized: [m, n])
            let gPacked = Self.gflops(m, n, k, repeats: output.repeats) { _ = Tensor.matmul(x, packed: packed) }
            let gBLAS = Self.gflops(m, n, k, repeats: output.repeats) {
                BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, a: x.data, lda: k,
                          b: w.data, ldb: k, beta: 0, c: c.data, ldc: n)
            }
            output.emit(
                ["bench": "matmul_packed", "m": m, "n": n, "k": k, "gflops": gPacked, "openblas_gflops": gBLAS,
                 "decode_kernels": NativeKernels.name],
                text: String(format: "x·wᵀ  %5d x %4d x %4d  %7.1f GFLOP/s packed, %7.1f OpenBLAS", m, n, k, gPacked, gBLAS))
        }
        // Decoding a large model reads every weight once per step: its bound is the weights' bytes
        // over the read bandwidth. 16 rows against 16 packed 4864 × 896 matrices (279 MB).
        let bandwidth = Self.readBandwidth(repeats: output.repeats)
        let decode = Self.decodeBandwidth(rows: 16, n: 4864, k: 896, count: 16, repeats: output.repeats)
        output.emit(["bench": "memory", "read_gb_s": bandwidth, "decode_weights_gb_s": decode, "decode_fraction": decode / bandwidth],
                    text: String(format: "memory: read %.1f GB/s; packed decoding (16 rows, 16 × 4864 x 896 weights) reads weights at %.1f GB/s, %.0f%% of it",
                                 bandwidth, decode, 100 * decode / bandwidth))
    }

    /// One row of GFLOP/s that `measure` reads: through OpenBLAS (with its kernel in use), Ponder's
    /// own float32 GEMM where the CPU runs it, and bf16 where it has a unit for it.
    func emitRates(_ label: String, _ fields: [(String, Any)], measure: (MatmulPrecision) -> Double) {
        let native = NativeKernels.trainingGEMM
        defer { NativeKernels.trainingGEMM = native }
        NativeKernels.trainingGEMM = false
        let openblas = measure(.f32)
        NativeKernels.trainingGEMM = NativeKernels.enabled
        let own = NativeKernels.enabled ? measure(.f32) : nil
        NativeKernels.trainingGEMM = native
        let bf16 = MatmulPrecision.bf16Unavailable == nil ? measure(.bf16) : nil
        var text = label + String(format: "  OpenBLAS %6.1f GFLOP/s", openblas)
        var row = fields + [("gflops", openblas), ("kernel", BLAS.info.kernel)]
        if let own {
            text += String(format: "   avx512 %6.1f", own)
            row.append(("avx512_gflops", own))
        }
        if let bf16, let unit = MatmulPrecision.bf16Unit {
            text += String(format: "   bf16 (%@) %6.1f", unit as NSString, bf16)
            row += [("bf16_gflops", bf16), ("bf16_unit", unit)]
        }
        output.emit(row, text: text)
    }

    static let stepTokens = 8192

    /// GFLOP/s of the six products of one MLP layer's training step (d 256, ff 768, `stepTokens`
    /// tokens): the forward x·Wᵀ of both projections, and the backward's dY·W and dYᵀ·X of both, each
    /// timed alone after reading a 64 MiB buffer, so that its activations come from memory as in a step
    /// (where they were written a layer or a pass before); the median of `repeats` sums of the six.
    static func stepProducts(precision: MatmulPrecision, repeats: Int) -> Double {
        let t = stepTokens, d = 256, f = 768
        var rng = RNG(seed: 3)
        let x = Tensor.randn([t, d], rng: &rng), h = Tensor.randn([t, f], rng: &rng)
        let dy = Tensor.randn([t, d], rng: &rng), dh = Tensor.randn([t, f], rng: &rng)
        let w1 = Tensor.randn([f, d], rng: &rng), w2 = Tensor.randn([d, f], rng: &rng)
        let out = Tensor(uninitialized: [t, f]), gw = Tensor(uninitialized: [f, d])
        let flush = Tensor.randn([1 << 24], rng: &rng)
        // (transA, transB, m, n, k, a, lda, b, ldb, c)
        let products: [(Bool, Bool, Int, Int, Int, Tensor, Int, Tensor, Int, Tensor)] = [
            (false, true, t, f, d, x, d, w1, d, out),     // up: x·W1ᵀ
            (false, true, t, d, f, h, f, w2, f, out),     // down: h·W2ᵀ
            (false, false, t, f, d, dy, d, w2, f, out),   // down's dX: dY·W2
            (true, false, d, f, t, dy, d, h, f, gw),      // down's dW: dYᵀ·h
            (false, false, t, d, f, dh, f, w1, d, out),   // up's dX: dH·W1
            (true, false, f, d, t, dh, f, x, d, gw),      // up's dW: dHᵀ·x
        ]
        var flushed: Float = 0
        var sums: [Double] = []
        for rep in 0...max(1, repeats) {
            var total = 0.0
            for (ta, tb, m, n, k, a, lda, b, ldb, c) in products {
                for i in stride(from: 0, to: 1 << 24, by: 16) { flushed += flush.data[i] }  // a float per cache line
                let t0 = DispatchTime.now().uptimeNanoseconds
                BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb, beta: 0,
                          c: c.data, ldc: n, precision: precision)
                total += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            if rep > 0 { sums.append(total) }  // the first pass warms the pool and the packing buffers
        }
        precondition(!flushed.isNaN)
        let flops = products.reduce(0.0) { $0 + 2 * Double($1.2) * Double($1.3) * Double($1.4) }
        return flops / sums.sorted()[sums.count / 2] / 1e9
    }

    /// Read bandwidth from memory in GB/s: every thread summing its share of a 1 GiB buffer, far past
    /// the caches; the median of `repeats` passes.
    static func readBandwidth(repeats: Int) -> Double {
        let n = 1 << 28, parts = max(1, Parallel.threads)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: n)
        buffer.initialize(repeating: 1, count: n)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: parts)
        defer { buffer.deallocate(); sums.deallocate() }
        let s = medianSeconds(repeats: repeats) {
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let raw = UnsafeRawPointer(buffer)
                var acc = SIMD16<Float>(repeating: 0)
                var i = n * p / parts / 16 * 16
                let end = p == parts - 1 ? n : n * (p + 1) / parts / 16 * 16
                while i < end {
                    acc += raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                    i += 16
                }
                sums[p] = acc.sum()
            }
        }
        precondition((0..<parts).reduce(0) { $0 + sums[$1] } > 0)
        return Double(4 * n) / s / 1e9
    }

    /// Decoding against weights that do not fit in cache: 16 rows times each of `count` packed
    /// (ff, d) matrices in turn (a 0.5B model's MLP up-projection), as GB/s of weight read.
    static func decodeBandwidth(rows: Int, n: Int, k: Int, count: Int, repeats: Int) -> Double {
        var rng = RNG(seed: 2)
        let x = Tensor.randn([rows, k], rng: &rng)
        let packed = (0..<count).map { _ in PackedMatrix(Tensor.randn([n, k], rng: &rng)) }
        let s = medianSeconds(repeats: repeats) { for w in packed { _ = Tensor.matmul(x, packed: w) } }
        return Double(4 * n * k * count) / s / 1e9
    }

    /// GFLOP/s of an (m, n, k) product `body`, the median of `repeats` timings of enough calls to
    /// be measurable (~2 GFLOP each).
    static func gflops(_ m: Int, _ n: Int, _ k: Int, repeats: Int, _ body: () -> Void) -> Double {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        let inner = max(1, Int(2e9 / flops))
        let s = medianSeconds(repeats: repeats, body: { for _ in 0..<inner { body() } })
        return flops * Double(inner) / s / 1e9
    }

    /// One decoding step of 64 sequences: d=256 projections and MLP, and d=512's MLP.
    static let decodeShapes = [(64, 256, 256), (64, 768, 256), (64, 256, 768), (64, 1536, 512), (64, 512, 1536)]
}
