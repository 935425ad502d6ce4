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

// randCSR draws a rows×cols matrix with the given density and returns it
// in CSR form.
func randCSR(r *rand.Rand, rows, cols int, density float64) *accel.SparseWeights {
	s := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: make([]int32, 1, rows+1)}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if r.Float64() < density {
				s.ColIdx = append(s.ColIdx, int32(j))
				s.Val = append(s.Val, float32(r.Float64()*2-1))
			}
		}
		s.RowPtr = append(s.RowPtr, int32(len(s.Val)))
	}
	return s
}

// forEachISA runs f at every supported level and restores the level.
func forEachISA(t testing.TB, f func(isa string)) {
	defer SetISA(ISA())
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		f(isa)
	}
}

func closeTo(got, want []float32) (int, bool) {
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
			return i, false
		}
	}
	return 0, true
}

func TestSparseKernelsMatchReference(t *testing.T) {
	var rk ref.Kernels
	acts := []accel.Act{accel.ActNone, accel.ActReLU, accel.ActReLU6, accel.ActHardSwish}
	linear := []struct {
		n, in, out int
		density    float64
	}{{1, 800, 500, 0.08}, {2, 17, 5, 0.5}, {5, 300, 100, 0.1}, {64, 100, 33, 0.3}, {1, 7, 3, 0}, {3, 1, 1, 1}}
	convs := []accel.ConvParams{
		{N: 1, C: 1, H: 28, W: 28, K: 20, KH: 5, KW: 5},
		{N: 2, C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5},
		{N: 1, C: 6, H: 9, W: 7, K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2},
		{N: 1, C: 8, H: 5, W: 5, K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8},
		{N: 2, C: 4, H: 9, W: 9, K: 6, KH: 1, KW: 1, Groups: 2}, // direct path
		{N: 1, C: 3, H: 7, W: 7, K: 2, KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2},
	}
	forEachISA(t, func(isa string) {
		for ci, c := range linear {
			r := rand.New(rand.NewPCG(uint64(ci), 3))
			s := randCSR(r, c.out, c.in, c.density)
			x, bias := randSlice(r, c.n*c.in), randSlice(r, c.out)
			act := acts[ci%len(acts)]
			want, got := make([]float32, c.n*c.out), make([]float32, c.n*c.out)
			if err := rk.SpLinear(c.n, c.in, c.out, x, s, bias, act, want); err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				if err := spLinear(threads, c.n, c.in, c.out, x, s, bias, act, got); err != nil {
					t.Fatalf("%s %+v: %v", isa, c, err)
				}
				if i, ok := closeTo(got, want); !ok {
					t.Fatalf("%s linear %+v threads=%d: y[%d] = %g, want %g", isa, c, threads, i, got[i], want[i])
				}
			}
		}
		for ci, p := range convs {
			r := rand.New(rand.NewPCG(uint64(ci), 4))
			pn := p.Norm()
			nx, nw, ny := pn.Sizes()
			s := randCSR(r, pn.K, nw/pn.K, 0.3)
			x := randSlice(r, nx)
			var bias []float32
			if ci%2 == 1 {
				bias = randSlice(r, pn.K)
			}
			act := acts[ci%len(acts)]
			want, got := make([]float32, ny), make([]float32, ny)
			if err := rk.SpConv2D(p, x, s, bias, act, want); err != nil {
				t.Fatal(err)
			}
			if err := spConv2D(2, p, x, s, bias, act, got); err != nil {
				t.Fatalf("%s: %v", isa, err)
			}
			if i, ok := closeTo(got, want); !ok {
				t.Fatalf("%s conv %+v: y[%d] = %g, want %g", isa, p, i, got[i], want[i])
			}
		}
	})
}

func TestSparseBadInput(t *testing.T) {
	f := func(n int) []float32 { return make([]float32, n) }
	good := func() *accel.SparseWeights {
		return &accel.SparseWeights{Rows: 2, Cols: 3, RowPtr: []int32{0, 1, 2}, ColIdx: []int32{0, 2}, Val: []float32{1, 2}}
	}
	mod := func(m func(s *accel.SparseWeights)) *accel.SparseWeights { s := good(); m(s); return s }
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"nil", "no sparse", spLinear(1, 1, 3, 2, f(3), nil, nil, accel.ActNone, f(2))},
		{"shape", "are 2×3", spLinear(1, 1, 4, 2, f(4), good(), nil, accel.ActNone, f(2))},
		{"rowptr len", "RowPtr has", spLinear(1, 1, 3, 2, f(3), mod(func(s *accel.SparseWeights) { s.RowPtr = s.RowPtr[:2] }), nil, accel.ActNone, f(2))},
		{"decreasing", "decreases", spLinear(1, 1, 3, 2, f(3), mod(func(s *accel.SparseWeights) { s.RowPtr = []int32{0, 2, 2}; s.RowPtr[1] = 3 }), nil, accel.ActNone, f(2))},
		{"column", "column index", spLinear(1, 1, 3, 2, f(3), mod(func(s *accel.SparseWeights) { s.ColIdx[1] = 3 }), nil, accel.ActNone, f(2))},
		{"values", "column indices for", spLinear(1, 1, 3, 2, f(3), mod(func(s *accel.SparseWeights) { s.Val = s.Val[:1] }), nil, accel.ActNone, f(2))},
		{"x", "x has", spLinear(1, 1, 3, 2, f(2), good(), nil, accel.ActNone, f(2))},
		{"bias", "bias", spLinear(1, 1, 3, 2, f(3), good(), f(1), accel.ActNone, f(2))},
		{"conv y", "y has", spConv2D(1, accel.ConvParams{N: 1, C: 1, H: 3, W: 3, K: 2, KH: 1, KW: 3}, f(9), good(), nil, accel.ActNone, f(5))},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.name, tc.err, tc.want)
		}
	}
	// A CSR checked once is re-checked when its slices are replaced.
	s := good()
	if err := spLinear(1, 1, 3, 2, f(3), s, nil, accel.ActNone, f(2)); err != nil {
		t.Fatal(err)
	}
	s.ColIdx = []int32{0, 7}
	if err := spLinear(1, 1, 3, 2, f(3), s, nil, accel.ActNone, f(2)); err == nil {
		t.Error("replaced bad column index accepted")
	}
}

// BenchmarkSparseVsDense times sparse Linear (batch 1 and 64) against the
// dense fp32 Sgemm at densities 100%…5%, one thread: it shows where sparse
// pays off (the compression pipeline measures each layer the same way
// before it chooses the sparse form).
func BenchmarkSparseVsDense(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	in, out := 800, 500
	w := randSlice(r, in*out)
	for _, n := range []int{1, 64} {
		x, y := randSlice(r, n*in), make([]float32, n*out)
		b.Run(fmt.Sprintf("dense/b%d", n), func(b *testing.B) {
			for b.Loop() {
				Sgemm(false, true, n, out, in, 1, x, in, w, in, 0, y, out, 1)
			}
		})
		for _, d := range []float64{0.5, 0.2, 0.08, 0.05} {
			s := randCSR(r, out, in, d)
			b.Run(fmt.Sprintf("sparse%.0f%%/b%d", d*100, n), func(b *testing.B) {
				for b.Loop() {
					if err := spLinear(1, n, in, out, x, s, nil, accel.ActNone, y); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
