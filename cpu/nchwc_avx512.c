/* AVX-512 blocked-layout kernels: nchwc_impl.h with 16-float (zmm)
 * vectors and direct-convolution tiles of 2 blocks × 12 pixels (24 of 32
 * registers). */
#include "nchwc.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define NC_B 16
#define NC_SUF avx512
#define NC_TW 12
#include "nchwc_impl.h"
#endif
