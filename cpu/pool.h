/* Pooling kernels (NCHW, float32) for package cpu. Each works on the planes
 * [q0,q1) of the N·C (sample, channel) planes so the Go side splits a call
 * across goroutines. Sizes are trusted: pool.go validates them. */
#ifndef HWNAS_CPU_POOL_H
#define HWNAS_CPU_POOL_H

#include "isa.h"

/* hw_pool_t describes a KH×KW window with strides sh/sw and padding ph/pw
 * (ph < KH, pw < KW, so every window has an in-bounds element) over H×W
 * planes giving OH×OW planes. */
typedef struct {
    int H, W, KH, KW, sh, sw, ph, pw, OH, OW;
} hw_pool_t;

/* hw_maxpool writes each window's maximum (padding never wins; the first
 * maximum in row-major order on ties) and, when argmax is not NULL, its flat
 * index within the input plane, at ISA level isa. */
void hw_maxpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_generic_max(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_avx2_max(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_avx512_max(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);

/* The 2×2 stride-2 unpadded fast paths (hw_pool_is22), with the
 * signatures of the general kernels. */
void hw_pool_avx2_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_avx512_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_avx2_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y);
void hw_pool_avx512_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y);
void hw_pool_avx512_max22_bwd(const hw_pool_t *p, long q0, long q1, const float *dy, const int *argmax, float *dx);

/* hw_pool_is22 is 1 for a 2×2 window with stride 2 and no padding. */
static inline int hw_pool_is22(const hw_pool_t *p)
{
    return p->KH == 2 && p->KW == 2 && p->sh == 2 && p->sw == 2 && p->ph == 0 && p->pw == 0;
}

/* hw_maxpool_bwd zeroes each dx plane and adds dy at argmax (any index in
 * the plane), at ISA level isa. */
void hw_maxpool_bwd(int isa, const hw_pool_t *p, long q0, long q1, const float *dy, const int *argmax, float *dx);

/* hw_avgpool writes each window's mean over its in-bounds elements. */
void hw_avgpool(int isa, const hw_pool_t *p, long q0, long q1, const float *x, float *y);
void hw_pool_generic_avg(const hw_pool_t *p, long q0, long q1, const float *x, float *y);
void hw_pool_avx2_avg(const hw_pool_t *p, long q0, long q1, const float *x, float *y);
void hw_pool_avx512_avg(const hw_pool_t *p, long q0, long q1, const float *x, float *y);

/* hw_avgpool_bwd computes dx[i] = Σ over windows w ∋ i of dy[w]/|w|. */
void hw_avgpool_bwd(const hw_pool_t *p, long q0, long q1, const float *dy, float *dx);

/* hw_gap writes y[q] = mean of the hw elements of plane q (double sum). */
void hw_gap(long q0, long q1, long hw, const float *x, float *y);

/* hw_gap_bwd writes dx[q·hw + j] = dy[q]/hw. */
void hw_gap_bwd(long q0, long q1, long hw, const float *dy, float *dx);

#endif
