import Autograd
import Dispatch
import XCTest

/// The thread pool behind Parallel (Sources/CKernels/pool.c): every part runs exactly once, whatever
/// the thread count, nesting, or a second caller at the same time.
final class ParallelTests: XCTestCase {
    private var threads = Parallel.threads
    override func setUp() { threads = Parallel.threads }
    override func tearDown() { Parallel.threads = threads }

    /// Counts how often each part ran, from any thread.
    private final class Counts: @unchecked Sendable {
        let lock = NSLock()
        var runs: [Int]
        init(_ n: Int) { runs = Array(repeating: 0, count: n) }
        func add(_ p: Int) { lock.lock(); runs[p] += 1; lock.unlock() }
    }

    func testEveryPartRunsOnceForAnyThreadCount() {
        for t in [1, 2, 3, 4] {
            Parallel.threads = t
            for parts in [0, 1, 2, 3, 7, 64, 1000] {
                for _ in 0..<20 {  // many jobs back to back: a worker must never carry a claim into the next
                    let counts = Counts(parts)
                    Parallel.run(parts) { counts.add($0) }
                    XCTAssertEqual(counts.runs, Array(repeating: 1, count: parts), "threads \(t), parts \(parts)")
                }
            }
        }
    }

    func testWorkersSeeTheCallersWritesAndTheCallerSeesTheirs() {
        Parallel.threads = 2
        let n = 4096
        let input = UnsafeMutablePointer<Int>.allocate(capacity: n), output = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { input.deallocate(); output.deallocate() }
        for round in 0..<200 {
            for i in 0..<n { input[i] = i &* 31 &+ round }
            Parallel.run(16) { p in
                for i in (n * p / 16)..<(n * (p + 1) / 16) { output[i] = input[i] &* 2 }
            }
            for i in stride(from: 0, to: n, by: 97) { XCTAssertEqual(output[i], (i &* 31 &+ round) &* 2) }
        }
    }

    func testANestedLoopRunsInlineAndCompletes() {
        Parallel.threads = 2
        let counts = Counts(8 * 8)
        Parallel.run(8) { outer in
            Parallel.run(8) { inner in counts.add(outer * 8 + inner) }
        }
        XCTAssertEqual(counts.runs, Array(repeating: 1, count: 64))
    }

    func testTwoCallersAtOnceBothComplete() {
        Parallel.threads = 2
        let counts = Counts(2 * 500)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for job in 0..<50 {
                Parallel.run(10) { counts.add(caller * 500 + job * 10 + $0) }
            }
        }
        XCTAssertEqual(counts.runs, Array(repeating: 1, count: 1000))
    }

    func testPartsRunOnMoreThanOneThreadWhenThreadsAllowIt() {
        Parallel.threads = 2
        let lock = NSLock()
        var seen = Set<String>()
        for _ in 0..<50 {
            Parallel.run(2) { _ in
                let id = String(describing: pthread_self())
                lock.lock(); seen.insert(id); lock.unlock()
                usleep(200)  // long enough that the worker claims the other part
            }
        }
        XCTAssertGreaterThan(seen.count, 1)
    }
}
