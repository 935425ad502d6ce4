/* AVX-512 depthwise convolution: conv_dw_impl.h with 16-float vectors. */
#include "act.h"
#include "conv.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define DW_CAT_(a, b) a##b
#define DW_CAT(a, b) DW_CAT_(a, b)
#define DW_NAME hw_conv_dw_avx512
#define DW_BIAS_ACT hw_bias_act_avx512
#define DW_VL 16
#include "conv_dw_impl.h"
#endif
