/* arm64 sparse kernels. spmm: per CSR row, 8 vector accumulators (32
 * columns of Y: 8 independent FMA chains, what Cortex-A76 / Neoverse-N1's 2
 * FMA pipes × 4-cycle latency need) per pass over the row's non-zeros; each
 * non-zero costs 8 loads of X and 8 FMAs by element (fmla v.4s, x.4s,
 * w.s[0]: the value needs no broadcast). spmv: NEON has no gather, so 4
 * inputs are loaded lane by lane (ld1 {v.s}[i]) and multiplied by 4 values
 * at once, two accumulators in flight. */
#include "neon.h"

#if HW_ARM64
#include <arm_neon.h>

void hw_spmm_neon(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, long ldx, float *y, long ldy)
{
    for (int r = 0; r < rows; r++) {
        const int32_t e0 = rowptr[r], e1 = rowptr[r + 1];
        float *yr = y + r * ldy;
        int j = 0;
        for (; j + 32 <= p; j += 32) {
            float32x4_t acc[8];
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++)
                acc[v] = vdupq_n_f32(0.0f);
            for (int32_t e = e0; e < e1; e++) {
                const float *xr = x + (long)colidx[e] * ldx + j;
                const float w = val[e];
#pragma GCC unroll 8
                for (int v = 0; v < 8; v++)
                    acc[v] = vfmaq_n_f32(acc[v], vld1q_f32(xr + 4 * v), w);
            }
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++)
                vst1q_f32(yr + j + 4 * v, acc[v]);
        }
        for (; j + 4 <= p; j += 4) {
            float32x4_t a = vdupq_n_f32(0.0f);
            for (int32_t e = e0; e < e1; e++)
                a = vfmaq_n_f32(a, vld1q_f32(x + (long)colidx[e] * ldx + j), val[e]);
            vst1q_f32(yr + j, a);
        }
        for (; j < p; j++) {
            float s = 0.0f;
            for (int32_t e = e0; e < e1; e++)
                s += val[e] * x[(long)colidx[e] * ldx + j];
            yr[j] = s;
        }
    }
}

/* gather4 loads x at 4 column indices into the lanes of one vector. */
static inline float32x4_t gather4(const float *x, const int32_t *idx)
{
    float32x4_t v = vld1q_dup_f32(x + idx[0]);
    v = vld1q_lane_f32(x + idx[1], v, 1);
    v = vld1q_lane_f32(x + idx[2], v, 2);
    return vld1q_lane_f32(x + idx[3], v, 3);
}

void hw_spmv_neon(int rows, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, float *y)
{
    for (int r = 0; r < rows; r++) {
        int32_t e = rowptr[r];
        const int32_t e1 = rowptr[r + 1];
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
        for (; e + 8 <= e1; e += 8) {
            a0 = vfmaq_f32(a0, vld1q_f32(val + e), gather4(x, colidx + e));
            a1 = vfmaq_f32(a1, vld1q_f32(val + e + 4), gather4(x, colidx + e + 4));
        }
        float t = vaddvq_f32(vaddq_f32(a0, a1));
        for (; e < e1; e++)
            t += val[e] * x[colidx[e]];
        y[r] = t;
    }
}
#endif
