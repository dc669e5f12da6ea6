// Ponder's own AVX-512 GEMM for the products of a training step (see include/ckernels.h): float32 with
// FMA, or bfloat16 operands with float32 sums through avx512_bf16's VDPBF16PS where the CPU has it
// (Zen 4/5, Cooper Lake, Sapphire Rapids) and no AMX is used. The structure is GotoBLAS's: op(B) is
// packed into 32-column panels per chunk of K, and each part takes its rows of C in blocks of 64 rows
// (when op(B) fits the packing limit, the parts first pack it once between them; otherwise each packs
// what it reads) or, when C is wider than tall, its own panels; register kernels hold
// MR × 32 sums across the chunk. Each element's sum runs over K in the same order whatever the thread
// split, so results are reproducible.

#include "ckernels.h"
#include "bf16pack.h"
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
    state = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && bf16 ? 1 : 0;
    return state;
}

int ponder_cpu_is_amd(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    return b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;  // "Auth" "enti" "cAMD"
}

typedef struct {
    int bf16, transA, transB, splitRows;
    long m, n, k, lda, ldb, ldc, parts, panels, kcMax;
    float alpha, beta;
    const float *a, *b;
    float *c;
    const uint16_t *prepacked;  // op(B) packed once for every chunk (bf16 decoding), else NULL
    void *shared;               // op(B) packed once by the parts between them (see run): read from here in
                                // float32; in bfloat16 it becomes `prepacked` once packed
} SJob;

// Grow-only scratch of each part's thread: its panels of op(B) and its block of A.
static __thread void *scratchA, *scratchB;
static __thread size_t capA, capB;

// Panel p of the chunk k0..<k0+kc of op(B) in bfloat16 pairs along K: 32-bit word q·32 + col of out
// holds (op(B)[k0+2q][col], op(B)[k0+2q+1][col]), an odd last K padded with 0, columns past n 0.
__attribute__((target(PONDER_BF16_TARGET))) static void packPanelBF16(const SJob *j, long k0, long kc, long p,
                                                                      uint32_t *out) {
    long cols = j->n - p * 32 < 32 ? j->n - p * 32 : 32, pairs = (kc + 1) / 2;
    if (!j->transB) {  // rows 2q and 2q+1 of op(B) side by side
        for (long q = 0; q < pairs; q++) {
            const float *e = j->b + (k0 + 2 * q) * j->ldb + p * 32;
            int odd = 2 * q + 1 < kc;
            for (int h = 0; h < 2; h++) {
                __m512 x = load16(e + 16 * h, cols - 16 * h);
                __m512 y = odd ? load16(e + j->ldb + 16 * h, cols - 16 * h) : _mm512_setzero_ps();
                _mm512_storeu_si512(out + q * 32 + 16 * h, pairs16(x, y));
            }
        }
        return;
    }
    // op(B)[kk][col] = b[col·ldb + kk]: a row of b is already pairs in order; 16 rows × 16 pairs transpose.
    for (long q0 = 0; q0 < pairs; q0 += 16) {
        long valid = kc - 2 * q0, nq = pairs - q0 < 16 ? pairs - q0 : 16;
        for (int h = 0; h < 2; h++) {
            __m512i v[16];
            for (int c = 0; c < 16; c++) {
                long col = 16 * h + c;
                if (col >= cols) {
                    v[c] = _mm512_setzero_si512();
                    continue;
                }
                const float *src = j->b + (p * 32 + col) * j->ldb + k0 + 2 * q0;
                v[c] = cvt32(load16(src, valid), load16(src + 16, valid - 16));
            }
            transpose16(v);
            for (long i = 0; i < nq; i++) _mm512_storeu_si512(out + (q0 + i) * 32 + 16 * h, v[i]);
        }
    }
}

// Rows i0..<i0+rows of op(A), columns k0..<k0+kc, in bfloat16: row r at dst + r·2·pairs, an odd last K
// padded with 0.
__attribute__((target(PONDER_BF16_TARGET))) static void packABF16(const SJob *j, long i0, long rows, long k0, long kc,
                                                                  uint16_t *dst) {
    long pairs = (kc + 1) / 2, width = 2 * pairs;
    if (!j->transA) {
        for (long r = 0; r < rows; r++) {
            const float *src = j->a + (i0 + r) * j->lda + k0;
            uint16_t *out = dst + r * width;
            for (long kk = 0; kk < width; kk += 32) {
                long left = width - kk;
                __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
                _mm512_mask_storeu_epi16(out + kk, m, cvt32(load16(src + kk, kc - kk), load16(src + kk + 16, kc - kk - 16)));
            }
        }
        return;
    }
    // A's rows hold op(A)'s columns: rows 2q and 2q+1 pair up for 16 rows of op(A) at a time, then a
    // 16 × 16 transpose puts each row's pairs together.
    // Pairs outermost: the 32 rows of A that 16 pairs read are used up, across every row of op(A), before the next.
    uint32_t *d32 = (uint32_t *)dst;
    for (long q0 = 0; q0 < pairs; q0 += 16) {
        for (long r0 = 0; r0 < rows; r0 += 16) {
            long nr = rows - r0 < 16 ? rows - r0 : 16;
            __m512i v[16];
            for (int qi = 0; qi < 16; qi++) {
                long q = q0 + qi;
                if (q >= pairs) {
                    v[qi] = _mm512_setzero_si512();
                    continue;
                }
                const float *x0 = j->a + (k0 + 2 * q) * j->lda + i0 + r0;
                __m512 e = load16(x0, nr), o = 2 * q + 1 < kc ? load16(x0 + j->lda, nr) : _mm512_setzero_ps();
                v[qi] = pairs16(e, o);
            }
            transpose16(v);
            __mmask16 m = lanes16(pairs - q0);
            for (long i = 0; i < nr; i++) _mm512_mask_storeu_epi32(d32 + (r0 + i) * pairs + q0, m, v[i]);
        }
    }
}

// Panel p of the chunk k0..<k0+kc of op(B) = bᵀ in float32, out[kk·32 + col] = b[(p·32 + col)·ldb + k0 + kk]:
// 16 × 16 blocks transposed in registers (a weight's rows are the panel's columns).
__attribute__((target("avx512f"))) static void packPanelF32T(const SJob *j, long k0, long kc, long p, long cols, float *out) {
    for (int h = 0; h < 2; h++) {
        for (long kb = 0; kb < kc; kb += 16) {
            __m512i v[16];
            for (int c = 0; c < 16; c++) {
                long col = 16 * h + c;
                v[c] = col < cols ? _mm512_castps_si512(load16(j->b + (p * 32 + col) * j->ldb + k0 + kb, kc - kb))
                                  : _mm512_setzero_si512();
            }
            transpose16(v);
            long n = kc - kb < 16 ? kc - kb : 16;
            for (long i = 0; i < n; i++) _mm512_storeu_si512(out + (kb + i) * 32 + 16 * h, v[i]);
        }
    }
}

// Panels lo..<hi of the chunk k0..<k0+kc of op(B), into dst from its start. float32: panel[kk·32 + col];
// bfloat16: pairs along K, panel[(kk/2)·64 + col·2 + kk%2], an odd last K padded with 0. Columns past
// n are 0.
static void packB(const SJob *j, long k0, long kc, long lo, long hi, void *dst) {
    for (long p = lo; p < hi; p++) {
        long cols = j->n - p * 32 < 32 ? j->n - p * 32 : 32;
        if (!j->bf16) {
            float *out = (float *)dst + (p - lo) * kc * 32;
            if (!j->transB && cols == 32) {  // a constant size, so the copy is inlined rather than a call per row
                for (long kk = 0; kk < kc; kk++) memcpy(out + kk * 32, j->b + (k0 + kk) * j->ldb + p * 32, 32 * sizeof(float));
            } else if (!j->transB) {
                for (long kk = 0; kk < kc; kk++) {
                    memcpy(out + kk * 32, j->b + (k0 + kk) * j->ldb + p * 32, (size_t)cols * sizeof(float));
                    for (long col = cols; col < 32; col++) out[kk * 32 + col] = 0;
                }
            } else {
                packPanelF32T(j, k0, kc, p, cols, out);
            }
        } else {
            packPanelBF16(j, k0, kc, p, (uint32_t *)dst + (p - lo) * ((kc + 1) / 2) * 32);
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

// float32: MR rows of A, element (r, kk) at a[r·lda + kk·ks], times a k × 32 panel.
#define SK_F32(MR)                                                                                      \
    __attribute__((target("avx512f"))) static void kf##MR(const float *a, long lda, long ks, const float *b, \
                                                        long k, float *c, long ldc, long cols,          \
                                                        float alpha, float beta, int first) {           \
        __m512 lo[MR], hi[MR];                                                                          \
        for (int r = 0; r < MR; r++) { lo[r] = _mm512_setzero_ps(); hi[r] = _mm512_setzero_ps(); }     \
        for (long kk = 0; kk < k; kk++) {                                                               \
            __m512 b0 = _mm512_loadu_ps(b + kk * 32), b1 = _mm512_loadu_ps(b + kk * 32 + 16);           \
            for (int r = 0; r < MR; r++) {                                                              \
                __m512 x = _mm512_set1_ps(a[r * lda + kk * ks]);                                        \
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

long ponder_sgemm_chunk_f32(void) { return SKC_F32; }

// Bytes of one packed panel of one chunk of op(B) (a full chunk's, so chunks sit at fixed offsets).
static size_t panelBytes(const SJob *j) {
    return j->bf16 ? (size_t)((j->kcMax + 1) / 2) * 64 * sizeof(uint16_t) : (size_t)j->kcMax * 32 * sizeof(float);
}

// Panel p of chunk `chunk` of op(B): in the shared prepacked copy, or in this part's own packing of
// its panels pLo..<pHi (chunk-major, each chunk with room for a full one).
static const void *panelAt(const SJob *j, const void *own, long chunk, long p, long pLo, long pHi, long kc) {
    long pairsMax = (j->kcMax + 1) / 2, pairs = (kc + 1) / 2;
    if (j->prepacked) return j->prepacked + (chunk * j->panels * pairsMax + p * pairs) * 64;
    if (j->shared) return (const float *)j->shared + (chunk * j->panels * j->kcMax + p * kc) * 32;
    if (j->bf16) return (const uint16_t *)own + (chunk * (pHi - pLo) * pairsMax + (p - pLo) * pairs) * 64;
    return (const float *)own + (chunk * (pHi - pLo) * j->kcMax + (p - pLo) * kc) * 32;
}

// Most bytes of op(B) one part packs at a time: a wider op(B) (an LM head's 151,936 × 896) is packed
// and used one column block after another, so the packing never holds a copy of a large operand.
static long packLimit = 32L << 20;

long ponder_sgemm_set_pack_limit(long bytes) {
    long old = packLimit;
    packLimit = bytes < 1 ? 1 : bytes;
    return old;
}

// K of chunk c of the product (the last one may be short).
static long chunkK(const SJob *j, long c) { return j->k - c * j->kcMax < j->kcMax ? j->k - c * j->kcMax : j->kcMax; }

// Slice `slice` of `slices` of the cache lines of op(A)'s block rows i0..<i0+rows × columns k0..<k0+kc,
// fetched into L2 ahead of its use: a block of a large activation comes from memory, and the kernels
// of the block before it hide that wait (packing it on demand stalled on its loads).
static void prefetchA(const SJob *j, long i0, long rows, long k0, long kc, long slice, long slices) {
    // Lines run along A's rows: op(A)'s rows when A is not transposed, else its columns. Each row takes
    // one line more than its floats fill, for a row not aligned to 64 bytes (that line: its last float).
    long lineRows = j->transA ? kc : rows, rowFloats = j->transA ? rows : kc, perRow = (rowFloats + 15) / 16 + 1;
    long total = lineRows * perRow, lo = total * slice / slices, hi = total * (slice + 1) / slices;
    long r = lo / perRow, l = lo % perRow;
    const float *row = j->transA ? j->a + (k0 + r) * j->lda + i0 : j->a + (i0 + r) * j->lda + k0;
    for (long x = lo; x < hi; x++) {
        __builtin_prefetch(row + (l * 16 < rowFloats ? l * 16 : rowFloats - 1), 0, 2);
        if (++l == perRow) {
            l = 0;
            row += j->lda;
        }
    }
}

// One part: its rows of C (or its panels). It packs every chunk of a block of the panels it reads
// (a copy of that block per part when it splits rows, small beside its share of the product), so
// the parts never wait for each other; then for each 64-row block it runs the chunks of K in order,
// the block of C staying in cache between them; then the next block of panels. The blocks change
// only which columns are computed when, not any element's sum. Long on purpose: the packing of A's
// block and the kernel calls share the block's layout, chosen just above them.
static void runPart(void *arg, long part) {
    SJob *j = arg;
    long blocks = (j->m + SMC - 1) / SMC, rLo = 0, rHi = blocks, pLo = 0, pHi = j->panels;
    if (j->splitRows) {
        rLo = blocks * part / j->parts;
        rHi = blocks * (part + 1) / j->parts;
    } else {
        pLo = j->panels * part / j->parts;
        pHi = j->panels * (part + 1) / j->parts;
    }
    if (rLo >= rHi || pLo >= pHi) return;
    long chunks = (j->k + j->kcMax - 1) / j->kcMax;
    size_t panelChunk = panelBytes(j);
    long width = j->prepacked || j->shared ? pHi - pLo : packLimit / (long)(panelChunk * chunks);
    if (width < 1) width = 1;
    scratchA = ponder_scratch_grow(scratchA, &capA, (size_t)SMC * (j->kcMax + 1) * 4);
    for (long bLo = pLo; bLo < pHi; bLo += width) {
        long bHi = bLo + width < pHi ? bLo + width : pHi;
        if (!j->prepacked && !j->shared) {
            size_t perChunk = (size_t)(bHi - bLo) * panelChunk;
            scratchB = ponder_scratch_grow(scratchB, &capB, perChunk * chunks);
            for (long c = 0; c < chunks; c++) {
                long k0 = c * j->kcMax, kc = chunkK(j, c);
                packB(j, k0, kc, bLo, bHi, (char *)scratchB + c * perChunk);
            }
        }
        for (long rb = rLo; rb < rHi; rb++) {
            long i0 = rb * SMC, i1 = i0 + SMC < j->m ? i0 + SMC : j->m, rows = i1 - i0;
            for (long c = 0; c < chunks; c++) {
                long k0 = c * j->kcMax, kc = chunkK(j, c), pairs = (kc + 1) / 2;
                int first = c == 0;
                const float *af = NULL;
                const uint32_t *ab = NULL;
                long rs = 0;  // row r of this block of A at a + r·rs (bf16 pairs, or float32 read in place)
                if (j->bf16) {  // rows × pairs of bfloat16 pairs
                    packABF16(j, i0, rows, k0, kc, scratchA);
                    ab = scratchA;
                    rs = pairs;
                } else if (j->transA) {  // groups of 8 rows, interleaved: [group][kk][8], read straight from A's rows
                    // Row by row of A (each read once, contiguously), its 8-float pieces to their groups.
                    float *dst = scratchA;
                    long full = rows / 8 * 8;
                    for (long kk = 0; kk < kc; kk++) {
                        const float *src = j->a + (k0 + kk) * j->lda + i0;
                        if (kk + 8 < kc) {  // A's rows lie lda apart: fetch ahead what the prefetcher cannot guess
                            for (long g = 0; g < rows; g += 16) __builtin_prefetch(src + 8 * j->lda + g);
                        }
                        for (long g = 0; g < full; g += 8) memcpy(dst + g * kc + kk * 8, src + g, 8 * sizeof(float));
                        for (long r = 0; r < 8 && full < rows; r++) dst[full * kc + kk * 8 + r] = full + r < rows ? src[full + r] : 0;
                    }
                    af = scratchA;
                } else {
                    af = j->a + i0 * j->lda + k0;
                    rs = j->lda;
                }
                // The block after this one, in this loop's order, fetched a slice per panel.
                long nrb = c + 1 < chunks ? rb : rb + 1, nc = c + 1 < chunks ? c + 1 : 0;
                long ni0 = nrb * SMC, nrows = j->m - ni0 < SMC ? j->m - ni0 : SMC;
                for (long p = bLo; p < bHi; p++) {
                    if (nrb < rHi) prefetchA(j, ni0, nrows, nc * j->kcMax, chunkK(j, nc), p - bLo, bHi - bLo);
                    long cols = j->n - p * 32 < 32 ? j->n - p * 32 : 32;
                    float *cp = j->c + i0 * j->ldc + p * 32;
                    const void *bp = panelAt(j, scratchB, c, p, bLo, bHi, kc);
                    long i = 0, ldc = j->ldc;
                    float al = j->alpha, be = j->beta;
                    if (j->bf16) {
                        const uint16_t *b = bp;
                        for (; i + 8 <= rows; i += 8) kb8(ab + i * rs, rs, b, pairs, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i + 4 <= rows; i += 4) kb4(ab + i * rs, rs, b, pairs, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i + 2 <= rows; i += 2) kb2(ab + i * rs, rs, b, pairs, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i < rows; i++) kb1(ab + i * rs, rs, b, pairs, cp + i * ldc, ldc, cols, al, be, first);
                    } else {
                        const float *b = bp;
                        // row i of the block: at a + i·rs (direct), or in its 8-row group (interleaved)
#define SK_ROW(i) (j->transA ? af + ((i) / 8) * 8 * kc + (i) % 8 : af + (i) * rs)
                        long ars = j->transA ? 1 : rs, aks = j->transA ? 8 : 1;
                        for (; i + 8 <= rows; i += 8) kf8(SK_ROW(i), ars, aks, b, kc, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i + 4 <= rows; i += 4) kf4(SK_ROW(i), ars, aks, b, kc, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i + 2 <= rows; i += 2) kf2(SK_ROW(i), ars, aks, b, kc, cp + i * ldc, ldc, cols, al, be, first);
                        for (; i < rows; i++) kf1(SK_ROW(i), ars, aks, b, kc, cp + i * ldc, ldc, cols, al, be, first);
#undef SK_ROW
                    }
                }
            }
        }
    }
}

static void runSerially(long parts, ponder_body_fn body, void *arg) {
    for (long p = 0; p < parts; p++) body(arg, p);
}

// Part `part` of packing all of op(B) once into j->shared, in the layout panelAt reads (bfloat16 as
// `prepacked`): its share of the panels, every chunk.
static void packPart(void *arg, long part) {
    SJob *j = arg;
    long lo = j->panels * part / j->parts, hi = j->panels * (part + 1) / j->parts, pairsMax = (j->kcMax + 1) / 2;
    for (long c = 0; c * j->kcMax < j->k; c++) {
        long k0 = c * j->kcMax, kc = chunkK(j, c);
        void *dst = j->bf16 ? (void *)((uint16_t *)j->shared + (c * j->panels * pairsMax + lo * ((kc + 1) / 2)) * 64)
                            : (void *)((float *)j->shared + (c * j->panels * j->kcMax + lo * kc) * 32);
        packB(j, k0, kc, lo, hi, dst);
    }
}

// The calling thread's buffer for an op(B) that its parts pack between them.
static __thread void *scratchShared;
static __thread size_t capShared;

static void run(SJob *j, long parts, ponder_parallel_fn runParts) {
    long blocks = (j->m + SMC - 1) / SMC;
    j->parts = parts < 1 ? 1 : parts;
    // Splitting rows, every part packs all of op(B); splitting panels, every part reads (or packs) all
    // of op(A): split the dimension whose operand is larger, unless it has fewer units than parts.
    int rows = j->m >= j->n;
    if (rows && blocks < j->parts && j->panels > blocks) rows = 0;
    if (!rows && j->panels < j->parts && blocks > j->panels) rows = 1;
    j->splitRows = rows;
    long units = j->splitRows ? blocks : j->panels;
    if (j->parts > units) j->parts = units;
    if (j->parts == 1 || !runParts) runParts = runSerially;
    // Split by rows, each part would pack all of op(B) for itself: when it fits the packing limit, the
    // parts pack it once between them first (each a share of the panels), then all read it. The panels
    // hold the same values either way, so no sum changes.
    long chunks = (j->k + j->kcMax - 1) / j->kcMax;
    size_t sharedBytes = (size_t)chunks * j->panels * panelBytes(j);
    if (!j->prepacked && j->splitRows && runParts != runSerially && (long)sharedBytes <= packLimit) {
        scratchShared = ponder_scratch_grow(scratchShared, &capShared, sharedBytes);
        j->shared = scratchShared;
        long parts = j->parts;
        if (j->parts > j->panels) j->parts = j->panels;  // packPart splits panels
        runParts(j->parts, packPart, j);
        j->parts = parts;
        if (j->bf16) {
            j->prepacked = j->shared;
            j->shared = NULL;
        }
    }
    runParts(j->parts, runPart, j);
}

void ponder_sgemm_parallel(int bf16, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                           long lda, const float *b, long ldb, float beta, float *c, long ldc, long parts,
                           ponder_parallel_fn runParts) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (long i = 0; i < m; i++)
            for (long jj = 0; jj < n; jj++) c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];
        return;
    }
    SJob j = {.bf16 = bf16, .transA = transA, .transB = transB, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
              .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c, .panels = (n + 31) / 32,
              .kcMax = bf16 ? SKC_BF16 : SKC_F32};  // fixed by the precision alone, never the split
    run(&j, parts, runParts);
}

long ponder_sgemm_pack_bf16_count(long n, long k) {
    long chunks = (k + SKC_BF16 - 1) / SKC_BF16;
    return chunks * ((n + 31) / 32) * (SKC_BF16 / 2) * 64;
}

void ponder_sgemm_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out) {
    SJob j = {.bf16 = 1, .transB = 1, .n = n, .k = k, .ldb = ldw, .b = w, .panels = (n + 31) / 32, .kcMax = SKC_BF16};
    for (long k0 = 0, chunk = 0; k0 < k; k0 += SKC_BF16, chunk++) {
        long kc = k - k0 < SKC_BF16 ? k - k0 : SKC_BF16;
        packB(&j, k0, kc, 0, j.panels, out + chunk * j.panels * (SKC_BF16 / 2) * 64);
    }
}

// One thread: where the packing's memory is new, two threads faulting its pages in at once were
// slower on a 2-core VM than one (0.8 GB: medians 1.0 s against 0.44 s; the scalar loop before, 0.58 s).
void ponder_pack_transposed(const float *w, long n, long k, long ldw, float *out) {
    SJob j = {.transB = 1, .n = n, .k = k, .ldb = ldw, .b = w};
    for (long p = 0; p < (n + 31) / 32; p++) packPanelF32T(&j, 0, k, p, n - p * 32 < 32 ? n - p * 32 : 32, out + p * k * 32);
}

void ponder_sgemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                              long ldc, long parts, ponder_parallel_fn runParts) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    SJob j = {.bf16 = 1, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc, .alpha = 1, .beta = 0, .a = a, .c = c,
              .panels = (n + 31) / 32, .kcMax = SKC_BF16, .prepacked = packed};
    run(&j, parts, runParts);
}

#else

int ponder_avx512bf16_available(void) { return 0; }

int ponder_cpu_is_amd(void) { return 0; }

void ponder_sgemm_parallel(int bf16, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                           long lda, const float *b, long ldb, float beta, float *c, long ldc, long parts,
                           ponder_parallel_fn run) {
    (void)bf16; (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)b; (void)ldb; (void)beta; (void)c; (void)ldc; (void)parts; (void)run;
}

long ponder_sgemm_pack_bf16_count(long n, long k) { (void)n; (void)k; return 0; }

long ponder_sgemm_set_pack_limit(long bytes) { (void)bytes; return 0; }

void ponder_sgemm_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out) {
    (void)w; (void)n; (void)k; (void)ldw; (void)out;
}

void ponder_pack_transposed(const float *w, long n, long k, long ldw, float *out) {
    for (long p = 0; p < (n + 31) / 32; p++)
        for (long j = 0; j < 32; j++)
            for (long kk = 0; kk < k; kk++) out[(p * k + kk) * 32 + j] = p * 32 + j < n ? w[(p * 32 + j) * ldw + kk] : 0;
}

void ponder_sgemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                              long ldc, long parts, ponder_parallel_fn run) {
    (void)a; (void)m; (void)k; (void)lda; (void)packed; (void)n; (void)c; (void)ldc; (void)parts; (void)run;
}

#endif

void *ponder_scratch_grow(void *p, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return p;
    free(p);
    *cap = bytes + bytes / 4;
    void *q = aligned_alloc(64, (*cap + 63) / 64 * 64);
    if (!q) {
        fprintf(stderr, "ponder: out of memory packing a matrix product (%zu bytes)\n", *cap);
        abort();
    }
    return q;
}
