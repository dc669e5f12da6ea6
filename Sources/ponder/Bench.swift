import ArgumentParser
import Autograd
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Ponder against the peer scripts in ../shared/bench.",
        subcommands: [BenchMatmul.self]
    )
}

struct BenchMatmul: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul", abstract: "sgemm GFLOP/s at 2048³ and at transformer shapes, with the kernel in use.")
    @Flag(help: "Print one JSON object per line.") var json = false

    func run() throws {
        let info = BLAS.info
        print("\(info.kernel) \(info.reason) threads=\(info.threads)")
        let n = 2048
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n); a.initialize(repeating: 0.5, count: n*n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            BLAS.sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: a, ldb: n, beta: 0, c: c, ldc: n)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            print(2.0 * Double(n*n*n) / dt / 1e9)
        }
    }
}
