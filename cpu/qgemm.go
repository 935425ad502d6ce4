package cpu

/*
#include "qgemm.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	xcpu "golang.org/x/sys/cpu"
)

// The integer kernels use the ISA level of isa.go, and at the AVX-512 level
// the VNNI dot-product instruction (vpdpbusd) when the CPU has it and it is
// not switched off with SetVNNI (tests switch it off to cover the plain
// AVX-512 path on a VNNI machine).
var (
	hasVNNI = C.HW_X86 == 1 && xcpu.X86.HasAVX512VNNI
	useVNNI atomic.Bool
)

func init() { useVNNI.Store(hasVNNI) }

// HasVNNI reports whether the CPU has AVX-512 VNNI.
func HasVNNI() bool { return hasVNNI }

// SetVNNI switches the VNNI path of the int8 kernels on or off; switching it
// on fails when the CPU lacks VNNI.
func SetVNNI(on bool) error {
	if on && !hasVNNI {
		return fmt.Errorf("AVX-512 VNNI is not supported by this CPU")
	}
	useVNNI.Store(on)
	return nil
}

// QISA names the level the int8 kernels use now: the ISA() level,
// "avx512+vnni" or "arm64+dotprod".
func QISA() string {
	switch qisa() {
	case C.HW_QISA_VNNI:
		return "avx512+vnni"
	case C.HW_QISA_DOTPROD:
		return "arm64+dotprod"
	}
	return ISA()
}

func qisa() C.int {
	l := cISA()
	if l == C.HW_ISA_AVX512 && useVNNI.Load() {
		return C.HW_QISA_VNNI
	}
	if l == C.HW_ISA_ARM64 && useDotProd.Load() {
		return C.HW_QISA_DOTPROD
	}
	return l
}

// QGemm computes, in exact int32 arithmetic, for i < m and j < n,
//
//	c[i·rsc + j·csc] = Σ_{p<k} a[i·lda + p]·b[j·ldb + p]
//
// with a uint8 (m rows of k) and b int8 (n rows of k): the product A·Bᵀ
// that int8 Linear and im2col convolution reduce to. The work is split over
// up to threads goroutines (≤ 0: all cores) by bands of rows of b. rsc and
// csc must be positive.
func QGemm(m, n, k int, a []uint8, lda int, b []int8, ldb int, c []int32, rsc, csc int, threads int) error {
	const maxInt32 = 1<<31 - 1
	switch {
	case m < 0 || n < 0 || k < 0:
		return fmt.Errorf("qgemm: negative size m=%d n=%d k=%d", m, n, k)
	case m > maxInt32 || n > maxInt32 || k > maxInt32 || lda > maxInt32 || ldb > maxInt32:
		return fmt.Errorf("qgemm: size or leading dimension exceeds 2³¹−1")
	case m == 0 || n == 0:
		return nil
	case lda < k || ldb < k:
		return fmt.Errorf("qgemm: leading dimensions lda=%d ldb=%d smaller than k=%d", lda, ldb, k)
	case rsc <= 0 || csc <= 0:
		return fmt.Errorf("qgemm: output strides rsc=%d csc=%d must be positive", rsc, csc)
	case len(a) < (m-1)*lda+k:
		return fmt.Errorf("qgemm: a has %d elements, needs %d for %d rows of %d (lda %d)", len(a), (m-1)*lda+k, m, k, lda)
	case len(b) < (n-1)*ldb+k:
		return fmt.Errorf("qgemm: b has %d elements, needs %d for %d rows of %d (ldb %d)", len(b), (n-1)*ldb+k, n, k, ldb)
	case len(c) < (m-1)*rsc+(n-1)*csc+1:
		return fmt.Errorf("qgemm: c has %d elements, needs %d", len(c), (m-1)*rsc+(n-1)*csc+1)
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				c[i*rsc+j*csc] = 0
			}
		}
		return nil
	}
	isa := qisa()
	parallel(threads, n, int64(m)*int64(n)*int64(k), func(j0, j1 int) {
		C.hw_qgemm(isa, C.int(m), C.int(j1-j0), C.int(k), (*C.uint8_t)(unsafe.Pointer(&a[0])), C.int(lda),
			(*C.int8_t)(unsafe.Pointer(&b[j0*ldb])), C.int(ldb), (*C.int32_t)(unsafe.Pointer(&c[j0*csc])), C.long(rsc), C.long(csc))
	})
	return nil
}

// qParallelMinWork is the smallest multiply-add count that the int8 and
// sparse kernels split across goroutines; below it the split costs more
// than it saves.
const qParallelMinWork = 1 << 18

// parallel splits [0, n) into bands of multiples of 4 over up to threads
// goroutines (≤ 0: all cores) when work (multiply-adds) is large enough to
// pay for them, and runs f on each band.
func parallel(threads, n int, work int64, f func(i0, i1 int)) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if threads == 1 || n < 8 || work < qParallelMinWork {
		f(0, n)
		return
	}
	step := (n + threads - 1) / threads
	step = (step + 3) &^ 3
	var wg sync.WaitGroup
	for s := 0; s < n; s += step {
		wg.Add(1)
		go func(s, e int) {
			defer wg.Done()
			f(s, e)
		}(s, min(s+step, n))
	}
	wg.Wait()
}

// qgemmPacked computes c[i·ldc + j] = Σ_p a[i·lda + p]·w[j·k + p] exactly
// with the broadcast VNNI kernel (w packed by packB); a has (k+3)&^3
// readable bytes per row. It needs AVX-512 VNNI.
func qgemmPacked(m, n, k int, a []uint8, lda int, w []int8, c []int32, ldc int) error {
	k4 := (k + 3) &^ 3
	switch {
	case !hasVNNI:
		return fmt.Errorf("qgemm packed: AVX-512 VNNI is not supported by this CPU")
	case m <= 0 || n <= 0 || k <= 0 || lda < k4 || ldc < n:
		return fmt.Errorf("qgemm packed: bad sizes m=%d n=%d k=%d lda=%d ldc=%d", m, n, k, lda, ldc)
	case len(a) < (m-1)*lda+k4 || len(w) != n*k || len(c) < (m-1)*ldc+n:
		return fmt.Errorf("qgemm packed: short operands")
	}
	bp := packB(w, n, k)
	C.hw_qgemm_packed_vnni(C.int(m), C.int(n), C.int(k4), (*C.uint8_t)(&a[0]), C.int(lda), (*C.int8_t)(&bp[0]), (*C.int32_t)(&c[0]), C.int(ldc))
	return nil
}
