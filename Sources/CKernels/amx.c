// Mixed-precision GEMM on Intel AMX (see include/ckernels.h): operands rounded to bfloat16 (round to
// nearest even), products accumulated in float32 by the tile unit. Compiled for any x86-64 CPU: only
// these functions carry the AMX and AVX-512 targets, and they run only after ponder_amx_available().
//
// Layout: the K dimension is cut into chunks of KC; per chunk both operands are packed into 16×32
// bfloat16 tiles (A row-major, B in the pair-interleaved "VNNI" order that TDPBF16PS reads), then
// every 32×32 block of C is computed with four accumulator tiles. Each element of C is summed over K
// in the same order whatever m, n or the caller's split of rows, so results do not depend on threads.
// Across threads (ponder_gemm_bf16_parallel), the parts first pack B between them, then each packs and
// computes its own 32-row blocks; the caller supplies the parallel loop (Ponder's pool, pool.c).

#include "ckernels.h"
#include "bf16pack.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PONDER_KC 768  // K per chunk: a chunk of B for n = 768 is 1.2 MB, inside a 2 MB L2

static int amxState = -1;

int ponder_amx_available(void) {
    if (amxState >= 0) return amxState;
    unsigned a, b, c, d;
    int ok = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1;
        unsigned a1 = 0, b1, c1, d1;
        int avx512bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1);
        if (tile && bf16 && avx512f && avx512bw && avx512bf16 && __get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1)) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            // The OS saves tile state (XCR0 bits 17, 18) and grants this process its use.
            if (((lo >> 17) & 3) == 3 && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0) ok = 1;
        }
    }
    amxState = ok;
    return ok;
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) TileConfig;

// Grow-only scratch per thread: packing buffers are reused across calls (fresh pages would fault).
static __thread uint16_t *scratchA, *scratchB;
static __thread float *scratchC;
static __thread size_t capA, capB, capC;

// Packs op(A) rows [0, m) × columns [k0, k0 + kc) into tiles: tile (mb, kb) at ((mb/2·kt + kb)·2 + mb%2)·512
// values (each pair of row tiles side by side, so the kernel reads one stream), row r holding
// op(A)[mb·16 + r][k0 + kb·32 …+32]; zero past m and past k.
__attribute__((target(PONDER_BF16_TARGET))) static void packA(int trans, const float *a, long lda, long m, long k,
                                                              long k0, long kt, long mt, uint16_t *out) {
    // Transposed, consecutive tiles along M read consecutive lines of the same 32 rows of a.
    for (long outer = 0; outer < (trans ? kt : mt); outer++)
        for (long inner = 0; inner < (trans ? mt : kt); inner++) {
            long mb = trans ? inner : outer, kb = trans ? outer : inner;
            __m512i *tile = (__m512i *)(out + (((mb >> 1) * kt + kb) * 2 + (mb & 1)) * 512);
            long kk = k0 + kb * 32, kv = k - kk, mv = m - mb * 16;  // valid columns from kk, rows from mb·16
            if (!trans) {
                if (mv >= 16 && kv >= 32) {
                    const float *p = a + mb * 16 * lda + kk;
                    for (int r = 0; r < 16; r++)
                        _mm512_storeu_si512(tile + r,
                                            cvt32(_mm512_loadu_ps(p + r * lda), _mm512_loadu_ps(p + r * lda + 16)));
                    continue;
                }
                for (int r = 0; r < 16; r++) {
                    const float *p = a + (mb * 16 + r) * lda + kk;
                    __m512i v = r < mv ? cvt32(load16(p, kv), load16(p + 16, kv - 16)) : _mm512_setzero_si512();
                    _mm512_storeu_si512(tile + r, v);
                }
            } else {
                // op(A)[i][kk + c] = a[(kk + c)·lda + i]: columns c, c+1 pair into one word per row i.
                __m512i v[16];
                for (int q = 0; q < 16; q++) {
                    const float *p = a + (kk + 2 * q) * lda + mb * 16;
                    __m512 e = 2 * q < kv ? load16(p, mv) : _mm512_setzero_ps();
                    __m512 o = 2 * q + 1 < kv ? load16(p + lda, mv) : _mm512_setzero_ps();
                    v[q] = pairs16(e, o);
                }
                transpose16(v);
                for (int r = 0; r < 16; r++) _mm512_storeu_si512(tile + r, v[r]);
            }
        }
}

// Packs op(B) rows [k0, k0 + kc) × columns [0, n) into VNNI tiles: tile (nb, kb) at ((nb/2·kt + kb)·2 +
// nb%2)·512 values (each pair of column tiles side by side), row r holding the pairs
// (op(B)[2r][j], op(B)[2r+1][j]) of that block for j = 0…15.
__attribute__((target(PONDER_BF16_TARGET))) static void packB(int trans, const float *b, long ldb, long n, long k,
                                                              long k0, long kt, long nbLo, long nbHi, uint16_t *out) {
    // Tiles nbLo..<nbHi only. Untransposed, consecutive tiles along N read consecutive lines of the same 32 rows of b.
    long nts = nbHi - nbLo;
    for (long outer = 0; outer < (trans ? nts : kt); outer++)
        for (long inner = 0; inner < (trans ? kt : nts); inner++) {
            long nb = nbLo + (trans ? outer : inner), kb = trans ? inner : outer;
            __m512i *tile = (__m512i *)(out + (((nb >> 1) * kt + kb) * 2 + (nb & 1)) * 512);
            long kk = k0 + kb * 32, kv = k - kk, nv = n - nb * 16;
            if (!trans) {
                for (int r = 0; r < 16; r++) {
                    const float *p = b + (kk + 2 * r) * ldb + nb * 16;
                    __m512 e = 2 * r < kv ? load16(p, nv) : _mm512_setzero_ps();
                    __m512 o = 2 * r + 1 < kv ? load16(p + ldb, nv) : _mm512_setzero_ps();
                    _mm512_storeu_si512(tile + r, pairs16(e, o));
                }
            } else {
                // op(B)[kk + c][j] = b[j·ldb + kk + c]: row j's 32 values are already 16 pairs in order.
                __m512i v[16];
                for (int j = 0; j < 16; j++) {
                    const float *p = b + (nb * 16 + j) * ldb + kk;
                    v[j] = j < nv ? cvt32(load16(p, kv), load16(p + 16, kv - 16)) : _mm512_setzero_si512();
                }
                transpose16(v);
                for (int r = 0; r < 16; r++) _mm512_storeu_si512(tile + r, v[r]);
            }
        }
}

__attribute__((target(PONDER_BF16_TARGET))) static void epilogue(const float *acc, long ldacc, long rows, long cols,
                                                                  float alpha, float beta, float *c, long ldc);

#define PONDER_AMX_TARGET "amx-tile,amx-bf16," PONDER_BF16_TARGET

// Eight 16-row × 64-byte tiles: 0-3 the 32×32 block of C, 4-5 two A tiles, 6-7 two B tiles.
__attribute__((target(PONDER_AMX_TARGET))) static void configureTiles(void) {
    TileConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
    _tile_loadconfig(&cfg);
}

// Tiles 0-3 += the pair of A tiles at pa times the pair of B tiles at pb, over kt K tiles, in K order.
__attribute__((target(PONDER_AMX_TARGET), always_inline)) static inline void blockProduct(const uint16_t *pa,
                                                                                        const uint16_t *pb, long kt) {
    for (long kb = 0; kb < kt; kb++) {
        _tile_loadd(4, pa + kb * 1024, 64);
        _tile_loadd(5, pa + kb * 1024 + 512, 64);
        _tile_loadd(6, pb + kb * 1024, 64);
        _tile_loadd(7, pb + kb * 1024 + 512, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
}

// Tiles 0-3 to rows × cols of c (at most 32 × 32) as c = alpha·tiles + beta·c: stored straight into c
// when the block is whole and alpha 1, beta 0, else through a buffer and the epilogue.
__attribute__((target(PONDER_AMX_TARGET))) static void storeBlock(float *c, long ldc, long rows, long cols, float alpha,
                                                                 float beta) {
    if (alpha == 1 && beta == 0 && rows == 32 && cols == 32) {
        _tile_stored(0, c, ldc * 4);
        _tile_stored(1, c + 16, ldc * 4);
        _tile_stored(2, c + 16 * ldc, ldc * 4);
        _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
        return;
    }
    float blk[32 * 32];
    _tile_stored(0, blk, 128);
    _tile_stored(1, blk + 16, 128);
    _tile_stored(2, blk + 512, 128);
    _tile_stored(3, blk + 528, 128);
    epilogue(blk, 32, rows, cols, alpha, beta, c, ldc);
}

// One product's state, shared by the parts that run it.
typedef struct {
    int transA, transB;
    long m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    long mt, nt, chunks, parts;
    uint16_t *packedB;  // op(B), every chunk, packed once for all parts: chunk ch at ch·nt·(KC/32)·512
    float *acc;         // (mt·16) × (nt·16) float32 sums between chunks, row stride ldacc
    long ldacc;
} Job;

static inline long chunkTiles(const Job *j, long ch) {  // K tiles in chunk ch
    long k0 = ch * PONDER_KC;
    return ((j->k - k0 < PONDER_KC ? j->k - k0 : PONDER_KC) + 31) / 32;
}

// Part p packs its share of B's column tiles (whole pairs), in every chunk.
static void packBPart(void *arg, long p) {
    Job *j = arg;
    long pairs = j->nt / 2, lo = pairs * p / j->parts, hi = pairs * (p + 1) / j->parts;
    if (lo >= hi) return;
    for (long ch = 0; ch < j->chunks; ch++)
        packB(j->transB, j->b, j->ldb, j->n, j->k, ch * PONDER_KC, chunkTiles(j, ch), 2 * lo, 2 * hi,
              j->packedB + ch * j->nt * (PONDER_KC / 32) * 512);
}

// Part p packs its rows of A (whole 32-row pairs) and computes those rows of C, chunk by chunk.
__attribute__((target(PONDER_AMX_TARGET))) static void computePart(void *arg, long p) {
    Job *j = arg;
    long pairs = j->mt / 2, lo = pairs * p / j->parts, hi = pairs * (p + 1) / j->parts;
    if (lo >= hi) return;
    long r0 = 32 * lo, rows = (32 * hi < j->m ? 32 * hi : j->m) - r0, mt = 2 * (hi - lo), nt = j->nt;
    long ktMax = j->k < PONDER_KC ? (j->k + 31) / 32 : PONDER_KC / 32;
    scratchA = ponder_scratch_grow(scratchA, &capA, (size_t)mt * ktMax * 1024);
    configureTiles();
    long ldacc = j->ldacc, ldc = j->ldc, n = j->n;
    float *c = j->c + r0 * ldc, *acc = j->acc ? j->acc + r0 * ldacc : NULL;
    for (long ch = 0; ch < j->chunks; ch++) {
        long kt = chunkTiles(j, ch);
        const uint16_t *packedB = j->packedB + ch * nt * (PONDER_KC / 32) * 512;
        packA(j->transA, j->a + (j->transA ? r0 : r0 * j->lda), j->lda, rows, j->k, ch * PONDER_KC, kt, mt,
              scratchA);
        for (long mb = 0; mb < mt; mb += 2)
            for (long nb = 0; nb < nt; nb += 2) {
                float *c00 = acc ? acc + mb * 16 * ldacc + nb * 16 : NULL;
                if (ch == 0) {
                    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                } else {
                    _tile_loadd(0, c00, ldacc * 4);
                    _tile_loadd(1, c00 + 16, ldacc * 4);
                    _tile_loadd(2, c00 + 16 * ldacc, ldacc * 4);
                    _tile_loadd(3, c00 + 16 * ldacc + 16, ldacc * 4);
                }
                blockProduct(scratchA + mb * kt * 512, packedB + nb * kt * 512, kt);
                long br = rows - mb * 16 < 32 ? rows - mb * 16 : 32, bc = n - nb * 16 < 32 ? n - nb * 16 : 32;
                if (j->chunks == 1) {  // one chunk: finish this block while it is in cache
                    storeBlock(c + mb * 16 * ldc + nb * 16, ldc, br, bc, j->alpha, j->beta);
                } else {
                    _tile_stored(0, c00, ldacc * 4);
                    _tile_stored(1, c00 + 16, ldacc * 4);
                    _tile_stored(2, c00 + 16 * ldacc, ldacc * 4);
                    _tile_stored(3, c00 + 16 * ldacc + 16, ldacc * 4);
                }
            }
    }
    _tile_release();
    if (j->chunks > 1) epilogue(acc, ldacc, rows, n, j->alpha, j->beta, c, ldc);
}

static void runSerially(long parts, ponder_body_fn body, void *arg) {
    for (long p = 0; p < parts; p++) body(arg, p);
}

void ponder_gemm_bf16_parallel(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                               const float *b, long ldb, float beta, float *c, long ldc, long parts,
                               ponder_parallel_fn run) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (long i = 0; i < m; i++)
            for (long jj = 0; jj < n; jj++) c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];
        return;
    }
    Job j = {.transA = transA, .transB = transB, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
             .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c};
    j.mt = (m + 31) / 32 * 2;  // 16-row / 16-column tiles, in pairs
    j.nt = (n + 31) / 32 * 2;
    j.chunks = (k + PONDER_KC - 1) / PONDER_KC;
    j.parts = parts < 1 ? 1 : parts;
    if (j.parts > j.mt / 2) j.parts = j.mt / 2;
    long ktMax = k < PONDER_KC ? (k + 31) / 32 : PONDER_KC / 32;
    scratchB = ponder_scratch_grow(scratchB, &capB, (size_t)j.chunks * j.nt * ktMax * 1024);
    j.packedB = scratchB;
    j.ldacc = j.nt * 16;
    if (j.chunks > 1) {
        scratchC = ponder_scratch_grow(scratchC, &capC, (size_t)j.mt * j.nt * 256 * sizeof(float));
        j.acc = scratchC;
    }
    if (j.parts == 1 || !run) run = runSerially;
    run(j.parts, packBPart, &j);
    run(j.parts, computePart, &j);
}

long ponder_pack_bf16_count(long n, long k) { return (n + 31) / 32 * 2 * ((k + 31) / 32) * 512; }

void ponder_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out) {
    packB(1, w, ldw, n, k, 0, (k + 31) / 32, 0, (n + 31) / 32 * 2, out);
}

// A product against a weight packed once (decoding): the parts split the columns.
typedef struct {
    const float *a;
    long m, k, lda, n, mt, kt, ldc, parts;
    const uint16_t *packedB;
    float *c;
} PackedJob;

// Part p packs all of A (a decode step's few rows; packing it once in the caller, for the other core to
// read, was not faster in `ponder bench generate`) and computes its share of the 32-column pairs.
__attribute__((target(PONDER_AMX_TARGET))) static void packedPart(void *arg, long p) {
    PackedJob *j = arg;
    long pairs = (j->n + 31) / 32, lo = pairs * p / j->parts, hi = pairs * (p + 1) / j->parts;
    if (lo >= hi) return;
    scratchA = ponder_scratch_grow(scratchA, &capA, (size_t)j->mt * j->kt * 1024);
    packA(0, j->a, j->lda, j->m, j->k, 0, j->kt, j->mt, scratchA);
    configureTiles();
    for (long nb = 2 * lo; nb < 2 * hi; nb += 2)
        for (long mb = 0; mb < j->mt; mb += 2) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            blockProduct(scratchA + mb * j->kt * 512, j->packedB + nb * j->kt * 512, j->kt);
            long rows = j->m - mb * 16 < 32 ? j->m - mb * 16 : 32, cols = j->n - nb * 16 < 32 ? j->n - nb * 16 : 32;
            storeBlock(j->c + mb * 16 * j->ldc + nb * 16, j->ldc, rows, cols, 1, 0);
        }
    _tile_release();
}

void ponder_gemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                             long ldc, long parts, ponder_parallel_fn run) {
    if (m <= 0 || n <= 0) return;
    long mt = (m + 31) / 32 * 2, kt = (k + 31) / 32;
    if (kt == 0) {
        for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    PackedJob j = {.a = a, .m = m, .k = k, .lda = lda, .n = n, .mt = mt, .kt = kt, .ldc = ldc,
                   .parts = parts < 1 ? 1 : parts, .packedB = packed, .c = c};
    if (j.parts > (n + 31) / 32) j.parts = (n + 31) / 32;
    (j.parts == 1 || !run ? runSerially : run)(j.parts, packedPart, &j);
}

// c = alpha·acc + beta·c over rows × cols (beta 0: c is not read).
__attribute__((target(PONDER_BF16_TARGET))) static void epilogue(const float *acc, long ldacc, long rows, long cols,
                                                                  float alpha, float beta, float *c, long ldc) {
    for (long i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        const float *ai = acc + i * ldacc;
        if (beta == 0) {
            for (long j = 0; j < cols; j++) ci[j] = alpha * ai[j];
        } else {
            for (long j = 0; j < cols; j++) ci[j] = alpha * ai[j] + beta * ci[j];
        }
    }
}

#else

int ponder_amx_available(void) { return 0; }

void ponder_gemm_bf16_parallel(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                               const float *b, long ldb, float beta, float *c, long ldc, long parts,
                               ponder_parallel_fn run) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; (void)parts; (void)run;
    abort();
}

long ponder_pack_bf16_count(long n, long k) { return (n + 31) / 32 * 2 * ((k + 31) / 32) * 512; }

void ponder_pack_bf16(const float *w, long n, long k, long ldw, uint16_t *out) {
    (void)w; (void)n; (void)k; (void)ldw; (void)out;
    abort();
}

void ponder_gemm_bf16_packed(const float *a, long m, long k, long lda, const uint16_t *packed, long n, float *c,
                             long ldc, long parts, ponder_parallel_fn run) {
    (void)a; (void)m; (void)k; (void)lda; (void)packed; (void)n; (void)c; (void)ldc; (void)parts; (void)run;
    abort();
}

#endif
