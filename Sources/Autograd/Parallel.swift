// Splitting loops across cores. Work is cut into chunks whose boundaries depend only on the size of
// the problem, never on the thread count, so results are the same whatever the number of threads.

import CKernels
import Foundation

public enum Parallel {
    /// Threads used by Ponder's own kernels (OpenBLAS has its own setting).
    nonisolated(unsafe) public static var threads: Int = {
        if let s = ProcessInfo.processInfo.environment["PONDER_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body` over `0..<n` split into contiguous ranges. `cost` is the work per index in rough
    /// element-operations; below ~64K total the loop runs inline, since waking a thread costs more.
    @inline(__always)
    public static func forRanges(_ n: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let total = n &* Swift.max(cost, 1)
        if threads <= 1 || total < 65_536 || n < 2 {
            if n > 0 { body(0..<n) }
            return
        }
        let chunks = Swift.min(n, threads)
        run(chunks) { c in
            let lo = n * c / chunks, hi = n * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Like `forRanges` but chunks are fixed by `n` alone (`chunkCount(n)` of them), for reductions
    /// whose partial sums must not depend on the thread count.
    public static func forFixedChunks(_ n: Int, chunks: Int, cost: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        if threads <= 1 || n &* cost < 65_536 {
            for c in 0..<chunks { body(c, (n * c / chunks)..<(n * (c + 1) / chunks)) }
            return
        }
        run(chunks) { c in
            body(c, (n * c / chunks)..<(n * (c + 1) / chunks))
        }
    }

    /// Runs `body(p)` for p = 0..<parts on `threads` threads (this one and pooled workers; see
    /// `ponder_pool_run`) and returns when all have run.
    public static func run(_ parts: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            var fn = escapable
            withUnsafeMutablePointer(to: &fn) { pointer in
                ponder_pool_run(parts, threads, { arg, p in
                    arg!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(p)
                }, pointer)
            }
        }
    }

    /// The parallel loop the C kernels call back: body(arg, p) for p = 0..<parts on the pool.
    public static let callback: ponder_parallel_fn = { parts, body, arg in
        ponder_pool_run(parts, threads, body, arg)
    }
}
