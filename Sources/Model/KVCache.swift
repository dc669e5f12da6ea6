// KV caches for decoding: per layer, MHA's keys and values (S, K, capacity, D), or MLA's latents
// (S, capacity, Rkv) and shared RoPE keys (S, capacity, R). Rows can be repeated (a group's shared
// prompt) and dropped (finished sequences) between steps.

import Autograd
import Foundation

/// Keys and values of S left-padded sequences, per layer (S, K, capacity, D): one slot per kv head,
/// so grouped-query attention caches H/K times less. All sequences are at the same length.
/// `keyStart[s]` is sequence s's left padding. `repeatRows` turns each prompt computed once into its
/// group's rows; `keep(rows:)` drops finished sequences, so later steps compute only the rows still decoding.
public final class KVCache {
    public let heads: Int, headDim: Int, capacity: Int
    public private(set) var seqs: Int
    public private(set) var keyStart: [Int]
    /// Sequences the buffers have room for.
    let rowsAllocated: Int
    public private(set) var length = 0
    let k: [UnsafeMutablePointer<Float>]
    let v: [UnsafeMutablePointer<Float>]
    /// MLA's latent cache (then k and v are empty).
    public let latent: LatentCache?

    /// A cache of `seqs` sequences with room for `reserve` (at least `seqs`; see `repeatRows`).
    public init(config: PolicyConfig, seqs: Int, capacity: Int, keyStart: [Int], reserve: Int? = nil,
                sharing packed: PackedWeights = PackedWeights()) {
        self.packed = packed
        precondition(keyStart.count == seqs && (reserve ?? seqs) >= seqs)
        // Kept in release builds (see `forward`): a cache past max_context would read past the RoPE table.
        guard capacity <= config.maxContext else { fatalError("KV cache of \(capacity) slots exceeds max_context \(config.maxContext)") }
        self.seqs = seqs
        heads = config.kvHeadCount
        headDim = config.headDim
        self.capacity = capacity
        self.keyStart = keyStart
        rowsAllocated = reserve ?? seqs
        let n = rowsAllocated * heads * capacity * config.headDim
        let mhaLayers = config.isDeepseek ? 0 : config.layers
        // From the buffer pool: every sampling call makes a cache, and fresh pages for it faulted in
        // each time (perf: about 4% of a quickstart-shaped GRPO step's samples).
        k = (0..<mhaLayers).map { _ in BufferPool.take(n) }
        v = (0..<mhaLayers).map { _ in BufferPool.take(n) }
        floatsPerBuffer = n
        latent = config.isDeepseek ? LatentCache(config: config, seqs: rowsAllocated, capacity: capacity) : nil
    }

    let floatsPerBuffer: Int

    deinit {
        for buffer in k + v { BufferPool.give(buffer, floatsPerBuffer) }
    }

    /// The weights packed for this cache's decode products, made at first use (see `linear`); the
    /// caches of one batch's slices, decoding at once, share one.
    let packed: PackedWeights

    /// x · wᵀ through a copy of w packed at this cache's first step: the weights must not change
    /// while a cache is in use (sampling and evaluation hold no optimizer).
    func linear(_ x: Tensor, _ w: Tensor) -> Tensor { linear(x, w, precision: nil) }

    /// `linear` in `precision` (nil: `BLAS.precision`), fixed when w is first packed.
    func linear(_ x: Tensor, _ w: Tensor, precision: MatmulPrecision?) -> Tensor {
        Tensor.matmul(x, packed: packed.matrix(for: ObjectIdentifier(w)) { PackedMatrix(w, precision: precision) })
    }

    /// x · (w + (α/r)·B·A)ᵀ through a packed copy of the merged weight, made at first use (the weights
    /// and adapters must not change while a cache is in use).
    func linear(_ x: Tensor, _ w: Tensor, merging adapter: LoRAAdapter) -> Tensor {
        Tensor.matmul(x, packed: packed.matrix(for: ObjectIdentifier(adapter)) { PackedMatrix(adapter.merged(w)) })
    }

    /// Layer `i`'s keys and values as `Tensor.cachedAttention` appends to and reads them.
    func buffer(layer i: Int) -> KVBuffer {
        KVBuffer(keys: k[i], values: v[i], kvHeads: heads, headDim: headDim, capacity: capacity, length: length, keyStart: keyStart,
                 prefixRow: prefixRow, prefixLength: prefixLength)
    }

    /// Since `repeatRows` or `markPrompts`: the prompt each sequence is a copy of, and its slots
    /// 0..<prefixLength, which every copy holds alike. Attention reads them from the prompt's first copy
    /// still in the cache (`prefixRow`), so the copies, attended one after another, stream their prompt's
    /// keys and values from memory once instead of once each: the same values in the same order, so no
    /// bit changes.
    private var group: [Int]? = nil {
        didSet { prefixRowMemo = nil }
    }
    private var prefixRowMemo: [Int]? = nil
    public private(set) var prefixLength = 0

    /// For each sequence, the first sequence (lowest index) that copies the same prompt; made once per
    /// change of the rows, not per layer or per copy.
    public var prefixRow: [Int]? {
        guard let group else { return nil }
        if let memo = prefixRowMemo { return memo }
        var first = [Int](repeating: -1, count: (group.max() ?? -1) + 1)
        let rows = group.indices.map { i in
            if first[group[i]] < 0 { first[group[i]] = i }
            return first[group[i]]
        }
        prefixRowMemo = rows
        return rows
    }

    /// Bytes held per sequence per token (K and V over all layers).
    public var bytesPerToken: Int { latent?.bytesPerToken ?? 2 * k.count * heads * headDim * 4 }
    func advance(_ n: Int) { length += n }

    /// Keeps only the sequences `rows` (ascending indices of current ones) as sequences 0..<rows.count:
    /// the next `step` feeds and returns those rows alone. Kept rows below that count stay where they
    /// are and the kept rows above it move into the holes, so a compaction copies only the rows it
    /// moves. Returns, for each new sequence, the old index it holds.
    @discardableResult
    public func keep(rows: [Int]) -> [Int] {
        precondition(zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && (rows.last ?? -1) < seqs && (rows.first ?? 0) >= 0,
                     "keep(rows:) needs ascending indices of current sequences")
        let n = rows.count
        var order = Array(0..<n)
        var kept = [Bool](repeating: false, count: seqs)
        for r in rows { kept[r] = true }
        let holes = (0..<n).filter { !kept[$0] }
        for (hole, from) in zip(holes, rows.drop { $0 < n }) {  // as many rows at or above n as holes below it
            copySequence(from, to: hole)
            order[hole] = from
        }
        keyStart = order.map { keyStart[$0] }
        if let g = group { group = order.map { g[$0] } }
        seqs = n
        return order
    }

    /// Makes each sequence `times` sequences with its filled slots: sequence i becomes i·times ..<
    /// (i+1)·times (a group's shared prompt, computed once, then sampled G ways). Needs room for them
    /// (`reserve`). Rows move from the last down, so no source is overwritten before it is copied.
    public func repeatRows(_ times: Int) {
        precondition(times >= 1 && seqs * times <= rowsAllocated, "repeatRows: \(seqs) × \(times) sequences exceed the \(rowsAllocated) reserved")
        for from in stride(from: seqs - 1, through: 0, by: -1) {
            for to in stride(from: from * times + times - 1, through: from * times, by: -1) where to != from {
                copySequence(from, to: to)
            }
        }
        keyStart = keyStart.flatMap { Array(repeating: $0, count: times) }
        seqs *= times
        markPrompts(times: times)
    }

    /// Records sequence i as a copy of prompt i / times, alike in every slot so far (prefixRow).
    private func markPrompts(times: Int) {
        guard latent == nil else { return }
        group = (0..<seqs).map { $0 / times }
        prefixLength = length
    }

    /// Marks each sequence as its own prompt, whose copies `appendCopy` will make: they read the
    /// prompt's slots (those filled so far) from the prompt's first copy still in the cache.
    public func markPrompts() { markPrompts(times: 1) }

    /// Appends a copy of sequence `row` (every filled slot, its padding and its prompt) as sequence
    /// `seqs`, and returns its index: a sampled row that leaves the rows it decoded alike with (the
    /// sampler decodes such rows once until their tokens differ). Needs room for it (`reserve`).
    @discardableResult
    public func appendCopy(of row: Int) -> Int {
        precondition(row >= 0 && row < seqs && seqs < rowsAllocated, "appendCopy: row \(row) of \(seqs), room for \(rowsAllocated)")
        copySequence(row, to: seqs)
        keyStart.append(keyStart[row])
        if let g = group?[row] { group!.append(g) }
        seqs += 1
        return seqs - 1
    }

    /// Copies sequence `from`'s filled slots (every layer and head) over sequence `to`'s.
    private func copySequence(_ from: Int, to: Int) {
        let block = heads * capacity * headDim  // one sequence of one layer
        for buffer in k + v {
            for hh in 0..<heads {
                let offset = hh * capacity * headDim
                (buffer + to * block + offset).update(from: buffer + from * block + offset, count: length * headDim)
            }
        }
        latent?.move(from: from, to: to, capacity: capacity, length: length)
    }
}

// MARK: - Latent KV cache

/// MLA's cache for S sequences: per layer, the latent c (S, capacity, Rkv) and the rotated shared
/// RoPE key (S, capacity, R). Nothing per head is stored.
public final class LatentCache {
    public let latentDim: Int, ropeDim: Int
    let c: [UnsafeMutablePointer<Float>]
    let kr: [UnsafeMutablePointer<Float>]

    init(config: PolicyConfig, seqs: Int, capacity: Int) {
        let m = config.mla!
        latentDim = m.kvLoraRank
        ropeDim = m.qkRopeHeadDim
        c = (0..<config.layers).map { _ in BufferPool.take(seqs * capacity * m.kvLoraRank) }
        kr = (0..<config.layers).map { _ in BufferPool.take(seqs * capacity * m.qkRopeHeadDim) }
        counts = (seqs * capacity * m.kvLoraRank, seqs * capacity * m.qkRopeHeadDim)
    }

    let counts: (latent: Int, rope: Int)

    deinit {
        c.forEach { BufferPool.give($0, counts.latent) }
        kr.forEach { BufferPool.give($0, counts.rope) }
    }

    /// Bytes held per sequence per token over all layers.
    public var bytesPerToken: Int { c.count * (latentDim + ropeDim) * 4 }

    /// Copies sequence `from`'s first `length` slots to sequence `to` (see `KVCache.keep`).
    func move(from: Int, to: Int, capacity: Int, length: Int) {
        for buffer in c { (buffer + to * capacity * latentDim).update(from: buffer + from * capacity * latentDim, count: length * latentDim) }
        for buffer in kr { (buffer + to * capacity * ropeDim).update(from: buffer + from * capacity * ropeDim, count: length * ropeDim) }
    }
}

/// Weights packed for decoding, each made once, by the first cache that needs it, and read by every
/// cache that shares the store (a lock, since the slices of a batch decode on several threads at once).
public final class PackedWeights: @unchecked Sendable {
    private var matrices: [ObjectIdentifier: PackedMatrix] = [:]
    private let lock = NSLock()

    public init() {}

    func matrix(for id: ObjectIdentifier, make: () -> PackedMatrix) -> PackedMatrix {
        lock.withLock {
            if let p = matrices[id] { return p }
            let p = make()
            matrices[id] = p
            return p
        }
    }
}
