// The one file that calls BLAS (STYLE.md §10).
//
// OpenBLAS chooses its compute kernel once, in a constructor that runs when the shared library is
// loaded. Debian's 0.3.21 does not recognise recent AVX-512 Xeons and falls back to a generic kernel
// about 5x slower. So Ponder never links OpenBLAS: on first use it sets OPENBLAS_CORETYPE from the
// CPU's features (unless the user set it), then dlopens the library and resolves the entry points.
// This works the same for the CLI and for the test binary.

import CKernels
import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// How OpenBLAS was loaded: which kernel runs, and why it was chosen.
public struct BLASInfo: Sendable {
    /// The kernel OpenBLAS reports (`openblas_get_corename`), e.g. "SkylakeX".
    public var kernel: String
    /// The core type Ponder asked for, or nil when it left the choice to OpenBLAS.
    public var requested: String?
    /// Why: "cpu features: avx512f+avx512bw+avx512vl+avx512dq", "OPENBLAS_CORETYPE set by user", …
    public var reason: String
    /// Threads OpenBLAS uses within one call (1 unless the user set OPENBLAS_NUM_THREADS: Ponder
    /// splits calls across its own threads instead).
    public var threads: Int
    /// The library path that was opened.
    public var library: String
    /// OpenBLAS's build description (`openblas_get_config`).
    public var config: String
}

/// The OpenBLAS core type to request for a CPU with these `/proc/cpuinfo` flags, or nil to leave
/// OpenBLAS's own detection alone.
public func chooseOpenBLASCoreType(cpuFlags: Set<String>) -> (coreType: String?, reason: String) {
    let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"]
    if avx512.allSatisfy(cpuFlags.contains) {
        return ("SkylakeX", "cpu features: " + avx512.joined(separator: "+"))
    }
    if cpuFlags.contains("avx2") && cpuFlags.contains("fma") {
        return ("Haswell", "cpu features: avx2+fma")
    }
    return (nil, "no AVX2/AVX-512: OpenBLAS's own detection")
}

/// The first value of `field` ("flags", "vendor_id", "model name") in /proc/cpuinfo, or nil where it is
/// unreadable or has no such field.
public func cpuinfoField(_ field: String) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":"),
              line[..<colon].trimmingCharacters(in: .whitespaces) == field else { continue }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// This machine's CPU as a figure should name it: /proc/cpuinfo's model name with its family and model
/// ("AMD EPYC (family 25 model 17)"), since one model name covers several cores.
public func cpuDescription() -> String {
    let name = cpuinfoField("model name") ?? "unknown CPU"
    guard let family = cpuinfoField("cpu family"), let model = cpuinfoField("model") else { return name }
    return "\(name) (family \(family) model \(model))"
}

/// The CPU feature flags of this machine (empty where /proc/cpuinfo is unreadable).
public func cpuFeatureFlags() -> Set<String> {
    Set((cpuinfoField("flags") ?? "").split(separator: " ").map(String.init))
}

/// `precision: auto`'s rule: bf16 products outrun float32 ones with AMX tiles, or with avx512_bf16 on an AMD
/// core; on an Intel core without AMX the avx512_bf16 GEMM runs at about half the float32 one (the rates per
/// CPU: docs/results.md, "Speed against the peers").
public func bf16IsFaster(amx: Bool, avx512bf16: Bool, amd: Bool) -> Bool {
    amx || (avx512bf16 && amd)
}

/// The arithmetic of matrix products. `f32` (the default) is float32 (`NativeKernels.trainingGEMM`
/// tells whether Ponder's AVX-512 GEMM or OpenBLAS's sgemm runs it). `bf16` is mixed precision in the manner of
/// `torch.autocast(dtype=torch.bfloat16)`: both operands of a product are rounded to bfloat16 and the
/// products are summed in float32, on Intel AMX tiles where the CPU has them (Sapphire Rapids and
/// later), else with avx512_bf16's dot products (Zen 4/5, Cooper Lake). It applies to the linear layers (attention projections, MLP and experts, forward and
/// backward, and their packed decoding weights); attention scores and values, the LM head and the MoE
/// router stay float32 (callers pass `.f32`), and so do weights, gradients, optimizer state and every
/// other op.
public enum MatmulPrecision: String, ConfigChoice {
    case f32, bf16

    /// Why this CPU cannot run `bf16`, or nil when it can.
    public static var bf16Unavailable: String? {
        BLAS.amxAvailable || BLAS.avx512bf16Available ? nil
            : "matmul precision bf16 needs Intel AMX (cpu flags amx_tile and amx_bf16, Linux 5.16+) or AVX-512 bfloat16 (cpu flags avx512f and avx512_bf16); this CPU or kernel has neither: use f32"
    }

    /// Which unit runs bf16 products here ("AMX", "avx512_bf16"), or nil without either.
    public static var bf16Unit: String? {
        BLAS.amxAvailable ? "AMX" : BLAS.avx512bf16Available ? "avx512_bf16" : nil
    }
}

public enum BLAS {
    /// The precision of every product that goes through `gemm` and `sgemm` (and of decoding's packed
    /// weights made after it is set). Set it once, before a run starts; `bf16` only where
    /// `MatmulPrecision.bf16Unavailable` is nil.
    nonisolated(unsafe) public static var precision: MatmulPrecision = .f32 {
        didSet { precondition(precision == .f32 || MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "") }
    }

    /// Whether this CPU and OS run AMX bfloat16 tiles (asked once).
    public static let amxAvailable: Bool = ponder_amx_available() != 0

    /// Whether this CPU runs AVX-512 bfloat16 dot products (asked once). The bf16 path without AMX.
    public static let avx512bf16Available: Bool = ponder_avx512bf16_available() != 0

    /// Whether bf16 products run faster than float32 ones here (`bf16IsFaster`), so that `precision: auto`
    /// picks them (asked once; the vendor from CPUID).
    public static let bf16Faster: Bool = bf16IsFaster(amx: amxAvailable, avx512bf16: avx512bf16Available,
                                                       amd: ponder_cpu_is_amd() != 0)

    /// Ponder's own kernels, whatever the size (so a row's values never depend on how many rows share
    /// the call): bf16 on AMX tiles or with avx512_bf16, float32 with sgemm.c; `parts` threads.
    static func ownGEMM(bf16: Bool, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parts: Int) {
        // AMX or avx512_bf16 instructions would trap on a CPU without them
        precondition(!bf16 || MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "")
        let (ta, tb) = (transA ? 1 : 0, transB ? 1 : 0) as (Int32, Int32)
        if bf16 && amxAvailable {
            ponder_gemm_bf16_parallel(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parts, concurrently)
        } else {
            ponder_sgemm_parallel(bf16 ? 1 : 0, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parts, concurrently)
        }
    }

    /// The parallel loop the C kernels call back.
    static let concurrently = Parallel.callback

    typealias SgemmFn = @convention(c) (
        CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, Int32, Int32, Int32,
        Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
        Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias CharFn = @convention(c) () -> UnsafeMutablePointer<CChar>?
    typealias IntFn = @convention(c) () -> Int32
    typealias SetIntFn = @convention(c) (Int32) -> Void

    struct Library {
        let sgemm: SgemmFn
        let setThreads: SetIntFn
        let info: BLASInfo
        /// Whether `gemm` splits calls across Ponder's threads (not when the user set OpenBLAS's own).
        let splitsGemm: Bool
    }

    static let candidates = [
        "libopenblas.so.0", "libopenblas.so",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    ]

    static let library: Library = load()

    static func load() -> Library {
        let env = ProcessInfo.processInfo.environment
        var requested: String?
        var reason: String
        // Ponder splits each GEMM across its own threads (`gemm`), so OpenBLAS runs one thread per
        // call: its idle workers otherwise spin in sched_yield and take the second core away from
        // Ponder's elementwise kernels (a third of a training step, measured with perf).
        let userThreads = env["OPENBLAS_NUM_THREADS"].flatMap { Int($0) }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil { setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) }
        if let user = env["OPENBLAS_CORETYPE"], !user.isEmpty {
            reason = "OPENBLAS_CORETYPE=\(user) set by user"
        } else {
            let choice = chooseOpenBLASCoreType(cpuFlags: cpuFeatureFlags())
            requested = choice.coreType
            reason = choice.reason
            if let core = choice.coreType { setenv("OPENBLAS_CORETYPE", core, 1) }
        }
        var handle: UnsafeMutableRawPointer?
        var opened = ""
        for path in candidates {
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) {
                handle = h
                opened = path
                break
            }
        }
        guard let handle else {
            fatalError("""
                Ponder could not open OpenBLAS (tried \(candidates.joined(separator: ", "))).
                Install it with: apt-get install -y libopenblas-dev
                """)
        }
        func symbol<T>(_ name: String, as type: T.Type) -> T {
            guard let p = dlsym(handle, name) else {
                fatalError("OpenBLAS at \(opened) lacks the symbol \(name); install libopenblas-dev 0.3.x")
            }
            return unsafeBitCast(p, to: type)
        }
        let sgemm = symbol("cblas_sgemm", as: SgemmFn.self)
        let corename = symbol("openblas_get_corename", as: CharFn.self)
        let config = symbol("openblas_get_config", as: CharFn.self)
        let getThreads = symbol("openblas_get_num_threads", as: IntFn.self)
        let setThreads = symbol("openblas_set_num_threads", as: SetIntFn.self)
        // OpenBLAS starts its workers at load (for large products, see `gemm`); every other call
        // runs on one thread.
        if userThreads == nil { setThreads(1) }
        let info = BLASInfo(
            kernel: corename().map { String(cString: $0) } ?? "unknown",
            requested: requested, reason: reason, threads: Int(getThreads()),
            library: opened, config: config().map { String(cString: $0) } ?? "")
        return Library(sgemm: sgemm, setThreads: setThreads, info: info, splitsGemm: userThreads == nil)
    }

    /// C = alpha·op(A)·op(B) + beta·C like `sgemm`, across `Parallel.threads`: Ponder's AVX-512 GEMM
    /// where it runs (`NativeKernels.trainingGEMM`; bf16 on AMX or avx512_bf16), else split by rows of C
    /// (or by columns when C is wide), each part one single-threaded OpenBLAS call. With
    /// `split: false` it is one thread (for callers already running on several threads).
    public static func gemm(
        split: Bool = true, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, precision: MatmulPrecision? = nil
    ) {
        let parts = Parallel.threads
        let lib = library
        let bf16 = (precision ?? self.precision) == .bf16
        if bf16 || NativeKernels.trainingGEMM {
            // The parts take blocks of C's rows (or its panels, when C is wide); splitting rows,
            // they pack op(B) once between them first.
            ownGEMM(bf16: bf16, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: c, ldc: ldc, parts: split && m * n * k >= 1 << 18 ? parts : 1)
            return
        }
        if !split || !lib.splitsGemm || parts <= 1 || m * n * k < 1 << 18 || (m < 2 * parts && n < 32 * parts) {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc, precision: .f32)
            return
        }
        if m * n * k >= 1 << 30 {
            // Large products: OpenBLAS's own threads share packed panels, which a split cannot
            // (2048³: ~280 against ~220 GFLOP/s). Its workers then sleep at once (THREAD_TIMEOUT).
            lib.setThreads(Int32(parts))
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc, precision: .f32)
            lib.setThreads(1)
            return
        }
        if m >= n || n < 32 * parts {
            Parallel.run(parts) { p in
                let lo = m * p / parts, hi = m * (p + 1) / parts
                if lo == hi { return }
                sgemm(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                      a: a + (transA ? lo : lo * lda), lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c + lo * ldc, ldc: ldc, precision: .f32)
            }
        } else {
            Parallel.run(parts) { p in
                // column blocks of 16 keep each part's B panel aligned to the kernel's width
                let blocks = (n + 15) / 16
                let lo = min(n, 16 * (blocks * p / parts)), hi = min(n, 16 * (blocks * (p + 1) / parts))
                if lo == hi { return }
                sgemm(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha,
                      a: a, lda: lda, b: b + (transB ? lo * ldb : lo), ldb: ldb,
                      beta: beta, c: c + lo, ldc: ldc, precision: .f32)
            }
        }
    }

    /// Loads OpenBLAS if needed and tells which kernel it runs.
    public static var info: BLASInfo { library.info }

    /// Sets the number of OpenBLAS threads (the user's OPENBLAS_NUM_THREADS is read at load time).
    public static func setThreads(_ n: Int) { library.setThreads(Int32(n)) }

    /// C = alpha * op(A) * op(B) + beta * C, all row-major, on one thread, in `precision` (nil: `BLAS.precision`).
    /// op(A) is (M, K), op(B) is (K, N), C is (M, N); lda/ldb/ldc are row strides. Float32 products run
    /// Ponder's GEMM wherever training's do (`NativeKernels.trainingGEMM`), attention's per-head ones included.
    @inline(__always)
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, precision: MatmulPrecision? = nil
    ) {
        let bf16 = (precision ?? self.precision) == .bf16
        if bf16 || NativeKernels.trainingGEMM {
            ownGEMM(bf16: bf16, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: c, ldc: ldc, parts: 1)
            return
        }
        library.sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
