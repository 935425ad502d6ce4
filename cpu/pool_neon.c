/* arm64 2×2 stride-2 unpadded pooling, 4 outputs per step: vld2q splits 8
 * floats of a row into its even and odd columns, the two taps of 4 windows,
 * so a row pair gives the 4 taps without shuffles. Taps in row-major order
 * (a even, a odd, b even, b odd) with a strict > (compare and select, as
 * the reference: fmax would let a NaN win), first maximum on ties. Rows need
 * OW ≥ 4 (hw_maxpool sends narrower ones to the portable path): the last
 * partial vector is recomputed ending at OW, overlapping outputs getting the
 * same values again. The general shapes run the portable pool_impl.h,
 * which GCC vectorises with NEON on AArch64. */
#include "neon.h"

#if HW_ARM64
#include <arm_neon.h>

void hw_pool_neon_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    const int32x4_t lane2 = {0, 2, 4, 6};
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            int *ar = argmax ? argmax + q * out + (long)oy * OW : 0;
            for (int o = 0; o < OW; o += 4) {
                const int ox = o + 4 <= OW ? o : OW - 4;
                float32x4x2_t a = vld2q_f32(ra + 2 * ox), b = vld2q_f32(rb + 2 * ox);
                float32x4_t m = a.val[0];
                uint32x4_t g1 = vcgtq_f32(a.val[1], m);
                m = vbslq_f32(g1, a.val[1], m);
                uint32x4_t g2 = vcgtq_f32(b.val[0], m);
                m = vbslq_f32(g2, b.val[0], m);
                uint32x4_t g3 = vcgtq_f32(b.val[1], m);
                m = vbslq_f32(g3, b.val[1], m);
                vst1q_f32(yr + ox, m);
                if (!ar)
                    continue;
                /* Offset within the window: the last tap that won. */
                int32x4_t off = vbslq_s32(g1, vdupq_n_s32(1), vdupq_n_s32(0));
                off = vbslq_s32(g2, vdupq_n_s32(W), off);
                off = vbslq_s32(g3, vdupq_n_s32(W + 1), off);
                int32x4_t base = vaddq_s32(lane2, vdupq_n_s32(2 * oy * W + 2 * ox));
                vst1q_s32(ar + ox, vaddq_s32(base, off));
            }
        }
    }
}

void hw_pool_neon_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y)
{
    const int W = p->W, OW = p->OW, OH = p->OH;
    const long in = (long)p->H * W, out = (long)OH * OW;
    for (long q = q0; q < q1; q++) {
        const float *xq = x + q * in;
        for (int oy = 0; oy < OH; oy++) {
            const float *ra = xq + (long)2 * oy * W, *rb = ra + W;
            float *yr = y + q * out + (long)oy * OW;
            for (int o = 0; o < OW; o += 4) {
                const int ox = o + 4 <= OW ? o : OW - 4;
                float32x4x2_t a = vld2q_f32(ra + 2 * ox), b = vld2q_f32(rb + 2 * ox);
                float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(a.val[0], a.val[1]), b.val[0]), b.val[1]);
                vst1q_f32(yr + ox, vmulq_n_f32(s, 0.25f));
            }
        }
    }
}
#endif
