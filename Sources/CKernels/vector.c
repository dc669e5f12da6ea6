// AVX-512 bodies of Autograd's elementwise kernels (Kernels.swift, which alone calls them; see include/ckernels.h).
// Swift compiles its SIMD16 code for baseline x86-64, four 128-bit operations per vector (perf
// annotate of SwiGLU: SSE `mulps`/`addps` on xmm registers); these run each 16-lane step as one
// 512-bit operation. Every lane does the same operations in the same order as the Swift code, with
// no fused multiply-adds, so the results are the same bits; Swift keeps the reductions across lanes
// and, for the functions that return a count, the tails. Max does both itself: a maximum is exact,
// so the order of its comparisons cannot change it.

#include "ckernels.h"

#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

// The lanes of a 16-float step with `left` floats left: all 16, or the first `left`.
static inline __mmask16 tailMask(long left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

// Kernels.exp: clamp, n = round(x·log₂e) through the 1.5·2²³ trick, r = x − n·ln2 (ln 2 in two
// parts), a degree-6 polynomial, and 2ⁿ put into the exponent bits.
__attribute__((target("avx512f"))) static inline __m512 vexp(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.7f);
    x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), x, lo);
    x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), x, hi);
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.69314575f))),
                             _mm512_mul_ps(n, _mm512_set1_ps(1.4286068e-6f)));
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic));
    __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(scale));
}

// σ(x) = 1 / (1 + e^(−x)), as Kernels.swiglu computes it.
__attribute__((target("avx512f"))) static inline __m512 vsigmoid(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 negated = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    return _mm512_div_ps(one, _mm512_add_ps(one, vexp(negated)));
}

__attribute__((target("avx512f"))) long ponder_swiglu(const float *g, const float *u, float *y, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 s = vsigmoid(x);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_loadu_ps(u + i)));
    }
    return i;
}

__attribute__((target("avx512f"))) long ponder_swiglu_backward(const float *g, const float *u, const float *dy,
                                                                 float *dg, float *du, long n, int overwriteGate,
                                                                 int overwriteUp) {
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i), d = _mm512_loadu_ps(dy + i);
        __m512 s = vsigmoid(x);
        if (dg) {
            __m512 uu = _mm512_loadu_ps(u + i);
            __m512 old = overwriteGate ? zero : _mm512_loadu_ps(dg + i);
            __m512 slope = _mm512_add_ps(one, _mm512_mul_ps(x, _mm512_sub_ps(one, s)));
            __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, uu), s), slope);
            _mm512_storeu_ps(dg + i, _mm512_add_ps(old, v));
        }
        if (du) {
            __m512 old = overwriteUp ? zero : _mm512_loadu_ps(du + i);
            _mm512_storeu_ps(du + i, _mm512_add_ps(old, _mm512_mul_ps(_mm512_mul_ps(d, x), s)));
        }
    }
    return i;
}

__attribute__((target("avx512f"))) long ponder_exp_shifted(const float *x, float *y, long n, float shift, float *acc) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 a = _mm512_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = vexp(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        _mm512_storeu_ps(y + i, e);
        a = _mm512_add_ps(a, e);
    }
    _mm512_storeu_ps(acc, a);
    if (i < n) {  // the tail, through one vector padded with −100 (e^(−100 − shift) goes unused)
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_mask_blend_ps(m, _mm512_set1_ps(-100.0f), _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
        _mm512_mask_storeu_ps(y + i, m, vexp(v));
    }
    return i;
}

__attribute__((target("avx512f"))) float ponder_max(const float *x, long n) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    for (long i = 0; i < n; i += 16) {
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-__builtin_inff()), tailMask(n - i), x + i);
        m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ), m, v);
    }
    return _mm512_reduce_max_ps(m);
}

// One token's rotation (Tensor.rope): for each head and i < h = d/2, a = x[i], b = x[i + h], si = sign·sin[i],
// y[i] (+)= a·cos[i] − b·si, y[i + h] (+)= b·cos[i] + a·si; a partial last vector is masked.
__attribute__((target("avx512f"))) void ponder_rope(const float *x, float *y, const float *cs, const float *sn,
                                                      long heads, long d, float sign, int accumulate) {
    long h = d / 2;
    const __m512 sg = _mm512_set1_ps(sign);
    for (long hh = 0; hh < heads; hh++) {
        const float *xi = x + hh * d;
        float *yi = y + hh * d;
        for (long i = 0; i < h; i += 16) {
            __mmask16 m = tailMask(h - i);
            __m512 a = _mm512_maskz_loadu_ps(m, xi + i), b = _mm512_maskz_loadu_ps(m, xi + i + h);
            __m512 c = _mm512_maskz_loadu_ps(m, cs + i), si = _mm512_mul_ps(sg, _mm512_maskz_loadu_ps(m, sn + i));
            __m512 ya = _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, si));
            __m512 yb = _mm512_add_ps(_mm512_mul_ps(b, c), _mm512_mul_ps(a, si));
            if (accumulate) {
                ya = _mm512_add_ps(_mm512_maskz_loadu_ps(m, yi + i), ya);
                yb = _mm512_add_ps(_mm512_maskz_loadu_ps(m, yi + i + h), yb);
            }
            _mm512_mask_storeu_ps(yi + i, m, ya);
            _mm512_mask_storeu_ps(yi + i + h, m, yb);
        }
    }
}

// Kernels.dot's two accumulators over 32-float steps, then one 16-float step into the first.
__attribute__((target("avx512f"))) long ponder_dot_lanes(const float *a, const float *b, long n, float *lanes) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_add_ps(acc0, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
        acc1 = _mm512_add_ps(acc1, _mm512_mul_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_add_ps(acc0, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    _mm512_storeu_ps(lanes, _mm512_add_ps(acc0, acc1));
    return i;
}

// y[j] = x[j]·s·w[j] (RMSNorm's forward after the row's scale).
__attribute__((target("avx512f"))) void ponder_scale_mul(const float *x, float s, const float *w, float *y, long n) {
    const __m512 vs = _mm512_set1_ps(s);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

// out[i] = y[i] + alpha·x[i] (Kernels.axpy), a partial last vector masked.
__attribute__((target("avx512f"))) void ponder_axpy(float alpha, const float *x, const float *y, float *out, long n) {
    const __m512 a = _mm512_set1_ps(alpha);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

// RMSNorm's backward for one row: gw = g·w; then dx (+)= s·gw − k·x once the caller has k (its dot).
__attribute__((target("avx512f"))) void ponder_mul(const float *a, const float *b, float *out, long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

__attribute__((target("avx512f"))) void ponder_rmsnorm_dx(float s, const float *gw, float k, const float *x, float *dx,
                                                       long n, int overwrite) {
    const __m512 vs = _mm512_set1_ps(s), vk = _mm512_set1_ps(k);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_sub_ps(_mm512_mul_ps(vs, _mm512_maskz_loadu_ps(m, gw + i)),
                                 _mm512_mul_ps(vk, _mm512_maskz_loadu_ps(m, x + i)));
        if (!overwrite) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), v);
        _mm512_mask_storeu_ps(dx + i, m, v);
    }
}

// acc[j] += g[j]·x[j]·s (RMSNorm's weight gradient, one row).
__attribute__((target("avx512f"))) void ponder_rmsnorm_dw(float *acc, const float *g, const float *x, float s, long n) {
    const __m512 vs = _mm512_set1_ps(s);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, x + i)), vs);
        _mm512_mask_storeu_ps(acc + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, acc + i), v));
    }
}

// AdamW on n parameters (Training's AdamW.update): m = b1·m + (1 − b1)·g, v = b2·v + (1 − b2)·g·g,
// w = w·decay − stepSize·m / (√v / c2s + eps), with omb1 = 1 − b1 and omb2 = 1 − b2 as the caller rounds them.
__attribute__((target("avx512f"))) void ponder_adamw(float *w, const float *g, float *m, float *v, long n, float b1,
                                                       float omb1, float b2, float omb2, float decay, float stepSize,
                                                       float c2s, float eps) {
    const __m512 vb1 = _mm512_set1_ps(b1), vo1 = _mm512_set1_ps(omb1), vb2 = _mm512_set1_ps(b2), vo2 = _mm512_set1_ps(omb2);
    const __m512 vd = _mm512_set1_ps(decay), vst = _mm512_set1_ps(stepSize), vc = _mm512_set1_ps(c2s), ve = _mm512_set1_ps(eps);
    for (long i = 0; i < n; i += 16) {
        __mmask16 k = tailMask(n - i);
        __m512 gj = _mm512_maskz_loadu_ps(k, g + i);
        __m512 mj = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(vo1, gj));
        __m512 vj = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_maskz_loadu_ps(k, v + i)), _mm512_mul_ps(_mm512_mul_ps(vo2, gj), gj));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vj), vc), ve);
        __m512 wj = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + i), vd), _mm512_div_ps(_mm512_mul_ps(vst, mj), den));
        _mm512_mask_storeu_ps(m + i, k, mj);
        _mm512_mask_storeu_ps(v + i, k, vj);
        _mm512_mask_storeu_ps(w + i, k, wj);
    }
}

// x[j] *= s (a softmax row's normalisation).
__attribute__((target("avx512f"))) void ponder_scale(float *x, float s, long n) {
    const __m512 vs = _mm512_set1_ps(s);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
}

// d[j] = p[j]·(d[j] − dot)·scale (a softmax row's backward, dot = Σ p·d).
__attribute__((target("avx512f"))) void ponder_softmax_grad(const float *p, float *d, long n, float dot, float scale) {
    const __m512 vd = _mm512_set1_ps(dot), vs = _mm512_set1_ps(scale);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = tailMask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + i), _mm512_sub_ps(_mm512_maskz_loadu_ps(m, d + i), vd)), vs);
        _mm512_mask_storeu_ps(d + i, m, v);
    }
}

#else

long ponder_swiglu(const float *g, const float *u, float *y, long n) {
    (void)g; (void)u; (void)y; (void)n;
    return 0;
}
long ponder_swiglu_backward(const float *g, const float *u, const float *dy, float *dg, float *du, long n,
                            int overwriteGate, int overwriteUp) {
    (void)g; (void)u; (void)dy; (void)dg; (void)du; (void)n; (void)overwriteGate; (void)overwriteUp;
    return 0;
}
long ponder_exp_shifted(const float *x, float *y, long n, float shift, float *acc) {
    (void)x; (void)y; (void)n; (void)shift; (void)acc;
    return 0;
}
float ponder_max(const float *x, long n) {
    (void)x; (void)n;
    return 0;
}

void ponder_rope(const float *x, float *y, const float *cs, const float *sn, long heads, long d, float sign,
                 int accumulate) {
    (void)x; (void)y; (void)cs; (void)sn; (void)heads; (void)d; (void)sign; (void)accumulate;
}
long ponder_dot_lanes(const float *a, const float *b, long n, float *lanes) {
    (void)a; (void)b; (void)n; (void)lanes;
    return 0;
}
void ponder_scale_mul(const float *x, float s, const float *w, float *y, long n) {
    (void)x; (void)s; (void)w; (void)y; (void)n;
}
void ponder_axpy(float alpha, const float *x, const float *y, float *out, long n) {
    (void)alpha; (void)x; (void)y; (void)out; (void)n;
}
void ponder_mul(const float *a, const float *b, float *out, long n) {
    (void)a; (void)b; (void)out; (void)n;
}
void ponder_scale(float *x, float s, long n) {
    (void)x; (void)s; (void)n;
}
void ponder_softmax_grad(const float *p, float *d, long n, float dot, float scale) {
    (void)p; (void)d; (void)n; (void)dot; (void)scale;
}
void ponder_adamw(float *w, const float *g, float *m, float *v, long n, float b1, float omb1, float b2, float omb2,
                  float decay, float stepSize, float c2s, float eps) {
    (void)w; (void)g; (void)m; (void)v; (void)n; (void)b1; (void)omb1; (void)b2; (void)omb2; (void)decay;
    (void)stepSize; (void)c2s; (void)eps;
}
void ponder_rmsnorm_dx(float s, const float *gw, float k, const float *x, float *dx, long n, int overwrite) {
    (void)s; (void)gw; (void)k; (void)x; (void)dx; (void)n; (void)overwrite;
}
void ponder_rmsnorm_dw(float *acc, const float *g, const float *x, float s, long n) {
    (void)acc; (void)g; (void)x; (void)s; (void)n;
}

#endif
