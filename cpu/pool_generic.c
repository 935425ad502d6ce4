/* Portable max and average pooling: pool_impl.h for the baseline target. */
#include "pool.h"

#define POOL_NAME hw_pool_generic
#include "pool_impl.h"
