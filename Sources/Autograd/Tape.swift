// The tape: reverse-mode autodiff. Each op that reads a tensor requiring grad appends its backward
// closure; `backward()` runs them newest first. Closures hold exactly what their backward reads
// (STYLE.md §3), so the tape is also what keeps activations alive until backward.

import CKernels

public enum Autograd {
    final class Tape {
        var entries: [() -> Void] = []
    }

    nonisolated(unsafe) static var tape = Tape()
    /// How deep in `noGrad` the program is: one atomic count for every thread (see `ponder_nograd_add`).
    static var depthNoGrad: Int { ponder_nograd_depth() }

    /// Whether ops currently record onto the tape.
    public static var isRecording: Bool { depthNoGrad == 0 }

    /// Runs `body` without recording: for sampling and reference-model passes.
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        _ = ponder_nograd_add(1)
        defer { _ = ponder_nograd_add(-1) }
        return try body()
    }

    /// Number of recorded backward steps waiting on the tape.
    public static var pendingOps: Int { tape.entries.count }

    /// Drops everything recorded (and the activations it held) without running backward.
    public static func clearTape() { tape.entries.removeAll(keepingCapacity: true) }

    /// True when an op reading these inputs must record its backward; marks `output` accordingly.
    @inline(__always)
    static func needsGrad(_ output: Tensor, _ inputs: Tensor...) -> Bool {
        guard depthNoGrad == 0 else { return false }
        for x in inputs where x.requiresGrad {
            output.requiresGrad = true
            return true
        }
        return false
    }

    @inline(__always)
    static func record(_ backward: @escaping () -> Void) { tape.entries.append(backward) }

    /// Activation recomputation (gradient checkpointing): `body(x)` runs without recording, so none of
    /// its intermediate tensors outlive it, and one tape entry stands for the whole of it. At backward
    /// that entry runs `body(x)` again, recorded, seeds the new output with the gradient the first
    /// output received and backpropagates through it alone, which adds into the gradients of x and
    /// of every parameter `body` reads. Memory falls from every intermediate of every checkpointed
    /// block to their inputs plus one block's intermediates, for one more forward of each block.
    /// `body` must compute the same values both times (Ponder's kernels are deterministic) and have
    /// no side effects that may not run twice (MoE routing statistics do: those blocks are not
    /// checkpointed). Gradients are bit-identical to a plain recorded forward's: the same backward
    /// closures run in the same order.
    public static func checkpoint(_ x: Tensor, _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        guard isRecording else { return body(x) }
        let out = noGrad { body(x) }
        // Whether body reads a parameter that requires grad is only known by recording it; mark the
        // output so that gradients reach this entry (a body without one records nothing at backward).
        out.requiresGrad = true
        record {
            guard let g = outGrad(out) else { return }
            let outer = tape
            tape = Tape()  // the recomputed block's own tape, run at once
            defer { tape = outer }
            let y = body(x)
            guard y.requiresGrad else { return }
            y.backward(seed: g)
        }
        return out
    }
}

extension Tensor {
    /// Backpropagates from this one-element tensor: adds d(self)/d(x) into `x.grad` for every
    /// tensor x that requires grad, then clears the tape. Gradients accumulate across calls.
    public func backward() {
        precondition(count == 1, "backward() starts from a one-element tensor, shape is \(shape)")
        grad[0] += 1
        Autograd.runTape()
    }

    /// Backpropagates a vector-Jacobian product: seeds this tensor's gradient with `gradient`
    /// (same shape) and runs the tape.
    public func backward(gradient: Tensor) {
        precondition(gradient.shape == shape, "seed gradient \(gradient.shape) for a tensor of shape \(shape)")
        backward(seed: gradient.data)
    }

    /// Adds `count` floats at `seed` into this tensor's gradient and runs the tape.
    func backward(seed: UnsafePointer<Float>) {
        let g = grad
        for i in 0..<count { g[i] += seed[i] }
        Autograd.runTape()
    }
}

extension Autograd {
    /// Runs the tape newest first, dropping each entry once it has run: what only that entry held
    /// (an op's output and the gradient it received, a recomputed block's activations) is freed
    /// before the older entries run, so a backward's memory falls as it goes instead of holding
    /// every gradient of every activation until the end.
    static func runTape() {
        var entries: [() -> Void] = []
        swap(&entries, &Autograd.tape.entries)
        while let entry = entries.popLast() { entry() }
        if Autograd.tape.entries.isEmpty { Autograd.tape.entries = entries }  // keep the capacity
    }
}

/// Gradient buffer of an op's output if any gradient reached it, else nil (its backward can skip).
@inline(__always) func outGrad(_ t: Tensor) -> UnsafeMutablePointer<Float>? { t.storage.gradBuffer }
