import Autograd
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Memory a phase frees is what the next phase's requests get, without new pages from the system.
final class BufferPoolTests: XCTestCase {
    private func minorFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }

    /// Buffers of many sizes (a GRPO run's shapes follow its completions' lengths) stay within the
    /// pool's bound of 256 MiB: the rest go to malloc, so a small policy's run does not hold gigabytes.
    func testThePoolKeepsNoMoreThanItsLimitWhateverTheSizes() {
        XCTAssertLessThanOrEqual(BufferPool.limit, 1 << 26, "the bound is 256 MiB of floats at most")
        guard BufferPool.limit <= 1 << 26 else { return }  // the loop below would touch 3 × the bound
        BufferPool.drain()
        var total = 0, size = 1 << 20
        while total < 3 * BufferPool.limit {
            _ = Tensor(shape: [size], repeating: 0)  // freed at once, to the pool while it has room
            total += size
            size += size / 7  // a new size class each time
        }
        XCTAssertGreaterThan(BufferPool.cached, 0, "the pool keeps freed buffers for reuse")
        XCTAssertLessThanOrEqual(BufferPool.cached, BufferPool.limit)
        BufferPool.drain()
        XCTAssertEqual(BufferPool.cached, 0)
    }

    /// A parameter (a tensor made with `requiresGrad`) and its gradient are allocated at their size,
    /// outside the pool, whose size classes round a request up by as much as a quarter: on a 0.5B-parameter
    /// policy that was 393 MiB for the weights and as much again for their gradients.
    func testParametersAndTheirGradientsBypassThePool() {
        BufferPool.drain()
        let n = (1 << 20) + 1  // the pool would round this up to 1.25 Mi floats
        var p: Tensor? = Tensor(shape: [n], repeating: 0, requiresGrad: true)
        p?.grad[0] = 1
        p?.releaseGrad()
        XCTAssertEqual(BufferPool.cached, 0, "the gradient went back to malloc, not to the pool")
        p = nil
        XCTAssertEqual(BufferPool.cached, 0, "so did the values")
        _ = Tensor(shape: [n], repeating: 0)  // an activation of the same size still uses the pool
        XCTAssertEqual(BufferPool.cached, (1 << 20) + (1 << 18))
        BufferPool.drain()
    }

    /// After `keepFreedMemory`, a drained 256 MiB buffer serves a later request of another size (one
    /// phase's buffers becoming the next one's) without new pages: faulting 171 MiB in afresh would
    /// take some 44,000 faults of 4 KiB (as it did before, when malloc gave such blocks back).
    func testDrainedBuffersServeOtherSizesWithoutNewPages() throws {
        #if canImport(Glibc)
        BufferPool.keepFreedMemory()
        BufferPool.drain()
        let floats = 64 << 20  // 256 MiB
        var a: Tensor? = Tensor(shape: [floats], repeating: 1)
        XCTAssertEqual(a?.data[floats - 1], 1)
        a = nil
        BufferPool.drain()
        let before = minorFaults()
        let b = Tensor(shape: [floats - floats / 3], repeating: 2)  // another size class
        XCTAssertLessThan(minorFaults() - before, 2_000, "the freed memory came back, not new pages")
        XCTAssertEqual(b.data[floats / 2], 2)
        #else
        throw XCTSkip("glibc only")
        #endif
    }
}
