package cpu

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// threadCPUNS is the CPU time, in nanoseconds, that the calling OS thread
// has used.
func threadCPUNS(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatalf("thread CPU clock: %v", err)
	}
	return ts.Nano()
}

// benchCPU runs f b.N times on one locked OS thread and reports, besides
// the wall-clock ns/op, the calling thread's CPU time per call as
// "cpu-ns/op": with one-thread kernels (NewKernels(1), Sgemm threads=1)
// the work runs on that thread, so the figure leaves out the time the
// thread spends descheduled on a loaded machine.
func benchCPU(b *testing.B, f func() error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f(); err != nil { // warm up: caches, scratch buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := threadCPUNS(b)
	for i := 0; i < b.N; i++ {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	t1 := threadCPUNS(b)
	b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
}

// Pooling benchmarks with their naive twins: LeNet-5's max pools (2×2
// stride 2 over 20×24×24 and 50×8×8) forward without argmax (inference),
// with argmax (training) and backward, and a 3×3 stride-2 padded pool over
// 32×56×56, at batch 1 and 64, one thread.
//
//	nice go test -run '^$' -bench 'Pool' -benchtime 300ms ./cpu/
func BenchmarkPool(b *testing.B) {
	for _, c := range []struct {
		name string
		p    accel.PoolParams
	}{
		{"lenet_pool1", accel.PoolParams{C: 20, H: 24, W: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
		{"lenet_pool2", accel.PoolParams{C: 50, H: 8, W: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
		{"pool3x3_s2_32x56x56", accel.PoolParams{C: 32, H: 56, W: 56, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
	} {
		for _, n := range []int{1, 64} {
			p := c.p
			p.N = n
			r := rand.New(rand.NewPCG(8, 8))
			x := kRand(r, p.N*p.C*p.H*p.W)
			y := make([]float32, p.N*p.C*p.OutH()*p.OutW())
			dx := make([]float32, len(x))
			am := make([]int32, len(y))
			for _, im := range []struct {
				name string
				k    accel.Kernels
			}{{"cpu", NewKernels(1)}, {"ref", ref.Kernels{}}} {
				if err := im.k.MaxPool2D(p, x, y, am); err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("%s/b%d/max/%s", c.name, n, im.name), func(b *testing.B) {
					benchCPU(b, func() error { return im.k.MaxPool2D(p, x, y, nil) })
				})
				b.Run(fmt.Sprintf("%s/b%d/max_argmax/%s", c.name, n, im.name), func(b *testing.B) {
					benchCPU(b, func() error { return im.k.MaxPool2D(p, x, y, am) })
				})
				b.Run(fmt.Sprintf("%s/b%d/max_bwd/%s", c.name, n, im.name), func(b *testing.B) {
					benchCPU(b, func() error { return im.k.MaxPool2DBackward(p, y, am, dx) })
				})
				b.Run(fmt.Sprintf("%s/b%d/avg/%s", c.name, n, im.name), func(b *testing.B) {
					benchCPU(b, func() error { return im.k.AvgPool2D(p, x, y) })
				})
			}
		}
	}
}
