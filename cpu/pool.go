package cpu

/*
#include "pool.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"hwnas/accel"
	"hwnas/accel/ref"
)

func poolC(p accel.PoolParams) C.hw_pool_t {
	return C.hw_pool_t{
		H: C.int(p.H), W: C.int(p.W), KH: C.int(p.KH), KW: C.int(p.KW),
		sh: C.int(max(p.StrideH, 1)), sw: C.int(max(p.StrideW, 1)), ph: C.int(p.PadH), pw: C.int(p.PadW),
		OH: C.int(p.OutH()), OW: C.int(p.OutW()),
	}
}

func iptr(s []int32) *C.int {
	if len(s) == 0 {
		return nil
	}
	return (*C.int)(unsafe.Pointer(&s[0]))
}

// planeChunk is how many planes of the given size make one goroutine's
// share of a memory-bound kernel.
func planeChunk(size int) int { return max(1, elemChunk/max(size, 1)) }

// MaxPool2D writes the window maxima to y (padding never wins, the first
// maximum in row-major order on ties) and, when argmax is not nil, the flat
// index within the input plane of each; planes split across threads.
func (k *Kernels) MaxPool2D(p accel.PoolParams, x, y []float32, argmax []int32) error {
	if err := ref.CheckPool("maxpool", p, len(x), len(y)); err != nil {
		return err
	}
	if argmax != nil {
		if err := ref.CheckLen("maxpool", "argmax", len(argmax), len(y)); err != nil {
			return err
		}
	}
	cp, isa := poolC(p), cISA()
	xp, yp, ap := fptr(x), fptr(y), iptr(argmax)
	k.parallel(p.N*p.C, planeChunk(p.H*p.W*p.KH*p.KW/max(p.StrideH*p.StrideW, 1)), func(lo, hi, _ int) {
		C.hw_maxpool(isa, &cp, C.long(lo), C.long(hi), xp, yp, ap)
	})
	return nil
}

// MaxPool2DBackward zeroes dx and adds each dy at its argmax. An argmax
// outside its plane is an error (checked before anything is written).
func (k *Kernels) MaxPool2DBackward(p accel.PoolParams, dy []float32, argmax []int32, dx []float32) error {
	const name = "maxpool backward"
	if err := ref.CheckPool(name, p, len(dx), len(dy)); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "argmax", len(argmax), len(dy)); err != nil {
		return err
	}
	plane := int32(p.H * p.W)
	for i, a := range argmax {
		if a < 0 || a >= plane {
			return fmt.Errorf("%s: argmax[%d]=%d outside the %d-element plane", name, i, a, plane)
		}
	}
	cp, isa := poolC(p), cISA()
	dyp, ap, dxp := fptr(dy), iptr(argmax), fptr(dx)
	k.parallel(p.N*p.C, planeChunk(p.H*p.W), func(lo, hi, _ int) {
		C.hw_maxpool_bwd(isa, &cp, C.long(lo), C.long(hi), dyp, ap, dxp)
	})
	return nil
}

// AvgPool2D writes the mean of the in-bounds elements of each window.
func (k *Kernels) AvgPool2D(p accel.PoolParams, x, y []float32) error {
	if err := ref.CheckPool("avgpool", p, len(x), len(y)); err != nil {
		return err
	}
	cp, isa := poolC(p), cISA()
	xp, yp := fptr(x), fptr(y)
	k.parallel(p.N*p.C, planeChunk(p.H*p.W*p.KH*p.KW/max(p.StrideH*p.StrideW, 1)), func(lo, hi, _ int) {
		C.hw_avgpool(isa, &cp, C.long(lo), C.long(hi), xp, yp)
	})
	return nil
}

// AvgPool2DBackward spreads each dy evenly over the in-bounds elements of
// its window.
func (k *Kernels) AvgPool2DBackward(p accel.PoolParams, dy, dx []float32) error {
	if err := ref.CheckPool("avgpool backward", p, len(dx), len(dy)); err != nil {
		return err
	}
	cp := poolC(p)
	dyp, dxp := fptr(dy), fptr(dx)
	k.parallel(p.N*p.C, planeChunk(p.H*p.W*p.KH*p.KW/max(p.StrideH*p.StrideW, 1)), func(lo, hi, _ int) {
		C.hw_avgpool_bwd(&cp, C.long(lo), C.long(hi), dyp, dxp)
	})
	return nil
}

// GlobalAvgPool reduces each of the n·c planes of hw elements to its mean.
func (k *Kernels) GlobalAvgPool(n, c, hw int, x, y []float32) error {
	const name = "globalavgpool"
	if err := ref.CheckPlanes(name, n, c, hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "x", len(x), n*c*hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "y", len(y), n*c); err != nil {
		return err
	}
	xp, yp := fptr(x), fptr(y)
	k.parallel(n*c, planeChunk(hw), func(lo, hi, _ int) {
		C.hw_gap(C.long(lo), C.long(hi), C.long(hw), xp, yp)
	})
	return nil
}

// GlobalAvgPoolBackward writes dx = dy/hw over each plane.
func (k *Kernels) GlobalAvgPoolBackward(n, c, hw int, dy, dx []float32) error {
	const name = "globalavgpool backward"
	if err := ref.CheckPlanes(name, n, c, hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "dy", len(dy), n*c); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "dx", len(dx), n*c*hw); err != nil {
		return err
	}
	dyp, dxp := fptr(dy), fptr(dx)
	k.parallel(n*c, planeChunk(hw), func(lo, hi, _ int) {
		C.hw_gap_bwd(C.long(lo), C.long(hi), C.long(hw), dyp, dxp)
	})
	return nil
}
