/* The arm64 int8 GEMM driver and tile, instantiated once per multiply
 * (qgemm_neon.c): the including file defines
 *   QN_NAME            the function to define (hw_qgemm's contract, no isa)
 *   QN_MAC(acc, a, b)  acc (uint32x4_t) += the products of the 16 bytes of
 *                      a and b (uint8x16_t), any 4 lanes of partial sums
 * and the helper qn_rowsum. See qgemm_neon.c for the arithmetic. */

#define QN_CAT_(a, b) a##b
#define QN_CAT(a, b) QN_CAT_(a, b)

/* QN_NAME_tile computes the MR×NR tile at a (MR rows of k, lda apart) and
 * b (NR rows, ldb apart): c[r·rsc + j·csc] = Σ_p a[r][p]·(b[j][p] ^ 0x80)
 * − 128·asum[r]. MR and NR (1..4) are constants in every instantiation. */
static inline __attribute__((always_inline)) void QN_CAT(QN_NAME, _tile)(
    const int MR, const int NR, int k, const uint8_t *a, int lda, const int8_t *b, int ldb,
    int32_t *c, long rsc, long csc, const uint32_t *asum)
{
    const uint8x16_t flip = vdupq_n_u8(0x80);
    uint32x4_t acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            acc[r][j] = vdupq_n_u32(0);
    int p = 0;
    for (; p + 16 <= k; p += 16) {
        uint8x16_t va[4], vb[4];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++)
            va[r] = vld1q_u8(a + (long)r * lda + p);
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            vb[j] = veorq_u8(vld1q_u8((const uint8_t *)b + (long)j * ldb + p), flip);
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NR; j++)
                QN_MAC(acc[r][j], va[r], vb[j]);
    }
    if (p < k) {
        /* The k tail through zeroed buffers: a's padding is 0, so the
         * padding of b (0x80 after the flip) adds nothing. */
        uint8_t ta[4][16] = {{0}}, tb[4][16] = {{0}};
        uint8x16_t va[4], vb[4];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            memcpy(ta[r], a + (long)r * lda + p, k - p);
            va[r] = vld1q_u8(ta[r]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            memcpy(tb[j], b + (long)j * ldb + p, k - p);
            vb[j] = veorq_u8(vld1q_u8(tb[j]), flip);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NR; j++)
                QN_MAC(acc[r][j], va[r], vb[j]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        /* Lane j of s: the sum over all lanes of acc[r][j]. */
        uint32x4_t s = vpaddq_u32(vpaddq_u32(acc[r][0], acc[r][1]), vpaddq_u32(acc[r][2], acc[r][3]));
        s = vsubq_u32(s, vdupq_n_u32(asum[r] << 7));
        int32_t t[4];
        vst1q_s32(t, vreinterpretq_s32_u32(s));
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            c[r * rsc + j * csc] = t[j];
    }
}

#define QN_CASE(MR, NR)                                                              \
    case (MR) * 8 + (NR):                                                            \
        QN_CAT(QN_NAME, _tile)(MR, NR, k, ap, lda, bp, ldb, cp, rsc, csc, asum);     \
        break;

/* QN_NAME walks the output in 4×4 tiles, rows of a outer so each row sum of
 * a is computed once. */
void QN_NAME(int m, int n, int k, const uint8_t *a, int lda,
             const int8_t *b, int ldb, int32_t *c, long rsc, long csc)
{
    for (int i0 = 0; i0 < m; i0 += 4) {
        const int mr = m - i0 < 4 ? m - i0 : 4;
        const uint8_t *ap = a + (long)i0 * lda;
        uint32_t asum[4] = {0};
        for (int r = 0; r < mr; r++)
            asum[r] = qn_rowsum(ap + (long)r * lda, k);
        for (int j0 = 0; j0 < n; j0 += 4) {
            const int nr = n - j0 < 4 ? n - j0 : 4;
            const int8_t *bp = b + (long)j0 * ldb;
            int32_t *cp = c + i0 * rsc + j0 * csc;
            switch (mr * 8 + nr) {
                QN_CASE(1, 1) QN_CASE(1, 2) QN_CASE(1, 3) QN_CASE(1, 4)
                QN_CASE(2, 1) QN_CASE(2, 2) QN_CASE(2, 3) QN_CASE(2, 4)
                QN_CASE(3, 1) QN_CASE(3, 2) QN_CASE(3, 3) QN_CASE(3, 4)
                QN_CASE(4, 1) QN_CASE(4, 2) QN_CASE(4, 3) QN_CASE(4, 4)
            }
        }
    }
}

#undef QN_CASE
#undef QN_NAME
#undef QN_MAC
