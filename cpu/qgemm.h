/* Integer (uint8 × int8 → int32) GEMM and the quantize/im2col/epilogue
 * helpers of the int8 Conv and Linear kernels of package cpu. */
#ifndef HWNAS_CPU_QGEMM_H
#define HWNAS_CPU_QGEMM_H

#include <stdint.h>
#include "isa.h"

/* Levels of the integer kernels: the HW_ISA_* levels of isa.h, plus
 * AVX-512 with VNNI (vpdpbusd), which the plain AVX-512 level lacks on
 * some CPUs, and arm64 with the Armv8.2 dot product (sdot, ASIMDDP), which
 * Armv8.0 cores such as Cortex-A72 lack. */
enum { HW_QISA_VNNI = 3, HW_QISA_DOTPROD = 5 };

/* hw_qgemm computes, single-threaded, for i < m, j < n,
 *
 *     c[i·rsc + j·csc] = Σ_{p<k} a[i·lda + p] · b[j·ldb + p]
 *
 * with a uint8 and b int8 (both rows along k), in exact int32 arithmetic
 * (no saturation at any level). isa is a HW_ISA_* level or HW_QISA_VNNI
 * that the CPU supports. Sizes are trusted (validated in qgemm.go). */
void hw_qgemm(int isa, int m, int n, int k, const uint8_t *a, int lda,
              const int8_t *b, int ldb, int32_t *c, long rsc, long csc);

/* hw_quantize_u8 writes q[i] = clamp(rint(x[i]/scale) + zero, 0, 255)
 * (round half to even). */
void hw_quantize_u8(int isa, long n, const float *x, float scale, int zero, uint8_t *q);

/* hw_fakequant_f32 writes xf[i] = (clamp(rint(x[i]/scale) + zero, 0, 255)
 * − zero)·scale: x on the uint8 input grid of hw_quantize_u8, as float
 * (exact: every value is a small integer times scale). */
void hw_fakequant_f32(int isa, long n, const float *x, float scale, int zero, float *xf);

/* hw_im2col_u8 writes, for one image of c×h×w uint8 values, the
 * (oh·ow)×(c·kh·kw) patch matrix (row = output pixel, column = (channel,
 * ky, kx)); out-of-image taps get pad (the zero point). Rows are ld ≥
 * c·kh·kw bytes apart; the bytes between are set to 0. */
void hw_im2col_u8(const uint8_t *x, int c, int h, int w, int kh, int kw,
                  int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                  int ow, uint8_t pad, uint8_t *col, int ld);

/* hw_chw_to_hwc_u8 transposes one c×h×w uint8 image to h×w×c. */
void hw_chw_to_hwc_u8(const uint8_t *x, int c, int hw, uint8_t *y);

/* hw_quantize_hwc_u8 quantizes one image of c channels × hw pixels held in
 * the blocked layout (channel blocks of b, each hw pixels × b lanes: value
 * (ch, i) at x[(ch/b)·hw·b + i·b + ch mod b]) as hw_quantize_u8 does, and
 * writes it channels-last: y[i·c + ch]. The lanes past c are not read into
 * y. At the AVX-512 level b must be 16 and at AVX2 8 (the blocked
 * kernels' widths) for the vector paths; any other b runs the generic one. */
void hw_quantize_hwc_u8(int isa, const float *x, int c, long hw, int b, float scale, int zero, uint8_t *y);
void hw_quantize_hwc_u8_avx2(const float *x, int c, long hw, float scale, int zero, uint8_t *y);
void hw_quantize_hwc_u8_avx512(const float *x, int c, long hw, float scale, int zero, uint8_t *y);

/* hw_im2col_hwc writes, for one h×w×c (channels-last) uint8 image, the
 * (oh·ow)×(kh·kw·cg) patch matrix of the cg channels starting at c0: row =
 * output pixel, column = (ky, kx, channel), so each tap is one contiguous
 * copy of cg values. Out-of-image taps get pad (the zero point). Rows are
 * ld ≥ kh·kw·cg values apart; the values between are set to 0. col holds
 * uint8 values, or with wide (AVX2 only) uint16 ones, widened as they are
 * copied, for hw_qgemm_packed16_avx2. */
void hw_im2col_hwc(int isa, int wide, const uint8_t *x, int c, int c0, int cg, int h, int w,
                   int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                   int dw, int oh, int ow, uint8_t pad, void *col, int ld);
void hw_im2col_hwc_u8_generic(const uint8_t *x, int c, int c0, int cg, int h, int w,
                              int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                              int dw, int oh, int ow, uint8_t pad, uint8_t *col, int ld);
/* hw_im2col_hwc at AVX2, in bytes and widened. */
void hw_im2col_hwc_u8_avx2(const uint8_t *x, int c, int c0, int cg, int h, int w,
                           int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                           int dw, int oh, int ow, uint8_t pad, uint8_t *col, int ld);
void hw_im2col_hwc_u16_avx2(const uint8_t *x, int c, int c0, int cg, int h, int w,
                            int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                            int dw, int oh, int ow, uint8_t pad, uint16_t *col, int ld);
void hw_im2col_hwc_u8_avx512(const uint8_t *x, int c, int c0, int cg, int h, int w,
                             int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                             int dw, int oh, int ow, uint8_t pad, uint8_t *col, int ld);

/* hw_qepilogue turns the integer accumulators of rows output channels ×
 * cols positions, element (r, j) at acc[r·ars + j·acs], into
 *
 *     y[r·yrs + j·ycs] = act(xs·ws[r]·(acc − zero·rowsum[r]) + bias[r])
 *
 * (bias may be NULL). act is an accel.Act value. Every level computes the
 * same floats (vectors along r at AVX2 and up when ars == yrs == 1). */
void hw_qepilogue(int isa, int rows, int cols, const int32_t *acc, long ars, long acs,
                  const int32_t *rowsum, int zero, float xs, const float *ws,
                  const float *bias, int act, float *y, long yrs, long ycs);
/* hw_qepilogue's AVX2 kernel, for ars == yrs == 1. */
void hw_qepilogue_avx2(int rows, int cols, const int32_t *acc, long acs, const int32_t *rowsum, int zero,
                       float xs, const float *ws, const float *bias, int act, float *y, long ycs);

/* hw_qgemm_packed_vnni computes, for i < m and j < n,
 *
 *     c[i·ldc + j] = Σ_{p<k4} a[i·lda + p]·B[p][j]
 *
 * with B packed by hw_qpack_b: np = n rounded up to 16 columns, and the
 * four k-consecutive int8 of column j at bp[(p/4)·4·np + 4·j + p%4], zero
 * beyond k. k4 is a multiple of 4 and every row of a has k4 readable bytes.
 * Each step broadcasts 4 bytes of a row and multiplies them into 16 columns
 * with one vpdpbusd, so no horizontal sums are needed: the form for short
 * reductions (first convolutions) and many output positions. AVX-512 VNNI
 * only. */
void hw_qgemm_packed_vnni(int m, int n, int k4, const uint8_t *a, int lda,
                          const int8_t *bp, int32_t *c, int ldc);

/* hw_qgemm_packed16_avx2 computes, for i < m and j < n,
 *
 *     c[i·ldc + j] = Σ_{p<k2} a[i·lda + p]·B[p][j]
 *
 * with a uint16 (uint8 values widened by hw_widen_u8_u16) and B packed by
 * the cpu package's packB16: np = n rounded up to 16, and the two
 * k-consecutive int16 of column j at bp[(p/2)·2·np + 2·j + p%2], zero
 * beyond k. k2 is even and every row of a has k2 readable values. The
 * broadcast form of hw_qgemm_packed_vnni for AVX2 CPUs: each step
 * broadcasts a pair of a row and multiplies it into 8 columns with one
 * vpmaddwd (16-bit operands, exact int32 pair sums: no saturation for any
 * int8 weight, unlike vpmaddubsw), in 6×16 register tiles. AVX2 only. */
void hw_qgemm_packed16_avx2(int m, int n, int k2, const uint16_t *a, int lda,
                            const int16_t *bp, int32_t *c, int ldc);

/* hw_qgemm_packed_pairsafe_avx2 computes what hw_qgemm_packed_vnni does,
 * from the same packing, on AVX2: per quad, vpmaddubsw (uint8 × int8 pair
 * sums in int16) and vpmaddwd by ones. Exact only when every weight lies
 * in [−64, 64], so that a pair sum is at most 255·64·2 = 32640 and never
 * saturates (7-bit and narrower weights always do; the caller checks). */
void hw_qgemm_packed_pairsafe_avx2(int m, int n, int k4, const uint8_t *a, int lda,
                                   const int8_t *bp, int32_t *c, int ldc);

/* hw_qconv_direct_avx2 computes a convolution's accumulators straight
 * from its channels-last image, with no patch matrix: for i < m, j < n,
 *
 *     c[i·ldc + j] = Σ_{t<ntaps} Σ_{s<tsteps} ⟨row i, tap t, step s⟩·B[t·tsteps + s][j]
 *
 * where step s of tap t of row i is the 4 bytes at img + rowoff[i] +
 * tapoff[t] + 4·s: a uint8 quad multiplied with vpmaddubsw (B packed by
 * packB; pair-safe weights only, as hw_qgemm_packed_pairsafe_avx2), or
 * with wide a pair of uint16 multiplied with vpmaddwd (B packed by
 * packB16, as hw_qgemm_packed16_avx2). rowoff[i] is the byte offset of
 * output pixel i's first tap in the (padded) image, tapoff[t] that of tap
 * t from it; a tap is tsteps whole steps (its channels fill 4-byte steps
 * exactly). AVX2 only. */
void hw_qconv_direct_avx2(int wide, int m, int n, int ncols, const void *img, const long *rowoff,
                          const long *tapoff, int ntaps, int tsteps, const void *bp, int32_t *c, int ldc);

/* hw_step_planes lays out an hp×wp channels-last image of nsteps 4-byte
 * steps per pixel (uint16 channel pairs, or uint8 channel quads:
 * hwc[(y·wp + x)·nsteps + s]) as one plane per step, each row split into
 * sw phase rows of wq = ⌈wp/sw⌉ pixels (x = j·sw + q): step s of pixel
 * (y, x) goes to
 *
 *     planes[s·plane + (y·sw + x mod sw)·wq + x/sw],
 *
 * so that the pixels a tap reads for consecutive output pixels of a row
 * are adjacent at any stride sw. plane ≥ hp·sw·wq + 16 (a vector read
 * from a row's last pixel stays inside). */
void hw_step_planes(const uint32_t *hwc, int hp, int wp, int nsteps, int sw, uint32_t *planes, long plane);

/* hw_plane_runs sets, for the tail kernels (hw_qconv_pairs_avx2,
 * hw_qconv_quads_vnni), the next two runs of at most lanes output pixels
 * from pixel p (< p1), each within a row of ow: run v starts at pixel
 * at[v], run[v] long, its vector at src[v] in the planes. At the end of
 * the range the second run is empty and its vector a repeat of the
 * first's. */
static inline void hw_plane_runs(int p, int p1, int ow, long rowstep, int lanes, const uint32_t *planes,
                                 const uint32_t *src[2], int at[2], int run[2]) {
    for (int v = 0; v < 2; v++) {
        int q = v == 0 || p + run[0] >= p1 ? p : p + run[0];
        int ox = q % ow, r = ow - ox;
        r = r < lanes ? r : lanes;
        r = r < p1 - q ? r : p1 - q;
        src[v] = planes + (long)(q / ow) * rowstep + ox;
        at[v] = q;
        run[v] = v == 1 && q == p ? 0 : r;
    }
}

/* hw_qconv_pairs_avx2 computes nt ≤ 7 columns of accumulators as
 * hw_qconv_direct_avx2 does with wide (c[i·ldc + j], j < nt), for output
 * pixels i in [p0, p1) of rows of ow, eight pixels of a row to a vector
 * where the broadcast tiles put eight columns: the last K mod 8 channels
 * of a convolution then cost nt vpmaddwd per eight pixels rather than
 * eight. Pixel i reads pair s of tap t at planes + s·plane + (i/ow)·rowstep
 * + i mod ow + toff[t] (hw_step_planes' layout); B is packB16's for those
 * nt columns alone, its steps tap-major (ntaps taps of npairs pairs).
 * AVX2 only. */
void hw_qconv_pairs_avx2(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int npairs, const long *toff, int ntaps, const int16_t *bp, int32_t *c, int ldc);

/* hw_qconv_direct_vnni is hw_qconv_direct_avx2's uint8 form on AVX-512
 * VNNI (vpdpbusd, B packed by packB; any int8 weights), columns [0, ncols)
 * of n. */
void hw_qconv_direct_vnni(int m, int n, int ncols, const uint8_t *img, const long *rowoff, const long *tapoff,
                          int ntaps, int tsteps, const int8_t *bp, int32_t *c, int ldc);

/* hw_qconv_quads_vnni is hw_qconv_pairs_avx2 for hw_qconv_direct_vnni:
 * nt ≤ 12 columns (the last K mod 16), sixteen output pixels of a row to a
 * vector of uint8 channel quads (vpdpbusd), B packed by packB for those nt
 * columns alone. */
void hw_qconv_quads_vnni(int p0, int p1, int ow, long rowstep, int nt, const uint32_t *planes, long plane,
                         int nquads, const long *toff, int ntaps, const int8_t *bp, int32_t *c, int ldc);

/* hw_widen_u8_u16 writes y[i] = x[i] for i < n. */
void hw_widen_u8_u16(int isa, long n, const uint8_t *x, uint16_t *y);

/* Per-level kernels, called by hw_qgemm and hw_quantize_u8. */
void hw_quantize_u8_generic(long n, const float *x, float scale, int zero, uint8_t *q);
void hw_quantize_u8_avx2(long n, const float *x, float scale, int zero, uint8_t *q);
void hw_widen_u8_u16_avx2(long n, const uint8_t *x, uint16_t *y);
void hw_quantize_u8_avx512(long n, const float *x, float scale, int zero, uint8_t *q);
void hw_qgemm_generic(int m, int n, int k, const uint8_t *a, int lda,
                      const int8_t *b, int ldb, int32_t *c, long rsc, long csc);
void hw_qgemm_avx2(int m, int n, int k, const uint8_t *a, int lda,
                   const int8_t *b, int ldb, int32_t *c, long rsc, long csc);
void hw_qgemm_avx512(int m, int n, int k, const uint8_t *a, int lda,
                     const int8_t *b, int ldb, int32_t *c, long rsc, long csc);
void hw_qgemm_vnni(int m, int n, int k, const uint8_t *a, int lda,
                   const int8_t *b, int ldb, int32_t *c, long rsc, long csc);

#endif
