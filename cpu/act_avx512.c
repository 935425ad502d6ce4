/* AVX-512 bias + activation: act_impl.h vectorised 16 floats wide. */
#include "act.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define ACT_NAME hw_bias_act_avx512
#define ACT_BWD_NAME hw_act_bwd_avx512
#include "act_impl.h"
#endif
