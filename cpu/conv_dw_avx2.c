/* AVX2 depthwise convolution: conv_dw_impl.h vectorised 8 floats wide. */
#include "act.h"
#include "conv.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define DW_NAME hw_conv_dw_avx2
#define DW_BIAS_ACT hw_bias_act_avx2
#include "conv_dw_impl.h"
#endif
