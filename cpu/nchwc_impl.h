/* The blocked-layout kernels of nchwc.h, instantiated once per ISA level:
 * the including file sets its target pragma and defines
 *   NC_B    floats per vector and per channel block (16, 8 or 4)
 *   NC_SUF  the level's suffix (generic, avx2, avx512)
 *   NC_TW   the widest output tile of the direct convolution (pixels)
 * and may define
 *   NC_TW1  the widest tile of one output block (default NC_TW; at most 12)
 * The vectors are GCC vector extensions, so the same source becomes zmm,
 * ymm or paired xmm code under each file's target pragma.
 *
 * The convolutions take inputs with no padding left to apply (program.go
 * copies a padded input into a zero-bordered buffer first), so every
 * output pixel's window is inside the input and there are no bounds
 * checks. Their taps — (input channel, ky, kx) for the direct
 * convolution, (ky, kx) for the depthwise one — come as a table of input
 * and weight offsets built when the program is compiled (nchwc.go), so
 * one flat loop runs them whatever the kernel size and input layout.
 *
 * The direct convolution keeps a tile of OB (1 or 2) output blocks × TW
 * output pixels of one row in registers (2·NC_TW accumulators: 12 of the
 * 16 ymm registers, 24 of the 32 zmm ones) and, per tap, loads OB weight
 * vectors and broadcasts TW input values: 2·TW FMAs for TW + 2 loads. The
 * depthwise one keeps TW pixels of one channel block and loads one weight
 * and TW input vectors per tap. A row is tiles of near-equal width, each
 * width its own instantiation (the tile is an always-inline function
 * called with constant OB and TW, so GCC unrolls it into straight register
 * code); narrow outputs are tiled across rows (hw_nc_conv_flat). */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"

#ifndef NC_TW1
#define NC_TW1 NC_TW
#endif

#define NC_CAT_(a, b) a##b
#define NC_CAT(a, b) NC_CAT_(a, b)
#define NC_FN(name) NC_CAT(hw_nc_##name##_, NC_SUF)
#define NC_INLINE static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(NC_B * 4)));

NC_INLINE vf ld(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

NC_INLINE void st(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* splat broadcasts x: a constructor of equal elements, which GCC emits
 * as one broadcast (0 + x would cost an add, kept for the sign of −0; a
 * lane loop becomes one masked insert per lane). */
#define NC_X4(x) x, x, x, x
#if NC_B == 16
#define NC_SPLAT(x) ((vf){NC_X4(x), NC_X4(x), NC_X4(x), NC_X4(x)})
#elif NC_B == 8
#define NC_SPLAT(x) ((vf){NC_X4(x), NC_X4(x)})
#else
#define NC_SPLAT(x) ((vf){NC_X4(x)})
#endif
NC_INLINE vf splat(float x) { return NC_SPLAT(x); }

typedef int vi __attribute__((vector_size(NC_B * 4)));

/* vsel returns a where m is all ones, else b (m from a vector comparison:
 * GCC emits a compare and a blend, where a lane loop stays scalar). */
NC_INLINE vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

/* vmax returns a > b ? a : b per lane (maxps's operand order: a NaN in a
 * gives b, a NaN in b stays), which is the reference's "m = v if v > m". */
NC_INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }

NC_INLINE vf vmin(vf a, vf b) { return vsel(a < b, a, b); }

/* act_v applies an accel.Act with the expressions of act_impl.h. */
NC_INLINE vf act_v(vf v, int act)
{
    const vf zero = {0};
    switch (act) {
    case HW_ACT_RELU:
        return vmax(v, zero);
    case HW_ACT_RELU6:
        return vmin(vmax(v, zero), zero + 6.0f);
    case HW_ACT_HARDSWISH: {
        vf t = vmin(vmax(v + 3.0f, zero), zero + 6.0f);
        return v * t * (1.0f / 6.0f);
    }
    }
    return v;
}

/* span returns in [*lo,*hi) the taps k of a window at output position o
 * (input o·s − pad + k·d) that fall inside [0, n). */
NC_INLINE void span(int o, int s, int pad, int d, int k, int n, int *lo, int *hi)
{
    int base = o * s - pad, a = 0, b = k;
    while (a < k && base + a * d < 0)
        a++;
    while (b > a && base + (b - 1) * d >= n)
        b--;
    *lo = a;
    *hi = b;
}

/* conv_tap accumulates n input channels (1 ≤ n ≤ NC_B, lanes xp[c] of
 * each pixel, weight vectors wp + c·NC_B) into the tile. Pixel j's values
 * are xstep floats apart, or XS when XS > 0: a compile-time step makes
 * every broadcast one displacement from xp (a run-time one takes a
 * register per pixel, which with the accumulators' 12 vector registers
 * spilled the loop's pointers to the stack). */
NC_INLINE void conv_tap(const int OB, const int TW, const long XS, const int n, vf acc[2][NC_TW1], const float *xp,
                        long xstep, const float *wp, long wblock)
{
    if (XS > 0)
        xstep = XS;
    const float *wp1 = wp + wblock;
    /* An opaque copy: GCC would otherwise hoist wblock + c·NC_B, one
     * invariant per unrolled channel, and spill them to the stack. */
    __asm__("" : "+r"(wp1));
#pragma GCC unroll 16
    for (int c = 0; c < n; c++) {
        const vf w0 = ld(wp + c * NC_B), w1 = OB > 1 ? ld(wp1 + c * NC_B) : w0;
        /* Opaque too: with a plain input's kernel row as channels (XS 1),
         * pixel j of channel c reads what pixel j+1 of channel c−1 does,
         * and GCC kept such shared broadcasts in registers, spilling
         * accumulators for them. */
        const float *xc = xp + c;
        __asm__("" : "+r"(xc));
#pragma GCC unroll 16
        for (int j = 0; j < TW; j++) {
            const vf v = splat(xc[j * xstep]);
            acc[0][j] += v * w0;
            if (OB > 1)
                acc[1][j] += v * w1;
        }
    }
}

/* conv_tap_flat is conv_tap for pixels anywhere in the output: pixel j's
 * values of the tap at xj[j] + xo + c. */
NC_INLINE void conv_tap_flat(const int OB, const int TW, const int n, vf acc[2][NC_TW1], const float *const *xj,
                             long xo, const float *wp, long wblock)
{
    const float *wp1 = wp + wblock;
    __asm__("" : "+r"(wp1)); /* as in conv_tap */
#pragma GCC unroll 16
    for (int c = 0; c < n; c++) {
        const vf w0 = ld(wp + c * NC_B), w1 = OB > 1 ? ld(wp1 + c * NC_B) : w0;
#pragma GCC unroll 16
        for (int j = 0; j < TW; j++) {
            const vf v = splat(xj[j][xo + c]);
            acc[0][j] += v * w0;
            if (OB > 1)
                acc[1][j] += v * w1;
        }
    }
}

/* conv_tile computes output blocks kb..kb+OB−1 (OB weight blocks wblock
 * floats apart, from wk) at TW pixels of a row, the first of which reads
 * its window from x0 and the next ones xstep floats further on. Tap t of
 * the table covers taps[3t+2] input channels whose values for the first
 * pixel are at x0 + taps[3t] + c and whose weight vectors at
 * wk + taps[3t+1] + c·NC_B (c < taps[3t+2]): a whole channel block of a
 * blocked input (the common case, unrolled with constant offsets) or one
 * channel of a plain one. Each channel is one broadcast input value per
 * pixel against OB weight vectors. Pixel j's outputs go to y0 + j·ystep
 * and y1 + j·ystep. (A linear layer is the same tile with samples for
 * pixels.) With FLAT, pixel j's window starts at xj[j] instead (pixels
 * anywhere in the output, conv_tap_flat), and x0 and xstep are unused. */
NC_INLINE void conv_tile(const int OB, const int TW, const long XS, const int FLAT, const float *x0, long xstep,
                         const float *const *xj, const float *wk, long wblock, const int *taps, int ntaps, vf b0,
                         vf b1, int act, float *y0, float *y1, long ystep)
{
    vf acc[2][NC_TW1];
#pragma GCC unroll 16
    for (int j = 0; j < TW; j++) {
        acc[0][j] = b0;
        acc[1][j] = b1;
    }
#define NC_TAP(N, XO, WP)                                               \
    do {                                                                \
        if (FLAT)                                                       \
            conv_tap_flat(OB, TW, N, acc, xj, XO, WP, wblock);          \
        else                                                            \
            conv_tap(OB, TW, XS, N, acc, x0 + (XO), xstep, WP, wblock); \
    } while (0)
    for (int t = 0; t < ntaps; t++) {
        const long xo = taps[3 * t];
        const float *wp = wk + taps[3 * t + 1];
        const int n = taps[3 * t + 2];
        if (n == NC_B)
            NC_TAP(NC_B, xo, wp);
        else if (n == NC_B / 2) /* the last block of 12, 20, 28… channels (24, 40… at 16 lanes) */
            NC_TAP(NC_B / 2, xo, wp);
        else if (!FLAT && XS > 0 && XS < NC_B && n == 5) /* a plain input's 5-wide kernel row */
            NC_TAP(5, xo, wp);
        else if (!FLAT && XS > 0 && XS < NC_B && n == 3)
            NC_TAP(3, xo, wp);
        else
            for (int c = 0; c < n; c++)
                NC_TAP(1, xo + c, wp + (long)c * NC_B);
    }
#undef NC_TAP
#pragma GCC unroll 16
    for (int j = 0; j < TW; j++) {
        st(y0 + j * ystep, act_v(acc[0][j], act));
        if (OB > 1)
            st(y1 + j * ystep, act_v(acc[1][j], act));
    }
}

/* NC_SWITCH_TW expands CALL(TW) for the run-time width n in 1..MAX (at
 * most 12): one instantiation a width, so a row of any width up to MAX is
 * one tile (weights and taps read once). */
#if NC_TW1 > 12
#error "NC_SWITCH_TW covers widths up to 12"
#endif
#define NC_SWITCH_TW(n, MAX, CALL)         \
    switch (n) {                           \
    case 12:                               \
        CALL((12 <= (MAX) ? 12 : 1));      \
        break;                             \
    case 11:                               \
        CALL((11 <= (MAX) ? 11 : 1));      \
        break;                             \
    case 10:                               \
        CALL((10 <= (MAX) ? 10 : 1));      \
        break;                             \
    case 9:                                \
        CALL((9 <= (MAX) ? 9 : 1));        \
        break;                             \
    case 8:                                \
        CALL((8 <= (MAX) ? 8 : 1));        \
        break;                             \
    case 7:                                \
        CALL((7 <= (MAX) ? 7 : 1));        \
        break;                             \
    case 6:                                \
        CALL((6 <= (MAX) ? 6 : 1));        \
        break;                             \
    case 5:                                \
        CALL((5 <= (MAX) ? 5 : 1));        \
        break;                             \
    case 4:                                \
        CALL(4);                           \
        break;                             \
    case 3:                                \
        CALL(3);                           \
        break;                             \
    case 2:                                \
        CALL(2);                           \
        break;                             \
    default:                               \
        CALL(1);                           \
    }

/* conv_row_xs computes one output row of OB blocks in tiles of near-equal
 * width, at most NC_TW pixels for two blocks and NC_TW1 for one (8
 * pixels: 4 + 4, not 6 + 2: a narrow tile has too few accumulators to hide
 * the multiply-add latency), pixels XS floats apart (see conv_tap). */
NC_INLINE void conv_row_xs(const int OB, const long XS, const hw_conv_t *p, const float *xr, long xstep,
                           const float *wk, long wblock, const int *taps, int ntaps, vf b0, vf b1, int act,
                           float *y0, float *y1)
{
    const int TWMAX = OB > 1 ? NC_TW : NC_TW1;
    const int OW = p->OW, nt = (OW + TWMAX - 1) / TWMAX, tw0 = OW / nt, wide = OW % nt;
    int ox = 0;
    for (int i = 0; i < nt; i++) {
        const int tw = tw0 + (i < wide);
#define NC_CONV_TILE(TW)                                                                  \
    conv_tile(OB, TW, XS, 0, xr + ox * xstep, xstep, NULL, wk, wblock, taps, ntaps, b0, b1, act, \
              y0 + (long)ox * NC_B, y1 + (long)ox * NC_B, NC_B)
        NC_SWITCH_TW(tw, TWMAX, NC_CONV_TILE)
#undef NC_CONV_TILE
        ox += tw;
    }
}

/* conv_row is conv_row_xs with the pixel step a constant for the usual
 * ones: stride 1 and 2 of a blocked input or of a plain one. */
NC_INLINE void conv_row(const int OB, const hw_conv_t *p, const float *xr, long xstep, const float *wk,
                        long wblock, const int *taps, int ntaps, vf b0, vf b1, int act, float *y0, float *y1)
{
    switch (xstep) {
    case NC_B:
        conv_row_xs(OB, NC_B, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
        break;
    case 2 * NC_B:
        conv_row_xs(OB, 2 * NC_B, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
        break;
    case 1:
        conv_row_xs(OB, 1, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
        break;
    case 2:
        conv_row_xs(OB, 2, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
        break;
    default:
        conv_row_xs(OB, 0, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
    }
}

/* conv_flat computes all OH·OW pixels of OB blocks of one sample in tiles
 * of near-equal width that span output rows (hw_nc_conv_flat). */
NC_INLINE void conv_flat(const int OB, const hw_conv_t *p, const float *xn, long rstride, long xstep,
                         const float *wk, long wblock, const int *taps, int ntaps, vf b0, vf b1, int act,
                         float *y0, float *y1)
{
    const int TWMAX = OB > 1 ? NC_TW : NC_TW1;
    const int P = p->OH * p->OW, nt = (P + TWMAX - 1) / TWMAX, tw0 = P / nt, wide = P % nt;
    const float *xj[NC_TW1];
    int px = 0;
    for (int i = 0; i < nt; i++) {
        const int tw = tw0 + (i < wide);
        for (int j = 0; j < tw; j++) {
            const int oy = (px + j) / p->OW, ox = (px + j) % p->OW;
            xj[j] = xn + (long)oy * p->sh * rstride + ox * xstep;
        }
#define NC_CONV_FLAT(TW)                                                                           \
    conv_tile(OB, TW, 0, 1, NULL, 0, xj, wk, wblock, taps, ntaps, b0, b1, act, y0 + (long)px * NC_B, \
              y1 + (long)px * NC_B, NC_B)
        NC_SWITCH_TW(tw, TWMAX, NC_CONV_FLAT)
#undef NC_CONV_FLAT
        px += tw;
    }
}

/* conv_flat_sample is conv_flat for one or two blocks (OB at run time). A
 * function of its own, so that GCC allocates NC_FN(conv)'s row kernels'
 * registers as without it (inlined there, LeNet-5's conv1 measured 7%
 * slower, within this VM's noise). */
static void __attribute__((noinline)) conv_flat_sample(int OB, const hw_conv_t *p, const float *xn, long rstride,
                                                       long xstep, const float *wk, long wblock, const int *taps,
                                                       int ntaps, vf b0, vf b1, int act, float *y0, float *y1)
{
    if (OB > 1)
        conv_flat(2, p, xn, rstride, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
    else
        conv_flat(1, p, xn, rstride, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y1);
}

void NC_FN(conv)(const hw_conv_t *p, int xb, const float *x, long xs, const float *w, const int *taps,
                 int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1)
{
    /* A task is one output row of a block pair, or the whole sample's
     * pixels for a flat output (hw_nc_conv_flat). */
    const int flat = hw_nc_conv_flat(p, NC_TW), rows = flat ? 1 : p->OH;
    const int B = NC_B, Kb = (p->K + B - 1) / B, Cb = (p->C + B - 1) / B;
    const long tasks = (long)(Kb + 1) / 2 * rows;
    const long pstride = xb ? B : 1, rstride = (long)p->W * pstride;
    const long xstep = (long)p->sw * pstride;
    const long wblock = (long)(xb ? Cb * B : p->C) * p->KH * p->KW * B;
    const long yplane = (long)p->OH * p->OW * B;
    for (long r = r0; r < r1; r++) {
        const long n = r / tasks;
        const int t = (int)(r % tasks), kb = 2 * (t / rows), oy = t % rows;
        const float *xr = x + n * xs + (long)oy * p->sh * rstride;
        const float *wk = w + (long)kb * wblock;
        float *y0 = y + n * ys + kb * yplane + (long)oy * p->OW * B;
        const int ob = kb + 1 < Kb ? 2 : 1;
        const vf b0 = bias ? ld(bias + (long)kb * B) : (vf){0};
        const vf b1 = bias && ob > 1 ? ld(bias + (long)(kb + 1) * B) : b0;
        if (flat)
            conv_flat_sample(ob, p, xr, rstride, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y0 + yplane);
        else if (ob > 1)
            conv_row(2, p, xr, xstep, wk, wblock, taps, ntaps, b0, b1, act, y0, y0 + yplane);
        else
            conv_row(1, p, xr, xstep, wk, wblock, taps, ntaps, b0, b0, act, y0, y0);
    }
}

int NC_FN(tile)(void) { return NC_TW; }

/* linear_one is conv_tile for one sample of a linear layer (TW 1), with
 * four sets of accumulators taking the taps in turn. With one, the OB
 * chains of dependent multiply-adds, one a feature, bound the layer by the
 * multiply-add's latency (at batch 1 a layer is a matrix-vector product,
 * and its weights stream from L2 or L3 once). The sets are summed at the
 * end: the sum's order differs from the tile's, by rounding only. */
NC_INLINE void linear_one(const int OB, const float *x0, const float *wk, long wblock, const int *taps, int ntaps,
                          vf b0, vf b1, int act, float *y0, float *y1)
{
    vf a0[2][NC_TW1], a1[2][NC_TW1], a2[2][NC_TW1], a3[2][NC_TW1];
    a0[0][0] = b0;
    a0[1][0] = b1;
    a1[0][0] = a1[1][0] = a2[0][0] = a2[1][0] = a3[0][0] = a3[1][0] = (vf){0};
#define NC_LIN_TAP(A, T)                                                                   \
    do {                                                                                   \
        const float *xp = x0 + taps[3 * (T)], *wp = wk + taps[3 * (T) + 1];                \
        const int n = taps[3 * (T) + 2];                                                   \
        if (n == NC_B)                                                                     \
            conv_tap(OB, 1, 0, NC_B, A, xp, 0, wp, wblock);                                \
        else                                                                               \
            for (int c = 0; c < n; c++)                                                    \
                conv_tap(OB, 1, 0, 1, A, xp + c, 0, wp + (long)c * NC_B, wblock);          \
    } while (0)
    int t = 0;
    for (; t + 4 <= ntaps; t += 4) {
        NC_LIN_TAP(a0, t);
        NC_LIN_TAP(a1, t + 1);
        NC_LIN_TAP(a2, t + 2);
        NC_LIN_TAP(a3, t + 3);
    }
    for (; t < ntaps; t++)
        NC_LIN_TAP(a0, t);
#undef NC_LIN_TAP
    st(y0, act_v((a0[0][0] + a1[0][0]) + (a2[0][0] + a3[0][0]), act));
    if (OB > 1)
        st(y1, act_v((a0[1][0] + a1[1][0]) + (a2[1][0] + a3[1][0]), act));
}

void NC_FN(linear)(long n, int fo, const float *x, long xs, const float *w, long wblock, const int *taps,
                   int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1)
{
    /* Task r: output block pair r / T of the samples [t·NC_TW,
     * (t+1)·NC_TW) ∩ [0, n), t = r mod T, T = ⌈n/NC_TW⌉ tiles: the conv
     * tile with samples for pixels. Consecutive tasks share a pair's
     * weights, which stay in cache from one tile of samples to the next. */
    const int B = NC_B, Ob = (fo + B - 1) / B;
    const long tiles = (n + NC_TW - 1) / NC_TW;
    for (long r = r0; r < r1; r++) {
        const long s0 = r % tiles * NC_TW;
        const int ob = 2 * (int)(r / tiles), tw = n - s0 < NC_TW ? (int)(n - s0) : NC_TW;
        const float *x0 = x + s0 * xs;
        const float *wk = w + ob * wblock;
        float *y0 = y + s0 * ys + (long)ob * B;
        const vf b0 = bias ? ld(bias + (long)ob * B) : (vf){0};
        /* b1 is the second block's bias; a lone last block ignores it. */
        const vf b1 = bias && ob + 1 < Ob ? ld(bias + (long)(ob + 1) * B) : (vf){0};
        if (tw == 1) {
            if (ob + 1 < Ob)
                linear_one(2, x0, wk, wblock, taps, ntaps, b0, b1, act, y0, y0 + B);
            else
                linear_one(1, x0, wk, wblock, taps, ntaps, b0, b1, act, y0, y0);
        } else if (ob + 1 < Ob) {
#define NC_LIN(TW) conv_tile(2, TW, 0, 0, x0, xs, NULL, wk, wblock, taps, ntaps, b0, b1, act, y0, y0 + B, ys)
            NC_SWITCH_TW(tw, NC_TW, NC_LIN)
#undef NC_LIN
        } else {
#define NC_LIN(TW) conv_tile(1, TW, 0, 0, x0, xs, NULL, wk, wblock, taps, ntaps, b0, b0, act, y0, y0, ys)
            NC_SWITCH_TW(tw, NC_TW, NC_LIN)
#undef NC_LIN
        }
    }
}

/* dw_tile computes one channel block at TW pixels of a row: for every tap
 * t (taps[2t] floats from x0, weights taps[2t+1] floats from wc) one
 * input vector per pixel. */
NC_INLINE void dw_tile(const int TW, const float *x0, long xstep, const float *wc, const int *taps, int ntaps,
                       vf b0, int act, float *y0)
{
    vf acc[NC_TW];
#pragma GCC unroll 16
    for (int j = 0; j < TW; j++)
        acc[j] = b0;
    for (int t = 0; t < ntaps; t++) {
        const float *xp = x0 + taps[2 * t];
        const vf wv = ld(wc + taps[2 * t + 1]);
#pragma GCC unroll 16
        for (int j = 0; j < TW; j++)
            acc[j] += ld(xp + j * xstep) * wv;
    }
#pragma GCC unroll 16
    for (int j = 0; j < TW; j++)
        st(y0 + (long)j * NC_B, act_v(acc[j], act));
}

/* dw_edge computes output pixels [ox0,ox1) of a row, whose windows
 * cross the padding at the left or right, one by one: only the taps
 * ky in [ky0,ky1) and those kx of each pixel's window inside the input.
 * Even and odd kernel rows have their own accumulators, so a pixel's
 * multiply-adds are two chains, not one. */
NC_INLINE void dw_edge(const hw_conv_t *p, const float *xc, int iy0, int ky0, int ky1, int ox0, int ox1,
                       const float *wc, vf b0, int act, float *yr)
{
    const int B = NC_B;
    const long xrow = (long)p->dh * p->W * B, xcol = (long)p->dw * B, wrow = (long)p->KW * B;
    for (int ox = ox0; ox < ox1; ox++) {
        int kx0, kx1;
        span(ox, p->sw, p->pw, p->dw, p->KW, p->W, &kx0, &kx1);
        vf a[2] = {b0, {0}};
        const float *xr = xc + ((long)(iy0 + ky0 * p->dh) * p->W + ox * p->sw - p->pw) * B;
        const float *wr = wc + ky0 * wrow;
        for (int ky = ky0; ky < ky1; ky++, xr += xrow, wr += wrow)
            for (int kx = kx0; kx < kx1; kx++)
                a[ky & 1] += ld(xr + kx * xcol) * ld(wr + kx * B);
        st(yr + (long)ox * B, act_v(a[0] + a[1], act));
    }
}

/* dw_run computes output pixels [ox0,ox1) of a row as register tiles:
 * x0 is the input of pixel 0 at the taps' origin, ntaps the taps. */
NC_INLINE void dw_run(const float *x0, long xstep, const float *wc, const int *taps, int ntaps, vf b0, int act,
                      float *yr, int ox0, int ox1)
{
    int ox = ox0;
    for (; ox + NC_TW <= ox1; ox += NC_TW)
        dw_tile(NC_TW, x0 + ox * xstep, xstep, wc, taps, ntaps, b0, act, yr + (long)ox * NC_B);
    if (ox < ox1) {
#define NC_DW_REST(TW) dw_tile(TW, x0 + ox * xstep, xstep, wc, taps, ntaps, b0, act, yr + (long)ox * NC_B)
        NC_SWITCH_TW(ox1 - ox, NC_TW, NC_DW_REST)
#undef NC_DW_REST
    }
}

/* The depthwise convolution handles the padding itself, so no padded
 * copy of its input is made (program.go does so for strides > 1: on a
 * 12-channel 14×14 map at batch 64, stride 2, the copy took longer than
 * the convolution). In each output row the pixels whose windows lie
 * inside the input horizontally, [lo, hi), run as register tiles over
 * the kernel rows inside it vertically; the pixels at the left and right
 * edges run one by one. Without padding every row is one run of tiles. */
void NC_FN(dwconv)(const hw_conv_t *p, const float *x, long xs, const float *w, const int *taps,
                   const float *bias, int act, float *y, long ys, long r0, long r1)
{
    const int B = NC_B, OW = p->OW, KW = p->KW, KH = p->KH;
    const long tasks = (long)(p->C + B - 1) / B * p->OH;
    const long rstride = (long)p->W * B, xstep = (long)p->sw * B, xplane = (long)p->H * rstride;
    const int padded = p->ph > 0 || p->pw > 0;
    /* lo: the first ox with ox·sw − pw ≥ 0; hi: one past the last with
     * ox·sw − pw + (KW−1)·dw ≤ W − 1. */
    const int last = p->W - 1 - (KW - 1) * p->dw + p->pw;
    int lo = (p->pw + p->sw - 1) / p->sw, hi = last < 0 ? 0 : last / p->sw + 1;
    lo = lo < OW ? lo : OW;
    hi = hi < OW ? hi : OW;
    hi = hi > lo ? hi : lo;
    for (long r = r0; r < r1; r++) {
        const long n = r / tasks;
        const int t = (int)(r % tasks), cb = t / p->OH, oy = t % p->OH;
        const float *xc = x + n * xs + cb * xplane;
        const float *wc = w + (long)cb * KH * KW * B;
        float *yr = y + n * ys + ((long)cb * p->OH + oy) * OW * B;
        const vf b0 = bias ? ld(bias + (long)cb * B) : (vf){0};
        const int iy0 = oy * p->sh - p->ph;
        if (!padded) {
            dw_run(xc + (long)iy0 * rstride, xstep, wc, taps, KH * KW, b0, act, yr, 0, OW);
            continue;
        }
        int ky0, ky1; /* the kernel rows inside the input */
        span(oy, p->sh, p->ph, p->dh, KH, p->H, &ky0, &ky1);
        dw_edge(p, xc, iy0, ky0, ky1, 0, lo, wc, b0, act, yr);
        /* The tap offsets are linear in ky, so the kernel rows from ky0
         * on are the table's first (ky1 − ky0)·KW taps read from kernel
         * row ky0's input row and weights. */
        const int nt = (ky1 - ky0) * KW;
        const long xrow = nt ? (long)(iy0 + ky0 * p->dh) * rstride - (long)p->pw * B : 0;
        dw_run(xc + xrow, xstep, wc + (long)ky0 * KW * B, taps, nt, b0, act, yr, lo, hi);
        dw_edge(p, xc, iy0, ky0, ky1, hi, OW, wc, b0, act, yr);
    }
}

/* px_run accumulates NV vectors of output pixels from ox0 over the taps
 * of one output row and stores act(acc + bias), the last vector's lanes
 * beyond OW left out. t0 is the row's first phase row (input channel 0,
 * kernel row 0, an index into ph that is negative when that row lies in
 * the padding); toff[(c·KH + ky)·KW + kx] is each tap's offset from it,
 * so the loop has no divisions; the scratch
 * rows hold whole vectors past every tap, so no load is checked. */
NC_INLINE void px_run(const int NV, int C, int KH, int KW, int ky0, int ky1, const long *toff, const float *ph,
                      long t0, const float *wk, float b, int act, int OW, int ox0, float *yr)
{
    vf acc[4];
    for (int v = 0; v < NV; v++)
        acc[v] = splat(b);
    for (int c = 0; c < C; c++)
        for (int ky = ky0; ky < ky1; ky++) {
            const int tap = (c * KH + ky) * KW;
            for (int kx = 0; kx < KW; kx++) {
                const float *t = ph + (t0 + toff[tap + kx] + ox0);
                const vf wv = splat(wk[tap + kx]);
                for (int v = 0; v < NV; v++)
                    acc[v] += wv * ld(t + v * NC_B);
            }
        }
    for (int v = 0; v < NV; v++) {
        const int n = OW - ox0 - v * NC_B;
        const vf r = act_v(acc[v], act);
        if (n >= NC_B)
            st(yr + ox0 + v * NC_B, r);
        else {
            float tmp[NC_B];
            st(tmp, r);
            memcpy(yr + ox0 + v * NC_B, tmp, (size_t)n * sizeof(float));
        }
    }
}

/* px_phases splits n input rows of W values (x, row stride W) into sw
 * phase rows each (dst row r·sw + q, plen floats apart), phase q's value
 * j being x column j·sw + q − pw for j in [lo[q], hi[q]); the rest of a
 * phase row is left as it is (zero: the caller clears the buffer once). */
NC_INLINE void px_phases(const float *x, long n, int W, int sw, int pw, const long *lo, const long *hi, float *dst,
                         long plen)
{
    for (long r = 0; r < n; r++, x += W)
        for (int q = 0; q < sw; q++) {
            float *d = dst + (r * sw + q) * plen;
            const float *s = x + q - pw;
            if (sw == 1)
                memcpy(d + lo[0], s + lo[0], (size_t)(hi[0] - lo[0]) * sizeof(float));
            else if (sw == 2)
                for (long j = lo[q]; j < hi[q]; j++)
                    d[j] = s[2 * j];
            else
                for (long j = lo[q]; j < hi[q]; j++)
                    d[j] = s[j * sw];
        }
}

int NC_FN(conv_px)(const hw_conv_t *p, const float *x, long xs, const float *w, const float *bias, int act, float *y,
                   long ys, long n0, long n1)
{
    const int sw = p->sw, C = p->C, KH = p->KH, KW = p->KW, OW = p->OW, nv = (OW + NC_B - 1) / NC_B;
    /* Phase q of an input row holds padded-input columns j·sw + q (x
     * column j·sw + q − pw) for j < plen: a tap reads from ⌊kx·dw/sw⌋
     * on, nv·NC_B values. */
    const long plen = (long)((KW - 1) * p->dw) / sw + (long)nv * NC_B, rows = (long)C * p->H;
    const long ntaps = (long)C * KH * KW;
    float *ph = calloc((size_t)(rows * sw * plen), sizeof(float));
    long *toff = malloc((size_t)(ntaps + 2 * sw) * sizeof(long));
    if (!ph || !toff) {
        free(ph);
        free(toff);
        return -1;
    }
    long *lo = toff + ntaps, *hi = lo + sw;
    for (int q = 0; q < sw; q++) {
        /* j with 0 ≤ j·sw + q − pw ≤ W − 1 */
        long a = p->pw - q > 0 ? (p->pw - q + sw - 1) / sw : 0;
        long b = p->W - 1 + p->pw - q >= 0 ? (p->W - 1 + p->pw - q) / sw + 1 : 0;
        a = a < plen ? a : plen;
        b = b < plen ? b : plen;
        lo[q] = a;
        hi[q] = b > a ? b : a;
    }
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < KH; ky++)
            for (int kx = 0; kx < KW; kx++) {
                const int o = kx * p->dw;
                toff[(c * KH + ky) * KW + kx] = (((long)c * p->H + (long)ky * p->dh) * sw + o % sw) * plen + o / sw;
            }
    for (long n = n0; n < n1; n++) {
        px_phases(x + n * xs, rows, p->W, sw, p->pw, lo, hi, ph, plen);
        for (int oy = 0; oy < p->OH; oy++) {
            int ky0, ky1;
            span(oy, p->sh, p->ph, p->dh, KH, p->H, &ky0, &ky1);
            /* Phase row 0 of input row oy·sh − ph (which may lie in the
             * padding: only taps from ky0 on are read). */
            const long t0 = (long)(oy * p->sh - p->ph) * sw * plen;
            for (int k = 0; k < p->K; k++) {
                const float *wk = w + (long)k * ntaps;
                const float b = bias ? bias[k] : 0.0f;
                float *yr = y + n * ys + ((long)k * p->OH + oy) * OW;
                int v = 0;
                for (; v + 4 <= nv; v += 4)
                    px_run(4, C, KH, KW, ky0, ky1, toff, ph, t0, wk, b, act, OW, v * NC_B, yr);
                switch (nv - v) {
                case 3:
                    px_run(3, C, KH, KW, ky0, ky1, toff, ph, t0, wk, b, act, OW, v * NC_B, yr);
                    break;
                case 2:
                    px_run(2, C, KH, KW, ky0, ky1, toff, ph, t0, wk, b, act, OW, v * NC_B, yr);
                    break;
                case 1:
                    px_run(1, C, KH, KW, ky0, ky1, toff, ph, t0, wk, b, act, OW, v * NC_B, yr);
                    break;
                }
            }
        }
    }
    free(ph);
    free(toff);
    return 0;
}

void NC_FN(pool)(const hw_conv_t *p, int avg, const float *xall, long xs, float *yall, long ys, long r0, long r1)
{
    const int B = NC_B, H = p->H, W = p->W;
    const long tasks = (long)(p->C + NC_B - 1) / NC_B * p->OH;
    for (long r = r0; r < r1; r++) {
        const long n = r / tasks;
        const int t = (int)(r % tasks), cb = t / p->OH, oy = t % p->OH;
        const float *x = xall + n * xs;
        float *y = yall + n * ys;
        const float *xc = x + (long)cb * H * W * B;
        float *yr = y + ((long)cb * p->OH + oy) * p->OW * B;
        int ky0, ky1;
        span(oy, p->sh, p->ph, 1, p->KH, H, &ky0, &ky1);
        for (int ox = 0; ox < p->OW; ox++) {
            int kx0, kx1;
            span(ox, p->sw, p->pw, 1, p->KW, W, &kx0, &kx1);
            const int iy0 = oy * p->sh - p->ph, ix0 = ox * p->sw - p->pw;
            vf m = ld(xc + ((long)(iy0 + ky0) * W + ix0 + kx0) * B);
            if (avg) {
                m = (vf){0};
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        m += ld(xc + ((long)(iy0 + ky) * W + ix0 + kx) * B);
                m *= 1.0f / (float)((ky1 - ky0) * (kx1 - kx0));
            } else {
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        m = vmax(ld(xc + ((long)(iy0 + ky) * W + ix0 + kx) * B), m);
            }
            st(yr + (long)ox * B, m);
        }
    }
}

void NC_FN(gap)(int C, long hw, const float *xall, long xs, float *yall, long ys, long n0, long n1)
{
    const int B = NC_B, Cb = (C + B - 1) / B;
    for (long s = n0; s < n1; s++)
    for (int cb = 0; cb < Cb; cb++) {
        const float *x = xall + s * xs;
        float *y = yall + s * ys;
        const float *xc = x + (long)cb * hw * B;
        vf s0 = {0}, s1 = {0};
        long i = 0;
        for (; i + 2 <= hw; i += 2) {
            s0 += ld(xc + i * B);
            s1 += ld(xc + (i + 1) * B);
        }
        if (i < hw)
            s0 += ld(xc + i * B);
        vf m = (s0 + s1) * (1.0f / (float)hw);
        const int n = C - cb * B < B ? C - cb * B : B;
        for (int l = 0; l < n; l++)
            y[cb * B + l] = m[l];
    }
}

void NC_FN(affine)(int Cb, long hw, const float *x, const float *scale, const float *shift, int act, float *y,
                   long b0, long b1)
{
    const int B = NC_B;
    for (long b = b0; b < b1; b++) {
        const vf s = scale ? ld(scale + (b % Cb) * B) : splat(1.0f);
        const vf t = shift ? ld(shift + (b % Cb) * B) : (vf){0};
        const float *xb = x + (long)b * hw * B;
        float *yb = y + (long)b * hw * B;
        for (long i = 0; i < hw; i++)
            st(yb + i * B, act_v(ld(xb + i * B) * s + t, act));
    }
}

void NC_FN(add)(const float *a, const float *b, int act, float *y, long i0, long i1)
{
    long i = i0;
    for (; i + NC_B <= i1; i += NC_B)
        st(y + i, act_v(ld(a + i) + ld(b + i), act));
    for (; i < i1; i++) {
        vf v = splat(a[i] + b[i]);
        y[i] = act_v(v, act)[0];
    }
}

#undef NC_FN
#undef NC_INLINE
