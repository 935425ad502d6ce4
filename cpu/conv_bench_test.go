package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// Convolution benchmarks, each with its naive twin (accel/ref): LeNet-5's
// two convolutions at batch 1 and 64 and a MobileNet-style depthwise 3×3
// layer, forward (every ISA level, 1 and 2 threads) and backward. They
// report GFLOP/s (2 flops per multiply-add).
//
//	nice go test -run '^$' -bench 'Conv' -benchtime 200ms ./cpu/

var benchConvs = []struct {
	name string
	p    accel.ConvParams
}{
	{"lenet_conv1", accel.ConvParams{C: 1, H: 28, W: 28, K: 20, KH: 5, KW: 5}},
	{"lenet_conv2", accel.ConvParams{C: 20, H: 12, W: 12, K: 50, KH: 5, KW: 5}},
	{"dw3x3_32x56x56", accel.ConvParams{C: 32, H: 56, W: 56, K: 32, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 32}},
}

type convArgs struct {
	p              accel.ConvParams
	x, w, b, y, dy []float32
}

func newConvArgs(p accel.ConvParams, n int) convArgs {
	p.N = n
	r := rand.New(rand.NewPCG(7, 7))
	nx, nw, ny := p.Sizes()
	return convArgs{p, kRand(r, nx), kRand(r, nw), kRand(r, p.K), make([]float32, ny), kRand(r, ny)}
}

func reportFlops(b *testing.B, macs int64) {
	b.ReportMetric(2*float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkConvForward(b *testing.B) {
	old := ISA()
	defer SetISA(old)
	for _, c := range benchConvs {
		for _, n := range []int{1, 64} {
			a := newConvArgs(c.p, n)
			for _, level := range SupportedISAs() {
				for _, threads := range []int{1, 2} {
					k := NewKernels(threads)
					b.Run(fmt.Sprintf("%s/b%d/%s/t%d", c.name, n, level, threads), func(b *testing.B) {
						if err := SetISA(level); err != nil {
							b.Fatal(err)
						}
						for i := 0; i < b.N; i++ {
							if err := k.Conv2D(a.p, a.x, a.w, a.b, accel.ActReLU, a.y); err != nil {
								b.Fatal(err)
							}
						}
						reportFlops(b, a.p.MACs())
					})
				}
			}
			b.Run(fmt.Sprintf("%s/b%d/ref", c.name, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := (ref.Kernels{}).Conv2D(a.p, a.x, a.w, a.b, accel.ActReLU, a.y); err != nil {
						b.Fatal(err)
					}
				}
				reportFlops(b, a.p.MACs())
			})
		}
	}
}

// BenchmarkConvBackward times data + filter (+bias) gradients at batch 64,
// the training step's share of a convolution.
func BenchmarkConvBackward(b *testing.B) {
	for _, c := range benchConvs {
		a := newConvArgs(c.p, 64)
		dx, dw := make([]float32, len(a.x)), make([]float32, len(a.w))
		db := make([]float32, a.p.K)
		impls := []struct {
			name string
			k    accel.Kernels
		}{{"cpu/t1", NewKernels(1)}, {"cpu/t2", NewKernels(2)}, {"ref", ref.Kernels{}}}
		for _, im := range impls {
			b.Run(fmt.Sprintf("%s/b64/%s", c.name, im.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := im.k.Conv2DBackwardData(a.p, a.w, a.dy, dx); err != nil {
						b.Fatal(err)
					}
					if err := im.k.Conv2DBackwardFilter(a.p, a.x, a.dy, dw, db); err != nil {
						b.Fatal(err)
					}
				}
				reportFlops(b, 2*a.p.MACs())
			})
		}
	}
}
