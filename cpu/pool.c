/* Pooling kernels; see pool.h. The forward max and average pools are
 * per ISA level (pool_impl.h in pool_{generic,avx2,avx512}.c) and dispatched
 * here; the backward passes and global average pooling are plain C that
 * -O3 vectorises for the baseline target (they are memory-bound). */
#include <string.h>

#include "pool.h"

#define POOL_HELPERS_ONLY
#include "pool_impl.h"

void hw_maxpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        hw_pool_avx512_max(p, q0, q1, x, y, argmax);
        return;
    case HW_ISA_AVX2:
        hw_pool_avx2_max(p, q0, q1, x, y, argmax);
        return;
#endif
    default:
        hw_pool_generic_max(p, q0, q1, x, y, argmax);
    }
}

void hw_avgpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        hw_pool_avx512_avg(p, q0, q1, x, y);
        return;
    case HW_ISA_AVX2:
        hw_pool_avx2_avg(p, q0, q1, x, y);
        return;
#endif
    default:
        hw_pool_generic_avg(p, q0, q1, x, y);
    }
}

void hw_maxpool_bwd(const hw_pool_t *p, long q0, long q1, const float *dy, const int *argmax, float *dx)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    for (long q = q0; q < q1; q++) {
        float *dxq = dx + q * in;
        memset(dxq, 0, sizeof(float) * in);
        for (long o = q * out; o < (q + 1) * out; o++)
            dxq[argmax[o]] += dy[o];
    }
}

void hw_avgpool_bwd(const hw_pool_t *p, long q0, long q1, const float *dy, float *dx)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    for (long q = q0; q < q1; q++) {
        float *dxq = dx + q * in;
        memset(dxq, 0, sizeof(float) * in);
        for (int oy = 0; oy < p->OH; oy++) {
            for (int ox = 0; ox < p->OW; ox++) {
                int y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                float g = dy[q * out + (long)oy * p->OW + ox] / (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dxq[iy * p->W + ix] += g;
            }
        }
    }
}

void hw_gap(long q0, long q1, long hw, const float *x, float *y)
{
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * hw;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        long j = 0;
        for (; j + 4 <= hw; j += 4) {
            s0 += xq[j];
            s1 += xq[j + 1];
            s2 += xq[j + 2];
            s3 += xq[j + 3];
        }
        for (; j < hw; j++)
            s0 += xq[j];
        y[q] = (float)(((double)s0 + s1 + s2 + s3) / (double)hw);
    }
}

void hw_gap_bwd(long q0, long q1, long hw, const float *dy, float *dx)
{
    for (long q = q0; q < q1; q++) {
        const float g = dy[q] / (float)hw;
        for (long j = 0; j < hw; j++)
            dx[q * hw + j] = g;
    }
}
