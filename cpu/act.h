/* Element-wise kernels for package cpu: fused bias + activation (per ISA
 * level: act_{generic,avx2,avx512}.c instantiate act_impl.h), activation and
 * bias backward passes. Activations are accel.Act values: 0 none, 1 ReLU,
 * 2 ReLU6, 3 hard-swish x·min(max(x+3,0),6)/6. Sizes are trusted. */
#ifndef HWNAS_CPU_ACT_H
#define HWNAS_CPU_ACT_H

#include "isa.h"

enum { HW_ACT_NONE = 0, HW_ACT_RELU = 1, HW_ACT_RELU6 = 2, HW_ACT_HARDSWISH = 3 };

/* hw_bias_act computes y[q·hw + j] = act(x[q·hw + j] + bias[q mod c]) for
 * planes q in [q0,q1); x and y point at plane 0, may be the same array, and
 * bias may be NULL. */
void hw_bias_act(int isa, float *y, const float *x, long q0, long q1, int c, long hw,
                 const float *bias, int act);
void hw_bias_act_generic(float *y, const float *x, long q0, long q1, int c, long hw,
                         const float *bias, int act);
void hw_bias_act_avx2(float *y, const float *x, long q0, long q1, int c, long hw,
                      const float *bias, int act);
void hw_bias_act_avx512(float *y, const float *x, long q0, long q1, int c, long hw,
                        const float *bias, int act);

/* hw_act_bwd computes dx[i] = dy[i]·act'(src[i]) for i in [0,n) at ISA
 * level isa, src being the pre-activation (or, for ReLU/ReLU6, equivalently
 * the output). At the kinks: ReLU'(0) = 0, ReLU6'(0) = ReLU6'(6) = 0,
 * hard-swish' = 0 below −3, x/3 + 1/2 on [−3,3], 1 above. dx may be the
 * same array as dy or src (not a partial overlap). */
void hw_act_bwd(int isa, int act, const float *src, const float *dy, float *dx, long n);
void hw_act_bwd_generic(int act, const float *src, const float *dy, float *dx, long n);
void hw_act_bwd_avx2(int act, const float *src, const float *dy, float *dx, long n);
void hw_act_bwd_avx512(int act, const float *src, const float *dy, float *dx, long n);

/* hw_bias_bwd computes dbias[ch] = Σ_{n<N, j<hw} dy[(n·c + ch)·hw + j] for
 * ch in [c0,c1), accumulating in double. */
void hw_bias_bwd(const float *dy, int n, int c, long hw, int c0, int c1, float *dbias);

#endif
