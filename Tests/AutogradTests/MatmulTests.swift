import Autograd
import XCTest

final class MatmulTests: XCTestCase {
    /// Naive reference: op(a)·op(b) for 2-D row-major arrays.
    func naive(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> [Float] {
        let (m, k) = ta ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = tb ? b.shape[0] : b.shape[1]
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = ta ? a.data[p * m + i] : a.data[i * k + p]
                    let bv = tb ? b.data[j * k + p] : b.data[p * n + j]
                    s += av * bv
                }
                c[i * n + j] = s
            }
        }
        return c
    }

    func testValuesAndGradientsForEveryTransposeCombination() {
        for ta in [false, true] {
            for tb in [false, true] {
                let a = param(ta ? [5, 3] : [3, 5], seed: 30)
                let b = param(tb ? [4, 5] : [5, 4], seed: 31)
                let c = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
                XCTAssertEqual(c.shape, [3, 4])
                for (x, y) in zip(c.array, naive(a, b, ta, tb)) { XCTAssertEqual(x, y, accuracy: 1e-5) }
                Autograd.clearTape()
                GradCheck.check([a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            }
        }
    }

    func testBatchedMatmul() {
        for ta in [false, true] {
            for tb in [false, true] {
                let a = param(ta ? [2, 5, 3] : [2, 3, 5], seed: 32)
                let b = param(tb ? [2, 4, 5] : [2, 5, 4], seed: 33)
                GradCheck.check([a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            }
        }
        let a4 = param([2, 2, 3, 5], seed: 34), b4 = param([2, 2, 5, 3], seed: 35)
        GradCheck.check([a4, b4]) { Tensor.matmul($0[0], $0[1]) }
    }

    func testSharedWeightFoldsBatchIntoRows() {
        // A linear layer: x (B, T, C) · Wᵀ with W (out, in), as Hugging Face stores it.
        let x = param([2, 3, 5], seed: 36), w = param([4, 5], seed: 37)
        let y = Tensor.matmul(x, w, transposeB: true)
        XCTAssertEqual(y.shape, [2, 3, 4])
        let row1 = naive(x.reshaped([6, 5]), w, false, true)
        for (p, q) in zip(y.array, row1) { XCTAssertEqual(p, q, accuracy: 1e-5) }
        Autograd.clearTape()
        GradCheck.check([x, w]) { Tensor.matmul($0[0], $0[1], transposeB: true) }
        // A transposed left operand with a shared right one takes the per-batch path.
        let xt = param([2, 5, 3], seed: 38), w2 = param([5, 4], seed: 39)
        GradCheck.check([xt, w2]) { Tensor.matmul($0[0], $0[1], transposeA: true) }
    }

    func testLargeMatmulMatchesNaive() {
        let a = param([67, 129], seed: 40), b = param([129, 33], seed: 41)
        let c = Autograd.noGrad { Tensor.matmul(a, b) }
        for (x, y) in zip(c.array, naive(a, b, false, false)) { XCTAssertEqual(x, y, accuracy: 1e-4) }
    }
}
