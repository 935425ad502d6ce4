/* Bias + activation dispatch and the element-wise backward kernels. The
 * backward loops are plain C that -O3 vectorises for the baseline target;
 * they are memory-bound, so per-ISA copies would not pay. */
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

void hw_act_bwd(int act, const float *src, const float *dy, float *dx, long n)
{
    switch (act) {
    case HW_ACT_RELU:
        for (long i = 0; i < n; i++)
            dx[i] = src[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case HW_ACT_RELU6:
        for (long i = 0; i < n; i++)
            dx[i] = (src[i] > 0.0f && src[i] < 6.0f) ? dy[i] : 0.0f;
        break;
    case HW_ACT_HARDSWISH:
        for (long i = 0; i < n; i++) {
            float v = src[i];
            float g = v * (1.0f / 3.0f) + 0.5f;
            g = v < -3.0f ? 0.0f : g;
            g = v > 3.0f ? 1.0f : g;
            dx[i] = dy[i] * g;
        }
        break;
    default:
        for (long i = 0; i < n; i++)
            dx[i] = dy[i];
    }
}

void hw_bias_bwd(const float *dy, int n, int c, long hw, int c0, int c1, float *dbias)
{
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
