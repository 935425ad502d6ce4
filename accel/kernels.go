package accel

import "fmt"

// Act is an element-wise activation that kernels can fuse after a bias add.
type Act int

const (
	ActNone      Act = iota // identity
	ActReLU                 // max(x, 0)
	ActReLU6                // min(max(x, 0), 6)
	ActHardSwish            // x·relu6(x+3)/6
)

var actNames = [...]string{"none", "relu", "relu6", "hardswish"}

func (a Act) String() string {
	if a >= 0 && int(a) < len(actNames) {
		return actNames[a]
	}
	return fmt.Sprintf("act(%d)", int(a))
}

// ParseAct turns a name ("relu", "relu6", "hardswish", "none") into an Act.
func ParseAct(s string) (Act, error) {
	for i, n := range actNames {
		if n == s {
			return Act(i), nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (known: none, relu, relu6, hardswish)", s)
}

// ConvParams describes a 2-D convolution over NCHW tensors.
//
// Input x is N×C×H×W, weights w are K×(C/Groups)×KH×KW, bias has K entries
// (or is nil), output y is N×K×OutH×OutW with
//
//	OutH = (H + 2·PadH − DilH·(KH−1) − 1)/StrideH + 1
//
// and likewise for OutW. Zero StrideH/StrideW/DilH/DilW/Groups mean 1.
type ConvParams struct {
	N, C, H, W       int
	K                int
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
	Groups           int
}

// outSize is the number of window positions along one axis: span is the
// padded input length minus the window's extent; a negative span (the
// window does not fit) gives 0, never the 1 that truncating division would.
func outSize(span, stride int) int {
	if span < 0 {
		return 0
	}
	return span/stride + 1
}

func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// Norm returns p with zero strides, dilations and groups replaced by 1.
func (p ConvParams) Norm() ConvParams {
	p.StrideH, p.StrideW = one(p.StrideH), one(p.StrideW)
	p.DilH, p.DilW = one(p.DilH), one(p.DilW)
	p.Groups = one(p.Groups)
	return p
}

// OutH is the output height.
func (p ConvParams) OutH() int {
	p = p.Norm()
	return outSize(p.H+2*p.PadH-p.DilH*(p.KH-1)-1, p.StrideH)
}

// OutW is the output width.
func (p ConvParams) OutW() int {
	p = p.Norm()
	return outSize(p.W+2*p.PadW-p.DilW*(p.KW-1)-1, p.StrideW)
}

// Depthwise reports whether every group has one input and one output channel.
func (p ConvParams) Depthwise() bool {
	p = p.Norm()
	return p.Groups == p.C && p.K == p.C && p.Groups > 1
}

// Sizes returns the element counts of x, w and y.
func (p ConvParams) Sizes() (x, w, y int) {
	p = p.Norm()
	return p.N * p.C * p.H * p.W, p.K * (p.C / p.Groups) * p.KH * p.KW, p.N * p.K * p.OutH() * p.OutW()
}

// MACs is the number of multiply-accumulates of one forward pass.
func (p ConvParams) MACs() int64 {
	p = p.Norm()
	return int64(p.N) * int64(p.K) * int64(p.OutH()) * int64(p.OutW()) * int64(p.C/p.Groups) * int64(p.KH) * int64(p.KW)
}

// Validate checks that the parameters describe a computable convolution.
func (p ConvParams) Validate() error {
	q := p.Norm()
	switch {
	case q.N <= 0 || q.C <= 0 || q.H <= 0 || q.W <= 0 || q.K <= 0 || q.KH <= 0 || q.KW <= 0:
		return fmt.Errorf("conv: sizes must be positive (N=%d C=%d H=%d W=%d K=%d KH=%d KW=%d)", q.N, q.C, q.H, q.W, q.K, q.KH, q.KW)
	case q.StrideH < 0 || q.StrideW < 0 || q.PadH < 0 || q.PadW < 0 || q.DilH < 0 || q.DilW < 0 || q.Groups < 0:
		return fmt.Errorf("conv: negative stride, padding, dilation or groups")
	case q.C%q.Groups != 0 || q.K%q.Groups != 0:
		return fmt.Errorf("conv: %d input and %d output channels are not divisible by %d groups", q.C, q.K, q.Groups)
	case q.OutH() <= 0 || q.OutW() <= 0:
		return fmt.Errorf("conv: %dx%d kernel (dilation %dx%d, padding %dx%d) does not fit a %dx%d input", q.KH, q.KW, q.DilH, q.DilW, q.PadH, q.PadW, q.H, q.W)
	}
	return nil
}

// PoolParams describes max or average pooling over NCHW tensors. Average
// pooling divides by the number of in-bounds elements of each window
// (padding is not counted).
type PoolParams struct {
	N, C, H, W       int
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
}

// OutH is the output height.
func (p PoolParams) OutH() int { return outSize(p.H+2*p.PadH-p.KH, one(p.StrideH)) }

// OutW is the output width.
func (p PoolParams) OutW() int { return outSize(p.W+2*p.PadW-p.KW, one(p.StrideW)) }

// Validate checks that the parameters describe a computable pooling.
func (p PoolParams) Validate() error {
	switch {
	case p.N <= 0 || p.C <= 0 || p.H <= 0 || p.W <= 0 || p.KH <= 0 || p.KW <= 0:
		return fmt.Errorf("pool: sizes must be positive (N=%d C=%d H=%d W=%d KH=%d KW=%d)", p.N, p.C, p.H, p.W, p.KH, p.KW)
	case p.StrideH < 0 || p.StrideW < 0 || p.PadH < 0 || p.PadW < 0:
		return fmt.Errorf("pool: negative stride or padding")
	case p.PadH >= p.KH || p.PadW >= p.KW:
		return fmt.Errorf("pool: padding %dx%d must be smaller than the %dx%d window", p.PadH, p.PadW, p.KH, p.KW)
	case p.OutH() <= 0 || p.OutW() <= 0:
		return fmt.Errorf("pool: %dx%d window does not fit a %dx%d input", p.KH, p.KW, p.H, p.W)
	}
	return nil
}

// Kernels are the host (float32, NCHW, row-major) compute kernels that
// training and host inference run on. Every method checks the lengths of its
// slices against its parameters and returns an error instead of reading or
// writing out of bounds. Outputs are overwritten, never accumulated into,
// unless the doc says otherwise.
type Kernels interface {
	// Sgemm computes C = alpha·op(A)·op(B) + beta·C where op(A) is m×k,
	// op(B) is k×n and C is m×n, all row-major with leading dimensions
	// lda, ldb, ldc. op(X) is Xᵀ when the matching trans flag is set.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error

	// Conv2D computes y = act(conv(x, w) + bias). bias may be nil.
	// Implementations pick a path by shape (1×1 direct, depthwise,
	// im2col+GEMM); the result does not depend on the path.
	Conv2D(p ConvParams, x, w, bias []float32, act Act, y []float32) error
	// Conv2DBackwardData computes dx = ∂L/∂x from dy = ∂L/∂y (pre-activation).
	Conv2DBackwardData(p ConvParams, w, dy, dx []float32) error
	// Conv2DBackwardFilter computes dw = ∂L/∂w and, when dbias is not nil,
	// dbias = Σ dy over N, H, W.
	Conv2DBackwardFilter(p ConvParams, x, dy, dw, dbias []float32) error

	// MaxPool2D writes the window maxima to y and, when argmax is not nil,
	// the flat index (within one N×C plane) of each maximum.
	MaxPool2D(p PoolParams, x, y []float32, argmax []int32) error
	// MaxPool2DBackward scatters dy into dx (which it first zeroes) at argmax.
	MaxPool2DBackward(p PoolParams, dy []float32, argmax []int32, dx []float32) error
	AvgPool2D(p PoolParams, x, y []float32) error
	AvgPool2DBackward(p PoolParams, dy, dx []float32) error
	// GlobalAvgPool reduces each of the n·c planes of hw elements to its mean.
	GlobalAvgPool(n, c, hw int, x, y []float32) error
	GlobalAvgPoolBackward(n, c, hw int, dy, dx []float32) error

	// BiasAct computes y = act(x + bias[channel]) for x of n×c×hw elements;
	// bias may be nil, and y may alias x.
	BiasAct(n, c, hw int, x, bias []float32, act Act, y []float32) error
	// ActBackward computes dx = dy·act'(·) given the activation's output y
	// (ReLU, ReLU6) or input x (hard-swish): pre is the pre-activation
	// input, post the output; kernels use whichever they need. dx may alias dy.
	ActBackward(act Act, pre, post, dy, dx []float32) error
	// BiasBackward computes dbias[c] = Σ dy over n and hw.
	BiasBackward(n, c, hw int, dy, dbias []float32) error

	// SoftmaxCrossEntropy computes, for n rows of k logits and integer
	// labels, probs = softmax(logits), the mean cross-entropy loss, and
	// dlogits = (probs − onehot(labels))/n. dlogits may be nil.
	SoftmaxCrossEntropy(n, k int, logits []float32, labels []int32, probs, dlogits []float32) (loss float32, err error)
}
