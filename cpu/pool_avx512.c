/* AVX-512 max and average pooling: pool_impl.h vectorised 16 floats wide. */
#include "pool.h"

#if HW_X86
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#define POOL_NAME hw_pool_avx512
#include "pool_impl.h"
#endif
