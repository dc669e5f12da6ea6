// Matrix multiply through cblas_sgemm. Backward writes straight into the gradients with beta = 1,
// so accumulation (+=) costs nothing extra.

extension Tensor {
    /// op(a) · op(b), where op transposes the last two dimensions when asked.
    ///
    /// - a: (…, M, K), or (…, K, M) with `transposeA`.
    /// - b: (K, N) or (N, K) with `transposeB`, shared across a's batch (a linear layer: the batch
    ///   folds into M and one sgemm runs), or with the same leading dimensions as `a` (batched).
    /// Returns (…, M, N). `precision` (nil: `BLAS.precision`) holds for the forward and the backward.
    /// Long on purpose: the forward and its two backward products sit side by side (STYLE.md).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                              precision: MatmulPrecision? = nil) -> Tensor {
        let precision = precision ?? BLAS.precision
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
        let aRows = a.dim(-2), aCols = a.dim(-1)
        let (m, k) = transposeA ? (aCols, aRows) : (aRows, aCols)
        let (bk, n) = transposeB ? (b.dim(-1), b.dim(-2)) : (b.dim(-2), b.dim(-1))
        precondition(k == bk, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batch = a.count / (aRows * aCols)
        let shared = b.rank == 2
        if !shared {
            precondition(Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)),
                         "batched matmul needs equal batch dimensions, got \(a.shape) and \(b.shape)")
        }
        var outShape = Array(a.shape.dropLast(2))
        outShape += [m, n]
        let out = Tensor(uninitialized: outShape)
        let lda = aCols, ldb = b.dim(-1)
        // A shared right operand with an untransposed left one: fold the batch into M.
        let fold = shared && !transposeA
        if fold {
            BLAS.gemm(transA: false, transB: transposeB, m: batch * m, n: n, k: k,
                       a: a.data, lda: lda, b: b.data, ldb: ldb, beta: 0, c: out.data, ldc: n, precision: precision)
        } else {
            // Independent products: one single-threaded sgemm each, the batch split across threads.
            Parallel.forRanges(batch, cost: m * n * k) { r in
                for i in r {
                    BLAS.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                               a: a.data + i * m * k, lda: lda, b: b.data + (shared ? 0 : i * k * n), ldb: ldb,
                               beta: 0, c: out.data + i * m * n, ldc: n, precision: precision)
                }
            }
        }
        if Autograd.needsGrad(out, a, b) {
            Autograd.record {
                guard let g = outGrad(out) else { return }
                let (mm, nb) = fold ? (batch * m, 1) : (m, batch)
                // A new gradient buffer is written (beta 0), not zeroed and added to (beta 1).
                let (gaBase, freshA) = a.requiresGrad ? a.storage.gradForOverwrite() : (nil, false)
                let (gbBase, freshB) = b.requiresGrad ? b.storage.gradForOverwrite() : (nil, false)
                let each = { (i: Int, split: Bool) in
                    let pa = a.data + i * m * k, pb = b.data + (shared ? 0 : i * k * n), gc = g + i * m * n
                    if let gaBase {
                        let ga = gaBase + i * m * k, beta: Float = freshA ? 0 : 1
                        if transposeA {  // A is (K, M): dA = op(B) · dCᵀ
                            BLAS.gemm(split: split, transA: transposeB, transB: true, m: k, n: mm, k: n,
                                      a: pb, lda: ldb, b: gc, ldb: n, beta: beta, c: ga, ldc: mm, precision: precision)
                        } else {  // A is (M, K): dA = dC · op(B)ᵀ
                            BLAS.gemm(split: split, transA: false, transB: !transposeB, m: mm, n: k, k: n,
                                      a: gc, lda: n, b: pb, ldb: ldb, beta: beta, c: ga, ldc: k, precision: precision)
                        }
                    }
                    if let gbBase {
                        // A shared B sums over the batch: only the first product may overwrite.
                        let gb = gbBase + (shared ? 0 : i * k * n), beta: Float = freshB && (!shared || i == 0) ? 0 : 1
                        if transposeB {  // B is (N, K): dB = dCᵀ · op(A)
                            BLAS.gemm(split: split, transA: true, transB: transposeA, m: n, n: k, k: mm,
                                      a: gc, lda: n, b: pa, ldb: lda, beta: beta, c: gb, ldc: k, precision: precision)
                        } else {  // B is (K, N): dB = op(A)ᵀ · dC
                            BLAS.gemm(split: split, transA: !transposeA, transB: false, m: k, n: n, k: mm,
                                      a: pa, lda: lda, b: gc, ldb: n, beta: beta, c: gb, ldc: n, precision: precision)
                        }
                    }
                }
                // Per-batch products run in parallel unless they all add into one shared dB.
                if fold || (shared && b.requiresGrad) {
                    for i in 0..<nb { each(i, true) }
                } else {
                    Parallel.forRanges(nb, cost: 2 * m * n * k) { r in for i in r { each(i, false) } }
                }
            }
        }
        return out
    }
}

