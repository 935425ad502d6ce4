//go:build cgo

package cpu

import (
	"runtime"
	"sync"

	"hwnas/accel"
)

// Kernels implements accel.Kernels with the C kernels of this package at
// the current ISA level (ISA(), read at every call, so SetISA takes effect
// at once). Each call splits its work (over samples, planes or output
// channels) into at most Threads chunks, one goroutine and one cgo call per
// chunk. Scratch buffers (im2col patch matrices, per-thread partial
// gradients) come from a free list owned by the Kernels and are reused
// across calls, never allocated in C.
//
// A *Kernels is safe for concurrent use. Other files of the package add
// methods (int8 and sparse kernels); they may use parallel and the scratch
// free list.
type Kernels struct {
	// Threads bounds the goroutines one kernel call uses (≥ 1).
	Threads int

	mu   sync.Mutex
	free [][]float32 // scratch buffers not in use
}

var _ accel.Kernels = (*Kernels)(nil)

// NewKernels returns kernels using up to threads goroutines per call;
// threads ≤ 0 means runtime.NumCPU().
func NewKernels(threads int) *Kernels {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &Kernels{Threads: threads}
}

func (k *Kernels) threads() int {
	if k.Threads <= 0 {
		return 1
	}
	return k.Threads
}

// parallel splits [0,n) into at most Threads contiguous chunks of at least
// minChunk items (minChunk ≥ 1) and runs f on each, the last chunk on the
// calling goroutine. worker numbers the chunks from 0.
func (k *Kernels) parallel(n, minChunk int, f func(lo, hi, worker int)) {
	if n <= 0 {
		return
	}
	chunks := min(k.threads(), (n+max(minChunk, 1)-1)/max(minChunk, 1))
	if chunks <= 1 {
		f(0, n, 0)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < chunks; w++ {
		lo, hi := n*w/chunks, n*(w+1)/chunks
		if w == chunks-1 {
			f(lo, hi, w)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi, w)
		}()
	}
	wg.Wait()
}

// getScratch returns a buffer of n floats (contents undefined) from the
// free list, growing one when none is large enough.
func (k *Kernels) getScratch(n int) []float32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := -1
	for i, b := range k.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(k.free[best])) {
			best = i
		}
	}
	if best < 0 {
		if len(k.free) > 0 {
			// Every free buffer is too small: drop one, the new buffer
			// takes its place, so the list does not grow without bound.
			k.free = k.free[:len(k.free)-1]
		}
		return make([]float32, max(n, 1))
	}
	b := k.free[best]
	k.free = append(k.free[:best], k.free[best+1:]...)
	return b[:max(n, 1)]
}

// putScratch returns a buffer to the free list.
func (k *Kernels) putScratch(b []float32) {
	k.mu.Lock()
	k.free = append(k.free, b)
	k.mu.Unlock()
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C with Sgemm of gemm.go on
// Threads goroutines.
func (k *Kernels) Sgemm(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	return Sgemm(transA, transB, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc, k.threads())
}
