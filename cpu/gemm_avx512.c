/* AVX-512 SGEMM level: 6×64 register tile (24 zmm accumulators, 4 zmm of
 * B per step of k, A broadcast from memory). */
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

static inline void store_row(float *ci, __m512 x0, __m512 x1, __m512 x2, __m512 x3,
                             __m512 va, float beta, int nr)
{
    x0 = _mm512_mul_ps(x0, va);
    x1 = _mm512_mul_ps(x1, va);
    x2 = _mm512_mul_ps(x2, va);
    x3 = _mm512_mul_ps(x3, va);
    if (nr == GEMM_NR) {
        if (beta != 0.0f) {
            __m512 vb = _mm512_set1_ps(beta);
            x0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), x0);
            x1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), x1);
            x2 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 32), x2);
            x3 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 48), x3);
        }
        _mm512_storeu_ps(ci, x0);
        _mm512_storeu_ps(ci + 16, x1);
        _mm512_storeu_ps(ci + 32, x2);
        _mm512_storeu_ps(ci + 48, x3);
    } else {
        /* Masked-off lanes are neither read nor written (no faults). */
        __mmask16 m0 = mask16(nr), m1 = mask16(nr - 16), m2 = mask16(nr - 32), m3 = mask16(nr - 48);
        if (beta != 0.0f) {
            __m512 vb = _mm512_set1_ps(beta);
            x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), x0);
            x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), x1);
            x2 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m2, ci + 32), x2);
            x3 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m3, ci + 48), x3);
        }
        _mm512_mask_storeu_ps(ci, m0, x0);
        _mm512_mask_storeu_ps(ci + 16, m1, x1);
        _mm512_mask_storeu_ps(ci + 32, m2, x2);
        _mm512_mask_storeu_ps(ci + 48, m3, x3);
    }
}

/* ukr_direct: the same tile with A and B read in place (see gemm_impl.h):
 * A(i,p) = a[i·rsa + p·csa], B(p,j) = b[p·ldb + j]. Rows of A past mr alias
 * row 0 and columns of B past nr are masked off, so nothing outside the
 * operands is read. full is a compile-time constant in both callers. */
static inline __attribute__((always_inline)) void ukr_direct_body(
    int kc, const float *a, long rsa, long csa, const float *b, long ldb,
    float *c, long ldc, float alpha, float beta, int mr, int nr, int full)
{
    const float *a0 = a, *a1 = a + (mr > 1 ? rsa : 0), *a2 = a + (mr > 2 ? 2 * rsa : 0);
    const float *a3 = a + (mr > 3 ? 3 * rsa : 0), *a4 = a + (mr > 4 ? 4 * rsa : 0), *a5 = a + (mr > 5 ? 5 * rsa : 0);
    __mmask16 k0 = mask16(nr), k1 = mask16(nr - 16), k2 = mask16(nr - 32), k3 = mask16(nr - 48);
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    __m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    __m512 c40 = c00, c41 = c00, c42 = c00, c43 = c00;
    __m512 c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    long off = 0;
    for (int p = 0; p < kc; p++) {
        __m512 b0, b1, b2, b3, av;
        if (full) {
            b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
            b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
        } else {
            b0 = _mm512_maskz_loadu_ps(k0, b), b1 = _mm512_maskz_loadu_ps(k1, b + 16);
            b2 = _mm512_maskz_loadu_ps(k2, b + 32), b3 = _mm512_maskz_loadu_ps(k3, b + 48);
        }
#define DROW(i)                                         \
        av = _mm512_set1_ps(a##i[off]);                 \
        c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);     \
        c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);     \
        c##i##2 = _mm512_fmadd_ps(av, b2, c##i##2);     \
        c##i##3 = _mm512_fmadd_ps(av, b3, c##i##3);
        DROW(0) DROW(1) DROW(2) DROW(3) DROW(4) DROW(5)
#undef DROW
        off += csa;
        b += ldb;
    }
    __m512 va = _mm512_set1_ps(alpha);
    store_row(c, c00, c01, c02, c03, va, beta, nr);
    if (mr > 1) store_row(c + ldc, c10, c11, c12, c13, va, beta, nr);
    if (mr > 2) store_row(c + 2 * ldc, c20, c21, c22, c23, va, beta, nr);
    if (mr > 3) store_row(c + 3 * ldc, c30, c31, c32, c33, va, beta, nr);
    if (mr > 4) store_row(c + 4 * ldc, c40, c41, c42, c43, va, beta, nr);
    if (mr > 5) store_row(c + 5 * ldc, c50, c51, c52, c53, va, beta, nr);
}

static void ukr_direct(int kc, const float *a, long rsa, long csa, const float *b, long ldb,
                       float *c, long ldc, float alpha, float beta, int mr, int nr)
{
    if (nr == GEMM_NR)
        ukr_direct_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr, 1);
    else
        ukr_direct_body(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr, 0);
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

#define GEMM_KC 384
#define GEMM_MC 1020
#define GEMM_NC 256
#define GEMM_PACKB_T(b, ldb, kc, nc, dst) packB_trans_x86(b, ldb, kc, nc, GEMM_NR, dst)
#define GEMM_DIRECT_UKR ukr_direct
#define GEMM_INPLACE_B_M 256
#define GEMM_DOT_M 4
#define GEMM_DOT dot_avx512
#define GEMM_NAME hw_sgemm_avx512
#include "gemm_impl.h"

#endif
