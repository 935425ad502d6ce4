/* AVX2 bias + activation: act_impl.h vectorised 8 floats wide. */
#include "act.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define ACT_NAME hw_bias_act_avx2
#define ACT_BWD_NAME hw_act_bwd_avx2
#include "act_impl.h"
#endif
