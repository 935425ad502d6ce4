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

var poolShapes = []accel.PoolParams{
	{N: 2, C: 3, H: 8, W: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{N: 1, C: 4, H: 7, W: 9, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{N: 3, C: 2, H: 9, W: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	{N: 2, C: 5, H: 6, W: 7, KH: 3, KW: 2, StrideH: 1, StrideW: 1, PadH: 2, PadW: 1},
	{N: 1, C: 3, H: 5, W: 5, KH: 5, KW: 5},
	{N: 64, C: 20, H: 24, W: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{N: 2, C: 50, H: 8, W: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	// 2×2 stride 2 over wide rows: several vectors per output row, a
	// partial last one, odd width and height (last column and row unused).
	{N: 2, C: 3, H: 10, W: 50, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{N: 1, C: 2, H: 5, W: 35, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{N: 1, C: 2, H: 4, W: 2, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
}

func TestPoolMatchesReference(t *testing.T) {
	var rk ref.Kernels
	eachLevel(t, func(t *testing.T, k *Kernels) {
		r := rand.New(rand.NewPCG(2, 2))
		for _, p := range poolShapes {
			name := fmt.Sprintf("%+v", p)
			nx, ny := p.N*p.C*p.H*p.W, p.N*p.C*p.OutH()*p.OutW()
			x, dy := kRand(r, nx), kRand(r, ny)
			want, got := make([]float32, ny), make([]float32, ny)
			wam, gam := make([]int32, ny), make([]int32, ny)
			rk.MaxPool2D(p, x, want, wam)
			if err := k.MaxPool2D(p, x, got, gam); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkClose(t, "maxpool "+name, got, want)
			for i := range wam {
				if wam[i] != gam[i] {
					t.Fatalf("maxpool %s: argmax[%d] = %d, want %d", name, i, gam[i], wam[i])
				}
			}
			if err := k.MaxPool2D(p, x, got, nil); err != nil {
				t.Fatalf("maxpool without argmax: %v", err)
			}
			checkClose(t, "maxpool (no argmax) "+name, got, want)

			wdx, gdx := make([]float32, nx), kRand(r, nx)
			rk.MaxPool2DBackward(p, dy, wam, wdx)
			if err := k.MaxPool2DBackward(p, dy, gam, gdx); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "maxpool backward "+name, gdx, wdx)

			rk.AvgPool2D(p, x, want)
			if err := k.AvgPool2D(p, x, got); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "avgpool "+name, got, want)
			rk.AvgPool2DBackward(p, dy, wdx)
			if err := k.AvgPool2DBackward(p, dy, gdx); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "avgpool backward "+name, gdx, wdx)
		}
		for _, s := range [][3]int{{2, 3, 49}, {1, 7, 1}, {64, 32, 50}} {
			n, c, hw := s[0], s[1], s[2]
			x, dy := kRand(r, n*c*hw), kRand(r, n*c)
			want, got := make([]float32, n*c), make([]float32, n*c)
			rk.GlobalAvgPool(n, c, hw, x, want)
			if err := k.GlobalAvgPool(n, c, hw, x, got); err != nil {
				t.Fatal(err)
			}
			checkClose(t, fmt.Sprint("gap ", s), got, want)
			wdx, gdx := make([]float32, n*c*hw), make([]float32, n*c*hw)
			rk.GlobalAvgPoolBackward(n, c, hw, dy, wdx)
			if err := k.GlobalAvgPoolBackward(n, c, hw, dy, gdx); err != nil {
				t.Fatal(err)
			}
			checkClose(t, fmt.Sprint("gap backward ", s), gdx, wdx)
		}
	})
}

// Ties: the first maximum in row-major order wins, as in the reference.
func TestMaxPoolTiesAndPadding(t *testing.T) {
	k := NewKernels(1)
	p := accel.PoolParams{N: 1, C: 1, H: 2, W: 3, KH: 2, KW: 2, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	x := []float32{-5, -5, -1, -5, -5, -2} // all negative: padding must not win with 0
	y, am := make([]float32, p.OutH()*p.OutW()), make([]int32, p.OutH()*p.OutW())
	if err := k.MaxPool2D(p, x, y, am); err != nil {
		t.Fatal(err)
	}
	wantY := []float32{-5, -5, -1, -1, -5, -5, -1, -1, -5, -5, -2, -2}
	wantA := []int32{0, 0, 2, 2, 0, 0, 2, 2, 3, 3, 5, 5}
	for i := range wantY {
		if y[i] != wantY[i] || am[i] != wantA[i] {
			t.Fatalf("maxpool y %v argmax %v, want %v %v", y, am, wantY, wantA)
		}
	}
}

// The 2×2 stride-2 fast paths at every level: ties go to the first tap in
// row-major order, a NaN as first tap wins and a later one never does (the
// strict > of the reference), and the backward pass accepts argmax
// indices outside their own window (it then sums like the reference).
func TestMaxPool22TiesNaNAndForeignArgmax(t *testing.T) {
	var rk ref.Kernels
	nan := float32(math.NaN())
	eachLevel(t, func(t *testing.T, k *Kernels) {
		p := accel.PoolParams{N: 1, C: 2, H: 2, W: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
		x := []float32{
			1, 1, 2, 3, nan, 5, 0, nan, // plane 0 row 0
			1, 1, 3, 3, 7, 7, 0, 1, // plane 0 row 1
			4, 4, 4, 4, -1, -2, -3, -4, // plane 1 row 0
			4, 4, 4, 5, -1, -1, -1, -1, // plane 1 row 1
		}
		wantA := []int32{0, 3, 4, 15, 0, 11, 4, 14}
		y, am := make([]float32, 8), make([]int32, 8)
		if err := k.MaxPool2D(p, x, y, am); err != nil {
			t.Fatal(err)
		}
		for i, a := range wantA {
			want := x[(i/4)*16+int(a)]
			same := y[i] == want || (y[i] != y[i] && want != want)
			if am[i] != a || !same {
				t.Fatalf("maxpool y %v argmax %v, want argmax %v", y, am, wantA)
			}
		}
		y2 := make([]float32, 8)
		if err := k.MaxPool2D(p, x, y2, nil); err != nil {
			t.Fatal(err)
		}
		for i := range y {
			if y2[i] != y[i] && !(y2[i] != y2[i] && y[i] != y[i]) {
				t.Fatalf("maxpool without argmax %v, with %v", y2, y)
			}
		}
		// Backward over rows of 8 outputs (the AVX-512 path's minimum):
		// argmax from the forward pass, then with plane 1's indices
		// pointing outside their windows (two outputs on one element).
		p = accel.PoolParams{N: 1, C: 2, H: 4, W: 16, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
		r := rand.New(rand.NewPCG(1, 1))
		x, dy := kRand(r, 128), kRand(r, 32)
		fwd := make([]int32, 32)
		rk.MaxPool2D(p, x, make([]float32, 32), fwd)
		foreign := append([]int32(nil), fwd...)
		foreign[20], foreign[31] = 0, foreign[17]
		for _, am := range [][]int32{fwd, foreign} {
			want, got := make([]float32, 128), kRand(r, 128)
			rk.MaxPool2DBackward(p, dy, am, want)
			if err := k.MaxPool2DBackward(p, dy, am, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("maxpool backward argmax %v: dx %v, want %v", am, got, want)
				}
			}
		}
	})
}

// NaN in max pooling, every level and path, with and without argmax: the
// reference's strict > in row-major order returns NaN exactly when a
// window's first in-bounds element is NaN; a later NaN never wins, so the
// maximum of the other elements is returned.
func TestMaxPoolNaNLikeReference(t *testing.T) {
	var rk ref.Kernels
	eachLevel(t, func(t *testing.T, k *Kernels) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, p := range poolShapes {
			nx, ny := p.N*p.C*p.H*p.W, p.N*p.C*p.OutH()*p.OutW()
			x := kRand(r, nx)
			for i := range x {
				if r.IntN(5) == 0 {
					x[i] = float32(math.NaN())
				}
			}
			want := make([]float32, ny)
			rk.MaxPool2D(p, x, want, nil)
			for _, am := range [][]int32{nil, make([]int32, ny)} {
				got := make([]float32, ny)
				if err := k.MaxPool2D(p, x, got, am); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("%+v argmax=%v: y[%d] = %v, want %v", p, am != nil, i, got[i], want[i])
					}
				}
			}
		}
	})
}

func TestPoolBadInput(t *testing.T) {
	k := NewKernels(2)
	p := accel.PoolParams{N: 2, C: 3, H: 4, W: 4, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	f := func(n int) []float32 { return make([]float32, n) }
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"max x", "x has", k.MaxPool2D(p, f(95), f(24), nil)},
		{"max argmax", "argmax has", k.MaxPool2D(p, f(96), f(24), make([]int32, 23))},
		{"max bwd argmax range", "outside", k.MaxPool2DBackward(p, f(24), append(make([]int32, 23), 16), f(96))},
		{"max bwd dx", "x has", k.MaxPool2DBackward(p, f(24), make([]int32, 24), f(97))},
		{"avg y", "y has", k.AvgPool2D(p, f(96), f(25))},
		{"avg bwd", "y has", k.AvgPool2DBackward(p, f(23), f(96))},
		{"pad", "padding", k.AvgPool2D(accel.PoolParams{N: 1, C: 1, H: 4, W: 4, KH: 2, KW: 2, PadH: 2}, f(16), f(16))},
		{"gap", "y has", k.GlobalAvgPool(2, 3, 4, f(24), f(5))},
		{"gap sizes", "positive", k.GlobalAvgPool(0, 3, 4, f(0), f(0))},
		{"gap bwd", "dx has", k.GlobalAvgPoolBackward(2, 3, 4, f(6), f(23))},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
}
