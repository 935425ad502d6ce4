/* AVX2 blocked-layout kernels: nchwc_impl.h with 8-float (ymm) vectors and
 * direct-convolution tiles of 2 blocks × 6 pixels (12 of 16 registers) or
 * 1 block × 8 pixels (8 accumulators: as many as two FMA pipes of latency
 * 4 keep busy; 12 made GCC spill the row's broadcasts). */
#include "nchwc.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define NC_B 8
#define NC_SUF avx2
#define NC_TW 6
#define NC_TW1 8
#include "nchwc_impl.h"

#include "gemm_x86.h"

/* hw_nc_transpose_avx2 writes dst[j·ldd + i] = src[i·lds + j] (i < rows,
 * j < cols) with 8×8 register transposes: the layout conversions of every
 * level that has AVX2. */
void hw_nc_transpose_avx2(const float *src, long lds, float *dst, long ldd, int rows, int cols)
{
    transpose_x86(src, lds, dst, ldd, rows, cols);
}
#endif
