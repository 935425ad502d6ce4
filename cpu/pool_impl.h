/* Max and average pooling forward, instantiated once per ISA level: the
 * including file sets its target pragma and defines POOL_NAME (the kernels
 * are POOL_NAME_max and POOL_NAME_avg, with hw_maxpool's and hw_avgpool's
 * signatures). Windows that lie inside the row (interior columns) are
 * computed tap by tap, each tap one loop over the output columns that the
 * compiler vectorises for the level (strided loads for stride 2); border
 * windows take the general path. With POOL_HELPERS_ONLY only the window
 * helpers are defined. */

#include <string.h>

#define POOL_CAT_(a, b) a##b
#define POOL_CAT(a, b) POOL_CAT_(a, b)

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

#ifndef POOL_HELPERS_ONLY
/* interior returns in [*lo,*hi) the output columns whose window lies
 * entirely inside the row (no padding column). */
static inline void interior(const hw_pool_t *p, int *lo, int *hi)
{
    int l = (p->pw + p->sw - 1) / p->sw;
    int h = p->W - p->KW + p->pw < 0 ? 0 : (p->W - p->KW + p->pw) / p->sw + 1;
    if (h > p->OW)
        h = p->OW;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* maxwin is the maximum of one window, the general (border) case. */
static inline void maxwin(const hw_pool_t *p, const float *xq, int oy, int ox, float *y, int *am)
{
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
    *y = m;
    if (am)
        *am = best;
}

/* rowmax is the maximum over the in-bounds columns of output column ox's
 * window in a row of column maxima. */
static inline float rowmax(const hw_pool_t *p, const float *row, int ox)
{
    int b = ox * p->sw - p->pw, x0 = b < 0 ? 0 : b, x1 = b + p->KW < p->W ? b + p->KW : p->W;
    float m = row[x0];
    for (int ix = x0 + 1; ix < x1; ix++)
        m = row[ix] > m ? row[ix] : m;
    return m;
}

void POOL_CAT(POOL_NAME, _max)(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    const int sw = p->sw;
    int lo, hi;
    interior(p, &lo, &hi);
    if (!argmax && p->W <= 8192) {
        /* Without argmax: the maximum over the window's rows first, as one
         * contiguous (vectorised) pass per row, then over the columns. That
         * order differs from the reference's row-major strict > only when
         * a NaN is involved (the reference returns NaN exactly when the
         * window's first element is NaN), so a row of windows that reads a
         * NaN is redone window by window. */
        float tmp[p->W];
        for (long q = q0; q < q1; q++) {
            const float *xq = x + q * in;
            for (int oy = 0; oy < p->OH; oy++) {
                float *yr = y + q * out + (long)oy * p->OW;
                int y0, y1, x0, x1;
                window(p, oy, 0, &y0, &y1, &x0, &x1);
                const float *xr0 = xq + (long)y0 * p->W;
                int nan = 0;
                for (int ix = 0; ix < p->W; ix++) {
                    tmp[ix] = xr0[ix];
                    nan |= xr0[ix] != xr0[ix];
                }
                for (int iy = y0 + 1; iy < y1; iy++) {
                    const float *xr = xq + (long)iy * p->W;
                    for (int ix = 0; ix < p->W; ix++) {
                        tmp[ix] = xr[ix] > tmp[ix] ? xr[ix] : tmp[ix];
                        nan |= xr[ix] != xr[ix];
                    }
                }
                if (nan) {
                    for (int ox = 0; ox < p->OW; ox++)
                        maxwin(p, xq, oy, ox, yr + ox, 0);
                    continue;
                }
                for (int ox = 0; ox < lo; ox++)
                    yr[ox] = rowmax(p, tmp, ox);
                for (int ox = hi; ox < p->OW; ox++)
                    yr[ox] = rowmax(p, tmp, ox);
                if (lo >= hi)
                    continue;
                const float *t0 = tmp + lo * sw - p->pw;
                for (int ox = lo; ox < hi; ox++)
                    yr[ox] = t0[(ox - lo) * sw];
                for (int kx = 1; kx < p->KW; kx++)
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] = t0[(ox - lo) * sw + kx] > yr[ox] ? t0[(ox - lo) * sw + kx] : yr[ox];
            }
        }
        return;
    }
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < p->OH; oy++) {
            float *yr = y + q * out + (long)oy * p->OW;
            int *ar = argmax ? argmax + q * out + (long)oy * p->OW : 0;
            for (int ox = 0; ox < lo; ox++)
                maxwin(p, xq, oy, ox, yr + ox, ar ? ar + ox : 0);
            for (int ox = hi; ox < p->OW; ox++)
                maxwin(p, xq, oy, ox, yr + ox, ar ? ar + ox : 0);
            if (lo >= hi)
                continue;
            /* Interior columns: taps in row-major order, each a loop over
             * the columns, keeping the first maximum (strict >). */
            int y0, y1, x0, x1;
            window(p, oy, lo, &y0, &y1, &x0, &x1);
            const int base = lo * sw - p->pw; /* input column of tap kx=0 at ox=lo */
            int first = 1;
            for (int iy = y0; iy < y1; iy++) {
                const float *xr = xq + (long)iy * p->W + base;
                for (int kx = 0; kx < p->KW; kx++) {
                    const float *xs = xr + kx;
                    const int idx0 = iy * p->W + base + kx;
                    if (first) {
                        for (int ox = lo; ox < hi; ox++)
                            yr[ox] = xs[(ox - lo) * sw];
                        if (ar)
                            for (int ox = lo; ox < hi; ox++)
                                ar[ox] = idx0 + (ox - lo) * sw;
                        first = 0;
                    } else if (ar) {
                        for (int ox = lo; ox < hi; ox++) {
                            const float v = xs[(ox - lo) * sw];
                            const int gt = v > yr[ox];
                            yr[ox] = gt ? v : yr[ox];
                            ar[ox] = gt ? idx0 + (ox - lo) * sw : ar[ox];
                        }
                    } else {
                        for (int ox = lo; ox < hi; ox++) {
                            const float v = xs[(ox - lo) * sw];
                            yr[ox] = v > yr[ox] ? v : yr[ox];
                        }
                    }
                }
            }
        }
    }
}

/* avgwin is the mean of one window, the general (border) case. */
static inline float avgwin(const hw_pool_t *p, const float *xq, int oy, int ox)
{
    int y0, y1, x0, x1;
    window(p, oy, ox, &y0, &y1, &x0, &x1);
    float s = 0;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            s += xq[iy * p->W + ix];
    return s / (float)((y1 - y0) * (x1 - x0));
}

void POOL_CAT(POOL_NAME, _avg)(const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    const long in = (long)p->H * p->W, out = (long)p->OH * p->OW;
    const int sw = p->sw;
    int lo, hi;
    interior(p, &lo, &hi);
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < p->OH; oy++) {
            float *yr = y + q * out + (long)oy * p->OW;
            for (int ox = 0; ox < lo; ox++)
                yr[ox] = avgwin(p, xq, oy, ox);
            for (int ox = hi; ox < p->OW; ox++)
                yr[ox] = avgwin(p, xq, oy, ox);
            if (lo >= hi)
                continue;
            int y0, y1, x0, x1;
            window(p, oy, lo, &y0, &y1, &x0, &x1);
            const int base = lo * sw - p->pw;
            for (int ox = lo; ox < hi; ox++)
                yr[ox] = 0.0f;
            for (int iy = y0; iy < y1; iy++) {
                const float *xr = xq + (long)iy * p->W + base;
                for (int kx = 0; kx < p->KW; kx++) {
                    const float *xs = xr + kx;
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] += xs[(ox - lo) * sw];
                }
            }
            const float inv = 1.0f / (float)((y1 - y0) * p->KW);
            for (int ox = lo; ox < hi; ox++)
                yr[ox] *= inv;
        }
    }
}
#endif
