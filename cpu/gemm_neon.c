/* arm64 (NEON) SGEMM level: the packed Goto/BLIS driver of gemm_impl.h with
 * an 8×12 register tile, a dot-product path for fully connected layers at
 * small batch, and 4×4 register transposes for packing transposed B.
 *
 * The micro-kernel keeps 24 accumulators (8 rows × 3 vectors of 4 columns)
 * in 24 of the 32 vector registers; each step of k loads the packed A
 * sliver's 8 values as two vectors and 3 vectors of B, and issues 24 FMAs
 * by element (fmla v.4s, b.4s, a.s[lane]), so A needs no broadcasts: 5
 * loads per 24 FMAs, which the two FP/ASIMD pipes of Cortex-A76 and
 * Neoverse-N1 (2 FMA per cycle, 4-cycle latency: 8 chains in flight, 24
 * here) and their two load pipes sustain. A is packed (kc×8 slivers) so the
 * 8 row values of one step are contiguous. Blocking: a kc = 256 sliver of B
 * (12 KB) and of A (8 KB) sit in the 64 KB L1D; the kc×nc = 256×384 B panel
 * (384 KB) in the 512 KB (A76) / 1 MB (N1) L2. */
#include "neon.h"

#if HW_ARM64
#include <arm_neon.h>

#define GEMM_MR 8
#define GEMM_NR 12

/* ukr_neon is gemm_impl.h's GEMM_UKR: both operands packed, the full 8×12
 * tile computed (packing zero-pads), the mr×nr valid part stored. */
static void ukr_neon(int kc, const float *restrict a, const float *restrict b,
                     float *restrict c, long ldc, float alpha, float beta, int mr, int nr)
{
    float32x4_t acc[GEMM_MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++)
        acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    for (int p = 0; p < kc; p++) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
#define ROW(i, av, l)                                          \
    acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, l);         \
    acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, l);         \
    acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, l);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
        a += GEMM_MR;
        b += GEMM_NR;
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 8
        for (int i = 0; i < GEMM_MR; i++) {
            float *ci = c + i * ldc;
#pragma GCC unroll 3
            for (int v = 0; v < 3; v++) {
                float32x4_t x = vmulq_n_f32(acc[i][v], alpha);
                if (beta != 0.0f)
                    x = vfmaq_n_f32(x, vld1q_f32(ci + 4 * v), beta);
                vst1q_f32(ci + 4 * v, x);
            }
        }
        return;
    }
    /* Edge tile: through a buffer, so nothing past the mr×nr part of C is
     * read or written. */
    float t[GEMM_MR][GEMM_NR];
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++)
            vst1q_f32(&t[i][4 * v], acc[i][v]);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int j = 0; j < nr; j++)
            ci[j] = beta == 0.0f ? alpha * t[i][j] : alpha * t[i][j] + beta * ci[j];
    }
}

/* transpose4 writes the 4×4 block at src (rows lds apart) transposed to dst
 * (rows ldd apart): dst row r = source column r. */
static inline void transpose4(const float *src, long lds, float *dst, long ldd)
{
    float32x4_t r0 = vld1q_f32(src), r1 = vld1q_f32(src + lds);
    float32x4_t r2 = vld1q_f32(src + 2 * lds), r3 = vld1q_f32(src + 3 * lds);
    float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)); /* r0[0] r1[0] r0[2] r1[2] */
    float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)); /* r0[1] r1[1] r0[3] r1[3] */
    float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
    float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
    vst1q_f32(dst + ldd, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
    vst1q_f32(dst + 2 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
    vst1q_f32(dst + 3 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
}

/* hw_transpose_neon: 4×4 blocks through registers, ragged edges one by
 * one (the blocked layout's conversions, nchwc.c). */
void hw_transpose_neon(const float *src, long lds, float *dst, long ldd, int rows, int cols)
{
    int rf = rows & ~3, cf = cols & ~3;
    for (int i = 0; i < rf; i += 4) {
        for (int j = 0; j < cf; j += 4)
            transpose4(src + (long)i * lds + j, lds, dst + (long)j * ldd + i, ldd);
        for (int j = cf; j < cols; j++)
            for (int r = 0; r < 4; r++)
                dst[(long)j * ldd + i + r] = src[(long)(i + r) * lds + j];
    }
    for (int i = rf; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dst[(long)j * ldd + i] = src[(long)i * lds + j];
}

/* packB_trans_neon packs op(B) = Bsᵀ (Bs stored nc×kc, leading dimension
 * ldb) into slivers of 12 columns: dst[s][p][j] = Bs[s·12 + j][p], zero
 * past nc. Whole 4×4 blocks go through registers, ragged edges one by one. */
static void packB_trans_neon(const float *b, long ldb, int kc, int nc, float *restrict dst)
{
    for (int j0 = 0; j0 < nc; j0 += GEMM_NR) {
        int nr = nc - j0 < GEMM_NR ? nc - j0 : GEMM_NR;
        int jfull = nr & ~3, pfull = kc & ~3;
        for (int jj = 0; jj < jfull; jj += 4) {
            const float *src = b + (long)(j0 + jj) * ldb;
            for (int p = 0; p < pfull; p += 4)
                transpose4(src + p, ldb, dst + (long)p * GEMM_NR + jj, GEMM_NR);
            for (int p = pfull; p < kc; p++)
                for (int j = 0; j < 4; j++)
                    dst[(long)p * GEMM_NR + jj + j] = src[(long)j * ldb + p];
        }
        for (int j = jfull; j < GEMM_NR; j++) {
            float *d = dst + j;
            const float *src = b + (long)(j0 + j) * ldb;
            for (int p = 0; p < kc; p++)
                d[(long)p * GEMM_NR] = j < nr ? src[p] : 0.0f;
        }
        dst += (long)kc * GEMM_NR;
    }
}

/* dot_rows computes row i0 (r == 1) or rows i0, i0+1 (r == 2) of
 * C = alpha·A·Bsᵀ + beta·C, 8 (r == 1) or 4 (r == 2) columns per pass: 8
 * accumulators of 4 lanes along k, summed across lanes at the end, the k
 * tail added in scalar. Columns past n alias the first column of the pass
 * and are not stored. */
static inline __attribute__((always_inline)) void dot_rows(
    int r, int n, int k, float alpha, const float *a0, const float *a1,
    const float *bs, long ldb, float beta, float *c0, float *c1)
{
    const int kfull = k & ~3;
    const int nb = r == 2 ? 4 : 8;
    for (int j = 0; j < n; j += nb) {
        int nr = n - j < nb ? n - j : nb;
        const float *br[8];
        float32x4_t s0[8], s1[4];
#pragma GCC unroll 8
        for (int q = 0; q < nb; q++) {
            br[q] = bs + (long)(j + (q < nr ? q : 0)) * ldb;
            s0[q] = vdupq_n_f32(0.0f);
            if (q < 4)
                s1[q] = vdupq_n_f32(0.0f);
        }
        for (int p = 0; p < kfull; p += 4) {
            float32x4_t x0 = vld1q_f32(a0 + p), x1 = x0;
            if (r == 2)
                x1 = vld1q_f32(a1 + p);
#pragma GCC unroll 8
            for (int q = 0; q < nb; q++) {
                float32x4_t y = vld1q_f32(br[q] + p);
                s0[q] = vfmaq_f32(s0[q], x0, y);
                if (r == 2 && q < 4)
                    s1[q] = vfmaq_f32(s1[q], x1, y);
            }
        }
        for (int q = 0; q < nr; q++) {
            float t0 = vaddvq_f32(s0[q]), t1 = r == 2 ? vaddvq_f32(s1[q & 3]) : 0.0f;
            for (int p = kfull; p < k; p++) {
                t0 += a0[p] * br[q][p];
                if (r == 2)
                    t1 += a1[p] * br[q][p];
            }
            c0[j + q] = beta == 0.0f ? alpha * t0 : alpha * t0 + beta * c0[j + q];
            if (r == 2)
                c1[j + q] = beta == 0.0f ? alpha * t1 : alpha * t1 + beta * c1[j + q];
        }
    }
}

static void dot_neon(int m, int n, int k, float alpha, const float *a, long lda,
                     const float *bs, long ldb, float beta, float *c, long ldc)
{
    int i = 0;
    for (; i + 2 <= m; i += 2)
        dot_rows(2, n, k, alpha, a + i * lda, a + (i + 1) * lda, bs, ldb, beta, c + i * ldc, c + (i + 1) * ldc);
    if (i < m)
        dot_rows(1, n, k, alpha, a + i * lda, a + i * lda, bs, ldb, beta, c + i * ldc, c + i * ldc);
}

#define GEMM_KC 256
#define GEMM_MC 512
#define GEMM_NC 384
#define GEMM_UKR ukr_neon
#define GEMM_PACKB_T packB_trans_neon
#define GEMM_DOT_M 4
#define GEMM_DOT dot_neon
#define GEMM_NAME hw_sgemm_neon
#include "gemm_impl.h"

#endif
