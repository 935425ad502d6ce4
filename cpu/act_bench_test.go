package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
)

// Element-wise training kernels at LeNet-5's conv1 output (64×20×24×24),
// one thread, timed by thread CPU time (cpu-ns/op): ActBackward in place
// (dx = dy, as training calls it) and into a separate dx, BiasBackward.
//
//	nice go test -run '^$' -bench 'ActBackward|BiasBackward' -benchtime 300ms ./cpu/
func BenchmarkActBackward(b *testing.B) {
	const n, c, hw = 64, 20, 576
	r := rand.New(rand.NewPCG(4, 4))
	src, dy := kRand(r, n*c*hw), kRand(r, n*c*hw)
	dx := make([]float32, len(dy))
	k := NewKernels(1)
	for _, act := range []accel.Act{accel.ActReLU, accel.ActReLU6, accel.ActHardSwish} {
		b.Run(fmt.Sprintf("%v/inplace", act), func(b *testing.B) {
			benchCPU(b, func() error { return k.ActBackward(act, src, nil, dy, dy) })
		})
		b.Run(fmt.Sprintf("%v/separate", act), func(b *testing.B) {
			benchCPU(b, func() error { return k.ActBackward(act, src, nil, dy, dx) })
		})
	}
}

func BenchmarkBiasBackward(b *testing.B) {
	for _, s := range [][3]int{{64, 20, 576}, {64, 50, 64}, {64, 500, 1}} {
		n, c, hw := s[0], s[1], s[2]
		dy := kRand(rand.New(rand.NewPCG(5, 5)), n*c*hw)
		db := make([]float32, c)
		k := NewKernels(1)
		b.Run(fmt.Sprintf("n%d_c%d_hw%d", n, c, hw), func(b *testing.B) {
			benchCPU(b, func() error { return k.BiasBackward(n, c, hw, dy, db) })
		})
	}
}

// BiasAct at LeNet-5's fc1 output (64×500, hw = 1) and conv1 output.
func BenchmarkBiasAct(b *testing.B) {
	for _, s := range [][3]int{{64, 500, 1}, {1, 500, 1}, {64, 20, 576}} {
		n, c, hw := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(6, 6))
		x, bias := kRand(r, n*c*hw), kRand(r, c)
		k := NewKernels(1)
		b.Run(fmt.Sprintf("n%d_c%d_hw%d", n, c, hw), func(b *testing.B) {
			benchCPU(b, func() error { return k.BiasAct(n, c, hw, x, bias, accel.ActReLU, x) })
		})
	}
}
