// Ponder's own AVX-512 kernels for cached decoding (CKernels), chosen at run time from the CPU's
// features like the OpenBLAS kernel: without avx512f, or with PONDER_NATIVE_KERNELS=0, the same
// calls run OpenBLAS and the portable Swift loops instead.
//
// - A weight packed once for the many products x · wᵀ of one sampling call (`PackedMatrix`).
//   OpenBLAS packs both operands on every call; with the 64 rows of a decode step that copy of the
//   weight cost about half as much as the product itself (perf record of `ponder bench generate`
//   at d=512: sgemm_incopy 16% of samples beside the 34% kernel).
// - One query row of decoding attention (`Kernels.attendRow`), which streams the cached keys and
//   values with prefetching.

import CKernels
import Foundation

public enum NativeKernels {
    /// Whether the AVX-512 kernels run (else OpenBLAS and Swift loops).
    nonisolated(unsafe) public static var enabled: Bool = {
        if ProcessInfo.processInfo.environment["PONDER_NATIVE_KERNELS"] == "0" { return false }
        return supported
    }()

    /// Whether the float32 products of training (`BLAS.gemm`, and `BLAS.sgemm`'s single-threaded ones such
    /// as attention's per head) run Ponder's AVX-512 GEMM (sgemm.c) rather than OpenBLAS: wherever the
    /// AVX-512 kernels run, whichever kernel OpenBLAS picked. Against OpenBLAS's Haswell kernel on an
    /// AVX-512 CPU it is about twice as fast; against OpenBLAS's own AVX-512 kernel it is about as fast per
    /// product and faster in a GRPO step (its parts share one packing; docs/results.md), and a run's sums
    /// do not then depend on `OPENBLAS_CORETYPE`. PONDER_GEMM=native or PONDER_GEMM=openblas decides instead.
    nonisolated(unsafe) public static var trainingGEMM: Bool = {
        switch ProcessInfo.processInfo.environment["PONDER_GEMM"] {
        case "openblas": return false
        default: return enabled
        }
    }()

    /// The most bytes of op(B) each thread of the training GEMM packs at a time (32 MiB): a wider
    /// operand, such as an LM head over a large vocabulary, is packed one column block after another
    /// rather than copied whole per thread. Results do not depend on it; tests set it small.
    public static var trainingGEMMPackLimit: Int {
        get { let old = ponder_sgemm_set_pack_limit(1); ponder_sgemm_set_pack_limit(old); return old }
        set { ponder_sgemm_set_pack_limit(newValue) }
    }

    /// Names the training GEMM in use, for logs and benchmark output.
    public static var gemmName: String {
        if trainingGEMM { return "avx512" }
        return supported ? "OpenBLAS (PONDER_GEMM=openblas or PONDER_NATIVE_KERNELS=0)" : "OpenBLAS"
    }

    /// Whether this CPU can run them at all (asked once).
    public static let supported: Bool = ponder_packed_gemm_available() != 0

    /// Names the decoding kernels in use, for logs and benchmark output.
    public static var name: String {
        if enabled { return "avx512 (cpu features: avx512f)" }
        return supported ? "openblas+swift (PONDER_NATIVE_KERNELS=0)" : "openblas+swift (no avx512f)"
    }
}

/// A (N, K) weight prepared for repeated `Tensor.matmul(x, packed:)` = x · wᵀ. It copies the weight's
/// values when made: later changes to the tensor are not seen (make a new one after an update).
public final class PackedMatrix {
    public let rows: Int, cols: Int
    /// A copy of the weight when the packed kernel is off.
    let weight: Tensor?
    let panels: UnsafeMutablePointer<Float>?
    /// The weight in bfloat16, when packed for bf16 products: AMX tiles, or sgemm.c's panels without AMX.
    let tiles: UnsafeMutablePointer<UInt16>?
    /// The precision the products keep (fixed when packed).
    let precision: MatmulPrecision

    /// Packs `w` for products in `precision` (nil: `BLAS.precision` now).
    public init(_ w: Tensor, precision: MatmulPrecision? = nil) {
        precondition(w.rank == 2, "PackedMatrix needs a matrix, got \(w.shape)")
        rows = w.dim(0)
        cols = w.dim(1)
        self.precision = precision ?? BLAS.precision
        if self.precision == .bf16 && !BLAS.amxAvailable {  // avx512_bf16: sgemm.c's panels, packed once
            precondition(MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "")
            let t = UnsafeMutablePointer<UInt16>.allocate(capacity: ponder_sgemm_pack_bf16_count(rows, cols))
            ponder_sgemm_pack_bf16(w.data, rows, cols, cols, t)
            (tiles, panels, weight) = (t, nil, nil)
            return
        }
        if self.precision == .bf16 {
            let t = UnsafeMutablePointer<UInt16>.allocate(capacity: ponder_pack_bf16_count(rows, cols))
            ponder_pack_bf16(w.data, rows, cols, cols, t)
            tiles = t
            panels = nil
            weight = nil
            return
        }
        tiles = nil
        if NativeKernels.enabled {
            let p = (rows + Int(PONDER_PANEL) - 1) / Int(PONDER_PANEL)
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: p * Int(PONDER_PANEL) * cols)
            ponder_pack_transposed(w.data, rows, cols, cols, buf)
            panels = buf
            weight = nil
        } else {
            panels = nil
            weight = w.copy()  // the same snapshot semantics as the packed copy
        }
    }

    deinit {
        panels?.deallocate()
        tiles?.deallocate()
    }
}

extension Tensor {
    /// x · wᵀ for x (…, K) and a packed (N, K) weight, giving (…, N). Not recorded for gradients:
    /// for inference (cached decoding) only. Each output element is one multiply-add chain over K
    /// in order, so results do not depend on the number of rows or threads.
    public static func matmul(_ x: Tensor, packed w: PackedMatrix) -> Tensor {
        let k = x.dim(-1)
        precondition(k == w.cols, "matmul inner dimensions differ: \(x.shape) · (\(w.rows), \(w.cols))ᵀ")
        let m = x.count / k, n = w.rows
        if let tiles = w.tiles {  // bf16: AMX tiles, or avx512_bf16 panels
            let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])
            let parts = Parallel.threads > 1 && m * k * n >= 65_536 ? Parallel.threads : 1
            if BLAS.amxAvailable {
                ponder_gemm_bf16_packed(x.data, m, k, k, tiles, n, out.data, n, parts, BLAS.concurrently)
            } else {
                ponder_sgemm_bf16_packed(x.data, m, k, k, tiles, n, out.data, n, parts, BLAS.concurrently)
            }
            return out
        }
        guard let panels = w.panels else {
            return Autograd.noGrad { Tensor.matmul(x, w.weight!, transposeB: true, precision: w.precision) }
        }
        let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])
        let count = (n + Int(PONDER_PANEL) - 1) / Int(PONDER_PANEL)
        let a = x.data, c = out.data
        Parallel.forRanges(count, cost: m * k * Int(PONDER_PANEL)) { r in
            ponder_gemm_packed(a, m, k, k, panels, n, r.lowerBound, r.upperBound, c, n)
        }
        return out
    }
}

extension Kernels {
    /// One query row of cached attention: p[j] = softmax over keys start...end of scale·(q·keys[j]),
    /// out = Σ p[j]·values[j]; keys and values are rows of d floats, p scratch of ≥ end + 1 floats.
    /// Slots below `split` are read from `prefixKeys` and `prefixValues` instead (the same slot numbering:
    /// a group's shared prompt held in another row of the cache); split ≤ start reads no prefix.
    @inline(__always)
    public static func attendRow(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                 prefixKeys: UnsafePointer<Float>? = nil, prefixValues: UnsafePointer<Float>? = nil, split: Int = 0,
                                 start: Int, end: Int, d: Int, scale: Float,
                                 p: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        precondition(split <= start || (prefixKeys != nil && prefixValues != nil), "attendRow: slots below \(split) need a prefix")
        if NativeKernels.enabled && d % 16 == 0 {
            var (qs, ks, vs, os): (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) =
                (q, keys, values, out)
            var (pk, pv) = (prefixKeys, prefixValues)
            ponder_attend_rows(1, &qs, &ks, &vs, &pk, &pv, split, start, end, d, scale, p, end + 1, &os)
            return
        }
        out.update(repeating: 0, count: d)
        softmaxOver(start, end, p, score: { dot(q, ($0 < split ? prefixKeys! : keys) + $0 * d, d) * scale },
                    accumulate: { axpy($1, ($0 < split ? prefixValues! : values) + $0 * d, out, d) })
    }

    /// `attendRow` for n ≤ 4 query rows (heads of one sequence) over the same slots start...end, row h
    /// reading q[h], keys[h], values[h] (below `split`, prefixKeys[h] and prefixValues[h]) and writing
    /// out[h], with scratch p + h·pStride: each row's result is `attendRow`'s, bit for bit; the native
    /// kernel overlaps the rows' chains of multiply-adds.
    @inline(__always)
    public static func attendRows(_ n: Int, q: UnsafePointer<UnsafePointer<Float>?>, keys: UnsafePointer<UnsafePointer<Float>?>,
                                  values: UnsafePointer<UnsafePointer<Float>?>,
                                  prefixKeys: UnsafePointer<UnsafePointer<Float>?>? = nil,
                                  prefixValues: UnsafePointer<UnsafePointer<Float>?>? = nil, split: Int = 0,
                                  start: Int, end: Int, d: Int, scale: Float,
                                  p: UnsafeMutablePointer<Float>, pStride: Int, out: UnsafePointer<UnsafeMutablePointer<Float>?>) {
        precondition(n >= 1 && n <= 4, "attendRows: 1 to 4 rows, got \(n)")
        precondition(split <= start || (prefixKeys != nil && prefixValues != nil), "attendRows: slots below \(split) need a prefix")
        if NativeKernels.enabled && d % 16 == 0 {
            ponder_attend_rows(n, q, keys, values, prefixKeys, prefixValues, split, start, end, d, scale, p, pStride, out)
            return
        }
        for h in 0..<n {
            attendRow(q: q[h]!, keys: keys[h]!, values: values[h]!, prefixKeys: prefixKeys?[h], prefixValues: prefixValues?[h],
                      split: split, start: start, end: end, d: d, scale: scale, p: p + h * pStride, out: out[h]!)
        }
    }

    /// One cached-decoding attention row in portable Swift: p[j] = softmax over keys start...end of
    /// `score(j)`, then `accumulate(j, p[j])` for each key (`attendRow`'s fallback and MLA's cached
    /// steps share it). Inlinable, so that the callers' closures inline across modules.
    @inlinable @inline(__always)
    public static func softmaxOver(_ start: Int, _ end: Int, _ p: UnsafeMutablePointer<Float>, score: (Int) -> Float,
                                   accumulate: (Int, Float) -> Void) {
        var mx = -Float.infinity
        for j in start...end {
            p[j] = score(j)
            mx = Swift.max(mx, p[j])
        }
        var sum: Float = 0
        for j in start...end {
            p[j] = Foundation.exp(p[j] - mx)
            sum += p[j]
        }
        let inv = 1 / sum
        for j in start...end { accumulate(j, p[j] * inv) }
    }
}
