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
 * int16 pairs with vpmaddwd by ones; otherwise pairs with vpmaddwd. */
static inline __attribute__((always_inline)) void
ptile(const int MR, const int NV, const int PAIRSAFE, int steps, const uint8_t *a, long lda,
      const uint8_t *bp, long bstride, int32_t *c, int ldc, int ncols) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_si256();
    for (int s = 0; s < steps; s++, bp += bstride) {
        __m256i b[2];
        for (int v = 0; v < NV; v++) b[v] = _mm256_loadu_si256((const __m256i *)(bp + 32 * v));
        for (int r = 0; r < MR; r++) {
            int32_t quad;
            memcpy(&quad, a + r * lda + 4L * s, 4);
            __m256i av = _mm256_set1_epi32(quad);
            for (int v = 0; v < NV; v++) {
                __m256i prod = PAIRSAFE ? _mm256_madd_epi16(_mm256_maddubs_epi16(av, b[v]), ones)
                                        : _mm256_madd_epi16(av, b[v]);
                acc[r][v] = _mm256_add_epi32(acc[r][v], prod);
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

#define PCASE(PS, MR, NV)                                                                  \
    case ((PS) * 8 + (MR)) * 4 + (NV):                                                     \
        ptile(MR, NV, PS, steps, a + i0 * lda, lda, b, bstride, c + (long)i0 * ldc + j0, ldc, nc); \
        break;
#define PCASES(PS, MR) PCASE(PS, MR, 1) PCASE(PS, MR, 2)

/* The broadcast GEMM in 4×16 tiles (8 accumulators: 6×16 ones spill with
 * sixteen ymm registers) over steps of 4 bytes of k. */
static void packed_avx2(int pairsafe, int m, int n, int steps, const uint8_t *a, long lda,
                        const uint8_t *bp, int32_t *c, int ldc) {
    long bstride = 4L * ((n + 15) & ~15);
    for (int j0 = 0; j0 < n; j0 += 16) {
        int nc = n - j0 < 16 ? n - j0 : 16;
        int nv = (nc + 7) / 8;
        const uint8_t *b = bp + 4L * j0;
        for (int i0 = 0; i0 < m; i0 += 4) {
            int mr = m - i0 < 4 ? m - i0 : 4;
            switch ((pairsafe * 8 + mr) * 4 + nv) {
                PCASES(0, 1) PCASES(0, 2) PCASES(0, 3) PCASES(0, 4)
                PCASES(1, 1) PCASES(1, 2) PCASES(1, 3) PCASES(1, 4)
            }
        }
    }
}

void hw_qgemm_packed16_avx2(int m, int n, int k2, const uint16_t *a, int lda,
                            const int16_t *bp, int32_t *c, int ldc) {
    packed_avx2(0, m, n, k2 / 2, (const uint8_t *)a, 2L * lda, (const uint8_t *)bp, c, ldc);
}

void hw_qgemm_packed_pairsafe_avx2(int m, int n, int k4, const uint8_t *a, int lda,
                                   const int8_t *bp, int32_t *c, int ldc) {
    packed_avx2(1, m, n, k4 / 4, a, lda, (const uint8_t *)bp, c, ldc);
}
#endif
