/* AVX-512 max and average pooling: pool_impl.h vectorised 16 floats wide. */
#include "pool.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define POOL_NAME hw_pool_avx512
#include "pool_impl.h"
#endif

#if HW_X86
#include <immintrin.h>

/* 2×2 stride-2 unpadded pooling (LeNet's pools), 16 outputs per step. The
 * two input rows of an output row are loaded 32 floats at a time (masked at
 * the row's end, so nothing past the operands is read) and split into even
 * and odd columns; the four taps are then combined in row-major order
 * (a even, a odd, b even, b odd) with a strict >, as in the general path,
 * so the maxima, ties and NaN handling are the same. */

static inline __mmask16 pool_m16(int n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
}

static inline void pool_taps(const float *r, int cnt, __m512 *ev, __m512 *od)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 v0 = _mm512_maskz_loadu_ps(pool_m16(2 * cnt), r);
    __m512 v1 = _mm512_maskz_loadu_ps(pool_m16(2 * cnt - 16), r + 16);
    *ev = _mm512_permutex2var_ps(v0, ie, v1);
    *od = _mm512_permutex2var_ps(v0, io, v1);
}

void hw_pool_avx512_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            int *ar = argmax ? argmax + q * out + (long)oy * OW : 0;
            for (int ox = 0; ox < OW; ox += 16) {
                const int cnt = OW - ox < 16 ? OW - ox : 16;
                const __mmask16 km = pool_m16(cnt);
                __m512 ae, ao, be, bo;
                pool_taps(ra + 2 * ox, cnt, &ae, &ao);
                pool_taps(rb + 2 * ox, cnt, &be, &bo);
                if (!ar) {
                    /* max_ps(v, m) is v > m ? v : m. */
                    __m512 m = _mm512_max_ps(ao, ae);
                    m = _mm512_max_ps(be, m);
                    m = _mm512_max_ps(bo, m);
                    _mm512_mask_storeu_ps(yr + ox, km, m);
                    continue;
                }
                __m512i idx = _mm512_add_epi32(two, _mm512_set1_epi32(2 * oy * W + 2 * ox));
                __m512 m = ae;
                __mmask16 gt = _mm512_cmp_ps_mask(ao, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, gt, ao);
                __m512i ai = _mm512_mask_add_epi32(idx, gt, idx, _mm512_set1_epi32(1));
                gt = _mm512_cmp_ps_mask(be, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, gt, be);
                ai = _mm512_mask_add_epi32(ai, gt, idx, _mm512_set1_epi32(W));
                gt = _mm512_cmp_ps_mask(bo, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, gt, bo);
                ai = _mm512_mask_add_epi32(ai, gt, idx, _mm512_set1_epi32(W + 1));
                _mm512_mask_storeu_ps(yr + ox, km, m);
                _mm512_mask_storeu_epi32(ar + ox, km, ai);
            }
        }
    }
}

void hw_pool_avx512_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const __m512 quarter = _mm512_set1_ps(0.25f);
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            for (int ox = 0; ox < OW; ox += 16) {
                const int cnt = OW - ox < 16 ? OW - ox : 16;
                __m512 ae, ao, be, bo;
                pool_taps(ra + 2 * ox, cnt, &ae, &ao);
                pool_taps(rb + 2 * ox, cnt, &be, &bo);
                /* The general path's order: ((a0 + a1) + b0) + b1, then ×¼. */
                __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(ae, ao), be), bo);
                _mm512_mask_storeu_ps(yr + ox, pool_m16(cnt), _mm512_mul_ps(s, quarter));
            }
        }
    }
}

/* hw_pool_avx512_max22_bwd: for H and W even, every input element lies in
 * exactly one window, so each dx row pair is written once, dy where the
 * argmax points and 0 elsewhere, without zeroing first. A plane with an
 * argmax outside its own window (legal: any index in the plane) is redone
 * the general way (zero, then add at each argmax). */
void hw_pool_avx512_max22_bwd(const hw_pool_t *p, long q0, long q1, const float *dy, const int *argmax, float *dx)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (long q = q0; q < q1; q++) {
        float *dxq = dx + q * in;
        int ok = 1;
        for (int oy = 0; oy < OH && ok; oy++) {
            float *ra = dxq + (long)2 * oy * W, *rb = ra + W;
            const float *g = dy + q * out + (long)oy * OW;
            const int *ar = argmax + q * out + (long)oy * OW;
            for (int ox = 0; ox < OW; ox += 16) {
                const int cnt = OW - ox < 16 ? OW - ox : 16;
                const __mmask16 km = pool_m16(cnt);
                __m512i rel = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(km, ar + ox),
                                               _mm512_add_epi32(two, _mm512_set1_epi32(2 * oy * W + 2 * ox)));
                __mmask16 m00 = _mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512());
                __mmask16 m01 = _mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(1));
                __mmask16 m10 = _mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(W));
                __mmask16 m11 = _mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(W + 1));
                if ((__mmask16)((m00 | m01 | m10 | m11) & km) != km) {
                    ok = 0;
                    break;
                }
                __m512 gv = _mm512_maskz_loadu_ps(km, g + ox);
                __m512 v00 = _mm512_maskz_mov_ps(m00, gv), v01 = _mm512_maskz_mov_ps(m01, gv);
                __m512 v10 = _mm512_maskz_mov_ps(m10, gv), v11 = _mm512_maskz_mov_ps(m11, gv);
                __mmask16 klo = pool_m16(2 * cnt), khi = pool_m16(2 * cnt - 16);
                _mm512_mask_storeu_ps(ra + 2 * ox, klo, _mm512_permutex2var_ps(v00, ilo, v01));
                _mm512_mask_storeu_ps(ra + 2 * ox + 16, khi, _mm512_permutex2var_ps(v00, ihi, v01));
                _mm512_mask_storeu_ps(rb + 2 * ox, klo, _mm512_permutex2var_ps(v10, ilo, v11));
                _mm512_mask_storeu_ps(rb + 2 * ox + 16, khi, _mm512_permutex2var_ps(v10, ihi, v11));
            }
        }
        if (!ok) {
            memset(dxq, 0, sizeof(float) * in);
            for (long o = q * out; o < (q + 1) * out; o++)
                dxq[argmax[o]] += dy[o];
        }
    }
}
#endif
