/* AVX-512 depthwise convolution: conv_dw_impl.h vectorised 16 floats wide. */
#include "act.h"
#include "conv.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define DW_NAME hw_conv_dw_avx512
#define DW_BIAS_ACT hw_bias_act_avx512
#include "conv_dw_impl.h"
#endif
