/* Portable depthwise convolution: conv_dw_impl.h for the baseline target. */
#include "act.h"
#include "conv.h"


#define DW_NAME hw_conv_dw_generic
#define DW_BIAS_ACT hw_bias_act_generic
#include "conv_dw_impl.h"

