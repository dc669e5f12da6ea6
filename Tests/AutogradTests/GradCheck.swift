// Central-difference gradient checking.
//
// The loss is L = Σ f(x) ⊙ R for a fixed random R, so every output element matters. Analytic
// gradients come from one backward with R as the seed. Numeric ones are (L(x+h) − L(x−h)) / 2h with
// L accumulated in Double from the Float32 outputs.
//
// Tolerance, and why: the forward runs in Float32 (unit roundoff u ≈ 6e-8). With |L| ≲ 10 and
// h = 1e-2 the rounding error of the difference quotient is about u·|L|/h ≈ 6e-5, and the truncation
// error is h²/6·|f'''| ≈ 2e-5 for these smooth, O(1)-scaled inputs. We accept
// |analytic − numeric| ≤ 2e-3 + 1e-2·|numeric|: an order of magnitude above both, yet far below
// the size of any real mistake (a wrong sign, a missing factor or term, a dropped broadcast sum).
// Inputs are chosen away from kinks (clamp edges, min/max ties) so the function is smooth there.

import Autograd
import XCTest

struct GradCheck {
    static let h: Float = 1e-2
    static let atol = 2e-3
    static let rtol = 1e-2

    /// Checks d(Σ f(inputs) ⊙ R)/d(input) for every input that requires grad.
    static func check(
        _ inputs: [Tensor], seed: UInt64 = 7, file: StaticString = #filePath, line: UInt = #line,
        _ f: ([Tensor]) -> Tensor
    ) {
        for x in inputs { x.zeroGrad() }
        let out = f(inputs)
        var rng = RNG(seed: seed, stream: "gradcheck")
        let r = Tensor.randn(out.shape, rng: &rng)
        out.backward(gradient: r)
        XCTAssertEqual(Autograd.pendingOps, 0, "backward must empty the tape", file: file, line: line)

        func loss() -> Double {
            Autograd.noGrad {
                let y = f(inputs)
                var s = 0.0
                for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
                return s
            }
        }
        for (n, x) in inputs.enumerated() where x.requiresGrad {
            let analytic = x.gradArray
            for i in 0..<x.count {
                let saved = x.data[i]
                x.data[i] = saved + h
                let lp = loss()
                x.data[i] = saved - h
                let lm = loss()
                x.data[i] = saved
                let numeric = (lp - lm) / (2 * Double(h))
                let err = abs(Double(analytic[i]) - numeric)
                if err > atol + rtol * abs(numeric) {
                    XCTFail("input \(n) \(x.shape) element \(i): analytic \(analytic[i]) vs numeric \(numeric)",
                            file: file, line: line)
                    return
                }
            }
        }
    }

    /// Checks that `fused` and `reference` agree in value and in every input's gradient.
    static func sameAs(
        _ inputs: [Tensor], tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line,
        fused: ([Tensor]) -> Tensor, reference: ([Tensor]) -> Tensor
    ) {
        var rng = RNG(seed: 11)
        func run(_ f: ([Tensor]) -> Tensor) -> ([Float], [[Float]]) {
            for x in inputs { x.zeroGrad() }
            let y = f(inputs)
            let r = Tensor.randn(y.shape, rng: &rng)
            rng = RNG(seed: 11)
            y.backward(gradient: r)
            return (y.array, inputs.map(\.gradArray))
        }
        let (ya, ga) = run(fused)
        let (yb, gb) = run(reference)
        XCTAssertEqual(ya.count, yb.count, file: file, line: line)
        let scale = max(1, ya.map(abs).max() ?? 1)
        for (a, b) in zip(ya, yb) where abs(a - b) > tolerance * scale {
            XCTFail("value \(a) vs reference \(b)", file: file, line: line)
            return
        }
        for (n, (g1, g2)) in zip(ga, gb).enumerated() {
            let gs = max(1, g1.map(abs).max() ?? 1)
            for (i, (a, b)) in zip(g1, g2).enumerated() where abs(a - b) > tolerance * gs {
                XCTFail("input \(n) grad \(i): \(a) vs reference \(b)", file: file, line: line)
                return
            }
        }
    }
}

/// A random tensor that requires grad.
func param(_ shape: [Int], seed: UInt64, lo: Float = -1, hi: Float = 1) -> Tensor {
    var rng = RNG(seed: seed, stream: "test")
    return Tensor.uniform(shape, lo, hi, rng: &rng, requiresGrad: true)
}
