package cpu

/*
#include "act.h"
*/
import "C"

import (
	"unsafe"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// elemChunk is the fewest elements an element-wise kernel gives one
// goroutine: below it, starting the goroutine costs more than the work.
const elemChunk = 1 << 15

func fptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

// BiasAct computes y = act(x + bias[channel]) for x of n×c×hw elements
// (bias may be nil; y may alias x), split by planes across threads.
func (k *Kernels) BiasAct(n, c, hw int, x, bias []float32, act accel.Act, y []float32) error {
	const name = "biasact"
	if err := ref.CheckPlanes(name, n, c, hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "x", len(x), n*c*hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "y", len(y), n*c*hw); err != nil {
		return err
	}
	if bias != nil {
		if err := ref.CheckLen(name, "bias", len(bias), c); err != nil {
			return err
		}
	}
	if err := ref.CheckAct(name, act); err != nil {
		return err
	}
	isa := cISA()
	k.parallel(n*c, max(1, elemChunk/hw), func(lo, hi, _ int) {
		C.hw_bias_act(isa, fptr(y), fptr(x), C.long(lo), C.long(hi), C.int(c), C.long(hw), fptr(bias), C.int(act))
	})
	return nil
}

// ActBackward computes dx = dy·act'(pre). ReLU and ReLU6 may be given only
// post (the output); hard-swish needs pre. dx may be the same slice as dy
// (or as pre/post), not a partial overlap. The derivative at the kinks is
// that of ref.ActGrad.
func (k *Kernels) ActBackward(act accel.Act, pre, post, dy, dx []float32) error {
	src, err := ref.CheckActBackward(act, pre, post, dy, dx)
	if err != nil {
		return err
	}
	if act == accel.ActNone {
		copy(dx, dy)
		return nil
	}
	isa := cISA()
	k.parallel(len(dy), elemChunk, func(lo, hi, _ int) {
		C.hw_act_bwd(isa, C.int(act), fptr(src[lo:hi]), fptr(dy[lo:hi]), fptr(dx[lo:hi]), C.long(hi-lo))
	})
	return nil
}

// BiasBackward computes dbias[c] = Σ dy over n and hw (double sums),
// split by channels across threads.
func (k *Kernels) BiasBackward(n, c, hw int, dy, dbias []float32) error {
	const name = "bias backward"
	if err := ref.CheckPlanes(name, n, c, hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "dy", len(dy), n*c*hw); err != nil {
		return err
	}
	if err := ref.CheckLen(name, "dbias", len(dbias), c); err != nil {
		return err
	}
	k.parallel(c, max(1, elemChunk/(n*hw)), func(lo, hi, _ int) {
		C.hw_bias_bwd(fptr(dy), C.int(n), C.int(c), C.long(hw), C.int(lo), C.int(hi), fptr(dbias))
	})
	return nil
}
