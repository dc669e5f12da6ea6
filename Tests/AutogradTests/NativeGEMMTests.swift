import Autograd
import XCTest

/// Ponder's own AVX-512 float32 GEMM for training (`NativeKernels.trainingGEMM`) against OpenBLAS, and
/// the property runs rely on: every element's sum is the same whatever the thread count or row split.
final class NativeGEMMTests: XCTestCase {
    private var native = NativeKernels.trainingGEMM, threads = Parallel.threads

    override func setUpWithError() throws {
        native = NativeKernels.trainingGEMM
        threads = Parallel.threads
        try XCTSkipUnless(NativeKernels.supported, "the AVX-512 GEMM needs avx512f")
    }

    override func tearDown() {
        NativeKernels.trainingGEMM = native
        Parallel.threads = threads
        NativeKernels.trainingGEMMPackLimit = 32 << 20
    }

    /// An op(B) wider than the packing limit is packed and used one column block after another (an LM
    /// head's, say): the same bits as packing it whole, for every transpose, in float32 and bfloat16.
    func testPackingInColumnBlocksGivesTheSameBits() {
        var rng = RNG(seed: 11)
        NativeKernels.trainingGEMM = true
        let (m, n, k) = (70, 230, 600)
        let a = BF16MatmulTests.values(m * k, &rng), b = BF16MatmulTests.values(n * k, &rng), c0 = BF16MatmulTests.values(m * n, &rng)
        let precisions: [MatmulPrecision] = MatmulPrecision.bf16Unavailable == nil ? [.f32, .bf16] : [.f32]
        for precision in precisions {
            for ta in [false, true] {
                for tb in [false, true] {
                    func product(limit: Int) -> [UInt32] {
                        NativeKernels.trainingGEMMPackLimit = limit
                        var c = c0
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
                                  beta: 1, c: &c, ldc: n, precision: precision)
                        return c.map(\.bitPattern)
                    }
                    let whole = product(limit: 32 << 20)
                    XCTAssertNotEqual(whole, c0.map(\.bitPattern))
                    for limit in [1, 100_000, 250_000] {  // one panel per block, then blocks of one to three panels with a partial last one
                        XCTAssertEqual(product(limit: limit), whole, "\(precision) ta=\(ta) tb=\(tb) limit \(limit)")
                    }
                }
            }
        }
    }

    /// Every transpose combination, alpha and beta, padded leading dimensions, partial 32-column panels
    /// and 64-row blocks, one or several K chunks (256 each): within float32 rounding of OpenBLAS's
    /// result, and columns past n untouched. At k = 1000 the bits differ somewhere: the native path ran.
    func testEveryTransposeAndEdgeShapeMatchesOpenBLAS() {
        var rng = RNG(seed: 3)
        let shapes = [(17, 33, 600), (5, 200, 40), (130, 70, 300), (64, 1, 700), (1, 300, 200), (40, 96, 1000)]
        for (s, (m, n, k)) in shapes.enumerated() {
            for ta in [false, true] {
                for tb in [false, true] {
                    let alpha: Float = s % 2 == 0 ? 1 : 0.5, beta: Float = s % 3 == 0 ? 1 : 0
                    let lda = ta ? m + 3 : k + 5, ldb = tb ? k + 2 : n + 1, ldc = n + 7
                    let a = BF16MatmulTests.values((ta ? k : m) * lda, &rng), b = BF16MatmulTests.values((tb ? n : k) * ldb, &rng)
                    let c0 = BF16MatmulTests.values(m * ldc, &rng)
                    func product(native: Bool) -> [Float] {
                        NativeKernels.trainingGEMM = native
                        var c = c0
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                                  beta: beta, c: &c, ldc: ldc, precision: .f32)
                        return c
                    }
                    let got = product(native: true), want = product(native: false)
                    if k == 1000 { XCTAssertNotEqual(got, want, "the same bits as OpenBLAS: did the native GEMM run?") }
                    for i in 0..<m {
                        for j in 0..<ldc {
                            let at = i * ldc + j
                            guard j < n else {
                                XCTAssertEqual(got[at], c0[at], "column \(j) past n was written")
                                continue
                            }
                            // two float32 sums of k products of values in [-1, 1]: a few ulps of k each
                            XCTAssertEqual(got[at], want[at], accuracy: Float(k) * 4 * Float.ulpOfOne + 1e-6,
                                           "m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
    }

    /// One or two threads, and the rows computed in two calls (cut inside a 64-row block), give the same
    /// bits, with beta 0 and with beta 1 (gradient accumulation).
    func testResultsDoNotDependOnThreadsOrTheRowSplit() {
        var rng = RNG(seed: 8)
        NativeKernels.trainingGEMM = true
        for (m, n, k, ta) in [(203, 96, 1000, false), (96, 203, 700, true), (20, 600, 300, false)] {
            let a = BF16MatmulTests.values(m * k, &rng), b = BF16MatmulTests.values(n * k, &rng), c0 = BF16MatmulTests.values(m * n, &rng)
            let lda = ta ? m : k
            for beta: Float in [0, 1] {
                func product(threads: Int, rows: Range<Int>, into c: inout [Float]) {
                    Parallel.threads = threads
                    c.withUnsafeMutableBufferPointer { pc in
                        a.withUnsafeBufferPointer { pa in
                            BLAS.gemm(transA: ta, transB: true, m: rows.count, n: n, k: k, a: pa.baseAddress! + (ta ? rows.lowerBound : rows.lowerBound * lda),
                                      lda: lda, b: b, ldb: k, beta: beta, c: pc.baseAddress! + rows.lowerBound * n, ldc: n, precision: .f32)
                        }
                    }
                }
                var one = c0, two = c0, split = c0
                product(threads: 1, rows: 0..<m, into: &one)
                product(threads: 2, rows: 0..<m, into: &two)
                let cut = min(77, m / 2 + 1)
                product(threads: 2, rows: 0..<cut, into: &split)
                product(threads: 1, rows: cut..<m, into: &split)
                XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), "m=\(m) beta \(beta): 1 and 2 threads")
                XCTAssertEqual(one.map(\.bitPattern), split.map(\.bitPattern), "m=\(m) beta \(beta): rows split at \(cut)")
            }
        }
    }
}
