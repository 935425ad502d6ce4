/* Internal: the per-ISA SGEMM drivers behind hw_sgemm (gemm.c). Each takes
 * the arguments of hw_sgemm without isa, requires k > 0 and alpha != 0, and
 * returns -1 if it could not allocate its packing buffers. */
#ifndef HWNAS_CPU_GEMM_KERNELS_H
#define HWNAS_CPU_GEMM_KERNELS_H

#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)

#define HW_SGEMM_LEVEL_ARGS int transA, int transB, int m, int n, int k, float alpha, \
    const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc

int hw_sgemm_generic(HW_SGEMM_LEVEL_ARGS);
int hw_sgemm_avx2(HW_SGEMM_LEVEL_ARGS);
int hw_sgemm_avx512(HW_SGEMM_LEVEL_ARGS);

#endif
