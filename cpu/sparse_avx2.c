/* AVX2 sparse kernels: spmm with 4 ymm accumulators (32 columns of Y) per
 * CSR row pass; spmv gathers 8 inputs per step. */
#include "sparse.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#include <immintrin.h>

void hw_spmm_avx2(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, long ldx, float *y, long ldy) {
    for (int r = 0; r < rows; r++) {
        int32_t e0 = rowptr[r], e1 = rowptr[r + 1];
        float *yr = y + r * ldy;
        int j = 0;
        for (; j + 32 <= p; j += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t e = e0; e < e1; e++) {
                const float *xr = x + (long)colidx[e] * ldx + j;
                __m256 v = _mm256_set1_ps(val[e]);
                a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr), a0);
                a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 8), a1);
                a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 16), a2);
                a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 24), a3);
            }
            _mm256_storeu_ps(yr + j, a0);
            _mm256_storeu_ps(yr + j + 8, a1);
            _mm256_storeu_ps(yr + j + 16, a2);
            _mm256_storeu_ps(yr + j + 24, a3);
        }
        for (; j + 8 <= p; j += 8) {
            __m256 a = _mm256_setzero_ps();
            for (int32_t e = e0; e < e1; e++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(val[e]), _mm256_loadu_ps(x + (long)colidx[e] * ldx + j), a);
            _mm256_storeu_ps(yr + j, a);
        }
        for (; j < p; j++) {
            float s = 0.0f;
            for (int32_t e = e0; e < e1; e++) s += val[e] * x[(long)colidx[e] * ldx + j];
            yr[j] = s;
        }
    }
}

void hw_spmv_avx2(int rows, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, float *y) {
    for (int r = 0; r < rows; r++) {
        int32_t e = rowptr[r], e1 = rowptr[r + 1];
        __m256 a = _mm256_setzero_ps();
        for (; e + 8 <= e1; e += 8) {
            __m256i idx = _mm256_loadu_si256((const __m256i *)(colidx + e));
            a = _mm256_fmadd_ps(_mm256_loadu_ps(val + e), _mm256_i32gather_ps(x, idx, 4), a);
        }
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        float t = _mm_cvtss_f32(s);
        for (; e < e1; e++) t += val[e] * x[colidx[e]];
        y[r] = t;
    }
}
#endif
