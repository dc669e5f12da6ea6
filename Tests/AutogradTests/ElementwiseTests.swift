import Autograd
import XCTest

final class ElementwiseTests: XCTestCase {
    func testBinaryOpsSameShape() {
        let a = param([3, 5], seed: 1), b = param([3, 5], seed: 2, lo: 0.5, hi: 2)
        GradCheck.check([a, b]) { $0[0] + $0[1] }
        GradCheck.check([a, b]) { $0[0] - $0[1] }
        GradCheck.check([a, b]) { $0[0] * $0[1] }
        GradCheck.check([a, b]) { $0[0] / $0[1] }
        // an operand used twice: its second gradient adds to the first (+ and − fast paths)
        GradCheck.check([a, b]) { ($0[0] + $0[0]) - $0[1] }
        GradCheck.check([a, b]) { ($0[0] - $0[1]) - $0[1] }
        GradCheck.check([a, b]) { ($0[1] - $0[0]) * $0[0] + $0[0] }
    }

    /// Same-shape + and − (vector loops) give a[i] ± b[i] exactly, in the 16-lane part and the tail.
    func testSameShapeSumValues() {
        var rng = RNG(seed: 5)
        let a = Tensor.randn([3, 37], rng: &rng), b = Tensor.randn([3, 37], rng: &rng)
        let sum = a + b, difference = a - b
        for i in 0..<a.count {
            XCTAssertEqual(sum.data[i], a.data[i] + b.data[i], "element \(i)")
            XCTAssertEqual(difference.data[i], a.data[i] - b.data[i], "element \(i)")
        }
    }

    func testBroadcastingBiasAndScale() {
        // bias over the last dim, a per-row scale, a scalar, and both sides broadcasting at once
        let x = param([2, 3, 5], seed: 3)
        let bias = param([5], seed: 4), rowScale = param([3, 1], seed: 5, lo: 0.5, hi: 2)
        let s = param([1], seed: 6, lo: 0.5, hi: 2)
        GradCheck.check([x, bias]) { $0[0] + $0[1] }
        GradCheck.check([x, rowScale]) { $0[0] * $0[1] }
        GradCheck.check([x, rowScale]) { $0[0] / $0[1] }
        GradCheck.check([x, s]) { $0[0] - $0[1] }
        let p = param([2, 1, 5], seed: 7), q = param([1, 3, 1], seed: 8, lo: 0.5, hi: 2)
        GradCheck.check([p, q]) { $0[0] / $0[1] }
        GradCheck.check([q, p]) { $0[0] * $0[1] }
    }

    /// The row maximum that softmax shifts by: every length around the 16-lane step, with the
    /// largest value in the vector part, in the tail and at each end, and all-negative rows.
    func testRowMaxKernel() {
        for n in [1, 5, 15, 16, 17, 31, 32, 33, 64, 100] {
            for place in [0, n / 2, n - 1] {
                var x = (0..<n).map { -1 - Float(($0 * 37 + place) % 101) / 10 }
                x[place] = -0.5
                let got = x.withUnsafeBufferPointer { Kernels.max($0.baseAddress!, n) }
                XCTAssertEqual(got, -0.5, "n \(n), largest at \(place)")
                XCTAssertEqual(got, x.max()!)
            }
        }
    }

    func testBroadcastValues() {
        let a = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6]), b = Tensor(shape: [3], [10, 20, 30])
        XCTAssertEqual((a + b).array, [11, 22, 33, 14, 25, 36])
        let c = Tensor(shape: [2, 1], [2, 3])
        XCTAssertEqual((a * c).array, [2, 4, 6, 12, 15, 18])
        XCTAssertEqual((a * c).shape, [2, 3])
    }

    func testUnaryMath() {
        let x = param([4, 3], seed: 9)
        let pos = param([4, 3], seed: 10, lo: 0.3, hi: 3)
        GradCheck.check([x]) { $0[0].exp() }
        GradCheck.check([pos]) { $0[0].log() }
        GradCheck.check([pos]) { $0[0].sqrt() }
        GradCheck.check([x]) { -$0[0] }
        GradCheck.check([x]) { $0[0].scaled(by: -2.5) }
        GradCheck.check([x]) { $0[0].shifted(by: 0.75) }
        GradCheck.check([x]) { $0[0].silu() }
    }

    func testClampMinMaxWhere() {
        // values spaced from the clamp edges (±0.5) and with no ties between a and b
        let x = Tensor(shape: [2, 4], [-0.9, -0.3, 0.2, 0.8, 0.45, -0.6, 0.1, 1.4], requiresGrad: true)
        GradCheck.check([x]) { $0[0].clamped(-0.5, 0.5) }
        XCTAssertEqual(x.clamped(-0.5, 0.5).array, [-0.5, -0.3, 0.2, 0.5, 0.45, -0.5, 0.1, 0.5])
        let y = Tensor(shape: [2, 4], [-0.5, 0.3, -0.2, 1.2, 0.0, -0.9, 0.6, 0.9], requiresGrad: true)
        GradCheck.check([x, y]) { Tensor.minimum($0[0], $0[1]) }
        GradCheck.check([x, y]) { Tensor.maximum($0[0], $0[1]) }
        XCTAssertEqual(Tensor.minimum(x, y).array, [-0.9, -0.3, -0.2, 0.8, 0.0, -0.9, 0.1, 0.9])
        let mask = Tensor(shape: [2, 4], [1, 0, 0, 1, 1, 1, 0, 0])
        GradCheck.check([x, y]) { Tensor.where_(mask, $0[0], $0[1]) }
        XCTAssertEqual(Tensor.where_(mask, x, y).array, [-0.9, 0.3, -0.2, 0.8, 0.45, -0.6, 0.6, 0.9])
    }

    func testLargeTensorsUseTheParallelPathCorrectly() {
        // 300×500 crosses the threshold where loops split across threads
        let a = param([300, 500], seed: 12), b = param([500], seed: 13)
        let y = (a * b).silu()
        for i in stride(from: 0, to: y.count, by: 997) {
            let v = a.data[i] * b.data[i % 500]
            XCTAssertEqual(y.data[i], v / (1 + exp(-v)), accuracy: 1e-6)
        }
        y.sum().backward()
        // d/db of Σ silu(a·b) = Σ_rows silu'(a·b)·a
        var expected: Double = 0
        for r in 0..<300 {
            let av = a.data[r * 500 + 7], v = av * b.data[7], s = 1 / (1 + exp(-v))
            expected += Double(s * (1 + v * (1 - s)) * av)
        }
        XCTAssertEqual(Double(b.gradArray[7]), expected, accuracy: 1e-3)
    }
}
