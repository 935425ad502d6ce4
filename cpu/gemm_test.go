package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refSgemm is the plain triple loop, accumulating in float64. It also
// returns, per element of C, the scale |alpha|·Σ_p|op(A)_ip·op(B)_pj| +
// |beta·C_ij| that bounds the float32 rounding error of any summation order.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				abs += math.Abs(float64(av) * float64(bv))
			}
			v := float64(alpha) * s
			sc := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
				sc += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j], scale[i*n+j] = v, sc
		}
	}
	return want, scale
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

type gemmCase struct {
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
	pad            int // extra leading-dimension elements of A, B and C
	nanC           bool
}

func (g gemmCase) String() string {
	return fmt.Sprintf("m=%d,n=%d,k=%d,tA=%v,tB=%v,alpha=%g,beta=%g,pad=%d,nanC=%v", g.m, g.n, g.k, g.transA, g.transB, g.alpha, g.beta, g.pad, g.nanC)
}

// gemmCases mixes fixed edge shapes with random ones drawn from odd sizes.
func gemmCases() []gemmCase {
	cases := []gemmCase{
		{m: 1, n: 1, k: 1, alpha: 1},
		{m: 0, n: 5, k: 3, alpha: 1},
		{m: 4, n: 0, k: 3, alpha: 1},
		{m: 5, n: 7, k: 0, alpha: 1, beta: 0.5},           // C = beta·C
		{m: 5, n: 7, k: 0, alpha: 1, beta: 0, nanC: true}, // C = 0
		{m: 6, n: 64, k: 9, alpha: 1},                     // exactly one AVX-512 tile
		{m: 6, n: 16, k: 9, alpha: 1},                     // exactly one AVX2 tile
		{m: 8, n: 12, k: 9, alpha: 1, beta: 1, pad: 2},    // exactly one arm64 tile
		{m: 129, n: 257, k: 65, alpha: 1, beta: 0, nanC: true, transA: true},
		{m: 257, n: 129, k: 257, alpha: -0.5, beta: 2, pad: 3, transB: true},
		{m: 300, n: 520, k: 700, alpha: 1, beta: 1}, // crosses every cache block
		{m: 300, n: 520, k: 700, alpha: 1, beta: 1, transA: true, transB: true, pad: 1},
		// m <= 4 with B transposed: the dot-product path, k tails of 1..15
		{m: 1, n: 129, k: 257, alpha: 1, transB: true},
		{m: 3, n: 7, k: 17, alpha: 2, beta: -1, transB: true, pad: 2},
		{m: 4, n: 9, k: 15, alpha: 1, beta: 0, nanC: true, transB: true},
		{m: 2, n: 200, k: 40, alpha: 1, transA: true, transB: true},
		// transposed B packed in 8×8 blocks with ragged edges
		{m: 13, n: 71, k: 37, alpha: 1, transB: true, pad: 4},
		{m: 18, n: 65, k: 1000, alpha: 0.25, beta: 0.5}, // k over several panels
		{m: 1030, n: 20, k: 30, alpha: 1, transA: true}, // m over one packed A block
		// x·Wᵀ computed as (W·xᵀ)ᵀ (AVX2 from m = 16, AVX-512 from 32)
		{m: 64, n: 300, k: 600, alpha: 0.5, beta: 1.5, transB: true, pad: 3},
		{m: 32, n: 200, k: 100, alpha: 1, beta: 0, nanC: true, transB: true},
		{m: 16, n: 150, k: 70, alpha: 1, transB: true, pad: 1},
	}
	sizes := []int{1, 3, 7, 17, 33, 65, 129, 257}
	ab := [][2]float32{{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0}}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 32; i++ {
		g := gemmCase{
			m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
			transA: i&1 != 0, transB: i&2 != 0, pad: r.IntN(3) * 5,
		}
		g.alpha, g.beta = ab[i/4%4][0], ab[i/4%4][1]
		g.nanC = g.beta == 0 && i%8 < 4
		cases = append(cases, g)
	}
	return cases
}

// TestSgemmMatchesReference checks every supported ISA level, 1 and 2
// threads, all trans combinations, alpha/beta, padded leading dimensions
// and beta = 0 over a C full of NaN.
//
// Tolerance: each result may differ from the float64 reference by
// 2·(k+2)·2⁻²⁴·scale + 1e-30, where scale = |alpha|·Σ_p|a_ip·b_pj| + |beta·c_ij|
// (the classical bound on float32 dot-product rounding, k·u·Σ|terms|, with
// room for FMA and the alpha/beta updates).
func TestSgemmMatchesReference(t *testing.T) {
	defer SetISA(ISA())
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			for ci, g := range gemmCases() {
				r := rand.New(rand.NewPCG(uint64(ci), 7))
				ar, ac := g.m, g.k
				if g.transA {
					ar, ac = g.k, g.m
				}
				br, bc := g.k, g.n
				if g.transB {
					br, bc = g.n, g.k
				}
				lda, ldb, ldc := ac+g.pad, bc+g.pad, g.n+g.pad
				a := randSlice(r, ar*lda)
				b := randSlice(r, br*ldb)
				c := randSlice(r, g.m*ldc)
				if g.nanC {
					for i := range c {
						c[i] = float32(math.NaN())
					}
				}
				orig := append([]float32(nil), c...)
				want, scale := refSgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc)
				if err := Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc, threads); err != nil {
					t.Fatalf("%s threads=%d %v: %v", isa, threads, g, err)
				}
				bad := 0
				for i := 0; i < g.m && bad < 3; i++ {
					for j := 0; j < ldc && bad < 3; j++ {
						got := c[i*ldc+j]
						if j >= g.n { // padding of C must be untouched
							if math.Float32bits(got) != math.Float32bits(orig[i*ldc+j]) {
								t.Errorf("%s threads=%d %v: padding C[%d][%d] changed to %g", isa, threads, g, i, j, got)
								bad++
							}
							continue
						}
						w := want[i*g.n+j]
						tol := 2*float64(g.k+2)*0x1p-24*scale[i*g.n+j] + 1e-30
						if d := math.Abs(float64(got) - w); !(d <= tol) {
							t.Errorf("%s threads=%d %v: C[%d][%d] = %g, want %g (|Δ| %.3g > tol %.3g)", isa, threads, g, i, j, got, w, d, tol)
							bad++
						}
					}
				}
			}
		}
	}
}

func TestSgemmBadInput(t *testing.T) {
	buf := make([]float32, 100)
	tests := []struct {
		name           string
		transA, transB bool
		m, n, k        int
		a              []float32
		lda            int
		b              []float32
		ldb            int
		c              []float32
		ldc            int
		want           string
	}{
		{"negative m", false, false, -1, 2, 2, buf, 2, buf, 2, buf, 2, "negative size"},
		{"lda too small", false, false, 3, 3, 4, buf, 3, buf, 3, buf, 3, "lda=3 of A is smaller than its 4 columns"},
		{"lda too small transposed", true, false, 5, 3, 4, buf, 4, buf, 3, buf, 3, "lda=4 of A (transposed)"},
		{"short A", false, false, 10, 2, 11, buf, 11, buf, 2, buf, 2, "A is 10×11 with lda=11 and needs 110 elements, has 100"},
		{"short B transposed", false, true, 2, 11, 10, buf, 10, buf[:50], 10, buf, 11, "B (transposed) is 11×10"},
		{"ldc too small", false, false, 2, 5, 2, buf, 2, buf, 5, buf, 4, "ldc=4 of C"},
		{"short C", false, false, 8, 8, 2, buf, 2, buf, 8, buf[:63], 8, "C is 8×8 with ldc=8 and needs 64 elements, has 63"},
		{"nil B", false, false, 2, 2, 2, buf, 2, nil, 2, buf, 2, "B is 2×2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, tc.c, tc.ldc, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSetISA(t *testing.T) {
	defer SetISA(ISA())
	sup := SupportedISAs()
	if len(sup) == 0 || sup[0] != ISAGeneric {
		t.Fatalf("SupportedISAs() = %v, want generic first", sup)
	}
	for _, l := range sup {
		if err := SetISA(l); err != nil || ISA() != l {
			t.Errorf("SetISA(%q) = %v, ISA() = %q", l, err, ISA())
		}
	}
	last := ISA()
	if err := SetISA("avx1024"); err == nil || !strings.Contains(err.Error(), "unknown ISA level") || ISA() != last {
		t.Errorf("SetISA(avx1024) = %v and ISA() = %q, want an error and no change", err, ISA())
	}
	if err := SetISA(lackedISA()); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("SetISA(%s) = %v, want not supported", lackedISA(), err)
	}
}

// naiveSgemm is the plain-Go twin the benchmarks compare with (no
// transposes, beta = 0).
func naiveSgemm(m, n, k int, a, b, c []float32) {
	for i := 0; i < m; i++ {
		ci := c[i*n : i*n+n]
		clear(ci)
		for p := 0; p < k; p++ {
			av := a[i*k+p]
			bp := b[p*n : p*n+n]
			for j := range ci {
				ci[j] += av * bp[j]
			}
		}
	}
}

func benchSizes(b *testing.B, sizes []int, f func(b *testing.B, n int, a, bb, c []float32)) {
	for _, n := range sizes {
		r := rand.New(rand.NewPCG(3, uint64(n)))
		a, bb, c := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				f(b, n, a, bb, c)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm times square single-threaded SGEMM at every supported level.
func BenchmarkSgemm(b *testing.B) {
	defer SetISA(ISA())
	for _, isa := range SupportedISAs() {
		b.Run(isa, func(b *testing.B) {
			if err := SetISA(isa); err != nil {
				b.Fatal(err)
			}
			benchSizes(b, []int{64, 256, 512, 1024}, func(b *testing.B, n int, a, bb, c []float32) {
				if err := Sgemm(false, false, n, n, n, 1, a, n, bb, n, 0, c, n, 1); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkSgemmNaiveGo is the plain-Go twin of BenchmarkSgemm.
func BenchmarkSgemmNaiveGo(b *testing.B) {
	benchSizes(b, []int{64, 256}, func(b *testing.B, n int, a, bb, c []float32) { naiveSgemm(n, n, n, a, bb, c) })
}

// TestSgemmThreadsBitwise checks that splitting C by rows or by columns
// over 1..4 goroutines gives bit-identical results: bands are cut at
// multiples of every tile and thin last bands are merged, so each element
// is summed in the same order.
func TestSgemmThreadsBitwise(t *testing.T) {
	defer SetISA(ISA())
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		testThreadsBitwise(t, isa)
	}
}

func testThreadsBitwise(t *testing.T, isa string) {
	for _, g := range []gemmCase{
		{m: 33, n: 2000, k: 40, alpha: 1},               // split by columns
		{m: 2000, n: 33, k: 40, alpha: 1, transA: true}, // split by rows
		{m: 3, n: 9000, k: 90, alpha: 1, transB: true},  // dot path per band
		{m: 700, n: 650, k: 20, alpha: 1, transB: true, beta: 1},
		{m: 26, n: 20, k: 5000, alpha: 1, transB: true}, // 24 + 2 rows: one band
		{m: 2, n: 20, k: 60000, alpha: 1, transB: true}, // dot path, split by rows
		// At least threadMinMACs: bands on C threads (hw_sgemm_bands).
		{m: 522, n: 516, k: 520, alpha: 1, beta: 1},                    // by rows
		{m: 96, n: 2600, k: 600, alpha: 1, transA: true, transB: true}, // by columns
	} {
		r := rand.New(rand.NewPCG(5, 6))
		a, b := randSlice(r, g.m*g.k), randSlice(r, g.k*g.n)
		lda, ldb := g.k, g.n
		if g.transA {
			lda = g.m
		}
		if g.transB {
			ldb = g.k
		}
		c0 := randSlice(r, g.m*g.n)
		var first []float32
		for threads := 1; threads <= 4; threads++ {
			c := append([]float32(nil), c0...)
			if err := Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, g.n, threads); err != nil {
				t.Fatal(err)
			}
			if threads == 1 {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Errorf("%s %v threads=%d: C[%d] = %g, 1 thread gave %g", isa, g, threads, i, c[i], first[i])
					break
				}
			}
		}
	}
}

// TestSgemmTransposedRouteBitwise: A·Bsᵀ taken as (Bs·Aᵀ)ᵀ gives C
// bit for bit as the direct path does on the same product with B stored
// untransposed (the same multiply-add chain per element), with beta ≠ 0 and
// k over several panels, at every level and 1 and 2 threads.
func TestSgemmTransposedRouteBitwise(t *testing.T) {
	defer SetISA(ISA())
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, g := range []gemmCase{
			{m: 64, n: 500, k: 800, alpha: 1},
			{m: 64, n: 300, k: 1100, alpha: 0.5, beta: -1},
			{m: 48, n: 333, k: 400, alpha: 1, beta: 1},
			{m: 16, n: 150, k: 70, alpha: 2, beta: 0.5},
		} {
			r := rand.New(rand.NewPCG(uint64(g.m), uint64(g.n)))
			a, bs, c0 := randSlice(r, g.m*g.k), randSlice(r, g.n*g.k), randSlice(r, g.m*g.n)
			b := make([]float32, g.k*g.n) // bsᵀ, stored k×n
			for j := 0; j < g.n; j++ {
				for p := 0; p < g.k; p++ {
					b[p*g.n+j] = bs[j*g.k+p]
				}
			}
			want := append([]float32(nil), c0...)
			if err := Sgemm(false, false, g.m, g.n, g.k, g.alpha, a, g.k, b, g.n, g.beta, want, g.n, 1); err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				got := append([]float32(nil), c0...)
				if err := Sgemm(false, true, g.m, g.n, g.k, g.alpha, a, g.k, bs, g.k, g.beta, got, g.n, threads); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %v threads=%d: C[%d] = %g, untransposed B gives %g", isa, g, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestSgemmPackedARouteBitwise checks the route that packs A (AVX2, for
// many rows a multiple of 4 KiB apart: gemm_avx2.c's GEMM_PACK_A) against
// the same product with A's rows at another stride, read in place: every
// element must be bit-identical. The sizes leave partial blocks of rows
// (96), columns (1024, and a partial 16-column tile) and depth (384).
func TestSgemmPackedARouteBitwise(t *testing.T) {
	defer SetISA(ISA())
	const m, n, k = 520, 1040, 400
	r := rand.New(rand.NewPCG(3, 4))
	a1024, a1000 := make([]float32, m*1024), make([]float32, m*1000)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			v := float32(r.Float64()*2 - 1)
			a1024[i*1024+p], a1000[i*1000+p] = v, v
		}
	}
	b, bs, c0 := randSlice(r, k*n), make([]float32, n*k), randSlice(r, m*n)
	for p := 0; p < k; p++ {
		for j := 0; j < n; j++ {
			bs[j*k+p] = b[p*n+j]
		}
	}
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, transB := range []bool{false, true} {
			bm, ldb := b, n
			if transB {
				bm, ldb = bs, k
			}
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			if err := Sgemm(false, transB, m, n, k, 0.5, a1000, 1000, bm, ldb, -1, want, n, 1); err != nil {
				t.Fatal(err)
			}
			if err := Sgemm(false, transB, m, n, k, 0.5, a1024, 1024, bm, ldb, -1, got, n, 1); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s transB=%v: C[%d] = %g with lda 1024, %g with lda 1000", isa, transB, i, got[i], want[i])
				}
			}
		}
	}
}

// TestSgemmEdgeTiles sweeps every row count 1..13 and column count 1..130
// (every partial register tile of every level, masked vectors included) at
// a small depth, with beta = 0.5 so each stored element is also read.
func TestSgemmEdgeTiles(t *testing.T) {
	defer SetISA(ISA())
	r := rand.New(rand.NewPCG(8, 9))
	const k, pad = 5, 3
	a, b := randSlice(r, 140*(k+pad)), randSlice(r, 140*(k+pad))
	for _, isa := range SupportedISAs() {
		if err := SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for m := 1; m <= 13; m++ {
			for n := 1; n <= 130; n++ {
				tA, tB := (m+n)%2 == 1, (m+n)%4 >= 2
				lda, ldb := k+pad, n+pad
				if tA {
					lda = m + pad
				}
				if tB {
					ldb = k + pad
				}
				ldc := n + pad
				c := randSlice(r, m*ldc)
				want, scale := refSgemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, c, ldc)
				orig := append([]float32(nil), c...)
				if err := Sgemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, c, ldc, 1); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < m; i++ {
					for j := 0; j < ldc; j++ {
						got := c[i*ldc+j]
						if j >= n {
							if got != orig[i*ldc+j] {
								t.Fatalf("%s m=%d n=%d: padding C[%d][%d] changed", isa, m, n, i, j)
							}
							continue
						}
						if d := math.Abs(float64(got) - want[i*n+j]); !(d <= 2*(k+2)*0x1p-24*scale[i*n+j]+1e-30) {
							t.Fatalf("%s m=%d n=%d tA=%v tB=%v: C[%d][%d] = %g, want %g", isa, m, n, tA, tB, i, j, got, want[i*n+j])
						}
					}
				}
			}
		}
	}
}
