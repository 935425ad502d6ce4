//go:build cgo

package cpu

/*
#include "nchwc.h"
*/
import "C"

// The blocked layout of the compiled programs (nchwc.h): a tensor of C
// channels and H×W pixels is [⌈C/B⌉][H][W][B], lanes of channels ≥ C zero.

// blockOf returns the channel block B of ISA level isa.
func blockOf(isa C.int) int { return int(C.hw_nc_block(isa)) }

// blocks returns ⌈c/b⌉.
func blocks(c, b int) int { return (c + b - 1) / b }

// packConvWeights repacks K×C×KH×KW weights (one group) for the blocked
// direct convolution: [⌈K/B⌉][⌈C/B⌉][KH][KW][B (c mod B)][B (k mod B)],
// zero where c ≥ C or k ≥ K.
func packConvWeights(w []float32, k, c, kh, kw, b int) []float32 {
	kb, cb := blocks(k, b), blocks(c, b)
	out := make([]float32, kb*cb*kh*kw*b*b)
	for o := 0; o < k; o++ {
		for i := 0; i < c; i++ {
			for y := 0; y < kh; y++ {
				for x := 0; x < kw; x++ {
					dst := ((((o/b*cb+i/b)*kh+y)*kw+x)*b+i%b)*b + o%b
					out[dst] = w[((o*c+i)*kh+y)*kw+x]
				}
			}
		}
	}
	return out
}

// packDepthwiseWeights repacks C×1×KH×KW depthwise weights as
// [⌈C/B⌉][KH][KW][B], zero beyond C.
func packDepthwiseWeights(w []float32, c, kh, kw, b int) []float32 {
	out := make([]float32, blocks(c, b)*kh*kw*b)
	for i := 0; i < c; i++ {
		for t := 0; t < kh*kw; t++ {
			out[((i/b)*kh*kw+t)*b+i%b] = w[i*kh*kw+t]
		}
	}
	return out
}

// padChannels returns v (one value per channel) zero-padded to whole
// blocks, or nil for nil.
func padChannels(v []float32, b int) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, blocks(len(v), b)*b)
	copy(out, v)
	return out
}

// packLinearWeights repacks fo×fi weights (row-major, one row per output)
// for the blocked linear kernel: [⌈fo/B⌉][R][B], zero beyond fo, where
// column r of the R is column cols[r] of w (nil cols: all fi, in order).
func packLinearWeights(w []float32, fo, fi, b int, cols []int) []float32 {
	r := fi
	if cols != nil {
		r = len(cols)
	}
	out := make([]float32, blocks(fo, b)*r*b)
	for o := 0; o < fo; o++ {
		for i := 0; i < r; i++ {
			f := i
			if cols != nil {
				f = cols[i]
			}
			out[((o/b)*r+i)*b+o%b] = w[o*fi+f]
		}
	}
	return out
}
