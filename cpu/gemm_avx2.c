/* AVX2 + FMA SGEMM level: 6×16 register tile (12 ymm accumulators), A and
 * untransposed B read in place (see gemm_impl.h). */
#include "gemm_kernels.h"
#include "isa.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include "gemm_x86.h"

#define GEMM_MR 6
#define GEMM_NR 16

static const int avx2_mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* mask8 has the first n (0..8) lanes set. */
static inline __m256i mask8(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(avx2_mask_src + 8 - n));
}

/* ukr_body: the 6×16 tile with A and B read in place (see gemm_impl.h):
 * A(i,p) = a[i·rsa + p·csa], B(p,j) = b[p·ldb + j]. mr (rows, 1..6), nv
 * (vectors of 8 columns, 1..2) and full (nr == 16) are compile-time
 * constants in every instantiation, so rows and vectors past the edge are
 * neither loaded nor computed. Columns past nr are masked off: masked
 * lanes are neither read nor written. */
static inline __attribute__((always_inline)) void ukr_body(
    int kc, const float *a, long rsa, long csa, const float *b, long ldb,
    float *c, long ldc, float alpha, float beta, int nr, const int mr, const int nv, const int full)
{
    const float *ar[GEMM_MR];
    __m256i km[2];
    __m256 acc[GEMM_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < GEMM_MR; i++) {
        ar[i] = a + (i < mr ? i * rsa : 0);
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    }
    km[0] = mask8(nr);
    km[1] = mask8(nr - 8);
    /* C's rows are far apart when ldc is large, and the hardware does not
     * prefetch across them: ask for the tile's lines now, so the update
     * after the k loop does not wait on memory. */
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 8 * nv - 1), _MM_HINT_T0);
    }
    long off = 0;
    /* Unrolled four steps: one loop branch and counter a 48-FMA body
     * (make bench at n = 512 and 1024: about 6% on Zen 3). */
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        __m256 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            bv[v] = full ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, km[v]);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m256 av = _mm256_broadcast_ss(ar[i] + off);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
        }
        off += csa;
        b += ldb;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256 x = _mm256_mul_ps(acc[i][v], va);
            if (full) {
                if (beta != 0.0f)
                    x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8 * v), x);
                _mm256_storeu_ps(ci + 8 * v, x);
            } else {
                if (beta != 0.0f)
                    x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8 * v, km[v]), x);
                _mm256_maskstore_ps(ci + 8 * v, km[v], x);
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
        ukr_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, nr, r, 2, 1);                        \
    }
#define UKR_ROW(r) UKR_DEF(r, 1) UKR_DEF(r, 2) UKR_DEF_FULL(r)
UKR_ROW(1) UKR_ROW(2) UKR_ROW(3) UKR_ROW(4) UKR_ROW(5) UKR_ROW(6)

/* ukr_table[mr-1][v]: v = 0..1 masked with v+1 vectors, v = 2 full width. */
static const ukr_fn ukr_table[GEMM_MR][3] = {
#define UKR_ENTRY(r) {ukr_##r##_1, ukr_##r##_2, ukr_##r##_full}
    UKR_ENTRY(1), UKR_ENTRY(2), UKR_ENTRY(3), UKR_ENTRY(4), UKR_ENTRY(5), UKR_ENTRY(6),
#undef UKR_ENTRY
};

/* ukr_direct is the GEMM_DIRECT_UKR of gemm_impl.h: it picks the
 * instantiation for the tile's rows and columns. */
static inline void ukr_direct(int kc, const float *a, long rsa, long csa, const float *b, long ldb,
                              float *c, long ldc, float alpha, float beta, int mr, int nr)
{
    int v = nr == GEMM_NR ? 2 : (nr + 7) / 8 - 1;
    ukr_table[mr - 1][v](kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, nr);
}

static inline float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* dot_rows computes rows i0, i0+1 (r == 2) or row i0 (r == 1) of
 * C = alpha·A·Bsᵀ + beta·C, 4 (r == 2) or 8 columns at a time: 8 accumulators of 8
 * lanes along k, reduced at the end. Columns past n alias column 0 of the
 * block and are not stored; the k tail is read with a mask. */
static inline __attribute__((always_inline)) void dot_rows(
    int r, int n, int k, float alpha, const float *a0, const float *a1,
    const float *bs, long ldb, float beta, float *c0, float *c1)
{
    int kfull = k & ~7;
    __m256i kt = mask8(k - kfull);
    const int nb = r == 2 ? 4 : 8; /* columns per pass: 8 accumulators either way */
    for (int j = 0; j < n; j += nb) {
        int nr = n - j < nb ? n - j : nb;
        const float *br[2 * 4];
        for (int q = 0; q < nb; q++)
            br[q] = bs + (long)(j + (q < nr ? q : 0)) * ldb;
        __m256 s0[2 * 4], s1[4];
        for (int q = 0; q < nb; q++)
            s0[q] = s1[q < 4 ? q : 0] = _mm256_setzero_ps();
        for (int p = 0; p <= kfull; p += 8) {
            __m256 x0, x1 = _mm256_setzero_ps();
            int tail = p == kfull;
            if (tail && kfull == k)
                break;
            x0 = tail ? _mm256_maskload_ps(a0 + p, kt) : _mm256_loadu_ps(a0 + p);
            if (r == 2)
                x1 = tail ? _mm256_maskload_ps(a1 + p, kt) : _mm256_loadu_ps(a1 + p);
#pragma GCC unroll 8
            for (int q = 0; q < nb; q++) {
                __m256 y = tail ? _mm256_maskload_ps(br[q] + p, kt) : _mm256_loadu_ps(br[q] + p);
                s0[q] = _mm256_fmadd_ps(x0, y, s0[q]);
                if (r == 2 && q < 4)
                    s1[q] = _mm256_fmadd_ps(x1, y, s1[q]);
            }
        }
        for (int q = 0; q < nr; q++) {
            float v = alpha * hsum8(s0[q]);
            c0[j + q] = beta == 0.0f ? v : v + beta * c0[j + q];
            if (r == 2) {
                v = alpha * hsum8(s1[q]);
                c1[j + q] = beta == 0.0f ? v : v + beta * c1[j + q];
            }
        }
    }
}

static void dot_avx2(int m, int n, int k, float alpha, const float *a, long lda,
                     const float *bs, long ldb, float beta, float *c, long ldc)
{
    int i = 0;
    for (; i + 2 <= m; i += 2)
        dot_rows(2, n, k, alpha, a + i * lda, a + (i + 1) * lda, bs, ldb, beta, c + i * ldc, c + (i + 1) * ldc);
    if (i < m)
        dot_rows(1, n, k, alpha, a + i * lda, a + i * lda, bs, ldb, beta, c + i * ldc, c + i * ldc);
}

#define GEMM_KC 384
#define GEMM_MC 1020
#define GEMM_NC 512
#define GEMM_PACKB_T(b, ldb, kc, nc, dst) packB_trans_x86(b, ldb, kc, nc, GEMM_NR, dst)
#define GEMM_DIRECT_UKR ukr_direct
/* x·Wᵀ computed as (W·xᵀ)ᵀ when the batch fills whole vectors (gemm_impl.h). */
#define GEMM_TRANSPOSE transpose_x86
#define GEMM_SWAP_M(m) ((m) >= 16 && (m) % 8 == 0)
/* B in place for small m unless its rows are a multiple of 4 KiB apart: a
 * 16-float sliver row is one cache line, and such strides map every row of
 * the sliver to a few L1 and L2 sets (measured 87 vs 112 GFLOP/s at
 * m = 64, n = k = 1024). */
#define GEMM_INPLACE_B(m, ldb) ((m) <= 64 && (ldb) % 1024 != 0)
/* A packed, in BLIS's loop order, when its rows are a multiple of 4 KiB
 * apart (the set conflict B's comment describes) and there are many: at
 * n = 1024 on Zen 3 the median paired ratio to OpenBLAS (a C harness,
 * 25 alternating rounds, twice) is 0.90–0.91 in place and 0.94–0.98
 * packed; at n = 768, 1000 and 1040 in place is as fast, and at 256 and
 * 512 faster. Smaller m is not measured, so it stays in place. */
#define GEMM_PACK_A(m, lda) ((m) > 512 && (lda) % 1024 == 0)
#define GEMM_PACK_A_MC 96
#define GEMM_PACK_A_NC 1024
#define GEMM_DOT_M 4
#define GEMM_DOT dot_avx2
#define GEMM_NAME hw_sgemm_avx2
#include "gemm_impl.h"

#endif
