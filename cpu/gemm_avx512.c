/* AVX-512 SGEMM level: 6×64 register tile (24 zmm accumulators, 4 zmm of
 * B per step of k, A broadcast from memory), specialised for narrower edge
 * tiles. */
#include "gemm_kernels.h"
#include "isa.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#include <immintrin.h>
#include "gemm_x86.h"

#define GEMM_MR 6
#define GEMM_NR 64

/* mask16 has the first n (clamped to 0..16) lanes set. */
static inline __mmask16 mask16(int n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
}

/* ukr_body: the 6×64 tile with A and B read in place (see gemm_impl.h):
 * A(i,p) = a[i·rsa + p·csa], B(p,j) = b[p·ldb + j]. mr (rows, 1..6), nv
 * (vectors of 16 columns, 1..4) and full (nr == 64) are compile-time
 * constants in every instantiation, so rows and vectors past the edge are
 * neither loaded nor computed, and a narrow edge tile costs only its width.
 * Columns past nr in the last vector are masked off: masked lanes are
 * neither read nor written, so nothing outside the operands is touched. */
static inline __attribute__((always_inline)) void ukr_body(
    int kc, const float *a, long rsa, long csa, const float *b, long ldb,
    float *c, long ldc, float alpha, float beta, int nr, const int mr, const int nv, const int full)
{
    const float *ar[GEMM_MR];
    __mmask16 km[4];
    __m512 acc[GEMM_MR][4];
#pragma GCC unroll 6
    for (int i = 0; i < GEMM_MR; i++) {
        ar[i] = a + (i < mr ? i * rsa : 0);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            acc[i][v] = _mm512_setzero_ps();
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
        km[v] = full ? 0xFFFF : mask16(nr - 16 * v);
    long off = 0;
    for (int p = 0; p < kc; p++) {
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            bv[v] = full ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(km[v], b + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(ar[i][off]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
        off += csa;
        b += ldb;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __m512 x = _mm512_mul_ps(acc[i][v], va);
            if (full) {
                if (beta != 0.0f)
                    x = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16 * v), x);
                _mm512_storeu_ps(ci + 16 * v, x);
            } else {
                if (beta != 0.0f)
                    x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(km[v], ci + 16 * v), x);
                _mm512_mask_storeu_ps(ci + 16 * v, km[v], x);
            }
        }
    }
}

typedef void (*ukr_fn)(int, const float *, long, long, const float *, long, float *, long, float, float, int);

/* One instantiation per row count r and vector count v, masked, plus the
 * unmasked full-width tile per row count. */
#define UKR_DEF(r, v)                                                                              \
    static void ukr_##r##_##v(int kc, const float *a, long rsa, long csa, const float *b, long ldb, \
                              float *c, long ldc, float alpha, float beta, int nr)                 \
    {                                                                                              \
        ukr_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, nr, r, v, 0);                       \
    }
#define UKR_DEF_FULL(r)                                                                             \
    static void ukr_##r##_full(int kc, const float *a, long rsa, long csa, const float *b, long ldb, \
                               float *c, long ldc, float alpha, float beta, int nr)                 \
    {                                                                                               \
        ukr_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, nr, r, 4, 1);                        \
    }
#define UKR_ROW(r) UKR_DEF(r, 1) UKR_DEF(r, 2) UKR_DEF(r, 3) UKR_DEF(r, 4) UKR_DEF_FULL(r)
UKR_ROW(1) UKR_ROW(2) UKR_ROW(3) UKR_ROW(4) UKR_ROW(5) UKR_ROW(6)

/* ukr_table[mr-1][v]: v = 0..3 masked with v+1 vectors, v = 4 full width. */
static const ukr_fn ukr_table[GEMM_MR][5] = {
#define UKR_ENTRY(r) {ukr_##r##_1, ukr_##r##_2, ukr_##r##_3, ukr_##r##_4, ukr_##r##_full}
    UKR_ENTRY(1), UKR_ENTRY(2), UKR_ENTRY(3), UKR_ENTRY(4), UKR_ENTRY(5), UKR_ENTRY(6),
#undef UKR_ENTRY
};

/* ukr_direct is the GEMM_DIRECT_UKR of gemm_impl.h: it picks the
 * instantiation for the tile's rows and columns. */
static inline void ukr_direct(int kc, const float *a, long rsa, long csa, const float *b, long ldb,
                              float *c, long ldc, float alpha, float beta, int mr, int nr)
{
    int v = nr == GEMM_NR ? 4 : (nr + 15) / 16 - 1;
    ukr_table[mr - 1][v](kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, nr);
}

/* dot_rows computes rows i0, i0+1 (r == 2) or row i0 (r == 1) of
 * C = alpha·A·Bsᵀ + beta·C, 8 (r == 2) or 16 columns at a time: 16 accumulators of
 * 16 lanes along k, reduced at the end. Columns past n alias column 0 of
 * the block and are not stored; the k tail is read with a mask. */
static inline __attribute__((always_inline)) void dot_rows(
    int r, int n, int k, float alpha, const float *a0, const float *a1,
    const float *bs, long ldb, float beta, float *c0, float *c1)
{
    int kfull = k & ~15;
    __mmask16 kt = mask16(k - kfull);
    const int nb = r == 2 ? 8 : 16; /* columns per pass: 16 accumulators either way */
    for (int j = 0; j < n; j += nb) {
        int nr = n - j < nb ? n - j : nb;
        const float *br[2 * 8];
        for (int q = 0; q < nb; q++)
            br[q] = bs + (long)(j + (q < nr ? q : 0)) * ldb;
        __m512 s0[2 * 8], s1[8];
        for (int q = 0; q < nb; q++)
            s0[q] = s1[q < 8 ? q : 0] = _mm512_setzero_ps();
        for (int p = 0; p <= kfull; p += 16) {
            __m512 x0, x1 = _mm512_setzero_ps();
            if (p == kfull) {
                if (kt == 0)
                    break;
                x0 = _mm512_maskz_loadu_ps(kt, a0 + p);
                if (r == 2)
                    x1 = _mm512_maskz_loadu_ps(kt, a1 + p);
            } else {
                x0 = _mm512_loadu_ps(a0 + p);
                if (r == 2)
                    x1 = _mm512_loadu_ps(a1 + p);
            }
#pragma GCC unroll 16
            for (int q = 0; q < nb; q++) {
                __m512 y = p == kfull ? _mm512_maskz_loadu_ps(kt, br[q] + p) : _mm512_loadu_ps(br[q] + p);
                s0[q] = _mm512_fmadd_ps(x0, y, s0[q]);
                if (r == 2 && q < 8)
                    s1[q] = _mm512_fmadd_ps(x1, y, s1[q]);
            }
        }
        for (int q = 0; q < nr; q++) {
            float v = alpha * _mm512_reduce_add_ps(s0[q]);
            c0[j + q] = beta == 0.0f ? v : v + beta * c0[j + q];
            if (r == 2) {
                v = alpha * _mm512_reduce_add_ps(s1[q]);
                c1[j + q] = beta == 0.0f ? v : v + beta * c1[j + q];
            }
        }
    }
}

static void dot_avx512(int m, int n, int k, float alpha, const float *a, long lda,
                       const float *bs, long ldb, float beta, float *c, long ldc)
{
    int i = 0;
    for (; i + 2 <= m; i += 2)
        dot_rows(2, n, k, alpha, a + i * lda, a + (i + 1) * lda, bs, ldb, beta, c + i * ldc, c + (i + 1) * ldc);
    if (i < m)
        dot_rows(1, n, k, alpha, a + i * lda, a + i * lda, bs, ldb, beta, c + i * ldc, c + i * ldc);
}

/* KC: a 6×512 A sliver (12 KiB) stays in L1; NC: a 512×256 packed B block
 * (512 KiB) stays in this EPYC's 1 MiB L2. MC only bounds packed A. */
#define GEMM_KC 512
#define GEMM_MC 1020
#define GEMM_NC 256
#define GEMM_PACKB_T(b, ldb, kc, nc, dst) packB_trans_x86(b, ldb, kc, nc, GEMM_NR, dst)
#define GEMM_DIRECT_UKR ukr_direct
/* x·Wᵀ computed as (W·xᵀ)ᵀ when the batch fills whole vectors (gemm_impl.h). */
#define GEMM_TRANSPOSE transpose_x86
#define GEMM_SWAP_M(m) ((m) >= 32 && (m) % 16 == 0)
/* B in place up to m = 256 rows: measured as fast or faster than packed on
 * this EPYC even at ldb = 1024 (four cache lines per row of a sliver). */
#define GEMM_INPLACE_B(m, ldb) ((m) <= 256)
#define GEMM_DOT_M 4
#define GEMM_DOT dot_avx512
#define GEMM_NAME hw_sgemm_avx512
#include "gemm_impl.h"

#endif
