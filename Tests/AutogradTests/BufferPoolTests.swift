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
