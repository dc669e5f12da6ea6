// Tensor: Float32, row-major, contiguous, up to 4-D.
//
// A tensor is a shape over a Storage. Reshape makes a new tensor over the same storage, so a view and
// its base share both values and gradient: reshape needs no backward at all.
// Gradients are lazily allocated, zero-filled buffers on the storage; ops add (+=) into them, and
// `zeroGrad()` clears them (STYLE.md §1).

import CKernels
import Foundation

/// Owned memory for a tensor's values and, once needed, its gradient.
public final class Storage {
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    fileprivate(set) var gradBuffer: UnsafeMutablePointer<Float>?
    /// Whether the values and gradient are allocated at exactly `count` floats, outside the pool:
    /// a parameter's. The pool rounds a request up to its size class (up to a quarter more) so that
    /// activations whose lengths vary share buffers; a parameter's shape never varies, and for a
    /// 0.5B-parameter policy the rounding cost 393 MiB for the weights and as much for their gradients.
    let exact: Bool

    init(count: Int, exact: Bool = false) {
        self.count = count
        self.exact = exact
        data = Self.allocate(count, exact: exact)
    }

    deinit {
        release(data)
        if let g = gradBuffer { release(g) }
    }

    private static func allocate(_ count: Int, exact: Bool) -> UnsafeMutablePointer<Float> {
        exact ? .allocate(capacity: count) : BufferPool.take(count)
    }

    private func release(_ p: UnsafeMutablePointer<Float>) {
        if exact { p.deallocate() } else { BufferPool.give(p, count) }
    }

    /// The gradient buffer, allocated and zeroed on first use.
    var grad: UnsafeMutablePointer<Float> {
        if let g = gradBuffer { return g }
        let g = Self.allocate(count, exact: exact)
        g.initialize(repeating: 0, count: count)
        gradBuffer = g
        return g
    }

    /// Frees the gradient buffer (into the pool, or to malloc when exact); the next backward allocates a new one.
    func releaseGrad() {
        if let g = gradBuffer { release(g) }
        gradBuffer = nil
    }

    /// The gradient buffer for a backward that writes every element: when it is new it is left
    /// uninitialised and `fresh` is true, so the op assigns (=) instead of adding (+=) and no one
    /// pays for zeroing it first.
    func gradForOverwrite() -> (pointer: UnsafeMutablePointer<Float>, fresh: Bool) {
        if let g = gradBuffer { return (g, false) }
        let g = Self.allocate(count, exact: exact)
        gradBuffer = g
        return (g, true)
    }
}

/// Recycles float buffers by size class. A training step allocates the same activations every
/// time; fresh pages for them cost a page fault per 4 KiB (a quarter of a step, measured with
/// perf), so freed buffers wait here for the next request of their class.
public enum BufferPool {
    nonisolated(unsafe) static var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    nonisolated(unsafe) static var cachedFloats = 0
    static let lock = NSLock()
    /// Most floats kept for reuse (256 MiB); beyond it freed buffers go to malloc, which (with
    /// `keepFreedMemory`) serves later requests from them without new pages. A GRPO step's shapes
    /// follow its completions' lengths, so a larger bound fills, over a run, with buffers of size
    /// classes seldom asked for again: gigabytes held for a policy of a million parameters.
    nonisolated(unsafe) public static var limit = 1 << 26

    /// Capacity class of a request: rounded up to 1/8 of its power of two, so shapes that vary a
    /// little (completion lengths) share buffers.
    @inline(__always) static func sizeClass(_ n: Int) -> Int {
        if n <= 64 { return 64 }
        let shift = (Int.bitWidth - (n - 1).leadingZeroBitCount) - 3
        return ((n - 1) >> shift + 1) << shift
    }

    /// Floats the pool holds for reuse now (at most `limit`).
    public static var cached: Int {
        lock.lock()
        defer { lock.unlock() }
        return cachedFloats
    }

    public static func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        let c = sizeClass(n)
        lock.lock()
        if let p = free[c]?.popLast() {
            cachedFloats -= c
            lock.unlock()
            return p
        }
        lock.unlock()
        return .allocate(capacity: c)
    }

    public static func give(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        let c = sizeClass(n)
        lock.lock()
        if cachedFloats + c <= limit {
            free[c, default: []].append(p)
            cachedFloats += c
            lock.unlock()
        } else {
            lock.unlock()
            p.deallocate()
        }
    }

    /// Returns every cached buffer to the system.
    public static func drain() {
        lock.lock()
        defer { lock.unlock() }
        for (_, list) in free { list.forEach { $0.deallocate() } }
        free = [:]
        cachedFloats = 0
    }

    /// `drain`: for the boundary between two phases whose buffers differ in size (a GRPO step's
    /// sampling and update), so that the buffers one phase cached do not stay beside the next
    /// phase's, whose requests malloc serves from the memory they freed (with `keepFreedMemory`).
    /// Within a phase the pool still serves every repeated shape.
    public static func trim() {
        drain()
    }

    /// Has malloc keep freed memory for later requests of any size (glibc: no mmap'd blocks and no
    /// trimming), for the whole process; the `ponder` command sets it first thing. New pages are
    /// dear where memory is virtualised (on a 2-core VM, 0.4 to 8 s per GB touched), and a
    /// 0.5B-parameter GRPO step gave each phase's gigabytes back to the system, to fault them in
    /// again in the next. Memory is then never returned before the process ends, so the peak is the
    /// most ever in use plus what fragmentation adds (that step: about 6% more).
    public static func keepFreedMemory() {
        ponder_keep_freed_memory()
    }
}

public final class Tensor {
    /// Dimensions, outermost first. A scalar has shape [1].
    public let shape: [Int]
    public let storage: Storage
    /// Whether backward computes a gradient for this tensor (true for parameters and for the
    /// outputs of recorded ops that read one).
    public var requiresGrad: Bool

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    /// Values, `count` floats, row-major.
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.data }
    /// The gradient buffer (allocated and zeroed on first access).
    @inline(__always) public var grad: UnsafeMutablePointer<Float> { storage.grad }
    /// Whether a gradient buffer exists, i.e. something flowed into it since creation.
    public var hasGrad: Bool { storage.gradBuffer != nil }

    /// A new, uninitialised tensor. Callers must write every element. One made with `requiresGrad`
    /// is a leaf (a parameter; ops' outputs are made without it and marked after), so its values
    /// and gradient are allocated exactly, outside the pool (`Storage.exact`).
    public init(uninitialized shape: [Int], requiresGrad: Bool = false) {
        precondition(!shape.isEmpty && shape.count <= 4, "tensors have 1 to 4 dimensions, got \(shape)")
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = Storage(count: shape.reduce(1, *), exact: requiresGrad)
        self.requiresGrad = requiresGrad
    }

    init(shape: [Int], storage: Storage, requiresGrad: Bool) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not fit \(storage.count) values")
        precondition(!shape.isEmpty && shape.count <= 4, "tensors have 1 to 4 dimensions, got \(shape)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor filled with `value`.
    public convenience init(shape: [Int], repeating value: Float, requiresGrad: Bool = false) {
        self.init(uninitialized: shape, requiresGrad: requiresGrad)
        data.initialize(repeating: value, count: count)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, repeating: 0, requiresGrad: requiresGrad)
    }

    /// A tensor holding `values` (whose count must match the shape).
    public convenience init(shape: [Int], _ values: [Float], requiresGrad: Bool = false) {
        self.init(uninitialized: shape, requiresGrad: requiresGrad)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A one-element tensor.
    public static func scalar(_ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: [1], [value], requiresGrad: requiresGrad)
    }

    /// Values drawn from N(0, std²) with the given generator.
    public static func randn(_ shape: [Int], std: Float = 1, rng: inout RNG, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape, requiresGrad: requiresGrad)
        for i in 0..<t.count { t.data[i] = Float(rng.normal()) * std }
        return t
    }

    /// Values drawn uniformly from [lo, hi).
    public static func uniform(_ shape: [Int], _ lo: Float, _ hi: Float, rng: inout RNG, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape, requiresGrad: requiresGrad)
        for i in 0..<t.count { t.data[i] = lo + (hi - lo) * Float(rng.uniform()) }
        return t
    }

    /// The values as an array (copies).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    /// The gradient as an array (zeros where none has flowed).
    public var gradArray: [Float] {
        hasGrad ? Array(UnsafeBufferPointer(start: storage.gradBuffer!, count: count)) : [Float](repeating: 0, count: count)
    }
    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item() needs one element, shape is \(shape)")
        return data[0]
    }

    /// Drops the gradient (PyTorch's `grad = None`): `hasGrad` is false until a backward writes one,
    /// and its memory is freed meanwhile.
    public func releaseGrad() { storage.releaseGrad() }

    /// Sets the gradient to zero (keeps the buffer).
    public func zeroGrad() {
        if let g = storage.gradBuffer { g.update(repeating: 0, count: count) }
    }

    /// A tensor over the same values that never records gradients.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage, requiresGrad: false) }

    /// A deep copy of the values (no gradient, not recorded).
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Size of dimension `d`; negative counts from the end.
    @inline(__always) public func dim(_ d: Int) -> Int { shape[d < 0 ? shape.count + d : d] }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = array.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
