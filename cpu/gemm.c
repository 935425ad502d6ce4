#include "gemm.h"
#include "gemm_kernels.h"
#include "neon.h"

/* hw_sgemm_plain is the unblocked loop, used only when the blocked drivers
 * cannot allocate their packing buffers (so the result is still right). */
static void hw_sgemm_plain(int transA, int transB, int m, int n, int k, float alpha,
                           const float *a, long lda, const float *b, long ldb, float beta,
                           float *c, long ldc)
{
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

void hw_sgemm(int isa, int transA, int transB, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta,
              float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) {
        /* C = beta·C; beta == 0 writes zeros without reading C. */
        for (int i = 0; i < m; i++) {
            float *ci = c + (long)i * ldc;
            for (int j = 0; j < n; j++)
                ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        }
        return;
    }
    int rc;
    switch (isa) {
#if HW_X86
    case HW_ISA_AVX512:
        rc = hw_sgemm_avx512(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case HW_ISA_AVX2:
        rc = hw_sgemm_avx2(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
#endif
#if HW_ARM64
    case HW_ISA_ARM64:
        rc = hw_sgemm_neon(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
#endif
    default:
        rc = hw_sgemm_generic(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
    if (rc != 0)
        hw_sgemm_plain(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
