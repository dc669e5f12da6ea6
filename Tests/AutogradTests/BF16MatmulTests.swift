import Autograd
import XCTest

/// Mixed-precision products (`BLAS.precision = .bf16`: Intel AMX tiles, or avx512_bf16 without AMX) against a double-precision sum
/// of the bfloat16-rounded operands, and the properties training relies on: results independent of
/// how rows are split, decoding's packed weights equal to the training product, gradients near float32's.
final class BF16MatmulTests: XCTestCase {
    private var precision = BLAS.precision, threads = Parallel.threads

    override func setUpWithError() throws {
        precision = BLAS.precision
        threads = Parallel.threads
        try XCTSkipUnless(MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "")
    }

    override func tearDown() {
        BLAS.precision = precision
        Parallel.threads = threads
    }

    /// Round to nearest even bfloat16 (and flush denormals, as VCVTNE2PS2BF16 does).
    static func bf16(_ x: Float) -> Float {
        if x.bitPattern & 0x7f80_0000 == 0 { return 0 }
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000)
    }

    static func values(_ n: Int, _ rng: inout RNG) -> [Float] { (0..<n).map { _ in Float(rng.uniform() * 2 - 1) } }

    /// Every transpose combination, alpha and beta, padded leading dimensions, and shapes with partial
    /// tiles, one or several K chunks (768 per chunk) and k = 0.
    func testEveryTransposeAndEdgeShapeMatchesTheRoundedReference() {
        var rng = RNG(seed: 11)
        let shapes = [(1, 1, 1), (17, 33, 45), (5, 200, 31), (40, 70, 800), (33, 48, 1600), (9, 17, 0)]
        for (s, (m, n, k)) in shapes.enumerated() {
            for ta in [false, true] {
                for tb in [false, true] {
                    let alpha: Float = s % 2 == 0 ? 1 : 0.5, beta: Float = s % 3 == 0 ? 1 : 0
                    let lda = ta ? m + 3 : k + 5, ldb = tb ? k + 2 : n + 1, ldc = n + 7
                    let a = Self.values((ta ? k : m) * lda, &rng), b = Self.values((tb ? n : k) * ldb, &rng)
                    var c = Self.values(m * ldc, &rng)
                    let before = c
                    BLAS.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                               beta: beta, c: &c, ldc: ldc, precision: .bf16)
                    for i in 0..<m {
                        for j in 0..<ldc {
                            guard j < n else {
                                XCTAssertEqual(c[i * ldc + j], before[i * ldc + j], "column \(j) past n was written")
                                continue
                            }
                            var sum = 0.0, size = 0.0
                            for q in 0..<k {
                                let x = Double(Self.bf16(ta ? a[q * lda + i] : a[i * lda + q]))
                                let y = Double(Self.bf16(tb ? b[j * ldb + q] : b[q * ldb + j]))
                                sum += x * y
                                size += abs(x * y)
                            }
                            let want = Double(alpha) * sum + Double(beta) * Double(before[i * ldc + j])
                            // float32 accumulation of k exact bf16 products: a few ulps of Σ|x·y| per term.
                            let bound = Double(Float.ulpOfOne) * (size * Double(k + 2) / 4 + abs(want)) + 1e-30
                            XCTAssertLessThanOrEqual(abs(Double(c[i * ldc + j]) - want), bound,
                                                     "m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
    }

    /// The bf16 product really rounds its operands: 1 + 2⁻¹⁰ is 1 in bfloat16, so 1·(1 + 2⁻¹⁰) gives 1,
    /// where float32 gives 1 + 2⁻¹⁰.
    func testOperandsAreRoundedToBFloat16() {
        let a: [Float] = [1], b: [Float] = [1 + 1.0 / 1024]
        var c: [Float] = [0]
        BLAS.sgemm(transA: false, transB: false, m: 1, n: 1, k: 1, a: a, lda: 1, b: b, ldb: 1, beta: 0, c: &c, ldc: 1, precision: .bf16)
        XCTAssertEqual(c[0], 1)
        BLAS.sgemm(transA: false, transB: false, m: 1, n: 1, k: 1, a: a, lda: 1, b: b, ldb: 1, beta: 0, c: &c, ldc: 1, precision: .f32)
        XCTAssertEqual(c[0], 1 + 1.0 / 1024)
    }

    /// Splitting the rows across threads (at boundaries that cut 32-row blocks) changes no bit, with
    /// beta 0 and with beta 1 (gradient accumulation): runs are reproducible whatever the thread count.
    func testResultsDoNotDependOnTheRowSplit() {
        var rng = RNG(seed: 5)
        let (m, n, k) = (203, 96, 1000)
        let a = Self.values(m * k, &rng), b = Self.values(n * k, &rng), c0 = Self.values(m * n, &rng)
        for beta: Float in [0, 1] {
            var whole = c0, split = c0
            BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: beta, c: &whole, ldc: n,
                       precision: .bf16)
            Parallel.threads = 2
            BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: beta, c: &split, ldc: n,
                      precision: .bf16)
            XCTAssertEqual(whole.map(\.bitPattern), split.map(\.bitPattern), "beta \(beta)")
            var rows = c0  // rows 0..<77 alone, then 77..<203
            BLAS.sgemm(transA: false, transB: true, m: 77, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: beta, c: &rows, ldc: n,
                       precision: .bf16)
            rows.withUnsafeMutableBufferPointer { p in
                a.withUnsafeBufferPointer { pa in
                    BLAS.sgemm(transA: false, transB: true, m: m - 77, n: n, k: k, a: pa.baseAddress! + 77 * k, lda: k, b: b, ldb: k,
                               beta: beta, c: p.baseAddress! + 77 * n, ldc: n, precision: .bf16)
                }
            }
            XCTAssertEqual(whole.map(\.bitPattern), rows.map(\.bitPattern), "beta \(beta), rows split at 77")
        }
    }

    /// Decoding's packed bf16 weights give exactly the training product x · wᵀ, on any number of rows
    /// and threads: cached decoding sees the same linear layers as the full forward.
    func testPackedWeightsEqualTheTrainingProduct() {
        var rng = RNG(seed: 9)
        BLAS.precision = .bf16
        for (m, n, k) in [(1, 5, 3), (64, 100, 96), (70, 257, 40), (64, 64, 1600)] {
            let x = Tensor(shape: [m, k], Self.values(m * k, &rng)), w = Tensor(shape: [n, k], Self.values(n * k, &rng))
            let want = Autograd.noGrad { Tensor.matmul(x, w, transposeB: true) }
            let packed = PackedMatrix(w)
            for t in [1, 2] {
                Parallel.threads = t
                let got = Tensor.matmul(x, packed: packed)
                XCTAssertEqual(got.array.map(\.bitPattern), want.array.map(\.bitPattern), "m=\(m) n=\(n) k=\(k) threads \(t)")
            }
            // An f32 packing of the same weight is the float32 product, which differs.
            let f32 = Tensor.matmul(x, packed: PackedMatrix(w, precision: .f32))
            if k > 3 { XCTAssertNotEqual(f32.array, want.array) }
        }
    }

    /// A linear layer's gradients in bf16 stay within bfloat16's rounding of float32's (relative error
    /// of the whole gradient under 1%), and are not float32's (the bf16 path really ran).
    func testLinearGradientsAreCloseToFloat32() {
        var rng = RNG(seed: 2)
        let (m, n, k) = (96, 80, 300)
        let xv = Self.values(m * k, &rng), wv = Self.values(n * k, &rng), r = Self.values(m * n, &rng)
        func grads(_ p: MatmulPrecision) -> (out: [Float], dx: [Float], dw: [Float]) {
            let x = Tensor(shape: [m, k], xv, requiresGrad: true), w = Tensor(shape: [n, k], wv, requiresGrad: true)
            let out = Tensor.matmul(x, w, transposeB: true, precision: p)
            (out * Tensor(shape: [m, n], r)).sum().backward()
            return (out.array, x.gradArray, w.gradArray)
        }
        let f = grads(.f32), h = grads(.bf16)
        func relative(_ a: [Float], _ b: [Float]) -> Float {
            let diff = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), size = b.map { $0 * $0 }.reduce(0, +)
            return (diff / size).squareRoot()
        }
        for (name, a, b) in [("output", h.out, f.out), ("dx", h.dx, f.dx), ("dw", h.dw, f.dw)] {
            let e = relative(a, b)
            XCTAssertLessThan(e, 1e-2, name)
            XCTAssertGreaterThan(e, 1e-6, "\(name) equals float32's: the bf16 path did not run")
        }
    }
}
