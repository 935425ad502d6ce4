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

/* hw_sgemm_bands computes the same product as hw_sgemm split into nb
 * bands of C, each one hw_sgemm call: band i is rows [bounds[2i],
 * bounds[2i+1]) of C when rows is non-zero, else those columns. Bands
 * 1… run on POSIX threads started for the call and band 0 on the
 * calling thread; a band whose thread cannot start runs on the calling
 * thread after band 0. Threads started inside one cgo call, rather than
 * one goroutine per band, each in its own cgo call: on a 2-vCPU AMD
 * EPYC Zen 5 VM (AVX2 level) two goroutines' bands of an n = 1024
 * product took 15.8–16.9 ms and two threads' 12.5–12.9 ms, one band
 * alone 11.9–12.2 (gemm.go). */
void hw_sgemm_bands(int isa, int rows, int nb, const int *bounds, int transA, int transB, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
