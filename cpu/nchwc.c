/* Level dispatch of the blocked-layout kernels (nchwc.h) and the
 * layout-only ones, which need nothing but the block size. */
#include <string.h>

#include "nchwc.h"
#include "neon.h"

int hw_nc_block(int isa) { return isa == HW_ISA_AVX512 ? 16 : isa == HW_ISA_AVX2 ? 8 : 4; }

#if HW_X86
#define NC_DISPATCH(name, ...)                    \
    do {                                          \
        switch (isa) {                            \
        case HW_ISA_AVX512:                       \
            hw_nc_##name##_avx512(__VA_ARGS__);   \
            return;                               \
        case HW_ISA_AVX2:                         \
            hw_nc_##name##_avx2(__VA_ARGS__);     \
            return;                               \
        }                                         \
        hw_nc_##name##_generic(__VA_ARGS__);      \
    } while (0)
#elif HW_ARM64
#define NC_DISPATCH(name, ...)                    \
    do {                                          \
        if (isa == HW_ISA_ARM64) {                \
            hw_nc_##name##_neon(__VA_ARGS__);     \
            return;                               \
        }                                         \
        hw_nc_##name##_generic(__VA_ARGS__);      \
    } while (0)
#else
#define NC_DISPATCH(name, ...) hw_nc_##name##_generic(__VA_ARGS__)
#endif

void hw_nc_conv(int isa, const hw_conv_t *p, int xb, const float *x, long xs, const float *w, const int *taps,
                int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1)
{
    NC_DISPATCH(conv, p, xb, x, xs, w, taps, ntaps, bias, act, y, ys, r0, r1);
}

static int tile_width(int isa);

long hw_nc_conv_tasks(int isa, const hw_conv_t *p)
{
    const int B = hw_nc_block(isa), Kb = (p->K + B - 1) / B;
    return (long)(Kb + 1) / 2 * (hw_nc_conv_flat(p, tile_width(isa)) ? 1 : p->OH);
}

int hw_nc_conv_taps(int isa, const hw_conv_t *p, int xb, int *taps)
{
    const int B = hw_nc_block(isa);
    const long plane = (long)p->H * p->W, pstride = xb ? B : 1, rstride = (long)p->W * pstride;
    int n = 0;
    if (!xb) {
        /* Plain x, weights [Kb][C][KH][KW][B]: one entry a (channel, ky)
         * covering the KW values of the kernel row, consecutive in x (no
         * dilation) as their weight vectors are; one a (channel, ky, kx)
         * with dilation. */
        const int row = p->dw == 1;
        for (int c = 0; c < p->C; c++)
            for (int ky = 0; ky < p->KH; ky++)
                for (int kx = 0; kx < (row ? 1 : p->KW); kx++) {
                    taps[3 * n] = (int)(c * plane + ky * p->dh * rstride + kx * p->dw);
                    taps[3 * n + 1] = ((c * p->KH + ky) * p->KW + kx) * B;
                    taps[3 * n + 2] = row ? p->KW : 1;
                    n++;
                }
        return n;
    }
    /* Blocked x: one entry a (channel block, ky, kx), covering the block's
     * channels (contiguous lanes). */
    const int groups = (p->C + B - 1) / B;
    for (int g = 0; g < groups; g++)
        for (int ky = 0; ky < p->KH; ky++)
            for (int kx = 0; kx < p->KW; kx++) {
                const int c = g * B, lanes = p->C - c < B ? p->C - c : B;
                const long cx = (long)g * plane * B;
                taps[3 * n] = (int)(cx + ky * p->dh * rstride + kx * p->dw * pstride);
                taps[3 * n + 1] = (int)(((((long)(c / B) * p->KH + ky) * p->KW + kx) * B + c % B) * B);
                taps[3 * n + 2] = lanes;
                n++;
            }
    return n;
}

void hw_nc_linear(int isa, long n, int fo, const float *x, long xs, const float *w, long wblock, const int *taps,
                  int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1)
{
    NC_DISPATCH(linear, n, fo, x, xs, w, wblock, taps, ntaps, bias, act, y, ys, r0, r1);
}

static int tile_width(int isa)
{
#if HW_X86
    if (isa == HW_ISA_AVX512)
        return hw_nc_tile_avx512();
    if (isa == HW_ISA_AVX2)
        return hw_nc_tile_avx2();
#endif
#if HW_ARM64
    if (isa == HW_ISA_ARM64)
        return hw_nc_tile_neon();
#endif
    (void)isa;
    return hw_nc_tile_generic();
}

long hw_nc_linear_tasks(int isa, long n, int fo)
{
    const int B = hw_nc_block(isa), tw = tile_width(isa);
    return (n + tw - 1) / tw * (((fo + B - 1) / B + 1) / 2);
}

int hw_nc_conv_px(int isa, const hw_conv_t *p, const float *x, long xs, const float *w, const float *bias,
                  int act, float *y, long ys, long n0, long n1)
{
#if HW_X86
    if (isa == HW_ISA_AVX512)
        return hw_nc_conv_px_avx512(p, x, xs, w, bias, act, y, ys, n0, n1);
    if (isa == HW_ISA_AVX2)
        return hw_nc_conv_px_avx2(p, x, xs, w, bias, act, y, ys, n0, n1);
#elif HW_ARM64
    if (isa == HW_ISA_ARM64)
        return hw_nc_conv_px_neon(p, x, xs, w, bias, act, y, ys, n0, n1);
#endif
    return hw_nc_conv_px_generic(p, x, xs, w, bias, act, y, ys, n0, n1);
}

void hw_nc_dwconv(int isa, const hw_conv_t *p, const float *x, long xs, const float *w, const int *taps,
                  const float *bias, int act, float *y, long ys, long r0, long r1)
{
    NC_DISPATCH(dwconv, p, x, xs, w, taps, bias, act, y, ys, r0, r1);
}

int hw_nc_dwconv_taps(int isa, const hw_conv_t *p, int *taps)
{
    const int B = hw_nc_block(isa);
    int n = 0;
    for (int ky = 0; ky < p->KH; ky++)
        for (int kx = 0; kx < p->KW; kx++) {
            taps[2 * n] = (ky * p->dh * p->W + kx * p->dw) * B;
            taps[2 * n + 1] = (ky * p->KW + kx) * B;
            n++;
        }
    return n;
}

void hw_nc_pool(int isa, const hw_conv_t *p, int avg, const float *x, long xs, float *y, long ys, long r0,
                long r1)
{
    NC_DISPATCH(pool, p, avg, x, xs, y, ys, r0, r1);
}

void hw_nc_gap(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1)
{
    NC_DISPATCH(gap, C, hw, x, xs, y, ys, n0, n1);
}

void hw_nc_affine(int isa, int Cb, long hw, const float *x, const float *scale, const float *shift, int act,
                  float *y, long b0, long b1)
{
    NC_DISPATCH(affine, Cb, hw, x, scale, shift, act, y, b0, b1);
}

void hw_nc_add(int isa, const float *a, const float *b, int act, float *y, long i0, long i1)
{
    NC_DISPATCH(add, a, b, act, y, i0, i1);
}

/* transpose writes dst[j·ldd + i] = src[i·lds + j] for i < rows, j < cols:
 * AVX2 or NEON register transposes where the level has them, else one by
 * one. */
static void transpose(int isa, const float *src, long lds, float *dst, long ldd, int rows, long cols)
{
#if HW_X86
    if (isa >= HW_ISA_AVX2) {
        hw_nc_transpose_avx2(src, lds, dst, ldd, rows, (int)cols);
        return;
    }
#endif
#if HW_ARM64
    if (isa == HW_ISA_ARM64) {
        hw_transpose_neon(src, lds, dst, ldd, rows, (int)cols);
        return;
    }
#endif
    for (int i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++)
            dst[j * ldd + i] = src[i * lds + j];
}

void hw_nc_to_blocked(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1)
{
    const int B = hw_nc_block(isa), Cb = (C + B - 1) / B;
    for (long s = n0; s < n1; s++)
        for (int cb = 0; cb < Cb; cb++) {
            const int n = C - cb * B < B ? C - cb * B : B;
            float *yb = y + s * ys + (long)cb * hw * B;
            if (n < B)
                memset(yb, 0, sizeof(float) * hw * B);
            /* n rows of hw pixels become hw rows of B lanes. */
            transpose(isa, x + s * xs + (long)cb * B * hw, hw, yb, B, n, hw);
        }
}

void hw_nc_from_blocked(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1)
{
    const int B = hw_nc_block(isa), Cb = (C + B - 1) / B;
    for (long s = n0; s < n1; s++)
        for (int cb = 0; cb < Cb; cb++) {
            const int n = C - cb * B < B ? C - cb * B : B;
            transpose(isa, x + s * xs + (long)cb * hw * B, B, y + s * ys + (long)cb * B * hw, hw, (int)hw, n);
        }
}

void hw_nc_pad(int isa, int xb, int C, int H, int W, int ph, int pw, const float *x, long xs, float *y, long ys,
               long n0, long n1)
{
    const int B = hw_nc_block(isa);
    /* A blocked tensor is Cb planes of H rows of W·B floats; a plain one C
     * planes of H rows of W floats. */
    const int planes = xb ? (C + B - 1) / B : C, e = xb ? B : 1;
    const long row = (long)W * e, prow = (long)(W + 2 * pw) * e;
    for (long s = n0; s < n1; s++)
        for (int q = 0; q < planes; q++) {
            const float *xq = x + s * xs + (long)q * H * row;
            float *yq = y + s * ys + (long)q * (H + 2 * ph) * prow + ph * prow + (long)pw * e;
            for (int r = 0; r < H; r++)
                memcpy(yq + r * prow, xq + r * row, sizeof(float) * row);
        }
}

void hw_nc_copy_channels(int isa, long hw, const float *x, int s0, float *y, int d0, int n)
{
    const int B = hw_nc_block(isa);
    int k = 0;
    if (s0 % B == 0 && d0 % B == 0) /* whole blocks at once */
        for (; k + B <= n; k += B)
            memcpy(y + (long)(d0 + k) / B * hw * B, x + (long)(s0 + k) / B * hw * B, sizeof(float) * hw * B);
    for (; k < n; k++) {
        const int s = s0 + k, d = d0 + k;
        const float *xs = x + (long)(s / B) * hw * B + s % B;
        float *yd = y + (long)(d / B) * hw * B + d % B;
        for (long i = 0; i < hw; i++)
            yd[i * B] = xs[i * B];
    }
}

void hw_nc_shuffle(int isa, int C, int g, long hw, const float *x, float *y)
{
    const int cg = C / g;
    for (int i = 0; i < g; i++)
        for (int j = 0; j < cg; j++)
            hw_nc_copy_channels(isa, hw, x, i * cg + j, y, j * g + i, 1);
}
