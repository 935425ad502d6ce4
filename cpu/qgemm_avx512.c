/* AVX-512 int8 GEMM: with VNNI, vpdpbusd multiplies 64 uint8 × int8 pairs
 * and adds them in fours into 16 int32 lanes per instruction; without it,
 * operands are widened to int16 and multiplied with vpmaddwd (exact too:
 * 255·127·2 fits in int32). Tiles of up to 4 rows of a × 4 rows of b keep
 * 16 accumulators in registers; the k tail uses masked loads. */
#include <string.h>
#include "qgemm.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")
#include <immintrin.h>

#define TILE_LOOPS(MR, NR, BODY)                                                \
    for (int r = 0; r < (MR); r++)                                              \
        for (int j = 0; j < (NR); j++) BODY

static inline __attribute__((always_inline)) void
tile_vnni(const int MR, const int NR, int k, const uint8_t *a, int lda,
          const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    __m512i acc[4][4], va[4], vb[4];
    TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_setzero_si512(); })
    int p = 0;
    for (; p + 64 <= k; p += 64) {
        for (int r = 0; r < MR; r++) va[r] = _mm512_loadu_si512(a + (long)r * lda + p);
        for (int j = 0; j < NR; j++) vb[j] = _mm512_loadu_si512(b + (long)j * ldb + p);
        TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], va[r], vb[j]); })
    }
    if (p < k) {
        __mmask64 m = (1ULL << (k - p)) - 1;
        for (int r = 0; r < MR; r++) va[r] = _mm512_maskz_loadu_epi8(m, a + (long)r * lda + p);
        for (int j = 0; j < NR; j++) vb[j] = _mm512_maskz_loadu_epi8(m, b + (long)j * ldb + p);
        TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], va[r], vb[j]); })
    }
    TILE_LOOPS(MR, NR, { c[r * rsc + j * csc] = _mm512_reduce_add_epi32(acc[r][j]); })
}

static inline __attribute__((always_inline)) void
tile_bw(const int MR, const int NR, int k, const uint8_t *a, int lda,
        const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    __m512i acc[4][4], va[4], vb[4];
    TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_setzero_si512(); })
    int p = 0;
    for (; p + 32 <= k; p += 32) {
        for (int r = 0; r < MR; r++)
            va[r] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + (long)r * lda + p)));
        for (int j = 0; j < NR; j++)
            vb[j] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + (long)j * ldb + p)));
        TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_add_epi32(acc[r][j], _mm512_madd_epi16(va[r], vb[j])); })
    }
    if (p < k) {
        __mmask32 m = (__mmask32)((1ULL << (k - p)) - 1);
        for (int r = 0; r < MR; r++)
            va[r] = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + (long)r * lda + p));
        for (int j = 0; j < NR; j++)
            vb[j] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + (long)j * ldb + p));
        TILE_LOOPS(MR, NR, { acc[r][j] = _mm512_add_epi32(acc[r][j], _mm512_madd_epi16(va[r], vb[j])); })
    }
    TILE_LOOPS(MR, NR, { c[r * rsc + j * csc] = _mm512_reduce_add_epi32(acc[r][j]); })
}

/* DRIVE walks c in 4×4 tiles and calls TILE with constant edge sizes, so
 * that every (mr, nr) case is specialised with its accumulators in
 * registers. */
#define CASE(TILE, MR, NR)                                                      \
    case (MR) * 8 + (NR):                                                       \
        TILE(MR, NR, k, ap, lda, bp, ldb, cp, rsc, csc);                        \
        break;
#define CASES_NR(TILE, MR) CASE(TILE, MR, 1) CASE(TILE, MR, 2) CASE(TILE, MR, 3) CASE(TILE, MR, 4)
#define DRIVE(TILE)                                                             \
    for (int j0 = 0; j0 < n; j0 += 4) {                                         \
        int nr = n - j0 < 4 ? n - j0 : 4;                                       \
        for (int i0 = 0; i0 < m; i0 += 4) {                                     \
            int mr = m - i0 < 4 ? m - i0 : 4;                                   \
            const uint8_t *ap = a + (long)i0 * lda;                             \
            const int8_t *bp = b + (long)j0 * ldb;                              \
            int32_t *cp = c + i0 * rsc + j0 * csc;                              \
            switch (mr * 8 + nr) {                                              \
                CASES_NR(TILE, 1) CASES_NR(TILE, 2) CASES_NR(TILE, 3) CASES_NR(TILE, 4) \
            }                                                                   \
        }                                                                       \
    }

/* quant16 quantizes the floats of x under mask m (the other lanes read as
 * zero) as hw_quantize_u8 specifies: clamp(rint(x/scale) + zero, 0, 255),
 * one byte per lane. The constants are hoisted out of the callers' loops. */
static inline __attribute__((always_inline)) __m128i quant16(__mmask16 m, const float *x, float scale, int zero) {
    __m512 t = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x), _mm512_set1_ps(scale));
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-512.0f)), _mm512_set1_ps(512.0f));
    /* cvtps rounds half to even in the default rounding mode. */
    __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(t), _mm512_set1_epi32(zero));
    v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_setzero_si512()), _mm512_set1_epi32(255));
    return _mm512_cvtepi32_epi8(v);
}

void hw_quantize_u8_avx512(long n, const float *x, float scale, int zero, uint8_t *q) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm_mask_storeu_epi8(q + i, m, quant16(m, x + i, scale, zero));
    }
}

/* One masked vector per (channel block, pixel), stored at the pixel's
 * channels-last row. */
void hw_quantize_hwc_u8_avx512(const float *x, int c, long hw, float scale, int zero, uint8_t *y) {
    for (int c0 = 0; c0 < c; c0 += 16) {
        __mmask16 m = c - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c - c0)) - 1);
        const float *xb = x + (long)c0 * hw;
        for (long i = 0; i < hw; i++) _mm_mask_storeu_epi8(y + i * c + c0, m, quant16(m, xb + i * 16, scale, zero));
    }
}

/* Channels-last im2col for cg ≤ 64 channels per group: each tap is one
 * masked 64-byte load and store instead of a memcpy call. */
void hw_im2col_hwc_u8_avx512(const uint8_t *x, int c, int c0, int cg, int h, int w,
                             int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                             int dw, int oh, int ow, uint8_t pad, uint8_t *col, int ld) {
    long kk = (long)kh * kw * cg;
    __mmask64 m = cg >= 64 ? ~0ULL : (1ULL << cg) - 1;
    __m512i padv = _mm512_set1_epi8((char)pad);
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            uint8_t *row = col + ((long)oy * ow + ox) * ld;
            memset(row + kk, 0, ld - kk);
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh - ph + ky * dh;
                for (int kx = 0; kx < kw; kx++, row += cg) {
                    int ix = ox * sw - pw + kx * dw;
                    __m512i v = padv;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                        v = _mm512_maskz_loadu_epi8(m, x + ((long)iy * w + ix) * c + c0);
                    _mm512_mask_storeu_epi8(row, m, v);
                }
            }
        }
    }
}

void hw_qgemm_vnni(int m, int n, int k, const uint8_t *a, int lda,
                   const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    DRIVE(tile_vnni)
}

void hw_qgemm_avx512(int m, int n, int k, const uint8_t *a, int lda,
                     const int8_t *b, int ldb, int32_t *c, long rsc, long csc) {
    DRIVE(tile_bw)
}

/* ptile computes an MR-row × (16·NV)-column block of the packed product;
 * nvalid columns of the block are stored. The reduction runs over ntaps
 * taps of tsteps quads each: quad s of tap t reads row r at ar[r] +
 * toff[t] + 4·s (a plain GEMM is one tap; a convolution read straight
 * from its image has one per kernel row or position). */
static inline __attribute__((always_inline)) void
ptile(const int MR, const int NV, const uint8_t *const *ar, const long *toff, int ntaps, int tsteps,
      const int8_t *bp, long bstride, int32_t *c, int ldc, int nvalid) {
    __m512i acc[4][4], vb[4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_si512();
    for (int t = 0; t < ntaps; t++) {
        const long o = toff[t];
        for (int s = 0; s < tsteps; s++, bp += bstride) {
            for (int v = 0; v < NV; v++) vb[v] = _mm512_loadu_si512(bp + v * 64);
            for (int r = 0; r < MR; r++) {
                int32_t quad;
                memcpy(&quad, ar[r] + o + 4L * s, 4);
                __m512i va = _mm512_set1_epi32(quad);
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], va, vb[v]);
            }
        }
    }
    for (int v = 0; v < NV; v++) {
        int cols = nvalid - v * 16;
        __mmask16 m = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
        for (int r = 0; r < MR; r++) _mm512_mask_storeu_epi32(c + (long)r * ldc + v * 16, m, acc[r][v]);
    }
}

#define PCASE(MR, NV)                                                                                  \
    case (MR) * 8 + (NV):                                                                              \
        ptile(MR, NV, ar, toff, ntaps, tsteps, bp + 4 * j0, bstride, c + (long)i0 * ldc + j0, ldc, nvalid); \
        break;
#define PCASES(MR) PCASE(MR, 1) PCASE(MR, 2) PCASE(MR, 3) PCASE(MR, 4)

/* The VNNI broadcast GEMM in tiles of 4×64: row i of a starts at a +
 * rowoff[i], or with rowoff NULL at a + i·lda; the reduction is ntaps
 * taps of tsteps quads (ptile). */
static void bcast_vnni(int m, int n, const uint8_t *a, long lda, const long *rowoff, const long *toff, int ntaps,
                       int tsteps, const int8_t *bp, int32_t *c, int ldc) {
    int np = (n + 15) & ~15;
    long bstride = 4L * np;
    for (int j0 = 0; j0 < n; j0 += 64) {
        int nvalid = n - j0 < 64 ? n - j0 : 64;
        int nv = (nvalid + 15) / 16;
        for (int i0 = 0; i0 < m; i0 += 4) {
            int mr = m - i0 < 4 ? m - i0 : 4;
            const uint8_t *ar[4];
            for (int r = 0; r < mr; r++) ar[r] = rowoff ? a + rowoff[i0 + r] : a + (i0 + r) * lda;
            switch (mr * 8 + nv) {
                PCASES(1) PCASES(2) PCASES(3) PCASES(4)
            }
        }
    }
}

void hw_qgemm_packed_vnni(int m, int n, int k4, const uint8_t *a, int lda,
                          const int8_t *bp, int32_t *c, int ldc) {
    static const long tap0 = 0;
    bcast_vnni(m, n, a, lda, NULL, &tap0, 1, k4 / 4, bp, c, ldc);
}

void hw_qconv_direct_vnni(int m, int n, const uint8_t *img, const long *rowoff, const long *tapoff, int ntaps,
                          int tsteps, const int8_t *bp, int32_t *c, int ldc) {
    bcast_vnni(m, n, img, 0, rowoff, tapoff, ntaps, tsteps, bp, c, ldc);
}
#endif
