// Vector helpers for packing operands, shared by amx.c and sgemm.c (private to CKernels). Every rounding goes through VCVTNE2PS2BF16: nearest even, denormals flushed to zero, so
// a product's packings round alike wherever they are made.
#ifndef PONDER_BF16PACK_H
#define PONDER_BF16PACK_H

#if defined(__x86_64__)
#include <immintrin.h>

#define PONDER_BF16_TARGET "avx512f,avx512bw,avx512bf16"

// The first `valid` of 16 floats at p (0 to 16; the rest 0), reading nothing past them.
__attribute__((target("avx512f"))) static inline __m512 load16(const float *p, long valid) {
    if (valid >= 16) return _mm512_loadu_ps(p);
    if (valid <= 0) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps((__mmask16)((1u << valid) - 1), p);
}

// 32 floats (lo: the first 16) to 32 bfloat16 in order.
__attribute__((target(PONDER_BF16_TARGET))) static inline __m512i cvt32(__m512 lo, __m512 hi) {
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// Two rows of 16 floats to 16 32-bit words, word j holding (e[j], o[j]) as bfloat16 (e in the low half).
__attribute__((target(PONDER_BF16_TARGET))) static inline __m512i pairs16(__m512 e, __m512 o) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(interleave, cvt32(e, o));
}

// 16×16 transpose of 32-bit words held in v: afterwards v[r] lane j = old v[j] lane r. Four stages;
// the stage for block size b swaps the off-diagonal b×b blocks of every 2b×2b block. AVX-512F only, so
// the float32 packing uses it too.
__attribute__((target("avx512f"))) static inline void transpose16(__m512i *v) {
    for (int b = 8; b >= 1; b >>= 1) {
        int lo[16], hi[16];
        for (int j = 0; j < 16; j++) {
            lo[j] = (j & b) ? 16 + j - b : j;
            hi[j] = (j & b) ? 16 + j : j + b;
        }
        __m512i il = _mm512_loadu_si512(lo), ih = _mm512_loadu_si512(hi);
        for (int i = 0; i < 16; i++) {
            if (i & b) continue;
            __m512i x = v[i], y = v[i + b];
            v[i] = _mm512_permutex2var_epi32(x, il, y);
            v[i + b] = _mm512_permutex2var_epi32(x, ih, y);
        }
    }
}

// Mask of the first n (0 to 16) of 16 lanes.
static inline __mmask16 lanes16(long n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

#endif
#endif
