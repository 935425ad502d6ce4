/* Convolution kernels (NCHW, float32) for package cpu: im2col + hw_sgemm for
 * general convolutions, a direct GEMM for 1×1 stride-1 unpadded ones, and a
 * depthwise kernel. Every function is single-threaded and works on a range
 * (of samples, planes or channels) so that the Go side splits a call across
 * goroutines with one C call per chunk. Sizes are trusted: conv.go
 * validates them. */
#ifndef HWNAS_CPU_CONV_H
#define HWNAS_CPU_CONV_H

#include "isa.h"

/* hw_conv_t describes one convolution: input N×C×H×W, weights
 * K×(C/G)×KH×KW, output N×K×OH×OW, strides sh/sw, padding ph/pw,
 * dilations dh/dw, G groups. */
typedef struct {
    int N, C, H, W, K, KH, KW, sh, sw, ph, pw, dh, dw, G, OH, OW;
} hw_conv_t;

/* hw_conv_direct is 1 when im2col of one sample equals the sample itself
 * (1×1 kernel, stride 1, no padding), so the GEMM reads x directly. */
int hw_conv_direct(const hw_conv_t *p);

/* hw_im2col writes the (C·KH·KW)×(OH·OW) patch matrix of one sample x
 * (C×H×W) into col with row stride ld (≥ OH·OW): row (c·KH + ky)·KW + kx,
 * column oy·OW + ox holds x[c, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw],
 * zero outside the input. The rows of group g are the block starting at row
 * g·(C/G)·KH·KW. With ld = nb·OH·OW, nb samples sit side by side. */
void hw_im2col(const hw_conv_t *p, const float *x, float *col, long ld);

/* hw_col2im zeroes dx (C×H×W, one sample) and adds every entry of col (row
 * stride ld) back at the input position im2col read it from. */
void hw_col2im(const hw_conv_t *p, const float *col, long ld, float *dx);

/* hw_conv_rows computes output channels [k0,k1) of one sample:
 * y[k] = act(W[k]·col_g(k) + bias[k]) with col the sample's patch matrix
 * (row stride OH·OW; x itself on the direct path) and act an accel.Act value
 * (0 none, 1 ReLU, 2 ReLU6, 3 hard-swish). bias may be NULL. */
void hw_conv_rows(int isa, const hw_conv_t *p, int k0, int k1, const float *w, const float *col,
                  const float *bias, int act, float *y);

/* hw_conv_batch is how many samples the im2col kernels below put side by
 * side in one patch matrix, so that one GEMM has about 512 columns (small
 * feature maps would otherwise give GEMMs too narrow to run fast). It is 1
 * for feature maps of 256 pixels or more. */
int hw_conv_batch(const hw_conv_t *p);

/* hw_conv_scratch is the number of floats of scratch the kernels below need
 * per thread: a patch matrix of hw_conv_batch samples plus, when that is
 * more than one, an output-sized staging matrix. */
long hw_conv_scratch(const hw_conv_t *p);

/* hw_conv_fwd runs the forward pass for samples [n0,n1), hw_conv_batch at a
 * time: im2col, one GEMM per group, then bias + activation (while the
 * staged output is copied to y when several samples share a GEMM). x and y
 * point at sample 0. */
void hw_conv_fwd(int isa, const hw_conv_t *p, int n0, int n1, const float *x, const float *w,
                 const float *bias, int act, float *scratch, float *y);

/* hw_conv_bwd_data computes dx = ∂L/∂x for samples [n0,n1) from dy:
 * per group, dcol = W_gᵀ·dy_g, then col2im (on the direct path with one
 * sample at a time, the GEMM writes dx itself). */
void hw_conv_bwd_data(int isa, const hw_conv_t *p, int n0, int n1, const float *w, const float *dy,
                      float *scratch, float *dx);

/* hw_conv_bwd_filter computes dw = Σ_{n∈[n0,n1)} dy_g·col_gᵀ per group,
 * adding to dw when accumulate is non-zero and overwriting it otherwise. */
void hw_conv_bwd_filter(int isa, const hw_conv_t *p, int n0, int n1, const float *x, const float *dy,
                        float *scratch, float *dw, int accumulate);

/* Depthwise convolution (G = C = K): planes are the N·C (sample, channel)
 * pairs, plane q using channel q mod C. */

/* hw_conv_dw computes planes [q0,q1) of y = act(dwconv(x, w) + bias) at the
 * given ISA level (conv_dw_{generic,avx2,avx512}.c). */
void hw_conv_dw(int isa, const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                const float *bias, int act, float *y);
void hw_conv_dw_generic(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                        const float *bias, int act, float *y);
void hw_conv_dw_avx2(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                     const float *bias, int act, float *y);
void hw_conv_dw_avx512(const hw_conv_t *p, int q0, int q1, const float *x, const float *w,
                       const float *bias, int act, float *y);

/* hw_conv_dw_bwd_data computes planes [q0,q1) of dx from dy. */
void hw_conv_dw_bwd_data(const hw_conv_t *p, int q0, int q1, const float *w, const float *dy, float *dx);

/* hw_conv_dw_bwd_filter computes dw for channels [c0,c1), summing over all
 * N samples. */
void hw_conv_dw_bwd_filter(const hw_conv_t *p, int c0, int c1, const float *x, const float *dy, float *dw);

#endif
