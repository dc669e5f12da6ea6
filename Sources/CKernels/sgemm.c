// Ponder's own AVX-512 GEMM for the products of a training step (see include/ckernels.h): float32 with
// FMA, or bfloat16 operands with float32 sums through avx512_bf16's VDPBF16PS where the CPU has it
// (Zen 4/5, Cooper Lake, Sapphire Rapids) and no AMX is used. The structure is GotoBLAS's: for each
// chunk of K, op(B) is packed once into 32-column panels (the parts share the packing), then each part
// takes its rows of C (or its panels, when C is short and wide) in blocks of 64 rows; register
// kernels hold MR × 32 sums across the chunk. Each element's sum runs over K in the same order
// whatever the thread split, so results are reproducible.

#include "ckernels.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define SKC_F32 256   // K per chunk in float32: a 256 × 32 panel is 32 KB, inside L1
#define SKC_BF16 512  // in bfloat16 (pairs): 256 pairs × 32 columns, 32 KB too
#define SMC 64        // rows of C per block

int ponder_avx512bf16_available(void) {
    static int state = -1;
    if (state >= 0) return state;
    __builtin_cpu_init();
    unsigned a = 0, b, c, d;
    int bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
    state = __builtin_cpu_supports("avx512f") && bf16 ? 1 : 0;
    return state;
}

typedef struct {
    int bf16, transA, transB, first, splitRows;
    long m, n, k, lda, ldb, ldc, parts, panels, k0, kc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    void *packedB;
} SJob;

// Grow-only scratch: B's panels belong to the calling thread, A's blocks to each part's thread.
static __thread void *scratchA, *scratchB;
static __thread size_t capA, capB;

static void *grow(void *p, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return p;
    free(p);
    *cap = bytes + bytes / 4;
    void *q = aligned_alloc(64, (*cap + 63) / 64 * 64);
    if (!q) {
        fprintf(stderr, "ponder: out of memory packing a product (%zu bytes)\n", *cap);
        abort();
    }
    return q;
}

// Round to nearest even, as torch and the AMX path round; NaN stays NaN.
static inline uint16_t toBF16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float opA(const SJob *j, long i, long kk) { return j->transA ? j->a[kk * j->lda + i] : j->a[i * j->lda + kk]; }
static inline float opB(const SJob *j, long kk, long col) { return j->transB ? j->b[col * j->ldb + kk] : j->b[kk * j->ldb + col]; }

// Panels lo..<hi of this chunk of op(B). float32: panel[kk·32 + col]; bfloat16: pairs along K,
// panel[(kk/2)·64 + col·2 + kk%2], an odd last K padded with 0. Columns past n are 0.
static void packBPart(void *arg, long part) {
    SJob *j = arg;
    long lo = j->panels * part / j->parts, hi = j->panels * (part + 1) / j->parts, kc = j->kc;
    for (long p = lo; p < hi; p++) {
        long cols = j->n - p * 32 < 32 ? j->n - p * 32 : 32;
        if (!j->bf16) {
            float *dst = (float *)j->packedB + p * kc * 32;
            if (!j->transB) {
                for (long kk = 0; kk < kc; kk++) {
                    memcpy(dst + kk * 32, j->b + (j->k0 + kk) * j->ldb + p * 32, (size_t)cols * sizeof(float));
                    for (long col = cols; col < 32; col++) dst[kk * 32 + col] = 0;
                }
            } else {
                for (long col = 0; col < 32; col++) {
                    const float *src = j->b + (p * 32 + col) * j->ldb + j->k0;
                    for (long kk = 0; kk < kc; kk++) dst[kk * 32 + col] = col < cols ? src[kk] : 0;
                }
            }
        } else {
            long pairs = (kc + 1) / 2;
            uint16_t *dst = (uint16_t *)j->packedB + p * pairs * 64;
            for (long kk = 0; kk < 2 * pairs; kk++)
                for (long col = 0; col < 32; col++)
                    dst[(kk / 2) * 64 + col * 2 + (kk & 1)] = kk < kc && col < cols ? toBF16(opB(j, j->k0 + kk, p * 32 + col)) : 0;
        }
    }
}

// C rows of one kernel call: C = alpha·sum + beta·C on the first chunk (C unread when beta is 0),
// C += alpha·sum on the others; a partial last panel touches only its `cols` columns.
#define SK_STORE(MR)                                                                                    \
    __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);                      \
    __mmask16 m1 = cols <= 16 ? (__mmask16)0 : (__mmask16)((1u << (cols - 16)) - 1);                    \
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                       \
    for (int r = 0; r < MR; r++) {                                                                      \
        float *cr = c + r * ldc;                                                                        \
        __m512 x0 = _mm512_mul_ps(lo[r], va), x1 = _mm512_mul_ps(hi[r], va);                            \
        if (!first) {                                                                                   \
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, cr));                                      \
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, cr + 16));                                 \
        } else if (beta != 0) {                                                                         \
            x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), x0);                                \
            x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), x1);                           \
        }                                                                                               \
        _mm512_mask_storeu_ps(cr, m0, x0);                                                              \
        _mm512_mask_storeu_ps(cr + 16, m1, x1);                                                         \
    }

// float32: MR rows of A (stride lda) times a k × 32 panel.
#define SK_F32(MR)                                                                                      \
    __attribute__((target("avx512f"))) static void kf##MR(const float *a, long lda, const float *b, long k, \
                                                        float *c, long ldc, long cols, float alpha,     \
                                                        float beta, int first) {                        \
        __m512 lo[MR], hi[MR];                                                                          \
        for (int r = 0; r < MR; r++) { lo[r] = _mm512_setzero_ps(); hi[r] = _mm512_setzero_ps(); }     \
        for (long kk = 0; kk < k; kk++) {                                                               \
            __m512 b0 = _mm512_loadu_ps(b + kk * 32), b1 = _mm512_loadu_ps(b + kk * 32 + 16);           \
            for (int r = 0; r < MR; r++) {                                                              \
                __m512 x = _mm512_set1_ps(a[r * lda + kk]);                                             \
                lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);                                                  \
                hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);                                                  \
            }                                                                                           \
        }                                                                                               \
        SK_STORE(MR)                                                                                    \
    }

// bfloat16: MR rows of A as bfloat16 pairs (stride lda pairs) times a (pairs × 2) × 32 panel, each
// VDPBF16PS adding two products per float32 lane.
#define SK_BF16(MR)                                                                                     \
    __attribute__((target("avx512f,avx512bf16"))) static void kb##MR(const uint32_t *a, long lda,       \
                                                                   const uint16_t *b, long pairs, float *c, \
                                                                   long ldc, long cols, float alpha,   \
                                                                   float beta, int first) {            \
        __m512 lo[MR], hi[MR];                                                                          \
        for (int r = 0; r < MR; r++) { lo[r] = _mm512_setzero_ps(); hi[r] = _mm512_setzero_ps(); }     \
        for (long q = 0; q < pairs; q++) {                                                              \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * 64);                                    \
            __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + q * 64 + 32);                                \
            for (int r = 0; r < MR; r++) {                                                              \
                __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * lda + q]);                          \
                lo[r] = _mm512_dpbf16_ps(lo[r], x, b0);                                                 \
                hi[r] = _mm512_dpbf16_ps(hi[r], x, b1);                                                 \
            }                                                                                           \
        }                                                                                               \
        SK_STORE(MR)                                                                                    \
    }

SK_F32(8)
SK_F32(4)
SK_F32(2)
SK_F32(1)
SK_BF16(8)
SK_BF16(4)
SK_BF16(2)
SK_BF16(1)

static void computePart(void *arg, long part) {
    SJob *j = arg;
    long blocks = (j->m + SMC - 1) / SMC, rLo = 0, rHi = blocks, pLo = 0, pHi = j->panels;
    if (j->splitRows) {
        rLo = blocks * part / j->parts;
        rHi = blocks * (part + 1) / j->parts;
    } else {
        pLo = j->panels * part / j->parts;
        pHi = j->panels * (part + 1) / j->parts;
    }
    long kc = j->kc, pairs = (kc + 1) / 2;
    for (long rb = rLo; rb < rHi; rb++) {
        long i0 = rb * SMC, i1 = i0 + SMC < j->m ? i0 + SMC : j->m, rows = i1 - i0;
        const float *af = NULL;
        const uint32_t *ab = NULL;
        long astride;
        if (j->bf16) {  // rows × pairs of bfloat16 pairs
            scratchA = grow(scratchA, &capA, (size_t)SMC * pairs * 4);
            uint16_t *dst = scratchA;
            for (long r = 0; r < rows; r++)
                for (long kk = 0; kk < 2 * pairs; kk++) dst[r * 2 * pairs + kk] = kk < kc ? toBF16(opA(j, i0 + r, j->k0 + kk)) : 0;
            ab = scratchA;
            astride = pairs;
        } else if (j->transA) {  // rows × kc, transposed from A's columns
            scratchA = grow(scratchA, &capA, (size_t)SMC * kc * 4);
            float *dst = scratchA;
            for (long kk = 0; kk < kc; kk++) {
                const float *src = j->a + (j->k0 + kk) * j->lda + i0;
                for (long r = 0; r < rows; r++) dst[r * kc + kk] = src[r];
            }
            af = scratchA;
            astride = kc;
        } else {
            af = j->a + i0 * j->lda + j->k0;
            astride = j->lda;
        }
        for (long p = pLo; p < pHi; p++) {
            long cols = j->n - p * 32 < 32 ? j->n - p * 32 : 32;
            float *cp = j->c + i0 * j->ldc + p * 32;
            long i = 0, ldc = j->ldc;
            float al = j->alpha, be = j->beta;
            int first = j->first;
            if (j->bf16) {
                const uint16_t *bp = (const uint16_t *)j->packedB + p * pairs * 64;
                for (; i + 8 <= rows; i += 8) kb8(ab + i * astride, astride, bp, pairs, cp + i * ldc, ldc, cols, al, be, first);
                for (; i + 4 <= rows; i += 4) kb4(ab + i * astride, astride, bp, pairs, cp + i * ldc, ldc, cols, al, be, first);
                for (; i + 2 <= rows; i += 2) kb2(ab + i * astride, astride, bp, pairs, cp + i * ldc, ldc, cols, al, be, first);
                for (; i < rows; i++) kb1(ab + i * astride, astride, bp, pairs, cp + i * ldc, ldc, cols, al, be, first);
            } else {
                const float *bp = (const float *)j->packedB + p * kc * 32;
                for (; i + 8 <= rows; i += 8) kf8(af + i * astride, astride, bp, kc, cp + i * ldc, ldc, cols, al, be, first);
                for (; i + 4 <= rows; i += 4) kf4(af + i * astride, astride, bp, kc, cp + i * ldc, ldc, cols, al, be, first);
                for (; i + 2 <= rows; i += 2) kf2(af + i * astride, astride, bp, kc, cp + i * ldc, ldc, cols, al, be, first);
                for (; i < rows; i++) kf1(af + i * astride, astride, bp, kc, cp + i * ldc, ldc, cols, al, be, first);
            }
        }
    }
}

static void runSerially(long parts, ponder_body_fn body, void *arg) {
    for (long p = 0; p < parts; p++) body(arg, p);
}

void ponder_sgemm_parallel(int bf16, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                           long lda, const float *b, long ldb, float beta, float *c, long ldc, long parts,
                           ponder_parallel_fn run) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (long i = 0; i < m; i++)
            for (long jj = 0; jj < n; jj++) c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];
        return;
    }
    SJob j = {.bf16 = bf16, .transA = transA, .transB = transB, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
              .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c};
    j.panels = (n + 31) / 32;
    long blocks = (m + SMC - 1) / SMC;
    j.parts = parts < 1 ? 1 : parts;
    j.splitRows = blocks >= 2 * j.parts || blocks >= j.panels;
    long units = j.splitRows ? blocks : j.panels;
    if (j.parts > units) j.parts = units;
    long kcMax = bf16 ? SKC_BF16 : SKC_F32;
    size_t bytes = bf16 ? (size_t)j.panels * ((kcMax + 1) / 2) * 64 * 2 : (size_t)j.panels * kcMax * 32 * 4;
    scratchB = grow(scratchB, &capB, bytes);
    j.packedB = scratchB;
    if (j.parts == 1 || !run) run = runSerially;
    for (long k0 = 0; k0 < k; k0 += kcMax) {
        j.k0 = k0;
        j.kc = k - k0 < kcMax ? k - k0 : kcMax;
        j.first = k0 == 0;
        run(j.parts, packBPart, &j);
        run(j.parts, computePart, &j);
    }
}

#else

int ponder_avx512bf16_available(void) { return 0; }

void ponder_sgemm_parallel(int bf16, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                           long lda, const float *b, long ldb, float beta, float *c, long ldc, long parts,
                           ponder_parallel_fn run) {
    (void)bf16; (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)b; (void)ldb; (void)beta; (void)c; (void)ldc; (void)parts; (void)run;
}

#endif
