/* AVX-512 sparse kernels: spmm keeps 4 zmm accumulators (64 columns of Y)
 * in registers while it streams one CSR row; spmv gathers 16 inputs per
 * step. */
#include "sparse.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#include <immintrin.h>

void hw_spmm_avx512(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                    const float *val, const float *x, long ldx, float *y, long ldy) {
    for (int r = 0; r < rows; r++) {
        int32_t e0 = rowptr[r], e1 = rowptr[r + 1];
        float *yr = y + r * ldy;
        int j = 0;
        for (; j + 64 <= p; j += 64) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t e = e0; e < e1; e++) {
                const float *xr = x + (long)colidx[e] * ldx + j;
                __m512 v = _mm512_set1_ps(val[e]);
                a0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xr), a0);
                a1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xr + 16), a1);
                a2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xr + 32), a2);
                a3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xr + 48), a3);
            }
            _mm512_storeu_ps(yr + j, a0);
            _mm512_storeu_ps(yr + j + 16, a1);
            _mm512_storeu_ps(yr + j + 32, a2);
            _mm512_storeu_ps(yr + j + 48, a3);
        }
        for (; j < p; j += 16) {
            __mmask16 m = p - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (p - j)) - 1);
            __m512 a = _mm512_setzero_ps();
            for (int32_t e = e0; e < e1; e++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(val[e]), _mm512_maskz_loadu_ps(m, x + (long)colidx[e] * ldx + j), a);
            _mm512_mask_storeu_ps(yr + j, m, a);
        }
    }
}

void hw_spmv_avx512(int rows, const int32_t *rowptr, const int32_t *colidx,
                    const float *val, const float *x, float *y) {
    for (int r = 0; r < rows; r++) {
        int32_t e = rowptr[r], e1 = rowptr[r + 1];
        __m512 a = _mm512_setzero_ps();
        for (; e < e1; e += 16) {
            __mmask16 m = e1 - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (e1 - e)) - 1);
            __m512i idx = _mm512_maskz_loadu_epi32(m, colidx + e);
            __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x, 4);
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, val + e), g, a);
        }
        y[r] = _mm512_reduce_add_ps(a);
    }
}
#endif
