// Data parallelism over MPI: the processes of one job, and the few collectives training needs.
//
// A single-machine user needs no MPI library: `Communicator.world()` is a one-process communicator
// unless mpirun (or another PMI launcher) started the process, and only then is libmpi loaded, with
// dlopen, through the C shim CMPIShim (the one door to MPI, as BLAS.swift is the one door to BLAS).
//
// Gradients are summed in a fixed order: reduce-scatter by MPI_Alltoall, a sum in rank order, then
// MPI_Allgather. Alltoall and allgather only move bytes, so the result does not depend on the
// algorithm Open MPI picks, is the same on every rank (bit for bit), and is the same from run to run.
// Against a one-process run it differs only by float reassociation: one process sums every
// sample's contribution inside one backward pass; N processes sum N partial sums.

import Autograd
import CMPIShim
import Foundation

/// Why MPI could not start, or why the ranks of a job disagree.
public struct DistributedError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The processes of a data-parallel job. Rank 0 writes every file of a run; all ranks compute.
public final class Communicator: @unchecked Sendable {
    /// This process's index, 0..<size.
    public let rank: Int
    /// Processes in the job.
    public let size: Int
    /// Whether collectives go through MPI (false for the one-process communicator).
    public let usesMPI: Bool
    let watchdog: Watchdog?

    /// The communicator of a process that runs alone.
    public static let single = Communicator(rank: 0, size: 1, usesMPI: false, timeout: nil)

    init(rank: Int, size: Int, usesMPI: Bool, timeout: Double?) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
        watchdog = timeout.map { Watchdog(rank: rank, timeout: $0) }
    }

    /// Whether this rank writes the run's files (metrics, events, completions, checkpoints, report).
    public var isWriter: Bool { rank == 0 }

    /// Whether an MPI launcher started this process: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
    /// Slurm's srun --mpi=pmix sets PMIX_RANK, Hydra (MPICH) and PMI-2 set PMI_SIZE.
    public static func launchedByMPI(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_SIZE"] != nil
    }

    nonisolated(unsafe) static var worldInstance: Communicator?

    /// The job's communicator, made once per process: `single` unless `launchedByMPI()`, in which
    /// case libmpi is loaded (PONDER_MPI_LIBRARY, default libmpi.so.40) and MPI initialised. A
    /// collective that waits longer than PONDER_MPI_TIMEOUT seconds (default 900) ends the job, so a
    /// hung rank cannot hang the others forever; a rank that dies is caught sooner by mpirun itself.
    public static func world() throws -> Communicator {
        if let w = worldInstance { return w }
        let env = ProcessInfo.processInfo.environment
        guard launchedByMPI(env) else {
            worldInstance = .single
            return .single
        }
        var err = [CChar](repeating: 0, count: 1024)
        guard ponder_mpi_open(env["PONDER_MPI_LIBRARY"], &err, err.count) == 0 else {
            throw DistributedError(message: "started by an MPI launcher, but " + String(cString: err))
        }
        var rank: Int32 = 0, size: Int32 = 0
        guard ponder_mpi_init(&rank, &size) == 0 else { throw DistributedError(message: "MPI_Init failed") }
        let timeout = env["PONDER_MPI_TIMEOUT"].flatMap(Double.init) ?? 900
        let w = Communicator(rank: Int(rank), size: Int(size), usesMPI: true, timeout: timeout > 0 ? timeout : nil)
        worldInstance = w
        return w
    }

    /// The MPI library's version string, or "none".
    public var libraryVersion: String {
        guard usesMPI else { return "none" }
        var out = [CChar](repeating: 0, count: 8192)
        _ = ponder_mpi_library_version(&out, Int32(out.count))
        return String(cString: out).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Ends MPI cleanly (call once, at the end of a successful run).
    public func finalize() {
        if usesMPI { _ = ponder_mpi_finalize() }
    }

    /// The contiguous block of `0..<n` that this rank owns: blocks in rank order, sizes differing by
    /// at most one. Rank 0 owns the first items.
    public func share(_ n: Int) -> Range<Int> { Self.share(n, rank: rank, size: size) }

    /// Rank `rank`'s block of `0..<n` among `size` ranks.
    public static func share(_ n: Int, rank: Int, size: Int) -> Range<Int> { (n * rank / size)..<(n * (rank + 1) / size) }

    // MARK: - Collectives

    /// Runs one MPI call under the watchdog; a failed call ends the job (MPI_ERRORS_ARE_FATAL is the
    /// default, so this only catches an implementation that returns instead).
    func call(_ name: String, _ body: () -> Int32) {
        watchdog?.enter(name)
        let rc = body()
        watchdog?.leave()
        if rc != 0 { fail("\(name) returned MPI error \(rc)") }
    }

    /// Prints why, then ends every rank of the job.
    public func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("ponder: rank \(rank): \(message); ending the job\n".utf8))
        if usesMPI { ponder_mpi_abort(1) }
        exit(1)
    }

    /// Waits for every rank.
    public func barrier() {
        guard size > 1 else { return }
        call("MPI_Barrier") { ponder_mpi_barrier() }
    }

    /// Element-wise sums over ranks (for metrics; the order of the sum is MPI's).
    public func sum(_ xs: [Double]) -> [Double] {
        guard size > 1, !xs.isEmpty else { return xs }
        var buf = xs
        call("MPI_Allreduce") { ponder_mpi_allreduce_sum_f64(&buf, Int32(buf.count)) }
        return buf
    }

    /// Every rank's `bytes`, in rank order.
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] {
        guard size > 1 else { return [bytes] }
        var counts = [Int32](repeating: 0, count: size)
        call("MPI_Allgather") { ponder_mpi_allgather_int(Int32(bytes.count), &counts) }
        var displs = [Int32](repeating: 0, count: size)
        for r in 1..<size { displs[r] = displs[r - 1] + counts[r - 1] }
        let total = Int(displs[size - 1] + counts[size - 1])
        var recv = [UInt8](repeating: 0, count: max(1, total))
        call("MPI_Allgatherv") { ponder_mpi_allgatherv_bytes(bytes, Int32(bytes.count), &recv, counts, displs) }
        return (0..<size).map { Array(recv[Int(displs[$0])..<Int(displs[$0] + counts[$0])]) }
    }

    /// Every rank's values, concatenated in rank order: each rank contributes the same number.
    public func allGather(_ values: [Double]) -> [Double] {
        allGather(values.withUnsafeBytes { Array($0) }).flatMap { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
    }

    /// Sums the gradients of `params` over ranks, identically on every rank: a reduce-scatter
    /// (MPI_Alltoall, then a sum over ranks 0, 1, …, N−1 in that order) and an allgather. A
    /// parameter takes part when any rank has a gradient for it; the others are left without one,
    /// as one process would leave them.
    public func sumGradients(_ params: [Tensor]) {
        guard size > 1 else { return }
        let flags = allGather(params.map { $0.hasGrad ? 1.0 : 0.0 })
        let active = params.indices.filter { i in (0..<size).contains { flags[$0 * params.count + i] != 0 } }
        let n = active.reduce(0) { $0 + params[$1].count }
        guard n > 0 else { return }
        let block = (n + size - 1) / size  // (N·block ≥ n: the tail of the last block is padding)
        var send = [Float](repeating: 0, count: block * size)
        var offset = 0
        for i in active {
            let p = params[i], g = p.grad  // allocates a zero gradient where this rank had none
            send.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: offset).update(from: g, count: p.count) }
            offset += p.count
        }
        var parts = [Float](repeating: 0, count: block * size)  // block r of rank r's gradient, from each rank
        call("MPI_Alltoall") { ponder_mpi_alltoall_f32(send, &parts, Int32(block)) }
        var mine = [Float](repeating: 0, count: block)
        for r in 0..<size {
            for j in 0..<block { mine[j] += parts[r * block + j] }
        }
        call("MPI_Allgather") { ponder_mpi_allgather_f32(mine, &send, Int32(block)) }
        offset = 0
        for i in active {
            let p = params[i]
            send.withUnsafeBufferPointer { p.grad.update(from: $0.baseAddress!.advanced(by: offset), count: p.count) }
            offset += p.count
        }
    }

    /// Throws unless every rank passes the same `digest` (of weights, config, …): ranks that loaded
    /// different checkpoints or configs must not train together.
    public func checkSame(_ digest: UInt64, what: String) throws {
        guard size > 1 else { return }
        let all = allGather(withUnsafeBytes(of: digest) { Array($0) })
        if Set(all).count > 1 {
            let ranks = all.indices.filter { all[$0] != all[0] }.map(String.init).joined(separator: ", ")
            throw DistributedError(message: "rank(s) \(ranks) hold a different \(what) than rank 0: every rank must read the same config and run folder (a shared filesystem, or identical copies)")
        }
    }
}

/// Ends the job when one collective waits too long: a rank that hangs (rather than dies, which
/// mpirun notices at once) would otherwise leave the others waiting forever.
final class Watchdog: @unchecked Sendable {
    let rank: Int
    let timeout: Double
    let lock = NSLock()
    var current: (name: String, since: UInt64)?

    init(rank: Int, timeout: Double) {
        self.rank = rank
        self.timeout = timeout
        let thread = Thread { [unowned self] in
            while true {
                Thread.sleep(forTimeInterval: 1)
                lock.lock()
                let c = current
                lock.unlock()
                if let c, Double(DispatchTime.now().uptimeNanoseconds - c.since) / 1e9 > timeout {
                    let text = "ponder: rank \(rank) waited more than \(Int(timeout)) s in \(c.name) for the other ranks: one has hung or died. Ending the job; `ponder train … --resume` continues from the last checkpoint (PONDER_MPI_TIMEOUT sets the limit)\n"
                    FileHandle.standardError.write(Data(text.utf8))
                    _exit(75)  // mpirun sees a rank exit without MPI_Finalize and ends the others
                }
            }
        }
        thread.start()
    }

    func enter(_ name: String) {
        lock.lock()
        current = (name, DispatchTime.now().uptimeNanoseconds)
        lock.unlock()
    }

    func leave() {
        lock.lock()
        current = nil
        lock.unlock()
    }
}

extension RNG {
    /// A generator for stream `name` of `seed`, keyed further by `keys` (e.g. step, round, group),
    /// so that each key gets its own independent sequence however work is split across processes.
    public init(seed: UInt64, stream name: String, keys: [UInt64]) {
        self.init(seed: seed, stream: name)
        for k in keys {
            var mixer = RNG(seed: state ^ (k &* 0x9e37_79b9_7f4a_7c15))
            state = mixer.next()
        }
    }
}
