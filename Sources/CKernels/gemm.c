// AVX-512 GEMM against a pre-packed right operand (see include/ckernels.h). Compiled for any x86-64
// CPU: only the kernels carry target("avx512f"), and they run only after the runtime check.

#include "ckernels.h"
#include <math.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>

int ponder_packed_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

// MR rows × 32 columns: MR × 2 accumulators held in registers across the whole k loop, in groups of 4 steps.
// Each group also asks for `pfLines` cache lines of the next panel (into L2) from `pf`, so that
// the first pass over that panel, which would otherwise wait on memory at every load, finds it there.
#define PONDER_STEP(MR, kk)                                                                             \
    {                                                                                                   \
        __m512 b0 = _mm512_loadu_ps(b + (kk) * PONDER_PANEL);                                           \
        __m512 b1 = _mm512_loadu_ps(b + (kk) * PONDER_PANEL + 16);                                      \
        for (int r = 0; r < MR; r++) {                                                                  \
            __m512 x = _mm512_set1_ps(a[r * lda + (kk)]);                                               \
            lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);                                                      \
            hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);                                                      \
        }                                                                                               \
    }
#define PONDER_KERNEL(MR)                                                                               \
    __attribute__((target("avx512f"))) static void kernel##MR(const float *a, long lda, const float *b, \
                                                              long k, float *c, long ldc, long cols,    \
                                                              const float *pf, long pfLines) {          \
        __m512 lo[MR], hi[MR];                                                                          \
        for (int r = 0; r < MR; r++) { lo[r] = _mm512_setzero_ps(); hi[r] = _mm512_setzero_ps(); }     \
        long kk = 0;                                                                                    \
        for (; kk + 4 <= k; kk += 4) {                                                                  \
            for (long l = 0; l < pfLines; l++) _mm_prefetch((const char *)(pf + l * 16), _MM_HINT_T1);  \
            pf += pfLines * 16;                                                                         \
            _Pragma("clang loop unroll(disable)")                                                       \
            for (long j = kk; j < kk + 4; j++) PONDER_STEP(MR, j)                                       \
        }                                                                                               \
        for (; kk < k; kk++) PONDER_STEP(MR, kk)                                                        \
        /* a partial last panel stores only its `cols` columns */                                       \
        __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);                  \
        __mmask16 m1 = cols <= 16 ? (__mmask16)0 : (__mmask16)((1u << (cols - 16)) - 1);                \
        for (int r = 0; r < MR; r++) {                                                                  \
            _mm512_mask_storeu_ps(c + r * ldc, m0, lo[r]);                                              \
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, hi[r]);                                         \
        }                                                                                               \
    }

PONDER_KERNEL(8)
PONDER_KERNEL(4)
PONDER_KERNEL(2)
PONDER_KERNEL(1)

void ponder_gemm_packed(const float *a, long m, long k, long lda, const float *packed, long n,
                        long panelLo, long panelHi, float *c, long ldc) {
    // Rows in chunks of 64, so that a chunk of A (64 × k) stays in L2 while the panels stream by.
    // A panel is k × 32 floats = 2k cache lines. While one panel is multiplied, its row groups
    // prefetch the next one, spread evenly: a group covers k/4 steps, so 8 groups of 8 rows ask for
    // 1 line per step and fewer groups for more (a single 1-row group asks for all 8).
    for (long i0 = 0; i0 < m; i0 += 64) {
        long i1 = i0 + 64 < m ? i0 + 64 : m;
        long rows = i1 - i0;
        long groups = rows / 8 + (rows % 8 >= 4) + ((rows % 4) >= 2) + (rows % 2);
        long pfLines = groups >= 8 ? 1 : groups >= 4 ? 2 : groups >= 2 ? 4 : 8;
        long span = pfLines * 16 * (k / 4);  // floats one group prefetches
        long panelFloats = k * PONDER_PANEL;
        for (long p = panelLo; p < panelHi; p++) {
            long cols = n - p * PONDER_PANEL < PONDER_PANEL ? n - p * PONDER_PANEL : PONDER_PANEL;
            const float *b = packed + p * panelFloats;
            // the next panel, or this range's first one for the next row chunk, or (last of all) itself
            const float *next = p + 1 < panelHi ? b + panelFloats
                              : (i1 < m ? packed + panelLo * panelFloats : b);
            float *cp = c + p * PONDER_PANEL;
            // Group g prefetches its span of the next panel; a group past the panel's end asks for
            // nothing (and gets a pointer inside the panel, never one past it).
#define PONDER_FITS(g) ((g) * span + span <= panelFloats)
#define PONDER_PF(g) (PONDER_FITS(g) ? next + (g) * span : next), (PONDER_FITS(g) ? pfLines : 0)
            long i = i0, g = 0;
            for (; i + 8 <= i1; i += 8, g++) kernel8(a + i * lda, lda, b, k, cp + i * ldc, ldc, cols, PONDER_PF(g));
            for (; i + 4 <= i1; i += 4, g++) kernel4(a + i * lda, lda, b, k, cp + i * ldc, ldc, cols, PONDER_PF(g));
            for (; i + 2 <= i1; i += 2, g++) kernel2(a + i * lda, lda, b, k, cp + i * ldc, ldc, cols, PONDER_PF(g));
            for (; i < i1; i++, g++) kernel1(a + i * lda, lda, b, k, cp + i * ldc, ldc, cols, PONDER_PF(g));
#undef PONDER_PF
#undef PONDER_FITS
        }
    }
}

// ponder_attend_rows for a constant N (and, from its dispatch, a constant d where common): each row's sums
// run over its slots in order, exactly as for that row alone, and the N rows' independent chains interleave
// (one row alone waits on each multiply-add's latency at every key).
__attribute__((target("avx512f"), always_inline)) static inline void attend_rows(
    const int N, const float *const *q, const float *const *keys, const float *const *values,
    const float *const *prefixKeys, const float *const *prefixValues, long split, long start, long end,
    const long d, float scale, float *p, long pStride, float *const *out) {
    const long ahead = 8 * d;  // floats: 8 rows ahead
    float mx[4] = {-__builtin_inff(), -__builtin_inff(), -__builtin_inff(), -__builtin_inff()};
    for (long j = start; j <= end; j++) {
        for (int h = 0; h < N; h++) {
            const float *kj = (j < split ? prefixKeys[h] : keys[h]) + j * d;
            for (long c = 0; c < d; c += 16) _mm_prefetch((const char *)(kj + ahead + c), _MM_HINT_T0);
            __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(q[h]), _mm512_loadu_ps(kj));
            for (long c = 16; c < d; c += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q[h] + c), _mm512_loadu_ps(kj + c), acc);
            float s = _mm512_reduce_add_ps(acc) * scale;
            p[h * pStride + j] = s;
            if (s > mx[h]) mx[h] = s;
        }
    }
    float inv[4];
    for (int h = 0; h < N; h++) {
        float sum = 0, *ph = p + h * pStride;
        for (long j = start; j <= end; j++) {
            ph[j] = expf(ph[j] - mx[h]);
            sum += ph[j];
        }
        inv[h] = 1 / sum;
    }
    // out = Σ_j p[j]·inv·v_j in key order, 64 columns at a time held in registers across the keys (a
    // sum kept in `out` would wait on a store and a reload at every key).
    for (long c0 = 0; c0 < d; c0 += 64) {
        const long nv = d - c0 >= 64 ? 4 : (d - c0) / 16;
        __m512 acc[4][4];
        for (int h = 0; h < N; h++)
            for (int i = 0; i < 4; i++) acc[h][i] = _mm512_setzero_ps();
        for (long j = start; j <= end; j++) {
            for (int h = 0; h < N; h++) {
                const float *vj = (j < split ? prefixValues[h] : values[h]) + j * d + c0;
                _mm_prefetch((const char *)(vj + ahead), _MM_HINT_T0);
                const __m512 w = _mm512_set1_ps(p[h * pStride + j] * inv[h]);
                for (int i = 0; i < 4; i++)
                    if (i < nv) acc[h][i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vj + 16 * i), acc[h][i]);
            }
        }
        for (int h = 0; h < N; h++)
            for (int i = 0; i < 4; i++)
                if (i < nv) _mm512_storeu_ps(out[h] + c0 + 16 * i, acc[h][i]);
    }
}

__attribute__((target("avx512f"))) void ponder_attend_rows(long n, const float *const *q, const float *const *keys,
                                                           const float *const *values, const float *const *prefixKeys,
                                                           const float *const *prefixValues, long split, long start,
                                                           long end, long d, float scale, float *p, long pStride,
                                                           float *const *out) {
    // Every head size the kernel takes up to 128 (a multiple of 16) as a constant, so that the loops over a
    // row's vectors unroll without branches.
#define PONDER_ROW(N, D) attend_rows(N, q, keys, values, prefixKeys, prefixValues, split, start, end, D, scale, p, pStride, out)
#define PONDER_ROWS(D)                          \
    switch (n) {                                \
    case 1: PONDER_ROW(1, D); break;            \
    case 2: PONDER_ROW(2, D); break;            \
    case 3: PONDER_ROW(3, D); break;            \
    default: PONDER_ROW(4, D); break;           \
    }
    switch (d) {
    case 16: PONDER_ROWS(16) break;
    case 32: PONDER_ROWS(32) break;
    case 48: PONDER_ROWS(48) break;
    case 64: PONDER_ROWS(64) break;
    case 80: PONDER_ROWS(80) break;
    case 96: PONDER_ROWS(96) break;
    case 112: PONDER_ROWS(112) break;
    case 128: PONDER_ROWS(128) break;
    default: PONDER_ROWS(d) break;
    }
#undef PONDER_ROWS
#undef PONDER_ROW
}

#else

int ponder_packed_gemm_available(void) { return 0; }

void ponder_attend_rows(long n, const float *const *q, const float *const *keys, const float *const *values,
                        const float *const *prefixKeys, const float *const *prefixValues, long split, long start,
                        long end, long d, float scale, float *p, long pStride, float *const *out) {
    (void)n; (void)q; (void)keys; (void)values; (void)prefixKeys; (void)prefixValues; (void)split; (void)start; (void)end; (void)d; (void)scale; (void)p; (void)pStride;
    (void)out;
}

void ponder_gemm_packed(const float *a, long m, long k, long lda, const float *packed, long n,
                        long panelLo, long panelHi, float *c, long ldc) {
    (void)a; (void)m; (void)k; (void)lda; (void)packed; (void)n; (void)panelLo; (void)panelHi; (void)c; (void)ldc;
}

#endif

void ponder_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_MAX, 0);                // every block from the heap, where a freed one can be reused
    mallopt(M_TRIM_THRESHOLD, -1);         // and never given back to the system (-1: no trimming at all)
#endif
}
