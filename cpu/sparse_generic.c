/* Portable sparse kernels and the level dispatch. */
#include <string.h>
#include "neon.h"
#include "sparse.h"

void hw_spmm_generic(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                     const float *val, const float *x, long ldx, float *y, long ldy) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + r * ldy;
        memset(yr, 0, sizeof(float) * p);
        for (int32_t e = rowptr[r]; e < rowptr[r + 1]; e++) {
            const float v = val[e];
            const float *xr = x + (long)colidx[e] * ldx;
            for (int j = 0; j < p; j++) yr[j] += v * xr[j];
        }
    }
}

void hw_spmv_generic(int rows, const int32_t *rowptr, const int32_t *colidx,
                     const float *val, const float *x, float *y) {
    for (int r = 0; r < rows; r++) {
        float s = 0.0f;
        for (int32_t e = rowptr[r]; e < rowptr[r + 1]; e++) s += val[e] * x[colidx[e]];
        y[r] = s;
    }
}

void hw_spmm(int isa, int rows, int p, const int32_t *rowptr, const int32_t *colidx,
             const float *val, const float *x, long ldx, float *y, long ldy) {
#if HW_X86
    if (isa == HW_ISA_AVX512) {
        hw_spmm_avx512(rows, p, rowptr, colidx, val, x, ldx, y, ldy);
        return;
    }
    if (isa == HW_ISA_AVX2) {
        hw_spmm_avx2(rows, p, rowptr, colidx, val, x, ldx, y, ldy);
        return;
    }
#endif
#if HW_ARM64
    if (isa == HW_ISA_ARM64) {
        hw_spmm_neon(rows, p, rowptr, colidx, val, x, ldx, y, ldy);
        return;
    }
#endif
    (void)isa;
    hw_spmm_generic(rows, p, rowptr, colidx, val, x, ldx, y, ldy);
}

void hw_spmv(int isa, int rows, const int32_t *rowptr, const int32_t *colidx,
             const float *val, const float *x, float *y) {
#if HW_X86
    if (isa == HW_ISA_AVX512) {
        hw_spmv_avx512(rows, rowptr, colidx, val, x, y);
        return;
    }
    if (isa == HW_ISA_AVX2) {
        hw_spmv_avx2(rows, rowptr, colidx, val, x, y);
        return;
    }
#endif
#if HW_ARM64
    if (isa == HW_ISA_ARM64) {
        hw_spmv_neon(rows, rowptr, colidx, val, x, y);
        return;
    }
#endif
    (void)isa;
    hw_spmv_generic(rows, rowptr, colidx, val, x, y);
}

#define BIASACT(A)                                                              \
    for (int r = 0; r < rows; r++) {                                            \
        float b = bias ? bias[r] : 0.0f;                                        \
        float *yr = y + r * rs;                                                 \
        for (int j = 0; j < cols; j++) {                                        \
            float v = yr[j * cs] + b;                                           \
            yr[j * cs] = A;                                                     \
        }                                                                       \
    }

void hw_sp_biasact(int rows, int cols, long rs, long cs, const float *bias, int act, float *y) {
    switch (act) {
    case 1:
        BIASACT(v > 0.0f ? v : 0.0f)
        break;
    case 2:
        BIASACT(v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v))
        break;
    case 3:
        BIASACT(v * (v + 3.0f < 0.0f ? 0.0f : (v + 3.0f > 6.0f ? 6.0f : v + 3.0f)) / 6.0f)
        break;
    default:
        BIASACT(v)
    }
}

