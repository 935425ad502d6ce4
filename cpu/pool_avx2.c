/* AVX2 max and average pooling: pool_impl.h vectorised 8 floats wide. */
#include "pool.h"

#if HW_X86
#pragma GCC target("avx2,fma")
#define POOL_NAME hw_pool_avx2
#include "pool_impl.h"
#endif
