package cpu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// qLevel is one int8 kernel level to test: an ISA() level, with or without
// VNNI (AVX-512) or sdot (arm64).
type qLevel struct {
	isa       string
	vnni, dot bool
}

func (l qLevel) String() string {
	switch {
	case l.vnni:
		return l.isa + "+vnni"
	case l.dot:
		return l.isa + "+dotprod"
	}
	return l.isa
}

// qLevels lists every int8 path this CPU can run: each SupportedISAs()
// level, the AVX-512 level both with and without VNNI when it has VNNI, and
// the arm64 level with and without sdot when it has the dot product.
func qLevels() []qLevel {
	var ls []qLevel
	for _, isa := range SupportedISAs() {
		ls = append(ls, qLevel{isa: isa})
		if isa == ISAAVX512 && HasVNNI() {
			ls = append(ls, qLevel{isa: isa, vnni: true})
		}
		if isa == ISAARM64 && HasDotProd() {
			ls = append(ls, qLevel{isa: isa, dot: true})
		}
	}
	return ls
}

// forEachQLevel runs f with the kernels forced to each level in turn and
// restores the start-up levels afterwards.
func forEachQLevel(t testing.TB, f func(l qLevel)) {
	prevISA, prevVNNI, prevDot := ISA(), useVNNI.Load(), useDotProd.Load()
	defer func() {
		SetISA(prevISA)
		useVNNI.Store(prevVNNI)
		useDotProd.Store(prevDot)
	}()
	for _, l := range qLevels() {
		if err := SetISA(l.isa); err != nil {
			t.Fatal(err)
		}
		if err := SetVNNI(l.vnni); err != nil {
			t.Fatal(err)
		}
		if err := SetDotProd(l.dot); err != nil {
			t.Fatal(err)
		}
		f(l)
	}
}

func refQGemm(m, n, k int, a []uint8, lda int, b []int8, ldb int) []int32 {
	c := make([]int32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := int32(0)
			for p := 0; p < k; p++ {
				s += int32(a[i*lda+p]) * int32(b[j*ldb+p])
			}
			c[i*n+j] = s
		}
	}
	return c
}

func TestQGemmMatchesReferenceExactly(t *testing.T) {
	cases := [][3]int{
		{1, 1, 1}, {1, 4, 64}, {4, 4, 64}, {5, 7, 63}, {3, 9, 65}, {2, 3, 17},
		{9, 6, 130}, {1, 500, 800}, {64, 50, 500}, {17, 33, 1000}, {6, 5, 0},
	}
	forEachQLevel(t, func(l qLevel) {
		for ci, sz := range cases {
			m, n, k := sz[0], sz[1], sz[2]
			for _, pad := range []int{0, 5} {
				r := rand.New(rand.NewPCG(uint64(ci), uint64(pad)))
				lda, ldb := k+pad, k+pad
				a := make([]uint8, max(m*lda, 1))
				b := make([]int8, max(n*ldb, 1))
				for i := range a {
					a[i] = uint8(r.IntN(256)) // extremes included: 255·(−128) must not saturate
				}
				for i := range b {
					b[i] = int8(r.IntN(256) - 128)
				}
				if ci == 1 {
					for i := range a {
						a[i], b[i%len(b)] = 255, -128
					}
				}
				want := refQGemm(m, n, k, a, lda, b, ldb)
				for _, threads := range []int{1, 2} {
					// Transposed output (csc=m) as the conv path writes it.
					for _, tr := range []bool{false, true} {
						c := make([]int32, m*n)
						rsc, csc := n, 1
						if tr {
							rsc, csc = 1, m
						}
						if err := QGemm(m, n, k, a, lda, b, ldb, c, rsc, csc, threads); err != nil {
							t.Fatalf("%v %v: %v", l, sz, err)
						}
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								if got := c[i*rsc+j*csc]; got != want[i*n+j] {
									t.Fatalf("%v m,n,k=%v pad=%d threads=%d transposed=%v: c[%d][%d] = %d, want %d", l, sz, pad, threads, tr, i, j, got, want[i*n+j])
								}
							}
						}
					}
				}
			}
		}
	})
}

func TestQGemmBadInput(t *testing.T) {
	a, b, c := make([]uint8, 12), make([]int8, 12), make([]int32, 9)
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"negative", "negative size", QGemm(-1, 3, 4, a, 4, b, 4, c, 3, 1, 1)},
		{"lda", "leading dimensions", QGemm(3, 3, 4, a, 3, b, 4, c, 3, 1, 1)},
		{"short a", "a has", QGemm(4, 3, 4, a, 4, b, 4, c, 3, 1, 1)},
		{"short b", "b has", QGemm(3, 4, 4, a, 4, b, 4, c, 3, 1, 1)},
		{"short c", "c has", QGemm(3, 3, 4, a, 4, b, 4, c[:8], 3, 1, 1)},
		{"stride", "strides", QGemm(3, 3, 4, a, 4, b, 4, c, 0, 1, 1)},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestSetVNNI(t *testing.T) {
	prev := useVNNI.Load()
	defer useVNNI.Store(prev)
	if err := SetVNNI(false); err != nil {
		t.Fatal(err)
	}
	if err := SetVNNI(true); (err == nil) != HasVNNI() {
		t.Errorf("SetVNNI(true) = %v with HasVNNI() = %v", err, HasVNNI())
	}
}

// BenchmarkQGemm compares the int8 GEMM with Sgemm at the same shapes, one
// thread, at the best level.
func BenchmarkQGemm(b *testing.B) {
	for _, sz := range [][3]int{{256, 256, 256}, {512, 512, 512}, {64, 50, 500}, {1, 500, 800}} {
		m, n, k := sz[0], sz[1], sz[2]
		r := rand.New(rand.NewPCG(1, 2))
		a8, b8, c32 := make([]uint8, m*k), make([]int8, n*k), make([]int32, m*n)
		for i := range a8 {
			a8[i] = uint8(r.IntN(256))
		}
		for i := range b8 {
			b8[i] = int8(r.IntN(255) - 127)
		}
		af, bf, cf := randSlice(r, m*k), randSlice(r, n*k), make([]float32, m*n)
		name := fmt.Sprintf("m=%d,n=%d,k=%d", m, n, k)
		report := func(b *testing.B) {
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
		}
		b.Run("int8/"+name, func(b *testing.B) {
			for b.Loop() {
				if err := QGemm(m, n, k, a8, k, b8, k, c32, n, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("fp32/"+name, func(b *testing.B) {
			for b.Loop() {
				if err := Sgemm(false, true, m, n, k, 1, af, k, bf, k, 0, cf, n, 1); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}

func TestQGemmPackedMatchesReferenceExactly(t *testing.T) {
	if !HasVNNI() {
		if err := qgemmPacked(1, 1, 1, make([]uint8, 4), 4, make([]int8, 1), make([]int32, 1), 1); err == nil {
			t.Error("packed kernel ran without VNNI")
		}
		return // the packed kernel is VNNI-only; qConv2D uses QGemm elsewhere
	}
	for ci, sz := range [][3]int{{1, 1, 1}, {6, 16, 4}, {7, 17, 5}, {13, 50, 500}, {576, 20, 25}, {5, 64, 9}, {3, 65, 130}} {
		m, n, k := sz[0], sz[1], sz[2]
		r := rand.New(rand.NewPCG(uint64(ci), 9))
		lda := (k+3)&^3 + 4
		a := make([]uint8, m*lda)
		w := make([]int8, n*k)
		for i := range a {
			a[i] = uint8(r.IntN(256))
		}
		for i := range w {
			w[i] = int8(r.IntN(256) - 128)
		}
		want := refQGemm(m, n, k, a, lda, w, k)
		c := make([]int32, m*n)
		if err := qgemmPacked(m, n, k, a, lda, w, c, n); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if c[i] != want[i] {
				t.Fatalf("m,n,k=%v: c[%d] = %d, want %d", sz, i, c[i], want[i])
			}
		}
	}
}
