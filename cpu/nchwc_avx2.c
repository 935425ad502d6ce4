/* AVX2 blocked-layout kernels: nchwc_impl.h with 8-float (ymm) vectors and
 * direct-convolution tiles of 2 blocks × 6 pixels (12 of 16 registers). */
#include "nchwc.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define NC_B 8
#define NC_SUF avx2
#define NC_TW 6
#include "nchwc_impl.h"
#endif
