/* Portable int8 kernels and the level dispatch of hw_qgemm. */
#include <math.h>
#include <string.h>
#include "neon.h"
#include "qgemm.h"

void hw_qgemm_generic(int m, int n, int k, const uint8_t *a, int lda,
                      const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (long)i * lda;
        for (int j = 0; j < n; j++) {
            const int8_t *br = b + (long)j * ldb;
            int32_t s = 0;
            for (int p = 0; p < k; p++)
                s += (int32_t)ar[p] * (int32_t)br[p];
            c[i * rsc + j * csc] = s;
        }
    }
}

void hw_qgemm(int isa, int m, int n, int k, const uint8_t *a, int lda,
              const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    switch (isa) {
#if HW_X86
    case HW_QISA_VNNI:
        hw_qgemm_vnni(m, n, k, a, lda, b, ldb, c, rsc, csc);
        return;
    case HW_ISA_AVX512:
        hw_qgemm_avx512(m, n, k, a, lda, b, ldb, c, rsc, csc);
        return;
    case HW_ISA_AVX2:
        hw_qgemm_avx2(m, n, k, a, lda, b, ldb, c, rsc, csc);
        return;
#endif
#if HW_ARM64
    case HW_QISA_DOTPROD:
        hw_qgemm_neon_dot(m, n, k, a, lda, b, ldb, c, rsc, csc);
        return;
    case HW_ISA_ARM64:
        hw_qgemm_neon(m, n, k, a, lda, b, ldb, c, rsc, csc);
        return;
#endif
    }
    hw_qgemm_generic(m, n, k, a, lda, b, ldb, c, rsc, csc);
}

void hw_quantize_u8_generic(long n, const float *x, float scale, int zero, uint8_t *q) {
    /* Adding and subtracting 1.5·2²³ rounds |t| < 2²² to the nearest
     * integer, half to even (the default rounding mode), without a libm
     * call. t is clamped first (the result is clamped to [0, 255] anyway).
     * Division, not multiplication by 1/scale, matches x/scale of the
     * reference. */
    const float magic = 12582912.0f;
    float z = (float)zero;
    for (long i = 0; i < n; i++) {
        float t = x[i] / scale;
        t = t < -512.0f ? -512.0f : t;
        t = t > 512.0f ? 512.0f : t;
        float r = (t + magic) - magic + z;
        r = r < 0.0f ? 0.0f : r;
        r = r > 255.0f ? 255.0f : r;
        q[i] = (uint8_t)(int)r;
    }
}

void hw_fakequant_f32(int isa, long n, const float *x, float scale, int zero, float *xf) {
    /* Quantize with the vectorised kernel in chunks, then widen back. */
    uint8_t q[512];
    for (long i0 = 0; i0 < n; i0 += 512) {
        long m = n - i0 < 512 ? n - i0 : 512;
        hw_quantize_u8(isa, m, x + i0, scale, zero, q);
        for (long i = 0; i < m; i++) xf[i0 + i] = (float)((int)q[i] - zero) * scale;
    }
}

void hw_quantize_u8(int isa, long n, const float *x, float scale, int zero, uint8_t *q) {
#if HW_X86
    if (isa >= HW_ISA_AVX512) {
        hw_quantize_u8_avx512(n, x, scale, zero, q);
        return;
    }
    if (isa == HW_ISA_AVX2) {
        hw_quantize_u8_avx2(n, x, scale, zero, q);
        return;
    }
#endif
#if HW_ARM64
    if (isa == HW_ISA_ARM64) {
        hw_quantize_u8_neon(n, x, scale, zero, q);
        return;
    }
#endif
    (void)isa;
    hw_quantize_u8_generic(n, x, scale, zero, q);
}

void hw_widen_u8_u16(int isa, long n, const uint8_t *x, uint16_t *y) {
#if HW_X86
    if (isa >= HW_ISA_AVX2) {
        hw_widen_u8_u16_avx2(n, x, y);
        return;
    }
#endif
    (void)isa;
    for (long i = 0; i < n; i++) y[i] = x[i];
}

void hw_im2col_u8(const uint8_t *x, int c, int h, int w, int kh, int kw,
                  int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                  int ow, uint8_t pad, uint8_t *col, int ld) {
    long kk = (long)c * kh * kw;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            uint8_t *row = col + ((long)oy * ow + ox) * ld;
            memset(row + kk, 0, ld - kk);
            int ix0 = ox * sw - pw;
            /* Whole kernel row inside the image with unit dilation: a copy. */
            int inside = dw == 1 && ix0 >= 0 && ix0 + kw <= w;
            for (int ci = 0; ci < c; ci++) {
                const uint8_t *plane = x + (long)ci * h * w;
                for (int ky = 0; ky < kh; ky++, row += kw) {
                    int iy = oy * sh - ph + ky * dh;
                    if (iy < 0 || iy >= h) {
                        memset(row, pad, kw);
                    } else if (inside) {
                        /* Kernel rows are short: an inline loop beats a memcpy call. */
                        const uint8_t *src = plane + (long)iy * w + ix0;
                        for (int kx = 0; kx < kw; kx++) row[kx] = src[kx];
                    } else {
                        for (int kx = 0; kx < kw; kx++) {
                            int ix = ix0 + kx * dw;
                            row[kx] = (ix >= 0 && ix < w) ? plane[(long)iy * w + ix] : pad;
                        }
                    }
                }
            }
        }
    }
}

void hw_chw_to_hwc_u8(const uint8_t *x, int c, int hw, uint8_t *y) {
    for (int ci = 0; ci < c; ci++) {
        const uint8_t *plane = x + (long)ci * hw;
        for (int i = 0; i < hw; i++) y[(long)i * c + ci] = plane[i];
    }
}

void hw_step_planes(const uint32_t *hwc, int hp, int wp, int nsteps, int sw, uint32_t *planes, long plane) {
    const int wq = (wp + sw - 1) / sw;
    for (int s = 0; s < nsteps; s++)
        for (int y = 0; y < hp; y++) {
            const uint32_t *src = hwc + (long)y * wp * nsteps + s;
            uint32_t *dst = planes + (long)s * plane + (long)y * sw * wq;
            for (int q = 0; q < sw; q++)
                for (int x = q, j = 0; x < wp; x += sw, j++) dst[q * wq + j] = src[(long)x * nsteps];
        }
}

void hw_quantize_hwc_u8(int isa, const float *x, int c, long hw, int b, float scale, int zero, uint8_t *y) {
#if HW_X86
    if (isa >= HW_ISA_AVX512 && b == 16) {
        hw_quantize_hwc_u8_avx512(x, c, hw, scale, zero, y);
        return;
    }
    if (isa == HW_ISA_AVX2 && b == 8) {
        hw_quantize_hwc_u8_avx2(x, c, hw, scale, zero, y);
        return;
    }
#endif
    (void)isa;
    for (int c0 = 0; c0 < c; c0 += b) {
        int n = c - c0 < b ? c - c0 : b;
        const float *xb = x + (long)c0 * hw;
        for (long i = 0; i < hw; i++) hw_quantize_u8_generic(n, xb + i * b, scale, zero, y + i * c + c0);
    }
}

void hw_im2col_hwc(int isa, int wide, const uint8_t *x, int c, int c0, int cg, int h, int w,
                   int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                   int dw, int oh, int ow, uint8_t pad, void *col, int ld) {
#if HW_X86
    if (wide) {
        hw_im2col_hwc_u16_avx2(x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
        return;
    }
    if (isa >= HW_ISA_AVX512 && cg <= 64) {
        hw_im2col_hwc_u8_avx512(x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
        return;
    }
    if (isa >= HW_ISA_AVX2) {
        hw_im2col_hwc_u8_avx2(x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
        return;
    }
#endif
    (void)isa;
    hw_im2col_hwc_u8_generic(x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
}

void hw_im2col_hwc_u8_generic(const uint8_t *x, int c, int c0, int cg, int h, int w,
                              int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                              int dw, int oh, int ow, uint8_t pad, uint8_t *col, int ld) {
    long kk = (long)kh * kw * cg;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            uint8_t *row = col + ((long)oy * ow + ox) * ld;
            memset(row + kk, 0, ld - kk);
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh - ph + ky * dh;
                for (int kx = 0; kx < kw; kx++, row += cg) {
                    int ix = ox * sw - pw + kx * dw;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                        memset(row, pad, cg);
                    else
                        memcpy(row, x + ((long)iy * w + ix) * c + c0, cg);
                }
            }
        }
    }
}

/* EPI applies one activation expression A(v) over the (r, j) elements,
 * walking j innermost (y rows contiguous in the conv layout) unless y is
 * contiguous along r (the linear layout). */
#define EPI(A)                                                                  \
    if (yrs != 1) {                                                             \
        for (int r = 0; r < rows; r++) {                                        \
            float s = xs * ws[r], bb = bias ? bias[r] : 0.0f;                   \
            int32_t off = zero * rowsum[r];                                     \
            const int32_t *ar = acc + r * ars;                                  \
            float *yr = y + r * yrs;                                            \
            for (int j = 0; j < cols; j++) {                                    \
                float v = s * (float)(ar[j * acs] - off) + bb;                  \
                yr[j * ycs] = A;                                                \
            }                                                                   \
        }                                                                       \
    } else {                                                                    \
        for (int j = 0; j < cols; j++) {                                        \
            const int32_t *aj = acc + j * acs;                                  \
            float *yj = y + j * ycs;                                            \
            for (int r = 0; r < rows; r++) {                                    \
                float v = xs * ws[r] * (float)(aj[r * ars] - zero * rowsum[r]) + (bias ? bias[r] : 0.0f); \
                yj[r] = A;                                                      \
            }                                                                   \
        }                                                                       \
    }

void hw_qepilogue(int isa, int rows, int cols, const int32_t *acc, long ars, long acs,
                  const int32_t *rowsum, int zero, float xs, const float *ws,
                  const float *bias, int act, float *y, long yrs, long ycs) {
#if HW_X86
    if (isa >= HW_ISA_AVX2 && ars == 1 && yrs == 1) {
        hw_qepilogue_avx2(rows, cols, acc, acs, rowsum, zero, xs, ws, bias, act, y, ycs);
        return;
    }
#endif
    (void)isa;
    switch (act) {
    case 1:
        EPI(v > 0.0f ? v : 0.0f)
        break;
    case 2:
        EPI(v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v))
        break;
    case 3:
        EPI(v * (v + 3.0f < 0.0f ? 0.0f : (v + 3.0f > 6.0f ? 6.0f : v + 3.0f)) / 6.0f)
        break;
    default:
        EPI(v)
    }
}
