/* Portable int8 kernels and the level dispatch of hw_qgemm. */
#include <math.h>
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
#if HW_X86
	switch (isa) {
	case HW_QISA_VNNI:
		hw_qgemm_vnni(m, n, k, a, lda, b, ldb, c, rsc, csc);
		return;
	case HW_ISA_AVX512:
		hw_qgemm_avx512(m, n, k, a, lda, b, ldb, c, rsc, csc);
		return;
	case HW_ISA_AVX2:
		hw_qgemm_avx2(m, n, k, a, lda, b, ldb, c, rsc, csc);
		return;
	}
#endif
	(void)isa;
	hw_qgemm_generic(m, n, k, a, lda, b, ldb, c, rsc, csc);
}

void hw_quantize_u8(long n, const float *x, float scale, int zero, uint8_t *q) {
	for (long i = 0; i < n; i++) {
		/* Division, not multiplication by inv, to match x/scale of the
		 * reference; rintf rounds half to even in the default mode. */
		float r = rintf(x[i] / scale) + (float)zero;
		r = r < 0.0f ? 0.0f : (r > 255.0f ? 255.0f : r);
		q[i] = (uint8_t)r;
	}
}

void hw_im2col_u8(const uint8_t *x, int c, int h, int w, int kh, int kw,
                  int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                  int ow, uint8_t pad, uint8_t *col) {
	long kk = (long)c * kh * kw;
	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			uint8_t *row = col + ((long)oy * ow + ox) * kk;
			for (int ci = 0; ci < c; ci++) {
				const uint8_t *plane = x + (long)ci * h * w;
				for (int ky = 0; ky < kh; ky++) {
					int iy = oy * sh - ph + ky * dh;
					for (int kx = 0; kx < kw; kx++) {
						int ix = ox * sw - pw + kx * dw;
						*row++ = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? plane[iy * w + ix] : pad;
					}
				}
			}
		}
	}
}

static inline float act_apply(int act, float v) {
	switch (act) {
	case 1: return v > 0.0f ? v : 0.0f;
	case 2: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
	case 3: {
		float r = v + 3.0f;
		r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
		return v * r / 6.0f;
	}
	}
	return v;
}

void hw_qepilogue(int rows, int cols, const int32_t *acc, long rs, long cs,
                  const int32_t *rowsum, int zero, float xs, const float *ws,
                  const float *bias, int act, float *y) {
	for (int r = 0; r < rows; r++) {
		float s = xs * ws[r];
		int32_t off = zero * rowsum[r];
		float bb = bias ? bias[r] : 0.0f;
		const int32_t *ar = acc + r * rs;
		float *yr = y + r * rs;
		for (int j = 0; j < cols; j++)
			yr[j * cs] = act_apply(act, s * (float)(ar[j * cs] - off) + bb);
	}
}
