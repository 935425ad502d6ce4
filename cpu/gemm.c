#include <pthread.h>
#include <stdlib.h>

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

typedef struct {
    int isa, transA, transB, k, lda, ldb, ldc, i0, i1, j0, j1;
    float alpha, beta;
    const float *a, *b;
    float *c;
} sgemm_band_t;

/* sgemm_band runs one band: the block of C at rows [i0,i1), columns
 * [j0,j1), with its A rows (or columns, transposed) and B columns (rows). */
static void *sgemm_band(void *arg)
{
    const sgemm_band_t *t = arg;
    const float *a = t->a + (t->transA ? (long)t->i0 : (long)t->i0 * t->lda);
    const float *b = t->b + (t->transB ? (long)t->j0 * t->ldb : (long)t->j0);
    hw_sgemm(t->isa, t->transA, t->transB, t->i1 - t->i0, t->j1 - t->j0, t->k, t->alpha, a, t->lda, b, t->ldb,
             t->beta, t->c + (long)t->i0 * t->ldc + t->j0, t->ldc);
    return NULL;
}

void hw_sgemm_bands(int isa, int rows, int nb, const int *bounds, int transA, int transB, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    sgemm_band_t *bands = malloc((size_t)nb * sizeof *bands);
    pthread_t *th = malloc((size_t)nb * sizeof *th);
    char *started = calloc((size_t)nb, 1);
    if (!bands || !th || !started) {
        free(bands);
        free(th);
        free(started);
        hw_sgemm(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    for (int i = 0; i < nb; i++) {
        sgemm_band_t t = {isa, transA, transB, k, lda, ldb, ldc, 0, m, 0, n, alpha, beta, a, b, c};
        if (rows) {
            t.i0 = bounds[2 * i];
            t.i1 = bounds[2 * i + 1];
        } else {
            t.j0 = bounds[2 * i];
            t.j1 = bounds[2 * i + 1];
        }
        bands[i] = t;
    }
    for (int i = 1; i < nb; i++)
        started[i] = pthread_create(&th[i], NULL, sgemm_band, &bands[i]) == 0;
    sgemm_band(&bands[0]);
    for (int i = 1; i < nb; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            sgemm_band(&bands[i]);
    }
    free(bands);
    free(th);
    free(started);
}
