/* Convolution through im2col + hw_sgemm, the direct 1×1 path, and the
 * depthwise dispatch and backward passes. See conv.h for the contracts. */
#include <string.h>

#include "act.h"
#include "conv.h"
#include "gemm.h"
#include "neon.h"

int hw_conv_direct(const hw_conv_t *p)
{
    return p->KH == 1 && p->KW == 1 && p->sh == 1 && p->sw == 1 && p->ph == 0 && p->pw == 0;
}

/* cols returns in [*lo,*hi) the output columns ox with 0 ≤ ox·s + off < n. */
static inline void cols(int n, int s, int off, int outn, int *lo, int *hi)
{
    int l = off < 0 ? (-off + s - 1) / s : 0;
    int h = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    *lo = l < outn ? l : outn;
    *hi = h < outn ? h : outn;
    if (*hi < *lo)
        *hi = *lo;
}

void hw_im2col(const hw_conv_t *p, const float *x, float *col, long ld)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW;
    for (int c = 0; c < p->C; c++) {
        const float *xc = x + (long)c * H * W;
        for (int ky = 0; ky < p->KH; ky++) {
            for (int kx = 0; kx < p->KW; kx++) {
                float *row = col + ((long)(c * p->KH + ky) * p->KW + kx) * ld;
                const int off = kx * p->dw - p->pw;
                int lo, hi;
                cols(W, p->sw, off, OW, &lo, &hi);
                for (int oy = 0; oy < OH; oy++) {
                    float *r = row + (long)oy * OW;
                    const int iy = oy * p->sh - p->ph + ky * p->dh;
                    if (iy < 0 || iy >= H) {
                        memset(r, 0, sizeof(float) * OW);
                        continue;
                    }
                    const float *xr = xc + (long)iy * W;
                    for (int ox = 0; ox < lo; ox++)
                        r[ox] = 0.0f;
                    if (p->sw == 1)
                        memcpy(r + lo, xr + lo + off, sizeof(float) * (hi - lo));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            r[ox] = xr[ox * p->sw + off];
                    for (int ox = hi; ox < OW; ox++)
                        r[ox] = 0.0f;
                }
            }
        }
    }
}

void hw_col2im(const hw_conv_t *p, const float *col, long ld, float *dx)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW;
    memset(dx, 0, sizeof(float) * p->C * H * W);
    for (int c = 0; c < p->C; c++) {
        float *dc = dx + (long)c * H * W;
        for (int ky = 0; ky < p->KH; ky++) {
            for (int kx = 0; kx < p->KW; kx++) {
                const float *row = col + ((long)(c * p->KH + ky) * p->KW + kx) * ld;
                const int off = kx * p->dw - p->pw;
                int lo, hi;
                cols(W, p->sw, off, OW, &lo, &hi);
                for (int oy = 0; oy < OH; oy++) {
                    const int iy = oy * p->sh - p->ph + ky * p->dh;
                    if (iy < 0 || iy >= H)
                        continue;
                    const float *r = row + (long)oy * OW;
                    float *dr = dc + (long)iy * W;
                    if (p->sw == 1) {
                        float *d = dr + off;
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] += r[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dr[ox * p->sw + off] += r[ox];
                    }
                }
            }
        }
    }
}

void hw_conv_rows(int isa, const hw_conv_t *p, int k0, int k1, const float *w, const float *col,
                  const float *bias, int act, float *y)
{
    const int kg = p->K / p->G, kk = p->C / p->G * p->KH * p->KW;
    const long ohw = (long)p->OH * p->OW;
    for (int g = k0 / kg; g < p->G && g * kg < k1; g++) {
        int a = g * kg > k0 ? g * kg : k0;
        int b = (g + 1) * kg < k1 ? (g + 1) * kg : k1;
        hw_sgemm(isa, 0, 0, b - a, (int)ohw, kk, 1.0f, w + (long)a * kk, kk, col + (long)g * kk * ohw,
                 (int)ohw, 0.0f, y + a * ohw, (int)ohw);
    }
    if (bias || act != HW_ACT_NONE)
        hw_bias_act(isa, y, y, k0, k1, p->K, ohw, bias, act);
}

int hw_conv_batch(const hw_conv_t *p)
{
    const long ohw = (long)p->OH * p->OW;
    if (ohw >= 256)
        return 1;
    long nb = (512 + ohw - 1) / ohw;
    return nb < p->N ? (int)nb : p->N;
}

long hw_conv_scratch(const hw_conv_t *p)
{
    const long ohw = (long)p->OH * p->OW;
    const int nb = hw_conv_batch(p);
    long col = hw_conv_direct(p) && nb == 1 ? 0 : (long)p->C * p->KH * p->KW * nb * ohw;
    return col + (nb > 1 ? (long)p->K * nb * ohw : 0);
}

/* stage copies nb samples between the per-sample layout (rows of ohw,
 * sample stride rows·ohw) and the side-by-side one (rows of nb·ohw). */
static void stage(int rows, long ohw, int nb, const float *src, float *dst, int to_side)
{
    for (int j = 0; j < nb; j++)
        for (int r = 0; r < rows; r++) {
            const long a = ((long)j * rows + r) * ohw, b = (long)r * nb * ohw + j * ohw;
            if (to_side)
                memcpy(dst + b, src + a, sizeof(float) * ohw);
            else
                memcpy(dst + a, src + b, sizeof(float) * ohw);
        }
}

void hw_conv_fwd(int isa, const hw_conv_t *p, int n0, int n1, const float *x, const float *w,
                 const float *bias, int act, float *scratch, float *y)
{
    const long xs = (long)p->C * p->H * p->W, ohw = (long)p->OH * p->OW, ys = p->K * ohw;
    const int kg = p->K / p->G, kk = p->C / p->G * p->KH * p->KW;
    const int batch = hw_conv_batch(p);
    if (batch == 1) {
        const int direct = hw_conv_direct(p);
        for (int n = n0; n < n1; n++) {
            const float *xn = x + n * xs;
            if (!direct) {
                hw_im2col(p, xn, scratch, ohw);
                xn = scratch;
            }
            hw_conv_rows(isa, p, 0, p->K, w, xn, bias, act, y + n * ys);
        }
        return;
    }
    float *col = scratch, *out = scratch + (long)p->C * p->KH * p->KW * batch * ohw;
    for (int n = n0; n < n1; n += batch) {
        const int nb = n1 - n < batch ? n1 - n : batch;
        const long ld = nb * ohw;
        for (int j = 0; j < nb; j++)
            hw_im2col(p, x + (n + j) * xs, col + j * ohw, ld);
        for (int g = 0; g < p->G; g++)
            hw_sgemm(isa, 0, 0, kg, (int)ld, kk, 1.0f, w + (long)g * kg * kk, kk, col + (long)g * kk * ld,
                     (int)ld, 0.0f, out + (long)g * kg * ld, (int)ld);
        stage(p->K, ohw, nb, out, y + n * ys, 0);
        if (bias || act != HW_ACT_NONE)
            hw_bias_act(isa, y + n * ys, y + n * ys, 0, (long)nb * p->K, p->K, ohw, bias, act);
    }
}

void hw_conv_bwd_data(int isa, const hw_conv_t *p, int n0, int n1, const float *w, const float *dy,
                      float *scratch, float *dx)
{
    const long xs = (long)p->C * p->H * p->W, ohw = (long)p->OH * p->OW, ys = p->K * ohw;
    const int kg = p->K / p->G, kk = p->C / p->G * p->KH * p->KW;
    const int batch = hw_conv_batch(p), direct = hw_conv_direct(p);
    float *col = scratch, *dyb = scratch + (long)p->C * p->KH * p->KW * batch * ohw;
    for (int n = n0; n < n1; n += batch) {
        const int nb = n1 - n < batch ? n1 - n : batch;
        const long ld = nb * ohw;
        const float *g_dy = dy + n * ys;
        if (batch > 1) {
            stage(p->K, ohw, nb, dy + n * ys, dyb, 1);
            g_dy = dyb;
        }
        float *out = (direct && batch == 1) ? dx + n * xs : col;
        for (int g = 0; g < p->G; g++)
            hw_sgemm(isa, 1, 0, kk, (int)ld, kg, 1.0f, w + (long)g * kg * kk, kk, g_dy + (long)g * kg * ld,
                     (int)ld, 0.0f, out + (long)g * kk * ld, (int)ld);
        if (direct && batch == 1)
            continue;
        for (int j = 0; j < nb; j++)
            hw_col2im(p, col + j * ohw, ld, dx + (n + j) * xs);
    }
}

void hw_conv_bwd_filter(int isa, const hw_conv_t *p, int n0, int n1, const float *x, const float *dy,
                        float *scratch, float *dw, int accumulate)
{
    const long xs = (long)p->C * p->H * p->W, ohw = (long)p->OH * p->OW, ys = p->K * ohw;
    const int kg = p->K / p->G, kk = p->C / p->G * p->KH * p->KW;
    const int batch = hw_conv_batch(p), direct = hw_conv_direct(p);
    float *col = scratch, *dyb = scratch + (long)p->C * p->KH * p->KW * batch * ohw;
    for (int n = n0; n < n1; n += batch) {
        const int nb = n1 - n < batch ? n1 - n : batch;
        const long ld = nb * ohw;
        const float *cn = x + n * xs, *g_dy = dy + n * ys;
        if (batch > 1) {
            for (int j = 0; j < nb; j++)
                hw_im2col(p, x + (n + j) * xs, col + j * ohw, ld);
            stage(p->K, ohw, nb, dy + n * ys, dyb, 1);
            cn = col;
            g_dy = dyb;
        } else if (!direct) {
            hw_im2col(p, cn, col, ld);
            cn = col;
        }
        const float beta = (accumulate || n > n0) ? 1.0f : 0.0f;
        for (int g = 0; g < p->G; g++)
            hw_sgemm(isa, 0, 1, kg, kk, (int)ld, 1.0f, g_dy + (long)g * kg * ld, (int)ld,
                     cn + (long)g * kk * ld, (int)ld, beta, dw + (long)g * kg * kk, kk);
    }
}

void hw_conv_dw(int isa, const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                const float *bias, int act, float *y)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        hw_conv_dw_avx512(p, q0, q1, x, w, bias, act, y);
        return;
    case HW_ISA_AVX2:
        hw_conv_dw_avx2(p, q0, q1, x, w, bias, act, y);
        return;
#endif
#if HW_ARM64
    case HW_ISA_ARM64:
        if (p->OW >= HW_DW_NEON_MIN_OW) {
            hw_conv_dw_neon(p, q0, q1, x, w, bias, act, y);
            return;
        }
        /* fall through: narrower rows run the generic (4-float) kernel */
#endif
    default:
        hw_conv_dw_generic(p, q0, q1, x, w, bias, act, y);
    }
}

void hw_conv_dw_bwd_data(const hw_conv_t *p, int q0, int q1, const float *w, const float *dy, float *dx)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    for (int q = q0; q < q1; q++) {
        const float *wc = w + (long)(q % p->C) * KH * KW;
        const float *dyq = dy + (long)q * OH * OW;
        float *dxq = dx + (long)q * H * W;
        memset(dxq, 0, sizeof(float) * H * W);
        for (int oy = 0; oy < OH; oy++) {
            const float *restrict g = dyq + (long)oy * OW;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * p->sh - p->ph + ky * p->dh;
                if (iy < 0 || iy >= H)
                    continue;
                float *restrict dr = dxq + (long)iy * W;
                for (int kx = 0; kx < KW; kx++) {
                    const float wv = wc[ky * KW + kx];
                    const int off = kx * p->dw - p->pw;
                    int lo, hi;
                    cols(W, p->sw, off, OW, &lo, &hi);
                    if (p->sw == 1) {
                        float *restrict d = dr + off;
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] += wv * g[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dr[ox * p->sw + off] += wv * g[ox];
                    }
                }
            }
        }
    }
}

/* dw_v8 is an 8-float GCC vector: two SSE registers at the baseline
 * target, so the filter-gradient dot products vectorise at every level. */
typedef float dw_v8 __attribute__((vector_size(32)));

#define DW_BWD_MAXTAPS 64

void hw_conv_dw_bwd_filter(const hw_conv_t *p, int c0, int c1, const float *x, const float *dy, float *dw)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    const int taps = KH * KW;
    if (taps > DW_BWD_MAXTAPS) {
        /* Rare huge kernels: one tap at a time, scalar. */
        for (int c = c0; c < c1; c++)
            for (int t = 0; t < taps; t++) {
                const int ky = t / KW, kx = t % KW;
                double s = 0;
                for (int n = 0; n < p->N; n++) {
                    const long q = (long)n * p->C + c;
                    for (int oy = 0; oy < OH; oy++) {
                        const int iy = oy * p->sh - p->ph + ky * p->dh;
                        if (iy < 0 || iy >= H)
                            continue;
                        for (int ox = 0; ox < OW; ox++) {
                            const int ix = ox * p->sw - p->pw + kx * p->dw;
                            if (ix >= 0 && ix < W)
                                s += (double)dy[(q * OH + oy) * OW + ox] * x[(q * H + iy) * W + ix];
                        }
                    }
                }
                dw[(long)c * taps + t] = (float)s;
            }
        return;
    }
    int lo[DW_BWD_MAXTAPS], hi[DW_BWD_MAXTAPS];
    for (int kx = 0; kx < KW; kx++)
        cols(W, p->sw, kx * p->dw - p->pw, OW, &lo[kx], &hi[kx]);
    for (int c = c0; c < c1; c++) {
        double tot[DW_BWD_MAXTAPS] = {0};
        for (int n = 0; n < p->N; n++) {
            const long q = (long)n * p->C + c;
            const float *xq = x + q * H * W, *dyq = dy + q * OH * OW;
            /* Float partial sums over one plane (in L1 for every tap), then
             * into the doubles. */
            dw_v8 acc[DW_BWD_MAXTAPS];
            float r[DW_BWD_MAXTAPS];
            for (int t = 0; t < taps; t++) {
                acc[t] = (dw_v8){0};
                r[t] = 0;
            }
            for (int oy = 0; oy < OH; oy++) {
                const float *g = dyq + (long)oy * OW;
                for (int ky = 0; ky < KH; ky++) {
                    const int iy = oy * p->sh - p->ph + ky * p->dh;
                    if (iy < 0 || iy >= H)
                        continue;
                    const float *xr = xq + (long)iy * W;
                    for (int kx = 0; kx < KW; kx++) {
                        const int t = ky * KW + kx, off = kx * p->dw - p->pw;
                        if (p->sw == 1) {
                            const float *xs = xr + off;
                            dw_v8 a = acc[t];
                            int ox = lo[kx];
                            for (; ox + 8 <= hi[kx]; ox += 8) {
                                dw_v8 u, v;
                                memcpy(&u, g + ox, sizeof u);
                                memcpy(&v, xs + ox, sizeof v);
                                a += u * v;
                            }
                            acc[t] = a;
                            for (; ox < hi[kx]; ox++)
                                r[t] += g[ox] * xs[ox];
                        } else {
                            for (int ox = lo[kx]; ox < hi[kx]; ox++)
                                r[t] += g[ox] * xr[ox * p->sw + off];
                        }
                    }
                }
            }
            for (int t = 0; t < taps; t++) {
                float s = r[t];
                for (int l = 0; l < 8; l++)
                    s += acc[t][l];
                tot[t] += s;
            }
        }
        for (int t = 0; t < taps; t++)
            dw[(long)c * taps + t] = (float)tot[t];
    }
}
