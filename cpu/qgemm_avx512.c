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
 * taps of tsteps quads (ptile). Columns [0, ncols) of the n packed ones
 * are computed. */
static void bcast_vnni(int m, int n, int ncols, const uint8_t *a, long lda, const long *rowoff, const long *toff,
                       int ntaps, int tsteps, const int8_t *bp, int32_t *c, int ldc) {
    int np = (n + 15) & ~15;
    long bstride = 4L * np;
    for (int j0 = 0; j0 < ncols; j0 += 64) {
        int nvalid = ncols - j0 < 64 ? ncols - j0 : 64;
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
    bcast_vnni(m, n, n, a, lda, NULL, &tap0, 1, k4 / 4, bp, c, ldc);
}

void hw_qconv_direct_vnni(int m, int n, int ncols, const uint8_t *img, const long *rowoff, const long *tapoff,
                          int ntaps, int tsteps, const int8_t *bp, int32_t *c, int ldc) {
    bcast_vnni(m, n, ncols, img, 0, rowoff, tapoff, ntaps, tsteps, bp, c, ldc);
}

/* NT columns of two vectors of (up to) sixteen output pixels each
 * (hw_qconv_quads_vnni): per step, one vector of the pixels' uint8 quads
 * from each of src0 and src1, times NT broadcast weight quads. */
static inline __attribute__((always_inline)) void
quads_tile(const int NT, const uint32_t *src0, const uint32_t *src1, long plane, int nquads, const long *toff,
           int ntaps, const int8_t *bp, __m512i acc[2][12]) {
    for (int j = 0; j < NT; j++) acc[0][j] = acc[1][j] = _mm512_setzero_si512();
    for (int t = 0; t < ntaps; t++) {
        const uint32_t *a0 = src0 + toff[t], *a1 = src1 + toff[t];
        const int8_t *b = bp + (long)t * nquads * 64;
        for (int s = 0; s < nquads; s++, a0 += plane, a1 += plane, b += 64) {
            __m512i v0 = _mm512_loadu_si512(a0), v1 = _mm512_loadu_si512(a1);
#pragma GCC unroll 12
            for (int j = 0; j < NT; j++) {
                int32_t w;
                memcpy(&w, b + 4 * j, 4);
                __m512i wv = _mm512_set1_epi32(w);
                acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], v0, wv);
                acc[1][j] = _mm512_dpbusd_epi32(acc[1][j], v1, wv);
            }
        }
    }
}

#define QUADS_CASE(NT)                                                               \
    case NT:                                                                         \
        quads_tile(NT, src[0], src[1], plane, nquads, toff, ntaps, bp, acc); \
        break;

void hw_qconv_quads_vnni(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int nquads, const long *toff, int ntaps, const int8_t *bp, int32_t *c, int ldc) {
    for (int p = p0; p < p1;) {
        const uint32_t *src[2];
        int at[2], run[2];
        hw_plane_runs(p, p1, ow, rowstep, 16, planes, src, at, run);
        __m512i acc[2][12];
        switch (nt) {
            QUADS_CASE(1) QUADS_CASE(2) QUADS_CASE(3) QUADS_CASE(4) QUADS_CASE(5) QUADS_CASE(6)
            QUADS_CASE(7) QUADS_CASE(8) QUADS_CASE(9) QUADS_CASE(10) QUADS_CASE(11) QUADS_CASE(12)
        default:
            return;
        }
        for (int v = 0; v < 2; v++)
            for (int j = 0; j < nt; j++) {
                int32_t x[16];
                _mm512_storeu_si512(x, acc[v][j]);
                for (int l = 0; l < run[v]; l++) c[(long)(at[v] + l) * ldc + j] = x[l];
            }
        p += run[0] + run[1];
    }
}
#endif
