/* Sparse (CSR) × dense float kernels for pruned Conv and Linear weights. */
#ifndef HWNAS_CPU_SPARSE_H
#define HWNAS_CPU_SPARSE_H

#include <stdint.h>
#include "isa.h"

/* hw_spmm computes, for the rows r < rows of a CSR matrix (rowptr indexes
 * colidx/val with absolute offsets) and a dense X of cols rows × p columns
 * (row stride ldx),
 *
 *     Y[r·ldy + j] = Σ_{e ∈ row r} val[e]·X[colidx[e]·ldx + j],  j < p.
 *
 * isa is a HW_ISA_* level the CPU supports. Sizes are trusted (sparse.go
 * validates them). */
void hw_spmm(int isa, int rows, int p, const int32_t *rowptr, const int32_t *colidx,
             const float *val, const float *x, long ldx, float *y, long ldy);

/* hw_spmv computes y[r] = Σ_{e ∈ row r} val[e]·x[colidx[e]] (gathers). */
void hw_spmv(int isa, int rows, const int32_t *rowptr, const int32_t *colidx,
             const float *val, const float *x, float *y);

/* hw_sp_biasact applies y[o] = act(y[o] + bias[r]) to element (r, j) at
 * o = r·rs + j·cs, r < rows, j < cols (bias may be NULL). */
void hw_sp_biasact(int rows, int cols, long rs, long cs, const float *bias, int act, float *y);

void hw_spmm_generic(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                     const float *val, const float *x, long ldx, float *y, long ldy);
void hw_spmm_avx2(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, long ldx, float *y, long ldy);
void hw_spmm_avx512(int rows, int p, const int32_t *rowptr, const int32_t *colidx,
                    const float *val, const float *x, long ldx, float *y, long ldy);
void hw_spmv_generic(int rows, const int32_t *rowptr, const int32_t *colidx,
                     const float *val, const float *x, float *y);
void hw_spmv_avx2(int rows, const int32_t *rowptr, const int32_t *colidx,
                  const float *val, const float *x, float *y);
void hw_spmv_avx512(int rows, const int32_t *rowptr, const int32_t *colidx,
                    const float *val, const float *x, float *y);

#endif
