/* Depthwise convolution forward, instantiated once per ISA level: the
 * including file sets its target pragma and defines
 *   DW_NAME      the function to define (hw_conv_dw's signature minus isa)
 *   DW_BIAS_ACT  the same level's hw_bias_act_* function
 *   DW_VL        floats per vector (16 AVX-512, 8 AVX2, 4 baseline)
 * The vectors are GCC vector extensions, so the same source becomes zmm,
 * ymm or xmm code under each file's target pragma.
 *
 * Per output row, the taps whose input row is inside the image are listed
 * once (offset into the plane, weight). Interior columns, where every tap
 * is inside the image, are computed DW_VL (or 2·DW_VL) outputs at a time
 * with stride 1, all taps accumulated in registers (a last vector that
 * overlaps the previous one covers the remainder), and DW_VL at a time with
 * stride 2 (even lanes of two loaded vectors); border columns and other
 * strides go through a scalar loop that checks columns. Bias and
 * activation follow on the finished plane while it is in L1. */

#include <string.h>

typedef float DW_CAT(dw_vf, DW_VL) __attribute__((vector_size(DW_VL * 4)));
#define VF DW_CAT(dw_vf, DW_VL)
typedef int DW_CAT(dw_vi, DW_VL) __attribute__((vector_size(DW_VL * 4)));

/* DW_EVEN selects the even lanes of two concatenated vectors. */
#if DW_VL == 16
#define DW_EVEN ((DW_CAT(dw_vi, DW_VL)){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#elif DW_VL == 8
#define DW_EVEN ((DW_CAT(dw_vi, DW_VL)){0, 2, 4, 6, 8, 10, 12, 14})
#else
#define DW_EVEN ((DW_CAT(dw_vi, DW_VL)){0, 2, 4, 6})
#endif

static inline VF DW_CAT(dw_load, DW_VL)(const float *p)
{
    VF v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void DW_CAT(dw_store, DW_VL)(float *p, VF v) { memcpy(p, &v, sizeof v); }

#define DW_MAXTAPS 64

void DW_NAME(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
             const float *bias, int act, float *y)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    const int sw = p->sw;
    long toff[DW_MAXTAPS];
    int tkx[DW_MAXTAPS];
    float tw[DW_MAXTAPS];
    /* Interior columns: ox·sw + kx·dw − pw inside [0, W) for every kx. */
    int xlo = p->pw > 0 ? (p->pw + sw - 1) / sw : 0;
    int last = (KW - 1) * p->dw - p->pw; /* offset of the right-most tap */
    int xhi = W - 1 - last < 0 ? 0 : (W - 1 - last) / sw + 1;
    if (xhi > OW)
        xhi = OW;
    if (xlo > xhi)
        xlo = xhi;
    for (int q = q0; q < q1; q++) {
        const int c = q % p->C;
        const float *xq = x + (long)q * H * W;
        const float *wc = w + (long)c * KH * KW;
        float *yq = y + (long)q * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            float *yr = yq + (long)oy * OW;
            int nt = 0;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * p->sh - p->ph + ky * p->dh;
                if (iy < 0 || iy >= H)
                    continue;
                for (int kx = 0; kx < KW && nt < DW_MAXTAPS; kx++, nt++) {
                    tkx[nt] = kx * p->dw - p->pw;
                    toff[nt] = (long)iy * W + tkx[nt];
                    tw[nt] = wc[ky * KW + kx];
                }
            }
            int ox = 0;
            if (sw == 1 && KH * KW <= DW_MAXTAPS) {
                for (; ox < xlo; ox++) {
                    float s = 0;
                    for (int t = 0; t < nt; t++) {
                        int ix = ox + tkx[t];
                        if (ix >= 0 && ix < W)
                            s += tw[t] * xq[toff[t] + ox];
                    }
                    yr[ox] = s;
                }
                for (; ox + 2 * DW_VL <= xhi; ox += 2 * DW_VL) {
                    VF a0 = {0}, a1 = {0};
                    for (int t = 0; t < nt; t++) {
                        const float *s = xq + toff[t] + ox;
                        a0 += tw[t] * DW_CAT(dw_load, DW_VL)(s);
                        a1 += tw[t] * DW_CAT(dw_load, DW_VL)(s + DW_VL);
                    }
                    DW_CAT(dw_store, DW_VL)(yr + ox, a0);
                    DW_CAT(dw_store, DW_VL)(yr + ox + DW_VL, a1);
                }
                for (; ox + DW_VL <= xhi; ox += DW_VL) {
                    VF a0 = {0};
                    for (int t = 0; t < nt; t++)
                        a0 += tw[t] * DW_CAT(dw_load, DW_VL)(xq + toff[t] + ox);
                    DW_CAT(dw_store, DW_VL)(yr + ox, a0);
                }
                if (ox < xhi && xhi - xlo >= DW_VL) {
                    /* The last partial vector: recompute the vector ending at
                     * xhi (overlapping outputs get the same values again). */
                    VF a0 = {0};
                    for (int t = 0; t < nt; t++)
                        a0 += tw[t] * DW_CAT(dw_load, DW_VL)(xq + toff[t] + xhi - DW_VL);
                    DW_CAT(dw_store, DW_VL)(yr + xhi - DW_VL, a0);
                    ox = xhi;
                }
                for (; ox < xhi; ox++) {
                    float s = 0;
                    for (int t = 0; t < nt; t++)
                        s += tw[t] * xq[toff[t] + ox];
                    yr[ox] = s;
                }
            }
            if (sw == 2 && KH * KW <= DW_MAXTAPS) {
                for (; ox < xlo; ox++) {
                    float s = 0;
                    for (int t = 0; t < nt; t++) {
                        int ix = 2 * ox + tkx[t];
                        if (ix >= 0 && ix < W)
                            s += tw[t] * xq[toff[t] + 2 * ox];
                    }
                    yr[ox] = s;
                }
                /* Two vectors of input give one of output (the even
                 * lanes); the second vector reads one float past the last
                 * tap, so the loop stops while that float is in the row. */
                for (; ox + DW_VL <= xhi && 2 * (ox + DW_VL) + last < W; ox += DW_VL) {
                    VF a0 = {0};
                    for (int t = 0; t < nt; t++) {
                        const float *s = xq + toff[t] + 2 * ox;
                        a0 += tw[t] * __builtin_shuffle(DW_CAT(dw_load, DW_VL)(s), DW_CAT(dw_load, DW_VL)(s + DW_VL), DW_EVEN);
                    }
                    DW_CAT(dw_store, DW_VL)(yr + ox, a0);
                }
                for (; ox < xhi; ox++) {
                    float s = 0;
                    for (int t = 0; t < nt; t++)
                        s += tw[t] * xq[toff[t] + 2 * ox];
                    yr[ox] = s;
                }
            }
            if (KH * KW <= DW_MAXTAPS) {
                for (; ox < OW; ox++) {
                    float s = 0;
                    for (int t = 0; t < nt; t++) {
                        int ix = ox * sw + tkx[t];
                        if (ix >= 0 && ix < W)
                            s += tw[t] * xq[toff[t] - tkx[t] + ix];
                    }
                    yr[ox] = s;
                }
                continue;
            }
            /* More taps than the list holds: one axpy per tap over the
             * columns where it is inside the image. */
            for (ox = 0; ox < OW; ox++)
                yr[ox] = 0.0f;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * p->sh - p->ph + ky * p->dh;
                if (iy < 0 || iy >= H)
                    continue;
                for (int kx = 0; kx < KW; kx++) {
                    const float wv = wc[ky * KW + kx];
                    const int off = kx * p->dw - p->pw;
                    for (int o = 0; o < OW; o++) {
                        int ix = o * sw + off;
                        if (ix >= 0 && ix < W)
                            yr[o] += wv * xq[(long)iy * W + ix];
                    }
                }
            }
        }
        if (bias || act != HW_ACT_NONE)
            DW_BIAS_ACT(yq, yq, 0, 1, 1, (long)OH * OW, bias ? bias + c : 0, act);
    }
}

#undef VF
#undef DW_EVEN
