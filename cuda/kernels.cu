// CUDA kernels of the hwnas cuda backend, compiled by `make cuda` into one
// fatbin (SASS for sm_80 and sm_90, PTX for compute_80 that later GPUs JIT)
// and loaded with cuModuleLoadData. Every kernel is extern "C" so the Go
// side finds it by name, and takes only 8-byte parameters (pointers and
// long long) because gorgonia.org/cu's Launch copies 8 bytes per argument;
// float scalars travel as their bit pattern in a long long.
//
// Layouts are those of package accel: NCHW feature maps, row-major weights
// (conv K×(C/G)×KH×KW, linear Out×In). The launch geometry of every kernel
// is chosen in launch.go; a kernel relies on it only where its comment says.

typedef long long i64;

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_RELU6 2
#define ACT_HARDSWISH 3

// act applies accel.Act a to v.
__device__ __forceinline__ float act(float v, int a) {
  switch (a) {
  case ACT_RELU:
    return fmaxf(v, 0.f);
  case ACT_RELU6:
    return fminf(fmaxf(v, 0.f), 6.f);
  case ACT_HARDSWISH:
    return v * fminf(fmaxf(v + 3.f, 0.f), 6.f) * (1.f / 6.f);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Tiled SGEMM core: C[m][n] = Σ_k A(m,k)·B(k,n) over a BM×BN tile per block,
// BK-deep slices staged in shared memory, a TM×TN register block per thread
// ((BM/TM)·(BN/TN) threads). Loaders read A and B from global memory with
// bounds checks (zero outside); their AKFast/BKFast flag says whether k is
// the contiguous index in memory, which decides how threads are mapped to
// elements so that neighbouring threads read neighbouring addresses.
// The epilogue functor stores one finished element.

template <int BM, int BN, int BK, int TM, int TN, class LA, class LB, class EP>
__device__ __forceinline__ void gemm_tile(int M, int N, int K, const LA &la, const LB &lb, const EP &ep) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int AP = BM * BK / NT, BP = BN * BK / NT; // elements each thread stages
  static_assert(AP * NT == BM * BK && BP * NT == BN * BK, "tile not divisible by the block");
  // Rows padded by 4 floats: the transposing stores of k-contiguous
  // operands then hit 8 different banks, and rows stay 16-byte aligned.
  __shared__ __align__(16) float As[BK][BM + 4];
  __shared__ __align__(16) float Bs[BK][BN + 4];
  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
      acc[i][j] = 0.f;

  // Element e of a thread's share of the A and B slices.
  auto a_at = [&](int e, int &m, int &k) {
    const int x = tid + e * NT;
    if (LA::KFast) {
      m = x / BK;
      k = x % BK;
    } else {
      k = x / BM;
      m = x % BM;
    }
  };
  auto b_at = [&](int e, int &n, int &k) {
    const int x = tid + e * NT;
    if (LB::KFast) {
      n = x / BK;
      k = x % BK;
    } else {
      k = x / BN;
      n = x % BN;
    }
  };
  // The next slice is read from global memory into registers while the
  // current one is multiplied out of shared memory.
  float ra[AP], rb[BP];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int e = 0; e < AP; e++) {
      int m, k;
      a_at(e, m, k);
      const int gm = m0 + m, gk = k0 + k;
      ra[e] = (gm < M && gk < K) ? la(gm, gk) : 0.f;
    }
#pragma unroll
    for (int e = 0; e < BP; e++) {
      int n, k;
      b_at(e, n, k);
      const int gn = n0 + n, gk = k0 + k;
      rb[e] = (gn < N && gk < K) ? lb(gk, gn) : 0.f;
    }
  };
  fetch(0);
  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int e = 0; e < AP; e++) {
      int m, k;
      a_at(e, m, k);
      As[k][m] = ra[e];
    }
#pragma unroll
    for (int e = 0; e < BP; e++) {
      int n, k;
      b_at(e, n, k);
      Bs[k][n] = rb[e];
    }
    __syncthreads();
    if (k0 + BK < K)
      fetch(k0 + BK);
#pragma unroll
    for (int k = 0; k < BK; k++) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; i++)
        a[i] = As[k][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; j++)
        b[j] = Bs[k][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; i++) {
    const int m = m0 + ty * TM + i;
    if (m >= M)
      continue;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const int n = n0 + tx * TN + j;
      if (n < N)
        ep(m, n, acc[i][j]);
    }
  }
}

// Row-major matrix with leading dimension ld, k the column (A of A·B).
struct RowMajorA {
  static constexpr bool KFast = true;
  const float *p;
  int ld;
  __device__ float operator()(int m, int k) const { return p[(i64)m * ld + k]; }
};

// Row-major K×N matrix (B of A·B): n is contiguous.
struct RowMajorB {
  static constexpr bool KFast = false;
  const float *p;
  int ld;
  __device__ float operator()(int k, int n) const { return p[(i64)k * ld + n]; }
};

// Transposed B: element (k, n) is p[n·ld + k] (linear weights Out×In).
struct TransB {
  static constexpr bool KFast = true;
  const float *p;
  int ld;
  __device__ float operator()(int k, int n) const { return __ldg(p + (i64)n * ld + k); }
};

// Plain C = A·B store.
struct StoreC {
  float *c;
  int ld;
  __device__ void operator()(int m, int n, float v) const { c[(i64)m * ld + n] = v; }
};

// Linear epilogue: y[m][n] = act(v + bias[n]).
struct StoreLinear {
  float *y;
  const float *bias;
  int ld, a;
  __device__ void operator()(int m, int n, float v) const {
    if (bias)
      v += __ldg(bias + n);
    y[(i64)m * ld + n] = act(v, a);
  }
};

// Convolution as an implicit GEMM, per group g: M = K/G output channels,
// N = batch·OH·OW output pixels, K = (C/G)·KH·KW. B(kd, j) is the input
// element under kernel tap kd for output pixel j (zero in the padding),
// never materialised.
struct ConvGeom {
  int N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW;
};

struct ConvWeights {
  static constexpr bool KFast = true;
  const float *w; // this group's first weight
  int kd;         // (C/G)·KH·KW
  __device__ float operator()(int m, int k) const { return __ldg(w + (i64)m * kd + k); }
};

struct ConvInput {
  static constexpr bool KFast = false;
  const float *x;
  ConvGeom g;
  int c0; // this group's first input channel
  __device__ float operator()(int k, int j) const {
    const int khw = g.KH * g.KW;
    const int c = k / khw, r = k % khw, kh = r / g.KW, kw = r % g.KW;
    const int ohw = g.OH * g.OW;
    const int n = j / ohw, p = j % ohw, oh = p / g.OW, ow = p % g.OW;
    const int ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
      return 0.f;
    return __ldg(x + (((i64)n * g.C + c0 + c) * g.H + ih) * g.W + iw);
  }
};

struct StoreConv {
  float *y;
  const float *bias;
  int K, ohw, k0, a;
  __device__ void operator()(int m, int j, float v) const {
    const int k = k0 + m, n = j / ohw, p = j % ohw;
    if (bias)
      v += __ldg(bias + k);
    y[((i64)n * K + k) * ohw + p] = act(v, a);
  }
};

// The tile configurations launch.go chooses from, by name suffix:
// _128x128 (8×8 per thread), _128x64 (8×4), _64x64 (4×4), _32x32 (2×2);
// all 256 threads, BK = 8.
#define GEMM_CONFIGS(X) X(128, 128, 8, 8, 8) X(128, 64, 8, 8, 4) X(64, 64, 8, 4, 4) X(32, 32, 8, 2, 2)

// sgemm_nn_<BM>x<BN>(A, B, C, M, N, K): C = A·B, all row-major and dense
// (lda = K, ldb = ldc = N). Grid (⌈N/BN⌉, ⌈M/BM⌉), 256 threads.
#define SGEMM_NN(BM, BN, BK, TM, TN)                                                                                   \
  extern "C" __global__ void __launch_bounds__(256) sgemm_nn_##BM##x##BN(const float *A, const float *B, float *C, i64 M, \
                                                                         i64 N, i64 K) {                               \
    gemm_tile<BM, BN, BK, TM, TN>((int)M, (int)N, (int)K, RowMajorA{A, (int)K}, RowMajorB{B, (int)N},                  \
                                  StoreC{C, (int)N});                                                                  \
  }
GEMM_CONFIGS(SGEMM_NN)

// linear_<BM>x<BN>(x, w, bias, y, M, N, K, act): y[M×N] = act(x[M×K]·wᵀ +
// bias) with w N×K (bias may be null). Grid (⌈N/BN⌉, ⌈M/BM⌉), 256 threads.
#define LINEAR(BM, BN, BK, TM, TN)                                                                                     \
  extern "C" __global__ void __launch_bounds__(256)                                                                    \
      linear_##BM##x##BN(const float *x, const float *w, const float *bias, float *y, i64 M, i64 N, i64 K, i64 a) {    \
    gemm_tile<BM, BN, BK, TM, TN>((int)M, (int)N, (int)K, RowMajorA{x, (int)K}, TransB{w, (int)K},                     \
                                  StoreLinear{y, bias, (int)N, (int)a});                                              \
  }
GEMM_CONFIGS(LINEAR)

// conv_<BM>x<BN>(x, w, bias, y, N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH,
// DW, G, OH, OW, act): y = act(conv(x, w) + bias) for any groups and
// dilation. Grid (⌈N·OH·OW/BN⌉, ⌈(K/G)/BM⌉, G), 256 threads.
#define CONV(BM, BN, BK, TM, TN)                                                                                       \
  extern "C" __global__ void __launch_bounds__(256)                                                                    \
      conv_##BM##x##BN(const float *x, const float *w, const float *bias, float *y, i64 N, i64 C, i64 H, i64 W, i64 K, \
                       i64 KH, i64 KW, i64 SH, i64 SW, i64 PH, i64 PW, i64 DH, i64 DW, i64 G, i64 OH, i64 OW, i64 a) { \
    ConvGeom g{(int)N, (int)C, (int)H, (int)W, (int)K, (int)KH, (int)KW, (int)SH, (int)SW,                             \
               (int)PH, (int)PW, (int)DH, (int)DW, (int)G, (int)OH, (int)OW};                                          \
    const int grp = blockIdx.z, kg = g.K / g.G, cg = g.C / g.G, kd = cg * g.KH * g.KW;                                 \
    gemm_tile<BM, BN, BK, TM, TN>(kg, g.N * g.OH * g.OW, kd, ConvWeights{w + (i64)grp * kg * kd, kd},                  \
                                  ConvInput{x, g, grp * cg}, StoreConv{y, bias, g.K, g.OH * g.OW, grp * kg, (int)a}); \
  }
GEMM_CONFIGS(CONV)

// linear_small(x, w, bias, y, M, N, K, act): the same as linear for few
// rows (small batches): one warp per output feature n reads w's row n once
// for 8 rows of x, rows blockIdx.y·8 … +7. 256 threads (8 warps) per block,
// grid (⌈N/8⌉, ⌈M/8⌉).
extern "C" __global__ void __launch_bounds__(256)
    linear_small(const float *x, const float *w, const float *bias, float *y, i64 M_, i64 N_, i64 K_, i64 a) {
  const int N = (int)N_, K = (int)K_, m0 = blockIdx.y * 8, M = min((int)M_ - m0, 8);
  const int lane = threadIdx.x & 31, n = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (n >= N)
    return;
  x += (i64)m0 * K;
  y += (i64)m0 * N;
  float acc[8];
#pragma unroll
  for (int m = 0; m < 8; m++)
    acc[m] = 0.f;
  const float *wr = w + (i64)n * K;
  for (int k = lane; k < K; k += 32) {
    const float wv = __ldg(wr + k);
#pragma unroll
    for (int m = 0; m < 8; m++)
      if (m < M)
        acc[m] = fmaf(__ldg(x + (i64)m * K + k), wv, acc[m]);
  }
#pragma unroll
  for (int m = 0; m < 8; m++) {
    float v = acc[m];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
      v += __shfl_xor_sync(0xffffffffu, v, off);
    acc[m] = v;
  }
  if (lane == 0) {
    const float b = bias ? __ldg(bias + n) : 0.f;
#pragma unroll
    for (int m = 0; m < 8; m++)
      if (m < M)
        y[(i64)m * N + n] = act(acc[m] + b, (int)a);
  }
}

// conv_warp(x, w, bias, y, N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW,
// G, OH, OW, act): the same as conv_* for few outputs with long dot
// products (LeNet's conv2 at batch 1: 3,200 outputs of 500 terms), where
// tiles would leave most SMs idle: one warp per output element, its lanes
// splitting the (C/G)·KH·KW terms. 8 warps per 256-thread block,
// grid-stride over the outputs.
extern "C" __global__ void __launch_bounds__(256)
    conv_warp(const float *x, const float *w, const float *bias, float *y, i64 N, i64 C_, i64 H_, i64 W_, i64 K_,
              i64 KH_, i64 KW_, i64 SH, i64 SW, i64 PH, i64 PW, i64 DH, i64 DW, i64 G, i64 OH_, i64 OW_, i64 a) {
  const int C = (int)C_, H = (int)H_, W = (int)W_, K = (int)K_, KH = (int)KH_, KW = (int)KW_, OH = (int)OH_,
            OW = (int)OW_;
  const int kg = K / (int)G, cg = C / (int)G, khw = KH * KW, kd = cg * khw;
  const int lane = threadIdx.x & 31;
  const i64 total = N * K * OH * OW;
  for (i64 o = blockIdx.x * 8 + (threadIdx.x >> 5); o < total; o += (i64)gridDim.x * 8) {
    const int ow = (int)(o % OW), oh = (int)((o / OW) % OH), k = (int)((o / ((i64)OW * OH)) % K);
    const i64 n = o / ((i64)OW * OH * K);
    const int c0 = (k / kg) * cg;
    const float *wr = w + (i64)k * kd;
    const float *xn = x + (n * C + c0) * H * W;
    float acc = 0.f;
    for (int t = lane; t < kd; t += 32) {
      const int c = t / khw, r = t % khw, kh = r / KW, kw = r % KW;
      const int ih = oh * (int)SH - (int)PH + kh * (int)DH, iw = ow * (int)SW - (int)PW + kw * (int)DW;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W)
        acc = fmaf(__ldg(xn + ((i64)c * H + ih) * W + iw), __ldg(wr + t), acc);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
      acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0)
      y[o] = act(acc + (bias ? __ldg(bias + k) : 0.f), (int)a);
  }
}

// depthwise(x, w, bias, y, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH,
// OW, act): groups == C == K, one thread per output element (grid-stride).
extern "C" __global__ void __launch_bounds__(256)
    depthwise(const float *x, const float *w, const float *bias, float *y, i64 N, i64 C_, i64 H_, i64 W_, i64 KH_,
              i64 KW_, i64 SH, i64 SW, i64 PH, i64 PW, i64 DH, i64 DW, i64 OH_, i64 OW_, i64 a) {
  const int C = (int)C_, H = (int)H_, W = (int)W_, KH = (int)KH_, KW = (int)KW_, OH = (int)OH_, OW = (int)OW_;
  const i64 total = N * C * OH * OW;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const int ow = (int)(i % OW), oh = (int)((i / OW) % OH);
    const i64 nc = i / ((i64)OH * OW);
    const int c = (int)(nc % C);
    const float *xp = x + nc * H * W;
    const float *wp = w + (i64)c * KH * KW;
    float acc = bias ? __ldg(bias + c) : 0.f;
    for (int kh = 0; kh < KH; kh++) {
      const int ih = oh * (int)SH - (int)PH + kh * (int)DH;
      if (ih < 0 || ih >= H)
        continue;
      for (int kw = 0; kw < KW; kw++) {
        const int iw = ow * (int)SW - (int)PW + kw * (int)DW;
        if (iw >= 0 && iw < W)
          acc = fmaf(__ldg(xp + ih * W + iw), __ldg(wp + kh * KW + kw), acc);
      }
    }
    y[i] = act(acc, (int)a);
  }
}

// pool(x, y, N·C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, isMax): max or
// average pooling, one thread per output element; the average divides by
// the in-bounds elements of the window, as accel.PoolParams says.
extern "C" __global__ void __launch_bounds__(256) pool(const float *x, float *y, i64 NC, i64 H_, i64 W_, i64 KH, i64 KW,
                                                       i64 SH, i64 SW, i64 PH, i64 PW, i64 OH_, i64 OW_, i64 isMax) {
  const int H = (int)H_, W = (int)W_, OH = (int)OH_, OW = (int)OW_;
  const i64 total = NC * OH * OW;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const int ow = (int)(i % OW), oh = (int)((i / OW) % OH);
    const float *xp = x + (i / ((i64)OH * OW)) * H * W;
    const int h0 = oh * (int)SH - (int)PH, w0 = ow * (int)SW - (int)PW;
    const int h1 = min(h0 + (int)KH, H), w1 = min(w0 + (int)KW, W);
    float m = -INFINITY, s = 0.f;
    int cnt = 0;
    for (int h = max(h0, 0); h < h1; h++)
      for (int w = max(w0, 0); w < w1; w++) {
        const float v = __ldg(xp + h * W + w);
        m = fmaxf(m, v);
        s += v;
        cnt++;
      }
    y[i] = isMax ? m : s / (float)cnt;
  }
}

// global_avgpool(x, y, planes, hw): y[p] = mean of plane p; one warp per
// plane, 8 planes per 256-thread block.
extern "C" __global__ void __launch_bounds__(256) global_avgpool(const float *x, float *y, i64 planes, i64 hw_) {
  const int hw = (int)hw_, lane = threadIdx.x & 31;
  const i64 p = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (p >= planes)
    return;
  const float *xp = x + p * hw;
  float s = 0.f;
  for (int i = lane; i < hw; i += 32)
    s += __ldg(xp + i);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0)
    y[p] = s / (float)hw;
}

// scale_shift(x, scale, shift, y, total, C, hw, act): batch norm in its
// inference form, y = act(x·scale[c] + shift[c]).
extern "C" __global__ void __launch_bounds__(256)
    scale_shift(const float *x, const float *scale, const float *shift, float *y, i64 total, i64 C, i64 hw, i64 a) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const int c = (int)((i / hw) % C);
    y[i] = act(fmaf(x[i], __ldg(scale + c), __ldg(shift + c)), (int)a);
  }
}

// add_act(a, b, y, total, act): y = act(a + b); y may alias a or b.
extern "C" __global__ void __launch_bounds__(256) add_act(const float *a, const float *b, float *y, i64 total, i64 f) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    y[i] = act(a[i] + b[i], (int)f);
}

// act_only(x, y, total, act): y = act(x).
extern "C" __global__ void __launch_bounds__(256) act_only(const float *x, float *y, i64 total, i64 f) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    y[i] = act(x[i], (int)f);
}

// copy_channels(src, dst, N, cnt, hw, srcC, srcOff, dstC, dstOff): copies
// channels [srcOff, srcOff+cnt) of every sample of src (srcC channels) to
// channels [dstOff, dstOff+cnt) of dst (dstC channels); concat and split are
// one launch per part.
extern "C" __global__ void __launch_bounds__(256) copy_channels(const float *src, float *dst, i64 N, i64 cnt, i64 hw,
                                                                i64 srcC, i64 srcOff, i64 dstC, i64 dstOff) {
  const i64 total = N * cnt * hw;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 p = i % hw, c = (i / hw) % cnt, n = i / (hw * cnt);
    dst[(n * dstC + dstOff + c) * hw + p] = src[(n * srcC + srcOff + c) * hw + p];
  }
}

// shuffle(x, y, N, C, hw, G): channel shuffle, output channel i·G + g is
// input channel g·(C/G) + i.
extern "C" __global__ void __launch_bounds__(256) shuffle(const float *x, float *y, i64 N, i64 C, i64 hw, i64 G) {
  const i64 total = N * C * hw, cpg = C / G;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 p = i % hw, co = (i / hw) % C, n = i / (hw * C);
    const i64 g = co % G, ci = co / G;
    y[i] = x[(n * C + g * cpg + ci) * hw + p];
  }
}

// ---------------------------------------------------------------------------
// int8 path (ops that carry accel.QuantWeights). The input is quantized as
// q = clamp(rint(x/s) + z, 0, 255) and stored shifted, q' = q − 128, so that
// both operands are signed bytes for dp4a; with ΣQ the weight row sums,
//
// Σ Q·(q − z) = Σ Q·q' + (128 − z)·ΣQ,
//
// and launch.go precomputes rowScale[o] = Scale[o]·InScale and
// rowCorr[o] = (128 − z)·ΣQ[o].

// The division is in double, rounded half to even, as accel/ref and the
// CPU kernels quantize, so the integer inputs agree exactly.
__device__ __forceinline__ int quant_shifted(float v, float s, int z) {
  const double t = rint((double)v / (double)s);
  const int q = (int)fmin(fmax(t + z, 0.0), 255.0);
  return q - 128;
}

// quant_im2col(x, col, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW,
// kpad, sBits, z): col[j][kd] = q' of the input under tap kd for output
// pixel j (j over N·OH·OW rows of kpad bytes, kd < C·KH·KW; padding taps
// hold q'(0) = z − 128 and kd beyond C·KH·KW hold 0). One thread writes 4
// bytes. A linear layer is the case KH = KW = H = W = 1.
extern "C" __global__ void __launch_bounds__(256)
    quant_im2col(const float *x, int *col, i64 N, i64 C, i64 H_, i64 W_, i64 KH_, i64 KW_, i64 SH, i64 SW, i64 PH,
                 i64 PW, i64 DH, i64 DW, i64 OH_, i64 OW_, i64 kpad, i64 sBits, i64 z_) {
  const int H = (int)H_, W = (int)W_, KH = (int)KH_, KW = (int)KW_, OH = (int)OH_, OW = (int)OW_, z = (int)z_;
  const float s = __int_as_float((int)sBits);
  const int kd = (int)C * KH * KW, words = (int)(kpad / 4);
  const i64 total = N * OH * OW * words;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const int wd = (int)(i % words);
    const i64 j = i / words;
    const int ow = (int)(j % OW), oh = (int)((j / OW) % OH);
    const i64 n = j / ((i64)OH * OW);
    unsigned packed = 0;
#pragma unroll
    for (int b = 0; b < 4; b++) {
      const int k = wd * 4 + b;
      int q = 0;
      if (k < kd) {
        const int c = k / (KH * KW), r = k % (KH * KW), kh = r / KW, kw = r % KW;
        const int ih = oh * (int)SH - (int)PH + kh * (int)DH, iw = ow * (int)SW - (int)PW + kw * (int)DW;
        float v = 0.f;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
          v = __ldg(x + ((n * C + c) * H + ih) * W + iw);
        q = quant_shifted(v, s, z);
      }
      packed |= (unsigned)(q & 0xff) << (8 * b);
    }
    col[i] = (int)packed;
  }
}

// fake_quant(x, y, total, sBits, z): y = s·(q − z), the input as an
// integer kernel sees it; grouped and depthwise int8 convolutions run the
// float kernels on it with dequantized weights (Scale[o]·Q), which is the
// same arithmetic up to float rounding.
extern "C" __global__ void __launch_bounds__(256) fake_quant(const float *x, float *y, i64 total, i64 sBits, i64 z) {
  const float s = __int_as_float((int)sBits);
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    y[i] = s * (float)(quant_shifted(x[i], s, (int)z) + 128 - (int)z);
}

// igemm(wq, col, rowScale, rowCorr, bias, y, M, J, words, ohw, act):
// y[(n·M + m)·ohw + p] = act(rowScale[m]·(Σ_w dp4a(wq[m][w], col[j][w]) +
// rowCorr[m]) + bias[m]) for j = n·ohw + p: an int8 convolution (groups 1)
// or linear layer (ohw = 1) on packed operands, both k-contiguous rows of
// `words` int32 words. 64×64 tiles of 4×4 per thread, 256 threads, grid
// (⌈J/64⌉, ⌈M/64⌉).
extern "C" __global__ void __launch_bounds__(256)
    igemm(const int *wq, const int *col, const float *rowScale, const int *rowCorr, const float *bias, float *y, i64 M_,
          i64 J_, i64 words_, i64 ohw_, i64 a) {
  constexpr int BM = 64, BN = 64, BKW = 8, TM = 4, TN = 4;
  __shared__ int As[BKW][BM + 1];
  __shared__ int Bs[BKW][BN + 1];
  const int M = (int)M_, J = (int)J_, words = (int)words_, ohw = (int)ohw_;
  const int tid = threadIdx.x, tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int m0 = blockIdx.y * BM, j0 = blockIdx.x * BN;
  int acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
      acc[i][j] = 0;
  for (int w0 = 0; w0 < words; w0 += BKW) {
#pragma unroll
    for (int e = tid; e < BM * BKW; e += 256) {
      const int m = e / BKW, w = e % BKW, gm = m0 + m, gw = w0 + w;
      As[w][m] = (gm < M && gw < words) ? __ldg(wq + (i64)gm * words + gw) : 0;
    }
#pragma unroll
    for (int e = tid; e < BN * BKW; e += 256) {
      const int n = e / BKW, w = e % BKW, gj = j0 + n, gw = w0 + w;
      Bs[w][n] = (gj < J && gw < words) ? __ldg(col + (i64)gj * words + gw) : 0;
    }
    __syncthreads();
#pragma unroll
    for (int w = 0; w < BKW; w++) {
      int av[TM], bv[TN];
#pragma unroll
      for (int i = 0; i < TM; i++)
        av[i] = As[w][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; j++)
        bv[j] = Bs[w][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
          acc[i][j] = __dp4a(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; i++) {
    const int m = m0 + ty * TM + i;
    if (m >= M)
      continue;
    const float sc = __ldg(rowScale + m), b = bias ? __ldg(bias + m) : 0.f;
    const int corr = __ldg(rowCorr + m);
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const int jj = j0 + tx * TN + j;
      if (jj >= J)
        continue;
      const int n = jj / ohw, p = jj % ohw;
      y[((i64)n * M + m) * ohw + p] = act(fmaf(sc, (float)(acc[i][j] + corr), b), (int)a);
    }
  }
}
