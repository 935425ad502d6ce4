//go:build cuda

package cuda

import (
	"fmt"
	"sort"
	"time"
	"unsafe"

	"gorgonia.org/cu"
)

// Sgemm computes c = a·b (row-major m×k times k×n) on the GPU with the
// kernel the plans use, launching it runs times after one warm-up launch,
// and returns the median time of one launch by CUDA events. The copies of
// the operands are not timed.
func (b *Backend) Sgemm(m, n, k int, a, bm, c []float32, runs int) (time.Duration, error) {
	if m <= 0 || n <= 0 || k <= 0 || len(a) != m*k || len(bm) != k*n || len(c) != m*n {
		return 0, fmt.Errorf("cuda: sgemm %d×%d×%d with %d, %d, %d floats", m, n, k, len(a), len(bm), len(c))
	}
	runs = max(runs, 1)
	l := sgemmLaunch(m, n, k, b.lim)
	var med time.Duration
	err := b.ctx.Do(func() error {
		var bufs []uintptr
		defer func() {
			for _, p := range bufs {
				b.pool.put(p)
			}
		}()
		ptrs := make([]uintptr, 3)
		for i, src := range [][]float32{a, bm, c} {
			p, err := b.pool.get(4 * int64(len(src)))
			if err != nil {
				return err
			}
			bufs = append(bufs, p)
			ptrs[i] = p
			if i < 2 {
				if err := cu.MemcpyHtoD(cu.DevicePtr(p), unsafe.Pointer(&src[0]), 4*int64(len(src))); err != nil {
					return err
				}
			}
		}
		if err := cu.Synchronize(); err != nil { // see Program.build
			return err
		}
		fn, err := b.function(l.Kernel)
		if err != nil {
			return err
		}
		bl := &boundLaunch{fn: fn, l: l, vals: make([]uint64, len(l.Args)), label: l.Kernel}
		for i, g := range l.Args {
			if g.Kind == argTensor {
				bl.vals[i] = uint64(ptrs[g.V])
			} else {
				bl.vals[i] = uint64(g.V)
			}
		}
		for i := range bl.vals {
			bl.ptrs = append(bl.ptrs, unsafe.Pointer(&bl.vals[i]))
		}
		start, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			return err
		}
		defer cu.DestroyEvent(&start)
		stop, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			return err
		}
		defer cu.DestroyEvent(&stop)
		if err := bl.run(b.stream); err != nil {
			return err
		}
		times := make([]time.Duration, 0, runs)
		for r := 0; r < runs; r++ {
			if err := start.Record(b.stream); err != nil {
				return err
			}
			if err := bl.run(b.stream); err != nil {
				return err
			}
			if err := stop.Record(b.stream); err != nil {
				return err
			}
			if err := stop.Synchronize(); err != nil {
				return err
			}
			ms, err := start.Elapsed(stop)
			if err != nil {
				return err
			}
			times = append(times, time.Duration(ms*float64(time.Millisecond)))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		med = times[len(times)/2]
		if err := b.stream.Synchronize(); err != nil {
			return err
		}
		return cu.MemcpyDtoH(unsafe.Pointer(&c[0]), cu.DevicePtr(ptrs[2]), 4*int64(len(c)))
	})
	return med, err
}
