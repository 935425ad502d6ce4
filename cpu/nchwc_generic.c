/* Portable blocked-layout kernels: nchwc_impl.h with 4-float vectors (one
 * SSE2 register on x86-64, one NEON register on arm64). */
#include "nchwc.h"

#define NC_B 4
#define NC_SUF generic
#define NC_TW 6
#include "nchwc_impl.h"
