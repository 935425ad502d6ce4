package cpu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/accetest"
	"hwnas/accel/ref"
)

// kernelNMSE is the tolerance of every kernel test here against the float64
// reference: normalised mean squared error Σ(got−want)²/Σwant² ≤ 1e-10.
// float32 results that differ only by summation order land near 1e-14; one
// wrong element of a few thousand lands above 1e-4.
const kernelNMSE = 1e-10

// eachLevel runs f as a subtest at every level this CPU supports (forced
// with SetISA) and with one and two threads, restoring the level after.
func eachLevel(t *testing.T, f func(t *testing.T, k *Kernels)) {
	t.Helper()
	old := ISA()
	defer SetISA(old)
	for _, level := range SupportedISAs() {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/t%d", level, threads), func(t *testing.T) {
				if err := SetISA(level); err != nil {
					t.Fatal(err)
				}
				f(t, NewKernels(threads))
			})
		}
	}
}

func kRand(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

func checkClose(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if e := accetest.NMSE(got, want); e > kernelNMSE {
		t.Errorf("%s: NMSE %.3g > %.0e", name, e, kernelNMSE)
	}
}

// convShapes covers every path: im2col (odd sizes, stride, padding,
// dilation, groups), the 1×1 direct GEMM, depthwise, a channel multiplier,
// batches below and above the thread count, and several samples per GEMM.
var convShapes = []accel.ConvParams{
	{N: 2, C: 3, H: 7, W: 6, K: 5, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{N: 1, C: 1, H: 28, W: 28, K: 20, KH: 5, KW: 5},
	{N: 3, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5},
	{N: 1, C: 8, H: 20, W: 20, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{N: 2, C: 4, H: 9, W: 11, K: 6, KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadH: 1, PadW: 1, DilH: 2, DilW: 1, Groups: 2},
	{N: 3, C: 6, H: 5, W: 5, K: 9, KH: 3, KW: 3, PadH: 2, PadW: 0, Groups: 3},
	{N: 2, C: 16, H: 9, W: 7, K: 8, KH: 1, KW: 1},
	{N: 1, C: 32, H: 14, W: 14, K: 64, KH: 1, KW: 1, Groups: 2},
	{N: 2, C: 5, H: 9, W: 9, K: 7, KH: 1, KW: 1, StrideH: 2, StrideW: 2},
	{N: 2, C: 3, H: 4, W: 5, K: 2, KH: 1, KW: 1, PadH: 1, PadW: 1},
	{N: 2, C: 8, H: 10, W: 10, K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8},
	{N: 3, C: 7, H: 11, W: 13, K: 7, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 7},
	{N: 1, C: 5, H: 12, W: 9, K: 5, KH: 5, KW: 5, PadH: 4, PadW: 4, DilH: 2, DilW: 2, Groups: 5},
	{N: 2, C: 3, H: 6, W: 5, K: 3, KH: 3, KW: 3, StrideW: 2, PadW: 1, Groups: 3},
	{N: 1, C: 32, H: 56, W: 56, K: 32, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 32},
	{N: 2, C: 4, H: 6, W: 6, K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 4},
	{N: 1, C: 2, H: 3, W: 3, K: 3, KH: 3, KW: 3, PadH: 3, PadW: 3, StrideH: 2, StrideW: 2},
	// Depthwise: more taps than the tap list holds; dilated wide rows.
	{N: 1, C: 2, H: 12, W: 12, K: 2, KH: 9, KW: 9, PadH: 4, PadW: 4, Groups: 2},
	{N: 1, C: 3, H: 20, W: 45, K: 3, KH: 3, KW: 3, PadH: 2, PadW: 2, DilH: 2, DilW: 2, Groups: 3},
	// Depthwise stride 2 over rows wide enough for 16-float vectors.
	{N: 2, C: 3, H: 9, W: 71, K: 3, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 3},
	{N: 1, C: 2, H: 7, W: 80, K: 2, KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadH: 2, PadW: 2, Groups: 2},
	// Depthwise rows at the arm64 level's switch between its 8- and
	// 4-float kernels (16 outputs).
	{N: 1, C: 4, H: 6, W: 16, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 4},
	{N: 1, C: 4, H: 6, W: 15, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 4},
	// Several samples per GEMM (hw_conv_batch > 1) with a remainder batch.
	{N: 11, C: 3, H: 10, W: 10, K: 4, KH: 3, KW: 3},
	{N: 5, C: 6, H: 4, W: 4, K: 3, KH: 1, KW: 1},
	{N: 9, C: 4, H: 6, W: 6, K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 2},
}

func TestConvMatchesReference(t *testing.T) {
	var rk ref.Kernels
	acts := []accel.Act{accel.ActNone, accel.ActReLU, accel.ActReLU6, accel.ActHardSwish}
	eachLevel(t, func(t *testing.T, k *Kernels) {
		r := rand.New(rand.NewPCG(1, 1))
		for i, p := range convShapes {
			nx, nw, ny := p.Sizes()
			x, w, dy := kRand(r, nx), kRand(r, nw), kRand(r, ny)
			for j := range x {
				x[j] *= 4 // reach ReLU6's and hard-swish's saturation
			}
			var bias []float32
			if i%3 != 2 {
				bias = kRand(r, p.K)
			}
			act := acts[i%len(acts)]
			name := fmt.Sprintf("%+v %v", p, act)

			want, got := make([]float32, ny), make([]float32, ny)
			rk.Conv2D(p, x, w, bias, act, want)
			for j := range got {
				got[j] = float32(i) // stale output must be overwritten
			}
			if err := k.Conv2D(p, x, w, bias, act, got); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkClose(t, "conv "+name, got, want)

			wdx, gdx := make([]float32, nx), make([]float32, nx)
			rk.Conv2DBackwardData(p, w, dy, wdx)
			if err := k.Conv2DBackwardData(p, w, dy, gdx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkClose(t, "dx "+name, gdx, wdx)

			wdw, gdw := make([]float32, nw), make([]float32, nw)
			wdb, gdb := make([]float32, p.K), make([]float32, p.K)
			rk.Conv2DBackwardFilter(p, x, dy, wdw, wdb)
			for j := range gdw {
				gdw[j] = 1 // dw is overwritten, not accumulated into
			}
			if err := k.Conv2DBackwardFilter(p, x, dy, gdw, gdb); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkClose(t, "dw "+name, gdw, wdw)
			checkClose(t, "dbias "+name, gdb, wdb)
		}
	})
}

func TestConvBadInput(t *testing.T) {
	k := NewKernels(2)
	p := accel.ConvParams{N: 2, C: 4, H: 5, W: 5, K: 6, KH: 3, KW: 3, Groups: 2}
	nx, nw, ny := p.Sizes()
	f := func(n int) []float32 { return make([]float32, n) }
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"short x", "x has", k.Conv2D(p, f(nx-1), f(nw), nil, accel.ActNone, f(ny))},
		{"long w", "w has", k.Conv2D(p, f(nx), f(nw+1), nil, accel.ActNone, f(ny))},
		{"short y", "y has", k.Conv2D(p, f(nx), f(nw), nil, accel.ActNone, f(ny-1))},
		{"bias", "bias has", k.Conv2D(p, f(nx), f(nw), f(5), accel.ActNone, f(ny))},
		{"act", "unknown activation", k.Conv2D(p, f(nx), f(nw), nil, accel.Act(7), f(ny))},
		{"groups", "divisible", k.Conv2D(accel.ConvParams{N: 1, C: 3, H: 5, W: 5, K: 4, KH: 1, KW: 1, Groups: 2}, f(75), f(6), nil, accel.ActNone, f(100))},
		{"kernel too big", "does not fit", k.Conv2D(accel.ConvParams{N: 1, C: 1, H: 2, W: 2, K: 1, KH: 3, KW: 3}, f(4), f(9), nil, accel.ActNone, f(1))},
		{"bwd data dx", "x has", k.Conv2DBackwardData(p, f(nw), f(ny), f(nx+1))},
		{"bwd data dy", "y has", k.Conv2DBackwardData(p, f(nw), f(ny+1), f(nx))},
		{"bwd filter dw", "w has", k.Conv2DBackwardFilter(p, f(nx), f(ny), f(nw-1), nil)},
		{"bwd filter dbias", "dbias has", k.Conv2DBackwardFilter(p, f(nx), f(ny), f(nw), f(7))},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
}
