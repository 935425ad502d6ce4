/* Pooling kernels; see pool.h. Plain C: pooling is memory-bound and the
 * window loops are short, so per-ISA copies would not pay. */
#include <string.h>

#include "pool.h"

/* window returns the in-bounds rows [*y0,*y1) and columns [*x0,*x1) of the
 * window of output (oy, ox). */
static inline void window(const hw_pool_t *p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    int a = oy * p->sh - p->ph, b = ox * p->sw - p->pw;
    *y0 = a < 0 ? 0 : a;
    *y1 = a + p->KH < p->H ? a + p->KH : p->H;
    *x0 = b < 0 ? 0 : b;
    *x1 = b + p->KW < p->W ? b + p->KW : p->W;
}

void hw_maxpool(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < p->OH; oy++) {
            for (int ox = 0; ox < p->OW; ox++) {
                int y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                int best = y0 * p->W + x0;
                float m = xq[best];
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        if (xq[iy * p->W + ix] > m) {
                            m = xq[iy * p->W + ix];
                            best = iy * p->W + ix;
                        }
                long o = q * out + (long)oy * p->OW + ox;
                y[o] = m;
                if (argmax)
                    argmax[o] = best;
            }
        }
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

void hw_avgpool(const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < p->OH; oy++) {
            for (int ox = 0; ox < p->OW; ox++) {
                int y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                float s = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += xq[iy * p->W + ix];
                y[q * out + (long)oy * p->OW + ox] = s / (float)((y1 - y0) * (x1 - x0));
            }
        }
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
