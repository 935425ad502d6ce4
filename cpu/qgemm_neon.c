/* arm64 int8 kernels: the uint8 × int8 → int32 GEMM of hw_qgemm, exact, in
 * 4×4 tiles of 16-byte dot products along k (qgemm_neon_impl.h), and the
 * quantization of float inputs to uint8.
 *
 * NEON's byte dot products take operands of one signedness (udot: u8·u8,
 * sdot: s8·s8; the mixed usdot needs Armv8.6 I8MM, absent from Cortex-A76
 * and Neoverse-N1). So b is flipped to unsigned, b ^ 0x80 = b + 128, and
 *
 *     Σ_p a·b = Σ_p a·(b + 128) − 128·Σ_p a,
 *
 * with the row sums of a computed once per row (the flip costs one eor per
 * 16 bytes of b; flipping a instead would need the row sums of b, as much
 * work as the product itself at batch 1). Everything is uint32 arithmetic
 * modulo 2³², so the result is exact whenever the true sum fits int32, as
 * at every other level.
 *
 * With the Armv8.2 dot product (ASIMDDP: Cortex-A55/A76, Neoverse-N1 and
 * later) one udot does 16 multiply-adds. Without it (Armv8.0: Cortex-A53,
 * A72 of the Raspberry Pi 4) umull/umull2 multiply 8 byte pairs each into
 * uint16 (255·255 fits) and uadalp adds neighbouring pairs into the uint32
 * lanes: 4 instructions per 16 multiply-adds, split between the multiply
 * pipe and the other ASIMD pipe. The widening smlal on int16 operands would
 * need 4 multiplies per 16 on the one multiply pipe plus the widenings, and
 * a 16-bit pairwise sum (smull then addp on int16) would saturate at
 * 2·128·128, the reason the AVX2 kernel avoids vpmaddubsw. */
#include <string.h>
#include "neon.h"
#include "qgemm.h"

#if HW_ARM64
#include <arm_neon.h>

/* qn_rowsum returns Σ_p a[p] for p < k. */
static uint32_t qn_rowsum(const uint8_t *a, int k)
{
    uint32x4_t s = vdupq_n_u32(0);
    int p = 0;
    for (; p + 16 <= k; p += 16)
        s = vpadalq_u16(s, vpaddlq_u8(vld1q_u8(a + p)));
    uint32_t t = vaddvq_u32(s);
    for (; p < k; p++)
        t += a[p];
    return t;
}

#define QN_NAME hw_qgemm_neon
#define QN_MAC(acc, x, y) \
    acc = vpadalq_u16(vpadalq_u16(acc, vmull_u8(vget_low_u8(x), vget_low_u8(y))), vmull_high_u8(x, y))
#include "qgemm_neon_impl.h"

#pragma GCC push_options
/* Armv8.2: every core with the dot product implements at least it. */
#pragma GCC target("arch=armv8.2-a+dotprod")
#define QN_NAME hw_qgemm_neon_dot
#define QN_MAC(acc, x, y) acc = vdotq_u32(acc, x, y)
#include "qgemm_neon_impl.h"
#pragma GCC pop_options

void hw_quantize_u8_neon(long n, const float *x, float scale, int zero, uint8_t *q)
{
    /* x/scale (a division, as the reference), clamped, rounded half to even
     * (fcvtns), plus the zero point; the saturating narrowings clamp to
     * [0, 255]. */
    const float32x4_t s = vdupq_n_f32(scale), lo = vdupq_n_f32(-512.0f), hi = vdupq_n_f32(512.0f);
    const int32x4_t z = vdupq_n_s32(zero);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        int32x4_t v[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            float32x4_t t = vdivq_f32(vld1q_f32(x + i + 4 * h), s);
            t = vminq_f32(vmaxq_f32(t, lo), hi);
            v[h] = vaddq_s32(vcvtnq_s32_f32(t), z);
        }
        vst1_u8(q + i, vqmovun_s16(vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]))));
    }
    hw_quantize_u8_generic(n - i, x + i, scale, zero, q + i);
}
#endif

#if !HW_X86
/* The broadcast kernels are x86-only: qgemmPacked and qConv2DInt call them
 * only when the CPU has AVX-512 VNNI or AVX2, never here; these
 * definitions let the package link. */
void hw_qgemm_packed_vnni(int m, int n, int k4, const uint8_t *a, int lda,
                          const int8_t *bp, int32_t *c, int ldc)
{
    (void)m, (void)n, (void)k4, (void)a, (void)lda, (void)bp, (void)c, (void)ldc;
}

void hw_qgemm_packed16_avx2(int m, int n, int k2, const uint16_t *a, int lda,
                            const int16_t *bp, int32_t *c, int ldc)
{
    (void)m, (void)n, (void)k2, (void)a, (void)lda, (void)bp, (void)c, (void)ldc;
}

void hw_qconv_direct_avx2(int wide, int m, int n, int ncols, const void *img, const long *rowoff,
                          const long *tapoff, int ntaps, int tsteps, const void *bp, int32_t *c, int ldc)
{
    (void)wide, (void)m, (void)n, (void)ncols, (void)img, (void)rowoff, (void)tapoff, (void)ntaps, (void)tsteps,
        (void)bp, (void)c, (void)ldc;
}

void hw_qconv_pairs_avx2(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int npairs, const long *toff, int ntaps, const int16_t *bp, int32_t *c, int ldc)
{
    (void)p0, (void)p1, (void)ow, (void)rowstep, (void)nt, (void)planes, (void)plane, (void)npairs, (void)toff,
        (void)ntaps, (void)bp, (void)c, (void)ldc;
}

void hw_qconv_direct_vnni(int m, int n, int ncols, const uint8_t *img, const long *rowoff, const long *tapoff,
                          int ntaps, int tsteps, const int8_t *bp, int32_t *c, int ldc)
{
    (void)m, (void)n, (void)ncols, (void)img, (void)rowoff, (void)tapoff, (void)ntaps, (void)tsteps, (void)bp,
        (void)c, (void)ldc;
}

void hw_qconv_quads_vnni(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int nquads, const long *toff, int ntaps, const int8_t *bp, int32_t *c, int ldc)
{
    (void)p0, (void)p1, (void)ow, (void)rowstep, (void)nt, (void)planes, (void)plane, (void)nquads, (void)toff,
        (void)ntaps, (void)bp, (void)c, (void)ldc;
}

void hw_qgemm_packed_pairsafe_avx2(int m, int n, int k4, const uint8_t *a, int lda,
                                   const int8_t *bp, int32_t *c, int ldc)
{
    hw_qgemm_packed_vnni(m, n, k4, a, lda, bp, c, ldc);
}
#endif
