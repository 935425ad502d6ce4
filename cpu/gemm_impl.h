/* The blocked SGEMM driver, instantiated once per ISA level.
 *
 * A file that includes this header first defines
 *   GEMM_MR, GEMM_NR   register tile: GEMM_MR rows × GEMM_NR columns of C
 *   GEMM_KC            depth of one panel (k block); beta applies on the
 *                      first panel only, later panels accumulate
 *   GEMM_MC            rows of one packed A block
 *   GEMM_NC            columns of one packed B block
 *   GEMM_NAME          the name of the driver function to define
 * and one of two micro-kernels, both computing for the mr×nr valid part of
 * a tile  c[i][j] = alpha·Σ_p A(i,p)·B(p,j) + beta·c[i][j]  (c not read
 * when beta == 0):
 *   GEMM_UKR(kc, a, b, c, ldc, alpha, beta, mr, nr)   both operands packed
 *       (a as kc×MR, b as kc×NR); the classic Goto/BLIS driver below packs
 *       both: ic over m by MC (pack A), pc over k by KC, jc over n by NC
 *       (pack B, L2), ir by MR (A sliver in L1), jr by NR.
 *   GEMM_DIRECT_UKR(kc, a, rsa, csa, b, ldb, c, ldc, alpha, beta, mr, nr)
 *       A(i,p) = a[i·rsa + p·csa], B(p,j) = b[p·ldb + j]: the driver reads
 *       A in place unless it is transposed, and B in place when it is
 *       untransposed and GEMM_INPLACE_B(m, ldb) is true (default never);
 *       see the comment in the driver for why.
 *       With GEMM_PACK_A(m, lda) defined and true for an untransposed A,
 *       the driver packs A too, in blocks of GEMM_PACK_A_MC rows (B in
 *       blocks of GEMM_PACK_A_NC columns), and loops in BLIS's order (see
 *       GEMM_NAME_packed).
 * and may define
 *   GEMM_PACKB_T(b, ldb, kc, nc, dst)   a faster packing of transposed B
 *   GEMM_DOT_M, GEMM_DOT                for m <= GEMM_DOT_M, A not and B
 *       transposed (A·Bsᵀ, rows of both contiguous along k): dot products,
 *       the shape of a fully connected layer at batch 1
 * It is compiled under the including file's target pragma, so packing and
 * driver loops are vectorised for that level too (as OpenBLAS builds one
 * source per kernel target).
 *
 * Row-major C, vectors along n: a micro-kernel broadcasts MR values of A per
 * step of k and multiplies them by NR/lanes vectors of B. Packing pads
 * partial slivers with zeros, in-place reads alias or mask the rows and
 * columns past the edge, and the micro-kernels store only the mr×nr valid
 * part of an edge tile, so nothing outside the operands is read or written. */

#include <stdlib.h>
#include <string.h>

/* packA packs op(A)'s mc×kc block at a into slivers of MR rows: dst[s][p][i]
 * = op(A)(s·MR + i, p), zero past mc. */
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

/* packB packs op(B)'s kc×nc block at b into slivers of NR columns:
 * dst[s][p][j] = op(B)(p, s·NR + j), zero past nc. */
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

/* GEMM_NAME_bufs allocates one buffer for a packed A block of up to ma
 * rows and a packed B block of up to nb columns (either 0: none), both of
 * depth min(k, KC), and points *ap and *bp at them, B 64-byte aligned.
 * Returns the buffer to free, or NULL: nothing to pack, or no memory (then
 * *ap and *bp are NULL too, and a caller with something to pack fails). */
static float *GEMM_CAT(GEMM_NAME, _bufs)(int ma, int nb, int k, float **ap, float **bp)
{
    int kcap = k < GEMM_KC ? k : GEMM_KC;
    size_t asz = (size_t)((ma + GEMM_MR - 1) / GEMM_MR * GEMM_MR) * kcap;
    size_t bsz = (size_t)((nb + GEMM_NR - 1) / GEMM_NR * GEMM_NR) * kcap;
    asz = (asz + 15) & ~(size_t)15;
    float *buf = asz + bsz > 0 ? aligned_alloc(64, ((asz + bsz) * sizeof(float) + 63) & ~(size_t)63) : NULL;
    *ap = buf;
    *bp = buf ? buf + asz : NULL;
    return buf;
}

#if defined(GEMM_DIRECT_UKR) && defined(GEMM_PACK_A)
/* GEMM_NAME_packed is the direct driver with both operands packed, for an
 * A whose rows GEMM_PACK_A says not to read in place: MR rows a multiple
 * of 4 KiB apart fall in one L1 set at every step of k, and evict the B
 * sliver. Loops as BLIS: jc over n by GEMM_PACK_A_NC, pc over k by KC
 * (pack B: kc×nc in L3), ic over m by GEMM_PACK_A_MC (pack A: in L2), jr
 * by NR (a B sliver in L1), ir by MR. Each element of C takes the same panels in the
 * same order as in the other loops, so results are bit-identical. */
static int GEMM_CAT(GEMM_NAME, _packed)(int transB, int m, int n, int k, float alpha, const float *a, long lda,
                                        const float *b, long ldb, float beta, float *c, long ldc)
{
    float *ap, *bp;
    float *buf = GEMM_CAT(GEMM_NAME, _bufs)(m < GEMM_PACK_A_MC ? m : GEMM_PACK_A_MC,
                                            n < GEMM_PACK_A_NC ? n : GEMM_PACK_A_NC, k, &ap, &bp);
    if (!buf)
        return -1;
    for (int jc = 0; jc < n; jc += GEMM_PACK_A_NC) {
        int nc = n - jc < GEMM_PACK_A_NC ? n - jc : GEMM_PACK_A_NC;
        for (int pc = 0; pc < k; pc += GEMM_KC) {
            int kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
            float bet = pc == 0 ? beta : 1.0f;
            GEMM_CAT(GEMM_NAME, _packB)(transB, transB ? b + (long)jc * ldb + pc : b + (long)pc * ldb + jc, ldb, kc, nc, bp);
            for (int ic = 0; ic < m; ic += GEMM_PACK_A_MC) {
                int mc = m - ic < GEMM_PACK_A_MC ? m - ic : GEMM_PACK_A_MC;
                GEMM_CAT(GEMM_NAME, _packA)(0, a + (long)ic * lda + pc, lda, mc, kc, ap);
                for (int jr = 0; jr < nc; jr += GEMM_NR) {
                    int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    for (int ir = 0; ir < mc; ir += GEMM_MR) {
                        int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                        GEMM_DIRECT_UKR(kc, ap + (long)ir * kc, 1, GEMM_MR, bp + (long)jr * kc, GEMM_NR,
                                        c + (long)(ic + ir) * ldc + jc + jr, ldc, alpha, bet, mr, nr);
                    }
                }
            }
        }
    }
    free(buf);
    return 0;
}
#endif

/* GEMM_NAME_blocked runs the blocked product; k > 0 and alpha != 0
 * (hw_sgemm handles the rest). Returns -1 when the packing buffers cannot
 * be allocated, 0 otherwise. */
static int GEMM_CAT(GEMM_NAME, _blocked)(int transA, int transB, int m, int n, int k, float alpha,
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
     * b[p·ldb + j]. A stored m×k is read in place: its MR broadcasts per
     * step of k come from MR sequential row streams, and packing it would
     * be a slow transpose. Transposed A is packed (a plain copy of MR
     * floats per step), since in place its MR values share one cache line
     * per step and a power-of-two lda maps all of them to one cache set.
     * B is read in place when stored k×n and GEMM_INPLACE_B(m, ldb) says
     * so (m small: it is reused too few times to repay packing), packed
     * otherwise, for the same reason.
     * Loops: pc over k by KC, ic over m by MC (pack A), jc over n by NC
     * (pack B), jr by NR (the B sliver stays in L1/L2), ir by MR. */
#ifdef GEMM_PACK_A
    if (!transA && GEMM_PACK_A(m, lda))
        return GEMM_CAT(GEMM_NAME, _packed)(transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
#ifndef GEMM_INPLACE_B
#define GEMM_INPLACE_B(m, ldb) 0
#endif
    int packb = transB || !GEMM_INPLACE_B(m, ldb);
    int ma = transA ? (m < GEMM_MC ? m : GEMM_MC) : 0, nb = packb ? (n < GEMM_NC ? n : GEMM_NC) : 0;
    float *ap, *bp;
    float *buf = GEMM_CAT(GEMM_NAME, _bufs)(ma, nb, k, &ap, &bp);
    if (!buf && ma + nb > 0)
        return -1;
    for (int pc = 0; pc < k; pc += GEMM_KC) {
        int kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
        float bet = pc == 0 ? beta : 1.0f;
        for (int ic = 0; ic < m; ic += GEMM_MC) {
            int mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
            if (transA)
                GEMM_CAT(GEMM_NAME, _packA)(1, a + (long)pc * lda + ic, lda, mc, kc, ap);
            for (int jc = 0; jc < n; jc += GEMM_NC) {
                int nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
                if (packb)
                    GEMM_CAT(GEMM_NAME, _packB)(transB, transB ? b + (long)jc * ldb + pc : b + (long)pc * ldb + jc, ldb, kc, nc, bp);
                long bld = packb ? GEMM_NR : ldb;
                for (int ir = 0; ir < mc; ir += GEMM_MR) {
                    int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                    const float *as = transA ? ap + (long)ir * kc : a + (long)(ic + ir) * lda + pc;
                    long rsa = transA ? 1 : lda, csa = transA ? GEMM_MR : 1;
                    for (int jr = 0; jr < nc; jr += GEMM_NR) {
                        int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                        const float *bs = packb ? bp + (long)jr * kc : b + (long)pc * ldb + jc + jr;
                        GEMM_DIRECT_UKR(kc, as, rsa, csa, bs, bld, c + (long)(ic + ir) * ldc + jc + jr, ldc, alpha, bet, mr, nr);
                    }
                }
            }
        }
    }
    free(buf);
    return 0;
#else
    float *ap, *bp;
    float *buf = GEMM_CAT(GEMM_NAME, _bufs)(m < GEMM_MC ? m : GEMM_MC, n < GEMM_NC ? n : GEMM_NC, k, &ap, &bp);
    if (!buf)
        return -1;

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

/* GEMM_NAME is the level's driver (see gemm_kernels.h).
 *
 * With GEMM_TRANSPOSE(src, lds, dst, ldd, rows, cols) (dst = srcᵀ) and
 * GEMM_SWAP_M(m) defined, A·Bsᵀ with few rows (a fully connected layer,
 * x·Wᵀ: m = batch, Bs = W stored n×k) is computed as its transpose,
 * Cᵀ = Bs·Aᵀ, into a scratch n×m matrix that is then transposed into C.
 * The direct path would pack all n×k of Bs (a transpose, once per call);
 * this one reads Bs in place as the row operand and packs only A (m×k),
 * plus one or two m×n transposes of C, so it is taken when n·k exceeds
 * twice m·k + m·n. GEMM_SWAP_M(m) says whether m columns fill the
 * micro-kernel's vectors. Each element of C is the same chain of
 * multiply-adds over k in the same order either way (the product is
 * symmetric in its factors, beta·C is applied to the same values), so the
 * result is bit-identical to the direct path's. */
int GEMM_NAME(int transA, int transB, int m, int n, int k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta,
              float *c, long ldc)
{
#if defined(GEMM_TRANSPOSE) && defined(GEMM_SWAP_M)
    if (transB && !transA && GEMM_SWAP_M(m) && n > m &&
        (long)n * k > 2 * ((long)m * k + (long)m * n)) {
        float *t = aligned_alloc(64, ((size_t)n * m * sizeof(float) + 63) & ~(size_t)63);
        if (!t)
            return -1;
        if (beta != 0.0f)
            GEMM_TRANSPOSE(c, ldc, t, m, m, n);
        int rc = GEMM_CAT(GEMM_NAME, _blocked)(0, 1, n, m, k, alpha, b, ldb, a, lda, beta, t, m);
        if (rc == 0)
            GEMM_TRANSPOSE(t, m, c, ldc, n, m);
        free(t);
        return rc;
    }
#endif
    return GEMM_CAT(GEMM_NAME, _blocked)(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
