/* Portable depthwise convolution: conv_dw_impl.h with 4-float vectors (SSE2 on x86-64). */
#include "act.h"
#include "conv.h"

#define DW_CAT_(a, b) a##b
#define DW_CAT(a, b) DW_CAT_(a, b)
#define DW_NAME hw_conv_dw_generic
#define DW_BIAS_ACT hw_bias_act_generic
#define DW_VL 4
#include "conv_dw_impl.h"
