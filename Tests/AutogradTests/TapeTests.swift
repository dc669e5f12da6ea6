import Autograd
import XCTest

final class TapeTests: XCTestCase {
    /// Backward drops each tape entry once it has run, so what only that entry held (here b, and the
    /// gradient it received) is freed before older entries run, such as a checkpointed block's
    /// recomputation: a large model's backward no longer holds every activation's gradient to the end.
    func testBackwardFreesWhatOnlyAFinishedEntryHeld() {
        let x = Tensor(shape: [3], [1, 2, 3], requiresGrad: true)
        weak var weakB: Tensor?
        var calls = 0
        var bAliveAtRecompute: Bool?
        let y = Autograd.checkpoint(x) { x in
            calls += 1
            if calls == 2 { bAliveAtRecompute = weakB != nil }  // the second call is the backward's
            return x * x
        }
        let loss: Tensor = {
            let b = y * Tensor(shape: [3], [1, 1, 1])
            weakB = b
            return b.sum()
        }()
        XCTAssertNotNil(weakB, "the tape keeps b alive until backward")
        loss.backward()
        XCTAssertEqual(calls, 2)
        XCTAssertEqual(bAliveAtRecompute, false, "b was freed when the entries that held it had run")
        XCTAssertEqual(x.gradArray, [2, 4, 6])
    }

    func testGradientsAccumulateAcrossBackwardCallsUntilZeroed() {
        let w = param([3], seed: 70)
        let x = Tensor(shape: [3], [1, 2, 3])
        (w * x).sum().backward()
        XCTAssertEqual(w.gradArray, [1, 2, 3])
        (w * x).sum().backward()
        XCTAssertEqual(w.gradArray, [2, 4, 6])
        w.zeroGrad()
        XCTAssertEqual(w.gradArray, [0, 0, 0])
    }

    func testNoGradRecordsNothing() {
        let w = param([4], seed: 71)
        Autograd.clearTape()
        let y = Autograd.noGrad { (w * w).exp().sum() }
        XCTAssertEqual(Autograd.pendingOps, 0)
        XCTAssertFalse(y.requiresGrad)
        let z = (w * w).sum()
        XCTAssertEqual(Autograd.pendingOps, 2)
        XCTAssertTrue(z.requiresGrad)
        z.backward()
        XCTAssertEqual(Autograd.pendingOps, 0)
    }

    func testConstantsGetNoGradient() {
        let w = param([2], seed: 72)
        let c = Tensor(shape: [2], [5, 6])
        (w * c).sum().backward()
        XCTAssertFalse(c.hasGrad)
        XCTAssertEqual(w.gradArray, [5, 6])
    }

    func testSharedInputAddsBothPaths() {
        // y = x·x + x: dy/dx = 2x + 1
        let x = Tensor(shape: [2], [3, -1], requiresGrad: true)
        (x * x + x).sum().backward()
        XCTAssertEqual(x.gradArray, [7, -1])
    }

    /// A checkpointed block leaves one tape entry instead of its ops, and gives the same gradients to
    /// its input and to the parameters it reads, bit for bit.
    func testCheckpointRecomputesTheBlockWithTheSameGradients() {
        let w = param([3], seed: 73), v = param([3], seed: 74)
        let x0 = Tensor(shape: [3], [0.5, -1, 2], requiresGrad: true)
        func block(_ x: Tensor) -> Tensor { ((x * w).exp() * v + x).silu() }
        func run(checkpointed: Bool) -> (grads: [[Float]], pending: Int) {
            for t in [w, v, x0] { t.zeroGrad() }
            Autograd.clearTape()
            let x = x0 * 2
            let y = checkpointed ? Autograd.checkpoint(x) { block($0) } : block(x)
            let z = (y * y).sum()
            let pending = Autograd.pendingOps
            z.backward()
            return ([w.gradArray, v.gradArray, x0.gradArray], pending)
        }
        let plain = run(checkpointed: false), recomputed = run(checkpointed: true)
        XCTAssertEqual(recomputed.grads, plain.grads)
        XCTAssertTrue(plain.grads.allSatisfy { $0.contains { $0 != 0 } })
        XCTAssertEqual(recomputed.pending, 4, "x0·2, the checkpoint, y·y, sum: the block's five ops must not be on the tape")
        XCTAssertEqual(plain.pending, 8)
        XCTAssertEqual(Autograd.pendingOps, 0)
        // Without recording the checkpoint is just the block.
        let quiet = Autograd.noGrad { Autograd.checkpoint(x0) { block($0) } }
        XCTAssertEqual(quiet.array, Autograd.noGrad { block(x0) }.array)
        XCTAssertFalse(quiet.requiresGrad)
    }

    func testRNGIsDeterministicAndStreamsDiffer() {
        var a = RNG(seed: 42, stream: "init"), b = RNG(seed: 42, stream: "init"), c = RNG(seed: 42, stream: "sampling")
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var r = RNG(seed: 1)
        let normals = (0..<20_000).map { _ in r.normal() }
        let mean = normals.reduce(0, +) / 20_000
        let variance = normals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20_000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
        XCTAssertTrue((0..<1000).allSatisfy { _ in (0..<7).contains(r.int(below: 7)) })
    }
}
