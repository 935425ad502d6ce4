/* The blocked SGEMM driver, instantiated once per ISA level.
 *
 * A file that includes this header first defines
 *   GEMM_MR, GEMM_NR   register tile: GEMM_MR rows × GEMM_NR columns of C
 *   GEMM_KC            depth of one packed panel (k block)
 *   GEMM_MC            rows of the packed A block
 *   GEMM_NC            columns of the packed B block
 *   GEMM_UKR           the micro-kernel, with the signature of hw_ukr below
 *   GEMM_NAME          the name of the driver function to define
 * and may define
 *   GEMM_PACKB_T(b, ldb, kc, nc, dst)   a faster packing of transposed B
 *   GEMM_DIRECT_UKR    a micro-kernel that reads A in place and B in place
 *       or packed (signature of ukr_direct below); the driver then packs
 *       only transposed B and never A
 *   GEMM_DOT_M, GEMM_DOT                for m <= GEMM_DOT_M, A not and B
 *       transposed (A·Bsᵀ, rows of both contiguous along k): dot products,
 *       the shape of a fully connected layer at batch 1
 * and is compiled with its own target pragma, so packing and driver loops
 * are vectorised for that level too (as OpenBLAS builds one source per
 * kernel target).
 *
 * Layout (row-major C, vectors along n): the micro-kernel broadcasts GEMM_MR
 * values of packed A per step of k and multiplies them by GEMM_NR/lanes
 * vectors of packed B. Loops, outermost first:
 *   ic over m by MC: pack A block (MC×KC) as slivers of MR rows, k-major
 *     pc over k by KC (beta applies on the first panel only)
 *       jc over n by NC: pack B block (KC×NC) as slivers of NR columns (L2)
 *         ir over the A block by MR: one A sliver (MR×KC) stays in L1
 *           jr over the B block by NR: B slivers stream from L2
 * Packing pads partial slivers with zeros; the micro-kernel stores only the
 * mr×nr valid part of an edge tile, so nothing outside C is touched. */

#include <stdlib.h>
#include <string.h>

/* ukr computes, for the mr×nr valid part of one tile,
 *   c[i][j] = alpha·Σ_p a[p][i]·b[p][j] + beta·c[i][j]   (c not read if beta == 0)
 * with a packed as kc×GEMM_MR and b as kc×GEMM_NR. */

#ifndef GEMM_DIRECT_UKR
static void GEMM_CAT(GEMM_NAME, _packA)(int transA, const float *a, long lda, int mc, int kc, float *restrict dst)
{
    for (int i0 = 0; i0 < mc; i0 += GEMM_MR) {
        int mr = mc - i0 < GEMM_MR ? mc - i0 : GEMM_MR;
        if (!transA) {
            const float *rows[GEMM_MR];
            for (int i = 0; i < GEMM_MR; i++)
                rows[i] = a + (long)(i0 + (i < mr ? i : 0)) * lda;
            if (mr == GEMM_MR) {
                for (int p = 0; p < kc; p++)
                    for (int i = 0; i < GEMM_MR; i++)
                        dst[p * GEMM_MR + i] = rows[i][p];
            } else {
                for (int p = 0; p < kc; p++)
                    for (int i = 0; i < GEMM_MR; i++)
                        dst[p * GEMM_MR + i] = i < mr ? rows[i][p] : 0.0f;
            }
        } else {
            for (int p = 0; p < kc; p++) {
                const float *src = a + (long)p * lda + i0;
                if (mr == GEMM_MR) {
                    for (int i = 0; i < GEMM_MR; i++)
                        dst[p * GEMM_MR + i] = src[i];
                } else {
                    for (int i = 0; i < GEMM_MR; i++)
                        dst[p * GEMM_MR + i] = i < mr ? src[i] : 0.0f;
                }
            }
        }
        dst += (long)kc * GEMM_MR;
    }
}
#endif

static void GEMM_CAT(GEMM_NAME, _packB)(int transB, const float *b, long ldb, int kc, int nc, float *restrict dst)
{
#ifdef GEMM_PACKB_T
    if (transB) {
        GEMM_PACKB_T(b, ldb, kc, nc, dst);
        return;
    }
#endif
    for (int j0 = 0; j0 < nc; j0 += GEMM_NR) {
        int nr = nc - j0 < GEMM_NR ? nc - j0 : GEMM_NR;
        if (!transB) {
            for (int p = 0; p < kc; p++) {
                const float *src = b + (long)p * ldb + j0;
                float *d = dst + (long)p * GEMM_NR;
                if (nr == GEMM_NR) {
                    for (int j = 0; j < GEMM_NR; j++)
                        d[j] = src[j];
                } else {
                    for (int j = 0; j < GEMM_NR; j++)
                        d[j] = j < nr ? src[j] : 0.0f;
                }
            }
        } else {
            /* b is stored n×k: row j0+j holds column j of op(B). Read each
             * row contiguously, write with stride NR. */
            for (int j = 0; j < GEMM_NR; j++) {
                float *d = dst + j;
                if (j < nr) {
                    const float *src = b + (long)(j0 + j) * ldb;
                    for (int p = 0; p < kc; p++)
                        d[(long)p * GEMM_NR] = src[p];
                } else {
                    for (int p = 0; p < kc; p++)
                        d[(long)p * GEMM_NR] = 0.0f;
                }
            }
        }
        dst += (long)kc * GEMM_NR;
    }
}

/* GEMM_NAME runs the blocked product; k > 0 and alpha != 0 (hw_sgemm
 * handles the rest). Returns -1 when the packing buffers cannot be
 * allocated, 0 otherwise. */
int GEMM_NAME(int transA, int transB, int m, int n, int k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta,
              float *c, long ldc)
{
#ifdef GEMM_DOT_M
    if (transB && !transA && m <= GEMM_DOT_M) {
        GEMM_DOT(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return 0;
    }
#endif
#ifdef GEMM_DIRECT_UKR
    /* ukr_direct(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr):
     * the micro-kernel with A(i,p) at a[i·rsa + p·csa] and B(p,j) at
     * b[p·ldb + j]. A is read in place (its MR broadcasts per step of k
     * are cheap from any layout, and packing it is a slow transpose); B is
     * read in place when stored k×n and packed only when transposed. Loops:
     * pc over k by KC, jc over n by NC (pack B if transposed), jr by NR (the
     * B sliver stays in L2 / L1), ir over all m by MR. */
    long rsa = transA ? 1 : lda, csa = transA ? lda : 1;
    float *bp = NULL;
    if (transB) {
        int kcap = k < GEMM_KC ? k : GEMM_KC;
        int ncap = n < GEMM_NC ? n : GEMM_NC;
        bp = aligned_alloc(64, (size_t)((ncap + GEMM_NR - 1) / GEMM_NR * GEMM_NR) * kcap * sizeof(float));
        if (!bp)
            return -1;
    }
    for (int pc = 0; pc < k; pc += GEMM_KC) {
        int kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
        float bet = pc == 0 ? beta : 1.0f;
        for (int jc = 0; jc < n; jc += GEMM_NC) {
            int nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
            if (transB)
                GEMM_CAT(GEMM_NAME, _packB)(1, b + (long)jc * ldb + pc, ldb, kc, nc, bp);
            for (int jr = 0; jr < nc; jr += GEMM_NR) {
                int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                const float *bs = transB ? bp + (long)jr * kc : b + (long)pc * ldb + jc + jr;
                long bld = transB ? GEMM_NR : ldb;
                for (int ir = 0; ir < m; ir += GEMM_MR) {
                    int mr = m - ir < GEMM_MR ? m - ir : GEMM_MR;
                    GEMM_DIRECT_UKR(kc, a + ir * rsa + (long)pc * csa, rsa, csa, bs, bld,
                                    c + (long)ir * ldc + jc + jr, ldc, alpha, bet, mr, nr);
                }
            }
        }
    }
    free(bp);
    return 0;
#else
    int mcap = m < GEMM_MC ? m : GEMM_MC;
    int kcap = k < GEMM_KC ? k : GEMM_KC;
    int ncap = n < GEMM_NC ? n : GEMM_NC;
    size_t asz = (size_t)((mcap + GEMM_MR - 1) / GEMM_MR * GEMM_MR) * kcap;
    size_t bsz = (size_t)((ncap + GEMM_NR - 1) / GEMM_NR * GEMM_NR) * kcap;
    asz = (asz + 15) & ~(size_t)15; /* keep B 64-byte aligned */
    float *buf = aligned_alloc(64, (asz + bsz) * sizeof(float));
    if (!buf)
        return -1;
    float *ap = buf, *bp = buf + asz;

    for (int ic = 0; ic < m; ic += GEMM_MC) {
        int mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
        for (int pc = 0; pc < k; pc += GEMM_KC) {
            int kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
            float bet = pc == 0 ? beta : 1.0f;
            GEMM_CAT(GEMM_NAME, _packA)(transA, transA ? a + (long)pc * lda + ic : a + (long)ic * lda + pc, lda, mc, kc, ap);
            for (int jc = 0; jc < n; jc += GEMM_NC) {
                int nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
                GEMM_CAT(GEMM_NAME, _packB)(transB, transB ? b + (long)jc * ldb + pc : b + (long)pc * ldb + jc, ldb, kc, nc, bp);
                for (int ir = 0; ir < mc; ir += GEMM_MR) {
                    int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                    const float *as = ap + (long)ir * kc;
                    float *crow = c + (long)(ic + ir) * ldc + jc;
                    for (int jr = 0; jr < nc; jr += GEMM_NR) {
                        int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                        GEMM_UKR(kc, as, bp + (long)jr * kc, crow + jr, ldc, alpha, bet, mr, nr);
                    }
                }
            }
        }
    }
    free(buf);
    return 0;
#endif
}
