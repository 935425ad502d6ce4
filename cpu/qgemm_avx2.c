/* AVX2 int8 GEMM: operands widened to int16 (vpmovzxbw / vpmovsxbw) and
 * multiplied with vpmaddwd into int32 pairs, exact (vpmaddubsw would
 * saturate at 255·127·2). Tiles of up to 2 rows of a × 4 rows of b (8
 * accumulators of the 16 ymm registers); the k tail is scalar. */
#include "qgemm.h"

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

void hw_quantize_u8_avx2(long n, const float *x, float scale, int zero, uint8_t *q) {
	const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-512.0f), hi = _mm256_set1_ps(512.0f);
	const __m256i z = _mm256_set1_epi32(zero);
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
		t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
		__m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(t), z); /* half to even */
		/* Saturating packs clamp to [0, 255]. */
		__m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
		_mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(p16, p16));
	}
	hw_quantize_u8_generic(n - i, x + i, scale, zero, q + i);
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
#endif
