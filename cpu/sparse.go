package cpu

/*
#include "sparse.h"
#include "conv.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// CheckCSR validates s as a rows×cols CSR matrix: RowPtr has rows+1
// non-decreasing entries from 0 to len(ColIdx) = len(Val), and every column
// index is in [0, cols).
func CheckCSR(s *accel.SparseWeights, rows, cols int) error {
	switch {
	case s == nil:
		return fmt.Errorf("no sparse weights")
	case s.Rows != rows || s.Cols != cols:
		return fmt.Errorf("sparse weights are %d×%d, want %d×%d", s.Rows, s.Cols, rows, cols)
	case len(s.RowPtr) != rows+1:
		return fmt.Errorf("RowPtr has %d entries, want %d", len(s.RowPtr), rows+1)
	case len(s.ColIdx) != len(s.Val):
		return fmt.Errorf("%d column indices for %d values", len(s.ColIdx), len(s.Val))
	case s.RowPtr[0] != 0 || int(s.RowPtr[rows]) != len(s.Val):
		return fmt.Errorf("RowPtr runs from %d to %d, want 0 to %d", s.RowPtr[0], s.RowPtr[rows], len(s.Val))
	}
	for r := 0; r < rows; r++ {
		if s.RowPtr[r+1] < s.RowPtr[r] {
			return fmt.Errorf("RowPtr decreases at row %d", r)
		}
	}
	for e, c := range s.ColIdx {
		if c < 0 || int(c) >= cols {
			return fmt.Errorf("column index %d of entry %d outside [0,%d)", c, e, cols)
		}
	}
	return nil
}

// csrChecked remembers which SparseWeights passed CheckCSR (keyed weakly,
// with the slices it saw), so the O(nnz) validation, as costly as the
// product itself, runs once per weights rather than once per call. The
// slices must not be modified in place after their first use.
var csrChecked sync.Map // weak.Pointer[accel.SparseWeights] → csrSeen

type csrSeen struct {
	rows, cols int
	rowPtr     *int32
	colIdx     *int32
	nnz        int
}

func checkCSRCached(s *accel.SparseWeights, rows, cols int) error {
	if s == nil {
		return CheckCSR(s, rows, cols)
	}
	seen := csrSeen{rows: rows, cols: cols, nnz: len(s.ColIdx)}
	if len(s.RowPtr) > 0 {
		seen.rowPtr = &s.RowPtr[0]
	}
	if len(s.ColIdx) > 0 {
		seen.colIdx = &s.ColIdx[0]
	}
	key := weak.Make(s)
	if v, ok := csrChecked.Load(key); ok && v.(csrSeen) == seen && len(s.Val) == seen.nnz {
		return nil
	}
	if err := CheckCSR(s, rows, cols); err != nil {
		return err
	}
	if _, loaded := csrChecked.Swap(key, seen); !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[accel.SparseWeights]) { csrChecked.Delete(k) }, key)
	}
	return nil
}

func i32p(s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

// spRows runs one CSR row band [r0, r1) of y = S·X on the C kernel.
func spRows(isa C.int, s *accel.SparseWeights, r0, r1, p int, x []float32, ldx int, y []float32, ldy int) {
	xp := (*C.float)(unsafe.Pointer(&x[0]))
	if p == 1 && ldx == 1 {
		C.hw_spmv(isa, C.int(r1-r0), i32p(s.RowPtr[r0:]), i32p(s.ColIdx), cfloats(s.Val), xp, (*C.float)(&y[r0*ldy]))
		return
	}
	C.hw_spmm(isa, C.int(r1-r0), C.int(p), i32p(s.RowPtr[r0:]), i32p(s.ColIdx), cfloats(s.Val), xp, C.long(ldx),
		(*C.float)(&y[r0*ldy]), C.long(ldy))
}

// spLinear computes y[n×out] = act(x·dense(s)ᵀ + bias) with s out×in CSR:
// one gather dot product per non-zero row and sample for small batches,
// else a sparse×dense product over the transposed batch.
func spLinear(threads, n, in, out int, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	const kernel = "splinear"
	switch {
	case n <= 0 || in <= 0 || out <= 0:
		return fmt.Errorf("%s: sizes must be positive (n=%d in=%d out=%d)", kernel, n, in, out)
	case len(x) != n*in:
		return fmt.Errorf("%s: x has %d elements, want %d", kernel, len(x), n*in)
	case len(y) != n*out:
		return fmt.Errorf("%s: y has %d elements, want %d", kernel, len(y), n*out)
	}
	if err := checkCSRCached(s, out, in); err != nil {
		return fmt.Errorf("%s: %w", kernel, err)
	}
	if err := checkBiasAct(kernel, bias, out, act); err != nil {
		return err
	}
	isa := cISA()
	work := int64(len(s.Val)) * int64(n)
	if n < 4 {
		for i := 0; i < n; i++ {
			xi, yi := x[i*in:(i+1)*in], y[i*out:(i+1)*out]
			parallel(threads, out, work, func(r0, r1 int) { spRows(isa, s, r0, r1, 1, xi, 1, yi, 1) })
		}
		C.hw_sp_biasact(C.int(out), C.int(n), 1, C.long(out), cfloats(bias), C.int(act), (*C.float)(&y[0]))
		return nil
	}
	xt := getF32(in * n)
	defer f32Pool.Put(xt)
	yt := getF32(out * n)
	defer f32Pool.Put(yt)
	for i := 0; i < n; i++ {
		for j, v := range x[i*in : (i+1)*in] {
			(*xt)[j*n+i] = v
		}
	}
	parallel(threads, out, work, func(r0, r1 int) { spRows(isa, s, r0, r1, n, *xt, n, *yt, n) })
	for r := 0; r < out; r++ {
		for i, v := range (*yt)[r*n : (r+1)*n] {
			y[i*out+r] = v
		}
	}
	C.hw_sp_biasact(C.int(out), C.int(n), 1, C.long(out), cfloats(bias), C.int(act), (*C.float)(&y[0]))
	return nil
}

// spConv2D computes act(conv(x, dense(s)) + bias), rows of s output
// channels and columns (input channel within the group, ky, kx): per image
// and group the input is unrolled to the (C/G·KH·KW)×(OH·OW) patch matrix
// (a 1×1, stride-1, unpadded convolution uses the input itself) and
// multiplied by the group's CSR rows.
func spConv2D(threads int, p accel.ConvParams, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	const kernel = "spconv2d"
	pn, err := ref.CheckConv(kernel, p, len(x), -1, len(y))
	if err != nil {
		return err
	}
	_, nw, _ := pn.Sizes()
	if err := checkCSRCached(s, pn.K, nw/pn.K); err != nil {
		return fmt.Errorf("%s: %w", kernel, err)
	}
	if err := checkBiasAct(kernel, bias, pn.K, act); err != nil {
		return err
	}
	cg, kg := pn.C/pn.Groups, pn.K/pn.Groups
	kk := cg * pn.KH * pn.KW
	oh, ow := pn.OutH(), pn.OutW()
	hw, pix := pn.H*pn.W, oh*ow
	direct := pn.KH == 1 && pn.KW == 1 && pn.StrideH == 1 && pn.StrideW == 1 && pn.PadH == 0 && pn.PadW == 0
	var col *[]float32
	if !direct {
		col = getF32(kk * pix)
		defer f32Pool.Put(col)
	}
	isa := cISA()
	gp := pn // one group's channels, as hw_im2col reads them
	gp.C = cg
	gcp := convC(gp)
	for img := 0; img < pn.N; img++ {
		for g := 0; g < pn.Groups; g++ {
			xg := x[(img*pn.C+g*cg)*hw : (img*pn.C+(g+1)*cg)*hw]
			if !direct {
				C.hw_im2col(&gcp, (*C.float)(&xg[0]), (*C.float)(&(*col)[0]), C.long(pix))
				xg = *col
			}
			yimg := y[img*pn.K*pix : (img+1)*pn.K*pix]
			parallel(threads, kg, int64(len(s.Val))*int64(pix)/int64(pn.Groups), func(r0, r1 int) {
				spRows(isa, s, g*kg+r0, g*kg+r1, pix, xg, pix, yimg, pix)
			})
		}
		C.hw_sp_biasact(C.int(pn.K), C.int(pix), C.long(pix), 1, cfloats(bias), C.int(act), (*C.float)(&y[img*pn.K*pix]))
	}
	return nil
}
