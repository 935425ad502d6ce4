/* Internal x86 helpers shared by gemm_avx2.c and gemm_avx512.c; include it
 * after the file's target pragma (it needs AVX2) so it is compiled for that
 * level. */
#ifndef HWNAS_CPU_GEMM_X86_H
#define HWNAS_CPU_GEMM_X86_H

#include <immintrin.h>

/* transpose8 transposes the 8×8 block whose rows are src[r*lds .. +8] into
 * dst[r*ldd .. +8] (dst row r = source column r). */
static inline void transpose8(const float *src, long lds, float *dst, long ldd)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* transpose_x86 writes dst[j·ldd + i] = src[i·lds + j] for i < rows and
 * j < cols: 8×8 blocks in registers, the ragged edges one by one. */
static inline void transpose_x86(const float *src, long lds, float *dst, long ldd, int rows, int cols)
{
    int rf = rows & ~7, cf = cols & ~7;
    for (int i = 0; i < rf; i += 8) {
        for (int j = 0; j < cf; j += 8)
            transpose8(src + (long)i * lds + j, lds, dst + (long)j * ldd + i, ldd);
        for (int j = cf; j < cols; j++)
            for (int r = 0; r < 8; r++)
                dst[(long)j * ldd + i + r] = src[(long)(i + r) * lds + j];
    }
    for (int i = rf; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dst[(long)j * ldd + i] = src[(long)i * lds + j];
}

/* packB_trans_x86 packs op(B) = Bsᵀ, where Bs (stored nc×kc, leading
 * dimension ldb) holds op(B)'s columns as rows, into slivers of nrw columns:
 * dst[s][p][j] = Bs[s·nrw + j][p], zero beyond nc. Full 8×8 blocks are
 * transposed in registers; the ragged edges are copied one by one. */
static inline void packB_trans_x86(const float *b, long ldb, int kc, int nc, int nrw, float *restrict dst)
{
    for (int j0 = 0; j0 < nc; j0 += nrw) {
        int nr = nc - j0 < nrw ? nc - j0 : nrw;
        int jfull = nr & ~7, pfull = kc & ~7;
        for (int jj = 0; jj < jfull; jj += 8) {
            const float *src = b + (long)(j0 + jj) * ldb;
            for (int p = 0; p < pfull; p += 8)
                transpose8(src + p, ldb, dst + (long)p * nrw + jj, nrw);
            for (int p = pfull; p < kc; p++)
                for (int j = 0; j < 8; j++)
                    dst[(long)p * nrw + jj + j] = src[(long)j * ldb + p];
        }
        for (int j = jfull; j < nrw; j++) {
            float *d = dst + j;
            if (j < nr) {
                const float *src = b + (long)(j0 + j) * ldb;
                for (int p = 0; p < kc; p++)
                    d[(long)p * nrw] = src[p];
            } else {
                for (int p = 0; p < kc; p++)
                    d[(long)p * nrw] = 0.0f;
            }
        }
        dst += (long)kc * nrw;
    }
}

#endif
