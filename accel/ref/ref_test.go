package ref

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
)

var k Kernels

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// gradCheck compares the analytic gradient g of loss() with respect to v
// with central differences (step eps) at every element of v. loss reads v.
func gradCheck(t *testing.T, name string, v, g []float32, eps, tol float64, loss func() float64) {
	t.Helper()
	if len(v) != len(g) {
		t.Fatalf("%s: %d values, %d gradients", name, len(v), len(g))
	}
	bad := 0
	for i := range v {
		old := v[i]
		v[i] = old + float32(eps)
		lp := loss()
		v[i] = old - float32(eps)
		lm := loss()
		v[i] = old
		num := (lp - lm) / (2 * eps)
		if math.Abs(num-float64(g[i])) > tol*(1+math.Abs(num)) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g", name, i, g[i], num)
			}
		}
	}
}

func TestHandComputed(t *testing.T) {
	// 1×1×3×3 input 1..9, 2×2 kernel [1 0; 0 -1], bias 0.5: y = x[i,j]-x[i+1,j+1]+0.5 = -3.5.
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	y := make([]float32, 4)
	p := accel.ConvParams{N: 1, C: 1, H: 3, W: 3, K: 1, KH: 2, KW: 2}
	if err := k.Conv2D(p, x, []float32{1, 0, 0, -1}, []float32{0.5}, accel.ActNone, y); err != nil {
		t.Fatal(err)
	}
	want := []float32{-3.5, -3.5, -3.5, -3.5}
	assertEq(t, "conv", y, want)

	// Padding 1, stride 2, 3×3 all-ones kernel on the same input: window sums
	// at corners (0,0),(0,2),(2,0),(2,2) of the padded grid.
	p = accel.ConvParams{N: 1, C: 1, H: 3, W: 3, K: 1, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	ones := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	if err := k.Conv2D(p, x, ones, nil, accel.ActNone, y); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "conv stride/pad", y, []float32{12, 16, 24, 28})

	// Dilation 2 on 3×3 with a 2×2 kernel of ones: the four corners 1+3+7+9.
	p = accel.ConvParams{N: 1, C: 1, H: 3, W: 3, K: 1, KH: 2, KW: 2, DilH: 2, DilW: 2}
	if err := k.Conv2D(p, x, []float32{1, 1, 1, 1}, nil, accel.ActNone, y[:1]); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "conv dilation", y[:1], []float32{20})

	// Groups 2: channel 0 → output 0 times 2, channel 1 → output 1 times -1.
	p = accel.ConvParams{N: 1, C: 2, H: 1, W: 2, K: 2, KH: 1, KW: 1, Groups: 2}
	y4 := make([]float32, 4)
	if err := k.Conv2D(p, []float32{1, 2, 3, 4}, []float32{2, -1}, []float32{0, 10}, accel.ActReLU6, y4); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "conv groups+relu6", y4, []float32{2, 4, 6, 6})

	// Activations.
	y5 := make([]float32, 5)
	in := []float32{-4, -1, 0, 2, 7}
	k.BiasAct(1, 1, 5, in, nil, accel.ActHardSwish, y5)
	assertEq(t, "hardswish", y5, []float32{0, -1.0 / 3, 0, 2 * 5.0 / 6, 7})
	k.BiasAct(1, 1, 5, in, []float32{1}, accel.ActReLU, y5)
	assertEq(t, "bias+relu", y5, []float32{0, 0, 1, 3, 8})

	// Max pool 2×2 stride 2 on 3×3 with padding 0 → 1 output per... use stride 1.
	pp := accel.PoolParams{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, StrideH: 1, StrideW: 1}
	am := make([]int32, 4)
	if err := k.MaxPool2D(pp, x, y, am); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "maxpool", y, []float32{5, 6, 8, 9})
	if am[0] != 4 || am[3] != 8 {
		t.Errorf("argmax %v, want [4 5 7 8]", am)
	}
	// Avg pool 2×2 stride 2 pad 1: windows hold 1, 2 (cols 1..2 → 2,3), 2 (4,7), 4 elements.
	pp = accel.PoolParams{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	if err := k.AvgPool2D(pp, x, y); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "avgpool", y, []float32{1, 2.5, 5.5, 7})

	// Softmax CE: logits [0, ln 3] → probs [1/4, 3/4]; label 1 → loss ln(4/3).
	probs, dl := make([]float32, 2), make([]float32, 2)
	loss, err := k.SoftmaxCrossEntropy(1, 2, []float32{0, float32(math.Log(3))}, []int32{1}, probs, dl)
	if err != nil {
		t.Fatal(err)
	}
	assertEq(t, "probs", probs, []float32{0.25, 0.75})
	assertEq(t, "dlogits", dl, []float32{0.25, -0.25})
	if math.Abs(float64(loss)-math.Log(4.0/3)) > 1e-6 {
		t.Errorf("loss %v, want %v", loss, math.Log(4.0/3))
	}
	// Huge logits must not overflow.
	loss, err = k.SoftmaxCrossEntropy(1, 2, []float32{1000, 1000}, []int32{0}, probs, nil)
	if err != nil || math.Abs(float64(loss)-math.Ln2) > 1e-6 {
		t.Errorf("loss %v err %v, want ln 2", loss, err)
	}

	// Sgemm 2×3 · 3×2 with transposes and beta.
	a := []float32{1, 2, 3, 4, 5, 6} // 2×3
	b := []float32{1, 0, 0, 1, 1, 1} // 3×2
	c := []float32{1, 1, 1, 1}
	if err := k.Sgemm(false, false, 2, 2, 3, 2, a, 3, b, 2, 1, c, 2); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "sgemm", c, []float32{9, 11, 21, 23})
	// Aᵀ stored 3×2 (the columns of a), Bᵀ stored 2×3; beta 0 ignores NaN in C.
	at := []float32{1, 4, 2, 5, 3, 6}
	bt := []float32{1, 0, 1, 0, 1, 1}
	c = []float32{float32(math.NaN()), 0, 0, 0}
	if err := k.Sgemm(true, true, 2, 2, 3, 1, at, 2, bt, 3, 0, c, 2); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "sgemm transposed", c, []float32{4, 5, 10, 11})
}

func assertEq(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6*(1+math.Abs(float64(want[i]))) {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

var convCases = []accel.ConvParams{
	{N: 2, C: 3, H: 5, W: 6, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{N: 1, C: 4, H: 7, W: 5, K: 6, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, DilH: 1, DilW: 2, Groups: 2},
	{N: 2, C: 3, H: 6, W: 6, K: 3, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 3},
	{N: 1, C: 5, H: 4, W: 3, K: 2, KH: 1, KW: 1},
}

func TestConvGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range convCases {
		nx, nw, ny := p.Sizes()
		x, w, b := randSlice(r, nx), randSlice(r, nw), randSlice(r, p.K)
		rw := randSlice(r, ny) // L = Σ rw·y
		y := make([]float32, ny)
		loss := func() float64 {
			if err := k.Conv2D(p, x, w, b, accel.ActNone, y); err != nil {
				t.Fatal(err)
			}
			return dot(rw, y)
		}
		dx, dw, db := make([]float32, nx), make([]float32, nw), make([]float32, p.K)
		if err := k.Conv2DBackwardData(p, w, rw, dx); err != nil {
			t.Fatal(err)
		}
		if err := k.Conv2DBackwardFilter(p, x, rw, dw, db); err != nil {
			t.Fatal(err)
		}
		gradCheck(t, "dx", x, dx, 1e-2, 1e-3, loss)
		gradCheck(t, "dw", w, dw, 1e-2, 1e-3, loss)
		gradCheck(t, "dbias", b, db, 1e-2, 1e-3, loss)
	}
}

func TestPoolGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range []accel.PoolParams{
		{N: 2, C: 2, H: 5, W: 5, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
		{N: 1, C: 3, H: 7, W: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1},
	} {
		nx, ny := p.N*p.C*p.H*p.W, p.N*p.C*p.OutH()*p.OutW()
		// Distinct values spaced by more than 2·eps so the argmax is stable.
		x := make([]float32, nx)
		for i, j := range r.Perm(nx) {
			x[i] = float32(j) * 0.1
		}
		rw, y, am := randSlice(r, ny), make([]float32, ny), make([]int32, ny)
		dx := make([]float32, nx)
		max := func() float64 { k.MaxPool2D(p, x, y, am); return dot(rw, y) }
		max()
		if err := k.MaxPool2DBackward(p, rw, am, dx); err != nil {
			t.Fatal(err)
		}
		gradCheck(t, "maxpool dx", x, dx, 1e-2, 1e-3, max)
		avg := func() float64 { k.AvgPool2D(p, x, y); return dot(rw, y) }
		if err := k.AvgPool2DBackward(p, rw, dx); err != nil {
			t.Fatal(err)
		}
		gradCheck(t, "avgpool dx", x, dx, 1e-2, 1e-3, avg)
	}
	x, rw := randSlice(r, 2*3*5), randSlice(r, 6)
	y, dx := make([]float32, 6), make([]float32, 30)
	if err := k.GlobalAvgPoolBackward(2, 3, 5, rw, dx); err != nil {
		t.Fatal(err)
	}
	gradCheck(t, "gap dx", x, dx, 1e-2, 1e-3, func() float64 { k.GlobalAvgPool(2, 3, 5, x, y); return dot(rw, y) })
}

func TestActGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, c, hw = 2, 3, 7
	for _, act := range []accel.Act{accel.ActNone, accel.ActReLU, accel.ActReLU6, accel.ActHardSwish} {
		// Pre-activations in (−8, 8), kept 0.05 away from the kinks.
		x := make([]float32, n*c*hw)
		for i := range x {
			for {
				v := r.Float64()*16 - 8
				if math.Abs(v) > 0.05 && math.Abs(v-6) > 0.05 && math.Abs(math.Abs(v)-3) > 0.05 {
					x[i] = float32(v)
					break
				}
			}
		}
		bias := make([]float32, c)
		rw, y := randSlice(r, len(x)), make([]float32, len(x))
		loss := func() float64 { k.BiasAct(n, c, hw, x, bias, act, y); return dot(rw, y) }
		loss()
		dx := make([]float32, len(x))
		if err := k.ActBackward(act, x, y, rw, dx); err != nil {
			t.Fatal(err)
		}
		gradCheck(t, act.String()+" dx", x, dx, 1e-2, 1e-3, loss)
		if act == accel.ActReLU || act == accel.ActReLU6 {
			dx2 := make([]float32, len(x))
			if err := k.ActBackward(act, nil, y, rw, dx2); err != nil {
				t.Fatal(err)
			}
			assertEq(t, act.String()+" from post", dx2, dx)
		}
		// dbias = BiasBackward(dy·act').
		db := make([]float32, c)
		if err := k.BiasBackward(n, c, hw, dx, db); err != nil {
			t.Fatal(err)
		}
		gradCheck(t, act.String()+" dbias", bias, db, 1e-2, 1e-3, loss)
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, c = 4, 5
	logits := randSlice(r, n*c)
	for i := range logits {
		logits[i] *= 4
	}
	labels := []int32{0, 4, 2, 2}
	probs, dl := make([]float32, n*c), make([]float32, n*c)
	if _, err := k.SoftmaxCrossEntropy(n, c, logits, labels, probs, dl); err != nil {
		t.Fatal(err)
	}
	for row := 0; row < n; row++ {
		var s float64
		for _, p := range probs[row*c : (row+1)*c] {
			s += float64(p)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("row %d probabilities sum to %v", row, s)
		}
	}
	gradCheck(t, "dlogits", logits, dl, 1e-2, 2e-3, func() float64 {
		l, _ := k.SoftmaxCrossEntropy(n, c, logits, labels, probs, nil)
		return float64(l)
	})
}

func TestSgemmAgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const m, n, kk = 5, 7, 3
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		lda, ldb := kk+1, n+2
		if tr[0] {
			lda = m + 1
		}
		if tr[1] {
			ldb = kk + 2
		}
		a, b := randSlice(r, 10*lda), randSlice(r, 10*ldb)
		c0 := randSlice(r, m*(n+1))
		c := append([]float32(nil), c0...)
		if err := k.Sgemm(tr[0], tr[1], m, n, kk, 0.5, a, lda, b, ldb, -2, c, n+1); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < kk; p++ {
					av, bv := a[i*lda+p], b[p*ldb+j]
					if tr[0] {
						av = a[p*lda+i]
					}
					if tr[1] {
						bv = b[j*ldb+p]
					}
					s += float64(av) * float64(bv)
				}
				want := 0.5*s - 2*float64(c0[i*(n+1)+j])
				if math.Abs(float64(c[i*(n+1)+j])-want) > 1e-5 {
					t.Fatalf("trans %v: c[%d,%d] = %v, want %v", tr, i, j, c[i*(n+1)+j], want)
				}
			}
		}
	}
}

func TestCompressedMatchesDense(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := accel.ConvParams{N: 2, C: 4, H: 5, W: 5, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 2}
	nx, nw, ny := p.Sizes()
	x, w, b := randSlice(r, nx), randSlice(r, nw), randSlice(r, p.K)
	cols := nw / p.K
	// Sparse: keep about half the weights.
	s := &accel.SparseWeights{Rows: p.K, Cols: cols, RowPtr: []int32{0}}
	dense := make([]float32, nw)
	for row := 0; row < p.K; row++ {
		for c := 0; c < cols; c++ {
			if r.IntN(2) == 0 {
				s.ColIdx = append(s.ColIdx, int32(c))
				s.Val = append(s.Val, w[row*cols+c])
				dense[row*cols+c] = w[row*cols+c]
			}
		}
		s.RowPtr = append(s.RowPtr, int32(len(s.Val)))
	}
	want, got := make([]float32, ny), make([]float32, ny)
	k.Conv2D(p, x, dense, b, accel.ActReLU, want)
	if err := k.SpConv2D(p, x, s, b, accel.ActReLU, got); err != nil {
		t.Fatal(err)
	}
	assertEq(t, "spconv", got, want)
	s.ColIdx[0] = int32(cols)
	if err := k.SpConv2D(p, x, s, b, accel.ActReLU, got); err == nil || !strings.Contains(err.Error(), "column index") {
		t.Errorf("bad column index: err %v", err)
	}

	// Int8 linear, by hand: x = [0.5, −0.26], InScale 0.1, InZero 128 →
	// q = [133, 125] (−2.6 rounds to −3) → x̂ = [0.5, −0.3]; W = 0.5·[[2, −4]]
	// → y = 0.5·(2·0.5 + (−4)(−0.3)) + 1 = 2.1.
	q := &accel.QuantWeights{Bits: 8, Q: []int8{2, -4}, Scale: []float32{0.5}, InScale: 0.1, InZero: 128}
	y := make([]float32, 1)
	if err := k.QLinear(1, 2, 1, []float32{0.5, -0.26}, q, []float32{1}, accel.ActNone, y); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(y[0])-2.1) > 1e-6 {
		t.Errorf("qlinear %v, want 2.1", y[0])
	}
	// Inputs beyond the grid clamp to q = 255: (255−128)·0.1 = 12.7.
	xq := QuantizeInput(q, []float32{100, -100})
	if math.Abs(xq[0]-12.7) > 1e-6 || math.Abs(xq[1]+12.8) > 1e-6 {
		t.Errorf("clamped input %v, want [12.7 −12.8]", xq)
	}
	q.InScale = 0
	if err := k.QLinear(1, 2, 1, []float32{0.5, -0.26}, q, nil, accel.ActNone, y); err == nil {
		t.Error("zero input scale: want an error")
	}
}

func TestBadInputs(t *testing.T) {
	p := accel.ConvParams{N: 1, C: 2, H: 4, W: 4, K: 3, KH: 3, KW: 3}
	nx, nw, ny := p.Sizes()
	pp := accel.PoolParams{N: 1, C: 2, H: 4, W: 4, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	f := func(n int) []float32 { return make([]float32, n) }
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"conv short x", "x has", k.Conv2D(p, f(nx-1), f(nw), nil, accel.ActNone, f(ny))},
		{"conv long y", "y has", k.Conv2D(p, f(nx), f(nw), nil, accel.ActNone, f(ny+1))},
		{"conv bias", "bias", k.Conv2D(p, f(nx), f(nw), f(2), accel.ActNone, f(ny))},
		{"conv act", "activation", k.Conv2D(p, f(nx), f(nw), nil, accel.Act(9), f(ny))},
		{"conv groups", "divisible", k.Conv2D(accel.ConvParams{N: 1, C: 3, H: 4, W: 4, K: 2, KH: 1, KW: 1, Groups: 2}, f(48), f(3), nil, accel.ActNone, f(32))},
		{"conv bwd data", "w has", k.Conv2DBackwardData(p, f(nw+1), f(ny), f(nx))},
		{"conv bwd filter", "dbias", k.Conv2DBackwardFilter(p, f(nx), f(ny), f(nw), f(1))},
		{"maxpool argmax", "argmax", k.MaxPool2D(pp, f(32), f(8), make([]int32, 7))},
		{"maxpool bwd argmax range", "outside", k.MaxPool2DBackward(pp, f(8), []int32{0, 0, 0, 0, 0, 0, 0, 16}, f(32))},
		{"avgpool y", "y has", k.AvgPool2D(pp, f(32), f(7))},
		{"pool window", "window", k.AvgPool2D(accel.PoolParams{N: 1, C: 1, H: 2, W: 2, KH: 3, KW: 3}, f(4), f(1))},
		{"gap", "y has", k.GlobalAvgPool(1, 2, 3, f(6), f(3))},
		{"biasact", "bias", k.BiasAct(1, 2, 3, f(6), f(3), accel.ActNone, f(6))},
		{"act bwd", "needs pre", k.ActBackward(accel.ActHardSwish, nil, f(3), f(3), f(3))},
		{"bias bwd", "dbias", k.BiasBackward(1, 2, 3, f(6), f(3))},
		{"sgemm ld", "leading", k.Sgemm(false, false, 2, 2, 2, 1, f(4), 1, f(4), 2, 0, f(4), 2)},
		{"sgemm short", "c has", k.Sgemm(false, false, 2, 2, 2, 1, f(4), 2, f(4), 2, 0, f(3), 2)},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
	_, err := k.SoftmaxCrossEntropy(2, 3, f(6), []int32{0, 3}, f(6), nil)
	if err == nil || !strings.Contains(err.Error(), "label[1]=3") {
		t.Errorf("bad label: err %v", err)
	}
}
