/* Internal: the kernels of the arm64 level (HW_ISA_ARM64), Armv8-A Advanced
 * SIMD (NEON), defined in *_neon.c and called from the same dispatch
 * switches as the x86 levels. They exist only where HW_ARM64 is 1. Ops that
 * have no entry here run the portable C at the arm64 level, which GCC
 * vectorises with NEON since Advanced SIMD is part of AArch64's baseline
 * (bias + activation, the general pools, im2col, the backward passes); see
 * docs/ARM64.md. */
#ifndef HWNAS_CPU_NEON_H
#define HWNAS_CPU_NEON_H

#include <stdint.h>
#include "conv.h"
#include "gemm_kernels.h"
#include "nchwc.h"
#include "pool.h"

/* SGEMM: 8×12 micro-kernel with by-element FMA (gemm_neon.c). */
int hw_sgemm_neon(HW_SGEMM_LEVEL_ARGS);

/* hw_transpose_neon writes dst[j·ldd + i] = src[i·lds + j] for i < rows,
 * j < cols, 4×4 blocks in registers (gemm_neon.c): the blocked layout's
 * conversions (nchwc.c). */
void hw_transpose_neon(const float *src, long lds, float *dst, long ldd, int rows, int cols);

/* The blocked-layout (NCHWc) kernels with 12-pixel tiles (nchwc_neon.c). */
HW_NC_DECLARE(neon)

/* Depthwise convolution, 8-float vectors (conv_dw_neon.c); hw_conv_dw uses
 * it for rows of at least HW_DW_NEON_MIN_OW outputs. */
#define HW_DW_NEON_MIN_OW 16
void hw_conv_dw_neon(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                     const float *bias, int act, float *y);

/* 2×2 stride-2 unpadded pooling (pool_neon.c), the signatures of
 * hw_maxpool and hw_avgpool without isa. */
void hw_pool_neon_max22(const hw_pool_t *p, long q0, long q1, const float *x, float *y, int *argmax);
void hw_pool_neon_avg22(const hw_pool_t *p, long q0, long q1, const float *x, float *y);

/* Integer GEMM (qgemm_neon.c), the contract of hw_qgemm: with the Armv8.2
 * dot product (udot) or with widening multiplies (umull + uadalp). */
void hw_qgemm_neon(int m, int n, int k, const uint8_t *a, int lda,
                   const int8_t *b, int ldb, int32_t *c, long rsc, long csc);
void hw_qgemm_neon_dot(int m, int n, int k, const uint8_t *a, int lda,
                       const int8_t *b, int ldb, int32_t *c, long rsc, long csc);
void hw_quantize_u8_neon(long n, const float *x, float scale, int zero, uint8_t *q);

/* Sparse CSR × dense (sparse_neon.c), the contracts of hw_spmm and hw_spmv. */
void hw_spmm_neon(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, long ldx, float *y, long ldy);
void hw_spmv_neon(int rows, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, float *y);

#endif
