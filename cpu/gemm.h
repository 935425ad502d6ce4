/* Single-precision GEMM for the C kernels of package cpu. */
#ifndef HWNAS_CPU_GEMM_H
#define HWNAS_CPU_GEMM_H

#include "isa.h"

/* hw_sgemm computes, single-threaded, with row-major storage,
 *
 *     C = alpha·op(A)·op(B) + beta·C,
 *
 * op(A) m×k, op(B) k×n, C m×n; op(X) = Xᵀ when transX is non-zero. A is
 * stored m×k (k×m when transposed) with leading dimension lda, B k×n (n×k)
 * with ldb, C m×n with ldc. When beta == 0, C is only written, never read,
 * so NaN or garbage in C does not propagate. isa is a HW_ISA_* level the
 * CPU supports (the caller's choice; see isa.go). Sizes are trusted: the Go
 * wrapper (gemm.go) validates them. m, n or k may be 0. */
void hw_sgemm(int isa, int transA, int transB, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta,
              float *c, int ldc);

#endif
