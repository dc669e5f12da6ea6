import Autograd
import XCTest

final class RoutingTests: XCTestCase {
    func testSigmoid() {
        GradCheck.check([param([3, 5], seed: 1, lo: -3, hi: 3)]) { $0[0].sigmoid() }
        XCTAssertEqual(Tensor(shape: [1], [0]).sigmoid().item, 0.5)
    }

    func testSoftmaxGradientAndRowsSumToOne() {
        let x = param([4, 6], seed: 2, lo: -2, hi: 2)
        GradCheck.check([x]) { Tensor.softmax($0[0]) }
        let y = Tensor.softmax(x.detached())
        for r in 0..<4 { XCTAssertEqual((0..<6).map { y.data[r * 6 + $0] }.reduce(0, +), 1, accuracy: 1e-6) }
        GradCheck.sameAs([x], fused: { Tensor.softmax($0[0]) }, reference: {
            let e = $0[0].exp()
            return e / e.sum(axis: 1, keepDim: true)
        })
    }

    /// Rows repeat (a token taken by two experts) and one output row receives nothing.
    func testCombineRowsGradientAndValues() {
        let y = param([5, 3], seed: 3), w = param([5], seed: 4)
        let rows: [Int32] = [2, 0, 2, 1, 0]
        GradCheck.check([y, w]) { Tensor.combineRows($0[0], weights: $0[1], rows: rows, count: 4) }
        let out = Tensor.combineRows(y.detached(), weights: w.detached(), rows: rows, count: 4)
        for c in 0..<3 {
            XCTAssertEqual(out.data[2 * 3 + c], w.data[0] * y.data[c] + w.data[2] * y.data[2 * 3 + c], accuracy: 1e-6)
            XCTAssertEqual(out.data[3 * 3 + c], 0)
        }
    }

    func testGatherRowsGradient() {
        GradCheck.check([param([4, 3], seed: 5)]) { Tensor.gatherRows($0[0], [3, 0, 3]) }
    }

    /// Values narrower than keys, with left padding; and with Dv = Dk it equals `causalAttention`.
    func testAttentionWithNarrowerValues() {
        let q = param([2, 2, 5, 4], seed: 6), k = param([2, 2, 5, 4], seed: 7), v = param([2, 2, 5, 3], seed: 8)
        GradCheck.check([q, k, v]) { Tensor.causalAttention($0[0], $0[1], $0[2], scale: 0.7, keyStart: [0, 2]) }
        let v4 = param([2, 2, 5, 4], seed: 9)
        GradCheck.sameAs([q, k, v4], fused: { Tensor.causalAttention($0[0], $0[1], $0[2], scale: 0.5, keyStart: [1, 0]) },
                         reference: { Tensor.causalAttention($0[0], $0[1], $0[2], keyStart: [1, 0]) })
    }
}
