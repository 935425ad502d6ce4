//go:build openblas

package cpu

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPeerSgemmMatchesReference checks the peer on a few shapes with the
// tolerance of TestSgemmMatchesReference, so the benchmark compares like
// with like.
func TestPeerSgemmMatchesReference(t *testing.T) {
	if !strings.HasPrefix(PeerName(), "OpenBLAS") {
		t.Errorf("PeerName() = %q", PeerName())
	}
	for ci, g := range gemmCases()[:16] {
		r := rand.New(rand.NewPCG(uint64(ci), 9))
		ar, ac := g.m, g.k
		if g.transA {
			ar, ac = g.k, g.m
		}
		br, bc := g.k, g.n
		if g.transB {
			br, bc = g.n, g.k
		}
		lda, ldb, ldc := ac+g.pad, bc+g.pad, g.n+g.pad
		a, b, c := randSlice(r, ar*lda), randSlice(r, br*ldb), randSlice(r, g.m*ldc)
		want, scale := refSgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc)
		if err := PeerSgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc, 1); err != nil {
			t.Fatalf("%v: %v", g, err)
		}
		for i := 0; i < g.m; i++ {
			for j := 0; j < g.n; j++ {
				tol := 2*float64(g.k+2)*0x1p-24*scale[i*g.n+j] + 1e-30
				if d := math.Abs(float64(c[i*ldc+j]) - want[i*g.n+j]); !(d <= tol) {
					t.Fatalf("%v: C[%d][%d] = %g, want %g", g, i, j, c[i*ldc+j], want[i*g.n+j])
				}
			}
		}
	}
	if err := PeerSgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2, 1); err == nil {
		t.Error("short A: want an error")
	}
}

// BenchmarkPeerSgemm times OpenBLAS on the shapes of BenchmarkSgemm. Run it
// with OPENBLAS_CORETYPE unset to get OpenBLAS's AVX-512 kernel.
func BenchmarkPeerSgemm(b *testing.B) {
	benchSizes(b, []int{64, 256, 512, 1024}, func(b *testing.B, n int, a, bb, c []float32) {
		if err := PeerSgemm(false, false, n, n, n, 1, a, n, bb, n, 0, c, n, 1); err != nil {
			b.Fatal(err)
		}
	})
}
