/* Pooling kernels; see pool.h. The forward max and average pools are
 * per ISA level (pool_impl.h in pool_{generic,avx2,avx512}.c) and dispatched
 * here; the backward passes and global average pooling are plain C that
 * -O3 vectorises for the baseline target (they are memory-bound). */
#include <string.h>

#include "neon.h"
#include "pool.h"

#define POOL_HELPERS_ONLY
#include "pool_impl.h"

/* maxpool22 is the portable 2×2 stride-2 unpadded forward: taps in
 * row-major order with a strict >, as the reference. */
static void maxpool22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    for (long q = q0; q < q1; q++) {
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = x + q * in + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            int *ar = argmax ? argmax + q * out + (long)oy * OW : 0;
            for (int ox = 0; ox < OW; ox++) {
                float m = ra[2 * ox];
                int a = 0;
                if (ra[2 * ox + 1] > m) {
                    m = ra[2 * ox + 1];
                    a = 1;
                }
                if (rb[2 * ox] > m) {
                    m = rb[2 * ox];
                    a = W;
                }
                if (rb[2 * ox + 1] > m) {
                    m = rb[2 * ox + 1];
                    a = W + 1;
                }
                yr[ox] = m;
                if (ar)
                    ar[ox] = 2 * oy * W + 2 * ox + a;
            }
        }
    }
}

void hw_maxpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        if (hw_pool_is22(p)) {
            hw_pool_avx512_max22(p, q0, q1, x, y, argmax);
            return;
        }
        hw_pool_avx512_max(p, q0, q1, x, y, argmax);
        return;
    case HW_ISA_AVX2:
        if (hw_pool_is22(p)) {
            hw_pool_avx2_max22(p, q0, q1, x, y, argmax);
            return;
        }
        hw_pool_avx2_max(p, q0, q1, x, y, argmax);
        return;
#endif
#if HW_ARM64
    case HW_ISA_ARM64:
        if (hw_pool_is22(p) && p->OW >= 4) {
            hw_pool_neon_max22(p, q0, q1, x, y, argmax);
            return;
        }
        /* fall through: the portable kernels, NEON-vectorised by GCC */
#endif
    default:
        if (hw_pool_is22(p)) {
            maxpool22(p, q0, q1, x, y, argmax);
            return;
        }
        hw_pool_generic_max(p, q0, q1, x, y, argmax);
    }
}

void hw_avgpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        if (hw_pool_is22(p)) {
            hw_pool_avx512_avg22(p, q0, q1, x, y);
            return;
        }
        hw_pool_avx512_avg(p, q0, q1, x, y);
        return;
    case HW_ISA_AVX2:
        if (hw_pool_is22(p)) {
            hw_pool_avx2_avg22(p, q0, q1, x, y);
            return;
        }
        hw_pool_avx2_avg(p, q0, q1, x, y);
        return;
#endif
#if HW_ARM64
    case HW_ISA_ARM64:
        if (hw_pool_is22(p) && p->OW >= 4) {
            hw_pool_neon_avg22(p, q0, q1, x, y);
            return;
        }
        /* fall through: the portable kernel, NEON-vectorised by GCC */
#endif
    default:
        hw_pool_generic_avg(p, q0, q1, x, y);
    }
}

/* maxpool_bwd_plane zeroes one dx plane and adds its dy at argmax. */
static void maxpool_bwd_plane(long in, long out, long q, const float *dy, const int *argmax, float *dx)
{
    float *dxq = dx + q * in;
    memset(dxq, 0, sizeof(float) * in);
    for (long o = q * out; o < (q + 1) * out; o++)
        dxq[argmax[o]] += dy[o];
}

void hw_maxpool_bwd(int isa, const hw_pool_t *p, long q0, long q1, const float *dy, const int *argmax, float *dx)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
#if HW_X86
    /* The AVX-512 2×2 path writes dx once instead of zeroing it and
     * scattering; it pays from 8 outputs per row (LeNet's 24-wide pool1:
     * 158 → 121 µs at batch 64), below that the plain scatter is faster
     * (8-wide pool2: 39 vs 64 µs). A portable C twin of it was ~10× slower
     * than the scatter, so other levels scatter. */
    if (isa == HW_ISA_AVX512 && hw_pool_is22(p) && p->H % 2 == 0 && p->W % 2 == 0 && p->OW >= 8) {
        hw_pool_avx512_max22_bwd(p, q0, q1, dy, argmax, dx);
        return;
    }
#endif
    (void)isa;
    for (long q = q0; q < q1; q++)
        maxpool_bwd_plane(in, out, q, dy, argmax, dx);
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
