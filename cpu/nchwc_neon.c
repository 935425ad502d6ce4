/* arm64 blocked-layout kernels: nchwc_impl.h with 4-float (NEON) vectors,
 * the block of the generic level, and direct-convolution tiles of 2 blocks
 * × 12 pixels: 24 of the 32 NEON registers, where the generic
 * instantiation's 6 pixels are sized for x86-64's 16 SSE registers. Per tap
 * and input channel the tile loads 2 weight vectors and broadcasts 12 input
 * values (ld1r) for 24 FMAs, twice the generic tile's FMAs per weight load;
 * the depthwise kernel keeps 12 independent accumulators per tap loop. */
#include "neon.h"

#if HW_ARM64
#define NC_B 4
#define NC_SUF neon
#define NC_TW 12
#include "nchwc_impl.h"
#endif
