/* Blocked-layout ("NCHWc") inference kernels for package cpu's compiled
 * programs (program.go). A blocked tensor of C channels and H×W pixels is
 * stored as [⌈C/B⌉][H][W][B]: channel c sits in block c/B, lane c mod B, and
 * lanes of channels ≥ C are zero. B is the vector width of the level (16
 * floats for AVX-512, 8 for AVX2, 4 for the portable and arm64 levels),
 * so every kernel works on whole vectors of channels: a depthwise
 * convolution or a pooling multiplies and compares B channels at once whatever the image
 * size, and a direct convolution broadcasts one input value against B
 * output channels' weights, with no im2col copy and no GEMM that a small
 * image would leave narrow. onnxruntime (MLAS) and oneDNN run CNNs the same
 * way.
 *
 * Weights are repacked for the layout once, when a program is compiled
 * (nchwc.go), and zero-padded to whole blocks, so padded lanes compute
 * zeros and stay zero through every activation (act(0) = 0).
 *
 * Every kernel is single-threaded and works on one sample and a range of
 * output rows (block·OH + oy) or blocks, so the Go side splits a call
 * across goroutines; sizes are trusted (program.go checks the plan). The
 * functions taking `isa` dispatch to the _generic, _avx2 and _avx512
 * instantiations of nchwc_impl.h, or on arm64 to _generic and _neon
 * (neon.h). */
#ifndef HWNAS_CPU_NCHWC_H
#define HWNAS_CPU_NCHWC_H

#include "conv.h"
#include "isa.h"

/* hw_nc_block is the block B of a level: 16 (AVX-512), 8 (AVX2), 4. */
int hw_nc_block(int isa);

/* The kernels below work on a batch: sample n of x starts at x + n·xs and
 * of y at y + n·ys (floats), and a range [r0,r1) of tasks counts over the
 * samples (task r is task r mod T of sample r / T, T tasks a sample), so
 * one call covers any split of a batch across threads. */

/* hw_nc_conv computes tasks [r0,r1) of y = act(conv(x, w) + bias), y
 * blocked. A task is one output row of a pair of output blocks (the
 * kernel's tile): T = ⌈Kb/2⌉·OH, Kb = ⌈K/B⌉, or a pair over the whole
 * sample for narrow outputs (hw_nc_conv_flat, hw_nc_conv_tasks). x is
 * blocked when xb is non-zero, else plain C×H×W (a first layer of fewer
 * channels than a block), and already padded: p's padding must be 0 (and
 * groups 1). w is packed
 * [Kb][Cb][KH][KW][B (input channel c mod B)][B (output channel k mod B)],
 * Cb = ⌈C/B⌉, zero where c ≥ C or k ≥ K; bias is Kb·B floats or NULL.
 * A plain x's w is packed [Kb][C][KH][KW][B (k mod B)] instead.
 * taps holds ntaps triples (input offset, weight offset, channels) in
 * floats, one per (channel block, ky, kx) of a blocked x, or per
 * (channel, ky) of a plain one (its KW values of a kernel row as
 * channels; per (channel, ky, kx) when dilated), from a window's first
 * input value and from its output block's weights (hw_nc_conv_taps
 * writes them). */
void hw_nc_conv(int isa, const hw_conv_t *p, int xb, const float *x, long xs, const float *w, const int *taps,
                int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1);
long hw_nc_conv_tasks(int isa, const hw_conv_t *p);

/* hw_nc_conv_flat says whether hw_nc_conv, at a level whose widest tile
 * of a pair of blocks is tw pixels, takes each sample's OH·OW output
 * pixels as one row whose tiles span output rows, so that tiles stay wide
 * enough to hide the multiply-add latency: at tw ≤ 8, rows narrower than
 * two tiles and not a whole one (7×7, 4×4, 8×8 maps at tw = 6); at wider
 * tiles (AVX-512, NEON: 12 pixels, whose 12 window pointers would not fit
 * the general registers), rows of at most 4 pixels. Measured at AVX2 on
 * an AMD EPYC (BenchmarkProgramConv): 3×3 convolutions on 2×2 maps 1.7×
 * faster, a 5×5 one on a 7×7 map 10% faster. A task is then a pair of
 * output blocks over the whole sample: T = ⌈Kb/2⌉. */
static inline int hw_nc_conv_flat(const hw_conv_t *p, int tw)
{
    return tw <= 8 ? p->OW < 2 * tw && p->OW % tw != 0 : p->OW <= 4;
}
/* hw_nc_conv_taps writes hw_nc_conv's tap table (at most C·KH·KW
 * triples) to taps and returns its length. */
int hw_nc_conv_taps(int isa, const hw_conv_t *p, int xb, int *taps);

/* hw_nc_linear computes tasks [r0,r1) of y = act(x·Wᵀ + bias) for n
 * samples of fi features (sample s at x + s·xs) into blocked vectors
 * (sample s's ⌈fo/B⌉·B outputs at y + s·ys, padding zero). A task is one
 * pair of output blocks for a tile of the kernel's width of samples
 * (hw_nc_linear_tasks), pair-major: the direct convolution's register
 * tile with samples for pixels, so each weight vector loaded serves a
 * tile of samples and a pair's weights stay in cache across the tiles.
 * Tap t covers taps[3t+2] (at most B) features of a sample at x +
 * taps[3t] and their weight vectors at w + taps[3t+1] (+ B a feature) in
 * each output block, wblock floats apart: w is packed [⌈fo/B⌉][R][B] for
 * the R features the taps read (the program leaves out a blocked input's
 * padding lanes, see linearTaps in program.go). */
void hw_nc_linear(int isa, long n, int fo, const float *x, long xs, const float *w, long wblock, const int *taps,
                  int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1);
long hw_nc_linear_tasks(int isa, long n, int fo);

/* hw_nc_dwconv computes tasks [r0,r1) (an output row of one channel
 * block: T = Cb·OH) of a depthwise convolution (G = C = K) of x, unpadded
 * (the kernel skips the taps that fall in p's padding), x and y blocked,
 * w packed [Cb][KH][KW][B], bias Cb·B floats or NULL, taps the KH·KW
 * pairs (ky-major) hw_nc_dwconv_taps writes. */
void hw_nc_dwconv(int isa, const hw_conv_t *p, const float *x, long xs, const float *w, const int *taps,
                  const float *bias, int act, float *y, long ys, long r0, long r1);
int hw_nc_dwconv_taps(int isa, const hw_conv_t *p, int *taps);

/* hw_nc_conv_px computes samples [n0,n1) of y = act(conv(x, w) + bias)
 * with x and y plain (C×H×W and K×OH×OW), for outputs of too few
 * channels to fill a block's lanes (program.go: a depthwise convolution
 * of a one-channel image, a stem of one or two output channels): its
 * vectors run along an output row, not across channels. Per sample it
 * splits x's rows into sw phase rows (x[iy][j·sw + q], q < sw), with the
 * horizontal padding as zeros, in a scratch buffer it allocates itself;
 * a tap (ky, kx) then reads phase (kx·dw) mod sw from offset
 * ⌊kx·dw / sw⌋ as one contiguous vector per NC_B output pixels. Kernel
 * rows in the vertical padding are skipped. p's groups must be 1, w is
 * K×C×KH×KW as in accel, bias K floats or NULL. It returns -1 when the
 * scratch buffer cannot be allocated, else 0. */
int hw_nc_conv_px(int isa, const hw_conv_t *p, const float *x, long xs, const float *w, const float *bias,
                  int act, float *y, long ys, long n0, long n1);

/* hw_nc_pool computes tasks [r0,r1) (T = Cb·OH) of max (avg = 0) or
 * average pooling (avg = 1, dividing by the in-bounds window size), x and
 * y blocked; p's K, G and dilations are unused (K = C). */
void hw_nc_pool(int isa, const hw_conv_t *p, int avg, const float *x, long xs, float *y, long ys, long r0,
                long r1);

/* hw_nc_gap writes, for samples [n0,n1), the means of the hw pixels of each
 * of the C channels of blocked x to plain y (C floats a sample). */
void hw_nc_gap(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1);

/* hw_nc_affine computes y = act(x·scale[c] + shift[c]) over blocks
 * [b0,b1) of a blocked batch (hw pixels a block, Cb blocks a sample, so
 * block b has channels of block b mod Cb); scale and shift are Cb·B floats
 * (shift NULL: + 0; scale NULL: · 1). y may be x. */
void hw_nc_affine(int isa, int Cb, long hw, const float *x, const float *scale, const float *shift, int act,
                  float *y, long b0, long b1);

/* hw_nc_add computes y[i] = act(a[i] + b[i]) for i in [i0,i1): any layout,
 * both inputs alike. y may be a or b. */
void hw_nc_add(int isa, const float *a, const float *b, int act, float *y, long i0, long i1);

/* hw_nc_to_blocked copies samples [n0,n1) of plain C×hw x into blocked y
 * (padding lanes zeroed); hw_nc_from_blocked copies them back. */
void hw_nc_to_blocked(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1);
void hw_nc_from_blocked(int isa, int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1);

/* hw_nc_pad copies samples [n0,n1) of x (C channels of H×W, blocked when
 * xb is non-zero, else plain) into the middle of y, the same tensor
 * padded by ph rows and pw columns on each side ((H+2ph)×(W+2pw) a
 * channel, same layout). Only the middle is written: the border of y is
 * zero from when it was allocated and stays so, which lets convolutions
 * run on y without padding, every output pixel an interior one. */
void hw_nc_pad(int isa, int xb, int C, int H, int W, int ph, int pw, const float *x, long xs, float *y, long ys,
               long n0, long n1);

/* hw_nc_copy_channels copies channels [s0, s0+n) of blocked sample x to
 * channels [d0, d0+n) of blocked sample y (hw pixels): concatenation and
 * split. */
void hw_nc_copy_channels(int isa, long hw, const float *x, int s0, float *y, int d0, int n);

/* hw_nc_shuffle writes the channel shuffle of blocked sample x (C = g·cg
 * channels viewed as g×cg, transposed: output channel j·g + i = input
 * channel i·cg + j) to blocked y. */
void hw_nc_shuffle(int isa, int C, int g, long hw, const float *x, float *y);

#define HW_NC_DECLARE(suf)                                                                                       \
    void hw_nc_conv_##suf(const hw_conv_t *p, int xb, const float *x, long xs, const float *w, const int *taps,  \
                          int ntaps, const float *bias, int act, float *y, long ys, long r0, long r1);           \
    int hw_nc_conv_px_##suf(const hw_conv_t *p, const float *x, long xs, const float *w, const float *bias,      \
                            int act, float *y, long ys, long n0, long n1);                                       \
    void hw_nc_dwconv_##suf(const hw_conv_t *p, const float *x, long xs, const float *w, const int *taps,        \
                            const float *bias, int act, float *y, long ys, long r0, long r1);                    \
    void hw_nc_linear_##suf(long n, int fo, const float *x, long xs, const float *w, long wblock,               \
                            const int *taps, int ntaps, const float *bias, int act, float *y, long ys, long r0, \
                            long r1);                                                                            \
    int hw_nc_tile_##suf(void);                                                                                  \
    void hw_nc_pool_##suf(const hw_conv_t *p, int avg, const float *x, long xs, float *y, long ys, long r0,     \
                          long r1);                                                                              \
    void hw_nc_gap_##suf(int C, long hw, const float *x, long xs, float *y, long ys, long n0, long n1);         \
    void hw_nc_affine_##suf(int Cb, long hw, const float *x, const float *scale, const float *shift, int act,   \
                            float *y, long b0, long b1);                                                         \
    void hw_nc_add_##suf(const float *a, const float *b, int act, float *y, long i0, long i1);
void hw_nc_transpose_avx2(const float *src, long lds, float *dst, long ldd, int rows, int cols);
HW_NC_DECLARE(generic)
HW_NC_DECLARE(avx2)
HW_NC_DECLARE(avx512)

#endif
