package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// randQuant draws int8 weights for rows channels of cols each and an input
// grid covering [−lo, hi].
func randQuant(r *rand.Rand, rows, cols, bits int, zero int32) *accel.QuantWeights {
	q := &accel.QuantWeights{Bits: bits, Q: make([]int8, rows*cols), Scale: make([]float32, rows), InScale: 0.02, InZero: zero}
	qmax := 1<<(bits-1) - 1
	for i := range q.Q {
		q.Q[i] = int8(r.IntN(2*qmax+1) - qmax)
	}
	for i := range q.Scale {
		q.Scale[i] = float32(0.001 + 0.01*r.Float64())
	}
	return q
}

// oneStep is the tolerance of a quantized output: one input quantization
// step through the largest dequantized weight (a rounding tie resolved
// differently in float32 and float64), plus float32 rounding of the sum.
func oneStep(q *accel.QuantWeights, want float32) float64 {
	m := 0.0
	for _, s := range q.Scale {
		m = math.Max(m, float64(s)*127)
	}
	return float64(q.InScale)*m + 1e-5*math.Abs(float64(want)) + 1e-6
}

func TestQLinearQConvMatchReference(t *testing.T) {
	var rk ref.Kernels
	acts := []accel.Act{accel.ActNone, accel.ActReLU, accel.ActReLU6, accel.ActHardSwish}
	linear := [][3]int{{1, 800, 500}, {3, 17, 5}, {64, 300, 100}, {2, 1, 1}, {9, 37, 21}}
	convs := []accel.ConvParams{
		{N: 1, C: 1, H: 28, W: 28, K: 20, KH: 5, KW: 5},
		{N: 2, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5},
		{N: 1, C: 6, H: 9, W: 7, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 1},
		{N: 1, C: 8, H: 5, W: 5, K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8}, // depthwise
		{N: 1, C: 4, H: 6, W: 6, K: 6, KH: 1, KW: 1, Groups: 2},
		{N: 1, C: 3, H: 7, W: 7, K: 2, KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2},
	}
	forEachQLevel(t, func(l qLevel) {
		for ci, sz := range linear {
			n, in, out := sz[0], sz[1], sz[2]
			r := rand.New(rand.NewPCG(uint64(ci), 1))
			for _, bits := range []int{8, 4, 2} {
				q := randQuant(r, out, in, bits, int32(r.IntN(256)))
				x := randSlice(r, n*in)
				bias := randSlice(r, out)
				act := acts[ci%len(acts)]
				want, got := make([]float32, n*out), make([]float32, n*out)
				if err := rk.QLinear(n, in, out, x, q, bias, act, want); err != nil {
					t.Fatal(err)
				}
				if err := qLinear(2, n, in, out, x, q, bias, act, got); err != nil {
					t.Fatalf("%v: %v", l, err)
				}
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > oneStep(q, want[i]) {
						t.Fatalf("%v linear %v bits=%d: y[%d] = %g, want %g", l, sz, bits, i, got[i], want[i])
					}
				}
			}
		}
		for ci, p := range convs {
			r := rand.New(rand.NewPCG(uint64(ci), 2))
			pn := p.Norm()
			nx, nw, ny := pn.Sizes()
			q := randQuant(r, pn.K, nw/pn.K, 8, int32(r.IntN(256)))
			x := randSlice(r, nx)
			var bias []float32
			if ci%2 == 0 {
				bias = randSlice(r, pn.K)
			}
			act := acts[ci%len(acts)]
			want, got := make([]float32, ny), make([]float32, ny)
			if err := rk.QConv2D(p, x, q, bias, act, want); err != nil {
				t.Fatal(err)
			}
			if err := qConv2D(2, p, x, q, bias, act, got); err != nil {
				t.Fatalf("%v: %v", l, err)
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > oneStep(q, want[i]) {
					t.Fatalf("%v conv %+v: y[%d] = %g, want %g", l, p, i, got[i], want[i])
				}
			}
		}
	})
}

func TestPrepareQuantFollowsWeights(t *testing.T) {
	q := &accel.QuantWeights{Bits: 8, Q: []int8{1, 2, 3, 4}, Scale: []float32{1, 1}, InScale: 1}
	if s := prepareQuant(q, 2, 2, 1, 1, 1, packNone).sums; s[0] != 3 || s[1] != 7 {
		t.Fatalf("row sums %v", s)
	}
	q.Q = []int8{-1, -1, 5, 5} // a new slice invalidates the cache
	if s := prepareQuant(q, 2, 2, 1, 1, 1, packNone).sums; s[0] != -2 || s[1] != 10 {
		t.Fatalf("row sums after replacing Q: %v", s)
	}
	// One filter of 2 channels × 1×2 taps: (c, kx) order → (kx, c).
	q.Q = []int8{1, 2, 3, 4}
	p := prepareQuant(q, 1, 4, 1, 2, 1, packVNNI)
	if want := []int8{1, 3, 2, 4}; fmt.Sprint(p.hwc) != fmt.Sprint(want) {
		t.Fatalf("channels-last weights %v, want %v", p.hwc, want)
	}
	// Packed for the broadcast kernel: one quad of column 0, 15 zero columns.
	if len(p.packed) != 64 || fmt.Sprint(p.packed[:4]) != fmt.Sprint([]int8{1, 3, 2, 4}) || p.packed[4] != 0 {
		t.Fatalf("packed weights %v", p.packed)
	}
	// Widened for the AVX2 form (weights beyond ±64): pairs of column 0 at
	// 0 and 2·16; pair-safe ones keep the VNNI packing.
	if p := prepareQuant(q, 1, 4, 1, 2, 1, packAVX2); !p.pairSafe || len(p.packed) != 64 || p.packed16 != nil {
		t.Fatalf("pair-safe weights on AVX2: packed %d, packed16 %d", len(p.packed), len(p.packed16))
	}
	q.Q = []int8{1, 2, 3, -100}
	p = prepareQuant(q, 1, 4, 1, 2, 1, packAVX2)
	if len(p.packed16) != 64 || fmt.Sprint(p.packed16[:2], p.packed16[32:34]) != fmt.Sprint([]int16{1, 3}, []int16{2, -100}) || p.packed16[2] != 0 || p.pairSafe {
		t.Fatalf("packed16 weights %v", p.packed16)
	}
}

func TestQKernelsBadInput(t *testing.T) {
	q := &accel.QuantWeights{Bits: 8, Q: make([]int8, 6), Scale: make([]float32, 2), InScale: 0.1}
	f := func(n int) []float32 { return make([]float32, n) }
	p := accel.ConvParams{N: 1, C: 1, H: 3, W: 3, K: 2, KH: 1, KW: 3}
	bad := func(mod func(q *accel.QuantWeights)) *accel.QuantWeights {
		c := *q
		mod(&c)
		return &c
	}
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"nil q", "no quantized", qLinear(1, 1, 3, 2, f(3), nil, nil, accel.ActNone, f(2))},
		{"bits", "bits", qLinear(1, 1, 3, 2, f(3), bad(func(q *accel.QuantWeights) { q.Bits = 9 }), nil, accel.ActNone, f(2))},
		{"scale", "input scale", qLinear(1, 1, 3, 2, f(3), bad(func(q *accel.QuantWeights) { q.InScale = 0 }), nil, accel.ActNone, f(2))},
		{"zero", "zero point", qLinear(1, 1, 3, 2, f(3), bad(func(q *accel.QuantWeights) { q.InZero = 256 }), nil, accel.ActNone, f(2))},
		{"x", "x has", qLinear(1, 1, 3, 2, f(4), q, nil, accel.ActNone, f(2))},
		{"y", "y has", qLinear(1, 1, 3, 2, f(3), q, nil, accel.ActNone, f(3))},
		{"weights", "q.Q has", qLinear(1, 1, 4, 2, f(4), q, nil, accel.ActNone, f(2))},
		{"bias", "bias", qLinear(1, 1, 3, 2, f(3), q, f(3), accel.ActNone, f(2))},
		{"act", "activation", qLinear(1, 1, 3, 2, f(3), q, nil, accel.Act(7), f(2))},
		{"conv x", "x has", qConv2D(1, p, f(8), q, nil, accel.ActNone, f(6))},
		{"conv shape", "does not fit", qConv2D(1, accel.ConvParams{N: 1, C: 1, H: 2, W: 2, K: 2, KH: 1, KW: 3}, f(4), q, nil, accel.ActNone, f(2))},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.name, tc.err, tc.want)
		}
	}
}

// BenchmarkQConvVsFP32 times int8 and fp32 convolution and Linear at the
// same LeNet-5 shapes, batch 1 and 64, one thread: the int8 target is ≥ 2×
// (≥ 1.5× on AVX2).
//
// int8 weights take the int16 (vpmaddwd) path on AVX2, 7-bit ones the
// vpmaddubsw one (accel.PairSafe); fp32 is the blocked convolution the
// backend compiles. The fc rows compile one linear layer of fc1's size on
// a plain vector the same way. HWNAS_ISA=avx2 measures the AVX2 level.
func BenchmarkQConvVsFP32(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	k1 := NewKernels(1)
	type shape struct {
		name string
		conv accel.ConvParams
	}
	for _, s := range []shape{
		{"conv2-b1", accel.ConvParams{N: 1, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5}},
		{"conv2-b64", accel.ConvParams{N: 64, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5}},
		{"conv3x3-64ch", accel.ConvParams{N: 1, C: 64, H: 28, W: 28, K: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	} {
		nx, nw, ny := s.conv.Sizes()
		x, w, y := randSlice(r, nx), randSlice(r, nw), make([]float32, ny)
		// Both as the backend runs them: the compiled program (blocked
		// layout; int8 on the integer GEMM, qConv2DBlocked).
		cv := s.conv
		cv.N = 0
		plan := &accel.Plan{Name: s.name, Tensors: []accel.Shape{{cv.C, cv.H, cv.W}, {cv.K, s.conv.OutH(), s.conv.OutW()}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: cv, W: w, Act: accel.ActReLU}}}
		run := func(name string, q *accel.QuantWeights) {
			p := *plan
			p.Ops = []accel.Op{plan.Ops[0]}
			p.Ops[0].Quant = q
			prog, err := compileProgram(k1, &p, s.conv.N)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(name+"/"+s.name, func(b *testing.B) {
				for b.Loop() {
					if err := prog.Run(x, y); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		for _, bits := range []int{8, 7} {
			run(fmt.Sprintf("int%d", bits), randQuant(r, s.conv.K, nw/s.conv.K, bits, 3))
		}
		run("fp32", nil)
	}
	// fc1's shape as a plain vector: both compiled (int8 on qLinearFrom,
	// fp32 on the blocked linear kernel).
	for _, n := range []int{1, 64} {
		in, out := 800, 500
		x, w, y := randSlice(r, n*in), randSlice(r, in*out), make([]float32, n*out)
		name := fmt.Sprintf("fc800x500-b%d", n)
		plan := &accel.Plan{Name: name, Tensors: []accel.Shape{{in}, {out}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Name: "fc", Kind: accel.OpLinear, In: []int{0}, Out: []int{1}, W: w, Act: accel.ActReLU}}}
		for _, q := range []*accel.QuantWeights{randQuant(r, out, in, 8, 3), nil} {
			p := *plan
			p.Ops = []accel.Op{plan.Ops[0]}
			p.Ops[0].Quant = q
			prog, err := compileProgram(k1, &p, n)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(map[bool]string{true: "int8/", false: "fp32/"}[q != nil]+name, func(b *testing.B) {
				for b.Loop() {
					if err := prog.Run(x, y); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestQConvPathsMatchReference runs both paths of qConv2D, the integer
// GEMM and the float kernels on grid values, on every shape (whichever
// qConv2D would pick) at 8, 4 and 2 bits, including the depthwise, grouped,
// 1×1 and stem shapes of compact blocks, against the reference.
func TestQConvPathsMatchReference(t *testing.T) {
	var rk ref.Kernels
	convs := []accel.ConvParams{
		{N: 1, C: 1, H: 28, W: 28, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 2, C: 16, H: 14, W: 14, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2, Groups: 16},
		{N: 1, C: 16, H: 9, W: 9, K: 24, KH: 1, KW: 1},
		{N: 1, C: 32, H: 7, W: 7, K: 32, KH: 1, KW: 1, Groups: 4},
		{N: 2, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5},
		{N: 1, C: 3, H: 7, W: 7, K: 2, KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2},
	}
	for ci, p := range convs {
		pn := p.Norm()
		nx, nw, ny := pn.Sizes()
		for _, bits := range []int{8, 4, 2} {
			r := rand.New(rand.NewPCG(uint64(ci), uint64(bits)))
			q := randQuant(r, pn.K, nw/pn.K, bits, int32(r.IntN(256)))
			x, bias := randSlice(r, nx), randSlice(r, pn.K)
			act := []accel.Act{accel.ActNone, accel.ActReLU6}[ci%2]
			want := make([]float32, ny)
			if err := rk.QConv2D(p, x, q, bias, act, want); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"int", "grid"} {
				got := make([]float32, ny)
				var err error
				if path == "int" {
					err = qConv2DInt(2, pn, x, q, bias, act, got)
				} else {
					err = qConv2DGrid(2, pn, x, q, nw/pn.K, bias, act, got)
				}
				if err != nil {
					t.Fatalf("%s %+v: %v", path, p, err)
				}
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > oneStep(q, want[i]) {
						t.Fatalf("%s path, conv %+v bits=%d: y[%d] = %g, want %g", path, p, bits, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestQConvExtremes runs qConv2D at every level on the inputs where 16-bit
// pair sums are closest to overflowing: activations at the top of the
// uint8 grid (255) against weights all +64, all −64 (pair-safe: AVX2's
// vpmaddubsw path) and all ±127 (the int16 vpmaddwd path), which must give
// exactly the reference's result.
func TestQConvExtremes(t *testing.T) {
	var rk ref.Kernels
	p := accel.ConvParams{N: 2, C: 20, H: 8, W: 8, K: 18, KH: 3, KW: 3, PadH: 1, PadW: 1}
	nx, nw, ny := p.Sizes()
	x := make([]float32, nx)
	for i := range x {
		x[i] = 10 // far above the grid: clamps to 255
	}
	forEachQLevel(t, func(l qLevel) {
		for _, w := range []int8{64, -64, 127, -127} {
			q := &accel.QuantWeights{Bits: 8, Q: make([]int8, nw), Scale: make([]float32, p.K), InScale: 0.01, InZero: 0}
			for i := range q.Q {
				q.Q[i] = w
				if i%7 == 3 && w > 64 { // mixed signs beyond ±64
					q.Q[i] = -w
				}
			}
			for i := range q.Scale {
				q.Scale[i] = 1e-3
			}
			want, got := make([]float32, ny), make([]float32, ny)
			if err := rk.QConv2D(p, x, q, nil, accel.ActNone, want); err != nil {
				t.Fatal(err)
			}
			if err := qConv2D(1, p, x, q, nil, accel.ActNone, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Abs(float64(want[i]))+1e-6 {
					t.Fatalf("%v, weights %d: y[%d] = %g, want %g", l, w, i, got[i], want[i])
				}
			}
		}
	})
}

// TestConvDirectMatchesPatches checks, at the levels with a broadcast
// GEMM (AVX-512 VNNI, AVX2; the others have no convDirect), that
// convDirect's accumulators equal integer for integer those of the im2col
// patches through broadcastGemm — on AVX2 in both forms (pair-safe 7-bit
// weights on vpmaddubsw, 8-bit ones widened on vpmaddwd) — over strides,
// dilations, paddings, non-square and 1×1 kernels, pixel counts that are
// not whole tiles, channel counts that are not whole blocks, and 1 and 2
// threads; and that directConv takes exactly the shapes whose taps are
// whole steps.
func TestConvDirectMatchesPatches(t *testing.T) {
	convs := []accel.ConvParams{
		{C: 8, H: 11, W: 9, K: 20, KH: 3, KW: 5, PadH: 1, PadW: 2, StrideH: 2, DilW: 2},
		{C: 4, H: 7, W: 7, K: 17, KH: 1, KW: 1},
		{C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5},
		{C: 6, H: 10, W: 10, K: 9, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{C: 16, H: 15, W: 14, K: 24, KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadH: 2, PadW: 2},
		{C: 12, H: 5, W: 6, K: 33, KH: 3, KW: 3, PadH: 2, PadW: 3, StrideW: 3, DilH: 2},
		// The last K mod 8 (AVX2's widened form) or K mod 16 (VNNI)
		// channels on the step planes (useStepPlanes): K mod 8 = 1…6 and
		// K mod 16 = 1…10, rows of 4 to 32 output pixels, strides 1 to
		// 3, dilation, one step per pixel.
		{C: 10, H: 6, W: 20, K: 21, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{C: 2, H: 7, W: 33, K: 11, KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadW: 2},
		{C: 4, H: 5, W: 16, K: 10, KH: 3, KW: 2, StrideW: 3, DilW: 3, PadW: 1},
		{C: 8, H: 4, W: 10, K: 14, KH: 3, KW: 3},
		{C: 6, H: 9, W: 28, K: 12, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, DilW: 2},
		{C: 4, H: 4, W: 33, K: 26, KH: 2, KW: 2},
		{C: 12, H: 7, W: 36, K: 21, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadW: 2, DilW: 2},
	}
	// Convolutions on the step planes, per level: ten of these have a K
	// mod 8 and rows that pay at AVX2 (8-bit weights only: the widened
	// form), five a K mod 16 that pays on VNNI (both widths).
	planar := map[packing]int{}
	wantPlanar := map[packing]int{packAVX2: 10, packVNNI: 10}
	checked := 0
	forEachQLevel(t, func(l qLevel) {
		pack := levelPacking()
		if pack == packNone {
			return
		}
		planar[pack] -= wantPlanar[pack]
		for ci, p := range convs {
			pn := p.Norm()
			kk := pn.C * pn.KH * pn.KW
			oh, ow := pn.OutH(), pn.OutW()
			pix, k4 := oh*ow, (kk+3)&^3
			for _, bits := range []int{8, 7} {
				r := rand.New(rand.NewPCG(uint64(ci), uint64(bits)))
				q := randQuant(r, pn.K, kk, bits, int32(r.IntN(256)))
				prep := prepareQuant(q, pn.K, kk, pn.KH, pn.KW, 1, pack)
				wantDirect := pn.C%4 == 0 || (pack == packAVX2 && bits == 8 && pn.C%2 == 0)
				if got := directConv(prep, pn); got != wantDirect {
					t.Fatalf("%v, conv %+v, %d bits: directConv = %v, want %v", l, p, bits, got, wantDirect)
				}
				if !wantDirect {
					continue
				}
				xt := make([]uint8, pn.H*pn.W*pn.C)
				for i := range xt {
					xt[i] = uint8(r.IntN(256))
				}
				col := getPatches(prep.wide(), pix*k4)
				want := make([]int32, pix*pn.K)
				im2colHWC(xt, pn, 0, oh, ow, q.InZero, col, k4)
				broadcastGemm(1, prep, 0, pix, pn.K, k4, col, k4, want, pn.K)
				col.put()
				checked++
				// One convDirect for both runs, as for the images of a
				// batch: its border is made once.
				d := newConvDirect(prep, pn, oh, ow, q.InZero)
				if d.planes != nil {
					planar[pack]++
				}
				for _, threads := range []int{1, 2} {
					got := make([]int32, pix*pn.K)
					d.run(threads, xt, got)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%v, conv %+v, %d bits, %d threads: acc[%d] (pixel %d, channel %d) = %d, want %d",
								l, p, bits, threads, i, i/pn.K, i%pn.K, got[i], want[i])
						}
					}
				}
				d.put()
			}
		}
	})
	t.Logf("%d convolutions checked (levels %v)", checked, qLevels())
	for pack, extra := range planar {
		if extra != 0 {
			t.Errorf("packing %d: %+d convolutions on the step planes against the %d expected per level", pack, extra, wantPlanar[pack])
		}
	}
}
