/* Portable SGEMM level: plain C that the compiler vectorises for the
 * baseline target (SSE2 on x86-64). */
#include "gemm_kernels.h"

#define GEMM_MR 4
#define GEMM_NR 8

static inline void ukr_generic(int kc, const float *restrict a, const float *restrict b,
                               float *restrict c, long ldc, float alpha, float beta, int mr, int nr)
{
    float acc[GEMM_MR][GEMM_NR] = {{0}};
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < GEMM_MR; i++)
            for (int j = 0; j < GEMM_NR; j++)
                acc[i][j] += a[i] * b[j];
        a += GEMM_MR;
        b += GEMM_NR;
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (long)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < nr; j++)
                ci[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < nr; j++)
                ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}

#define GEMM_KC 256
#define GEMM_MC 512
#define GEMM_NC 512
#define GEMM_UKR ukr_generic
#define GEMM_NAME hw_sgemm_generic
#include "gemm_impl.h"
