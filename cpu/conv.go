package cpu

/*
#include "conv.h"
*/
import "C"

import (
	"hwnas/accel"
	"hwnas/accel/ref"
)

// workChunk is the fewest multiply-adds a convolution gives one goroutine.
const workChunk = 1 << 16

// convC converts normalised parameters to the C description.
func convC(p accel.ConvParams) C.hw_conv_t {
	return C.hw_conv_t{
		N: C.int(p.N), C: C.int(p.C), H: C.int(p.H), W: C.int(p.W), K: C.int(p.K), KH: C.int(p.KH), KW: C.int(p.KW),
		sh: C.int(p.StrideH), sw: C.int(p.StrideW), ph: C.int(p.PadH), pw: C.int(p.PadW),
		dh: C.int(p.DilH), dw: C.int(p.DilW), G: C.int(p.Groups), OH: C.int(p.OutH()), OW: C.int(p.OutW()),
	}
}

// scratchSize is the per-thread scratch of the im2col kernels (patch
// matrices of hw_conv_batch samples side by side, and a staging matrix).
func scratchSize(cp *C.hw_conv_t) int { return int(C.hw_conv_scratch(cp)) }

// depthwise reports whether the dedicated depthwise kernel applies: one
// input and one output channel per group.
func depthwise(p accel.ConvParams) bool { return p.Groups == p.C && p.K == p.C }

// transposedDepthwise returns the depthwise convolution that maps dy to dx
// for a stride-1 depthwise p: dx[iy,ix] = Σ w[ky,kx]·dy[iy+ph−ky·dh, ix+pw−kx·dw]
// is a convolution of dy (OH×OW) with the flipped kernel and padding
// dil·(k−1) − pad, whose output is H×W. It reports false when that padding
// would be negative or the stride is not 1.
func transposedDepthwise(p accel.ConvParams) (accel.ConvParams, bool) {
	ph, pw := p.DilH*(p.KH-1)-p.PadH, p.DilW*(p.KW-1)-p.PadW
	if p.StrideH != 1 || p.StrideW != 1 || ph < 0 || pw < 0 {
		return p, false
	}
	t := p
	t.H, t.W, t.PadH, t.PadW = p.OutH(), p.OutW(), ph, pw
	if t.OutH() != p.H || t.OutW() != p.W {
		return p, false
	}
	return t, true
}

// minItems is how many items of perItem multiply-adds make one chunk.
func minItems(perItem int64) int {
	if perItem <= 0 {
		return 1
	}
	return int(max(1, (workChunk+perItem-1)/perItem))
}

// Conv2D computes y = act(conv(x, w) + bias) (bias may be nil). Paths, all
// giving the same result up to float32 rounding:
//   - depthwise (groups = C = K): the per-ISA depthwise kernel, planes split
//     across threads;
//   - 1×1, stride 1, no padding: GEMM straight on the input;
//   - otherwise im2col into a reused scratch matrix, then GEMM per group;
//     small feature maps put several samples side by side in one patch
//     matrix so that the GEMM is wide enough to run fast (hw_conv_batch).
//
// With at least Threads samples, each thread takes whole samples; with
// fewer, each sample's output channels are split across threads.
func (k *Kernels) Conv2D(p accel.ConvParams, x, w, bias []float32, act accel.Act, y []float32) error {
	const name = "conv2d"
	p, err := ref.CheckConv(name, p, len(x), len(w), len(y))
	if err != nil {
		return err
	}
	if bias != nil {
		if err := ref.CheckLen(name, "bias", len(bias), p.K); err != nil {
			return err
		}
	}
	if err := ref.CheckAct(name, act); err != nil {
		return err
	}
	cp := convC(p)
	isa := cISA()
	xp, wp, bp, yp, a := fptr(x), fptr(w), fptr(bias), fptr(y), C.int(act)
	macs := p.MACs() / int64(p.N)
	if p.Groups > 1 && depthwise(p) {
		k.parallel(p.N*p.C, minItems(macs/int64(p.C)), func(lo, hi, _ int) {
			C.hw_conv_dw(isa, &cp, C.int(lo), C.int(hi), xp, wp, bp, a, yp)
		})
		return nil
	}
	if p.N >= k.threads() || k.threads() == 1 {
		k.parallel(p.N, minItems(macs), func(lo, hi, _ int) {
			s := k.getScratch(scratchSize(&cp))
			C.hw_conv_fwd(isa, &cp, C.int(lo), C.int(hi), xp, wp, bp, a, fptr(s), yp)
			k.putScratch(s)
		})
		return nil
	}
	ohw := p.OutH() * p.OutW()
	direct := C.hw_conv_direct(&cp) != 0
	col := k.getScratch(p.C * p.KH * p.KW * ohw)
	defer k.putScratch(col)
	xs, ys := p.C*p.H*p.W, p.K*ohw
	for n := 0; n < p.N; n++ {
		src := fptr(x[n*xs:])
		if !direct {
			C.hw_im2col(&cp, src, fptr(col), C.long(ohw))
			src = fptr(col)
		}
		yn := fptr(y[n*ys:])
		k.parallel(p.K, minItems(macs/int64(p.K)), func(lo, hi, _ int) {
			C.hw_conv_rows(isa, &cp, C.int(lo), C.int(hi), wp, src, bp, a, yn)
		})
	}
	return nil
}

// Conv2DBackwardData computes dx = ∂L/∂x from dy (the gradient of the
// pre-activation output): per group, Wᵀ·dy (several small samples side by
// side, as in Conv2D) then col2im, or straight into dx on the 1×1 path.
// Depthwise convolutions with stride 1 run the forward depthwise kernel on
// dy with the flipped filter; other depthwise ones a scatter kernel.
// Samples (depthwise: planes) are split across threads, so a batch of one
// runs on one thread.
func (k *Kernels) Conv2DBackwardData(p accel.ConvParams, w, dy, dx []float32) error {
	p, err := ref.CheckConv("conv2d backward data", p, len(dx), len(w), len(dy))
	if err != nil {
		return err
	}
	cp := convC(p)
	isa := cISA()
	wp, dyp, dxp := fptr(w), fptr(dy), fptr(dx)
	macs := p.MACs() / int64(p.N)
	if p.Groups > 1 && depthwise(p) {
		if t, ok := transposedDepthwise(p); ok {
			// Stride 1: dx is the depthwise convolution of dy with the
			// flipped kernel, so the forward kernel's vector code runs it.
			flip := k.getScratch(len(w))
			defer k.putScratch(flip)
			taps := p.KH * p.KW
			for c := 0; c < p.C; c++ {
				for i := 0; i < taps; i++ {
					flip[c*taps+i] = w[c*taps+taps-1-i]
				}
			}
			ct, fp := convC(t), fptr(flip)
			k.parallel(p.N*p.C, minItems(macs/int64(p.C)), func(lo, hi, _ int) {
				C.hw_conv_dw(isa, &ct, C.int(lo), C.int(hi), dyp, fp, nil, C.int(accel.ActNone), dxp)
			})
			return nil
		}
		k.parallel(p.N*p.C, minItems(macs/int64(p.C)), func(lo, hi, _ int) {
			C.hw_conv_dw_bwd_data(&cp, C.int(lo), C.int(hi), wp, dyp, dxp)
		})
		return nil
	}
	k.parallel(p.N, minItems(macs), func(lo, hi, _ int) {
		col := k.getScratch(scratchSize(&cp))
		C.hw_conv_bwd_data(isa, &cp, C.int(lo), C.int(hi), wp, dyp, fptr(col), dxp)
		k.putScratch(col)
	})
	return nil
}

// Conv2DBackwardFilter computes dw = Σ_n dy_n·im2col(x_n)ᵀ per group and,
// when dbias is not nil, dbias = Σ dy over N, H, W. Samples are split
// across threads, each summing into its own partial dw (the first thread
// into dw itself), and the partials are added at the end; depthwise
// convolutions split channels instead and need no partials.
func (k *Kernels) Conv2DBackwardFilter(p accel.ConvParams, x, dy, dw, dbias []float32) error {
	const name = "conv2d backward filter"
	p, err := ref.CheckConv(name, p, len(x), len(dw), len(dy))
	if err != nil {
		return err
	}
	if dbias != nil {
		if err := ref.CheckLen(name, "dbias", len(dbias), p.K); err != nil {
			return err
		}
	}
	cp := convC(p)
	isa := cISA()
	xp, dyp := fptr(x), fptr(dy)
	macs := p.MACs() / int64(p.N)
	if p.Groups > 1 && depthwise(p) {
		k.parallel(p.C, minItems(macs*int64(p.N)/int64(p.C)), func(lo, hi, _ int) {
			C.hw_conv_dw_bwd_filter(&cp, C.int(lo), C.int(hi), xp, dyp, fptr(dw))
		})
	} else {
		partial := make([][]float32, k.threads())
		k.parallel(p.N, minItems(macs), func(lo, hi, worker int) {
			col := k.getScratch(scratchSize(&cp))
			defer k.putScratch(col)
			out := dw
			if worker > 0 {
				out = k.getScratch(len(dw))
				partial[worker] = out
			}
			C.hw_conv_bwd_filter(isa, &cp, C.int(lo), C.int(hi), xp, dyp, fptr(col), fptr(out), 0)
		})
		for _, part := range partial[1:] {
			if part == nil {
				continue
			}
			for i, v := range part {
				dw[i] += v
			}
			k.putScratch(part)
		}
	}
	if dbias != nil {
		return k.BiasBackward(p.N, p.K, p.OutH()*p.OutW(), dy, dbias)
	}
	return nil
}
