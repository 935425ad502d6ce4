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

#define GEMM_KC 384
#define GEMM_MC 1020
#define GEMM_NC 512
#define GEMM_PACKB_T(b, ldb, kc, nc, dst) packB_trans_x86(b, ldb, kc, nc, GEMM_NR, dst)
#define GEMM_DIRECT_UKR ukr_direct
#define GEMM_INPLACE_B_M 18
#define GEMM_NAME hw_sgemm_avx2
#include "gemm_impl.h"

#endif
