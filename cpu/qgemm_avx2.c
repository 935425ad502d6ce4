/* AVX2 int8 GEMM: operands widened to int16 (vpmovzxbw / vpmovsxbw) and
 * multiplied with vpmaddwd into int32 pairs, exact (vpmaddubsw would
 * saturate at 255·127·2). Tiles of up to 2 rows of a × 4 rows of b (8
 * accumulators of the 16 ymm registers); the k tail is scalar. */
#include "qgemm.h"
#include <string.h>

#if HW_X86
#pragma GCC target("avx2,fma")
#include <immintrin.h>

static inline int32_t hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __attribute__((always_inline)) void
tile_avx2(const int MR, const int NR, int k, const uint8_t *a, int lda,
          const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    __m256i acc[2][4], va[2], vb[4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = _mm256_setzero_si256();
    int p = 0;
    for (; p + 16 <= k; p += 16) {
        for (int r = 0; r < MR; r++)
            va[r] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + (long)r * lda + p)));
        for (int j = 0; j < NR; j++)
            vb[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + (long)j * ldb + p)));
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++)
                acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(va[r], vb[j]));
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) {
            int32_t s = hsum8(acc[r][j]);
            const uint8_t *ar = a + (long)r * lda;
            const int8_t *br = b + (long)j * ldb;
            for (int q = p; q < k; q++) s += (int32_t)ar[q] * (int32_t)br[q];
            c[r * rsc + j * csc] = s;
        }
}

/* quant8 quantizes the 8 floats at x as hw_quantize_u8 specifies; the
 * low 8 bytes of the result hold them (the saturating packs clamp to
 * [0, 255]). */
static inline __attribute__((always_inline)) __m128i quant8(const float *x, float scale, int zero) {
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x), _mm256_set1_ps(scale));
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-512.0f)), _mm256_set1_ps(512.0f));
    __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(t), _mm256_set1_epi32(zero)); /* half to even */
    __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(p16, p16);
}

void hw_quantize_u8_avx2(long n, const float *x, float scale, int zero, uint8_t *q) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm_storel_epi64((__m128i *)(q + i), quant8(x + i, scale, zero));
    hw_quantize_u8_generic(n - i, x + i, scale, zero, q + i);
}

/* One vector per (channel block, pixel); a block of fewer than 8 channels
 * (the last) is stored through a scratch word. */
void hw_quantize_hwc_u8_avx2(const float *x, int c, long hw, float scale, int zero, uint8_t *y) {
    for (int c0 = 0; c0 < c; c0 += 8) {
        int n = c - c0 < 8 ? c - c0 : 8;
        const float *xb = x + (long)c0 * hw;
        for (long i = 0; i < hw; i++) {
            __m128i p8 = quant8(xb + i * 8, scale, zero);
            if (n == 8) {
                _mm_storel_epi64((__m128i *)(y + i * c + c0), p8);
            } else {
                uint8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, p8);
                memcpy(y + i * c + c0, tmp, (size_t)n);
            }
        }
    }
}

#define CASE(MR, NR)                                                            \
    case (MR) * 8 + (NR):                                                       \
        tile_avx2(MR, NR, k, ap, lda, bp, ldb, cp, rsc, csc);                   \
        break;

void hw_qgemm_avx2(int m, int n, int k, const uint8_t *a, int lda,
                   const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    for (int j0 = 0; j0 < n; j0 += 4) {
        int nr = n - j0 < 4 ? n - j0 : 4;
        for (int i0 = 0; i0 < m; i0 += 2) {
            int mr = m - i0 < 2 ? m - i0 : 2;
            const uint8_t *ap = a + (long)i0 * lda;
            const int8_t *bp = b + (long)j0 * ldb;
            int32_t *cp = c + i0 * rsc + j0 * csc;
            switch (mr * 8 + nr) {
                CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4)
                CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4)
            }
        }
    }
}

/* tap_copy writes the n values s[0..n) to dst as bytes or, with wide, as
 * uint16, reading and writing nothing past them: vectors of 16 values (of
 * 8 below 16, one by one below 8), the last one overlapping the one
 * before it rather than a scalar tail. */
static inline __attribute__((always_inline)) void tap_copy(const int wide, const uint8_t *s, void *dst, int n) {
    uint8_t *d8 = dst;
    uint16_t *d16 = dst;
#define TAP16(i)                                                                                             \
    do {                                                                                                     \
        __m128i v = _mm_loadu_si128((const __m128i *)(s + (i)));                                             \
        if (wide)                                                                                            \
            _mm256_storeu_si256((__m256i *)(d16 + (i)), _mm256_cvtepu8_epi16(v));                            \
        else                                                                                                 \
            _mm_storeu_si128((__m128i *)(d8 + (i)), v);                                                      \
    } while (0)
#define TAP8(i)                                                                                              \
    do {                                                                                                     \
        __m128i v = _mm_loadl_epi64((const __m128i *)(s + (i)));                                            \
        if (wide)                                                                                            \
            _mm_storeu_si128((__m128i *)(d16 + (i)), _mm_cvtepu8_epi16(v));                                  \
        else                                                                                                 \
            _mm_storel_epi64((__m128i *)(d8 + (i)), v);                                                      \
    } while (0)
    if (n >= 16) {
        for (int i = 0; i < n - 16; i += 16)
            TAP16(i);
        TAP16(n - 16);
    } else if (n >= 8) {
        TAP8(0);
        TAP8(n - 8);
    } else {
        for (int i = 0; i < n; i++) {
            if (wide)
                d16[i] = s[i];
            else
                d8[i] = s[i];
        }
    }
#undef TAP16
#undef TAP8
}

/* tap_fill writes n values v from d (bytes or, with wide, uint16). */
static inline __attribute__((always_inline)) void tap_fill(const int wide, void *dst, int n, uint8_t v) {
    if (!wide) {
        memset(dst, v, (size_t)n);
        return;
    }
    uint16_t *d = dst;
    const __m256i pv = _mm256_set1_epi16(v);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(d + i), pv);
    for (; i < n; i++) d[i] = v;
}

/* im2col_hwc is hw_im2col_hwc at AVX2, with wide the patches widened to
 * uint16 as hw_qgemm_packed16_avx2 reads them (ld in values): each tap
 * is copied in vectors (tap_copy), where a byte copy of a few channels
 * costs a memcpy call, and widening a byte im2col would pass over the
 * patches twice; a kernel row outside the image is filled at once. */
static inline __attribute__((always_inline)) void
im2col_hwc(const int wide, const uint8_t *x, int c, int c0, int cg, int h, int w, int kh, int kw, int sh,
           int sw, int ph, int pw, int dh, int dw, int oh, int ow, uint8_t pad, void *col, int ld) {
    const long kk = (long)kh * kw * cg, vsize = wide ? 2 : 1;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            char *row = (char *)col + ((long)oy * ow + ox) * ld * vsize;
            memset(row + kk * vsize, 0, (size_t)((ld - kk) * vsize));
            for (int ky = 0; ky < kh; ky++, row += (long)kw * cg * vsize) {
                const int iy = oy * sh - ph + ky * dh;
                if (iy < 0 || iy >= h) {
                    tap_fill(wide, row, kw * cg, pad);
                    continue;
                }
                const uint8_t *xr = x + (long)iy * w * c + c0;
                for (int kx = 0; kx < kw; kx++) {
                    const int ix = ox * sw - pw + kx * dw;
                    if (ix >= 0 && ix < w)
                        tap_copy(wide, xr + (long)ix * c, row + (long)kx * cg * vsize, cg);
                    else
                        tap_fill(wide, row + (long)kx * cg * vsize, cg, pad);
                }
            }
        }
    }
}

void hw_im2col_hwc_u8_avx2(const uint8_t *x, int c, int c0, int cg, int h, int w, int kh, int kw, int sh,
                           int sw, int ph, int pw, int dh, int dw, int oh, int ow, uint8_t pad, uint8_t *col,
                           int ld) {
    im2col_hwc(0, x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
}

void hw_im2col_hwc_u16_avx2(const uint8_t *x, int c, int c0, int cg, int h, int w, int kh, int kw, int sh,
                            int sw, int ph, int pw, int dh, int dw, int oh, int ow, uint8_t pad, uint16_t *col,
                            int ld) {
    im2col_hwc(1, x, c, c0, cg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad, col, ld);
}

/* hw_qepilogue_avx2 is hw_qepilogue for ars == yrs == 1 (channels
 * contiguous in acc and y: the blocked conv and the linear layouts), 8
 * channels a vector, the last ones masked (lanes past rows neither read
 * nor written; only there, as a masked store is microcoded on AMD Zen).
 * The same operations in the same order as the portable loop, without
 * contraction into multiply-adds, so the results are identical. */
__attribute__((optimize("fp-contract=off")))
void hw_qepilogue_avx2(int rows, int cols, const int32_t *acc, long acs, const int32_t *rowsum, int zero,
                       float xs, const float *ws, const float *bias, int act, float *y, long ycs) {
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    const __m256 vxs = _mm256_set1_ps(xs), zero_ps = _mm256_setzero_ps(), three = _mm256_set1_ps(3.0f),
                 six = _mm256_set1_ps(6.0f);
    const __m256i vzero = _mm256_set1_epi32(zero);
    for (int r0 = 0; r0 < rows; r0 += 8) {
        const int n = rows - r0 < 8 ? rows - r0 : 8;
        const __m256i m = _mm256_loadu_si256((const __m256i *)(lanes + 8 - n));
        const __m256 s = _mm256_mul_ps(vxs, _mm256_maskload_ps(ws + r0, m));
        const __m256i off = _mm256_mullo_epi32(vzero, _mm256_maskload_epi32(rowsum + r0, m));
        const __m256 bb = bias ? _mm256_maskload_ps(bias + r0, m) : zero_ps;
        for (int j = 0; j < cols; j++) {
            const int32_t *aj = acc + j * acs + r0;
            __m256i a = n == 8 ? _mm256_loadu_si256((const __m256i *)aj) : _mm256_maskload_epi32(aj, m);
            __m256 v = _mm256_add_ps(_mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_sub_epi32(a, off))), bb);
            switch (act) {
            case 1: /* v > 0 ? v : 0 */
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero_ps, _CMP_GT_OQ));
                break;
            case 2: /* v < 0 ? 0 : (v > 6 ? 6 : v) */
                v = _mm256_andnot_ps(_mm256_cmp_ps(v, zero_ps, _CMP_LT_OQ), v);
                v = _mm256_blendv_ps(v, six, _mm256_cmp_ps(v, six, _CMP_GT_OQ));
                break;
            case 3: { /* v·clamp(v + 3, 0, 6)/6 */
                __m256 u = _mm256_add_ps(v, three);
                u = _mm256_andnot_ps(_mm256_cmp_ps(u, zero_ps, _CMP_LT_OQ), u);
                u = _mm256_blendv_ps(u, six, _mm256_cmp_ps(u, six, _CMP_GT_OQ));
                v = _mm256_div_ps(_mm256_mul_ps(v, u), six);
                break;
            }
            }
            if (n == 8)
                _mm256_storeu_ps(y + j * ycs + r0, v);
            else
                _mm256_maskstore_ps(y + j * ycs + r0, m, v);
        }
    }
}

void hw_widen_u8_u16_avx2(long n, const uint8_t *x, uint16_t *y) {
    long i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = x[i];
}

/* One MR×(8·NV) tile of the broadcast GEMMs below, which share their
 * geometry in bytes: each step reads 4 bytes of a row of a (a uint8 quad,
 * or a pair of uint16) and 32 bytes of B per 8 columns (8 int8 quads, or 8
 * int16 pairs). PAIRSAFE multiplies quads with vpmaddubsw and sums the
 * int16 pairs with vpmaddwd by ones; otherwise pairs with vpmaddwd. The
 * reduction runs over ntaps taps of tsteps steps each: step s of tap t
 * reads row r at ar[r] + toff[t] + 4·s (a plain GEMM is one tap; a
 * convolution read straight from its image has one per kernel position). */
static inline __attribute__((always_inline)) void
ptile(const int MR, const int NV, const int PAIRSAFE, const uint8_t *const *ar, const long *toff, int ntaps,
      int tsteps, const uint8_t *bp, long bstride, int32_t *c, int ldc, int ncols) {
    __m256i acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_si256();
    for (int t = 0; t < ntaps; t++) {
        const long o = toff[t];
        for (int s = 0; s < tsteps; s++, bp += bstride) {
            __m256i b[2];
            for (int v = 0; v < NV; v++) b[v] = _mm256_loadu_si256((const __m256i *)(bp + 32 * v));
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                int32_t quad;
                memcpy(&quad, ar[r] + o + 4L * s, 4);
                __m256i av = _mm256_set1_epi32(quad);
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) {
                    __m256i prod = PAIRSAFE ? _mm256_madd_epi16(_mm256_maddubs_epi16(av, b[v]), _mm256_set1_epi16(1))
                                            : _mm256_madd_epi16(av, b[v]);
                    acc[r][v] = _mm256_add_epi32(acc[r][v], prod);
                }
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        int32_t *cr = c + (long)r * ldc, t[16];
        int32_t *dst = ncols == 8 * NV ? cr : t;
        for (int v = 0; v < NV; v++) _mm256_storeu_si256((__m256i *)(dst + 8 * v), acc[r][v]);
        if (dst == t) memcpy(cr, t, (size_t)ncols * 4);
    }
}

#define PCASE(PS, MR, NV)                                                                           \
    case ((PS) * 8 + (MR)) * 4 + (NV):                                                              \
        ptile(MR, NV, PS, ar, toff, ntaps, tsteps, b, bstride, c + (long)i0 * ldc + j0, ldc, nc); \
        break;
#define PCASES(PS, MR) PCASE(PS, MR, 1) PCASE(PS, MR, 2)

/* The broadcast GEMM, in tiles of 6×16 for vpmaddwd (12 accumulators, the
 * two B vectors, the broadcast and one product: all sixteen ymm registers)
 * and of 5×16 for the pair-safe form, whose vector of ones and second
 * product take two more. 6×16 ran 71 against 4×16's 61 GMAC/s (AMD EPYC
 * Zen 3, all operands in L1). Each form is its own instantiation
 * (pairsafe constant), so the vector of ones is not kept in a register
 * where it is not used. Row i of a starts at a + rowoff[i], or with rowoff
 * NULL at a + i·lda; the reduction is ntaps taps of tsteps steps (ptile).
 * Columns [0, ncols) of the n packed ones are computed. */
static inline __attribute__((always_inline)) void
bcast_avx2(const int pairsafe, int m, int n, int ncols, const uint8_t *a, long lda, const long *rowoff,
           const long *toff, int ntaps, int tsteps, const uint8_t *bp, int32_t *c, int ldc) {
    long bstride = 4L * ((n + 15) & ~15);
    const int mrmax = pairsafe ? 5 : 6;
    for (int j0 = 0; j0 < ncols; j0 += 16) {
        int nc = ncols - j0 < 16 ? ncols - j0 : 16;
        int nv = (nc + 7) / 8;
        const uint8_t *b = bp + 4L * j0;
        for (int i0 = 0; i0 < m; i0 += mrmax) {
            int mr = m - i0 < mrmax ? m - i0 : mrmax;
            const uint8_t *ar[6];
            for (int r = 0; r < mr; r++) ar[r] = rowoff ? a + rowoff[i0 + r] : a + (i0 + r) * lda;
            switch ((pairsafe * 8 + mr) * 4 + nv) {
                PCASES(0, 1) PCASES(0, 2) PCASES(0, 3) PCASES(0, 4) PCASES(0, 5) PCASES(0, 6)
                PCASES(1, 1) PCASES(1, 2) PCASES(1, 3) PCASES(1, 4) PCASES(1, 5)
            }
        }
    }
}

static inline __attribute__((always_inline)) void packed_avx2(const int pairsafe, int m, int n, int steps,
                                                              const uint8_t *a, long lda, const uint8_t *bp,
                                                              int32_t *c, int ldc) {
    static const long tap0 = 0;
    bcast_avx2(pairsafe, m, n, n, a, lda, NULL, &tap0, 1, steps, bp, c, ldc);
}

void hw_qgemm_packed16_avx2(int m, int n, int k2, const uint16_t *a, int lda,
                            const int16_t *bp, int32_t *c, int ldc) {
    packed_avx2(0, m, n, k2 / 2, (const uint8_t *)a, 2L * lda, (const uint8_t *)bp, c, ldc);
}

void hw_qgemm_packed_pairsafe_avx2(int m, int n, int k4, const uint8_t *a, int lda,
                                   const int8_t *bp, int32_t *c, int ldc) {
    packed_avx2(1, m, n, k4 / 4, a, lda, (const uint8_t *)bp, c, ldc);
}
void hw_qconv_direct_avx2(int wide, int m, int n, int ncols, const void *img, const long *rowoff,
                          const long *tapoff, int ntaps, int tsteps, const void *bp, int32_t *c, int ldc) {
    if (wide)
        bcast_avx2(0, m, n, ncols, img, 0, rowoff, tapoff, ntaps, tsteps, bp, c, ldc);
    else
        bcast_avx2(1, m, n, ncols, img, 0, rowoff, tapoff, ntaps, tsteps, bp, c, ldc);
}

/* NT columns of two vectors of (up to) eight output pixels each
 * (hw_qconv_pairs_avx2): per step, one vector of the pixels' uint16 pairs
 * from each of src0 and src1, times NT broadcast weight pairs. */
static inline __attribute__((always_inline)) void
pairs_tile(const int NT, const uint32_t *src0, const uint32_t *src1, long plane, int npairs, const long *toff,
           int ntaps, const int16_t *bp, long bstride, __m256i acc[2][7]) {
    for (int j = 0; j < NT; j++) acc[0][j] = acc[1][j] = _mm256_setzero_si256();
    for (int t = 0; t < ntaps; t++) {
        const uint32_t *a0 = src0 + toff[t], *a1 = src1 + toff[t];
        const int16_t *b = bp + (long)t * npairs * bstride;
        for (int s = 0; s < npairs; s++, a0 += plane, a1 += plane, b += bstride) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)a0), v1 = _mm256_loadu_si256((const __m256i *)a1);
#pragma GCC unroll 7
            for (int j = 0; j < NT; j++) {
                int32_t w;
                memcpy(&w, b + 2 * j, 4);
                __m256i wv = _mm256_set1_epi32(w);
                acc[0][j] = _mm256_add_epi32(acc[0][j], _mm256_madd_epi16(v0, wv));
                acc[1][j] = _mm256_add_epi32(acc[1][j], _mm256_madd_epi16(v1, wv));
            }
        }
    }
}

#define PAIRS_CASE(NT)                                                                    \
    case NT:                                                                              \
        pairs_tile(NT, src[0], src[1], plane, npairs, toff, ntaps, bp, bstride, acc); \
        break;

void hw_qconv_pairs_avx2(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int npairs, const long *toff, int ntaps, const int16_t *bp, int32_t *c, int ldc) {
    const long bstride = 32; /* packB16's rows of 16 columns of pairs */
    for (int p = p0; p < p1;) {
        const uint32_t *src[2];
        int at[2], run[2];
        hw_plane_runs(p, p1, ow, rowstep, 8, planes, src, at, run);
        __m256i acc[2][7];
        switch (nt) {
            PAIRS_CASE(1) PAIRS_CASE(2) PAIRS_CASE(3) PAIRS_CASE(4) PAIRS_CASE(5) PAIRS_CASE(6) PAIRS_CASE(7)
        default:
            return;
        }
        for (int v = 0; v < 2; v++)
            for (int j = 0; j < nt; j++) {
                int32_t x[8];
                _mm256_storeu_si256((__m256i *)x, acc[v][j]);
                for (int l = 0; l < run[v]; l++) c[(long)(at[v] + l) * ldc + j] = x[l];
            }
        p += run[0] + run[1];
    }
}
#endif
