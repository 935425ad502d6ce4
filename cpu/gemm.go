package cpu

/*
#include "gemm.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// parallelMinMACs is the smallest product (m·n·k multiply-adds, about 17 µs
// on one AVX-512 core) that Sgemm splits across goroutines: below it,
// waking a second thread costs more than it saves.
const parallelMinMACs = 1 << 21

// threadMinMACs is the smallest product (n = 512 cubed) whose bands run on
// threads started in C (hw_sgemm_bands) rather than goroutines: starting
// and joining a thread cost 50 µs or more on the 2-vCPU AMD EPYC Zen 5
// VM (2 threads at n = 128 took 101 µs, one 47), so below this the
// goroutines' cheaper start wins.
const threadMinMACs = 1 << 27

// Sgemm computes, in float32 with row-major storage,
//
//	C = alpha·op(A)·op(B) + beta·C
//
// where op(A) is m×k, op(B) is k×n and C is m×n; op(X) is Xᵀ when the
// matching trans flag is set, so A is stored m×k (k×m when transposed) with
// leading dimension lda, B k×n (n×k when transposed) with ldb, and C m×n
// with ldc. When beta is 0, C is overwritten without being read (NaN in C
// does not propagate). The work is split by blocks of C over threads
// (threads <= 0: runtime.NumCPU()), each block one run of the
// single-threaded C kernel hw_sgemm at the current ISA level: goroutines,
// one cgo call each, for small products, and threads started inside one
// cgo call from threadMinMACs multiply-adds up; the result is
// bit-identical for every thread count (not across ISA levels).
//
// It returns an error naming the argument when a size is negative, a leading
// dimension is too small, or a slice is too short for the shape.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) error {
	if err := checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	isa := cISA()
	call := func(i0, i1, j0, j1 int) {
		// Offsets of the block's first element in each operand.
		ao, bo := i0*lda, j0
		if transA {
			ao = i0
		}
		if transB {
			bo = j0 * ldb
		}
		var ap, bp *C.float
		if k > 0 {
			ap = (*C.float)(unsafe.Pointer(&a[ao]))
			bp = (*C.float)(unsafe.Pointer(&b[bo]))
		}
		C.hw_sgemm(isa, cbool(transA), cbool(transB), C.int(i1-i0), C.int(j1-j0), C.int(k), C.float(alpha),
			ap, C.int(lda), bp, C.int(ldb), C.float(beta), (*C.float)(unsafe.Pointer(&c[i0*ldc+j0])), C.int(ldc))
	}
	if threads == 1 || int64(m)*int64(n)*int64(k) < parallelMinMACs {
		call(0, m, 0, n)
		return nil
	}
	// Split the longer side of C into equal bands, cut at multiples of 12
	// rows or 64 columns (multiples of every level's register tile), so
	// every element is summed in the same order whatever the thread count;
	// a last band thinner than that joins the one before it (so no band
	// takes the m <= 4 dot-product path unless the whole product does).
	byRows := m >= n
	total, unit := n, 64
	if byRows {
		total, unit = m, 12
	}
	step := (total + threads - 1) / threads
	step = (step + unit - 1) / unit * unit
	var bands [][2]int
	for s := 0; s < total; s += step {
		bands = append(bands, [2]int{s, min(s+step, total)})
	}
	if l := len(bands); l > 1 && bands[l-1][1]-bands[l-1][0] < unit {
		bands[l-2][1] = total
		bands = bands[:l-1]
	}
	band := func(r [2]int) {
		if byRows {
			call(r[0], r[1], 0, n)
		} else {
			call(0, m, r[0], r[1])
		}
	}
	if int64(m)*int64(n)*int64(k) < threadMinMACs {
		var wg sync.WaitGroup
		for _, r := range bands[:len(bands)-1] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				band(r)
			}()
		}
		band(bands[len(bands)-1]) // on the calling goroutine
		wg.Wait()
		return nil
	}
	// Large products run their bands on C threads started inside one cgo
	// call (hw_sgemm_bands), not on one goroutine per band: see gemm.h.
	bounds := make([]C.int, 0, 2*len(bands))
	for _, r := range bands {
		bounds = append(bounds, C.int(r[0]), C.int(r[1]))
	}
	C.hw_sgemm_bands(isa, cbool(byRows), C.int(len(bands)), &bounds[0], cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), fptr(a), C.int(lda), fptr(b), C.int(ldb), C.float(beta), fptr(c), C.int(ldc))
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// checkSgemm validates the shapes, leading dimensions and slice lengths of
// an Sgemm call.
func checkSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("sgemm: negative size m=%d n=%d k=%d", m, n, k)
	}
	const maxInt32 = 1<<31 - 1
	if m > maxInt32 || n > maxInt32 || k > maxInt32 || lda > maxInt32 || ldb > maxInt32 || ldc > maxInt32 {
		return fmt.Errorf("sgemm: size or leading dimension exceeds 2³¹−1")
	}
	ar, ac := m, k // stored rows and columns of A
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkOperand("A", transA, a, ar, ac, lda); err != nil {
		return err
	}
	if err := checkOperand("B", transB, b, br, bc, ldb); err != nil {
		return err
	}
	return checkOperand("C", false, c, m, n, ldc)
}

// checkOperand checks one rows×cols row-major operand with leading
// dimension ld stored in s.
func checkOperand(name string, trans bool, s []float32, rows, cols, ld int) error {
	t := ""
	if trans {
		t = " (transposed)"
	}
	if rows == 0 || cols == 0 {
		return nil // empty: never read, any leading dimension will do
	}
	if ld < cols {
		return fmt.Errorf("sgemm: leading dimension ld%s=%d of %s%s is smaller than its %d columns", lower(name), ld, name, t, cols)
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		return fmt.Errorf("sgemm: %s%s is %d×%d with ld%s=%d and needs %d elements, has %d", name, t, rows, cols, lower(name), ld, need, len(s))
	}
	return nil
}

func lower(name string) string {
	return string(rune(name[0]) + 'a' - 'A')
}
