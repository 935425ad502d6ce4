#include "gemm.h"

/* First correct version: a plain loop; the packed, blocked driver follows. */
void hw_sgemm(int isa, int transA, int transB, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta,
              float *c, int ldc)
{
    (void)isa;
    for (int i = 0; i < m; i++) {
        float *ci = c + (long)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        for (int p = 0; p < k; p++) {
            float av = alpha * (transA ? a[(long)p * lda + i] : a[(long)i * lda + p]);
            for (int j = 0; j < n; j++)
                ci[j] += av * (transB ? b[(long)j * ldb + p] : b[(long)p * ldb + j]);
        }
    }
}
