package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// LeNet-5's GEMM shapes at one thread, timed by the calling thread's CPU
// time (cpu-ns/op) as well as the wall clock: fc1 (x·Wᵀ, m = batch,
// n = 500, k = 800), fc2 (n = 10, k = 500), conv1's and conv2's per-sample
// products (weights · im2col).
//
//	nice go test -run '^$' -bench 'SgemmLeNet' -benchtime 300ms ./cpu/
func BenchmarkSgemmLeNet(b *testing.B) {
	for _, s := range []struct {
		name    string
		tb      bool
		m, n, k int
	}{
		{"fc1_b64", true, 64, 500, 800},
		{"fc1_b1", true, 1, 500, 800},
		{"fc2_b64", true, 64, 10, 500},
		{"conv1", false, 20, 576, 25},
		{"conv2_b8", false, 50, 512, 500},
	} {
		r := rand.New(rand.NewPCG(3, 3))
		a, bb, c := kRand(r, s.m*s.k), kRand(r, s.k*s.n), make([]float32, s.m*s.n)
		ldb := s.n
		if s.tb {
			ldb = s.k
		}
		b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", s.name, s.m, s.n, s.k), func(b *testing.B) {
			benchCPU(b, func() error {
				return Sgemm(false, s.tb, s.m, s.n, s.k, 1, a, s.k, bb, ldb, 0, c, s.n, 1)
			})
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
