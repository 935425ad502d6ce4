/* Depthwise convolution forward, instantiated once per ISA level: the
 * including file sets its target pragma and defines DW_NAME (signature of
 * hw_conv_dw without the isa argument) and DW_BIAS_ACT (the same level's
 * hw_bias_act_*). Each output row starts at zero and gets one axpy per
 * kernel tap over the range of columns whose input is inside the image, so
 * padding costs no branches in the inner loop; with stride 1 that loop is
 * contiguous and GCC vectorises it for the level. The row is then biased and
 * activated while it is in L1. */

/* dw_cols returns in [*lo,*hi) the output columns ox with
 * 0 ≤ ox·s + off < n. */
static inline void dw_cols(int n, int s, int off, int outn, int *lo, int *hi)
{
    int l = off < 0 ? (-off + s - 1) / s : 0;
    int h = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    *lo = l;
    *hi = h < outn ? h : outn;
}

void DW_NAME(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
             const float *bias, int act, float *y)
{
    const int H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    const int sh = p->sh, sw = p->sw;
    for (int q = q0; q < q1; q++) {
        const int c = q % p->C;
        const float *xq = x + (long)q * H * W;
        const float *wc = w + (long)c * KH * KW;
        float *yq = y + (long)q * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            float *restrict yr = yq + (long)oy * OW;
            for (int ox = 0; ox < OW; ox++)
                yr[ox] = 0.0f;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * sh - p->ph + ky * p->dh;
                if (iy < 0 || iy >= H)
                    continue;
                const float *restrict xr = xq + (long)iy * W;
                for (int kx = 0; kx < KW; kx++) {
                    const float wv = wc[ky * KW + kx];
                    const int off = kx * p->dw - p->pw;
                    int lo, hi;
                    dw_cols(W, sw, off, OW, &lo, &hi);
                    if (sw == 1) {
                        const float *restrict xs = xr + off;
                        for (int ox = lo; ox < hi; ox++)
                            yr[ox] += wv * xs[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            yr[ox] += wv * xr[ox * sw + off];
                    }
                }
            }
        }
        if (bias || act != HW_ACT_NONE) {
            /* One plane of channel c: pass the plane as plane 0 of a
             * one-channel tensor with that channel's bias. */
            DW_BIAS_ACT(yq, yq, 0, 1, 1, (long)OH * OW, bias ? bias + c : 0, act);
        }
    }
}
