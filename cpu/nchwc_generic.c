/* Portable blocked-layout kernels: nchwc_impl.h with 4-float vectors (one
 * SSE2 register on x86-64, one NEON register on arm64), tiles of 2 blocks ×
 * 6 pixels or 1 block × 8. */
#include "nchwc.h"

#define NC_B 4
#define NC_SUF generic
#define NC_TW 6
#define NC_TW1 8
#include "nchwc_impl.h"
