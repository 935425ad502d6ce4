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

static inline void store_row(float *ci, __m256 x0, __m256 x1, __m256 va, float beta, int nr)
{
    x0 = _mm256_mul_ps(x0, va);
    x1 = _mm256_mul_ps(x1, va);
    if (nr == GEMM_NR) {
        if (beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(beta);
            x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), x0);
            x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), x1);
        }
        _mm256_storeu_ps(ci, x0);
        _mm256_storeu_ps(ci + 8, x1);
    } else {
        __m256i m0 = mask8(nr), m1 = mask8(nr - 8);
        if (beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(beta);
            x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), x0);
            x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), x1);
        }
        _mm256_maskstore_ps(ci, m0, x0);
        _mm256_maskstore_ps(ci + 8, m1, x1);
    }
}

/* ukr_direct (see gemm_impl.h): A(i,p) = a[i·rsa + p·csa] broadcast in
 * place, B(p,j) = b[p·ldb + j]; rows past mr alias row 0, columns past nr
 * are masked off, so nothing outside the operands is read. */
static inline __attribute__((always_inline)) void ukr_direct_body(
    int kc, const float *a, long rsa, long csa, const float *b, long ldb,
    float *c, long ldc, float alpha, float beta, int mr, int nr, int full)
{
    const float *a0 = a, *a1 = a + (mr > 1 ? rsa : 0), *a2 = a + (mr > 2 ? 2 * rsa : 0);
    const float *a3 = a + (mr > 3 ? 3 * rsa : 0), *a4 = a + (mr > 4 ? 4 * rsa : 0), *a5 = a + (mr > 5 ? 5 * rsa : 0);
    __m256i k0 = mask8(nr), k1 = mask8(nr - 8);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    long off = 0;
    for (int p = 0; p < kc; p++) {
        __m256 b0, b1, av;
        if (full) {
            b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        } else {
            b0 = _mm256_maskload_ps(b, k0), b1 = _mm256_maskload_ps(b + 8, k1);
        }
        av = _mm256_broadcast_ss(a0 + off); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a1 + off); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a2 + off); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a3 + off); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a4 + off); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a5 + off); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        off += csa;
        b += ldb;
    }
    __m256 va = _mm256_set1_ps(alpha);
    store_row(c, c00, c01, va, beta, nr);
    if (mr > 1) store_row(c + ldc, c10, c11, va, beta, nr);
    if (mr > 2) store_row(c + 2 * ldc, c20, c21, va, beta, nr);
    if (mr > 3) store_row(c + 3 * ldc, c30, c31, va, beta, nr);
    if (mr > 4) store_row(c + 4 * ldc, c40, c41, va, beta, nr);
    if (mr > 5) store_row(c + 5 * ldc, c50, c51, va, beta, nr);
}

static void ukr_direct(int kc, const float *a, long rsa, long csa, const float *b, long ldb,
                       float *c, long ldc, float alpha, float beta, int mr, int nr)
{
    if (nr == GEMM_NR)
        ukr_direct_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr, 1);
    else
        ukr_direct_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr, 0);
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
#define GEMM_INPLACE_B_M 18
#define GEMM_DOT_M 4
#define GEMM_DOT dot_avx2
#define GEMM_NAME hw_sgemm_avx2
#include "gemm_impl.h"

#endif
