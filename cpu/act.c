/* Bias + activation and activation backward dispatch (per ISA level, see
 * act_impl.h) and the bias backward pass (plain C for the baseline
 * target). */
#include "act.h"

void hw_bias_act(int isa, float *y, const float *x, long q0, long q1, int c, long hw,
                 const float *bias, int act)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        hw_bias_act_avx512(y, x, q0, q1, c, hw, bias, act);
        return;
    case HW_ISA_AVX2:
        hw_bias_act_avx2(y, x, q0, q1, c, hw, bias, act);
        return;
#endif
    default:
        hw_bias_act_generic(y, x, q0, q1, c, hw, bias, act);
    }
}

void hw_act_bwd(int isa, int act, const float *src, const float *dy, float *dx, long n)
{
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        hw_act_bwd_avx512(act, src, dy, dx, n);
        return;
    case HW_ISA_AVX2:
        hw_act_bwd_avx2(act, src, dy, dx, n);
        return;
#endif
    default:
        hw_act_bwd_generic(act, src, dy, dx, n);
    }
}

void hw_bias_bwd(const float *dy, int n, int c, long hw, int c0, int c1, float *dbias)
{
    if (hw == 1) {
        /* Fully connected: dy is n rows of c; the per-channel double sums
         * over the rows, in the same order as below, run across channels
         * (contiguous) instead of down a strided column each. */
        double acc[256];
        for (int b = c0; b < c1; b += 256) {
            const int e = c1 - b < 256 ? c1 - b : 256;
            for (int j = 0; j < e; j++)
                acc[j] = 0;
            for (int i = 0; i < n; i++) {
                const float *row = dy + (long)i * c + b;
                for (int j = 0; j < e; j++)
                    acc[j] += (double)row[j];
            }
            for (int j = 0; j < e; j++)
                dbias[b + j] = (float)acc[j];
        }
        return;
    }
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *q = dy + ((long)i * c + ch) * hw;
            /* Four float partial sums per plane vectorise; the plane total
             * goes into the double. */
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            long j = 0;
            for (; j + 4 <= hw; j += 4) {
                s0 += q[j];
                s1 += q[j + 1];
                s2 += q[j + 2];
                s3 += q[j + 3];
            }
            for (; j < hw; j++)
                s0 += q[j];
            s += (double)s0 + s1 + s2 + s3;
        }
        dbias[ch] = (float)s;
    }
}
