// The tape: reverse-mode autodiff. Each op that reads a tensor requiring grad appends its backward
// closure; `backward()` runs them newest first. Closures hold exactly what their backward reads
// (STYLE.md §3), so the tape is also what keeps activations alive until backward.

public enum Autograd {
    final class Tape {
        var entries: [() -> Void] = []
    }

    nonisolated(unsafe) static var tape = Tape()
    nonisolated(unsafe) static var depthNoGrad = 0

    /// Whether ops currently record onto the tape.
    public static var isRecording: Bool { depthNoGrad == 0 }

    /// Runs `body` without recording: for sampling and reference-model passes.
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        depthNoGrad += 1
        defer { depthNoGrad -= 1 }
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
        let g = grad
        for i in 0..<count { g[i] += gradient.data[i] }
        Autograd.runTape()
    }
}

extension Autograd {
    static func runTape() {
        let entries = Autograd.tape.entries
        Autograd.tape.entries.removeAll(keepingCapacity: true)
        for entry in entries.reversed() { entry() }
    }
}

/// Gradient buffer of an op's output if any gradient reached it, else nil (its backward can skip).
@inline(__always) func outGrad(_ t: Tensor) -> UnsafeMutablePointer<Float>? { t.storage.gradBuffer }
