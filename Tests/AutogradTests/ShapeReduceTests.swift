import Autograd
import XCTest

final class ShapeReduceTests: XCTestCase {
    func testSumAndMeanOverAxes() {
        let x = param([2, 3, 5], seed: 20)
        for axis in [0, 1, 2, -1] {
            GradCheck.check([x]) { $0[0].sum(axis: axis) }
            GradCheck.check([x]) { $0[0].mean(axis: axis, keepDim: true) }
        }
        GradCheck.check([x]) { $0[0].sum() }
        GradCheck.check([x]) { $0[0].mean() }
        let t = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.sum(axis: 0).array, [5, 7, 9])
        XCTAssertEqual(t.sum(axis: 1, keepDim: true).shape, [2, 1])
        XCTAssertEqual(t.mean(axis: 1).array, [2, 5])
        XCTAssertEqual(t.sum().item, 21)
    }

    func testSumIsIndependentOfThreadCount() {
        let x = param([1000, 257], seed: 21)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = Autograd.noGrad { x.sum().item }
        Parallel.threads = 2
        let two = Autograd.noGrad { x.sum().item }
        XCTAssertEqual(one.bitPattern, two.bitPattern)
    }

    func testReshapeIsAViewThatSharesGradients() {
        let x = param([2, 6], seed: 22)
        let w = param([3, 4], seed: 23)
        GradCheck.check([x, w]) { $0[0].reshaped([3, 4]) * $0[1] }
        GradCheck.check([x, w]) { ($0[0].reshaped([-1, 4]) * $0[1]).reshaped([12]) }
        let v = x.reshaped([4, 3])
        XCTAssertEqual(v.array, x.array)
        XCTAssertTrue(v.storage === x.storage)
    }

    func testTransposeAllPairs() {
        let x = param([2, 3, 4], seed: 24)
        GradCheck.check([x]) { $0[0].transposed(0, 1) }
        GradCheck.check([x]) { $0[0].transposed(1, 2) }
        GradCheck.check([x]) { $0[0].transposed(0, 2) }
        let y = param([2, 3, 2, 5], seed: 25)
        GradCheck.check([y]) { $0[0].transposed(1, 2) }
        GradCheck.check([y]) { $0[0].transposed(1, 3) }
        let m = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m.transposed(0, 1).array, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(m.transposed(0, 1).shape, [3, 2])
    }

    func testSliceAndConcat() {
        let x = param([3, 7], seed: 26)
        GradCheck.check([x]) { $0[0].slice(axis: 1, 2..<5) }
        GradCheck.check([x]) { $0[0].slice(axis: 0, 1..<3) }
        let a = param([2, 3], seed: 27), b = param([2, 4], seed: 28), c = param([1, 3], seed: 29)
        GradCheck.check([a, b]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        GradCheck.check([a, c]) { Tensor.concat([$0[0], $0[1], $0[0]], axis: 0) }
        let m = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m.slice(axis: 1, 1..<3).array, [2, 3, 5, 6])
        XCTAssertEqual(Tensor.concat([m, m.slice(axis: 1, 0..<1)], axis: 1).array, [1, 2, 3, 1, 4, 5, 6, 4])
    }

    /// gatherRows copies the picked rows, and backward sums the gradients of a row picked more than
    /// once (a shared prompt's token read by every row of its group).
    func testGatherRowsPicksRowsAndSumsTheGradientsOfRepeats() {
        let m = Tensor(shape: [3, 2], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m.gatherRows([2, 0, 2]).array, [5, 6, 1, 2, 5, 6])
        let x = param([4, 5], seed: 30)
        GradCheck.check([x]) { $0[0].gatherRows([3, 1, 3, 3, 0]) }
        x.zeroGrad()
        x.gatherRows([1, 1, 1]).sum().backward()
        XCTAssertEqual(Array(x.gradArray[5..<10]), [Float](repeating: 3, count: 5))
        XCTAssertEqual(x.gradArray[0..<5].reduce(0, +) + x.gradArray[10...].reduce(0, +), 0)
    }
}
