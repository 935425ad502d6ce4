package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// Pooling benchmarks with their naive twins: LeNet-5's first max pool
// (2×2 stride 2 over 20×24×24) and a 3×3 stride-2 padded pool over
// 32×56×56, at batch 1 and 64, one thread.
//
//	nice go test -run '^$' -bench 'Pool' -benchtime 200ms ./cpu/
func BenchmarkPool(b *testing.B) {
	for _, c := range []struct {
		name string
		p    accel.PoolParams
	}{
		{"lenet_pool1", accel.PoolParams{C: 20, H: 24, W: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
		{"pool3x3_s2_32x56x56", accel.PoolParams{C: 32, H: 56, W: 56, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
	} {
		for _, n := range []int{1, 64} {
			p := c.p
			p.N = n
			r := rand.New(rand.NewPCG(8, 8))
			x := kRand(r, p.N*p.C*p.H*p.W)
			y := make([]float32, p.N*p.C*p.OutH()*p.OutW())
			am := make([]int32, len(y))
			for _, im := range []struct {
				name string
				k    accel.Kernels
			}{{"cpu", NewKernels(1)}, {"ref", ref.Kernels{}}} {
				b.Run(fmt.Sprintf("%s/b%d/max/%s", c.name, n, im.name), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						if err := im.k.MaxPool2D(p, x, y, am); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(fmt.Sprintf("%s/b%d/avg/%s", c.name, n, im.name), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						if err := im.k.AvgPool2D(p, x, y); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
