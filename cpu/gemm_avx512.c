/* AVX-512 SGEMM level: 6×64 register tile (24 zmm accumulators, 4 zmm of
 * B per step of k, A broadcast from memory). */
#include "gemm_kernels.h"
#include "isa.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#include <immintrin.h>

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

#define ROW(i)                                          \
    av = _mm512_set1_ps(a[i]);                          \
    c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);         \
    c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);         \
    c##i##2 = _mm512_fmadd_ps(av, b2, c##i##2);         \
    c##i##3 = _mm512_fmadd_ps(av, b3, c##i##3);

static inline void ukr_avx512(int kc, const float *restrict a, const float *restrict b,
                              float *restrict c, long ldc, float alpha, float beta, int mr, int nr)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    __m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    __m512 c40 = c00, c41 = c00, c42 = c00, c43 = c00;
    __m512 c50 = c00, c51 = c00, c52 = c00, c53 = c00;
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        __m512 b2 = _mm512_load_ps(b + 32), b3 = _mm512_load_ps(b + 48), av;
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
        a += GEMM_MR;
        b += GEMM_NR;
    }
    __m512 va = _mm512_set1_ps(alpha);
    store_row(c, c00, c01, c02, c03, va, beta, nr);
    if (mr > 1) store_row(c + ldc, c10, c11, c12, c13, va, beta, nr);
    if (mr > 2) store_row(c + 2 * ldc, c20, c21, c22, c23, va, beta, nr);
    if (mr > 3) store_row(c + 3 * ldc, c30, c31, c32, c33, va, beta, nr);
    if (mr > 4) store_row(c + 4 * ldc, c40, c41, c42, c43, va, beta, nr);
    if (mr > 5) store_row(c + 5 * ldc, c50, c51, c52, c53, va, beta, nr);
}

#define GEMM_KC 384
#define GEMM_MC 1020
#define GEMM_NC 256
#define GEMM_UKR ukr_avx512
#define GEMM_NAME hw_sgemm_avx512
#include "gemm_impl.h"

#endif
