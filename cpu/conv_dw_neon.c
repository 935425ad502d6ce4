/* arm64 depthwise convolution: conv_dw_impl.h with 8-float vectors (two
 * NEON registers each). The generic instantiation (4 floats) keeps two
 * accumulators per tap loop in its widest step, so on Cortex-A76 and
 * Neoverse-N1 (2 FMA pipes, 4-cycle latency: 8 chains to fill them) it
 * issues about one FMA every 2 cycles; this one keeps four and issues one per
 * cycle. Rows narrower than 8 interior outputs fall to its scalar loop, so
 * hw_conv_dw uses it only for rows of HW_DW_NEON_MIN_OW outputs or more and
 * the generic instantiation below that. */
#include "act.h"
#include "neon.h"

#if HW_ARM64
#define DW_CAT_(a, b) a##b
#define DW_CAT(a, b) DW_CAT_(a, b)
#define DW_NAME hw_conv_dw_neon
#define DW_BIAS_ACT hw_bias_act_generic
#define DW_VL 8
#include "conv_dw_impl.h"
#endif
