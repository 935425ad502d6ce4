/* AVX2 max and average pooling: pool_impl.h vectorised 8 floats wide. */
#include "pool.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define POOL_NAME hw_pool_avx2
#include "pool_impl.h"
#endif

#if HW_X86
#include <immintrin.h>

/* 2×2 stride-2 unpadded pooling, 8 outputs per step; see the AVX-512
 * version in pool_avx512.c (same tap order, same strict >). */

static inline __m256i pool_m8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline void pool_taps8(const float *r, int cnt, __m256 *ev, __m256 *od)
{
    __m256 v0 = _mm256_maskload_ps(r, pool_m8(2 * cnt));
    __m256 v1 = _mm256_maskload_ps(r + 8, pool_m8(2 * cnt - 8));
    /* shuffle gives columns (0,2,8,10 | 4,6,12,14); the 64-bit permute
     * puts them in order. */
    *ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xD8));
    *od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0xDD)), 0xD8));
}

void hw_pool_avx2_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const __m256i two = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            int *ar = argmax ? argmax + q * out + (long)oy * OW : 0;
            for (int ox = 0; ox < OW; ox += 8) {
                const int cnt = OW - ox < 8 ? OW - ox : 8;
                const __m256i km = pool_m8(cnt);
                __m256 ae, ao, be, bo;
                pool_taps8(ra + 2 * ox, cnt, &ae, &ao);
                pool_taps8(rb + 2 * ox, cnt, &be, &bo);
                if (!ar) {
                    /* max_ps(v, m) is v > m ? v : m. */
                    __m256 m = _mm256_max_ps(ao, ae);
                    m = _mm256_max_ps(be, m);
                    m = _mm256_max_ps(bo, m);
                    _mm256_maskstore_ps(yr + ox, km, m);
                    continue;
                }
                __m256i idx = _mm256_add_epi32(two, _mm256_set1_epi32(2 * oy * W + 2 * ox));
                __m256 m = ae, gt;
                __m256i ai = idx;
                gt = _mm256_cmp_ps(ao, m, _CMP_GT_OQ);
                m = _mm256_blendv_ps(m, ao, gt);
                ai = _mm256_blendv_epi8(ai, _mm256_add_epi32(idx, _mm256_set1_epi32(1)), _mm256_castps_si256(gt));
                gt = _mm256_cmp_ps(be, m, _CMP_GT_OQ);
                m = _mm256_blendv_ps(m, be, gt);
                ai = _mm256_blendv_epi8(ai, _mm256_add_epi32(idx, _mm256_set1_epi32(W)), _mm256_castps_si256(gt));
                gt = _mm256_cmp_ps(bo, m, _CMP_GT_OQ);
                m = _mm256_blendv_ps(m, bo, gt);
                ai = _mm256_blendv_epi8(ai, _mm256_add_epi32(idx, _mm256_set1_epi32(W + 1)), _mm256_castps_si256(gt));
                _mm256_maskstore_ps(yr + ox, km, m);
                _mm256_maskstore_epi32(ar + ox, km, ai);
            }
        }
    }
}

void hw_pool_avx2_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const __m256 quarter = _mm256_set1_ps(0.25f);
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            for (int ox = 0; ox < OW; ox += 8) {
                const int cnt = OW - ox < 8 ? OW - ox : 8;
                __m256 ae, ao, be, bo;
                pool_taps8(ra + 2 * ox, cnt, &ae, &ao);
                pool_taps8(rb + 2 * ox, cnt, &be, &bo);
                __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(ae, ao), be), bo);
                _mm256_maskstore_ps(yr + ox, pool_m8(cnt), _mm256_mul_ps(s, quarter));
            }
        }
    }
}
#endif
