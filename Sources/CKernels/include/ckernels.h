// Ponder's own GEMM for a weight that is reused many times (the decode steps of one sampling call):
// C = A · Wᵀ with W packed once into column panels, so that no call re-packs it (OpenBLAS packs
// every operand on every call; at 64 rows that copy costs about half as much as the product, by perf record
// of `ponder bench generate` at d=512).
// The kernel is AVX-512; callers check ponder_packed_gemm_available() and use OpenBLAS otherwise.
#ifndef PONDER_CKERNELS_H
#define PONDER_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Output columns per packed panel.
#define PONDER_PANEL 32

/// 1 when this CPU runs the AVX-512 kernel (avx512f), else 0.
int ponder_packed_gemm_available(void);

/// Packs W (n rows × k columns, row stride ldw) into ceil(n / 32) panels of k × 32 floats:
/// out[(p·k + kk)·32 + j] = W[p·32 + j][kk], zero past row n. `out` holds ceil(n/32)·32·k floats.
/// Needs avx512f on x86-64 (16 × 16 register transposes).
void ponder_pack_transposed(const float *w, long n, long k, long ldw, float *out);

/// C[i][j] = Σ_kk A[i][kk] · W[j][kk] for rows 0..<m and the columns of panels panelLo..<panelHi
/// (columns below n only), with W packed by ponder_pack_transposed. Each element is one fused
/// multiply-add chain over kk in order, so it does not depend on m, on the panel range or on how a
/// caller splits the work. Only call when ponder_packed_gemm_available().
void ponder_gemm_packed(const float *a, long m, long k, long lda, const float *packed, long n,
                        long panelLo, long panelHi, float *c, long ldc);

/// Cached decoding attention for n ≤ 4 query rows over the same slots start...end (heads of one
/// sequence), for a head size d that is a multiple of 16: row h's p[j] = softmax over the slots of
/// scale·(q[h]·keys[h][j]) and out[h] = Σ_j p[j]·values[h][j] (keys and values: rows of d floats; p: scratch
/// of n·pStride floats, pStride ≥ end + 1). Each row's sums run in slot order whatever n is, and the rows'
/// independent chains of multiply-adds overlap. The key and value rows stream from memory, so each loop
/// prefetches 8 rows ahead. Slots below `split` are read from prefixKeys[h] and prefixValues[h] instead
/// (the same slot numbering: a group's shared prompt, held once in cache for the group's rows); with
/// split ≤ start those are never read and may be NULL. Only call when ponder_packed_gemm_available().
void ponder_attend_rows(long n, const float *const *q, const float *const *keys, const float *const *values,
                        const float *const *prefixKeys, const float *const *prefixValues, long split, long start,
                        long end, long d, float scale, float *p, long pStride, float *const *out);

/// 1 when this CPU and OS run Intel AMX bfloat16 tiles (amx-tile, amx-bf16, avx512f/bw, and the
/// kernel granted this process the tile state); asks the kernel once, then remembers.
int ponder_amx_available(void);

/// A part of a parallel product: body(arg, part) for part = 0..<parts.
typedef void (*ponder_body_fn)(void *arg, long part);
/// Runs body(arg, p) for p = 0..<parts, concurrently or not, and returns when all have run.
typedef void (*ponder_parallel_fn)(long parts, ponder_body_fn body, void *arg);

/// C = alpha·op(A)·op(B) + beta·C, row-major like cblas_sgemm, with op(A) and op(B) rounded to
/// bfloat16 (nearest even) and the products summed in float32 by AMX (mixed precision, as
/// torch.autocast's bf16 matmul). op(A) is m × k, op(B) is k × n. `parts` threads through `run` (NULL:
/// one after another): per K chunk, the parts pack op(B) once between them, then each packs and computes
/// its own rows of C (whole 32-row blocks). The sum for each element runs over k in a fixed order,
/// independent of m, n and `parts`, so results are reproducible. Only call when ponder_amx_available().
void ponder_gemm_bf16_parallel(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                               const float *b, long ldb, float beta, float *c, long ldc, long parts,
                               ponder_parallel_fn run);

/// Values (bfloat16) in ponder_pack_bf16's packing of an n × k weight.
long ponder_pack_bf16_count(long n, long k);

/// Packs W (n rows × k columns, row stride ldw) rounded to bfloat16 into the AMX tiles that
/// ponder_gemm_bf16_parallel would make of op(B) = Wᵀ, once, for many products. Only call when ponder_amx_available().
void ponder_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out);

/// C[i][j] = Σ_kk bf16(A[i][kk]) · W[j][kk] for rows 0..<m and columns 0..<n, W packed by ponder_pack_bf16.
/// `parts` threads through `run` (NULL: one after another) split the columns, each packing A itself.
/// Each element equals ponder_gemm_bf16_parallel's for the same operands (alpha 1, beta 0): cached decoding
/// matches a full forward. Only call when ponder_amx_available().
void ponder_gemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                             long ldc, long parts, ponder_parallel_fn run);

/// Grow-only scratch for the packing buffers of the C kernels (each thread keeps its own: fresh pages
/// would fault on every call): p if it holds `bytes`, else a new 64-byte-aligned block, *cap updated.
void *ponder_scratch_grow(void *p, size_t *cap, size_t bytes);

/// 1 when this CPU runs AVX-512 bfloat16 dot products (avx512f, avx512bw and avx512_bf16: VDPBF16PS), else 0.
int ponder_avx512bf16_available(void);

/// 1 when CPUID names the vendor AuthenticAMD (x86-64 only), else 0.
int ponder_cpu_is_amd(void);

/// C = alpha·op(A)·op(B) + beta·C, row-major like cblas_sgemm, on AVX-512 (Ponder's training GEMM,
/// sgemm.c): float32 FMAs (bf16 = 0, needs avx512f), or op(A) and op(B) rounded to bfloat16 (nearest
/// even, denormals to zero, as VCVTNE2PS2BF16 and the AMX path round) with float32 sums by VDPBF16PS
/// (bf16 = 1, needs ponder_avx512bf16_available()). The sum for
/// each element runs over K in chunks of a fixed size, in order, whatever m, n and `parts` are, so
/// results are reproducible. `parts` threads through `run` (NULL: one after another) split the rows of C,
/// each packing all of op(B), or its columns when C is wider than it is tall, each packing only its own
/// columns of op(B).
void ponder_sgemm_parallel(int bf16, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                           long lda, const float *b, long ldb, float beta, float *c, long ldc, long parts,
                           ponder_parallel_fn run);

/// K per chunk of ponder_sgemm_parallel's float32 sums: a product with K at most this sums each element
/// in one FMA chain from zero, so terms that are exact zeros at its start or end change nothing.
long ponder_sgemm_chunk_f32(void);

/// Sets the most bytes of op(B) each part of ponder_sgemm_parallel packs at a time (default 32 MiB; a
/// wider operand is packed and used one column block after another); returns the previous limit.
/// Results do not depend on it. For tests.
long ponder_sgemm_set_pack_limit(long bytes);

/// Values (bfloat16) in ponder_sgemm_pack_bf16's packing of an n × k weight.
long ponder_sgemm_pack_bf16_count(long n, long k);

/// Packs W (n rows × k columns, row stride ldw) rounded to bfloat16 as ponder_sgemm_parallel packs
/// op(B) = Wᵀ, every K chunk once, for many products (decoding without AMX).
void ponder_sgemm_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out);

/// C = bf16(A) · Wᵀ (rows 0..<m, alpha 1, beta 0) with W packed by ponder_sgemm_pack_bf16: each element
/// equals ponder_sgemm_parallel's bf16 product of the same operands, so cached decoding matches a full
/// forward. Needs ponder_avx512bf16_available().
void ponder_sgemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                              long ldc, long parts, ponder_parallel_fn run);

/// Runs body(arg, p) for p = 0..<parts on the caller and up to threads - 1 pooled workers, which spin
/// briefly between jobs instead of sleeping at once (pool.c), and returns when every part has run.
/// Runs the parts inline, in order, when parts or threads is at most 1, when called from inside a part,
/// or while another thread's job is running.
void ponder_pool_run(long parts, long threads, ponder_body_fn body, void *arg);

/// Autograd's `noGrad` depth, shared by all threads and safe to change from several at once: adds
/// `delta` and returns the new depth.
long ponder_nograd_add(long delta);
/// The current `noGrad` depth (0: ops record).
long ponder_nograd_depth(void);

/// Makes glibc's malloc keep what is freed for later requests of any size instead of returning it
/// to the system (no mmap'd blocks, no trimming); nothing elsewhere. See BufferPool.keepFreedMemory.
void ponder_keep_freed_memory(void);

/// The AVX-512 bodies of Autograd's elementwise kernels (vector.c), for a CPU where
/// ponder_packed_gemm_available() is 1 (avx512f). Those returning a count process whole 16-float steps from
/// the start and return how many floats they did; the caller does the rest, and the reductions across
/// the 16 lanes (`acc`, `lanes`: 16 floats out). Every element gets the operations the Swift loop it
/// replaces would give it, in the same order, so the results are the same bits.
/// y = x·σ(x)·u with x = g (Kernels.swiglu).
long ponder_swiglu(const float *g, const float *u, float *y, long n);
/// dg (+)= dy·u·σ(g)(1 + g(1 − σ(g))), du (+)= dy·g·σ(g); either may be NULL; overwrite flags assign.
long ponder_swiglu_backward(const float *g, const float *u, const float *dy, float *dg, float *du, long n,
                            int overwriteGate, int overwriteUp);
/// y = e^(x − shift), the tail included, with the per-lane sums of y's whole 16-float steps in acc
/// (Kernels.expShifted; x and y may be the same).
long ponder_exp_shifted(const float *x, float *y, long n, float shift, float *acc);
/// The largest of x[0..<n] (Kernels.max; −∞ when n is 0), tail and lanes included: a maximum is
/// exact, so the order of the comparisons cannot change it.
float ponder_max(const float *x, long n);
/// Kernels.dot's two 16-lane accumulators over a·b, added lane by lane into lanes.
long ponder_dot_lanes(const float *a, const float *b, long n, float *lanes);
/// One token's RoPE over `heads` heads of size d (Tensor.rope): y (+)= the rotation of x by cos, sign·sin.
void ponder_rope(const float *x, float *y, const float *cs, const float *sn, long heads, long d, float sign,
                 int accumulate);
/// y[j] = x[j]·s·w[j] for j < n (RMSNorm's forward).
void ponder_scale_mul(const float *x, float s, const float *w, float *y, long n);
/// out[i] = y[i] + alpha·x[i] for i < n (Kernels.axpy; out may be x or y).
void ponder_axpy(float alpha, const float *x, const float *y, float *out, long n);
/// out[i] = a[i]·b[i] for i < n.
void ponder_mul(const float *a, const float *b, float *out, long n);
/// x[i] *= s for i < n.
void ponder_scale(float *x, float s, long n);
/// d[i] = p[i]·(d[i] − dot)·scale for i < n (a softmax row's backward).
void ponder_softmax_grad(const float *p, float *d, long n, float dot, float scale);
/// RMSNorm's input gradient for one row: dx (+)= s·gw − k·x.
void ponder_rmsnorm_dx(float s, const float *gw, float k, const float *x, float *dx, long n, int overwrite);
/// RMSNorm's weight gradient for one row: acc += g·x·s.
void ponder_rmsnorm_dw(float *acc, const float *g, const float *x, float s, long n);
/// AdamW over n parameters: m = b1·m + omb1·g, v = b2·v + omb2·g·g, w = w·decay − stepSize·m / (√v / c2s + eps).
void ponder_adamw(float *w, const float *g, float *m, float *v, long n, float b1, float omb1, float b2, float omb2,
                  float decay, float stepSize, float c2s, float eps);

#endif
